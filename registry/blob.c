/*
 * Design: blob bytes arrive through http_do()'s sink, so every check happens
 * on the fly: the first body bytes of a response decide whether it is usable
 * (206 with the Content-Range we asked for, or 200 whose first bytes are
 * skipped), and from then on the sink counts, hashes (stream) or copies
 * (pread). A sink never returns a retryable errno to http.c: its verdicts are
 * kept in the context and the transfer is stopped with -ECANCELED, so http.c
 * never replays bytes behind our back. Dropped connections come back to the
 * loops below as transport errors and are resumed from the next byte needed.
 *
 * Per-registry state (struct blobstate, the registry's REG_EXT_BLOB slot):
 * a small table of redirect targets keyed by digest — a registry that hands
 * blobs to a storage host (ACR: a SAS URL valid for ~20 minutes) is asked once
 * per blob, not once per read — plus a "this blob's server ignores Range,
 * already said so" flag, and the byte counter. `lock` guards the table and
 * `tick`; it is a leaf lock, never held across network I/O. `fetched` is
 * updated atomically.
 *
 * Remembered URLs are fetched with http_do() directly, without any
 * Authorization: they are capabilities on another host. They may carry a
 * signature in the query, so logs show them without it.
 *
 * A storage host's 401/403 is never the registry's: its challenge is not
 * recorded (reg_send), and it means "this redirect expired": the registry
 * is asked once more for a fresh one; a second refusal is -EIO. A
 * connection that fails mid-body is resumed only when that attempt made
 * progress (delivered bytes; after a stall, 64 KiB): a server that answers
 * nothing, or trickles, is http_do()'s to retry within its deadline, not
 * ours to ask BLOB_MAX_RESUMES times.
 */
#include "registry/blob.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "registry/http.h"
#include "registry/internal.h"
#include "registry/link.h"
#include "registry/names.h"

struct redirect {
	struct digest d;
	bool used;	     /* slot holds a digest */
	char *url;	     /* remembered target, or NULL */
	double resolved;     /* monotonic time the registry gave url */
	uint64_t last_use;   /* for LRU replacement */
	bool norange_logged; /* "server ignores Range" said for this blob */
	bool range_ok;	     /* a ranged request for it was answered 206 */
};

struct blobstate {
	pthread_mutex_t lock; /* guards e[] and tick; leaf lock */
	struct redirect e[BLOB_REDIRECTS];
	uint64_t tick;
	uint64_t fetched; /* atomic: blob content bytes received */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void blobstate_free(void *p)
{
	struct blobstate *b = p;

	if (!b)
		return;
	for (size_t i = 0; i < BLOB_REDIRECTS; i++)
		free(b->e[i].url);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static struct blobstate *state(const struct registry *r)
{
	struct blobstate *b = reg_ext_get(r, REG_EXT_BLOB), *won;

	if (b)
		return b;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	pthread_mutex_init(&b->lock, NULL);
	won = reg_ext_install(r, REG_EXT_BLOB, b, blobstate_free);
	if (won != b)
		blobstate_free(b);
	return won;
}

uint64_t registry_blob_bytes_fetched(const struct registry *r)
{
	struct blobstate *b = reg_ext_get(r, REG_EXT_BLOB);

	return b ? __atomic_load_n(&b->fetched, __ATOMIC_RELAXED) : 0;
}

size_t registry_blob_redirects(const struct registry *r)
{
	struct blobstate *b = reg_ext_get(r, REG_EXT_BLOB);
	size_t n = 0;

	if (!b)
		return 0;
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < BLOB_REDIRECTS; i++)
		n += b->e[i].url != NULL;
	pthread_mutex_unlock(&b->lock);
	return n;
}

static void count_fetched(struct blobstate *b, size_t n)
{
	__atomic_add_fetch(&b->fetched, (uint64_t)n, __ATOMIC_RELAXED);
}

/* The slot of `d`, or (create) the free / least recently used one. Lock held. */
static struct redirect *slot_of(struct blobstate *b, const struct digest *d, bool create)
{
	struct redirect *victim = NULL;

