/*
 * tree — layer trees and the merged rootfs.
 *
 * Design note. A tree is three flat structures plus an arena:
 *
 *   nodes    the inodes, in chunks that never move, so that a `struct
 *            tree_node *` handed out stays valid while the tree grows;
 *            index i has id i + 1 (index 0 is the root). Chunk 0 holds
 *            2^shift nodes, chunk k >= 1 the next 2^(shift + k - 1): the
 *            capacity doubles with each chunk, and a node's chunk is one
 *            count-leading-zeros away. A removed node stays allocated but
 *            is marked dead (ids are never reused).
 *   dents    the names: {name, parent dir, node} plus links for the parent's
 *            child list (insertion order, doubly linked, for readdir and
 *            removal) and for one hash chain. Index 0 is "none".
 *   buckets  ONE hash table for the whole tree keyed by (parent index, name),
 *            so no directory owns a table: a directory of 3 entries costs
 *            nothing extra and one of 100k entries is still O(1) per lookup;
 *            the hash is keyed at random per tree, so that names crafted to
 *            collide cannot turn that into O(n).
 *   arena    bump allocation for names, symlink targets, xattrs and sparse
 *            maps: no per-name malloc, freed all at once.
 *
 * A hard link to a path the layer does not have is a hidden node (`lower`)
 * listed in `lowers` with its target path: the public readers never return
 * it, tree_merge resolves it against the tree merged so far.
 *
 * Memory. A tree whose size is known in advance (tree_new_hint: the index
 * file says how many entries it holds, a merge how many nodes its layers
 * have) gets its nodes, names, buckets and arena in one allocation each,
 * with no regrowth (no rehash, no copy). Fresh memory costs a page fault per
 * 4 KiB on first touch, which on a virtual machine is most of what building
 * a tree costs; regions of 2 MiB or more are therefore mapped aligned and
 * advised MADV_HUGEPAGE (one fault per 2 MiB where the kernel allows it).
 * Untouched pages of a region cost nothing, so a hint larger than the tree
 * only reserves address space.
 *
 * Bounds (tree.h): node_alloc, add_dent and arena_alloc refuse to grow past
 * TREE_MAX_NODES / TREE_MAX_ARENA; the first refusal is logged and marks the
 * tree `over`, so that the callers' failure is -E2BIG, not -ENOMEM.
 *
 * Directories are never hard-linked, so a directory node has exactly one
 * dentry (`self`) and one parent; a directory's node is always created
 * before its children's (an index property the merge relies on). Subtree
 * removal and the merge walk use explicit stacks, never recursion, so a
 * hostile 30 000-level path cannot overflow the C stack.
 *
 * Trees are built by one thread and immutable afterwards (see tree.h).
 */
#include "image/tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"

#define NIL 0u
#define CHUNK_SHIFT 10 /* chunk 0's nodes without a hint: 2^10 */
#define MAX_CHUNKS 33  /* 2^shift * 2^(MAX_CHUNKS - 1) >= 2^32 indexes */
#define ARENA_CHUNK (64u * 1024)
#define ARENA_CHUNK_MAX (4u << 20) /* arena chunks grow with the arena up to this */
#define MAX_INDEX 0xfffffffeu
#define HUGE_SIZE ((size_t)2 << 20) /* regions this large are huge-page advised */

struct tree_node {
	struct tree_attr a;
	uint32_t parent; /* dirs: parent dir index (root: 0) */
	uint32_t self;   /* dirs: the dentry naming it (root: NIL) */
	uint32_t first, last; /* dirs: child dentries */
	bool dead;
	bool lower; /* a hard link to a lower layer's file: hidden */
};

/* A hidden node and the path (normalised, in the arena) it links to. */
struct lower_link {
	uint32_t node;
	const char *target;
};

struct dent {
	const char *name;
	uint32_t parent;
	uint32_t node;
	uint32_t hnext;
	uint32_t next, prev;
	uint32_t hash;
};

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	size_t bytes; /* of the whole allocation, for region_free */
	/* data follows, max-aligned */
	max_align_t data[];
};

struct tree {
	struct tree_node *chunk[MAX_CHUNKS]; /* see the design note */
	unsigned nchunks;
	unsigned shift;      /* chunk 0 holds 2^shift nodes */
	uint32_t nnodes;
	size_t live;
	struct dent *dents;  /* [0] unused */
	uint32_t ndents;
	size_t dents_cap;    /* dentries dents has room for */
	uint32_t *buckets;
	uint32_t nbuckets;   /* power of two */
	uint64_t key[2];     /* hash_name's, random per tree */
	struct arena_chunk *arena;
	size_t arena_bytes;
	size_t arena_used;   /* bytes handed out, counted against TREE_MAX_ARENA */
	struct buf lowers;   /* struct lower_link[] */
	uint32_t max_nodes;  /* TREE_MAX_NODES unless tree_set_bounds lowered it */
	size_t max_arena;    /* TREE_MAX_ARENA, likewise */
	bool over;           /* a bound was hit (logged): failures are -E2BIG */
	unsigned nskips;     /* skip log lines written */
	/* Building: the directory the last entry with a '/' went to, and its
	 * path (walk_parents). */
	struct buf pdir_path;
	uint32_t pdir;
	bool pdir_ok;
	uint32_t restored; /* tree_restore_node: nodes given so far */
};

/* ---- memory ------------------------------------------------------------ */

/*
 * `n` zeroed bytes (NULL on failure), freed with region_free(p, n). A region
 * of HUGE_SIZE or more is its own mapping, aligned to and advised for huge
 * pages (see the design note). Under AddressSanitizer everything comes from
 * calloc, so that its checks see every region.
 */
