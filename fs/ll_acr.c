/*
 * ll_acr — see ll_acr.h. No state of its own: everything comes from the
 * ns's cached tag lists.
 */
#include "fs/ll_acr.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/strvec.h"
#include "fs/itable.h"
#include "fs/ll.h"
#include "registry/acr.h"
#include "registry/registry.h"

#define XATTR_PREFIX "user.acrfs."

int acrfs_acr_tags(void *ctx, const char *repo, struct strvec *tags, struct ns_tag_meta **meta)
{
	static atomic_bool said_denied;
	struct registry *r = ctx;
	struct acr_tag *v = NULL;
	struct ns_tag_meta *m = NULL;
	size_t n = 0, i;
	int rc;

	*meta = NULL;
	if (!registry_is_acr(r))
		return registry_tags(r, repo, tags);
	rc = registry_acr_tags(r, repo, &v, &n);
	if (rc == -EACCES) {
		if (!atomic_exchange(&said_denied, true))
			log_info("%s: this identity may not read ACR's metadata (metadata_read); "
				 "tags are listed through /v2, without times, digests or locks",
				 repo);
		return registry_tags(r, repo, tags);
	}
	if (rc)
		return rc;
	m = calloc(n ? n : 1, sizeof(*m));
	if (!m) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n && !rc; i++) {
		m[i].created = v[i].created;
		m[i].updated = v[i].updated;
		m[i].has_digest = v[i].has_digest;
		m[i].digest = v[i].digest;
		m[i].write_enabled = v[i].attrs.write_enabled;
		m[i].delete_enabled = v[i].attrs.delete_enabled;
		rc = strvec_push(tags, v[i].name); /* sorted, unique: as strvec wants */
	}
	if (!rc) {
		*meta = m;
		m = NULL;
	}
out:
	free(m);
	acr_tags_free(v, n);
	return rc;
}

static bool tag_locked(const struct ns_tag_meta *m)
{
	return !m->write_enabled || !m->delete_enabled;
}

void acrfs_acr_attr(const struct acrfs *fs, const struct inode *n, struct stat *st)
{
	struct ns_tag_meta m;
	struct timespec u, c;

	if (n->kind == K_TAG && n->b) {
		if (ns_tag_meta(fs->ns, n->a, n->b, &m))
			return;
		if (m.updated.tv_sec)
			st->st_mtim = st->st_ctim = m.updated;
		if (m.created.tv_sec)
			st->st_atim = m.created;
		if (tag_locked(&m))
			st->st_mode &= ~(mode_t)0222;
	} else if (n->kind == K_DIR && *n->a && ns_repo_times(fs->ns, n->a, &u, &c) == 0) {
		/*
		 * The seconds are the repository's newest tag update; the
		 * nanoseconds a mix of the mtime fs/listing.c gave, which moves
		 * on when the kernel's copy of the listing goes stale: the kernel
		 * compares mtimes for equality, so it still reads a new listing.
		 */
		uint64_t l = (uint64_t)st->st_mtim.tv_sec * 1000003u + (uint64_t)st->st_mtim.tv_nsec;

		st->st_mtim.tv_sec = u.tv_sec;
		st->st_mtim.tv_nsec = (long)(l % 1000000000u);
		st->st_ctim = st->st_mtim;
		if (c.tv_sec)
			st->st_atim = c;
	}
}

static const char *lock_name(const struct ns_tag_meta *m)
{
	struct acr_attrs a = { m->delete_enabled, m->write_enabled, true, true };

	return acr_lock_name(&a);
}

int acrfs_acr_getxattr(struct acrfs *fs, const struct inode *n, const char *name,
		       struct buf *val)
{
	struct ns_tag_meta m;
	char s[ACR_TIME_SIZE > DIGEST_STR_SIZE ? ACR_TIME_SIZE : DIGEST_STR_SIZE];

	buf_reset(val);
	if (n->kind != K_TAG || !n->b || strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) ||
	    ns_tag_meta(fs->ns, n->a, n->b, &m))
		return -ENODATA;
	name += strlen(XATTR_PREFIX);
	if (!strcmp(name, "digest") && m.has_digest)
		return buf_adds(val, digest_format(&m.digest, s));
	if (!strcmp(name, "created") && m.created.tv_sec)
		return buf_adds(val, acr_time_format(&m.created, s, sizeof(s)));
	if (!strcmp(name, "updated") && m.updated.tv_sec)
		return buf_adds(val, acr_time_format(&m.updated, s, sizeof(s)));
	if (!strcmp(name, "lock") && tag_locked(&m))
		return buf_adds(val, lock_name(&m));
	return -ENODATA;
}

int acrfs_acr_listxattr(struct acrfs *fs, const struct inode *n, struct buf *out)
{
	static const char created[] = XATTR_PREFIX "created", updated[] = XATTR_PREFIX "updated",
			  lock[] = XATTR_PREFIX "lock";
	struct ns_tag_meta m;
	int rc = 0;

	if (n->kind != K_TAG || !n->b || ns_tag_meta(fs->ns, n->a, n->b, &m))
		return 0;
	if (m.created.tv_sec)
		rc = buf_add(out, created, sizeof(created));
	if (!rc && m.updated.tv_sec)
		rc = buf_add(out, updated, sizeof(updated));
	if (!rc && tag_locked(&m))
		rc = buf_add(out, lock, sizeof(lock));
	return rc;
}
