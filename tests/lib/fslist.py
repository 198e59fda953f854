#!/usr/bin/python3
"""List a directory tree as a user sees it, one line per entry (stdlib only).

  fslist.py DIR [--named FILE] [--exclude PATH ...]

Walks DIR with lstat (symlinks are never followed) and prints, sorted by path, one line
per entry below DIR (DIR itself is left out):

  PATH TYPE MODE UID:GID size=N mtime=S dev=MAJ,MIN nlink=N sha256=HEX link=T hl=P xattr=L

TYPE is one of f d l c b p s; MODE is the 4-digit octal permission part (setuid,
setgid, sticky included); a field that does not apply is '-': size and link only for
files and symlinks, dev for devices, sha256 for files, nlink and hl for non-directories.
hl is the smallest path of the entry's hard-link group (entries sharing an inode inside
DIR), '-' when it is alone. xattr lists the user.* and security.capability attributes
as NAME=HEX joined by ',' (sorted). Paths and link targets escape space, backslash,
control bytes and bytes that are not UTF-8 as \\xNN.

--named FILE: the paths the tar(s) name, one per line; a directory not in FILE gets
mtime=- (its mtime is not defined by the image). tarlist.py prints the same format from
a layer blob, so 'diff' compares a mounted layer tree with its tar.

The module is shared by tarlist.py and treecmp.py: scan() returns {path: record}.
"""
import argparse
import errno
import hashlib
import os
import stat
import sys

FIELDS = ("type", "mode", "owner", "size", "mtime", "dev", "nlink", "sha256", "link", "hl",
          "xattr")
TYPES = {stat.S_IFREG: "f", stat.S_IFDIR: "d", stat.S_IFLNK: "l", stat.S_IFCHR: "c",
         stat.S_IFBLK: "b", stat.S_IFIFO: "p", stat.S_IFSOCK: "s"}


def esc(s):
    """Escape a str (possibly holding surrogate escapes) for a one-line listing."""
    out = []
    for ch in s:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:
            out.append("\\x%02x" % (o - 0xDC00))
        elif ch in " \\" or o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    return "".join(out)


def keep_xattr(name):
    return name.startswith("user.") or name == "security.capability"


def fmt_xattrs(d):
    if not d:
        return "-"
    return ",".join("%s=%s" % (esc(k), v.hex()) for k, v in sorted(d.items()))


def record(typ, mode, uid, gid, size=None, mtime=None, dev=None, nlink=None, sha=None,
           link=None, hl=None, xattrs=None):
    """A listing record: every field already formatted as its text."""
    return {
        "type": typ,
        "mode": "%04o" % mode,
        "owner": "%d:%d" % (uid, gid),
        "size": "-" if size is None else str(size),
        "mtime": "-" if mtime is None else str(mtime),
        "dev": "-" if dev is None else "%d,%d" % dev,
        "nlink": "-" if nlink is None else str(nlink),
        "sha256": sha or "-",
        "link": "-" if link is None else esc(link),
        "hl": "-" if hl is None else esc(hl),
        "xattr": fmt_xattrs(xattrs),
    }


def fmt_line(path, r):
    return "%s %s %s %s size=%s mtime=%s dev=%s nlink=%s sha256=%s link=%s hl=%s xattr=%s" % (
        esc(path), r["type"], r["mode"], r["owner"], r["size"], r["mtime"], r["dev"],
        r["nlink"], r["sha256"], r["link"], r["hl"], r["xattr"])


def file_sha256(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def read_named(path):
    if not path:
        return None
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return {ln.rstrip("\n") for ln in f if ln.rstrip("\n")}


def excluded(rel, excludes):
    return any(rel == x or rel.startswith(x.rstrip("/") + "/") for x in excludes)


def scan(root, named=None, excludes=(), errors=None):
    """{relative path: record} for every entry below root. Errors (EIO on a mount...)
    are appended to the list errors as text, or raised when errors is None."""
    recs, stats, inodes = {}, {}, {}

    def onerror(e):
        if errors is None:
            raise e
        errors.append("%s: %s" % (e.filename, e.strerror))

    broot = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(broot, onerror=onerror):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.fsdecode(os.path.relpath(full, broot))
            if excluded(rel, excludes):
                continue
            try:
                st = os.lstat(full)
            except OSError as e:
                onerror(e)
                continue
            stats[rel] = (full, st)
            if not stat.S_ISDIR(st.st_mode):
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
        dirnames[:] = [d for d in dirnames
                       if not excluded(os.fsdecode(os.path.relpath(os.path.join(dirpath, d),
                                                                   broot)), excludes)]
    for rel, (full, st) in stats.items():
        fmt = stat.S_IFMT(st.st_mode)
        typ = TYPES.get(fmt, "?")
        isdir = fmt == stat.S_IFDIR
        size = link = sha = dev = hl = nlink = None
        if fmt in (stat.S_IFCHR, stat.S_IFBLK):
            dev = (os.major(st.st_rdev), os.minor(st.st_rdev))
        elif fmt == stat.S_IFLNK:
            size = st.st_size
        elif fmt == stat.S_IFREG:
            size = st.st_size
        try:
            if fmt == stat.S_IFREG:
                sha = file_sha256(full)
            elif fmt == stat.S_IFLNK:
                link = os.fsdecode(os.readlink(full))
        except OSError as e:
            if errors is None:
                raise
            errors.append("%s: %s" % (rel, e.strerror))
            sha = link = "ERROR(%s)" % e.strerror.replace(" ", "_")
        xattrs = {}
        try:
            for n in os.listxattr(full, follow_symlinks=False):
                if keep_xattr(n):
                    xattrs[n] = os.getxattr(full, n, follow_symlinks=False)
        except OSError as e:
            # A file system without xattr support has none: the field shows the
            # difference; anything else is a read error.
            if e.errno not in (errno.ENOTSUP, errno.ENOSYS, errno.ENODATA):
                if errors is None:
                    raise
                errors.append("%s: xattrs: %s" % (rel, e.strerror))
                xattrs = {"ERROR": e.strerror.encode()}
        if not isdir:
            nlink = st.st_nlink
            group = inodes[(st.st_dev, st.st_ino)]
            if len(group) > 1:
                hl = min(group)
        mtime = st.st_mtime_ns // 1000000000
        if isdir and named is not None and rel not in named:
            mtime = None
        recs[rel] = record(typ, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, size, mtime,
                           dev, nlink, sha, link, hl, xattrs)
    return recs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--named")
    ap.add_argument("--exclude", action="append", default=[])
    a = ap.parse_args()
    errors = []
    recs = scan(a.dir, read_named(a.named), a.exclude, errors)
    out = sys.stdout
    for p in sorted(recs):
        out.write(fmt_line(p, recs[p]) + "\n")
    for e in errors:
        sys.stderr.write("fslist.py: %s\n" % e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
