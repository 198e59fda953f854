#include "common/digest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static const char sha256_prefix[] = "sha256:";
#define PREFIX_LEN (sizeof(sha256_prefix) - 1)

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case is not canonical: rejected */
}

int digest_parse_n(struct digest *d, const char *s, size_t len)
{
	size_t i;

	memset(d, 0, sizeof(*d));
	if (!s || len != PREFIX_LEN + DIGEST_HEX_LEN ||
	    memcmp(s, sha256_prefix, PREFIX_LEN) != 0)
		return -EINVAL;
	s += PREFIX_LEN;
	for (i = 0; i < DIGEST_RAW_LEN; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			memset(d, 0, sizeof(*d));
			return -EINVAL;
		}
		d->raw[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int digest_parse(struct digest *d, const char *s)
{
	if (!s) {
		memset(d, 0, sizeof(*d));
		return -EINVAL;
	}
	return digest_parse_n(d, s, strlen(s));
}

const char *digest_algorithm(const char *s, char *out, size_t outsz)
{
	const char *colon;
	size_t n, i;

	if (outsz == 0)
		return out;
	out[0] = '\0';
	if (!s || !(colon = strchr(s, ':')))
		return out;
	n = (size_t)(colon - s);
	if (n > 32)
		n = 32;
	if (n > outsz - 1)
		n = outsz - 1;
	for (i = 0; i < n; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			 c == '+' || c == '.' || c == '_' || c == '-';

		out[i] = ok ? c : '?';
	}
	out[n] = '\0';
	return out;
}

char *digest_hex(const struct digest *d, char out[DIGEST_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < DIGEST_RAW_LEN; i++) {
		out[2 * i] = hex[d->raw[i] >> 4];
		out[2 * i + 1] = hex[d->raw[i] & 15];
	}
	out[DIGEST_HEX_LEN] = '\0';
	return out;
}

char *digest_format(const struct digest *d, char out[DIGEST_STR_SIZE])
{
	memcpy(out, sha256_prefix, PREFIX_LEN);
	digest_hex(d, out + PREFIX_LEN);
	return out;
}

int digest_cmp(const struct digest *a, const struct digest *b)
{
	return memcmp(a->raw, b->raw, DIGEST_RAW_LEN);
}

bool digest_equal(const struct digest *a, const struct digest *b)
{
	return digest_cmp(a, b) == 0;
}

struct digest_hasher {
	EVP_MD_CTX *ctx;
	bool finished;
};

int digest_hasher_new(struct digest_hasher **out)
{
	struct digest_hasher *h;
	int rc;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx) {
		rc = -ENOMEM;
		goto fail;
	}
	if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		rc = -EIO;
		goto fail;
	}
	*out = h;
	return 0;
fail:
	digest_hasher_free(h);
	return rc;
}

int digest_hasher_update(struct digest_hasher *h, const void *data, size_t len)
{
	if (h->finished)
		return -EINVAL;
	if (len == 0)
		return 0;
	return EVP_DigestUpdate(h->ctx, data, len) == 1 ? 0 : -EIO;
}

int digest_hasher_final(struct digest_hasher *h, const struct digest *expected,
			struct digest *got)
{
	struct digest sum;
	unsigned int n = 0;

	if (h->finished)
		return -EINVAL;
	h->finished = true;
	if (EVP_DigestFinal_ex(h->ctx, sum.raw, &n) != 1 || n != DIGEST_RAW_LEN)
		return -EIO;
	if (got)
		*got = sum;
	if (expected && !digest_equal(expected, &sum))
		return -EBADMSG;
	return 0;
}

void digest_hasher_free(struct digest_hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int digest_of_buf(struct digest *out, const void *data, size_t len)
{
	struct digest_hasher *h;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = digest_hasher_new(&h);
	if (rc)
		return rc;
	rc = digest_hasher_update(h, data, len);
	if (!rc)
		rc = digest_hasher_final(h, NULL, out);
	digest_hasher_free(h);
	return rc;
}
