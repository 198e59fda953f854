#!/usr/bin/python3
"""Registry-scale fixtures for bench/wan.sh, pushed over HTTP keep-alive (stdlib only).

  wanfix.py URL OUTDIR [--repos 1000] [--big-tags 2000] [--big-manifests 4]
            [--images 200] [--mem-images 8] [--mem-entries 100000] [--jobs 4]

Fills the (empty) registry at URL (http://HOST:PORT) with, every name flat (one path
component), so that `find MNT -mindepth 2 -maxdepth 2` lists every tag of every
repository:
  wanrepo-NNNN:v1[,v2[,v3]]  --repos repositories with 1, 2 or 3 tags (by NNNN % 3),
                             all the one tiny image of tests/lib/seed.py (its blobs
                             uploaded once, then cross-repo mounted);
  wanbig:tNNNNN              --big-tags tags cycling over --big-manifests manifests
                             (the seed image's manifest with different annotations);
  wanimg-NNN:v1              --images distinct small images: one tar+gzip layer with
                             etc/wan-release ("ID=NNN"), usr/share/wan/notes.txt (holds
                             the needle "acrfs-wan-needle"), usr/share/wan/other.txt,
                             bin/wan-tool (4 KiB of seeded bytes);
  wanmem-NN:v1               --mem-images images whose one layer holds --mem-entries
                             entries (directories of 1,000 empty files each): trees
                             big enough to measure a memory budget with.
The seed.py client (tests/lib/seed.py: keep-alive connections, uploads, blob mounts,
manifest PUTs) does the pushing. Everything is deterministic.

Writes to OUTDIR:
  fixture.env   shell assignments (WAN_*) describing what was made;
  images.txt    REPO:TAG of each wanimg image, one a line;
  distinct.txt  one line per distinct image (manifest): "REPO:TAG LAYERDIGEST...".
"""
import argparse
import gzip
import io
import json
import os
import sys
import tarfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
import seed  # noqa: E402  (tests/lib/seed.py)

NEEDLE = "acrfs-wan-needle"
RELEASE_FILE = "etc/wan-release"
MTIME = 1700000000


def repo_tags(i):
    return ["v%d" % (k + 1) for k in range(1 + i % 3)]


def add(tar, path, data=None, mode=0o644):
    seed.tar_add(tar, path, data, mode, MTIME)


def image_from_tar(tar_bytes):
    """(config, layer, manifest bytes) of a one-layer OCI image around tar_bytes."""
    layer = gzip.compress(tar_bytes, compresslevel=6, mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {}, "rootfs": {"type": "layers", "diff_ids": [seed.digest_of(tar_bytes)]},
    }, sort_keys=True, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": seed.MT_OCI_MANIFEST,
        "config": {"mediaType": seed.MT_OCI_CONFIG, "size": len(config),
                   "digest": seed.digest_of(config)},
        "layers": [{"mediaType": seed.MT_OCI_LAYER, "size": len(layer),
                    "digest": seed.digest_of(layer)}],
    }, separators=(",", ":")).encode()
    return config, layer, manifest


def small_image(i):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for d in ("bin", "etc", "usr", "usr/share", "usr/share/wan"):
            add(tar, d)
        add(tar, RELEASE_FILE, b"NAME=wanimg\nID=%03d\n" % i)
        add(tar, "usr/share/wan/notes.txt",
            ("image %03d of bench/wan.sh\nowner: %s\n" % (i, NEEDLE)).encode())
        add(tar, "usr/share/wan/other.txt", b"nothing to find in image %03d\n" % i)
        add(tar, "bin/wan-tool", seed.seeded_bytes(4096, "wan-tool-%d" % i), 0o755)
    return image_from_tar(buf.getvalue())