static void *region_alloc(size_t n)
{
#ifndef __SANITIZE_ADDRESS__
	if (n >= HUGE_SIZE) {
		size_t len = (n + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1);
		char *p = mmap(NULL, len + HUGE_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		size_t lead;

		if (p == MAP_FAILED)
			return NULL;
		lead = (HUGE_SIZE - ((uintptr_t)p & (HUGE_SIZE - 1))) & (HUGE_SIZE - 1);
		if (lead)
			munmap(p, lead);
		if (HUGE_SIZE - lead)
			munmap(p + lead + len, HUGE_SIZE - lead);
		(void)madvise(p + lead, len, MADV_HUGEPAGE); /* advice: may be refused */
		return p + lead;
	}
#endif
	return calloc(1, n ? n : 1);
}

static void region_free(void *p, size_t n)
{
	(void)n; /* unused under AddressSanitizer */
	if (!p)
		return;
#ifndef __SANITIZE_ADDRESS__
	if (n >= HUGE_SIZE) {
		munmap(p, (n + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1));
		return;
	}
#endif
	free(p);
}

/* ---- small helpers ---------------------------------------------------- */

/* Chunk k's first index and size in nodes (see the design note). */
static uint64_t chunk_start(const struct tree *t, unsigned k)
{
	return k ? (uint64_t)1 << (t->shift + k - 1) : 0;
}

static uint64_t chunk_nodes(const struct tree *t, unsigned k)
{
	return (uint64_t)1 << (t->shift + (k ? k - 1 : 0));
}

static struct tree_node *N(const struct tree *t, uint32_t i)
{
	uint32_t q = i >> t->shift;
	unsigned k = q ? 32 - (unsigned)__builtin_clz(q) : 0;

	return &t->chunk[k][i - chunk_start(t, k)];
}

static struct dent *D(const struct tree *t, uint32_t i)
{
	return &t->dents[i];
}

static uint32_t idx_of(const struct tree_node *n)
{
	return (uint32_t)(n->a.id - 1);
}

static bool is_dir(const struct tree_node *n)
{
	return S_ISDIR(n->a.mode);
}

static bool is_whiteout(const char *name)
{
	return !strncmp(name, ".wh.", 4);
}

static const char *safe(const char *s, char *out, size_t n)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < n; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	out[i] = '\0';
	return out;
}

/* May a skipped entry be logged? TREE_LOG_SKIPS per tree, then one line
 * saying the rest are not. */
static bool skip_log_ok(struct tree *t)
{
	if (t->nskips > TREE_LOG_SKIPS)
		return false;
	if (t->nskips++ < TREE_LOG_SKIPS)
		return true;
	log_warn("tree: more than %u entries skipped; the rest are not logged", TREE_LOG_SKIPS);
	return false;
}

#define SKIP_LOG(t, ...)                        \
	do {                                    \
		if (skip_log_ok(t))             \
			log_warn(__VA_ARGS__);  \
	} while (0)

/* A bound of tree.h is hit: log it once per tree. Returns -E2BIG. */
static int over(struct tree *t, const char *what, size_t bound, const char *name)
{
	if (!t->over)
		log_error("tree: absurd size: more than %zu %s (%s); the layer or rootfs is "
			  "refused",
			  bound, what, name);
	t->over = true;
	return -E2BIG;
}

/* What a failed arena allocation means. */
static int nomem(const struct tree *t)
{
	return t->over ? -E2BIG : -ENOMEM;
}

/* The size of the next arena chunk: half what the arena holds, so that a
 * big tree needs few chunks, within [ARENA_CHUNK, ARENA_CHUNK_MAX]. */
static size_t arena_next(const struct tree *t)
{
	size_t cap = t->arena_bytes / 2;

	if (cap < ARENA_CHUNK)
		return ARENA_CHUNK;
	return cap > ARENA_CHUNK_MAX ? ARENA_CHUNK_MAX : cap;
}

/* Start the arena with one chunk of `n` bytes (a hint; 0: nothing). */
static int arena_reserve(struct tree *t, size_t n)
{
	struct arena_chunk *c;

	if (n <= ARENA_CHUNK)
		return 0;
	if (n > t->max_arena)
		n = t->max_arena;
	c = region_alloc(sizeof(*c) + n);
	if (!c)
		return -ENOMEM;
	c->cap = n;
	c->used = 0;
	c->bytes = sizeof(*c) + n;
	c->next = t->arena;
	t->arena = c;
	t->arena_bytes += c->bytes;
	return 0;
}

static void *arena_alloc(struct tree *t, size_t n)
{
	struct arena_chunk *c = t->arena;
	size_t need = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	void *p;

	if (n > t->max_arena || t->arena_used + need > t->max_arena) {
		over(t, "bytes of names, link targets, xattrs and sparse maps", t->max_arena,
		     "TREE_MAX_ARENA");
		return NULL;
	}

	if (!c || c->cap - c->used < need) {
		size_t cap = need > ARENA_CHUNK / 4 ? need : arena_next(t);

		c = region_alloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->bytes = sizeof(*c) + cap;
		t->arena_bytes += sizeof(*c) + cap;
		if (cap == need && t->arena) {
			/* A big block: keep the current chunk for small ones. */
			c->next = t->arena->next;
			t->arena->next = c;
		} else {
			c->next = t->arena;
			t->arena = c;
		}
	}
	p = (char *)c->data + c->used;
	c->used += need;
	t->arena_used += need;
	return p;
}

static const char *arena_strndup(struct tree *t, const char *s, size_t n)
{
	char *p = arena_alloc(t, n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static void sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13) ^ v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17) ^ v[2];
	v[2] = rotl(v[2], 32);
}

/*
 * SipHash-1-3 (Aumasson and Bernstein) of a name under the tree's random
 * key, with its parent mixed into the key. Names are chosen by whoever built
 * the image: under a fixed hash they can be made to share one bucket, and
 * then a directory of a million of them costs a million steps per insertion.
 */
