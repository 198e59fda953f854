/*
 * acrfs-image — list or cat an image of a registry through acrfs's own
 * fs-layer model (the same code the FUSE edge uses), for cross-checks.
 *
 *   acrfs-image URL REPO REF [--ca F] [--cache-dir D] [--cache-max BYTES]
 *               [--platform OS/ARCH[/VARIANT]]
 *               [--ls rootfs | --ls layer N | --cat PATH] [--stats]
 *
 * REF is a tag or sha256:<hex>. An index picks --platform (default: the first
 * entry that is not unknown/unknown). --ls prints one line per node, sorted
 * by path:
 *     TYPE MODE UID:GID SIZE MTIME PATH [-> TARGET]
 * TYPE is one of - d l c b p; MODE is 4 octal digits (07777 bits); SIZE is
 * the file size (symlinks: the target length; devices: major,minor); MTIME is
 * seconds. --cat writes the rootfs file PATH (not following symlinks) to
 * stdout through a per-open reader. --stats prints bytes fetched, requests
 * and time to stderr. Default action: --ls rootfs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "fs/image_reg.h"
#include "image/image.h"
#include "image/layer.h"
#include "image/pcache.h"
#include "registry/blob.h"
#include "registry/manifest.h"
#include "registry/registry.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr, "usage: acrfs-image URL REPO REF [--ca F] [--cache-dir D] "
			"[--cache-max BYTES] [--platform OS/ARCH[/VARIANT]]\n"
			"                   [--ls rootfs | --ls layer N | --cat PATH] [--stats]\n");
}

static char type_char(uint32_t mode)
{
	switch (mode & 0170000) {
	case 0040000:
		return 'd';
	case 0120000:
		return 'l';
	case 0020000:
		return 'c';
	case 0060000:
		return 'b';
	case 0010000:
		return 'p';
	default:
		return '-';
	}
}

struct ent {
	const char *name;
	const struct tree_node *node;
};

static int cmp_ent(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

static int list_dir(const struct tree *t, const struct tree_node *dir, const char *prefix)
{
	struct ent *v = NULL;
	size_t n = 0, cap = 0, i;
	uint64_t cookie = 0;
	const char *name;
	const struct tree_node *child;
	int rc = 0;

	while (tree_readdir(t, dir, &cookie, &name, &child) == 1) {
		if (n == cap) {
			size_t c = cap ? 2 * cap : 64;
			struct ent *nv = realloc(v, c * sizeof(*nv));

			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
			cap = c;
		}
		v[n].name = name;
		v[n].node = child;
		n++;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_ent);
	for (i = 0; !rc && i < n; i++) {
		const struct tree_attr *a = tree_node_attr(v[i].node);
		struct buf path = BUF_INIT;
		char type = type_char(a->mode);

		if (buf_addf(&path, "%s%s%s", prefix, *prefix ? "/" : "", v[i].name)) {
			rc = -ENOMEM;
			break;
		}
		if (type == 'c' || type == 'b')
			printf("%c %04o %u:%u %u,%u %" PRId64 " %s\n", type, a->mode & 07777, a->uid,
			       a->gid, a->rdev_major, a->rdev_minor, a->mtime_sec, path.data);
		else
			printf("%c %04o %u:%u %" PRIu64 " %" PRId64 " %s%s%s\n", type,
			       a->mode & 07777, a->uid, a->gid, a->size, a->mtime_sec, path.data,
			       a->symlink ? " -> " : "", a->symlink ? a->symlink : "");
		if (type == 'd')
			rc = list_dir(t, v[i].node, path.data);
		buf_release(&path);
	}
	free(v);
	return rc;
}

static int cat_file(struct image *img, const struct tree *t, const char *path)
{
	const struct tree_node *n = tree_lookup_path(t, path);
	const struct tree_attr *a;
	struct layer_reader *rd = NULL;
	struct layer *l;
	char *buf = NULL;
	uint64_t off = 0;
	int rc;

	if (!n) {
		fprintf(stderr, "acrfs-image: %s: not found\n", path);
		return -ENOENT;
	}
	a = tree_node_attr(n);
	if ((a->mode & 0170000) != 0100000) {
		fprintf(stderr, "acrfs-image: %s: not a regular file\n", path);
		return -EINVAL;
	}
	l = image_layer(img, a->layer);
	rc = l ? layer_reader_new(&rd, l, a) : -EINVAL;
	buf = malloc(128u << 10);
	if (!rc && !buf)
		rc = -ENOMEM;
	while (!rc && off < a->size) {
		ssize_t got = layer_reader_pread(rd, buf, 128u << 10, off);

		if (got <= 0) {
			rc = got < 0 ? (int)got : -EIO;
			break;
		}
		if (fwrite(buf, 1, (size_t)got, stdout) != (size_t)got)
			rc = -EIO;
		off += (uint64_t)got;
	}
	if (rc)
		fprintf(stderr, "acrfs-image: %s: %s\n", path, strerror(-rc));
	free(buf);
	layer_reader_free(rd);
	return rc;
}

/* The image manifest for REF: itself, or the chosen platform of an index. */
static int resolve(struct registry *r, const char *repo, const char *ref,
		   const char *platform, struct manifest **out)
{
	struct manifest *m = NULL;
	char want[200] = "";
	size_t i;
	int rc = registry_manifest_get(r, repo, ref, &m);

	*out = NULL;
	if (rc)
		return rc;
	if (m->kind == MANIFEST_IMAGE) {
		*out = m;
		return 0;
	}
	for (i = 0; i < m->nmanifests; i++) {
		const struct descriptor *e = &m->manifests[i];
		char have[200];
		char ds[DIGEST_STR_SIZE];

		if (!e->os || !e->architecture ||
		    (!strcmp(e->os, "unknown") && !strcmp(e->architecture, "unknown")))
			continue;
		snprintf(have, sizeof(have), "%s/%s%s%s", e->os, e->architecture,
			 e->variant ? "/" : "", e->variant ? e->variant : "");
		if (platform && strcmp(platform, have))
			continue;
		snprintf(want, sizeof(want), "%s", digest_format(&e->digest, ds));
		fprintf(stderr, "acrfs-image: index: using %s (%s)\n", have, want);
		break;
	}
	manifest_free(m);
	if (!want[0]) {
		fprintf(stderr, "acrfs-image: index has no platform %s\n",
			platform ? platform : "(other than unknown/unknown)");
		return -ENOENT;
	}
	rc = registry_manifest_get(r, repo, want, &m);
	if (rc)
		return rc;
	if (m->kind != MANIFEST_IMAGE) {
		manifest_free(m);
		return -EINVAL;
	}
	*out = m;
	return 0;
}

