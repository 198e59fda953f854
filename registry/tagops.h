/*
 * tagops — changing tags: delete, untag, copy, move; delete a repository.
 *
 * The rule every function here keeps: a tag the caller did not name never
 * disappears. A manifest is deleted by digest (which removes every tag
 * pointing at it) only after a fresh tag list and a HEAD of every other tag
 * of the repository showed that none points at it, nor at an index that
 * reaches it (lists it, or lists an index that does); otherwise only the one
 * tag is removed. docs/tagops.md explains
 * the algorithm and its request cost.
 *
 * Uploads go where the registry's Location says; one on another origin gets
 * no Authorization (reg_send's rule).
 *
 * Scopes asked for: repository:<name>:pull for reads,
 * repository:<name>:delete for DELETE, repository:<name>:pull,push for PUT
 * and uploads, plus repository:<src>:pull for a cross-repository mount.
 *
 * Every function blocks on the registry, is thread-safe (no state of its
 * own), logs a failure once with its context and returns 0 or -errno:
 * -ENOENT (the tag or repository is not there), -EACCES (no push / delete
 * rights), -EPERM (the registry refuses: deletes disabled, 405
 * UNSUPPORTED), -EAGAIN (the tag changed while we looked: nothing done),
 * -EEXIST, -EIO, -ENOMEM, or a transport errno (registry.h).
 */
#ifndef ACRFS_TAGOPS_H
#define ACRFS_TAGOPS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/digest.h"
#include "registry/registry.h"

/* Tags HEADed at most when deciding whether a digest is shared (see .c). */
#define TAGOPS_SCAN_MAX 1000
/* Indexes nested in an index tag that are followed: depth, and fetches per
 * decision. Beyond them the digest counts as shared (only the tag goes). */
#define TAGOPS_INDEX_DEPTH_MAX 4
#define TAGOPS_INDEX_FETCH_MAX 100
/* Largest blob copied through memory when a cross-repository mount is refused. */
#define TAGOPS_BLOB_COPY_MAX (512ull << 20)

/*
 * HEAD /v2/<repo>/manifests/<tag>: the digest the tag points at right now,
 * and (media_type != NULL) its media type (malloc'd, caller frees).
 */
int registry_tag_resolve(struct registry *r, const char *repo, const char *tag, struct digest *d,
			 char **media_type);

/*
 * DELETE /v2/<repo>/manifests/<digest> → 202. Removes the manifest and every
 * tag pointing at it: callers outside this module must have made sure that
 * is what they want (registry_tag_untag does).
 */
int registry_manifest_delete(struct registry *r, const char *repo, const struct digest *d);

/*
 * Remove tag `tag` of `repo`, never any other tag. `expect` (NULL: none) is
 * the digest the caller decided on: if the tag now points elsewhere,
 * -EAGAIN and nothing is done; a tag that is gone is -ENOENT.
 *   - No other tag points at the digest (fresh tag list + HEAD of each other
 *     tag, GET of those that are indexes and of the indexes they list):
 *     DELETE by digest, the image goes.
 *   - Otherwise only this tag: ACR's untag API on *.azurecr.io; elsewhere
 *     OCI delete-by-tag, then ACR's API if the registry answers it, then a
 *     unique placeholder manifest PUT at the tag and deleted by its digest
 *     (undone — the tag put back — if that delete fails).
 * *deleted_image (may be NULL) tells which of the two happened.
 */
int registry_tag_untag(struct registry *r, const char *repo, const char *tag,
		       const struct digest *expect, bool *deleted_image);

/*
 * Put the manifest `src_ref` (tag or digest) of `src_repo` at `dst_ref` (tag
 * or digest) of `dst_repo`, byte for byte. Across repositories every blob
 * (and, for an index, every child manifest, by digest) is made present in
 * dst first: mounted from src (201), or — when the registry will not mount
 * (202) — copied through memory (at most TAGOPS_BLOB_COPY_MAX bytes each).
 * The registry's Docker-Content-Digest must equal the source digest (else
 * -EIO). *out (may be NULL) receives the digest.
 */
int registry_tag_copy(struct registry *r, const char *src_repo, const char *src_ref,
		      const char *dst_repo, const char *dst_ref, struct digest *out);

/*
 * Rename / move a tag: copy src to dst, then registry_tag_untag(src) with the
 * digest copied. With `noreplace` an existing dst is -EEXIST. Without it dst
 * is replaced, and the image dst pointed at before is then deleted like
 * registry_tag_untag would (only when no tag points at it any more).
 * Before anything changes, a probe (DELETE of a digest nobody has) checks that
 * the registry and the identity may delete in src_repo: -EPERM / -EACCES then,
 * nothing changed. If the source cannot be removed after the copy, both tags
 * stay, the error is logged and returned.
 */
int registry_tag_move(struct registry *r, const char *src_repo, const char *src_tag,
		      const char *dst_repo, const char *dst_tag, bool noreplace);

/*
 * Delete the repository itself (it should have no tags left; the caller
 * checks). ACR only (DELETE /acr/v1/<repo>); elsewhere -EPERM, with a log
 * line saying why.
 */
int registry_repo_delete(struct registry *r, const char *repo);

#endif
