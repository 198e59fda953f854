#!/usr/bin/python3
"""bench/mkcontent.py — the benchmark images for bench/content.sh, built from files already
on this machine, as OCI image layouts with tar+gzip layers.

    mkcontent.py --cache DIR [--kind multi|single]

Prints shell assignments (for `eval`) describing the layout. The layout is cached under
DIR/<kind>/<key>/ where <key> hashes the selected file list (path, type, size, mtime, mode)
and this builder's version, so a rerun on an unchanged machine reuses it; other keys of the
same kind are removed before a build so that at most one image of each kind is kept, and
so is anything else in DIR (caches of older versions of this script).

multi (default, ~1.3 GB uncompressed, ~0.5 GB of blobs): three layers (0 = bottom), a
realistic mix:
  0 base     /usr/bin, /usr/sbin and parts of /usr/share (docs, man pages, locales, ...):
             many small files
  1 runtime  Python, git-core and PostgreSQL libraries
  2 app      the Free Pascal sources (~10k files), one big shared library (the file the
             read benchmarks use), and a whiteout hiding one /usr/share/doc entry of layer 0

single (>= 1 GiB uncompressed): one layer, /usr/lib/x86_64-linux-gnu, padded with other
directories of /usr/lib and /usr/share until the files alone reach 1 GiB: the case where
one big layer must be inflated in one stream (nothing to spread over cores).

Tars come from GNU tar (--sort=name, numeric owner 0:0, original modes and mtimes; parent
directories above the selected roots are not named, as in many real layers); gzip is
zlib level 6 with a header carrying no name or time, so the bytes are reproducible.
Beside the multi layout, DIR/multi/<key>/big.gz holds the big file alone, gzip'd the same
way (an anchor for the sequential read; not part of the image).
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zlib

VERSION = "2"
MIN_BIG = 25 << 20
SINGLE_MIN = 1 << 30
SINGLE = "usr/lib/x86_64-linux-gnu"
SINGLE_PAD = ["usr/lib/gcc", "usr/libexec", "usr/lib/llvm-14", "usr/lib/python3",
              "usr/lib/python3.11", "usr/share/fpcsrc", "usr/share/doc", "usr/share/locale",
              "usr/lib/git-core", "usr/bin"]

BASE = ["usr/bin", "usr/sbin"] + ["usr/share/" + d for d in (
    "doc", "man", "locale", "perl", "i18n", "mime", "X11", "vim")]
RUNTIME = ["usr/lib/python3", "usr/lib/python3.11", "usr/lib/git-core", "usr/lib/postgresql"]
APP = ["usr/share/fpcsrc"]
BIG_PREFERRED = "usr/lib/x86_64-linux-gnu/libLLVM-14.so.1"
BIG_SYNTH = "opt/bench/big.bin"  # used only if no big enough file exists


def walk(root_rel):
    """(relpath, kind, size, mtime_ns, mode) for root_rel and everything below it."""
    out = []
    top = "/" + root_rel
    if not os.path.lexists(top):
        return out
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in [""] + sorted(filenames) + dirnames:
            p = os.path.join(dirpath, name) if name else dirpath
            if name == "" and dirpath != top:
                continue  # directories are listed by their parent
            st = os.lstat(p)
            out.append((p[1:], stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns,
                        stat.S_IMODE(st.st_mode)))
    return out


def pick_big():
    """The big file's path in the image and its source on the host (None: synthesize)."""
    p = "/" + BIG_PREFERRED
    if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) >= MIN_BIG:
        return BIG_PREFERRED, p
    best = None
    d = "/usr/lib/x86_64-linux-gnu"
    if os.path.isdir(d):
        for n in sorted(os.listdir(d)):
            q = os.path.join(d, n)
            if os.path.isfile(q) and not os.path.islink(q):
                s = os.path.getsize(q)
                if s >= MIN_BIG and (best is None or s > best[0]):
                    best = (s, q)
    if best:
        return best[1][1:], best[1]
    return BIG_SYNTH, None


