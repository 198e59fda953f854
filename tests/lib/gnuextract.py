#!/usr/bin/python3
"""A second rootfs oracle: GNU tar extraction with hand-made OCI whiteout handling.

  gnuextract.py DEST LAYER.blob ...          (bottom layer first; run as root)

For each layer, in order: decompress it (gzip, zstd, or none, by magic bytes); for every
'.wh..wh..opq' in directory D remove D's existing children; for every '.wh.NAME' remove
NAME; remove an existing directory that an entry replaces with a non-directory (and an
existing non-directory that a directory entry replaces); then 'tar -x' the layer without
the whiteout files, keeping owners, modes, devices and xattrs. Finally every path the
layers name gets the mtime of the top-most layer that names it (extracting an upper
layer touches the directories it writes into). Used to cross-check 'umoci unpack':
treecmp.py must find no difference between the two.
"""
import io
import os
import posixpath
import shutil
import subprocess
import sys
import tarfile
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tarlist  # noqa: E402


def rm(p):
    if os.path.isdir(p) and not os.path.islink(p):
        shutil.rmtree(p)
    elif os.path.lexists(p):
        os.unlink(p)


def main():
    dest, blobs = sys.argv[1], sys.argv[2:]
    os.makedirs(dest, exist_ok=True)
    mtimes = {}
    for blob in blobs:
        with open(blob, "rb") as f:
            tar = tarlist.decompress(f.read(), "auto")
        with tarfile.open(fileobj=io.BytesIO(tar), mode="r:",
                          encoding="utf-8", errors="surrogateescape") as tf:
            members = tf.getmembers()
        for m in members:
            p = tarlist.normalise(m.name)
            if not p:
                continue
            d, b = posixpath.split(p)
            full = os.path.join(dest, p)
            if b == ".wh..wh..opq":
                dd = os.path.join(dest, d)
                if os.path.isdir(dd) and not os.path.islink(dd):
                    for c in os.listdir(dd):
                        rm(os.path.join(dd, c))
            elif b.startswith(".wh."):
                rm(os.path.join(dest, d, b[4:]))
            elif m.isdir():
                if os.path.lexists(full) and not os.path.isdir(full):
                    rm(full)
            elif os.path.isdir(full) and not os.path.islink(full):
                rm(full)
        with tempfile.NamedTemporaryFile() as t:
            t.write(tar)
            t.flush()
            subprocess.run(["tar", "-x", "-p", "--same-owner", "--numeric-owner", "--xattrs",
                            "--xattrs-include=*", "--exclude=.wh.*", "-f", t.name,
                            "-C", dest], check=True)
        for m in members:
            p = tarlist.normalise(m.name)
            if p and not posixpath.basename(p).startswith(".wh."):
                mtimes[p] = m.mtime
    for p, t in sorted(mtimes.items(), key=lambda kv: -kv[0].count("/")):
        full = os.path.join(dest, p)
        if os.path.lexists(full):
            os.utime(full, ns=(int(t * 1e9), int(t * 1e9)), follow_symlinks=False)


if __name__ == "__main__":
    main()