int main(int argc, char **argv)
{
	const char *ca = NULL, *cache_dir = NULL, *platform = NULL, *cat = NULL;
	const char *arg_url, *repo, *ref;
	uint64_t cache_max = 1ull << 30;
	long layer_n = -1;
	int stats = 0, i, rc, ret = 1;
	struct registry_opts ro = { 0 };
	struct registry *r = NULL;
	struct pcache *pc = NULL;
	struct manifest *m = NULL;
	struct image *img = NULL;
	char *url = NULL, *host = NULL;
	double t0 = now();

	if (argc < 4) {
		usage();
		return 2;
	}
	arg_url = argv[1];
	repo = argv[2];
	ref = argv[3];
	for (i = 4; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--ca") && i + 1 < argc) {
			ca = argv[++i];
		} else if (!strcmp(a, "--cache-dir") && i + 1 < argc) {
			cache_dir = argv[++i];
		} else if (!strcmp(a, "--cache-max") && i + 1 < argc) {
			cache_max = strtoull(argv[++i], NULL, 10);
		} else if (!strcmp(a, "--platform") && i + 1 < argc) {
			platform = argv[++i];
		} else if (!strcmp(a, "--cat") && i + 1 < argc) {
			cat = argv[++i];
		} else if (!strcmp(a, "--ls") && i + 1 < argc) {
			if (!strcmp(argv[++i], "rootfs")) {
				layer_n = -1;
			} else if (!strcmp(argv[i], "layer") && i + 1 < argc) {
				char *end;

				layer_n = strtol(argv[++i], &end, 10);
				if (*end || layer_n < 0) {
					usage();
					return 2;
				}
			} else {
				usage();
				return 2;
			}
		} else if (!strcmp(a, "--stats")) {
			stats = 1;
		} else {
			usage();
			return 2;
		}
	}
	log_init(LOG_LVL_WARN, false);
	if (registry_url_parse(arg_url, &url, &host)) {
		fprintf(stderr, "acrfs-image: %s: not a registry address\n", arg_url);
		goto out;
	}
	ro.url = url;
	ro.ca_file = ca;
	ro.max_retries = -1;
	rc = registry_new(&r, &ro);
	if (!rc)
		rc = pcache_open(&pc, cache_dir, cache_max);
	if (!rc)
		rc = resolve(r, repo, ref, platform, &m);
	if (!rc)
		rc = image_new(&img, r, repo, m, pc); /* takes m */
	if (rc) {
		fprintf(stderr, "acrfs-image: %s\n", strerror(-rc));
		goto out;
	}
	if (layer_n >= 0 && !cat) {
		struct layer *l = image_layer(img, (size_t)layer_n);

		if (!l) {
			fprintf(stderr, "acrfs-image: the image has %zu layers\n",
				image_nlayers(img));
			goto out;
		}
		rc = layer_load(l);
		if (!rc)
			rc = list_dir(layer_tree(l), tree_root(layer_tree(l)), "");
	} else {
		const struct tree *t;

		rc = image_rootfs(img, &t);
		if (!rc)
			rc = cat ? cat_file(img, t, cat) : list_dir(t, tree_root(t), "");
	}
	if (fflush(stdout))
		rc = -EIO;
	if (rc) {
		fprintf(stderr, "acrfs-image: %s\n", strerror(-rc));
		goto out;
	}
	ret = 0;
