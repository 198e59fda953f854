#!/usr/bin/python3
"""Compare two directory trees as a user sees them; print every difference (stdlib only).

  treecmp.py A B [--named FILE] [--ignore-mtime-of-implicit-dirs] [--exclude PATH ...]

Both trees are read with lstat (symlinks never followed) through fslist.scan(), and for
every path below A or B these must agree: presence; type; mode including setuid, setgid
and sticky; uid and gid; size of regular files and symlinks; mtime in whole seconds; link
target; sha256 of every regular file; hard-link groups (the same st_ino within A ⇔ the
same within B) and st_nlink of non-directories; device major/minor; user.* and
security.capability xattrs (names and values). The roots themselves are not compared.

--named FILE       the paths the tar(s) name, one per line (mkimage.py --named-out,
                   tarlist.py --named-out): directories not in it have no defined mtime,
                   so their mtimes are not compared.
--ignore-mtime-of-implicit-dirs
                   without --named: compare no directory mtime at all (with --named it
                   is what --named does anyway).
--dir-mtime-quirks FILE
                   a directory whose mtime differs is not counted as a difference; its
                   path is written to FILE instead (raw, one per line) and printed as a
                   "quirk:" line. For comparing two oracles: umoci leaves the mtime of a
                   directory an upper layer creates entries under (MkdirAll of implicit
                   parents) or empties (opaque marker) at the time of the unpack.
--exclude PATH     leave PATH (relative to the roots) and everything below it out; may be
                   repeated.
Output: one line per difference, "PATH: FIELD: A-VALUE != B-VALUE", or "PATH: only in A";
then a summary line on stderr. Exit 0 when the trees agree, 1 when they differ, 2 when a
tree cannot be read completely (read errors are listed).
"""
import argparse
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fslist  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--named")
    ap.add_argument("--ignore-mtime-of-implicit-dirs", action="store_true")
    ap.add_argument("--exclude", action="append", default=[])
    ap.add_argument("--dir-mtime-quirks")
    a = ap.parse_args()
    for d in (a.a, a.b):
        if not os.path.isdir(d):
            sys.stderr.write("treecmp.py: %s: not a directory\n" % d)
            return 2
    named = fslist.read_named(a.named)
    if named is None and a.ignore_mtime_of_implicit_dirs:
        named = set()
    errors = []
    ra = fslist.scan(a.a, named, a.exclude, errors)
    rb = fslist.scan(a.b, named, a.exclude, errors)
    diffs, quirks = [], []
    for p in sorted(set(ra) | set(rb)):
        if p not in rb:
            diffs.append("%s: only in A (%s)" % (fslist.esc(p), ra[p]["type"]))
            continue
        if p not in ra:
            diffs.append("%s: only in B (%s)" % (fslist.esc(p), rb[p]["type"]))
            continue
        for f in fslist.FIELDS:
            if ra[p][f] != rb[p][f] and a.dir_mtime_quirks and f == "mtime" and \
                    ra[p]["type"] == "d" and rb[p]["type"] == "d":
                quirks.append(p)
                print("quirk: %s: mtime: %s != %s" % (fslist.esc(p), ra[p][f], rb[p][f]))
            elif ra[p][f] != rb[p][f]:
                diffs.append("%s: %s: %s != %s" % (fslist.esc(p), f, ra[p][f], rb[p][f]))
    if a.dir_mtime_quirks:
        with open(a.dir_mtime_quirks, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("".join(q + "\n" for q in quirks))
    for e in errors:
        print("read error: " + e)
    for d in diffs:
        print(d)
    sys.stderr.write("treecmp.py: %d entries in A, %d in B, %d differences, %d read errors\n"
                     % (len(ra), len(rb), len(diffs), len(errors)))
    if errors:
        return 2
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
