/*
 * Design: two chained hash tables over the same nodes (by ino, by key),
 * both guarded by `lock`, a leaf lock. Tables have a power of two of
 * buckets and grow by doubling when the load passes 1.
 *
 * Inode numbers are handed out in sequence, so the ino table indexes by the
 * number's low bits (slot_ino): a readdirplus creating inodes one after
 * another fills neighbouring slots (eight to a cache line) instead of a
 * random one each; hash_key does the same for their keys. A node keeps its
 * key's hash: the key is hashed once per itable_ref, a chain is walked
 * comparing hashes (no string of another node is read but on a match), and
 * grow and unlink never rehash a string.
 *
 * Memory: one allocation per node (the struct, then its strings; a `b`
 * that is a suffix of the key is not copied again: image nodes' payload is
 * their key past the kind prefix), counted in `bytes` as the allocator
 * reports it (common/memsize.h), like the table's arrays. The budget charge (itable_charge) follows `bytes` in steps, so
 * that a walk creating thousands of inodes a second takes the budget's lock
 * a few times, not once per inode.
 */
#include "fs/itable.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/memsize.h"
#include "image/budget.h"

struct itable {
	pthread_mutex_t lock; /* guards everything below and inode.nlookup */
	struct inode **by_ino, **by_key;
	size_t nbuckets; /* 1 << bits */
	unsigned bits;
	uint64_t seed;   /* hash_key's, random per table */
	uint64_t count;
	uint64_t next_ino;
	uint64_t bytes; /* written under lock, read atomically: itable_bytes */

	pthread_mutex_t charge_lock; /* one charge at a time (trylock) */
	struct budget_unit unit;     /* charge_lock: the table's bytes in the budget */
	uint64_t charged;	     /* atomic: bytes at the last charge */
};

/* t->lock held. */
static void add_bytes(struct itable *t, int64_t d)
{
	__atomic_store_n(&t->bytes, t->bytes + (uint64_t)d, __ATOMIC_RELAXED);
}

/*
 * The hash of a key: FNV-1a of the key up to its trailing decimal digits
 * and of how many there are, mixed and cut to 32 bits, plus the number
 * those digits spell (mod 2^32). Keys that differ only in a trailing
 * number, as the entries of one readdirplus do ("X/<root>|<object>|R:<node
 * id>", ids given in tar order), then take neighbouring slots instead of a
 * random one each: a walk creating them reads and writes the table's arrays
 * a cache line at a time, and finds their slots empty rather than walking
 * another key's chain. Keys with other prefixes or another count of digits
 * (ids 99 and 100) spread like any hash; the count keeps names that differ
 * only in leading zeros ("t7", "t07": a registry chooses them) off one
 * chain. The prefix's hash starts from a random seed per table, so that a
 * registry cannot choose names whose prefixes share a chain.
 */
