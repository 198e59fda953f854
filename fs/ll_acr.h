/*
 * ll_acr — what ACR's listings add to the registry directories (issue 10):
 * the tag-list source with metadata for ns (times, digest, locks from
 * /acr/v1/<r>/_tags, one request per page), and the attributes and xattrs
 * of tag and repository directories made from it. No libfuse here: the
 * handlers in ll.c / ll_view.c call these and reply.
 *
 * On a registry without ACR's API nothing here sends a request or changes
 * an answer: tag and repository directories keep the mount time.
 */
#ifndef ACRFS_LL_ACR_H
#define ACRFS_LL_ACR_H

#include <stddef.h>

#include "fs/ns.h"

struct acrfs;
struct buf;
struct inode;
struct stat;
struct strvec;

/*
 * ns_source.tags_meta for a struct registry * ctx: ACR's _tags pages (all
 * of them, 1,000 tags a page) when registry_is_acr(); /v2 tags/list without
 * metadata when not, or when the identity may not read metadata (-EACCES
 * from /acr/v1, logged once per mount). Blocks.
 */
int acrfs_acr_tags(void *ctx, const char *repo, struct strvec *tags, struct ns_tag_meta **meta);

/*
 * fs->acr_repos for registry `r` (which must outlive it): a dcache of
 * repositories' attributes with the mount's TTL. 0 or -ENOMEM. Under the
 * memory budget (main sets it) an entry may be evicted like any list:
 * then a repository's lock shows in its mode again only after the next
 * getxattr asked for its attributes.
 */
struct dcache;
struct registry;
int acrfs_acr_repos_new(struct dcache **out, struct registry *r, unsigned ttl_s);

/*
 * Adjust `st` of registry directory `n` (K_TAG / K_DIR) from the listing:
 * a tag's mtime and ctime are its lastUpdateTime, atime its createdTime; a
 * locked tag (writeEnabled or deleteEnabled false) has no write bits. A
 * repository's times are its newest tag's update (to the second: the
 * nanoseconds keep following the listing's mtime, fs/listing.h), when its
 * tag list is cached (never fetched here); a repository whose attributes
 * were fetched (acrfs_acr_getxattr) and say it is locked has no write bits.
 * Without metadata `st` stays as it is.
 */
void acrfs_acr_attr(const struct acrfs *fs, const struct inode *n, struct stat *st);

/*
 * xattr `name` of tag directory `n` from the listing, into `val` (reset
 * first): user.acrfs.digest, user.acrfs.created, user.acrfs.updated,
 * user.acrfs.lock (only on a locked tag). 0, or -ENODATA when the listing
 * does not answer it (the caller then answers as without ACR).
 *
 * Of a repository directory (K_DIR, on ACR): user.acrfs.created,
 * .updated and .lock (only when locked) from the repository's attributes,
 * GET /acr/v1/<repo>, fetched at the first such question and kept for the
 * TTL (fs->acr_repos); -ENODATA for a namespace, the registry's error
 * (-EACCES without metadata_read, transport errors) else. When the answer
 * changes what the directory's mode shows, the kernel's attributes are
 * dropped. Blocks then.
 */
int acrfs_acr_getxattr(struct acrfs *fs, const struct inode *n, const char *name,
		       struct buf *val);

/* Append the names (NUL-terminated each) of the xattrs acrfs_acr_getxattr
 * answers for tag directory `n` that its caller does not list already. */
int acrfs_acr_listxattr(struct acrfs *fs, const struct inode *n, struct buf *out);

#endif
