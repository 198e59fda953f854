/*
 * ll_acr — see ll_acr.h. Tags' metadata comes from the ns's cached tag
 * lists; repositories' attributes from a dcache of their own
 * (fs->acr_repos: key the repository, the list empty, its meta a struct
 * acr_repo).
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
#include "fs/dcache.h"
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

/* dcache fetch of a repository's attributes: GET /acr/v1/<repo>. */
static int fetch_repo(void *ctx, const char *repo, struct strvec *out, void **meta)
{
	struct acr_repo *a = calloc(1, sizeof(*a));
	int rc;

	(void)out;
	if (!a)
		return -ENOMEM;
	rc = registry_acr_repo(ctx, repo, a);
	if (rc) {
		free(a);
		return rc;
	}
	*meta = a;
	return 0;
}

static int fetch_repo_plain(void *ctx, const char *repo, struct strvec *out)
{
	(void)ctx;
	(void)repo;
	(void)out;
	return -EINVAL; /* never called: the dcache has fetch_repo */
}

int acrfs_acr_repos_new(struct dcache **out, struct registry *r, unsigned ttl_s)
{
	int rc = dcache_new(out, ttl_s, fetch_repo_plain, r);

	if (!rc)
		dcache_set_meta(*out, fetch_repo, free);
	return rc;
}

/*
 * The attributes of repository `repo`: fetched when `fetch` (and not fresh),
 * else the last ones fetched, if any (-ENODATA). -ENOENT: no such
 * repository (a namespace); other -errno from the registry.
 */
static int repo_attrs(struct acrfs *fs, const char *repo, bool fetch, struct acr_repo *out)
{
	struct dlist *l = NULL;
	int rc;

	if (!fs->acr_repos || !*repo)
		return -ENODATA;
	rc = fetch ? dcache_get(fs->acr_repos, repo, &l) :
		     dcache_peek_stale(fs->acr_repos, repo, &l) ? -ENODATA : 0;
	if (rc)
		return rc;
	if (l->err)
		rc = l->err;
	else if (!l->meta)
		rc = -ENODATA;
	else
		*out = *(const struct acr_repo *)l->meta;
	dlist_put(l);
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
	struct acr_repo ra;

	/* A repository known to be locked (never fetched here). */
	if (n->kind == K_DIR && repo_attrs((struct acrfs *)fs, n->a, false, &ra) == 0 &&
	    acr_locked(&ra.attrs))
		st->st_mode &= ~(mode_t)0222;
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

/* user.acrfs.<name> of repository directory `n` (one request per TTL). */
static int repo_getxattr(struct acrfs *fs, const struct inode *n, const char *name,
			 struct buf *val)
{
	char s[ACR_TIME_SIZE];
	struct acr_repo ra;
	bool was_locked, known;
	int rc;

	if (strcmp(name, "lock") && strcmp(name, "created") && strcmp(name, "updated"))
		return -ENODATA;
	known = repo_attrs(fs, n->a, false, &ra) == 0;
	was_locked = known && acr_locked(&ra.attrs);
	rc = repo_attrs(fs, n->a, true, &ra);
	if (rc)
		return rc == -ENOENT ? -ENODATA : rc;
	if (was_locked != acr_locked(&ra.attrs) || !known)
		acrfs_inval_inode(fs->se, n->ino); /* the mode may have changed */
	if (!strcmp(name, "created") && ra.created.tv_sec)
		return buf_adds(val, acr_time_format(&ra.created, s, sizeof(s)));
	if (!strcmp(name, "updated") && ra.updated.tv_sec)
		return buf_adds(val, acr_time_format(&ra.updated, s, sizeof(s)));
	if (!strcmp(name, "lock") && acr_locked(&ra.attrs))
		return buf_adds(val, acr_lock_name(&ra.attrs));
	return -ENODATA;
}

int acrfs_acr_getxattr(struct acrfs *fs, const struct inode *n, const char *name,
		       struct buf *val)
{
	struct ns_tag_meta m;
	char s[ACR_TIME_SIZE > DIGEST_STR_SIZE ? ACR_TIME_SIZE : DIGEST_STR_SIZE];

	buf_reset(val);
	if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)))
		return -ENODATA;
	if (n->kind == K_DIR)
		return repo_getxattr(fs, n, name + strlen(XATTR_PREFIX), val);
	if (n->kind != K_TAG || !n->b || ns_tag_meta(fs->ns, n->a, n->b, &m))
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
	struct acr_repo ra;
	int rc = 0;

	if (n->kind == K_DIR && fs->acr_repos && *n->a && ns_catalog_has(fs->ns, n->a)) {
		/* A repository: its times are one request away; a lock is listed
		 * once known (ls -l asks for the names of every directory). */
		rc = buf_add(out, created, sizeof(created));
		if (!rc)
			rc = buf_add(out, updated, sizeof(updated));
		if (!rc && repo_attrs(fs, n->a, false, &ra) == 0 && acr_locked(&ra.attrs))
			rc = buf_add(out, lock, sizeof(lock));
		return rc;
	}
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
