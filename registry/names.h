/*
 * names — the distribution spec's grammar for repository names and tags.
 */
#ifndef ACRFS_NAMES_H
#define ACRFS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
bool name_component_valid(const char *s, size_t len);
/* A whole repository name: components joined by '/', at most 255 bytes. */
bool repo_name_valid(const char *s);
/* A tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} */
bool tag_valid(const char *s);

#endif
