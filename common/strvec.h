/*
 * strvec — a growable array of owned C strings.
 * Invariant: v[n] == NULL when cap > 0. Not thread-safe.
 */
#ifndef ACRFS_STRVEC_H
#define ACRFS_STRVEC_H

#include <stddef.h>

struct strvec {
	char **v;
	size_t n;
	size_t cap;
};

#define STRVEC_INIT { NULL, 0, 0 }

/* Append a copy of s. 0 or -ENOMEM. */
int strvec_push(struct strvec *sv, const char *s);
/* Append s, taking ownership (freed on failure too). 0 or -ENOMEM. */
int strvec_push_owned(struct strvec *sv, char *s);
/* Sort bytewise (strcmp) and drop duplicates. */
void strvec_sort_unique(struct strvec *sv);
/* Binary search in a sorted vector: index of s, or -1. */
long strvec_find(const struct strvec *sv, const char *s);
/* Index of the first element >= s in a sorted vector (n if none). */
size_t strvec_lower_bound(const struct strvec *sv, const char *s);
void strvec_clear(struct strvec *sv);
/* Deep copy. 0 or -ENOMEM (dst left empty). */
int strvec_copy(struct strvec *dst, const struct strvec *src);
/* The heap bytes the vector holds: its array and every string (common/memsize.h). */
size_t strvec_memsize(const struct strvec *sv);

#endif
