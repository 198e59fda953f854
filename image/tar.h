/*
 * tar — a push (streaming) tar parser that never buffers file data.
 *
 * The caller feeds the uncompressed bytes of a layer in chunks of any size
 * (1 byte to megabytes) as the decompressor produces them; for every entry
 * the parser calls back once its header (and any preceding GNU L/K or PAX x
 * records) is complete. The entry carries the offset of its data in the
 * uncompressed stream, so contents can later be read by offset without a
 * second parse.
 *
 * Dialects: v7, ustar (prefix + name), GNU (L/K long names, base-256
 * numbers, old 'S' sparse with extension headers), PAX (x records; g records
 * are validated and then ignored, as Go's archive/tar — hence docker,
 * containerd and umoci — ignore them), GNU PAX sparse 0.0, 0.1 and 1.0.
 * Header-only types (hard link, symlink, devices, directory, fifo) never have
 * data, whatever their size field says (Go's rule, so the layout matches
 * what docker extracts).
 *
 * Hostile input: every record is bounded (TAR_MAX_NAME, TAR_MAX_PAX,
 * TAR_MAX_ENTRY_SIZE, TAR_MAX_XATTRS, TAR_MAX_XATTR_ENTRY, TAR_MAX_SPARSE),
 * and so is what one archive may hand out in all (TAR_MAX_ENTRIES,
 * TAR_MAX_XATTR_LAYER); exceeding a bound is a fatal error (-E2BIG, -EFBIG)
 * logged as "absurd size" with the bound's name. Paths are normalised
 * (leading "/" and "./" stripped, "//" and "." collapsed, ".." resolved); an
 * entry whose path or hard-link target escapes the root, or whose PAX path or
 * linkpath holds a NUL byte, is skipped with a log line, not fatal. An xattr
 * no kernel could serve (empty name, a NUL in it, a name longer than
 * TAR_XATTR_NAME_MAX, a value longer than TAR_XATTR_SIZE_MAX) is dropped with
 * a log line. An owner id that is not a valid uid_t (negative, or at least
 * 2^32 - 1) becomes TAR_ID_OVERFLOW, as the kernel shows an id it cannot map.
 * Skipped entries and dropped xattrs are logged TAR_LOG_SKIPS times per
 * archive at most (a hostile layer must not flood the log); the rest are
 * counted in one line at tar_parser_finish.
 *
 * A parser belongs to one thread at a time. Nothing blocks.
 */
#ifndef ACRFS_TAR_H
#define ACRFS_TAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on metadata; exceeding one is fatal (-E2BIG or -EFBIG). */
#define TAR_MAX_NAME (64u * 1024)              /* L/K records, PAX path/linkpath */
#define TAR_MAX_PAX (1024u * 1024)             /* one x/g record, or a sparse map */
#define TAR_MAX_ENTRY_SIZE (1ull << 46)        /* 64 TiB: stored or real size */
#define TAR_MAX_XATTRS 1024u                   /* per entry */
#define TAR_MAX_XATTR_ENTRY (1024u * 1024)     /* xattr bytes (names + values) per
                                                  entry: what one PAX record holds */
#define TAR_MAX_SPARSE (256u * 1024)           /* segments per sparse map */
/* Bounds on one archive (one layer) as a whole. */
#define TAR_MAX_ENTRIES (1u << 20)             /* entries handed to the callback */
#define TAR_MAX_XATTR_LAYER (64u << 20)        /* xattr bytes of those entries */

/* What the kernel can serve; an xattr beyond these is dropped (logged). */
#define TAR_XATTR_NAME_MAX 255u                /* XATTR_NAME_MAX */
#define TAR_XATTR_SIZE_MAX 65536u              /* XATTR_SIZE_MAX */
#define TAR_ID_OVERFLOW 65534u                 /* the kernel's overflowuid/gid */
#define TAR_LOG_SKIPS 20u                      /* skip log lines per archive */

enum tar_type {
	TAR_REG = 0,   /* '0', '\0', '7', 'S' (sparse), unknown types */
	TAR_HARDLINK,  /* '1': linkname is a normalised path of an earlier entry */
	TAR_SYMLINK,   /* '2': linkname is the raw target */
	TAR_CHR,       /* '3' */
	TAR_BLK,       /* '4' */
	TAR_DIR,       /* '5', 'D', or '\0' with a name ending in '/' */
	TAR_FIFO,      /* '6' */
};

