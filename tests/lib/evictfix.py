#!/usr/bin/python3
"""Images for tests/integration/74-evict.sh, pushed with tests/lib/seed.py's client.

  evictfix.py URL OUTDIR [--images 6] [--files 3000]

Pushes ev-N:v1 (N < --images): one tar+gzip layer with --files small files in
directories of 500 (each file's content names it), and big.bin (3 MiB of seeded
bytes: several zran spans); the last image has a second layer that whites out
d000/f00000 and adds d000/added. Writes OUTDIR/expect-N.txt: every regular file
of image N's rootfs as "PATH SIZE SHA256", sorted by path (the oracle), and
OUTDIR/layers.txt: one "REPO DIGEST" line per layer blob.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed  # noqa: E402

MTIME = 1700000000


def add(tar, files, path, data=None):
    seed.tar_add(tar, path, data, mtime=MTIME)
    if data is not None:
        files[path] = data


def layer(build):
    buf, files = io.BytesIO(), {}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        build(tar, files)
    raw = buf.getvalue()
    return raw, gzip.compress(raw, compresslevel=6, mtime=0), files


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("outdir")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--files", type=int, default=3000)
    a = ap.parse_args(argv)
    c = seed.Client(a.url)
    os.makedirs(a.outdir, exist_ok=True)
    lines = []
    for n in range(a.images):
        def base(tar, files, n=n):
            for i in range(a.files):
                if i % 100 == 0:
                    add(tar, files, "d%03d" % (i // 100))
                add(tar, files, "d%03d/f%05d" % (i // 100, i),
                    b"image %d file %d\n" % (n, i))
            add(tar, files, "big.bin", seed.seeded_bytes(3 << 20, "ev-%d" % n))

        def top(tar, files):
            add(tar, files, "d000/.wh.f00000", b"")
            add(tar, files, "d000/added", b"added by the second layer\n")

        layers = [layer(base)]
        if n == a.images - 1:
            layers.append(layer(top))
        rootfs = {}
        for _, _, files in layers:
            for path, data in files.items():
                d, _, name = path.rpartition("/")
                if name.startswith(".wh."):
                    rootfs.pop((d + "/" if d else "") + name[4:], None)
                else:
                    rootfs[path] = data
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers",
                       "diff_ids": [seed.digest_of(raw) for raw, _, _ in layers]},
        }, sort_keys=True).encode()
        repo = "ev-%d" % n
        c.upload(repo, config)
        for _, gz, _ in layers:
            c.upload(repo, gz)
            lines.append("%s %s\n" % (repo, seed.digest_of(gz)))
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": seed.MT_OCI_MANIFEST,
            "config": {"mediaType": seed.MT_OCI_CONFIG, "size": len(config),
                       "digest": seed.digest_of(config)},
            "layers": [{"mediaType": seed.MT_OCI_LAYER, "size": len(gz),
                        "digest": seed.digest_of(gz)} for _, gz, _ in layers],
        }).encode()
        c.put_manifest(repo, "v1", manifest, seed.MT_OCI_MANIFEST)
        with open(os.path.join(a.outdir, "expect-%d.txt" % n), "w") as f:
            for path in sorted(rootfs):
                data = rootfs[path]
                f.write("%s %d %s\n" % (path, len(data), hashlib.sha256(data).hexdigest()))
    with open(os.path.join(a.outdir, "layers.txt"), "w") as f:
        f.writelines(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
