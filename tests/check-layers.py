#!/usr/bin/env python3
"""tests/check-layers.py BUILD_DIR — prove the dependency picture of README "Code".

    fs (FUSE edge: fs/ll*.c, fs/main.c)
     └─ fs (namespace, caches, views, image_reg) ─┬─ registry ── auth ── common
                                                  └─ image ─────────────── common

Three checks, each printing one line per violation; exit 1 if any:
  1. includes: a source file includes only headers of its own layer or of a layer
     below it; only the FUSE edge includes libfuse.
  2. symbols: every undefined symbol of an object that another object of the project
     defines is defined in the same layer or a layer below (nm of BUILD_DIR's objects),
     which is what the archive link order enforces, checked per object rather than
     relying on which archive members a particular link happened to pull in.
  3. cycles: no two files call each other.
"""
import glob
import os
import re
import subprocess
import sys

BELOW = {
    "common": set(),
    "auth": {"common"},
    "image": {"common"},
    "registry": {"auth", "common"},
    "fs": {"registry", "image", "auth", "common"},
    "edge": {"fs", "registry", "image", "auth", "common"},
}


def layer_of(path):
    """'fs/ll_view.c' -> 'edge'; 'image/tar.h' -> 'image'; None outside the layers."""
    top, _, name = path.partition("/")
    if top == "fs" and (name.startswith("ll") or name == "main.c"):
        return "edge"
    return top if top in BELOW else None


def main():
    build = sys.argv[1]
    bad = []

    for src in sorted(glob.glob("*/*.c") + glob.glob("*/*.h")):
        me = layer_of(src)
        if me is None:
            continue
        with open(src, encoding="utf-8") as f:
            for no, line in enumerate(f, 1):
                m = re.match(r'\s*#\s*include\s*[<"]([^">]+)[">]', line)
                if not m:
                    continue
                inc = m.group(1)
                if inc.startswith("fuse") and me != "edge":
                    bad.append(f"{src}:{no}: includes libfuse ({inc}) outside the FUSE edge")
                they = layer_of(inc) if "/" in inc else None
                # fs/ll.h is the edge's own header: only the edge may include it.
                if inc.startswith("fs/ll") and me != "edge":
                    they = "edge"
                if they and they != me and they not in BELOW[me]:
                    bad.append(f"{src}:{no}: {me} includes {inc} ({they})")

    defs, undefs = {}, {}
    for obj in sorted(glob.glob(os.path.join(build, "*", "*.o"))):
        rel = os.path.relpath(obj, build)[:-2] + ".c"
        if layer_of(rel) is None or not os.path.exists(rel):
            continue  # not a layer's, or left over from a file that moved
        out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
        d, u = set(), set()
        for line in out.splitlines():
            p = line.split()
            if len(p) == 3 and p[1] in "TDBRC":
                d.add(p[2])
            elif len(p) == 2 and p[0] == "U":
                u.add(p[1])
        defs[rel], undefs[rel] = d, u
    if not defs:
        print(f"check-layers: no objects under {build}", file=sys.stderr)
        return 2
    owner = {s: f for f, d in defs.items() for s in d}
    calls = {f: set() for f in defs}
    for f, u in undefs.items():
        for s in u:
            g = owner.get(s)
            if g is None or g == f:
                continue
            calls[f].add(g)
            a, b = layer_of(f), layer_of(g)
            if a != b and b not in BELOW[a]:
                bad.append(f"{f}: {a} calls {s} of {g} ({b})")
    for f in sorted(calls):
        for g in sorted(calls[f]):
            if f < g and f in calls[g]:
                bad.append(f"{f} and {g} call each other")

    for line in bad:
        print("check-layers: " + line)
    if bad:
        return 1
    print(f"check-layers: {len(defs)} objects, dependencies one-way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
