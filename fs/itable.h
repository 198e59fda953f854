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
struct budget;

struct inode {
	uint64_t ino;
	int kind;      /* caller-defined */
	uint32_t hash; /* private: of key, for the key chains */
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

/*
 * The table's memory (nodes with their strings, hash slots), in bytes.
 * Approximate: malloc's own rounding and headers are estimated.
 */
uint64_t itable_bytes(struct itable *t);

/*
 * Count the table's memory in budget `b` (image/budget.h) as memory it
 * cannot give back on demand (the kernel holds the inodes): when the table
 * grows, other units are evicted, and their owners tell the kernel to drop
 * their entries, whose inodes it then forgets. Once, before any other use;
 * NULL: not counted. itable_free uncharges it.
 *
 * The first ITABLE_UNCOUNTED bytes (the root's buckets and some 7,000
 * names) are not counted: they belong to the daemon's fixed overhead, as
 * its threads and buffers do.
 *
 * itable_charge brings the charge up to date when what is counted moved by
 * ITABLE_CHARGE_STEP bytes or more since the last charge (else it returns
 * at once): called by the FUSE edge after a request that may have added or
 * dropped inodes, with no lock held (a charge may run evictions). Never
 * from itable_ref or itable_forget themselves, whose callers may hold
 * locks an eviction takes.
 */
#define ITABLE_UNCOUNTED (1u << 20)
#define ITABLE_CHARGE_STEP (256u << 10)
void itable_set_budget(struct itable *t, struct budget *b);
void itable_charge(struct itable *t);

#endif
