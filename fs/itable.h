/*
 * itable — inode numbers for the FUSE edge.
 *
 * Each inode has a stable identity `key` (a string the caller composes,
 * e.g. "D" + registry path) so that repeated lookups of the same thing give
 * the same inode number, and a lookup count the kernel drives (lookup,
 * readdirplus: +1; forget: -n). An inode whose count drops to zero is freed,
 * except the root (ino 1), which lives as long as the table.
 *
 * struct inode's fields other than nlookup are immutable after creation, so
 * a caller holding an inode the kernel has not forgotten may read them
 * without a lock. Thread-safe.
 */
#ifndef ACRFS_ITABLE_H
#define ACRFS_ITABLE_H

#include <stdint.h>

struct itable;

struct inode {
	uint64_t ino;
	int kind;      /* caller-defined */
	char *key;     /* identity, unique in the table */
	char *a;       /* caller payload (e.g. registry path / repository) */
	char *b;       /* caller payload (e.g. tag), may be NULL */
	uint64_t nlookup; /* guarded by the table's lock */
	struct inode *next_ino, *next_key; /* private: hash chains */
};

/* Creates the root: ino 1, kind `root_kind`, key `root_key`, a = "". */
int itable_new(struct itable **out, int root_kind, const char *root_key);
void itable_free(struct itable *t);

/*
 * Find the inode with `key`, or create it (kind, a, b copied), and add one
 * lookup reference. 0 with *out, or -ENOMEM.
 */
int itable_ref(struct itable *t, const char *key, int kind, const char *a, const char *b,
	       struct inode **out);

/* The inode `ino`, or NULL. Borrowed until the kernel forgets it. */
struct inode *itable_get(struct itable *t, uint64_t ino);

/* Drop `n` lookup references; frees the inode at zero (never the root). */
void itable_forget(struct itable *t, uint64_t ino, uint64_t n);

/* Number of live inodes (for tests). */
uint64_t itable_count(struct itable *t);

#endif
