/*
 * acrfs-zcat — drive image/zran from the command line.
 *
 *   acrfs-zcat FILE.gz [--span BYTES] [--index-out F] [--stats]
 *       Stream FILE.gz once, writing the uncompressed bytes to stdout while
 *       building the access-point index (saved to F if asked).
 *   acrfs-zcat FILE.gz --offset N --length M [--index F] [--reader] [--stats]
 *       Print M uncompressed bytes at offset N. The index comes from F (as
 *       written by --index-out) or, without --index, is built first with no
 *       output. --reader reads through a zran_reader in 128 KiB preads (the
 *       way a FUSE open file would) instead of one zran_read call.
 *
 *   acrfs-zcat FILE.gz --bench [--span BYTES]
 *       Micro benchmark: CPU seconds to build the index (1 MiB reads of the
 *       file fed as they come, no sink), then to read everything back
 *       through a zran_reader in 128 KiB preads of the file; MB/s of output.
 *
 * --engine zlib|isa-l picks the inflate engine (default: ISA-L when built
 * in). --stats prints to stderr: sizes, points, index memory and file size,
 * time, and for --offset the compressed bytes read to serve the request.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image/zran.h"

struct src {
	int fd;
	uint64_t bytes_read;
	uint64_t calls;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static ssize_t src_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct src *s = ctx;
	ssize_t n = pread(s->fd, buf, len, (off_t)off);

	if (n < 0)
		return -errno;
	s->bytes_read += (uint64_t)n;
	s->calls++;
	return n;
}

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

static int sink_stdout(void *ctx, const void *data, size_t n)
{
	(void)ctx;
	return write_all(1, data, n);
}

static int read_file(const char *path, struct buf *out)
{
	char tmp[65536];
	int fd = open(path, O_RDONLY), rc = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, tmp, sizeof(tmp))) > 0) {
		rc = buf_add(out, tmp, (size_t)n);
		if (rc)
			break;
	}
	if (n < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench(struct src *s, uint32_t span)
{
	static unsigned char in[1u << 20];
	struct zran_builder *b = NULL;
	struct zran_index *idx = NULL;
	struct zran_reader *r = NULL;
	unsigned char *out = malloc(128u << 10);
	uint64_t off, usize = 0;
	double t0, tb, tr = 0;
	ssize_t n;
	int rc = out ? zran_builder_new(&b, span) : -ENOMEM;

	t0 = cpu_now();
	while (!rc && (n = read(s->fd, in, sizeof(in))) != 0) {
		rc = n < 0 ? -errno : zran_builder_feed(b, in, (size_t)n, NULL, NULL);
	}
	if (!rc)
		rc = zran_builder_finish(b, &idx);
	tb = cpu_now() - t0;
	if (!rc) {
		usize = zran_index_usize(idx);
		rc = zran_reader_new(&r, idx, src_read, s);
	}
	t0 = cpu_now();
	for (off = 0; !rc && off < usize; off += (uint64_t)n) {
		n = zran_reader_pread(r, off, out, 128u << 10);
		if (n <= 0)
			rc = n < 0 ? (int)n : -EIO;
	}
	tr = cpu_now() - t0;
	if (!rc)
		printf("%s: build %.3f s CPU (%.0f MB/s of output), %zu points; sequential read "
		       "%.3f s CPU (%.0f MB/s)\n",
		       zran_engine_name(zran_engine_get()), tb, (double)usize / 1e6 / tb,
		       zran_index_npoints(idx), tr, (double)usize / 1e6 / tr);
	zran_reader_free(r);
	zran_index_free(idx);
	zran_builder_free(b);
	free(out);
	return rc;
}

static int build(int fd, uint32_t span, bool emit, struct zran_index **idx)
{
	static unsigned char in[1 << 18];
	struct zran_builder *b;
	ssize_t n;
	int rc;

	rc = zran_builder_new(&b, span);
	if (rc)
		return rc;
	while ((n = read(fd, in, sizeof(in))) > 0) {
		rc = zran_builder_feed(b, in, (size_t)n, emit ? sink_stdout : NULL, NULL);
		if (rc)
			break;
	}
	if (n < 0)
		rc = -errno;
	if (!rc)
		rc = zran_builder_finish(b, idx);
	zran_builder_free(b);
	return rc;
}

static void usage(void)
{
	fprintf(stderr, "usage: acrfs-zcat FILE.gz [--span BYTES] [--index-out F] [--stats]\n"
			"       acrfs-zcat FILE.gz --offset N --length M [--index F] [--reader] "
			"[--stats]\n"
			"       acrfs-zcat FILE.gz --bench [--span BYTES]\n"
			"       (each with [--engine zlib|isa-l])\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *file = NULL, *index_out = NULL, *index_in = NULL;
	uint64_t offset = 0, length = 0;
	bool have_offset = false, stats = false, use_reader = false, do_bench = false;
	uint32_t span = 0;
	struct zran_index *idx = NULL;
	struct src s = { -1, 0, 0 };
	double t0, t1;
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--index-out") && i + 1 < argc)
			index_out = argv[++i];
		else if (!strcmp(argv[i], "--index") && i + 1 < argc)
			index_in = argv[++i];
		else if (!strcmp(argv[i], "--offset") && i + 1 < argc) {
			offset = strtoull(argv[++i], NULL, 0);
			have_offset = true;
		} else if (!strcmp(argv[i], "--length") && i + 1 < argc)
			length = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--span") && i + 1 < argc)
			span = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--stats"))
			stats = true;
		else if (!strcmp(argv[i], "--reader"))
			use_reader = true;
		else if (!strcmp(argv[i], "--bench"))
			do_bench = true;
		else if (!strcmp(argv[i], "--engine") && i + 1 < argc) {
			const char *e = argv[++i];

			if (zran_engine_set(!strcmp(e, "zlib") ? ZRAN_ENGINE_ZLIB
				: !strcmp(e, "isa-l") || !strcmp(e, "isal") ? ZRAN_ENGINE_ISAL
				: (enum zran_engine)-1)) {
				fprintf(stderr, "acrfs-zcat: engine %s: not available\n", e);
				return 2;
			}
		}
		else if (argv[i][0] == '-' || file)
			usage();
		else
			file = argv[i];
	}
	if (!file)
		usage();
	s.fd = open(file, O_RDONLY);
	if (s.fd < 0) {
		perror(file);
		return 1;
	}

	if (do_bench) {
		rc = bench(&s, span);
		if (rc)
			fprintf(stderr, "acrfs-zcat: %s: %s\n", file, strerror(-rc));
		return rc ? 1 : 0;
	}
	t0 = now();
	if (index_in) {
		struct buf raw = BUF_INIT;

		rc = read_file(index_in, &raw);
		if (!rc)
			rc = zran_index_load(&idx, raw.data, raw.len);
		buf_release(&raw);
		if (rc) {
			fprintf(stderr, "acrfs-zcat: %s: %s\n", index_in, strerror(-rc));
			return 1;
		}
	} else {
		rc = build(s.fd, span, !have_offset, &idx);
		if (rc) {
			fprintf(stderr, "acrfs-zcat: %s: %s\n", file, strerror(-rc));
			return 1;
		}
	}
	t1 = now();
	if (stats)
		fprintf(stderr,
			"index: %s in %.3f s; usize %" PRIu64 " csize %" PRIu64
			" points %zu span %u memory %zu bytes",
			index_in ? "loaded" : "built", t1 - t0, zran_index_usize(idx),
			zran_index_csize(idx), zran_index_npoints(idx), zran_index_span(idx),
			zran_index_memsize(idx));
	if (index_out || stats) {
		struct buf ser = BUF_INIT;

		rc = zran_index_save(idx, &ser);
		if (!rc && index_out) {
			int fd = open(index_out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

			rc = fd < 0 ? -errno : write_all(fd, ser.data, ser.len);
			if (fd >= 0 && close(fd) && !rc)
				rc = -errno;
		}
		if (stats)
			fprintf(stderr, " serialized %zu bytes", ser.len);
		buf_release(&ser);
		if (rc) {
			fprintf(stderr, "\nacrfs-zcat: %s: %s\n", index_out, strerror(-rc));
			return 1;
		}
	}
	if (stats) {
		if (!index_in && !have_offset)
			fprintf(stderr, "; %.1f MB/s of output",
				(double)zran_index_usize(idx) / 1e6 / (t1 - t0));
		fputc('\n', stderr);
	}

	if (have_offset) {
		size_t chunk = use_reader ? (128u << 10) : (size_t)length;
		unsigned char *out = malloc(chunk ? chunk : 1);
		struct zran_reader *r = NULL;
		uint64_t done = 0;

		if (!out || (use_reader && zran_reader_new(&r, idx, src_read, &s))) {
			fprintf(stderr, "acrfs-zcat: out of memory\n");
			return 1;
		}
		t0 = now();
		while (done < length) {
			size_t want = length - done < chunk ? (size_t)(length - done) : chunk;
			ssize_t n = r ? zran_reader_pread(r, offset + done, out, want)
				      : zran_read(idx, src_read, &s, offset + done, out, want);

			if (n < 0) {
				fprintf(stderr, "acrfs-zcat: read at %" PRIu64 ": %s\n",
					offset + done, strerror((int)-n));
				return 1;
			}
			if (n == 0)
				break;
			if (write_all(1, out, (size_t)n))
				return 1;
			done += (uint64_t)n;
		}
		t1 = now();
		if (stats)
			fprintf(stderr,
				"read: %" PRIu64 " bytes at %" PRIu64 " in %.4f s; compressed bytes "
				"read %" PRIu64 " in %" PRIu64 " calls\n",
				done, offset, t1 - t0, s.bytes_read, s.calls);
		zran_reader_free(r);
		free(out);
	}
	zran_index_free(idx);
	close(s.fd);
	return 0;
}