def first_doc_entry():
    try:
        return sorted(os.listdir("/usr/share/doc"))[0]
    except (OSError, IndexError):
        return None


def synth_big(dest):
    """Concatenate the sorted regular files of /usr/bin into 32 MiB (deterministic)."""
    want = 32 << 20
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "wb") as out:
        while want > 0:
            for n in sorted(os.listdir("/usr/bin")):
                q = os.path.join("/usr/bin", n)
                if want <= 0 or os.path.islink(q) or not os.path.isfile(q):
                    continue
                with open(q, "rb") as f:
                    b = f.read(want)
                out.write(b)
                want -= len(b)
    os.utime(dest, ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))


def build_layer(args):
    """Run tar over the layer's (dir, paths) groups, gzip it; return its descriptor facts."""
    groups, dest = args
    cmd = ["tar", "--create", "--file=-", "--sort=name", "--format=gnu", "--numeric-owner",
           "--owner=0", "--group=0"]
    for cdir, paths in groups:
        cmd += ["-C", cdir] + paths
    tmp = dest + ".tmp"
    diff = hashlib.sha256()
    comp = hashlib.sha256()
    usize = csize = 0
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    with open(tmp, "wb") as out:
        while True:
            chunk = proc.stdout.read(1 << 20)
            if not chunk:
                break
            usize += len(chunk)
            diff.update(chunk)
            c = z.compress(chunk)
            comp.update(c)
            csize += len(c)
            out.write(c)
        c = z.flush()
        comp.update(c)
        csize += len(c)
        out.write(c)
    rc = proc.wait()
    if rc not in (0, 1):  # 1: "file changed as we read it" and similar warnings
        raise SystemExit(f"mkcontent: tar failed ({rc}): {' '.join(cmd)}")
    return tmp, "sha256:" + comp.hexdigest(), csize, "sha256:" + diff.hexdigest(), usize