def mem_image(i, entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        top = "mem%02d" % i
        add(tar, top)
        n, d = 1, 0
        while n < entries:
            sub = "%s/d%03d" % (top, d)
            add(tar, sub)
            n += 1
            for f in range(min(1000, entries - n)):
                info = tarfile.TarInfo("%s/file-%05d.txt" % (sub, f))
                info.mtime = MTIME
                info.mode = 0o644
                tar.addfile(info)
                n += 1
            d += 1
    return image_from_tar(buf.getvalue())


def layer_of(manifest):
    return json.loads(manifest)["layers"][0]["digest"]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("outdir")
    ap.add_argument("--repos", type=int, default=1000)
    ap.add_argument("--big-tags", type=int, default=2000)
    ap.add_argument("--big-manifests", type=int, default=4)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--mem-images", type=int, default=8)
    ap.add_argument("--mem-entries", type=int, default=100000)
    ap.add_argument("--jobs", type=int, default=4)
    a = ap.parse_args(argv)
    if min(a.repos, a.big_tags, a.big_manifests, a.images) < 1 or a.images > 1000:
        ap.error("counts must be at least 1 (and --images at most 1000)")
    t0 = time.monotonic()
    c = seed.Client(a.url.rstrip("/"))
    distinct = []

    # Small repositories: one shared tiny image.
    config, layer, template = seed.tiny_image("oci")
    body = seed.manifest_bytes(template)
    first = "wanrepo-0000"
    c.upload(first, config)
    c.upload(first, layer)

    def one_repo(i):
        name = "wanrepo-%04d" % i
        if i:
            c.mount(name, config, first)
            c.mount(name, layer, first)
        for t in repo_tags(i):
            c.put_manifest(name, t, body, template["mediaType"])

    seed.run_parallel(a.jobs, one_repo, range(a.repos))
    distinct.append("%s:v1 %s" % (first, layer_of(body)))
    repo_tag_count = sum(len(repo_tags(i)) for i in range(a.repos))

    # The big repository: many tags over a few manifests.
    c.mount("wanbig", config, first)
    c.mount("wanbig", layer, first)
    bodies = [seed.manifest_bytes(template, "wanbig-%d" % k) for k in range(a.big_manifests)]

    def one_tag(i):
        c.put_manifest("wanbig", "t%05d" % i, bodies[i % len(bodies)], template["mediaType"])

    seed.run_parallel(a.jobs, one_tag, range(a.big_tags))
    for k in range(min(a.big_manifests, a.big_tags)):
        distinct.append("wanbig:t%05d %s" % (k, layer_of(bodies[k])))

    # Distinct small images, then the big-tree images.
    def push(name, parts):
        cfg, lay, man = parts
        c.upload(name, cfg)
        c.upload(name, lay)
        c.put_manifest(name, "v1", man, seed.MT_OCI_MANIFEST)
        return "%s:v1 %s" % (name, layer_of(man))

    imgs = seed.run_parallel(a.jobs, lambda i: push("wanimg-%03d" % i, small_image(i)),
                             range(a.images))
    mems = seed.run_parallel(min(a.jobs, 2),
                             lambda i: push("wanmem-%02d" % i, mem_image(i, a.mem_entries)),
                             range(a.mem_images))
    distinct += imgs + mems

    os.makedirs(a.outdir, exist_ok=True)
    with open(os.path.join(a.outdir, "images.txt"), "w") as f:
        f.write("".join(line.split()[0] + "\n" for line in imgs))
    with open(os.path.join(a.outdir, "distinct.txt"), "w") as f:
        f.write("".join(line + "\n" for line in distinct))
    nrepos = a.repos + 1 + a.images + a.mem_images
    env = {
        "WAN_REPOS": a.repos, "WAN_REPO_TAGS": repo_tag_count,
        "WAN_BIG": "wanbig", "WAN_BIG_TAGS": a.big_tags, "WAN_BIG_MANIFESTS": a.big_manifests,
        "WAN_IMAGES": a.images, "WAN_IMG_FILE": RELEASE_FILE, "WAN_NEEDLE": NEEDLE,
        "WAN_MEM_IMAGES": a.mem_images, "WAN_MEM_ENTRIES": a.mem_entries,
        "WAN_CATALOG": nrepos,
        "WAN_TAGS_TOTAL": repo_tag_count + a.big_tags + a.images + a.mem_images,
    }
    with open(os.path.join(a.outdir, "fixture.env"), "w") as f:
        f.write("".join("%s=%s\n" % kv for kv in env.items()))
    print("wanfix.py: %d repositories (%d tags), %d distinct images, %d requests in %.1f s"
          % (nrepos, env["WAN_TAGS_TOTAL"], len(distinct), c.requests, time.monotonic() - t0),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (seed.SeedError, OSError) as e:
        print("wanfix.py: error: %s" % e, file=sys.stderr)
        sys.exit(1)
