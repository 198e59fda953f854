#include "registry/names.h"

#include <string.h>

static bool alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool name_component_valid(const char *s, size_t len)
{
	size_t i = 0;

	if (!len)
		return false;
	for (;;) {
		size_t start = i;

		while (i < len && alnum_lower(s[i]))
			i++;
		if (i == start)
			return false;
		if (i == len)
			return true;
		/* separator: '.', '_', '__', or one or more '-' */
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < len && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < len && s[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i == len)
			return false;
	}
}

bool repo_name_valid(const char *s)
{
	size_t len = strlen(s);
	const char *p = s;

	if (!len || len > 255)
		return false;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (!name_component_valid(p, n))
			return false;
		if (!slash)
			return true;
		p = slash + 1;
	}
}

bool tag_valid(const char *s)
{
	size_t i, len = strlen(s);

	if (!len || len > 128)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' ||
			  (i > 0 && (c == '.' || c == '-'));

		if (!ok)
			return false;
	}
	return true;
}