def put_blob(layout, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def single_roots():
    """The single layer's roots: SINGLE, then padding until the files reach SINGLE_MIN."""
    roots, total = [], 0
    for p in [SINGLE] + SINGLE_PAD:
        if total >= SINGLE_MIN:
            break
        w = walk(p)
        if w:
            roots.append(p)
            total += sum(size for _, kind, size, _, _ in w if kind == stat.S_IFREG)
    return roots


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--kind", choices=("multi", "single"), default="multi")
    a = ap.parse_args()
    a.cache = os.path.abspath(a.cache)

    if a.kind == "single":
        big_rel, big_src, wh = None, None, None
        layers = [[("/", single_roots())]]
    else:
        big_rel, big_src = pick_big()
        wh = first_doc_entry()
        layers = [
            [("/", [p for p in BASE if os.path.lexists("/" + p)])],
            [("/", [p for p in RUNTIME if os.path.lexists("/" + p)])],
            [("/", [p for p in APP if os.path.lexists("/" + p)] + ([big_rel] if big_src else []))],
        ]
    listing = []
    for i, groups in enumerate(layers):
        for _, paths in groups:
            for p in paths:
                listing.append((i, walk(p)))
    key_src = json.dumps([VERSION, a.kind, big_rel, wh, listing]).encode()
    key = hashlib.sha256(key_src).hexdigest()[:16]
    entries = sum(len(w) for _, w in listing)

    os.makedirs(a.cache, exist_ok=True)
    for other in os.listdir(a.cache):  # older versions of this cache
        if other not in ("multi", "single"):
            shutil.rmtree(os.path.join(a.cache, other), ignore_errors=True)
    a.cache = os.path.join(a.cache, a.kind)
    root = os.path.join(a.cache, key)
    layout = os.path.join(root, "layout")
    meta_path = os.path.join(root, "meta.sh")
    if not os.path.exists(meta_path):
        os.makedirs(a.cache, exist_ok=True)
        for other in os.listdir(a.cache):
            if other != key:
                shutil.rmtree(os.path.join(a.cache, other), ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(os.path.join(layout, "blobs", "sha256"))
        stage = os.path.join(root, "stage")
        stage_paths = []
        if a.kind == "multi" and big_src is None:
            synth_big(os.path.join(stage, big_rel))
            stage_paths.append(big_rel)
        if wh:
            os.makedirs(os.path.join(stage, "usr/share/doc"), exist_ok=True)
            open(os.path.join(stage, "usr/share/doc", ".wh." + wh), "wb").close()
            os.utime(os.path.join(stage, "usr/share/doc", ".wh." + wh),
                     ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))
            stage_paths.append("usr/share/doc/.wh." + wh)
        if stage_paths:
            layers[-1].append((stage, stage_paths))
        jobs = [(g, os.path.join(root, f"layer{i}")) for i, g in enumerate(layers)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
            built = list(ex.map(build_layer, jobs))
        descs, diff_ids, facts = [], [], []
        for tmp, dig, csize, diff_id, usize in built:
            os.rename(tmp, os.path.join(layout, "blobs", "sha256", dig.split(":")[1]))
            descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                          "digest": dig, "size": csize})
            diff_ids.append(diff_id)
            facts.append((dig, csize, usize))
        config = {"created": "2024-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
                  "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  "history": [{"created": "2024-01-01T00:00:00Z", "created_by": n}
                              for n in (("bench base", "bench runtime", "bench app")
                                        if a.kind == "multi" else ("bench libraries",))]}
        cdig, csz = put_blob(layout, json.dumps(config, sort_keys=True).encode())
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": cdig, "size": csz},
                    "layers": descs}
        mdig, msz = put_blob(layout, json.dumps(manifest, sort_keys=True).encode())
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "digest": mdig, "size": msz,
                                "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}
        with open(os.path.join(layout, "index.json"), "w") as f:
            json.dump(index, f)
        with open(os.path.join(layout, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        if a.kind == "multi":
            big_layer = 2
            big_path = big_src or os.path.join(stage, big_rel)
            big_size = os.path.getsize(big_path)
            big_sha = hashlib.sha256()
            with open(big_path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    big_sha.update(chunk)
            # The big file alone, gzip'd the same way: the sequential-read benchmark's
            # per-file zcat anchor (not part of the image).
            z = zlib.compressobj(6, zlib.DEFLATED, 31)
            with open(big_path, "rb") as f, open(os.path.join(root, "big.gz"), "wb") as out:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    out.write(z.compress(chunk))
                out.write(z.flush())
        shutil.rmtree(stage, ignore_errors=True)
        lines = [f"IMG_LAYOUT={layout}", f"IMG_KEY={key}", f"IMG_NLAYERS={len(facts)}",
                 f"IMG_CONFIG={cdig}", f"IMG_MANIFEST={mdig}", f"IMG_ENTRIES={entries}",
                 f"IMG_USIZE={sum(u for _, _, u in facts)}",
                 f"IMG_CSIZE={sum(c for _, c, _ in facts)}"]
        if a.kind == "multi":
            lines += [f"IMG_BIG={big_rel}", f"IMG_BIG_LAYER={big_layer}",
                      f"IMG_BIG_SIZE={big_size}", f"IMG_BIG_SHA256={big_sha.hexdigest()}",
                      f"IMG_WHITEOUT=usr/share/doc/{wh or ''}",
                      f"IMG_BIG_GZ={os.path.join(root, 'big.gz')}"]
        for i, (dig, csize, usize) in enumerate(facts):
            lines += [f"IMG_LAYER{i}_DIGEST={dig}", f"IMG_LAYER{i}_CSIZE={csize}",
                      f"IMG_LAYER{i}_USIZE={usize}"]
        with open(meta_path + ".tmp", "w") as f:
            f.write("".join(line + "\n" for line in lines))
        os.rename(meta_path + ".tmp", meta_path)
        print("IMG_BUILT=1")
    else:
        print("IMG_BUILT=0")
    with open(meta_path) as f:
        sys.stdout.write(f.read())


if __name__ == "__main__":
    main()
