/*
 * image_reg — see fs/image_reg.h: a blob_source over registry_blob_* for
 * one repository, and the manifest-based constructors.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/image_reg.h"
#include "image/progress.h"
#include "registry/blob.h"
#include "registry/manifest.h"

struct regsrc {
	struct registry *r;
	char *repo;
};

/* A streamed blob is a layer load the user may be waiting for: it shows in
 * image/progress (.acrfs/loads) while its bytes arrive. */
struct counted {
	blob_sink_fn sink;
	void *ctx;
	struct progress_load *p;
};

static int counted_sink(void *ctx, const void *data, size_t n)
{
	struct counted *c = ctx;

	progress_advance(c->p, n);
	return c->sink(c->ctx, data, n);
}

static int rs_stream(void *ctx, const struct digest *d, uint64_t size, blob_sink_fn sink,
		     void *sink_ctx)
{
	struct regsrc *s = ctx;
	struct counted c = { sink, sink_ctx, progress_begin(s->repo, d, size) };
	int rc = registry_blob_stream(s->r, s->repo, d, size, counted_sink, &c);

	progress_end(c.p, rc);
	return rc;
}

static ssize_t rs_pread(void *ctx, const struct digest *d, uint64_t size, void *buf,
			size_t len, uint64_t off)
{
	struct regsrc *s = ctx;

	return registry_blob_pread(s->r, s->repo, d, size, buf, len, off);
}

static int rs_get(void *ctx, const struct digest *d, size_t max, struct buf *out)
{
	struct regsrc *s = ctx;

	return registry_blob_get(s->r, s->repo, d, max, out);
}

static int rs_ranges(void *ctx, const struct digest *d)
{
	struct regsrc *s = ctx;

	return registry_blob_ranges(s->r, d);
}

static void rs_release(void *ctx)
{
	struct regsrc *s = ctx;

	if (s) {
		free(s->repo);
		free(s);
	}
}

static int rs_new(struct blob_source *src, struct registry *r, const char *repo)
{
	struct regsrc *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->r = r;
	s->repo = strdup(repo);
	if (!s->repo) {
		free(s);
		return -ENOMEM;
	}
	src->stream = rs_stream;
	src->pread = rs_pread;
	src->get = rs_get;
	src->ranges = rs_ranges;
	src->ctx = s;
	return 0;
}

int layer_new(struct layer **out, struct registry *r, const char *repo,
	      const struct descriptor *desc, unsigned index, struct pcache *pc, uint32_t span)
{
	struct blob_source src;
	int rc;

	*out = NULL;
	if (!r || !repo || !desc)
		return -EINVAL;
	rc = rs_new(&src, r, repo);
	if (rc)
		return rc;
	rc = layer_new_src(out, &src, desc->media_type, &desc->digest, desc->size, index, pc,
			   span);
	if (rc) {
		rs_release(src.ctx);
		return rc;
	}
	layer_own_source(*out, rs_release);
	return 0;
}

/* An image_desc pointing into `m` (valid while m lives). */
static int desc_of(const struct manifest *m, struct image_desc *d, struct image_blob **layers)
{
	size_t i;

	if (m->kind != MANIFEST_IMAGE)
		return -EINVAL;
	*layers = calloc(m->nlayers ? m->nlayers : 1, sizeof(**layers));
	if (!*layers)
		return -ENOMEM;
	for (i = 0; i < m->nlayers; i++) {
		(*layers)[i].media_type = m->layers[i].media_type;
		(*layers)[i].digest = m->layers[i].digest;
		(*layers)[i].size = m->layers[i].size;
	}
	memset(d, 0, sizeof(*d));
	d->digest = m->digest;
	d->media_type = m->media_type;
	d->bytes = m->bytes;
	d->len = m->len;
	d->config.media_type = m->config.media_type;
	d->config.digest = m->config.digest;
	d->config.size = m->config.size;
	d->layers = *layers;
	d->nlayers = m->nlayers;
	return 0;
}

int image_new(struct image **out, struct registry *r, const char *repo, struct manifest *m,
	      struct pcache *pc)
{
	struct image_blob *layers = NULL;
	struct blob_source src;
	struct image_desc d;
	int rc;

	*out = NULL;
	if (!r || !repo || !m) {
		manifest_free(m);
		return -EINVAL;
	}
	rc = desc_of(m, &d, &layers);
	if (!rc)
		rc = rs_new(&src, r, repo);
	if (!rc)
		rc = image_new_src(out, &src, rs_release, &d, pc, 0); /* releases on failure */
	free(layers);
	manifest_free(m);
	return rc;
}

int imgcache_get(struct imgcache *c, struct registry *r, const char *repo,
		 const struct manifest *m, struct image **out)
{
	struct image_blob *layers = NULL;
	struct blob_source src;
	struct image_desc d;
	int rc;

	*out = NULL;
	if (!c || !r || !repo || !m)
		return -EINVAL;
	rc = desc_of(m, &d, &layers);
	if (!rc)
		rc = rs_new(&src, r, repo);
	if (!rc)
		rc = imgcache_get_src(c, &src, rs_release, &d, out);
	free(layers);
	return rc;
}