static uint32_t hash_name(const struct tree *t, uint32_t parent, const char *s, size_t n)
{
	uint64_t k0 = t->key[0] ^ parent, k1 = t->key[1];
	uint64_t v[4] = { k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull,
			  k0 ^ 0x6c7967656e657261ull, k1 ^ 0x7465646279746573ull };
	uint64_t m, last = (uint64_t)n << 56;
	size_t i, j;

	for (i = 0; i + 8 <= n; i += 8) {
		for (m = 0, j = 0; j < 8; j++)
			m |= (uint64_t)(unsigned char)s[i + j] << (8 * j);
		v[3] ^= m;
		sipround(v);
		v[0] ^= m;
	}
	for (j = 0; i + j < n; j++)
		last |= (uint64_t)(unsigned char)s[i + j] << (8 * j);
	v[3] ^= last;
	sipround(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	sipround(v);
	sipround(v);
	sipround(v);
	m = v[0] ^ v[1] ^ v[2] ^ v[3];
	return (uint32_t)(m ^ (m >> 32));
}

/* A key for hash_name: random, so nobody can choose names that collide. */
static void new_key(uint64_t key[2])
{
	struct timespec ts;

	if (getrandom(key, 2 * sizeof(*key), GRND_NONBLOCK) == (ssize_t)(2 * sizeof(*key)))
		return;
	/* No entropy yet (early boot): not secret, but different per tree. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)key;
	key[1] = (uint64_t)ts.tv_sec * 0xbf58476d1ce4e5b9ull ^ (uint64_t)getpid();
}

/* ---- nodes and names -------------------------------------------------- */

static int node_alloc(struct tree *t, uint32_t *out)
{
	uint32_t i = t->nnodes;
	struct tree_node *n;

	if (i >= MAX_INDEX || i >= t->max_nodes)
		return over(t, "nodes", t->max_nodes, "TREE_MAX_NODES");
	if (i == chunk_start(t, t->nchunks)) {
		if (t->nchunks == MAX_CHUNKS)
			return -ENOMEM;
		t->chunk[t->nchunks] =
			region_alloc(chunk_nodes(t, t->nchunks) * sizeof(struct tree_node));
		if (!t->chunk[t->nchunks])
			return -ENOMEM;
		t->nchunks++;
	}
	t->nnodes++;
	t->live++;
	n = N(t, i);
	memset(n, 0, sizeof(*n));
	n->a.id = (uint64_t)i + 1;
	*out = i;
	return 0;
}

static void set_implicit_dir(struct tree_node *n)
{
	uint64_t id = n->a.id;

	memset(&n->a, 0, sizeof(n->a));
	n->a.id = id;
	n->a.mode = S_IFDIR | 0755;
	n->a.nlink = 2;
	n->a.implicit = true;
}

/* Room for `n` dentries (index 0 included). 0 or -ENOMEM. */
static int dents_reserve(struct tree *t, size_t n)
{
	size_t cap = t->dents_cap ? t->dents_cap : 1024;
	struct dent *nd;

	if (n <= t->dents_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	if (cap > (size_t)MAX_INDEX + 1)
		cap = (size_t)MAX_INDEX + 1;
	nd = region_alloc(cap * sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	if (t->ndents)
		memcpy(nd, t->dents, t->ndents * sizeof(*nd));
	region_free(t->dents, t->dents_cap * sizeof(*nd));
	t->dents = nd;
	t->dents_cap = cap;
	return 0;
}

/* Rebuild the hash chains in a table of at least `want` buckets (and at
 * least twice the current one). */
static int rehash(struct tree *t, size_t want)
{
	uint32_t nb = t->nbuckets ? t->nbuckets * 2 : 1024, i;
	uint32_t *b;

	while (nb < want && nb < (1u << 31))
		nb *= 2;
	b = region_alloc((size_t)nb * sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (i = 1; i < t->ndents; i++) {
		struct dent *d = D(t, i);

		if (d->node == NIL && d->name == NULL)
			continue; /* removed */
		d->hnext = b[d->hash & (nb - 1)];
		b[d->hash & (nb - 1)] = i;
	}
	region_free(t->buckets, (size_t)t->nbuckets * sizeof(*b));
	t->buckets = b;
	t->nbuckets = nb;
	return 0;
}

/* The dentry `name[len]` of `dir` whose hash_name is `h`, or NIL. */
static uint32_t find_dent_h(const struct tree *t, uint32_t dir, const char *name,
			    size_t len, uint32_t h)
{
	uint32_t i;

	if (!t->nbuckets)
		return NIL;
	for (i = t->buckets[h & (t->nbuckets - 1)]; i != NIL; i = D(t, i)->hnext) {
		const struct dent *d = D(t, i);

		if (d->hash == h && d->parent == dir && !strncmp(d->name, name, len) &&
		    d->name[len] == '\0')
			return i;
	}
	return NIL;
}

static uint32_t find_dent(const struct tree *t, uint32_t dir, const char *name,
			  size_t len)
{
	return find_dent_h(t, dir, name, len, hash_name(t, dir, name, len));
}

/* Room for the next dentry, index t->ndents (index 0, NIL, set up first). */
static int dent_room(struct tree *t)
{
	int rc;

	if (t->ndents == 0) {
		rc = dents_reserve(t, 1);
		if (rc)
			return rc;
		memset(D(t, 0), 0, sizeof(struct dent)); /* index 0 = NIL */
		t->ndents = 1;
	}
	if (t->ndents >= MAX_INDEX || t->ndents > t->max_nodes)
		return over(t, "names", t->max_nodes, "TREE_MAX_NODES");
	return dents_reserve(t, (size_t)t->ndents + 1);
}

/* Link a new name `name[len]` in `dir`, whose hash_name is `h`, to node
 * `node`. */
static int add_dent_h(struct tree *t, uint32_t dir, const char *name, size_t len,
		      uint32_t node, uint32_t h)
{
	struct tree_node *p = N(t, dir), *c = N(t, node);
	struct dent d = { 0 };
	uint32_t i;
	int rc;

	rc = dent_room(t);
	if (rc)
		return rc;
	if (t->ndents >= t->nbuckets) {
		rc = rehash(t, 0);
		if (rc)
			return rc;
	}
	d.name = arena_strndup(t, name, len);
	if (!d.name)
		return nomem(t);
	d.parent = dir;
	d.node = node;
	d.hash = h;
	d.prev = p->last;
	*D(t, t->ndents) = d;
	i = t->ndents++;
	if (p->last)
		D(t, p->last)->next = i;
	else
		p->first = i;
	p->last = i;
	D(t, i)->hnext = t->buckets[d.hash & (t->nbuckets - 1)];
	t->buckets[d.hash & (t->nbuckets - 1)] = i;
	if (is_dir(c)) {
		c->parent = dir;
		c->self = i;
		p->a.nlink++;
	} else {
		c->a.nlink++;
	}
	return 0;
}

static int add_dent(struct tree *t, uint32_t dir, const char *name, size_t len,
		    uint32_t node)
{
	return add_dent_h(t, dir, name, len, node, hash_name(t, dir, name, len));
}

static void kill_node(struct tree *t, struct tree_node *n)
{
	if (!n->dead) {
		n->dead = true;
		if (!n->lower)
			t->live--;
	}
}

/* Unlink dentry i (its node must not have children if it is a dir). */
static void unlink_dent(struct tree *t, uint32_t i)
{
	struct dent *d = D(t, i);
	struct tree_node *p = N(t, d->parent), *c = N(t, d->node);
	uint32_t *pp = &t->buckets[d->hash & (t->nbuckets - 1)];

	while (*pp != i)
		pp = &D(t, *pp)->hnext;
	*pp = d->hnext;
	if (d->prev)
		D(t, d->prev)->next = d->next;
	else
		p->first = d->next;
	if (d->next)
		D(t, d->next)->prev = d->prev;
	else
		p->last = d->prev;
	if (is_dir(c)) {
		p->a.nlink--;
		c->self = NIL;
		kill_node(t, c);
	} else if (--c->a.nlink == 0) {
		kill_node(t, c);
	}
	d->node = NIL;
	d->name = NULL;
	d->hnext = d->next = d->prev = NIL;
}

/* Remove dentry i and, for a directory, its whole subtree (iteratively). */
static void remove_dent(struct tree *t, uint32_t i)
{
	uint32_t top = D(t, i)->node, cur = top;

	while (is_dir(N(t, top))) {
		struct tree_node *c = N(t, cur);

		if (c->first) {
			uint32_t cd = c->first;
			struct tree_node *cn = N(t, D(t, cd)->node);

			if (is_dir(cn) && cn->first)
				cur = idx_of(cn);
			else
				unlink_dent(t, cd);
			continue;
		}
		if (cur == top)
			break;
		cur = c->parent;
	}
	unlink_dent(t, i);
}

/* ---- attributes ------------------------------------------------------- */

static uint32_t type_bits(enum tar_type ty)
{
	switch (ty) {
	case TAR_DIR:
		return S_IFDIR;
	case TAR_SYMLINK:
		return S_IFLNK;
	case TAR_CHR:
		return S_IFCHR;
	case TAR_BLK:
		return S_IFBLK;
	case TAR_FIFO:
		return S_IFIFO;
	default:
		return S_IFREG;
	}
}

/* Copy xattrs / sparse / symlink into the arena. */
static int copy_extras(struct tree *t, struct tree_attr *a,
		       const struct tar_xattr *xs, size_t nx,
		       const struct tar_sparse *sp, size_t nsp, const char *link)
{
	size_t i;

	a->xattrs = NULL;
	a->nxattrs = 0;
	a->sparse = NULL;
	a->nsparse = 0;
	a->symlink = NULL;
	if (nx) {
		struct tar_xattr *dst = arena_alloc(t, nx * sizeof(*dst));

		if (!dst)
			return nomem(t);
		for (i = 0; i < nx; i++) {
			void *v = arena_alloc(t, xs[i].value_len ? xs[i].value_len : 1);

			dst[i].name = arena_strndup(t, xs[i].name, strlen(xs[i].name));
			if (!v || !dst[i].name)
				return nomem(t);
			if (xs[i].value_len)
				memcpy(v, xs[i].value, xs[i].value_len);
			dst[i].value = v;
			dst[i].value_len = xs[i].value_len;
		}
		a->xattrs = dst;
		a->nxattrs = nx;
	}
	if (sp) {
		struct tar_sparse *dst = arena_alloc(t, (nsp ? nsp : 1) * sizeof(*dst));

		if (!dst)
			return nomem(t);
		if (nsp)
			memcpy(dst, sp, nsp * sizeof(*dst));
		a->sparse = dst;
		a->nsparse = nsp;
	}
	if (link) {
		a->symlink = arena_strndup(t, link, strlen(link));
		if (!a->symlink)
			return nomem(t);
	}
	return 0;
}

/* Set node attributes from an entry, keeping id and nlink. */
static int attr_from_entry(struct tree *t, struct tree_node *n,
			   const struct tar_entry *e, unsigned layer)
{
	struct tree_attr *a = &n->a;

	/* Linux has no symlink modes: every extraction shows 0777. */
	a->mode = type_bits(e->type) | (e->type == TAR_SYMLINK ? 0777 : (e->mode & 07777));
	a->uid = e->uid;
	a->gid = e->gid;
	a->mtime_sec = e->mtime_sec;
	a->mtime_nsec = e->mtime_nsec;
	a->rdev_major = (e->type == TAR_CHR || e->type == TAR_BLK) ? e->devmajor : 0;
	a->rdev_minor = (e->type == TAR_CHR || e->type == TAR_BLK) ? e->devminor : 0;
	a->layer = layer;
	a->implicit = false;
	a->size = 0;
	a->data_offset = 0;
	a->stored_size = 0;
	if (e->type == TAR_REG) {
		a->size = e->size;
		a->data_offset = e->data_offset;
		a->stored_size = e->stored_size;
	} else if (e->type == TAR_SYMLINK) {
		a->size = strlen(e->linkname);
	}
	return copy_extras(t, a, e->xattrs, e->nxattrs,
			   e->type == TAR_REG ? e->sparse : NULL, e->nsparse,
			   e->type == TAR_SYMLINK ? e->linkname : NULL);
}

/* Copy attributes of a node of another tree, keeping id and nlink. */
static int attr_copy(struct tree *t, struct tree_node *n, const struct tree_attr *s)
{
	uint64_t id = n->a.id;
	uint32_t nlink = n->a.nlink;

	n->a = *s;
	n->a.id = id;
	n->a.nlink = nlink;
	return copy_extras(t, &n->a, s->xattrs, s->nxattrs, s->sparse, s->nsparse,
			   s->symlink);
}

/* ---- building --------------------------------------------------------- */

int tree_new_hint(struct tree **out, size_t nodes, size_t arena)
{
	struct tree *t = calloc(1, sizeof(*t));
	uint32_t root;
	int rc;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->max_nodes = TREE_MAX_NODES;
	t->max_arena = TREE_MAX_ARENA;
	if (nodes > TREE_MAX_NODES)
		nodes = TREE_MAX_NODES;
	for (t->shift = CHUNK_SHIFT; ((size_t)1 << t->shift) < nodes; t->shift++)
		;
	new_key(t->key);
	rc = node_alloc(t, &root);
	if (!rc)
		rc = rehash(t, nodes + 1);
	if (!rc && nodes)
		rc = dents_reserve(t, nodes + 1);
	if (!rc)
		rc = arena_reserve(t, arena);
	if (rc) {
		tree_free(t);
		return rc;
	}
	set_implicit_dir(N(t, root));
	*out = t;
	return 0;
}

int tree_new(struct tree **out)
{
	return tree_new_hint(out, 0, 0);
}

void tree_set_bounds(struct tree *t, uint32_t max_nodes, size_t max_arena)
{
	if (max_nodes < t->max_nodes)
		t->max_nodes = max_nodes;
	if (max_arena < t->max_arena)
		t->max_arena = max_arena;
}

void tree_free(struct tree *t)
{
	unsigned k;

	if (!t)
		return;
	for (k = 0; k < t->nchunks; k++)
		region_free(t->chunk[k], chunk_nodes(t, k) * sizeof(struct tree_node));
	region_free(t->dents, t->dents_cap * sizeof(*t->dents));
	buf_release(&t->lowers);
	buf_release(&t->pdir_path);
	region_free(t->buckets, (size_t)t->nbuckets * sizeof(*t->buckets));
	while (t->arena) {
		struct arena_chunk *n = t->arena->next;

		region_free(t->arena, t->arena->bytes);
		t->arena = n;
	}
	free(t);
}

/*
 * Walk `path` (normalised), creating missing parents as implicit directories
 * of `layer`; the last component is returned in *last.
 */
static int walk_parents(struct tree *t, const char *path, unsigned layer,
			uint32_t *dir, const char **last, size_t *lastlen)
{
	const char *base = strrchr(path, '/');
	uint32_t cur = 0;
	const char *s = path;

	/* Tar entries come directory by directory: most have the parent of
	 * the entry before. A directory node still alive is still at the path
	 * it was created at (nothing moves; a replaced directory is dead). */
	if (base && t->pdir_ok && (size_t)(base - path) == t->pdir_path.len &&
	    !memcmp(path, t->pdir_path.data, t->pdir_path.len) && !N(t, t->pdir)->dead) {
		*dir = t->pdir;
		*last = base + 1;
		*lastlen = strlen(base + 1);
		return 0;
	}
	for (;;) {
		const char *slash = strchr(s, '/');
		uint32_t d, nn;
		int rc;

		if (!slash) {
			*dir = cur;
			*last = s;
			*lastlen = strlen(s);
			if (base) {
				buf_reset(&t->pdir_path);
				t->pdir_ok = buf_add(&t->pdir_path, path, (size_t)(base - path)) == 0;
				t->pdir = cur;
			}
			return 0;
		}
		d = find_dent(t, cur, s, (size_t)(slash - s));
		if (d) {
			nn = D(t, d)->node;
			if (!is_dir(N(t, nn)))
				return -ENOTDIR;
		} else {
			rc = node_alloc(t, &nn);
			if (rc)
				return rc;
			set_implicit_dir(N(t, nn));
			N(t, nn)->a.layer = layer;
			rc = add_dent(t, cur, s, (size_t)(slash - s), nn);
			if (rc)
				return rc;
		}
		cur = nn;
		s = slash + 1;
	}
}

/* The node at normalised `path`, without following symlinks; NULL if
 * missing. Hidden nodes only if `hidden`. */
static const struct tree_node *lookup_path(const struct tree *t, const char *path,
					   bool hidden)
{
	uint32_t cur = 0;
	const char *s = path;

	while (*s) {
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		uint32_t d;

		if (len == 0 || (len == 1 && s[0] == '.')) {
			s += len + (e ? 1 : 0);
			continue;
		}
		if (!is_dir(N(t, cur)))
			return NULL;
		d = find_dent(t, cur, s, len);
		if (!d)
			return NULL;
		cur = D(t, d)->node;
		s += len + (e ? 1 : 0);
	}
	return hidden || !N(t, cur)->lower ? N(t, cur) : NULL;
}

/* A hard link to `e->linkname`, which this tree does not have: a hidden
 * node that tree_merge resolves against the layers below. */
static int add_lower_link(struct tree *t, const struct tar_entry *e, uint32_t dir,
			  const char *name, size_t len, unsigned layer)
{
	struct lower_link ll;
	struct tree_node *n;
	uint32_t cur = find_dent(t, dir, name, len);
	int rc;

	if (cur)
		remove_dent(t, cur);
	rc = node_alloc(t, &ll.node);
	if (rc)
		return rc;
	n = N(t, ll.node);
	n->a.mode = S_IFREG;
	n->a.layer = layer;
	n->lower = true;
	t->live--; /* hidden: not counted by tree_node_count */
	ll.target = arena_strndup(t, e->linkname, strlen(e->linkname));
	if (!ll.target)
		return nomem(t);
	rc = buf_add(&t->lowers, &ll, sizeof(ll));
	return rc ? rc : add_dent(t, dir, name, len, ll.node);
}

static int add_hardlink(struct tree *t, const struct tar_entry *e, uint32_t dir,
			const char *name, size_t len, unsigned layer)
{
	const struct tree_node *tn = lookup_path(t, e->linkname, true);
	uint32_t target, cur;
	char s1[256], s2[256];

	if (!tn)
		return add_lower_link(t, e, dir, name, len, layer);
	if (is_dir(tn)) {
		SKIP_LOG(t, "tree: skipping hard link '%s': target '%s' is a directory",
			 safe(e->path, s1, sizeof(s1)), safe(e->linkname, s2, sizeof(s2)));
		return 0;
	}
	target = idx_of(tn);
	cur = find_dent(t, dir, name, len);
	if (cur && D(t, cur)->node == target)
		return 0;
	if (cur)
		remove_dent(t, cur);
	if (N(t, target)->dead) {
		SKIP_LOG(t, "tree: skipping hard link '%s': its target was replaced by it",
			 safe(e->path, s1, sizeof(s1)));
		return 0;
	}
	return add_dent(t, dir, name, len, target);
}

/* Normalised: no leading or trailing '/', no empty, "." or ".." component. */
static bool is_normal(const char *p)
{
	const char *c = p;

	if (!*p)
		return true;
	for (;;) {
		const char *e = strchr(c, '/');
		size_t len = e ? (size_t)(e - c) : strlen(c);

		if (len == 0 || (len == 1 && c[0] == '.') ||
		    (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!e)
			return true;
		c = e + 1;
	}
}

/* *out = p if normal, else a normalised malloc'd copy in *tmp. */
static int normal_path(const char *p, const char **out, char **tmp)
{
	size_t n = strlen(p);
	int rc;

	*tmp = NULL;
	*out = p;
	if (is_normal(p))
		return 0;
	*tmp = malloc(n + 1);
	if (!*tmp)
		return -ENOMEM;
	rc = tar_path_normalize(p, n, *tmp, n + 1);
	*out = *tmp;
	return rc < 0 ? rc : 0;
}

static int add_entry(struct tree *t, const struct tar_entry *e, unsigned layer_index)
{
	uint32_t dir, cur, nn, h;
	const char *name;
	size_t len;
	char s1[256];
	int rc;

	if (e->path[0] == '\0') {
		if (e->type != TAR_DIR)
			return 0;
		return attr_from_entry(t, N(t, 0), e, layer_index);
	}
	rc = walk_parents(t, e->path, layer_index, &dir, &name, &len);
	if (rc == -ENOTDIR) {
		SKIP_LOG(t, "tree: skipping '%s': a parent is not a directory",
			 safe(e->path, s1, sizeof(s1)));
		return 0;
	}
	if (rc)
		return rc;
	if (e->type == TAR_HARDLINK)
		return add_hardlink(t, e, dir, name, len, layer_index);
	h = hash_name(t, dir, name, len);
	cur = find_dent_h(t, dir, name, len, h);
	if (cur && e->type == TAR_DIR && is_dir(N(t, D(t, cur)->node)))
		return attr_from_entry(t, N(t, D(t, cur)->node), e, layer_index);
	if (cur)
		remove_dent(t, cur);
	rc = node_alloc(t, &nn);
	if (rc)
		return rc;
	N(t, nn)->a.nlink = e->type == TAR_DIR ? 2 : 0;
	rc = attr_from_entry(t, N(t, nn), e, layer_index);
	if (!rc)
		rc = add_dent_h(t, dir, name, len, nn, h);
	return rc;
}

/*
 * Why a (normalised) entry names something no Linux file system can hold,
 * or NULL. Such a name would be listed but could never be looked up ("File
 * name too long" from ls -l, find, du of its directory; a kernel enforcing
 * FUSE's name limit rejects the whole listing), and no extraction creates it.
 */
static const char *unholdable(const struct tar_entry *e)
{
	const char *c = e->path, *slash;
	size_t n;

	if (strlen(e->path) > TREE_PATH_MAX)
		return "its path is longer than 4095 bytes (PATH_MAX)";
	for (; (slash = strchr(c, '/')) != NULL; c = slash + 1)
		if ((size_t)(slash - c) > TREE_NAME_MAX)
			return "a name in its path is longer than 255 bytes (NAME_MAX)";
	if (strlen(c) > TREE_NAME_MAX)
		return "its name is longer than 255 bytes (NAME_MAX)";
	if (e->type == TAR_SYMLINK) {
		n = strlen(e->linkname);
		if (n == 0)
			return "its symlink target is empty";
		if (n > TREE_PATH_MAX)
			return "its symlink target is longer than 4095 bytes (PATH_MAX)";
	}
	return NULL;
}

int tree_add(struct tree *t, const struct tar_entry *e, unsigned layer_index)
{
	struct tar_entry ne = *e;
	char *p1 = NULL, *p2 = NULL, s1[256];
	const char *why;
	int rc;

	/* The parser normalises; other callers may not. */
	rc = normal_path(e->path, &ne.path, &p1);
	if (!rc && e->type == TAR_HARDLINK)
		rc = normal_path(e->linkname, &ne.linkname, &p2);
	if (rc == -EPERM) {
		SKIP_LOG(t, "tree: skipping '%s': path or link escapes the root",
			 safe(e->path, s1, sizeof(s1)));
		rc = 0;
	} else if (!rc && (why = unholdable(&ne)) != NULL) {
		SKIP_LOG(t, "tree: skipping '%s': %s", safe(ne.path, s1, sizeof(s1)), why);
	} else if (!rc) {
		rc = add_entry(t, &ne, layer_index);
	}
	free(p1);
	free(p2);
	return rc;
}

int tree_tar_cb(void *ctx, const struct tar_entry *e)
{
	struct tree_tar_ctx *c = ctx;

	return tree_add(c->tree, e, c->layer_index);
}

/* ---- saving and restoring ----------------------------------------------- */

/* Has live node `n` (not the root) no name? */
static bool unnamed(const struct tree_node *n)
{
	return is_dir(n) ? n->self == NIL : n->a.nlink == 0;
}

/*
 * A tree is saved as its node and name tables in index order (the rootfs
 * file, image/lindex.c) and restored by replaying them: node ids are the
 * indexes, and readdir cookies the name indexes, so both come back the same
 * when every name is appended to its directory in index order, which is how
 * the builders made them (add_dent_h appends; nothing inserts or moves). The
 * link counts follow from the names, as they did when the tree was built.
 * tree_saveable checks the properties the replay relies on; trees that lack
 * one are not saved. The hash key is new: only chains differ.
 */
bool tree_saveable(const struct tree *t)
{
	uint32_t i;

	if (t->lowers.len)
		return false;
	for (i = 1; i < t->nnodes; i++) {
		const struct tree_node *n = N(t, i);

		if (n->lower)
			return false;
		if (n->dead)
			continue;
		if (unnamed(n) || (is_dir(n) && n->parent >= i))
			return false; /* unnamed, or named by a later directory */
	}
	for (i = 1; i < t->ndents; i++) {
		const struct dent *d = D(t, i);

		if (d->name && (d->prev >= i || N(t, d->node)->dead))
			return false; /* a list out of index order */
	}
	return true;
}

size_t tree_nnodes(const struct tree *t)
{
	return t->nnodes;
}

size_t tree_ndents(const struct tree *t)
{
	return t->ndents ? t->ndents : 1;
}

bool tree_dent(const struct tree *t, size_t i, uint64_t *parent, uint64_t *node,
	       const char **name)
{
	const struct dent *d;

	if (i == 0 || i >= t->ndents || !D(t, (uint32_t)i)->name)
		return false;
	d = D(t, (uint32_t)i);
	*parent = (uint64_t)d->parent + 1;
	*node = (uint64_t)d->node + 1;
	*name = d->name;
	return true;
}

int tree_restore_node(struct tree *t, const struct tar_entry *e, unsigned layer,
		      bool implicit)
{
	uint32_t i = t->restored;
	struct tree_node *n;
	int rc;

	if (i == 0 && (!e || e->type != TAR_DIR))
		return -EBADMSG; /* the root: a directory */
	if (e && (e->type == TAR_HARDLINK || (implicit && e->type != TAR_DIR) ||
		  (e->type == TAR_SYMLINK &&
		   (!e->linkname[0] || strlen(e->linkname) > TREE_PATH_MAX))))
		return -EBADMSG;
	if (i) {
		rc = node_alloc(t, &i);
		if (rc)
			return rc;
	}
	t->restored++;
	n = N(t, i);
	if (!e) {
		kill_node(t, n);
		return 0;
	}
	rc = attr_from_entry(t, n, e, layer);
	n->a.implicit = implicit;
	if (i)
		n->a.nlink = is_dir(n) ? 2 : 0;
	return rc;
}

int tree_restore_dent(struct tree *t, uint64_t parent, uint64_t node, const char *name,
		      size_t len)
{
	struct tree_node *p, *c;
	uint32_t pi, ci, h;
	int rc;

	if (parent == 0) { /* a removed name: keep its index */
		rc = dent_room(t);
		if (!rc)
			memset(D(t, t->ndents++), 0, sizeof(struct dent));
		return rc;
	}
	if (parent > t->nnodes || node < 2 || node > t->nnodes || len == 0 ||
	    len > TREE_NAME_MAX || memchr(name, '/', len) || memchr(name, '\0', len) ||
	    (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.'))) ||
	    (len >= 4 && !memcmp(name, ".wh.", 4)))
		return -EBADMSG; /* (a merge leaves no whiteout names) */
	pi = (uint32_t)(parent - 1);
	ci = (uint32_t)(node - 1);
	p = N(t, pi);
	c = N(t, ci);
	if (p->dead || !is_dir(p) || c->dead || (is_dir(c) && (c->self != NIL || pi >= ci)))
		return -EBADMSG; /* a directory named twice, or by a later one: a cycle */
	h = hash_name(t, pi, name, len);
	if (find_dent_h(t, pi, name, len, h))
		return -EBADMSG;
	return add_dent_h(t, pi, name, len, ci, h);
}

int tree_restore_done(struct tree *t)
{
	uint32_t i;

	if (t->restored != t->nnodes)
		return -EBADMSG;
	for (i = 1; i < t->nnodes; i++) {
		const struct tree_node *n = N(t, i);

		if (!n->dead && unnamed(n))
			return -EBADMSG; /* a node no name reaches */
	}
	return 0;
}

/* ---- reading ---------------------------------------------------------- */

const struct tree_node *tree_root(const struct tree *t)
{
	return N(t, 0);
}

const struct tree_node *tree_lookup(const struct tree *t,
				    const struct tree_node *dir, const char *name)
{
	uint32_t d;

	if (!is_dir(dir))
		return NULL;
	d = find_dent(t, idx_of(dir), name, strlen(name));
	return d && !N(t, D(t, d)->node)->lower ? N(t, D(t, d)->node) : NULL;
}

const struct tree_node *tree_lookup_path(const struct tree *t, const char *path)
{
	return lookup_path(t, path, false);
}

const struct tree_node *tree_node_by_id(const struct tree *t, uint64_t id)
{
	const struct tree_node *n;

	if (id == 0 || id > t->nnodes)
		return NULL;
	n = N(t, (uint32_t)(id - 1));
	return n->dead || n->lower ? NULL : n;
}

const struct tree_attr *tree_node_attr(const struct tree_node *n)
{
	return &n->a;
}

const struct tree_node *tree_parent(const struct tree *t,
				    const struct tree_node *dir)
{
	return is_dir(dir) ? N(t, dir->parent) : NULL;
}

int tree_readdir(const struct tree *t, const struct tree_node *dir,
		 uint64_t *cookie, const char **name,
		 const struct tree_node **child)
{
	uint32_t d;

	if (!is_dir(dir))
		return 0;
	if (*cookie == 0)
		d = dir->first;
	else if (*cookie < t->ndents && D(t, (uint32_t)*cookie)->parent == idx_of(dir))
		d = D(t, (uint32_t)*cookie)->next;
	else
		return 0;
	while (d != NIL && N(t, D(t, d)->node)->lower)
		d = D(t, d)->next;
	if (d == NIL)
		return 0;
	*name = D(t, d)->name;
	*child = N(t, D(t, d)->node);
	*cookie = d;
	return 1;
}

size_t tree_node_count(const struct tree *t)
{
	return t->live;
}

/*
 * What a region of `len` bytes whose first `used` are touched holds in
 * memory. Capacity set aside and never touched costs none, but a region
 * advised for huge pages is backed 2 MiB at a time when it is touched
 * (transparent huge pages, "madvise" mode: the default here): up to 2 MiB
 * more than its bytes in use.
 */
static size_t region_resident(size_t used, size_t len)
{
#ifndef __SANITIZE_ADDRESS__
	if (len >= HUGE_SIZE) {
		size_t r = (used + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1);
		size_t map = (len + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1);

		return r < map ? r : map;
	}
#else
	(void)len;
#endif
	return used;
}

size_t tree_memory(const struct tree *t)
{
	const struct arena_chunk *c;
	size_t sum = sizeof(*t) + t->lowers.cap;
	unsigned k;

	for (k = 0; k < t->nchunks; k++) {
		uint64_t start = chunk_start(t, k), n = chunk_nodes(t, k);
		uint64_t used = t->nnodes > start ? t->nnodes - start : 0;

		sum += region_resident((size_t)(used < n ? used : n) * sizeof(struct tree_node),
				       (size_t)n * sizeof(struct tree_node));
	}
	sum += region_resident((size_t)t->ndents * sizeof(struct dent),
			       t->dents_cap * sizeof(struct dent));
	sum += region_resident((size_t)t->nbuckets * sizeof(uint32_t),
			       (size_t)t->nbuckets * sizeof(uint32_t));
	for (c = t->arena; c; c = c->next)
		sum += region_resident(sizeof(*c) + c->used, c->bytes);
	return sum;
}

bool tree_is_plain(const struct tree *t)
{
	uint32_t i;

	if (t->lowers.len)
		return false;
	for (i = 1; i < t->ndents; i++) {
		const char *name = D(t, i)->name;

		if (name && is_whiteout(name))
			return false;
	}
	return true;
}

/* ---- merge ------------------------------------------------------------ */

struct mframe {
	uint32_t ldir, mdir;
};

/*
 * content[i]: layer node i is named by the tar or has a descendant that is
 * (whiteouts excluded). An implicit directory without content would only
 * exist to hold whiteouts, and umoci does not create those.
 */
static int layer_content(const struct tree *l, bool **out)
{
	bool *c = calloc(l->nnodes ? l->nnodes : 1, sizeof(*c));
	uint32_t i;

	*out = c;
	if (!c)
		return -ENOMEM;
	c[0] = true;
	for (i = 1; i < l->ndents; i++) {
		const struct dent *d = D(l, i);
		const struct tree_node *n;
		uint32_t p;

		if (!d->name || is_whiteout(d->name))
			continue;
		n = N(l, d->node);
		if (is_dir(n) && n->a.implicit)
			continue;
		c[d->node] = true;
		for (p = d->parent; !c[p]; p = N(l, p)->parent)
			c[p] = true;
	}
	return 0;
}

/* A copy of `src` named `name[len]` (hash_name `h`) in mdir. */
static int new_copy(struct tree *m, uint32_t mdir, const char *name, size_t len,
		    uint32_t h, const struct tree_node *src, uint32_t *out)
{
	uint32_t nn;
	int rc = node_alloc(m, &nn);

	if (rc)
		return rc;
	N(m, nn)->a.nlink = is_dir(src) ? 2 : 0;
	rc = attr_copy(m, N(m, nn), &src->a);
	if (!rc)
		rc = add_dent_h(m, mdir, name, len, nn, h);
	*out = nn;
	return rc;
}

static int merge_dir(struct tree *m, const struct tree *l, uint32_t *map,
		     const bool *content, struct buf *stack, uint32_t ld,
		     uint32_t md)
{
	uint32_t d, md_d;
	/* A directory the layers below left empty (or did not have): nothing
	 * to hide, and each name of this layer directory is new in it. */
	bool fresh = N(m, md)->first == NIL;
	int rc = 0;

	/* 1. Opaque marker: drop everything lower layers put here. */
	if (!fresh && find_dent(l, ld, ".wh..wh..opq", 12)) {
		while (N(m, md)->first)
			remove_dent(m, N(m, md)->first);
	}
	/* 2. Whiteouts hide lower entries only: apply before adding ours. */
	for (d = fresh ? NIL : N(l, ld)->first; d; d = D(l, d)->next) {
		const char *name = D(l, d)->name;

		if (!is_whiteout(name) || is_whiteout(name + 4) || !name[4])
			continue;
		md_d = find_dent(m, md, name + 4, strlen(name + 4));
		if (md_d)
			remove_dent(m, md_d);
	}
	/* 3. Our entries. */
	for (d = N(l, ld)->first; d && !rc; d = D(l, d)->next) {
		const char *name = D(l, d)->name;
		const struct tree_node *ln = N(l, D(l, d)->node);
		size_t len;
		uint32_t nn, h;

		if (is_whiteout(name))
			continue;
		len = strlen(name);
		h = hash_name(m, md, name, len);
		md_d = fresh ? NIL : find_dent_h(m, md, name, len, h);
		if (is_dir(ln)) {
			struct mframe f = { idx_of(ln), 0 };

			if (md_d && is_dir(N(m, D(m, md_d)->node))) {
				f.mdir = D(m, md_d)->node;
				if (!ln->a.implicit)
					rc = attr_copy(m, N(m, f.mdir), &ln->a);
			} else {
				if (!content[idx_of(ln)])
					continue;
				if (md_d)
					remove_dent(m, md_d);
				rc = new_copy(m, md, name, len, h, ln, &f.mdir);
			}
			if (!rc)
				rc = buf_add(stack, &f, sizeof(f));
			continue;
		}
		nn = map[idx_of(ln)];
		if (ln->lower && nn == NIL)
			continue; /* no such file below: logged by resolve_lowers */
		if (md_d)
			remove_dent(m, md_d);
		if (ln->lower) {
			/* The file may have lost its last name to a whiteout of
			 * this layer: the link keeps it, as it does on disk. */
			if (N(m, nn)->dead) {
				N(m, nn)->dead = false;
				m->live++;
			}
			rc = add_dent_h(m, md, name, len, nn, h);
		} else if (nn != NIL && !N(m, nn)->dead) {
			rc = add_dent_h(m, md, name, len, nn, h);
		} else {
			rc = new_copy(m, md, name, len, h, ln, &nn);
			map[idx_of(ln)] = nn;
		}
	}
	return rc;
}

/*
 * map[] the hidden nodes of layer l (hard links to files it does not have)
 * to the files at their target paths in m, the layers below merged: the
 * state extraction sees when it meets the link. Done before anything of l
 * is applied. A link to nothing (or to a directory) is dropped, logged.
 */
static void resolve_lowers(struct tree *m, const struct tree *l, uint32_t *map)
{
	const struct lower_link *ll = (const struct lower_link *)l->lowers.data;
	size_t i, n = l->lowers.len / sizeof(*ll);
	char s1[256];

	for (i = 0; i < n; i++) {
		const struct tree_node *tn;

		if (N(l, ll[i].node)->dead)
			continue;
		tn = lookup_path(m, ll[i].target, false);
		if (tn && !is_dir(tn))
			map[ll[i].node] = idx_of(tn);
		else
			SKIP_LOG(m, "tree: skipping hard link(s) to '%s': no such file in the layers below",
				 safe(ll[i].target, s1, sizeof(s1)));
	}
}

static int merge_layer(struct tree *m, const struct tree *l)
{
	struct buf stack = BUF_INIT;
	uint32_t *map = calloc(l->nnodes, sizeof(*map));
	bool *content = NULL;
	struct mframe f = { 0, 0 };
	int rc;

	if (!map)
		return -ENOMEM;
	resolve_lowers(m, l, map);
	rc = layer_content(l, &content);
	if (!rc && !N(l, 0)->a.implicit)
		rc = attr_copy(m, N(m, 0), &N(l, 0)->a);
	if (!rc)
		rc = buf_add(&stack, &f, sizeof(f));
	while (!rc && stack.len) {
		stack.len -= sizeof(f);
		memcpy(&f, stack.data + stack.len, sizeof(f));
		rc = merge_dir(m, l, map, content, &stack, f.ldir, f.mdir);
	}
	buf_release(&stack);
	free(content);
	free(map);
	return rc;
}

int tree_merge(struct tree **out, struct tree *const layers[], size_t n)
{
	struct tree *m;
	size_t i, nodes = 0, arena = 0;
	int rc;

	*out = NULL;
	/* The merge holds at most what its layers hold. */
	for (i = 0; i < n; i++) {
		nodes += layers[i]->nnodes;
		arena += layers[i]->arena_used;
	}
	rc = tree_new_hint(&m, nodes, arena);
	for (i = 0; i < n && !rc; i++)
		rc = merge_layer(m, layers[i]);
	if (rc) {
		tree_free(m);
		return rc;
	}
	*out = m;
	return 0;
}