static uint32_t hash_key(const struct itable *t, const char *s)
{
	const char *end = s + strlen(s), *digits = end;
	uint64_t h = 1469598103934665603ull ^ t->seed;
	uint32_t num = 0;

	while (digits > s && digits[-1] >= '0' && digits[-1] <= '9')
		digits--;
	for (; s < digits; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	h = (h ^ (uint64_t)(end - digits)) * 1099511628211ull;
	for (; s < end; s++)
		num = num * 10 + (uint32_t)(*s - '0');
	/* FNV-1a's last byte barely moves the low bits ("D/f", "D/g"): mix
	 * (murmur3's finaliser) so that the runs of two prefixes do not overlap
	 * more often than any two hashes would. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)h + num;
}

/* A random seed; without entropy yet (early boot), one that differs per
 * table and process. */
static void new_seed(uint64_t *seed)
{
	struct timespec ts;

	if (getrandom(seed, sizeof(*seed), GRND_NONBLOCK) == (ssize_t)sizeof(*seed))
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	*seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)seed ^
		(uint64_t)getpid() << 32;
}

/* The ino's low bits, XORed with the bits above them: neighbours stay
 * neighbours (the XOR maps an aligned run of eight slots onto another), and
 * live inodes that happen to be a multiple of the table's size apart do not
 * all share one chain. */
static size_t slot_ino(const struct itable *t, uint64_t ino)
{
	return (size_t)(ino ^ ino >> t->bits) & (t->nbuckets - 1);
}

static size_t slot_key(const struct itable *t, uint32_t hash)
{
	return hash & (t->nbuckets - 1);
}

/* One allocation per node: the struct, then key, a and b (b may point into
 * the key). */
static void node_free(struct inode *n)
{
	free(n);
}

/* Does `b` point into `key` (kl bytes with its NUL)? Then it is not copied. */
static bool in_key(const char *key, size_t kl, const char *b)
{
	return b && b >= key && b < key + kl;
}

static struct inode *node_new(uint64_t ino, const char *key, uint32_t hash, int kind,
			      const char *a, const char *b)
{
	size_t kl = strlen(key) + 1, al = strlen(a ? a : "") + 1;
	bool shared = in_key(key, kl, b);
	size_t bl = b && !shared ? strlen(b) + 1 : 0;
	struct inode *n = malloc(sizeof(*n) + kl + al + bl);
	char *p;

	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->ino = ino;
	n->kind = kind;
	n->hash = hash;
	p = (char *)(n + 1);
	n->key = memcpy(p, key, kl);
	n->a = memcpy(p + kl, a ? a : "", al);
	if (shared)
		n->b = n->key + (b - key);
	else
		n->b = b ? memcpy(p + kl + al, b, bl) : NULL;
	return n;
}

static void insert(struct itable *t, struct inode *n)
{
	size_t hi = slot_ino(t, n->ino), hk = slot_key(t, n->hash);

	n->next_ino = t->by_ino[hi];
	t->by_ino[hi] = n;
	n->next_key = t->by_key[hk];
	t->by_key[hk] = n;
	t->count++;
}

static int grow(struct itable *t)
{
	size_t old = t->nbuckets, i;
	struct inode **oi = t->by_ino, **ok = t->by_key, **nk = calloc(old * 2, sizeof(*nk)),
		     **ni = calloc(old * 2, sizeof(*ni));

	if (!nk || !ni) {
		free(nk);
		free(ni);
		return -ENOMEM;
	}
	t->by_ino = ni;
	t->by_key = nk;
	t->nbuckets = old * 2;
	t->bits++;
	add_bytes(t, (int64_t)(mem_size(ni) + mem_size(nk)) - (int64_t)(mem_size(oi) + mem_size(ok)));
	t->count = 0;
	for (i = 0; i < old; i++) {
		struct inode *n = oi[i], *next;

		for (; n; n = next) {
			next = n->next_ino;
			insert(t, n);
		}
	}
	free(oi);
	free(ok); /* insert() rebuilt the key chains too */
	return 0;
}

int itable_new(struct itable **out, int root_kind, const char *root_key)
{
	struct itable *t = calloc(1, sizeof(*t));
	struct inode *root;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->bits = 10;
	t->nbuckets = (size_t)1 << t->bits;
	t->by_ino = calloc(t->nbuckets, sizeof(*t->by_ino));
	t->by_key = calloc(t->nbuckets, sizeof(*t->by_key));
	new_seed(&t->seed);
	root = node_new(1, root_key, hash_key(t, root_key), root_kind, "", NULL);
	if (!t->by_ino || !t->by_key || !root) {
		free(t->by_ino);
		free(t->by_key);
		node_free(root);
		free(t);
		return -ENOMEM;
	}
	root->nlookup = 1;
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->charge_lock, NULL);
	budget_unit_init(&t->unit, NULL, NULL);
	t->next_ino = 2;
	t->bytes = mem_size(t) + mem_size(t->by_ino) + mem_size(t->by_key) + mem_size(root);
	insert(t, root);
	*out = t;
	return 0;
}

