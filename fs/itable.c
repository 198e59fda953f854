/*
 * Design: two chained hash tables over the same nodes (by ino, by key),
 * both guarded by `lock`, a leaf lock. Tables grow by doubling when the
 * load passes 1.
 */
#include "fs/itable.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct itable {
	pthread_mutex_t lock; /* guards everything below and inode.nlookup */
	struct inode **by_ino, **by_key;
	size_t nbuckets;
	uint64_t count;
	uint64_t next_ino;
};

static size_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return (size_t)h;
}

static size_t hash_ino(uint64_t ino)
{
	return (size_t)(ino * 0x9e3779b97f4a7c15ull >> 16);
}

/* One allocation per node: the struct, then key, a and b. */
static void node_free(struct inode *n)
{
	free(n);
}

static struct inode *node_new(uint64_t ino, const char *key, int kind, const char *a,
			      const char *b)
{
	size_t kl = strlen(key) + 1, al = strlen(a ? a : "") + 1, bl = b ? strlen(b) + 1 : 0;
	struct inode *n = malloc(sizeof(*n) + kl + al + bl);
	char *p;

	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->ino = ino;
	n->kind = kind;
	p = (char *)(n + 1);
	n->key = memcpy(p, key, kl);
	n->a = memcpy(p + kl, a ? a : "", al);
	n->b = b ? memcpy(p + kl + al, b, bl) : NULL;
	return n;
}

static void insert(struct itable *t, struct inode *n)
{
	size_t hi = hash_ino(n->ino) % t->nbuckets, hk = hash_str(n->key) % t->nbuckets;

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
	t->nbuckets = 1024;
	t->by_ino = calloc(t->nbuckets, sizeof(*t->by_ino));
	t->by_key = calloc(t->nbuckets, sizeof(*t->by_key));
	root = node_new(1, root_key, root_kind, "", NULL);
	if (!t->by_ino || !t->by_key || !root) {
		free(t->by_ino);
		free(t->by_key);
		node_free(root);
		free(t);
		return -ENOMEM;
	}
	root->nlookup = 1;
	pthread_mutex_init(&t->lock, NULL);
	t->next_ino = 2;
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
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int itable_ref(struct itable *t, const char *key, int kind, const char *a, const char *b,
	       struct inode **out)
{
	struct inode *n;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&t->lock);
	for (n = t->by_key[hash_str(key) % t->nbuckets]; n; n = n->next_key)
		if (strcmp(n->key, key) == 0)
			break;
	if (!n) {
		if (t->count >= t->nbuckets && grow(t)) {
			rc = -ENOMEM;
			goto out;
		}
		n = node_new(t->next_ino, key, kind, a, b);
		if (!n) {
			rc = -ENOMEM;
			goto out;
		}
		t->next_ino++;
		insert(t, n);
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
	for (n = t->by_ino[hash_ino(ino) % t->nbuckets]; n; n = n->next_ino)
		if (n->ino == ino)
			break;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static void unlink_node(struct itable *t, struct inode *n)
{
	struct inode **pp;

	for (pp = &t->by_ino[hash_ino(n->ino) % t->nbuckets]; *pp; pp = &(*pp)->next_ino)
		if (*pp == n) {
			*pp = n->next_ino;
			break;
		}
	for (pp = &t->by_key[hash_str(n->key) % t->nbuckets]; *pp; pp = &(*pp)->next_key)
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
	for (n = t->by_ino[hash_ino(ino) % t->nbuckets]; n; n = n->next_ino)
		if (n->ino == ino)
			break;
	if (n) {
		n->nlookup = n->nlookup > nl ? n->nlookup - nl : 0;
		if (!n->nlookup && n->ino != 1) {
			unlink_node(t, n);
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
