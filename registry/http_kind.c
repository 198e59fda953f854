/*
 * What kind of registry request a URL is (http.h, http_kind_of): for the
 * counters of .acrfs/status. Pure string work on the URL's path.
 */
#include <string.h>

#include "registry/http.h"

const char *http_kind_name(enum http_kind k)
{
	static const char *const names[HTTP_K_N] = { "catalog", "tags",	 "manifest",
						     "blob",	"token", "other" };

	return k < HTTP_K_N ? names[k] : "other";
}

enum http_kind http_kind_of(const char *url)
{
	static const struct {
		const char *mark;
		enum http_kind kind;
	} marks[] = {
		{ "/_catalog", HTTP_K_CATALOG }, { "/tags/list", HTTP_K_TAGS },
		{ "/_tags", HTTP_K_TAGS },	 { "/manifests/", HTTP_K_MANIFEST },
		{ "/blobs/", HTTP_K_BLOB },	 { "/oauth2/", HTTP_K_TOKEN },
	};
	const char *path = strstr(url, "://"), *best = NULL, *p;
	enum http_kind kind = HTTP_K_OTHER;
	size_t len, i;

	path = path ? strchr(path + 3, '/') : NULL;
	if (!path)
		return HTTP_K_OTHER;
	len = strcspn(path, "?#");
	/* The last marker wins: a repository may be called "x/blobs/y". */
	for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		for (p = path; (p = memmem(p, len - (size_t)(p - path), marks[i].mark,
					   strlen(marks[i].mark)));
		     p++)
			if (!best || p > best) {
				best = p;
				kind = marks[i].kind;
			}
	if (kind == HTTP_K_OTHER && len >= 6 && !strncmp(path + len - 6, "/token", 6))
		kind = HTTP_K_TOKEN;
	return kind;
}
