/*
 * prefetch — readahead for walks through registry directories (issue 11).
 *
 * A walk (find, ls -R, du, grep -r, a shell loop over a glob) goes through
 * a directory's children in listing order and asks the same of each: its
 * tag list (a repository), its manifest (a tag), its layers (what is inside
 * a tag). Each of those is a round trip to the registry, one after another.
 * This module watches what the FUSE edge is asked and, once a walk is
 * visibly going through a directory's children, asks for the next children
 * ahead of the walk on worker threads, so that the walk finds them in the
 * caches (fs/ns.h's dirent cache, fs/view.h's tag cache and image objects,
 * image/layer.h's loaded trees) or joins the request already in flight
 * (both caches are single-flight).
 *
 * What counts as a walk, per registry directory D (the root, a namespace, a
 * repository), from the notes the edge sends (prefetch_note_dir/_tag):
 *   - the children of D are those of the last listing of D fetched (never
 *     fetched for this: ns_list_cached), in listing order;
 *   - a note on a child of D, or on something inside it (a tag of a child
 *     repository, a file inside a child tag), makes that child D's current
 *     one and adds to what the walk needed of it: NONE (looked up), TAGS (a
 *     repository listed, or looked into where a tag's lookup needs the tag
 *     list: !ns_lookup_probes), MANIFEST (a tag listed, looked into or its
 *     digest asked), CONTENT (a tag's layers looked into); for a child
 *     repository also which tag was used in it;
 *   - when the walk moves forward from one child to a later one (at most
 *     `window` entries on), what it needed of the previous child is what it
 *     will need of the next ones: the children up to `win` after the current
 *     one are queued (each once per run) for the workers, where `win` starts
 *     at PREFETCH_WINDOW_START and doubles at each step up to `window`.
 * A single listing (ls of a directory, with or without -l: readdirplus
 * answers the attributes) sends no note about its children, and notes on
 * one or two children queue nothing: speculation starts at the third child
 * a walk takes in order (PREFETCH_STEPS forward moves), so that looking at
 * a repository or two costs what it costs without readahead.
 *
 * The bound: at most `window` children beyond the last one the walk reached
 * (fewer in a short walk: the window is still growing) are fetched for it,
 * per directory being walked (PREFETCH_CONTENT_WINDOW when layers are
 * fetched ahead); per child at most one tag list, one manifest and, for
 * CONTENT, the layers of its image when they are at most
 * PREFETCH_CONTENT_MAX bytes together (no fat layer is fetched on a guess);
 * images load ahead while their blobs together stay within
 * PREFETCH_CONTENT_AHEAD bytes (always one; a job that finds no room leaves
 * its image to the walk): building a tree holds memory the budget counts
 * only afterwards, and it grows with the blob (a 0.7 MB blob of 100,000
 * empty files builds ~40 MB of trees), so small images load up to a worker
 * each while big ones load one at a time.
 * For a child repository, the manifest of the tag the walk used in the
 * previous one is asked — at the same time as its tag list when the walk
 * needed that list (a repository without that tag costs one "no such tag"
 * answer). Workers: `workers` threads (started as jobs wait with none
 * idle), so that many requests in flight besides the walk's own (the HTTP
 * pool gives each its own connection). A child's job is a chain of round
 * trips (manifest, then blob), so a walk gets at most workers / (its round
 * trips per child) children per round trip: 16 workers and a content
 * window of 16 put a small image every ~4 ms under a 25 ms delay, where 8
 * and 8 gave one every ~8 ms (bench/wan.md).
 * Queue: PREFETCH_QUEUE_MAX jobs; beyond it, a job is dropped (the walk
 * fetches that child itself). Directories watched: PREFETCH_DIRS, least
 * recently noted forgotten first.
 *
 * Answers never change: prefetching only fills the caches the walk would
 * fill itself, with the same TTL; a tag deleted meanwhile is invalidated as
 * before (an in-flight prefetch cannot publish over an invalidation: the
 * dcache's generations). With ttl 0 nothing fetched ahead could be used, so
 * there is no prefetching (prefetch_new with window 0 is the same).
 *
 * Thread-safe. The notes never block on the network (they only queue);
 * workers start at the first job and stop in prefetch_free.
 */
#ifndef ACRFS_PREFETCH_H
#define ACRFS_PREFETCH_H

#include <stddef.h>
#include <stdint.h>

struct prefetch;
struct ns;
struct views;

enum prefetch_need { PF_NONE = 0, PF_TAGS = 1, PF_MANIFEST = 2, PF_CONTENT = 3 };

#define PREFETCH_WINDOW_DEFAULT 32
#define PREFETCH_WORKERS_MAX 16
#define PREFETCH_CONTENT_MAX (4u << 20)
#define PREFETCH_QUEUE_MAX 1024
#define PREFETCH_DIRS 64
#define PREFETCH_STEPS 2
#define PREFETCH_WINDOW_START 4
#define PREFETCH_CONTENT_WINDOW 16 /* the window when layers are fetched ahead */
#define PREFETCH_CONTENT_AHEAD (1u << 20) /* blob bytes of the images loading ahead */

/* What the module did, for .acrfs/status and tests. */
struct prefetch_stats {
	uint64_t queued;  /* jobs queued */
	uint64_t done;	  /* jobs run */
	uint64_t dropped; /* jobs not queued: the queue was full */
};

/*
 * Readahead over `ns` and `views` (both must outlive it). `window`: how many
 * children ahead of a walk (0: none; prefetch_note_* then do nothing).
 * `workers`: threads (1..PREFETCH_WORKERS_MAX). 0 or -ENOMEM.
 */
int prefetch_new(struct prefetch **out, struct ns *ns, struct views *views, unsigned window,
		 unsigned workers);
/* Stops the workers (waits for the jobs they are running). NULL is fine. */
void prefetch_free(struct prefetch *p);

/* The walk needed `need` of registry directory `path` (a repository or
 * namespace; "" — the root — is ignored). */
void prefetch_note_dir(struct prefetch *p, const char *path, enum prefetch_need need);
/* The walk needed `need` of tag `tag` of repository `repo`. */
void prefetch_note_tag(struct prefetch *p, const char *repo, const char *tag,
		       enum prefetch_need need);

void prefetch_stats(struct prefetch *p, struct prefetch_stats *out);

#endif