void itable_free(struct itable *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->nbuckets; i++) {
		struct inode *n = t->by_ino[i], *next;

		for (; n; n = next) {
			next = n->next_ino;
			node_free(n);
		}
	}
	free(t->by_ino);
	free(t->by_key);
	budget_uncharge(&t->unit);
	pthread_mutex_destroy(&t->charge_lock);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int itable_ref(struct itable *t, const char *key, int kind, const char *a, const char *b,
	       struct inode **out)
{
	uint32_t h = hash_key(t, key);
	struct inode *n;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&t->lock);
	for (n = t->by_key[slot_key(t, h)]; n; n = n->next_key)
		if (n->hash == h && strcmp(n->key, key) == 0)
			break;
	if (!n) {
		if (t->count >= t->nbuckets && grow(t)) {
			rc = -ENOMEM;
			goto out;
		}
		n = node_new(t->next_ino, key, h, kind, a, b);
		if (!n) {
			rc = -ENOMEM;
			goto out;
		}
		t->next_ino++;
		insert(t, n);
		add_bytes(t, (int64_t)mem_size(n));
	}
	n->nlookup++;
	*out = n;
out:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

struct inode *itable_get(struct itable *t, uint64_t ino)
{
	struct inode *n;

	pthread_mutex_lock(&t->lock);
	for (n = t->by_ino[slot_ino(t, ino)]; n; n = n->next_ino)
		if (n->ino == ino)
			break;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static void unlink_node(struct itable *t, struct inode *n)
{
	struct inode **pp;

	for (pp = &t->by_ino[slot_ino(t, n->ino)]; *pp; pp = &(*pp)->next_ino)
		if (*pp == n) {
			*pp = n->next_ino;
			break;
		}
	for (pp = &t->by_key[slot_key(t, n->hash)]; *pp; pp = &(*pp)->next_key)
		if (*pp == n) {
			*pp = n->next_key;
			break;
		}
	t->count--;
}

void itable_forget(struct itable *t, uint64_t ino, uint64_t nl)
{
	struct inode *n, *dead = NULL;

	pthread_mutex_lock(&t->lock);
	for (n = t->by_ino[slot_ino(t, ino)]; n; n = n->next_ino)
		if (n->ino == ino)
			break;
	if (n) {
		n->nlookup = n->nlookup > nl ? n->nlookup - nl : 0;
		if (!n->nlookup && n->ino != 1) {
			unlink_node(t, n);
			add_bytes(t, -(int64_t)mem_size(n));
			dead = n;
		}
	}
	pthread_mutex_unlock(&t->lock);
	node_free(dead);
}

uint64_t itable_count(struct itable *t)
{
	uint64_t c;

	pthread_mutex_lock(&t->lock);
	c = t->count;
	pthread_mutex_unlock(&t->lock);
	return c;
}

uint64_t itable_bytes(struct itable *t)
{
	return __atomic_load_n(&t->bytes, __ATOMIC_RELAXED);
}

void itable_set_budget(struct itable *t, struct budget *b)
{
	budget_unit_init(&t->unit, b, NULL); /* never evicted: the kernel holds it */
	__atomic_store_n(&t->charged, 0, __ATOMIC_RELAXED);
	itable_charge(t);
}

/* What the budget counts of the table now. */
static uint64_t counted(struct itable *t)
{
	uint64_t b = itable_bytes(t);

	return b > ITABLE_UNCOUNTED ? b - ITABLE_UNCOUNTED : 0;
}

void itable_charge(struct itable *t)
{
	uint64_t now = counted(t), was = __atomic_load_n(&t->charged, __ATOMIC_RELAXED);

	if (!t->unit.b || (now < was + ITABLE_CHARGE_STEP && was < now + ITABLE_CHARGE_STEP))
		return;
	/* Another thread charging takes a value at most a step old: the next
	 * change past a step charges again. */
	if (pthread_mutex_trylock(&t->charge_lock))
		return;
	now = counted(t);
	budget_charge(&t->unit, now);
	__atomic_store_n(&t->charged, now, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&t->charge_lock);
}