struct tar_xattr {
	const char *name;  /* NUL-terminated, e.g. "security.capability" */
	const void *value; /* binary, may contain NUL bytes */
	size_t value_len;
};

/*
 * One data segment of a sparse file: `length` bytes at logical `offset` are
 * stored at `data_offset + stored` in the stream. Segments are sorted by
 * offset, don't overlap, and are stored back to back (stored of segment i+1
 * = stored + length of segment i). Logical bytes not covered are zeros.
 */
struct tar_sparse {
	uint64_t offset;
	uint64_t length;
	uint64_t stored;
};

/*
 * An entry as the callback sees it. Every pointer is borrowed from the
 * parser and valid only during the callback.
 */
struct tar_entry {
	const char *path;     /* normalised, no leading '/', "" = the root itself */
	const char *linkname; /* symlink target (raw) or hard-link target
	                         (normalised); "" for other types */
	enum tar_type type;
	char typeflag;        /* the raw header byte */
	uint32_t mode;        /* permission bits incl. setuid/setgid/sticky (07777) */
	uint32_t uid, gid;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint64_t size;        /* logical size (the real size of a sparse file);
	                         0 for header-only types */
	uint64_t data_offset; /* offset of the stored data in the stream */
	uint64_t stored_size; /* bytes stored at data_offset (< size if sparse) */
	uint32_t devmajor, devminor;
	const struct tar_xattr *xattrs;
	size_t nxattrs;
	const struct tar_sparse *sparse; /* NULL unless the entry is sparse */
	size_t nsparse;
};

/*
 * Called once per entry, in archive order. Return 0 to continue or -errno
 * to stop: the parser then fails with that error (sticky).
 */
typedef int (*tar_entry_cb)(void *ctx, const struct tar_entry *e);

struct tar_parser;

/* 0 or -ENOMEM; *out = NULL on failure. `cb` is required. */
int tar_parser_new(struct tar_parser **out, tar_entry_cb cb, void *ctx);
void tar_parser_free(struct tar_parser *p);

/*
 * Push `len` bytes of the archive. Calls the callback zero or more times.
 * Returns 0, -EIO (malformed: bad checksum, bad number, bad PAX record, bad
 * sparse map), -E2BIG / -EFBIG (a bound exceeded, logged with its name),
 * -ENOMEM, or the callback's error. Errors are sticky: later calls return the
 * same error.
 * Bytes after the end-of-archive marker are ignored.
 */
int tar_parser_feed(struct tar_parser *p, const void *data, size_t len);

/*
 * The input is complete. 0 if the archive ended properly: two zero blocks,
 * one zero block and EOF, or EOF at a header boundary (tolerated, as docker
 * does). -EIO, with a log line naming the entry, if it ends inside a header,
 * an entry's data, its padding or an extension record. Returns the sticky
 * error if feeding failed.
 */
int tar_parser_finish(struct tar_parser *p);

/* Bytes consumed so far (the stream offset the parser is at). */
uint64_t tar_parser_offset(const struct tar_parser *p);

/*
 * Locate logical offset `off` of a sparse file of logical `size` with map
 * `map[n]`. Returns the number of bytes from `off` that are uniformly data
 * (*hole = false, *stored = their position relative to the entry's
 * data_offset) or uniformly hole (*hole = true, *stored untouched); 0 when
 * off >= size. O(log n). Thread-safe (pure).
 */
uint64_t tar_sparse_locate(const struct tar_sparse *map, size_t n, uint64_t size,
			   uint64_t off, uint64_t *stored, bool *hole);

/*
 * Normalise a tar path into `out` (capacity `outsz`): strip leading '/',
 * collapse "//" and ".", resolve "..". Returns the length, -EPERM if ".."
 * would escape the root, -ENAMETOOLONG if it doesn't fit. "" means the root.
 * Exposed for tree and tests. Pure.
 */
int tar_path_normalize(const char *in, size_t inlen, char *out, size_t outsz);

#endif
