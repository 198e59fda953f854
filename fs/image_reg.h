/*
 * image_reg — the content model (image/) wired to a real registry: layers
 * and images whose blob bytes come from registry_blob_stream /
 * registry_blob_pread / registry_blob_get of one repository. The only place
 * that joins image/ and registry/, so that image/ builds and is unit-tested
 * without the registry.
 *
 * Foreign layers (descriptors with urls) are fetched from the registry like
 * any other blob; their urls are not followed.
 */
#ifndef ACRFS_IMAGE_REG_H
#define ACRFS_IMAGE_REG_H

#include <stdint.h>

#include "image/image.h"
#include "image/layer.h"

struct registry;
struct descriptor; /* registry/manifest.h */
struct manifest;   /* registry/manifest.h */

/*
 * layer_new_src for a layer descriptor of a manifest in `repo` of registry
 * `r`. `r` must outlive the layer; repo and desc are copied.
 */
int layer_new(struct layer **out, struct registry *r, const char *repo,
	      const struct descriptor *desc, unsigned index, struct pcache *pc, uint32_t span);

/*
 * The image of manifest `m` (kind MANIFEST_IMAGE, else -EINVAL) in `repo` of
 * registry `r`. Takes ownership of `m` in every case (it is freed before
 * returning: the image keeps copies). `r` and `pc` must outlive the image.
 * Nothing is fetched.
 */
int image_new(struct image **out, struct registry *r, const char *repo, struct manifest *m,
	      struct pcache *pc);

/*
 * imgcache_get_src for manifest `m` (kind image; borrowed, copied as needed)
 * of `repo` in `r`: the same image reached by two tags, or from two
 * repositories, is built once (blobs are then read from the repository that
 * built it). 0 or -errno; the caller image_unref's *out.
 */
int imgcache_get(struct imgcache *c, struct registry *r, const char *repo,
		 const struct manifest *m, struct image **out);

#endif
