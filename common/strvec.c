#include "common/strvec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/memsize.h"

int strvec_push_owned(struct strvec *sv, char *s)
{
	if (!s)
		return -ENOMEM;
	if (sv->n + 1 >= sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 16;
		char **v = realloc(sv->v, cap * sizeof(*v));

		if (!v) {
			free(s);
			return -ENOMEM;
		}
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
	return 0;
}

int strvec_push(struct strvec *sv, const char *s)
{
	return strvec_push_owned(sv, strdup(s));
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void strvec_sort_unique(struct strvec *sv)
{
	size_t i, o = 0;

	if (sv->n < 2)
		return;
	qsort(sv->v, sv->n, sizeof(*sv->v), cmp);
	for (i = 0; i < sv->n; i++) {
		if (o && strcmp(sv->v[o - 1], sv->v[i]) == 0)
			free(sv->v[i]);
		else
			sv->v[o++] = sv->v[i];
	}
	sv->n = o;
	sv->v[o] = NULL;
}

size_t strvec_lower_bound(const struct strvec *sv, const char *s)
{
	size_t lo = 0, hi = sv->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(sv->v[mid], s) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

long strvec_find(const struct strvec *sv, const char *s)
{
	size_t i = strvec_lower_bound(sv, s);

	return i < sv->n && strcmp(sv->v[i], s) == 0 ? (long)i : -1;
}

void strvec_clear(struct strvec *sv)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}

int strvec_copy(struct strvec *dst, const struct strvec *src)
{
	size_t i;

	*dst = (struct strvec)STRVEC_INIT;
	for (i = 0; i < src->n; i++) {
		if (strvec_push(dst, src->v[i])) {
			strvec_clear(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

size_t strvec_memsize(const struct strvec *sv)
{
	size_t i, n = mem_size(sv->v);

	for (i = 0; i < sv->n; i++)
		n += mem_size(sv->v[i]);
	return n;
}
