#!/usr/bin/python3
"""Oracle: a layer blob's own tar listing, as the layer's tree shows it (stdlib only).

  tarlist.py LAYER.blob [--compression auto|gzip|zstd|none] [--named-out FILE]

Decompresses the blob (gzip with the gzip module, zstd with /usr/bin/zstd, chosen by
magic bytes with 'auto', the default), parses the tar with Python's tarfile and prints
the tree that extracting it into an empty directory would give, in fslist.py's format
(so 'diff' against 'fslist.py MOUNT/REPO/TAG/layers/I' compares them):
  - paths are normalised ('./a//b/' → 'a/b', a leading '/' is dropped); an entry whose
    path escapes the root through '..' is dropped (warning on stderr);
  - parent directories the tar never names appear as directories 0755 0:0 mtime=-;
  - a later entry with the same path replaces the earlier one (a directory named twice
    keeps its children and takes the later attributes);
  - a hard link shares its target's inode (content and attributes; nlink = group size);
    a link to a missing entry or to a directory is dropped (warning on stderr);
  - whiteout files (.wh.*) are listed as stored: they are regular files in a layer;
  - symlinks are 0777 whatever their header says (extraction on Linux makes them so);
  - xattrs: PAX SCHILY.xattr.* (raw bytes) and LIBARCHIVE.xattr.* (URL-encoded name,
    base64 value), user.* and security.capability only;
  - GNU sparse files (0.0, 0.1, 1.0) are listed with their full size and content hash.
--named-out FILE writes the paths the tar names (after normalisation, still present).
Exit status: 0, or 2 when the blob cannot be decompressed or parsed (message on stderr).
"""
import argparse
import base64
import gzip
import hashlib
import io
import os
import posixpath
import subprocess
import sys
import tarfile
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fslist  # noqa: E402


def warn(msg):
    sys.stderr.write("tarlist.py: %s\n" % msg)


def decompress(data, how):
    if how == "auto":
        if data[:2] == b"\x1f\x8b":
            how = "gzip"
        elif data[:4] == b"\x28\xb5\x2f\xfd":
            how = "zstd"
        else:
            how = "none"
    if how == "gzip":
        return gzip.decompress(data)
    if how == "zstd":
        p = subprocess.run(["/usr/bin/zstd", "-q", "-d", "-c"], input=data,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise ValueError("zstd: " + p.stderr.decode(errors="replace").strip())
        return p.stdout
    return data


def normalise(name):
    """Normalised relative path, '' for the root, None if it escapes the root."""
    p = posixpath.normpath(name.lstrip("/")) if name.lstrip("/") else "."
    if p == "..":
        return None
    if p.startswith("../"):
        return None
    return "" if p == "." else p


class Inode:
    def __init__(self, m, content):
        self.type = {tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l", tarfile.CHRTYPE: "c",
                     tarfile.BLKTYPE: "b", tarfile.FIFOTYPE: "p"}.get(m.type, "f")
        # Linux has no symlink modes: extraction makes every symlink 0777.
        self.mode = 0o777 if self.type == "l" else m.mode & 0o7777
        self.uid, self.gid = m.uid, m.gid
        self.mtime = int(m.mtime // 1)
        self.size = len(content) if self.type == "f" else None
        self.sha = hashlib.sha256(content).hexdigest() if self.type == "f" else None
        self.link = m.linkname if self.type == "l" else None
        if self.type == "l":
            self.size = len(m.linkname.encode("utf-8", "surrogateescape"))
        self.dev = (m.devmajor, m.devminor) if self.type in ("c", "b") else None
        self.xattrs = {}
        for k, v in m.pax_headers.items():
            if k.startswith("SCHILY.xattr."):
                n, val = k[len("SCHILY.xattr."):], v.encode("utf-8", "surrogateescape")
            elif k.startswith("LIBARCHIVE.xattr."):
                n = urllib.parse.unquote(k[len("LIBARCHIVE.xattr."):])
                val = base64.b64decode(v + "=" * (-len(v) % 4))
            else:
                continue
            if fslist.keep_xattr(n):
                self.xattrs[n] = val


class Implicit:
    type, mode, uid, gid, mtime = "d", 0o755, 0, 0, None
    size = sha = link = dev = None
    xattrs = {}


def listing(tar):
    tf = tarfile.open(fileobj=io.BytesIO(tar), mode="r:", encoding="utf-8",
                      errors="surrogateescape")
    tree = {}  # path → Inode (shared by hard links) or Implicit()
    named = set()

    def remove(p):
        for q in [q for q in tree if q == p or q.startswith(p + "/")]:
            del tree[q]
            named.discard(q)

    for m in tf:
        p = normalise(m.name)
        if p is None:
            warn("dropped %r: escapes the root" % m.name)
            continue
        if p == "":
            continue  # the root's own entry: the listing starts below it
        parts = p.split("/")
        for i in range(1, len(parts)):
            a = "/".join(parts[:i])
            if a in tree and tree[a].type != "d":
                warn("%r replaces non-directory %r with a directory" % (m.name, a))
                remove(a)
            if a not in tree:
                tree[a] = Implicit()
        if m.islnk():
            t = normalise(m.linkname)
            tgt = tree.get(t) if t else None
            if tgt is None or tgt.type == "d" or t == p:
                warn("dropped hard link %r → %r: no such entry" % (m.name, m.linkname))
                continue
            remove(p)
            tree[p] = tgt
            named.add(p)
            continue
        content = b""
        if m.isreg():
            f = tf.extractfile(m)
            content = f.read() if f else b""
        node = Inode(m, content)
        old = tree.get(p)
        if not (node.type == "d" and old is not None and old.type == "d"):
            remove(p)
        tree[p] = node
        named.add(p)
    groups = {}
    for p, n in tree.items():
        if n.type != "d":
            groups.setdefault(id(n), []).append(p)
    recs = {}
    for p, n in tree.items():
        nlink = hl = None
        if n.type != "d":
            g = groups[id(n)]
            nlink = len(g)
            hl = min(g) if len(g) > 1 else None
        recs[p] = fslist.record(n.type, n.mode, n.uid, n.gid, n.size, n.mtime, n.dev, nlink,
                                n.sha, n.link, hl, n.xattrs)
    return recs, named


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("blob")
    ap.add_argument("--compression", default="auto",
                    choices=("auto", "gzip", "zstd", "none"))
    ap.add_argument("--named-out")
    a = ap.parse_args()
    try:
        with open(a.blob, "rb") as f:
            tar = decompress(f.read(), a.compression)
        recs, named = listing(tar)
    except (OSError, EOFError, ValueError, OverflowError, tarfile.TarError) as e:
        warn("%s: %s" % (a.blob, e))
        return 2
    for p in sorted(recs):
        sys.stdout.write(fslist.fmt_line(p, recs[p]) + "\n")
    if a.named_out:
        with open(a.named_out, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("".join(p + "\n" for p in sorted(named)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
