/*
 * acrfs-fetch — drive registry/manifest and registry/blob from the command line.
 *
 *   acrfs-fetch URL REPO REF [--ca F] [--manifest]        the manifest's exact bytes
 *   acrfs-fetch URL REPO REF [--ca F] --head              "<digest> <media type>"
 *   acrfs-fetch URL REPO REF [--ca F] --config            the config blob (REF: an image)
 *   acrfs-fetch URL REPO REF [--ca F] --blob DIGEST --size N
 *       the whole blob, streamed and verified (registry_blob_stream); written to
 *       stdout only once the digest has been checked, so a corrupted blob prints
 *       nothing
 *   acrfs-fetch URL REPO REF [--ca F] --blob DIGEST --size N --range OFF LEN
 *       bytes [OFF, OFF+LEN) of it (registry_blob_pread), printed as received
 *   ... --range OFF LEN --chunk K   the same in preads of K bytes
 *   ... --range OFF LEN --repeat M  the same read M times (redirect memory)
 *   ... --range OFF LEN --chunk K --threads T
 *       T threads share the chunks (thread i reads chunks i, i+T, ...) and
 *       write them into one buffer: registry_blob_pread from many threads
 *   acrfs-fetch - - - --http-get URL [--header "Name: value"]
 *       one GET through registry/http alone, following redirects, with an extra
 *       header: shows what libcurl does with a custom Authorization header
 *       when a redirect leads to another host
 *
 * Credentials: the chain acrfs itself uses (auth_creds_resolve: $ACRFS_USERNAME
 * + $ACRFS_PASSWORD, docker and podman files, else anonymous).
 * Options: --stats prints blob bytes fetched, HTTP requests and remembered
 * redirects to stderr; -v logs at debug level, -q only errors. REF is
 * ignored for --blob (pass anything, e.g. "-"). Exit status: 0, or 1 with
 * the error on stderr (strerror of the returned errno).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "auth/creds.h"
#include "common/log.h"
#include "registry/blob.h"
#include "registry/http.h"
#include "registry/manifest.h"
#include "registry/registry.h"

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int sink_buf(void *ctx, const void *data, size_t n)
{
	return buf_add(ctx, data, n);
}

struct job {
	struct registry *r;
	const char *repo;
	const struct digest *d;
	uint64_t size, off, len, chunk;
	char *out;
	unsigned idx, nthreads;
	int rc;
};

static void *job_run(void *vj)
{
	struct job *j = vj;
	uint64_t nchunks = (j->len + j->chunk - 1) / j->chunk;

	for (uint64_t c = j->idx; c < nchunks && !j->rc; c += j->nthreads) {
		uint64_t pos = c * j->chunk;
		size_t want = (size_t)(j->chunk < j->len - pos ? j->chunk : j->len - pos);
		ssize_t n = registry_blob_pread(j->r, j->repo, j->d, j->size, j->out + pos, want,
						j->off + pos);

		if (n < 0)
			j->rc = (int)n;
		else if ((size_t)n != want)
			j->rc = -EIO;
	}
	return NULL;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: acrfs-fetch URL REPO REF [--ca F] [--manifest | --head | --config |\n"
		"       --blob DIGEST --size N [--range OFF LEN [--chunk K] [--repeat M]]]\n"
		"       [--stats] [-v | -q]\n");
	return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return (errno || end == s || *end || s[0] == '-') ? -1 : 0;
}

int main(int argc, char **argv)
{
	const char *ca = NULL, *blob = NULL, *what = "manifest", *hdrs[2] = { NULL, NULL };
	const char *get_url = NULL;
	uint64_t size = 0, off = 0, len = 0, chunk = 0, repeat = 1, threads = 0;
	bool have_size = false, ranged = false, stats = false;
	enum log_level lvl = LOG_LVL_WARN;
	struct registry_opts o = { 0 };
	struct registry *r = NULL;
	struct manifest *m = NULL;
	struct buf out = BUF_INIT;
	char *url = NULL, *host = NULL;
	struct digest d;
	int rc, i;

	if (argc < 4)
		return usage();
	for (i = 4; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--ca") == 0 && i + 1 < argc) {
			ca = argv[++i];
		} else if (strcmp(a, "--manifest") == 0 || strcmp(a, "--head") == 0 ||
			   strcmp(a, "--config") == 0) {
			what = a + 2;
		} else if (strcmp(a, "--blob") == 0 && i + 1 < argc) {
			what = "blob";
			blob = argv[++i];
		} else if (strcmp(a, "--size") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], &size))
				return usage();
			have_size = true;
		} else if (strcmp(a, "--range") == 0 && i + 2 < argc) {
			if (parse_u64(argv[i + 1], &off) || parse_u64(argv[i + 2], &len))
				return usage();
			ranged = true;
			i += 2;
		} else if (strcmp(a, "--chunk") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], &chunk) || !chunk)
				return usage();
		} else if (strcmp(a, "--repeat") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], &repeat) || !repeat)
				return usage();
		} else if (strcmp(a, "--http-get") == 0 && i + 1 < argc) {
			what = "http";
			get_url = argv[++i];
		} else if (strcmp(a, "--header") == 0 && i + 1 < argc) {
			hdrs[0] = argv[++i];
		} else if (strcmp(a, "--threads") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], &threads) || !threads || threads > 64)
				return usage();
		} else if (strcmp(a, "--stats") == 0) {
			stats = true;
		} else if (strcmp(a, "-v") == 0) {
			lvl = LOG_LVL_DEBUG;
		} else if (strcmp(a, "-q") == 0) {
			lvl = LOG_LVL_ERROR;
		} else {
			return usage();
		}
	}
	if (strcmp(what, "blob") == 0 && (!have_size || digest_parse(&d, blob) != 0)) {
		fprintf(stderr, "acrfs-fetch: --blob needs a sha256 digest and --size\n");
		return 2;
	}
	log_init(lvl, false);
	if (strcmp(what, "http") == 0) {
		struct http *h = NULL;
		struct http_opts ho = { 0 };
		struct http_req req = { 0 };
		struct http_resp resp = HTTP_RESP_INIT;

		ho.ca_file = ca;
		ho.max_retries = -1;
		rc = http_new(&h, &ho);
		if (!rc) {
			req.url = get_url;
			req.headers = hdrs;
			req.follow_redirects = true;
			rc = http_do(h, &req, &resp);
		}
		if (!rc && resp.status != 200) {
			fprintf(stderr, "acrfs-fetch: HTTP %ld\n", resp.status);
			rc = -EIO;
		}
		if (!rc)
			rc = write_all(1, resp.body.data, resp.body.len);
		if (rc)
			fprintf(stderr, "acrfs-fetch: %s\n", strerror(-rc));
		http_resp_release(&resp);
		http_free(h);
		return rc ? 1 : 0;
	}
	rc = registry_url_parse(argv[1], &url, &host);
	if (rc) {
		fprintf(stderr, "acrfs-fetch: bad registry URL %s\n", argv[1]);
		return 2;
	}
	o.url = url;
	o.ca_file = ca;
	o.max_retries = -1;
	{
		struct auth_creds_opts co = { .host = host, .repository = argv[2] };
		struct auth_creds *creds = NULL;

		rc = auth_creds_resolve(&co, &creds);
		if (rc)
			goto out;
		o.creds = creds;
		rc = registry_new(&r, &o); /* keeps its own copy */
		auth_creds_free(creds);
	}
	if (rc)
		goto out;
	/* As acrfs does at mount time: learn the challenge, prove the credentials. */
	{
		struct buf why = BUF_INIT;

		rc = registry_ping(r, &why);
		if (rc)
			fprintf(stderr, "acrfs-fetch: %s\n", buf_cstr(&why));
		buf_release(&why);
		if (rc)
			goto out;
	}

	if (strcmp(what, "manifest") == 0) {
		rc = registry_manifest_get(r, argv[2], argv[3], &m);
		if (!rc)
			rc = buf_add(&out, m->bytes, m->len);
	} else if (strcmp(what, "head") == 0) {
		char *mt = NULL, ds[DIGEST_STR_SIZE];

		rc = registry_manifest_head(r, argv[2], argv[3], &d, &mt);
		if (!rc)
			rc = buf_addf(&out, "%s %s\n", digest_format(&d, ds), mt);
		free(mt);
	} else if (strcmp(what, "config") == 0) {
		rc = registry_manifest_get(r, argv[2], argv[3], &m);
		if (!rc && m->kind != MANIFEST_IMAGE) {
			fprintf(stderr, "acrfs-fetch: %s is an index, not an image\n", argv[3]);
			rc = -EISDIR;
		}
		if (!rc)
			rc = registry_blob_get(r, argv[2], &m->config.digest, 1u << 20, &out);
	} else if (ranged && threads) {
		struct job jobs[64];
		pthread_t tids[64];

		/* Clamp as pread does, so that every chunk is a full one. */
		if (off > size)
			off = size;
		if (len > size - off)
			len = size - off;
		if (!chunk)
			chunk = 65536;
		unsigned started = 0;

		rc = buf_grow(&out, (size_t)len);
		for (; started < threads && !rc; started++) {
			jobs[started] = (struct job){ r, argv[2], &d, size, off, len, chunk, out.data,
						      started, (unsigned)threads, 0 };
			if (pthread_create(&tids[started], NULL, job_run, &jobs[started]))
				rc = -EAGAIN;
		}
		if (rc && started)
			started--; /* the one that failed to start */
		for (unsigned k = 0; k < started; k++) {
			pthread_join(tids[k], NULL);
			if (jobs[k].rc && !rc)
				rc = jobs[k].rc;
		}
		if (!rc)
			out.len = (size_t)len;
	} else if (!ranged) {
		rc = registry_blob_stream(r, argv[2], &d, size, sink_buf, &out);
	} else {
		/* Each repetition reads the whole range again, in preads of `chunk`. */
		for (uint64_t rep = 0; rep < repeat && !rc; rep++) {
			uint64_t pos = off, end = off + len;

			buf_reset(&out);
			while (pos < end) {
				size_t want = (size_t)(chunk && chunk < end - pos ? chunk : end - pos);
				ssize_t n;

				rc = buf_grow(&out, want);
				if (rc)
					break;
				n = registry_blob_pread(r, argv[2], &d, size, out.data + out.len, want,
							pos);
				if (n < 0) {
					rc = (int)n;
					break;
				}
				out.len += (size_t)n;
				out.data[out.len] = '\0';
				if ((size_t)n < want)
					break; /* the blob ended */
				pos += (uint64_t)n;
			}
		}
	}
	if (!rc)
		rc = write_all(1, out.data, out.len);
out:
	if (stats && r)
		fprintf(stderr, "blob_bytes_fetched=%" PRIu64 " requests=%" PRIu64 " redirects=%zu\n",
			registry_blob_bytes_fetched(r), registry_request_count(r),
			registry_blob_redirects(r));
	if (rc)
		fprintf(stderr, "acrfs-fetch: %s\n", strerror(-rc));
	manifest_free(m);
	buf_release(&out);
	registry_free(r);
	free(url);
	free(host);
	return rc ? 1 : 0;
}