out:
	if (stats && r) {
		struct layer_stats tot = { 0 };
		size_t k;

		for (k = 0; img && k < image_nlayers(img); k++) {
			struct layer_stats st;

			layer_stats(image_layer(img, k), &st);
			tot.stream_bytes += st.stream_bytes;
			tot.range_bytes += st.range_bytes;
			tot.range_requests += st.range_requests;
			tot.local_bytes += st.local_bytes;
			tot.loads_blob += st.loads_blob;
			tot.loads_index += st.loads_index;
			tot.index_rejected += st.index_rejected;
			tot.load_cpu_recv_us += st.load_cpu_recv_us;
			tot.load_cpu_decode_us += st.load_cpu_decode_us;
		}
		fprintf(stderr,
			"stats: time %.3f s, requests %" PRIu64 ", blob bytes fetched %" PRIu64
			" (streamed %" PRIu64 ", ranged %" PRIu64 " in %" PRIu64
			" requests), local %" PRIu64 ", layers from blob %" PRIu64
			", from index %" PRIu64 ", index rebuilt %" PRIu64
			"; load CPU: receiving %.2f s, decoding %.2f s\n",
			now() - t0, registry_request_count(r), registry_blob_bytes_fetched(r),
			tot.stream_bytes, tot.range_bytes, tot.range_requests, tot.local_bytes,
			tot.loads_blob, tot.loads_index, tot.index_rejected,
			(double)tot.load_cpu_recv_us / 1e6, (double)tot.load_cpu_decode_us / 1e6);
	}
	image_unref(img);
	pcache_free(pc);
	registry_free(r);
	free(url);
	free(host);
	return ret;
}
