#include "common/base64.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static const char b64std[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_encode(const void *in, size_t n, char **out)
{
	const unsigned char *s = in;
	size_t i, o = 0;
	char *p;

	*out = NULL;
	if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
		return -ENOMEM;
	p = malloc((n + 2) / 3 * 4 + 1);
	if (!p)
		return -ENOMEM;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		p[o++] = b64std[v >> 18 & 63];
		p[o++] = b64std[v >> 12 & 63];
		p[o++] = b64std[v >> 6 & 63];
		p[o++] = b64std[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		p[o++] = b64std[v >> 18 & 63];
		p[o++] = b64std[v >> 12 & 63];
		p[o++] = i + 1 < n ? b64std[v >> 6 & 63] : '=';
		p[o++] = '=';
	}
	p[o] = '\0';
	*out = p;
	return 0;
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int base64_decode(const char *in, size_t n, char **out, size_t *outlen)
{
	uint32_t acc = 0;
	size_t i, o = 0, bits = 0;
	char *p;

	*out = NULL;
	if (outlen)
		*outlen = 0;
	/* Padding is optional, but if present it must be at the end. */
	while (n > 0 && in[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -EINVAL;
	p = malloc(n / 4 * 3 + 3);
	if (!p)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		int v = b64val(in[i]);

		if (v < 0) {
			free(p);
			return -EINVAL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			p[o++] = (char)(acc >> bits & 0xff);
		}
	}
	p[o] = '\0';
	*out = p;
	if (outlen)
		*outlen = o;
	return 0;
}
