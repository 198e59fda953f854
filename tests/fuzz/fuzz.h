/*
 * fuzz.h — what the fuzz targets (tests/fuzz/fuzz_<name>.c) share.
 *
 * Each target defines LLVMFuzzerTestOneInput and is linked twice: with
 * libFuzzer (`make fuzz`, clang-14, build/fuzz/bin/fuzz_<name>) and with
 * tests/fuzz/replay.c (every build, $(BUILD)/fuzz/replay_<name>), which feeds
 * it the files of tests/fuzz/corpus/<name>/ for `make check`.
 *
 * A target checks what the headers of the code under test promise; a broken
 * promise is FUZZ_CHECK → abort(), which libFuzzer and the replay driver
 * report as a crash of that input. Everything here is for one thread.
 */
#ifndef ACRFS_TESTS_FUZZ_H
#define ACRFS_TESTS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "image/tree.h"

/* libFuzzer's entry points (the targets define them, libFuzzer calls them). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed);
/* libFuzzer's own mutator, for custom mutators to call first. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* Report `what` (with file:line) through the sanitizer when there is one,
 * else stderr, and abort. */
void fuzz_fail(const char *file, int line, const char *what)
	__attribute__((noreturn));
#define FUZZ_CHECK(cond)                                          \
	do {                                                      \
		if (!(cond))                                      \
			fuzz_fail(__FILE__, __LINE__, #cond);     \
	} while (0)

/*
 * Once per process: the log level (ACRFS_FUZZ_LOG=error|warn|info|debug,
 * default debug, so that every log line is formatted from hostile data too).
 */
void fuzz_setup(void);

/* Append the whole file `path` to `b`. 0 or -errno. */
int fuzz_read_file(const char *path, struct buf *b);

/* The little-endian u64 at p (the cache files' header fields). */
uint64_t fuzz_le64(const unsigned char *p);

/* A writable copy of the input (free it). */
unsigned char *fuzz_dup(const uint8_t *data, size_t size);
/* Set the SHA-256 that ends a cache file (of all bytes before it) right, so
 * that mutations reach the decoder. Inputs shorter than it are left. */
void fuzz_fix_sha256(unsigned char *d, size_t size);

/*
 * A zran_read_fn serving the `n` bytes at `p` (ctx: a struct fuzz_src) and
 * recording the range of compressed offsets asked for in [lo, hi) (set lo to
 * UINT64_MAX and hi to 0 before the reads to watch).
 */
struct fuzz_src {
	const uint8_t *p;
	size_t n;
	uint64_t lo, hi;
};
ssize_t fuzz_src_read(void *ctx, void *buf, size_t len, uint64_t off);

/* FNV-1a over `n` bytes, continuing `h` (start with FUZZ_HASH_INIT). */
#define FUZZ_HASH_INIT 14695981039346656037ull
uint64_t fuzz_hash(uint64_t h, const void *p, size_t n);

/*
 * A sparse map as tar.h promises it: sorted, not overlapping, inside the
 * file, stored back to back adding up to `stored_size`; tar_sparse_locate
 * covers [0, size) in at most 2n + 1 steps that stay inside the stored data.
 */
void fuzz_check_sparse(const struct tar_sparse *map, size_t n, uint64_t size,
		       uint64_t stored_size);

/*
 * Walk every node of `t` without recursion and check tree.h's promises:
 * lookups, ids and parents agree with readdir; directories' nlink is 2 +
 * subdirectories and other nodes' nlink their number of names; every live
 * node is reachable; names are plain (no '/', ".", ".."; no ".wh." when
 * `merged`); attr.layer <= max_layer; regular files' stored bytes end at or
 * before `data_end`; symlinks' size is their target's length; sparse maps
 * pass fuzz_check_sparse. Returns a hash of everything seen (names, attributes, ids,
 * order), equal for equal trees.
 */
uint64_t fuzz_check_tree(const struct tree *t, bool merged, unsigned max_layer,
			 uint64_t data_end);

/*
 * The tar target's input holds one or more layers, each a tar, separated
 * by FUZZ_LAYER_SEP. Splits [data, data + size) into at most `max` parts
 * (the last part keeps any further separators); returns the count (>= 1).
 */
#define FUZZ_LAYER_SEP "\n--acrfs-fuzz-next-layer--\n"
struct fuzz_part {
	const uint8_t *p;
	size_t n;
};
size_t fuzz_split_layers(const uint8_t *data, size_t size, struct fuzz_part *parts,
			 size_t max);

/*
 * Deterministic gzip samples the zran target reads through (and mkindex
 * indexes, to make its seeds): FUZZ_GZIP_SAMPLES of them, sample 0 one gzip
 * member, sample 1 three members. `gz` gets the compressed bytes, `plain`
 * (may be NULL) the uncompressed ones. Aborts on allocation failure.
 */
#define FUZZ_GZIP_SAMPLES 2
#define FUZZ_ZRAN_SPAN (64u << 10)
void fuzz_gzip_sample(unsigned which, struct buf *gz, struct buf *plain);

#endif
