/*
 * ns — the registry's namespace as directories: which names a directory
 * holds, and what each name is.
 *
 * A directory is a registry path P ("" is the root). Its children are
 *   - the next path components of every catalog repository under P/
 *     (namespaces and repositories: kind NS_DIR), and
 *   - if P is a repository, its tags (kind NS_TAG).
 * Name clash rule: when P has a tag N and the catalog also has a repository
 * at or below P/N, the plain name N is the directory and the tag is listed
 * (and always reachable) as ":N" — read it as P:N. Without a catalog acrfs
 * cannot know of deeper repositories, so N is then the tag.
 *
 * Without a catalog (401/403/404 on /v2/_catalog), the root lists nothing,
 * but a lookup reaches any repository by path: every syntactically valid
 * name is a directory, holding tags if the registry has such a repository.
 *
 * Catalog pages, tag lists and negative answers come from a dcache with the
 * mount's TTL. Thread-safe; functions block on the registry.
 */
#ifndef ACRFS_NS_H
#define ACRFS_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/digest.h"

struct ns;
struct strvec;

/* What a listing with metadata (ACR's _tags) tells of a tag. */
struct ns_tag_meta {
	struct timespec created, updated; /* tv_sec 0: unknown */
	bool has_digest;
	struct digest digest;
	bool write_enabled, delete_enabled; /* false: locked */
};

/* Where the names come from (the registry, or a test's fake). */
struct ns_source {
	int (*catalog)(void *ctx, struct strvec *repos);		/* 0 / -errno */
	int (*tags)(void *ctx, const char *repo, struct strvec *tags); /* 0 / -errno */
	void *ctx;
	const char *what; /* for log lines, e.g. the registry host */
	/*
	 * Optional, used instead of `tags` when set: the tags (sorted, unique)
	 * and *meta, NULL or a malloc'd array of one record per tag in the
	 * same order (the ns frees it).
	 */
	int (*tags_meta)(void *ctx, const char *repo, struct strvec *tags,
			 struct ns_tag_meta **meta);
	/*
	 * Optional: does tag `tag` of `repo` exist? 0 (yes), -ENOENT (the
	 * registry says there is no such tag or repository), or any other
	 * -errno (it cannot tell: the tag list decides). ns_lookup asks it,
	 * with `probe_ctx`, instead of fetching a tag list that is not cached:
	 * a walk into repo/tag then costs the tag's manifest, which it needs
	 * anyway, and not the repository's list of every tag as well. Leave
	 * it NULL with tags_meta (a tag's attributes come from its list).
	 */
	int (*tag_probe)(void *probe_ctx, const char *repo, const char *tag);
	void *probe_ctx;
};

enum ns_kind { NS_DIR = 1, NS_TAG = 2 };

struct ns_ent {
	char *name;	   /* as shown in the directory */
	enum ns_kind kind;
	char *target;	   /* NS_DIR: the full registry path; NS_TAG: the tag */
};

/* `src` is copied; src->ctx and src->what must outlive the ns. */
int ns_new(struct ns **out, const struct ns_source *src, unsigned ttl_s);
void ns_free(struct ns *ns);

/*
 * Count the cached catalog and tag lists in memory budget `b` (each list a
 * unit, evicted when least recently used and fetched again at its next use:
 * fs/dcache.h). `b` must outlive the ns. Call before the first lookup.
 */
struct budget;
void ns_set_budget(struct ns *ns, struct budget *b);
/* What the cached lists take now, in bytes. */
uint64_t ns_bytes(struct ns *ns);

/*
 * What is `name` in directory `dir`? 0 with *kind and *target (caller frees),
 * or -ENOENT, -EACCES (the registry denied the question), -EIO, ...
 */
int ns_lookup(struct ns *ns, const char *dir, const char *name, enum ns_kind *kind,
	      char **target);

/* Does ns_lookup find a tag without its repository's tag list (the
 * source's tag_probe)? Then a walk into tags needs no tag lists. */
bool ns_lookup_probes(const struct ns *ns);

/* The children of `dir`, sorted by name. Caller frees with ns_ents_free(). */
int ns_list(struct ns *ns, const char *dir, struct ns_ent **ents, size_t *n);
/*
 * ns_list, and *hold: NULL, or a reference to the tag list of `dir` the
 * entries were made from when it carries metadata (ns_tag_meta answers
 * from it). While it is held the memory budget cannot evict it, so the
 * times and locks of the entries stay known as long as their listing is
 * kept (fs/listing.h). Drop it with dlist_put (fs/dcache.h).
 */
struct dlist;
int ns_list_held(struct ns *ns, const char *dir, struct ns_ent **ents, size_t *n,
		 struct dlist **hold);
void ns_ents_free(struct ns_ent *ents, size_t n);
/*
 * ns_list from what was fetched last (possibly older than the TTL), never
 * fetching: -ENODATA when the catalog or the tags it needs were never
 * fetched (or were invalidated or evicted by the memory budget since). For
 * speculation (fs/prefetch.h).
 */
int ns_list_cached(struct ns *ns, const char *dir, struct ns_ent **ents, size_t *n);

/* Does the catalog (when available) know `repo`? Never fetches. */
bool ns_catalog_has(struct ns *ns, const char *repo);

/*
 * What the tag listing said of `tag` of `repo`, from the last tag list
 * fetched (by a listing or a lookup; possibly older than the TTL, so that
 * readdirplus and getattr never cost a request — also with ttl=0): 0,
 * -ENODATA when there is none (never fetched, invalidated, or evicted by
 * the memory budget: a listing that holds it, ns_list_held, keeps it) or
 * the source gives no metadata (the distribution path), -ENOENT when the
 * list does not have the tag.
 */
int ns_tag_meta(struct ns *ns, const char *repo, const char *tag, struct ns_tag_meta *out);

/*
 * The newest tag's update and the oldest tag's creation time of `repo`,
 * from the last tag list fetched, as ns_tag_meta; never fetches. -ENODATA
 * when there is none (or no tag has times).
 */
int ns_repo_times(struct ns *ns, const char *repo, struct timespec *updated,
		  struct timespec *created);

/* Forget the cached tags of `repo` / the cached catalog. */
void ns_invalidate_tags(struct ns *ns, const char *repo);
void ns_invalidate_catalog(struct ns *ns);

#endif
