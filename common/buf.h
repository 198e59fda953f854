/*
 * buf — a growable byte buffer (model: git's strbuf).
 *
 * Invariants, true after every call that returns 0:
 *   - b->len <= b->cap;
 *   - if b->cap > 0, b->data[b->len] == '\0' (one byte past len is always
 *     reserved), so b->data can be used as a C string when the content has
 *     no NUL bytes;
 *   - a buffer initialised with BUF_INIT has data == NULL, len == cap == 0;
 *     buf_cstr() still returns "" for it.
 * Growth never dies: on allocation failure a function returns -ENOMEM and
 * leaves the buffer as it was.
 *
 * Not thread-safe: a buffer belongs to one thread at a time.
 */
#ifndef ACRFS_BUF_H
#define ACRFS_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0 }

/* Make room for at least `extra` more bytes (plus the NUL). 0 or -ENOMEM. */
int buf_grow(struct buf *b, size_t extra);
/* Append `n` bytes. 0 or -ENOMEM. */
int buf_add(struct buf *b, const void *data, size_t n);
/* Append a C string. 0 or -ENOMEM. */
int buf_adds(struct buf *b, const char *s);
/* Append one byte. 0 or -ENOMEM. */
int buf_addch(struct buf *b, char c);
/* Append printf-formatted text. 0, -ENOMEM, or -EINVAL on a format error. */
int buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Set len to 0, keeping the allocation. */
void buf_reset(struct buf *b);
/* Free the allocation and return to BUF_INIT. Accepts a zeroed buffer. */
void buf_release(struct buf *b);
/*
 * Hand the allocation to the caller (caller frees with free()); the buffer
 * returns to BUF_INIT. Never returns NULL unless allocation fails for an
 * empty buffer.
 */
char *buf_detach(struct buf *b, size_t *len);
/* The content as a C string; "" for an empty buffer. Borrowed. */
const char *buf_cstr(const struct buf *b);
/*
 * Overwrite the content with zeros before releasing: for buffers that held a
 * secret (password, token).
 */
void buf_release_secret(struct buf *b);

#endif