	for (size_t i = 0; i < BLOB_REDIRECTS; i++) {
		struct redirect *e = &b->e[i];

		if (e->used && digest_equal(&e->d, d)) {
			e->last_use = ++b->tick;
			return e;
		}
		/* A free slot beats any used one; among used ones the oldest goes. */
		if (!victim || (victim->used && (!e->used || e->last_use < victim->last_use)))
			victim = e;
	}
	if (!create)
		return NULL;
	free(victim->url);
	memset(victim, 0, sizeof(*victim));
	victim->used = true;
	victim->d = *d;
	victim->last_use = ++b->tick;
	return victim;
}

/* A copy of the remembered target of `d` if it is fresh, else NULL. */
static char *redirect_get(struct blobstate *b, const struct digest *d)
{
	struct redirect *e;
	char *url = NULL;

	pthread_mutex_lock(&b->lock);
	e = slot_of(b, d, false);
	if (e && e->url) {
		if (now_s() - e->resolved < BLOB_REDIRECT_TTL_S) {
			url = strdup(e->url); /* NULL on ENOMEM: ask the registry */
		} else {
			free(e->url);
			e->url = NULL;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return url;
}

static void redirect_set(struct blobstate *b, const struct digest *d, const char *url)
{
	struct redirect *e;
	char *copy = url ? strdup(url) : NULL;

	pthread_mutex_lock(&b->lock);
	e = slot_of(b, d, copy != NULL);
	if (e) {
		free(e->url);
		e->url = copy;
		e->resolved = now_s();
		copy = NULL;
	}
	pthread_mutex_unlock(&b->lock);
	free(copy);
}

/* True the first time it is asked for `d` (then the caller logs). */
static bool norange_first(struct blobstate *b, const struct digest *d)
{
	struct redirect *e;
	bool first = false;

	pthread_mutex_lock(&b->lock);
	e = slot_of(b, d, true);
	if (!e->norange_logged) {
		e->norange_logged = true;
		first = true;
	}
	pthread_mutex_unlock(&b->lock);
	return first;
}

/* A ranged request for `d` was answered as a range. */
static void range_seen(struct blobstate *b, const struct digest *d)
{
	pthread_mutex_lock(&b->lock);
	slot_of(b, d, true)->range_ok = true;
	pthread_mutex_unlock(&b->lock);
}

int registry_blob_ranges(struct registry *r, const struct digest *d)
{
	struct blobstate *b = reg_ext_get(r, REG_EXT_BLOB);
	struct redirect *e;
	int v = -1;

	if (!b)
		return -1;
	pthread_mutex_lock(&b->lock);
	e = slot_of(b, d, false);
	if (e)
		v = e->norange_logged ? 0 : e->range_ok ? 1 : -1;
	pthread_mutex_unlock(&b->lock);
	return v;
}

/* What every request for one blob needs. */
struct target {
	struct registry *r;
	struct blobstate *b;
	const struct digest *d;
	struct buf url;	  /* the registry's blob URL */
	struct buf scope; /* repository:<repo>:pull */
	char ds[DIGEST_STR_SIZE];
	char logurl[URL_LOG_MAX]; /* the URL of the last exchange, fit for logs */
};

static int target_init(struct target *t, struct registry *r, const char *repo,
		       const struct digest *d)
{
	int rc;

	memset(t, 0, sizeof(*t));
	t->r = r;
	t->d = d;
	digest_format(d, t->ds);
	if (!repo || !repo_name_valid(repo))
		return -ENOENT;
	t->b = state(r);
	if (!t->b)
		return -ENOMEM;
	rc = buf_addf(&t->url, "%s/v2/%s/blobs/%s", reg_url(r), repo, t->ds);
	if (!rc)
		rc = buf_addf(&t->scope, "repository:%s:pull", repo);
	url_for_log(buf_cstr(&t->url), t->logurl, sizeof(t->logurl));
	return rc;
}

static void target_release(struct target *t)
{
	buf_release(&t->url);
	buf_release(&t->scope);
}

static bool is_2xx(long s)
{
	return s >= 200 && s < 300;
}

static bool refused(const struct http_resp *resp)
{
	return resp->status == 401 || resp->status == 403;
}

/*
 * One GET of the blob: `req` gives the range, sink and body limit; the URL
 * is ours to choose. A fresh remembered target is used first, without
 * credentials; if it answers 401/403/404 it is forgotten and the registry is
 * asked. A registry answer that came from elsewhere (redirect) is
 * remembered. A redirect target that refuses (401/403: an expired
 * signature) makes us ask the registry once more; refused again, -EIO (the
 * reason set for http_strerror, so that reg_fail logs it). Returns
 * http_do()'s result; t->logurl names the URL that answered.
 */
static int fetch_once(struct target *t, const struct http_req *tmpl, struct http_resp *resp)
{
	struct http_req req = *tmpl;
	char *surl = redirect_get(t->b, t->d);
	int rc, refusals = 0;

	req.follow_redirects = true;
	if (surl) {
		req.url = surl;
		url_for_log(surl, t->logurl, sizeof(t->logurl));
		rc = http_do(reg_http(t->r), &req, resp);
		if (rc == 0 && (refused(resp) || resp->status == 404)) {
			log_info("GET %s (blob %s): storage answered HTTP %ld; asking the registry again",
				 t->logurl, t->ds, resp->status);
			redirect_set(t->b, t->d, NULL);
			http_resp_release(resp);
			refusals++;
		} else {
			/* A storage host we cannot reach: the next attempt asks the registry. */
			if (rc)
				redirect_set(t->b, t->d, NULL);
			free(surl);
			return rc;
		}
		free(surl);
	}
	for (;;) {
		req.url = t->url.data;
		url_for_log(t->url.data, t->logurl, sizeof(t->logurl));
		rc = reg_send(t->r, t->scope.data, &req, resp);
		if (rc == 0 && resp->cross_origin && refused(resp)) {
			char su[URL_LOG_MAX];

			redirect_set(t->b, t->d, NULL);
			url_for_log(resp->effective_url ? resp->effective_url : "", su, sizeof(su));
			if (++refusals < 2) {
				log_info("GET %s (blob %s): its storage host %s answered HTTP %ld; asking "
					 "the registry for a fresh redirect", t->logurl, t->ds, su,
					 resp->status);
				http_resp_release(resp);
				continue;
			}
			http_set_error("the storage host %s refused the blob (HTTP %ld), also after a "
				       "fresh redirect", su, resp->status);
			return -EIO;
		}
		if ((rc || is_2xx(resp->status)) && resp->cross_origin && resp->effective_url)
			redirect_set(t->b, t->d, resp->effective_url);
		return rc;
	}
}

/*
 * Transport failures worth a resume from the next byte: only after an
 * attempt that made progress (see the design note), `got` bytes. A stall
 * (-ETIMEDOUT: slower than http.h's low-speed limit) counts as progress only
 * after STALL_MIN_PROGRESS bytes, so that a server that trickles a few bytes
 * per attempt is not asked BLOB_MAX_RESUMES times.
 */
#define STALL_MIN_PROGRESS (64u << 10)

static bool resumable(int rc, uint64_t got)
{
	if (rc == -ETIMEDOUT)
		return got >= STALL_MIN_PROGRESS;
	return got > 0 && (rc == -EIO || rc == -ECONNREFUSED || rc == -ECONNRESET);
}

/* Parse "bytes A-B/T" (T may be "*": *total = UINT64_MAX). 0 or -1. */
static int parse_content_range(const char *s, uint64_t *a, uint64_t *b, uint64_t *total)
{
	uint64_t *v[3] = { a, b, total };
	const char seps[3] = { '-', '/', '\0' };

	if (!s || strncmp(s, "bytes ", 6) != 0)
		return -1;
	s += 6;
	for (int i = 0; i < 3; i++) {
		uint64_t x = 0;
		int digits = 0;

		if (i == 2 && *s == '*') {
			*total = UINT64_MAX;
			s++;
		} else {
			for (; *s >= '0' && *s <= '9'; s++, digits++) {
				if (x > (UINT64_MAX - 9) / 10)
					return -1;
				x = x * 10 + (uint64_t)(*s - '0');
			}
			if (!digits)
				return -1;
			*v[i] = x;
		}
		if (*s != seps[i])
			return -1;
		if (seps[i])
			s++;
	}
	return *a <= *b ? 0 : -1;
}

/*
 * Decide on the first body bytes of a response to a request for
 * [start, end] (inclusive) of a blob of `size` bytes: *skip = body bytes to
 * discard first. 0, or -EBADMSG with *why set.
 */
static int check_response(const struct http_resp *resp, uint64_t start, uint64_t end,
			  uint64_t size, uint64_t *skip, char *why, size_t whysz)
{
	uint64_t a, b, total;

	*skip = 0;
	if (resp->status == 206) {
		if (parse_content_range(resp->content_range, &a, &b, &total) != 0) {
			snprintf(why, whysz, "206 with an unusable Content-Range \"%.80s\"",
				 resp->content_range ? resp->content_range : "(none)");
			return -EBADMSG;
		}
		if (a != start || b != end || (total != UINT64_MAX && total != size)) {
			snprintf(why, whysz,
				 "asked for bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64
				 ", got Content-Range \"%.80s\"",
				 start, end, size, resp->content_range);
			return -EBADMSG;
		}
		return 0;
	}
	if (resp->status == 200) {
		if (resp->content_length >= 0 && (uint64_t)resp->content_length != size) {
			snprintf(why, whysz, "the blob is %" PRId64 " bytes, the manifest says %" PRIu64,
				 resp->content_length, size);
			return -EBADMSG;
		}
		*skip = start;
		return 0;
	}
	snprintf(why, whysz, "unexpected HTTP %ld for a blob", resp->status);
	return -EBADMSG;
}

/* ------------------------------------------------------------------ stream */

struct stream_ctx {
	struct target *t;
	struct http_resp *resp;
	struct digest_hasher *h;
	int (*sink)(void *ctx, const void *data, size_t n);
	void *ctx;
	uint64_t size;
	uint64_t delivered; /* bytes handed to the caller's sink */
	uint64_t pos;	    /* body bytes of this response seen */
	uint64_t skip;	    /* body bytes of this response to discard */
	bool started;	    /* this response's first bytes were checked */
	int err;	    /* our verdict (-EIO), sticky */
	int user_err;	    /* the caller's sink error, sticky */
	char why[256];
};

static int stream_sink(void *vctx, const void *data, size_t n)
{
	struct stream_ctx *s = vctx;
	const char *p = data;
	int rc;

	if (s->err || s->user_err)
		return -ECANCELED;
	if (!s->started) {
		s->started = true;
		if (check_response(s->resp, s->delivered, s->size - 1, s->size, &s->skip, s->why,
				   sizeof(s->why))) {
			s->err = -EIO;
			return -ECANCELED;
		}
		if (s->skip && norange_first(s->t->b, s->t->d))
			log_info("GET %s: the server ignores Range; skipping %" PRIu64 " bytes",
				 s->t->logurl, s->skip);
	}
	count_fetched(s->t->b, n);
	if (s->pos < s->skip) {
		size_t k = s->skip - s->pos < n ? (size_t)(s->skip - s->pos) : n;

		p += k;
		n -= k;
		s->pos += k;
	}
	s->pos += n;
	if (!n)
		return 0;
	if (n > s->size - s->delivered) {
		snprintf(s->why, sizeof(s->why), "the blob is longer than %" PRIu64 " bytes",
			 s->size);
		s->err = -EIO;
		return -ECANCELED;
	}
	if (digest_hasher_update(s->h, p, n)) {
		snprintf(s->why, sizeof(s->why), "hashing failed");
		s->err = -EIO;
		return -ECANCELED;
	}
	rc = s->sink(s->ctx, p, n);
	if (rc) {
		s->user_err = rc < 0 ? rc : -EIO;
		return -ECANCELED;
	}
	s->delivered += n;
	return 0;
}

int registry_blob_stream(struct registry *r, const char *repo, const struct digest *d,
			 uint64_t size, int (*sink)(void *ctx, const void *data, size_t n),
			 void *ctx)
{
	struct target t;
	struct stream_ctx s;
	struct digest got;
	char range[64], gs[DIGEST_STR_SIZE];
	int rc, resumes = 0;

	memset(&s, 0, sizeof(s));
	rc = target_init(&t, r, repo, d);
	if (rc)
		goto out;
	rc = digest_hasher_new(&s.h);
	if (rc)
		goto out;
	s.t = &t;
	s.sink = sink;
	s.ctx = ctx;
	s.size = size;
	for (;;) {
		struct http_resp resp = HTTP_RESP_INIT;
		struct http_req req = { 0 };
		uint64_t before = s.delivered;

		s.resp = &resp;
		s.started = false;
		s.pos = s.skip = 0;
		if (s.delivered)
			snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, s.delivered,
				 size - 1); /* cannot truncate */
		req.range = s.delivered ? range : NULL;
		req.sink = stream_sink;
		req.sink_ctx = &s;
		rc = fetch_once(&t, &req, &resp);
		if (s.user_err) {
			rc = s.user_err;
		} else if (s.err) {
			log_error("GET %s (blob %s): %s", t.logurl, t.ds, s.why);
			rc = s.err;
		} else if (rc == 0 && is_2xx(resp.status)) {
			if (s.delivered != size) {
				log_error("GET %s (blob %s): the body ended after %" PRIu64
					  " of %" PRIu64 " bytes",
					  t.logurl, t.ds, s.delivered, size);
				rc = -EIO;
			}
		} else if (rc == 0) {
			rc = reg_fail("GET", t.logurl, 0, &resp);
			if (!rc)
				rc = -EIO;
		} else if (resumable(rc, s.delivered - before) && resumes < BLOB_MAX_RESUMES &&
			   s.delivered < size) {
			resumes++;
			log_info("GET %s (blob %s): %s after %" PRIu64 " of %" PRIu64
				 " bytes; resuming (%d/%d)",
				 t.logurl, t.ds, http_strerror(), s.delivered, size, resumes,
				 BLOB_MAX_RESUMES);
			http_resp_release(&resp);
			continue;
		} else {
			rc = reg_fail("GET", t.logurl, rc, &resp);
		}
		http_resp_release(&resp);
		break;
	}
	if (rc)
		goto out;
	rc = digest_hasher_final(s.h, d, &got);
	if (rc == -EBADMSG) {
		log_error("GET %s: blob content hashes to %s, not %s", t.logurl,
			  digest_format(&got, gs), t.ds);
		rc = -EIO;
	}
out:
	digest_hasher_free(s.h);
	target_release(&t);
	return rc;
}

/* ------------------------------------------------------------------ pread */

struct pread_ctx {
	struct target *t;
	struct http_resp *resp;
	char *buf;
	size_t len;   /* wanted */
	size_t got;   /* copied into buf */
	uint64_t off; /* blob offset of buf[0] */
	uint64_t size;
	uint64_t pos, skip;
	bool started;
	bool enough; /* stopped a 200 on purpose */
	int err;
	char why[256];
};

static int pread_sink(void *vctx, const void *data, size_t n)
{
	struct pread_ctx *c = vctx;
	const char *p = data;
	size_t k;

	if (c->err || c->enough)
		return -ECANCELED;
	if (!c->started) {
		c->started = true;
		if (check_response(c->resp, c->off + c->got, c->off + c->len - 1, c->size, &c->skip,
				   c->why, sizeof(c->why))) {
			c->err = -EIO;
			return -ECANCELED;
		}
		if (c->resp->status == 200 && norange_first(c->t->b, c->t->d))
			log_info("GET %s: the server ignores Range for blob %s; reading from its start",
				 c->t->logurl, c->t->ds);
		if (c->resp->status == 206)
			range_seen(c->t->b, c->t->d);
	}
	count_fetched(c->t->b, n);
	if (c->pos < c->skip) {
		k = c->skip - c->pos < n ? (size_t)(c->skip - c->pos) : n;
		p += k;
		n -= k;
		c->pos += k;
	}
	c->pos += n;
	k = n < c->len - c->got ? n : c->len - c->got;
	memcpy(c->buf + c->got, p, k);
	c->got += k;
	if (n > k && c->resp->status == 206) {
		snprintf(c->why, sizeof(c->why), "the server sent more than the range asked for");
		c->err = -EIO;
		return -ECANCELED;
	}
	if (c->got == c->len && c->resp->status == 200) {
		c->enough = true; /* the rest of a whole-blob answer is not wanted */
		return -ECANCELED;
	}
	return 0;
}

ssize_t registry_blob_pread(struct registry *r, const char *repo, const struct digest *d,
			    uint64_t size, void *buf, size_t len, uint64_t off)
{
	struct target t;
	struct pread_ctx c;
	char range[64];
	int rc, resumes = 0;

	if (off >= size || len == 0)
		return repo && repo_name_valid(repo) ? 0 : -ENOENT;
	if (len > size - off)
		len = (size_t)(size - off);
	memset(&c, 0, sizeof(c));
	rc = target_init(&t, r, repo, d);
	if (rc)
		goto out;
	c.t = &t;
	c.buf = buf;
	c.len = len;
	c.off = off;
	c.size = size;
	for (;;) {
		struct http_resp resp = HTTP_RESP_INIT;
		struct http_req req = { 0 };
		size_t before = c.got;

		c.resp = &resp;
		c.started = false;
		c.pos = c.skip = 0;
		snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, off + c.got,
			 off + len - 1); /* cannot truncate */
		req.range = range;
		req.sink = pread_sink;
		req.sink_ctx = &c;
		rc = fetch_once(&t, &req, &resp);
		if (c.enough) {
			rc = 0;
		} else if (c.err) {
			log_error("GET %s (blob %s, bytes %s): %s", t.logurl, t.ds, range, c.why);
			rc = c.err;
		} else if (rc == 0 && is_2xx(resp.status)) {
			if (c.got != len) {
				log_error("GET %s (blob %s, bytes %s): the body ended after %zu bytes",
					  t.logurl, t.ds, range, c.got);
				rc = -EIO;
			}
		} else if (rc == 0) {
			rc = reg_fail("GET", t.logurl, 0, &resp);
			if (!rc)
				rc = -EIO;
		} else if (resumable(rc, c.got - before) && resumes < BLOB_MAX_RESUMES) {
			resumes++;
			log_info("GET %s (blob %s, bytes %s): %s; resuming (%d/%d)", t.logurl,
				 t.ds, range, http_strerror(), resumes, BLOB_MAX_RESUMES);
			http_resp_release(&resp);
			continue;
		} else {
			rc = reg_fail("GET", t.logurl, rc, &resp);
		}
		http_resp_release(&resp);
		break;
	}
out:
	target_release(&t);
	return rc ? rc : (ssize_t)len;
}

/* ------------------------------------------------------------------ get */

int registry_blob_get(struct registry *r, const char *repo, const struct digest *d, size_t max,
		      struct buf *out)
{
	struct target t;
	struct http_req req = { 0 };
	struct http_resp resp = HTTP_RESP_INIT;
	struct digest got;
	char gs[DIGEST_STR_SIZE];
	int rc;

	rc = target_init(&t, r, repo, d);
	if (rc)
		goto out;
	/* http.c treats 0 as "its default"; 1 still rejects any non-empty body. */
	req.max_body = max ? (uint64_t)max : 1;
	rc = fetch_once(&t, &req, &resp);
	if (rc == -EFBIG || (rc == 0 && resp.status == 200 && resp.body.len > max)) {
		log_error("GET %s: blob larger than %zu bytes", t.logurl, max);
		rc = -EFBIG;
		goto out;
	}
	if (rc || resp.status != 200) {
		rc = reg_fail("GET", t.logurl, rc, &resp);
		if (!rc)
			rc = -EIO;
		goto out;
	}
	count_fetched(t.b, resp.body.len);
	rc = digest_of_buf(&got, resp.body.data, resp.body.len);
	if (rc)
		goto out;
	if (!digest_equal(&got, d)) {
		log_error("GET %s: blob content hashes to %s, not %s", t.logurl,
			  digest_format(&got, gs), t.ds);
		rc = -EIO;
		goto out;
	}
	rc = buf_add(out, resp.body.data, resp.body.len);
out:
	http_resp_release(&resp);
	target_release(&t);
	return rc;
}
