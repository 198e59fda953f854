#!/usr/bin/python3
"""Build OCI image layouts from a JSON spec, controlling every tar detail (stdlib only).

  mkimage.py build SPEC.json OUTDIR [--ref REF] [--named-out FILE] [--layers-out FILE]
      Add the image SPEC describes to the OCI layout OUTDIR (created if missing) under
      the ref name REF (default: the spec's "ref", else "latest"). Prints the manifest
      digest. --named-out writes the paths the layers' tars name (normalised, one per
      line, sorted, union over all layers) for treecmp --named / fslist --named;
      --layers-out writes one line per layer: "INDEX DIGEST MEDIA_TYPE SIZE".
      --plain-oci: build the same tars as OCI tar+gzip layers under an OCI manifest (the
      twin umoci 0.4.7 can unpack: it refuses docker manifests and zstd layers); the
      config's diff_ids are those of the original.
  mkimage.py index OUTDIR NAME REF_A REF_B [--no-attestation]
      Add an OCI image index under ref NAME listing the images REF_A and REF_B of OUTDIR
      with the platforms of their configs, plus an "unknown/unknown" attestation
      manifest (in-toto layer, vnd.docker.reference.* annotations) that clients must
      skip. Prints the index digest.
  mkimage.py push OUTDIR REF URL/REPO:TAG
      Upload REF (an image or an index with its images) to a registry over plain HTTP
      (URL is http://HOST:PORT) with the registry API itself: blobs by monolithic upload,
      then manifests with their exact bytes. For what skopeo cannot read from an OCI
      layout (a docker schema2 manifest) and for hostile images skopeo might repair.
  mkimage.py blob OUTDIR REF (config|manifest|N)
      Print the path of a blob of REF: its config, its manifest, or layer N.
  mkimage.py artifact OUTDIR NAME SUBJECT_REF [--artifact-type T] [--annotation K=V]...
                      [--config-type MT] [--config TEXT] [--blob-type MT] [--blob TEXT]
                      [--count N]
      Add an OCI 1.1 artifact under ref NAME: an image manifest with "artifactType" T
      (omitted without --artifact-type: then the config's media type is the artifact
      type), "subject" = the manifest of SUBJECT_REF, the annotations given, a config
      blob TEXT of type MT (default: the empty descriptor, application/vnd.oci.empty.v1+json
      holding "{}") and one layer blob TEXT (default "artifact NAME") of type MT (default
      application/octet-stream). --count N: N of them, NAME-0 .. NAME-<N-1>, each with
      the annotation "n": "<i>". Prints the manifest digest(s), one a line.
  mkimage.py referrers OUTDIR NAME REF... [--prefix P]
      Add under ref NAME the OCI index the referrers tag schema stores (tag
      sha256-<hex> of the subject): one descriptor per REF (and per ref starting with P)
      with its mediaType, digest, size, artifactType (the manifest's, else its config's
      media type) and the manifest's annotations. Prints the index digest.
  mkimage.py push OUTDIR REF URL/REPO --by-digest
      As push, to /v2/REPO/manifests/<digest of REF> (artifacts are pushed by digest).

Spec (JSON):
  {"ref": "v1", "media": "oci" | "docker", "os": "linux", "architecture": "amd64",
   "variant": "v8", "mtime": 1700000000,
   "layers": [LAYER, ...]}                              # layer 0 is the bottom
LAYER:
  {"format": "pax" | "gnu" | "ustar",                  # default pax
   "compression": "gzip" | "zstd" | "none",            # default gzip
   "zstd_frames": N,                                   # zstd: N independent frames
   "truncate": N,                                      # keep only N bytes of the blob
   "media_type": "...",                                # override the descriptor's type
   "repeat": N,                                        # list the layer N times in a row
   "entries": [ENTRY, ...]}
ENTRY (common keys: path, mode (octal string, e.g. "4755"), uid, gid, uname, gname,
       mtime (int or float), xattrs {name: text}, xattrs_hex {name: hex},
       xattrs_fill {name: N} (a value of N 'x' bytes), pax {key: value} extra PAX
       records, repeat N (the entry N times, "%d" in its path replaced by 0..N-1)):
  {"type": "file", "path": P, "content": TEXT}         # or "content_hex": HEX
  {"type": "file", "path": P, "size": N, "seed": S, "fill": "random"|"mixed"|"zero"}
  {"type": "dir", "path": P}
  {"type": "symlink", "path": P, "target": T}
  {"type": "hardlink", "path": P, "target": EARLIER_PATH}   # header copies target's attrs
  {"type": "char" | "block", "path": P, "major": M, "minor": m}
  {"type": "fifo", "path": P}
  {"type": "whiteout", "path": "dir/name"}             # a file dir/.wh.name
  {"type": "opaque", "path": "dir"}                    # a file dir/.wh..wh..opq
  {"type": "sparse", "path": P, "size": N, "data": [[OFFSET, LEN, SEED], ...]}
        # made by GNU tar: truncate + writes, tar --sparse --sparse-version=1.0 --format=pax
  {"type": "raw", "name": NAME, "typeflag": "0", "size_field": "77777777777",
   "data_len": N, "linkname": L}
        # a hand-made ustar header, for hostile archives: size_field is the literal octal
        # text of the size field (or "b256:N" for base-256); data_len bytes of data follow
        # (default: the decoded size, padded); NAME may be absolute or contain '..'.
  {"type": "pax", "records": {key: value}, "fill": {key: N}}
        # a PAX 'x' record of its own for the next entry (which may have another one):
        # records as given, fill keys get N 'x' bytes as value.
Defaults: files 0644, dirs 0755, others 0777/0644, uid/gid 0, mtime the spec's.
Media types: "oci" → application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]; "docker" →
application/vnd.docker.image.rootfs.diff.tar.gzip with a docker schema2 manifest/config.
"""
import argparse
import gzip
import http.client
import hashlib
import io
import json
import os
import posixpath
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
DEFAULT_MTIME = 1700000000
FORMATS = {"pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT, "ustar": tarfile.USTAR_FORMAT}


def die(msg):
    sys.exit("mkimage.py: " + msg)


def sha256(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def gen_bytes(size, seed, fill="random"):
    """Deterministic content: same (size, seed, fill) → same bytes."""
    if fill == "zero":
        return bytes(size)
    rng = random.Random(str(seed))
    if fill == "random":
        return rng.randbytes(size)
    if fill != "mixed":
        die("unknown fill " + fill)
    # Alternate 64 KiB pseudo-random chunks with 64 KiB of highly compressible text, so
    # a gzip layer holds both long-distance matches and incompressible runs.
    out = bytearray()
    n = 0
    while len(out) < size:
        if n % 2 == 0:
            out += rng.randbytes(65536)
        else:
            line = ("line %08d of a compressible run, seed %s\n" % (n, seed)).encode()
            out += (line * (65536 // len(line) + 1))[:65536]
        n += 1
    return bytes(out[:size])


def parse_mode(v, default):
    if v is None:
        return default
    if isinstance(v, int):
        return v
    return int(v, 8)


def norm(path):
    """The path a tar entry names, as a layer tree shows it ('' for the root)."""
    p = posixpath.normpath("/" + path.lstrip("/")).lstrip("/")
    return "" if p == "." else p


class Layer:
    """Writes one layer tar with tarfile, interleaving hand-made or GNU-tar records."""

    def __init__(self, spec, default_mtime, workdir):
        self.spec = spec
        self.fmt = spec.get("format", "pax")
        if self.fmt not in FORMATS:
            die("unknown tar format " + self.fmt)
        self.default_mtime = default_mtime
        self.workdir = workdir
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=FORMATS[self.fmt],
                               encoding="utf-8")
        self.infos = {}  # path → TarInfo of the last entry (for hard links)
        self.named = set()

    def base_info(self, e, path, kind_default_mode):
        ti = tarfile.TarInfo(path)
        ti.mode = parse_mode(e.get("mode"), kind_default_mode)
        ti.uid = e.get("uid", 0)
        ti.gid = e.get("gid", 0)
        ti.uname = e.get("uname", "")
        ti.gname = e.get("gname", "")
        ti.mtime = e.get("mtime", self.default_mtime)
        pax = {}
        for k, v in (e.get("xattrs") or {}).items():
            pax["SCHILY.xattr." + k] = v
        for k, v in (e.get("xattrs_hex") or {}).items():
            # tarfile writes a surrogate-escaped str back as its raw bytes (and adds
            # hdrcharset=BINARY), which keeps binary values such as security.capability.
            pax["SCHILY.xattr." + k] = bytes.fromhex(v).decode("utf-8", "surrogateescape")
        for k, n in (e.get("xattrs_fill") or {}).items():
            pax["SCHILY.xattr." + k] = "x" * n
        pax.update(e.get("pax") or {})
        if pax:
            if self.fmt != "pax":
                die("%s: xattrs/pax records need format pax" % path)
            ti.pax_headers = pax
        return ti

    def add(self, e):
        if "repeat" in e:
            for i in range(e["repeat"]):
                one = dict(e, path=e["path"].replace("%d", str(i)))
                del one["repeat"]
                self.add(one)
            return
        t = e["type"]
        path = e.get("path", "")
        if t == "whiteout":
            d, b = posixpath.split(path)
            path = posixpath.join(d, ".wh." + b)
            t, e = "file", dict(e, content="")
        elif t == "opaque":
            path = posixpath.join(path, ".wh..wh..opq")
            t, e = "file", dict(e, content="")
        if t == "raw":
            self.add_raw(e)
            return
        if t == "pax":
            self.add_pax(e)
            return
        if t == "sparse":
            self.add_sparse(e)
            self.named.add(norm(path))
            return
        data = None
        if t == "file":
            ti = self.base_info(e, path, 0o644)
            if "content" in e:
                data = e["content"].encode()
            elif "content_hex" in e:
                data = bytes.fromhex(e["content_hex"])
            else:
                data = gen_bytes(e["size"], e.get("seed", path), e.get("fill", "random"))
            ti.type = tarfile.REGTYPE
            ti.size = len(data)
        elif t == "dir":
            ti = self.base_info(e, path, 0o755)
            ti.type = tarfile.DIRTYPE
        elif t == "symlink":
            ti = self.base_info(e, path, 0o777)
            ti.type = tarfile.SYMTYPE
            ti.linkname = e["target"]
        elif t == "hardlink":
            tgt = self.infos.get(norm(e["target"]))
            if tgt is not None and not e.get("own_attrs"):
                # The link's header repeats its target's metadata, as GNU tar writes it.
                ti = tarfile.TarInfo(path)
                for k in ("mode", "uid", "gid", "uname", "gname", "mtime"):
                    setattr(ti, k, getattr(tgt, k))
                ti.pax_headers = dict(tgt.pax_headers)
            else:
                ti = self.base_info(e, path, 0o644)
            ti.type = tarfile.LNKTYPE
            ti.linkname = e["target"]
        elif t in ("char", "block"):
            ti = self.base_info(e, path, 0o644)
            ti.type = tarfile.CHRTYPE if t == "char" else tarfile.BLKTYPE
            ti.devmajor = e["major"]
            ti.devminor = e["minor"]
        elif t == "fifo":
            ti = self.base_info(e, path, 0o644)
            ti.type = tarfile.FIFOTYPE
        else:
            die("unknown entry type " + t)
        self.tf.addfile(ti, io.BytesIO(data) if data is not None else None)
        self.infos[norm(path)] = ti
        self.named.add(norm(path))

    def add_raw_bytes(self, raw):
        self.buf.seek(self.tf.offset)
        self.buf.write(raw)
        self.tf.offset += len(raw)

    def add_pax(self, e):
        recs = b""
        items = [(k, v.encode("utf-8", "surrogateescape"))
                 for k, v in (e.get("records") or {}).items()]
        items += [(k, b"x" * n) for k, n in (e.get("fill") or {}).items()]
        for k, v in items:
            body = b" " + k.encode("utf-8", "surrogateescape") + b"=" + v + b"\n"
            n = len(body) + 1
            while len(str(n)) + len(body) != n:  # the length counts its own digits
                n = len(str(n)) + len(body)
            recs += str(n).encode() + body
        self.add_raw_bytes(self.raw_header({"name": "PaxHeader/x", "typeflag": "x"},
                                           b"%011o\0" % len(recs)) + recs +
                           bytes((-len(recs)) % 512))

    def add_raw(self, e):
        size_field = e.get("size_field")
        if size_field is None:
            size = e.get("data_len", 0)
            size_bytes = b"%011o\0" % size
        elif size_field.startswith("b256:"):
            size = int(size_field[5:])
            size_bytes = bytes([0x80]) + size.to_bytes(11, "big")
        else:
            size = int(size_field, 8)
            size_bytes = size_field.encode().rjust(11, b"0")[:11] + b"\0"
        data_len = e.get("data_len", size)
        data = gen_bytes(data_len, e.get("seed", e["name"]))
        pad = (-data_len) % 512
        self.add_raw_bytes(self.raw_header(e, size_bytes) + data + bytes(pad))

    def raw_header(self, e, size_bytes):
        """A ustar header block from a "raw" entry's keys, with this size field."""
        name = e["name"].encode()
        typeflag = e.get("typeflag", "0").encode()
        hdr = bytearray(512)
        hdr[0:100] = name[:100].ljust(100, b"\0")
        hdr[100:108] = b"%07o\0" % parse_mode(e.get("mode"), 0o644)
        hdr[108:116] = b"%07o\0" % e.get("uid", 0)
        hdr[116:124] = b"%07o\0" % e.get("gid", 0)
        hdr[124:136] = size_bytes
        hdr[136:148] = b"%011o\0" % e.get("mtime", self.default_mtime)
        hdr[148:156] = b" " * 8
        hdr[156:157] = typeflag
        hdr[157:257] = e.get("linkname", "").encode()[:100].ljust(100, b"\0")
        hdr[257:265] = b"ustar\x0000"
        hdr[329:337] = b"%07o\0" % 0
        hdr[337:345] = b"%07o\0" % 0
        hdr[148:156] = b"%06o\0 " % sum(hdr)
        return bytes(hdr)

    def add_sparse(self, e):
        """One sparse file, archived by GNU tar, spliced into this layer's stream."""
        d = tempfile.mkdtemp(dir=self.workdir)
        rel = e["path"].lstrip("/")
        f = os.path.join(d, rel)
        os.makedirs(os.path.dirname(f), exist_ok=True)
        subprocess.run(["truncate", "-s", str(e["size"]), f], check=True)
        with open(f, "r+b") as fh:
            for off, n, seed in e.get("data", []):
                fh.seek(off)
                fh.write(gen_bytes(n, seed))
        os.chmod(f, parse_mode(e.get("mode"), 0o644))
        mtime = e.get("mtime", self.default_mtime)
        out = subprocess.run(
            ["tar", "--sparse", "--sparse-version=1.0", "--format=pax", "--numeric-owner",
             "--owner=%d" % e.get("uid", 0), "--group=%d" % e.get("gid", 0),
             "--mtime=@%d" % mtime, "--pax-option=delete=atime,delete=ctime",
             "-C", d, "-cf", "-", rel], check=True, stdout=subprocess.PIPE).stdout
        self.add_raw_bytes(out[:first_member_end(out)])
        shutil.rmtree(d)

    def finish(self):
        self.tf.close()
        return self.buf.getvalue()


def first_member_end(tar):
    """Offset just past the first real member (its x/g/L/K headers included)."""
    off = 0
    while off + 512 <= len(tar):
        h = tar[off:off + 512]
        if h == bytes(512):
            break
        size = int(h[124:136].strip(b"\0 ") or b"0", 8)
        flag = h[156:157]
        off += 512 + (size + 511) // 512 * 512
        if flag not in (b"x", b"g", b"L", b"K"):
            return off
    die("no member in GNU tar output")


def compress(tar, lspec):
    comp = lspec.get("compression", "gzip")
    if comp == "gzip":
        return gzip.compress(tar, compresslevel=6, mtime=0), "+gzip"
    if comp == "zstd":
        frames = max(1, int(lspec.get("zstd_frames", 1)))
        step = (len(tar) + frames - 1) // frames or 1
        out = b""
        for i in range(0, max(len(tar), 1), step):
            out += subprocess.run(["/usr/bin/zstd", "-q", "-3", "-c"], input=tar[i:i + step],
                                  stdout=subprocess.PIPE, check=True).stdout
        return out, "+zstd"
    if comp == "none":
        return tar, ""
    die("unknown compression " + comp)


class Layout:
    def __init__(self, d):
        self.d = d
        self.blobs = os.path.join(d, "blobs", "sha256")
        os.makedirs(self.blobs, exist_ok=True)
        p = os.path.join(d, "oci-layout")
        if not os.path.exists(p):
            with open(p, "w") as f:
                f.write('{"imageLayoutVersion":"1.0.0"}')
        self.index_path = os.path.join(d, "index.json")
        if os.path.exists(self.index_path):
            with open(self.index_path) as f:
                self.index = json.load(f)
        else:
            self.index = {"schemaVersion": 2, "manifests": []}

    def put(self, data):
        dg = sha256(data)
        with open(os.path.join(self.blobs, dg[7:]), "wb") as f:
            f.write(data)
        return dg

    def get(self, dg):
        with open(os.path.join(self.blobs, dg.split(":", 1)[1]), "rb") as f:
            return f.read()

    def path(self, dg):
        return os.path.join(self.blobs, dg.split(":", 1)[1])

    def tag(self, ref, desc):
        desc = dict(desc)
        desc["annotations"] = {REF_ANNOTATION: ref}
        ms = [m for m in self.index["manifests"]
              if m.get("annotations", {}).get(REF_ANNOTATION) != ref]
        ms.append(desc)
        self.index["manifests"] = ms
        with open(self.index_path + ".tmp", "w") as f:
            json.dump(self.index, f)
        os.replace(self.index_path + ".tmp", self.index_path)

    def lookup(self, ref):
        for m in self.index["manifests"]:
            if m.get("annotations", {}).get(REF_ANNOTATION) == ref:
                return m
        die("no ref %s in %s" % (ref, self.d))


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def cmd_build(a):
    with open(a.spec) as f:
        spec = json.load(f)
    ref = a.ref or spec.get("ref", "latest")
    media = spec.get("media", "oci")
    if a.plain_oci:
        media = "oci"
        spec["layers"] = [dict(ls, compression="gzip") for ls in spec["layers"]]
        for ls in spec["layers"]:
            ls.pop("media_type", None)
            ls.pop("truncate", None)
    if media not in ("oci", "docker"):
        die("media must be oci or docker")
    lay = Layout(a.outdir)
    mtime = spec.get("mtime", DEFAULT_MTIME)
    descs, diff_ids, named, history = [], [], set(), []
    work = tempfile.mkdtemp(prefix="mkimage.")
    try:
        for i, ls in enumerate(spec["layers"]):
            layer = Layer(ls, mtime, work)
            for e in ls.get("entries", []):
                layer.add(e)
            tar = layer.finish()
            named |= layer.named
            blob, suffix = compress(tar, ls)
            if "truncate" in ls:
                blob = blob[:ls["truncate"]]
            if media == "docker":
                if suffix != "+gzip" and "media_type" not in ls:
                    die("docker media types: gzip layers only")
                mt = DOCKER_LAYER_GZIP
            else:
                mt = OCI_LAYER + suffix
            mt = ls.get("media_type", mt)
            for _ in range(ls.get("repeat", 1)):
                descs.append({"mediaType": mt, "digest": lay.put(blob), "size": len(blob)})
                diff_ids.append(sha256(tar))
                history.append({"created": "2023-11-14T22:13:20Z",
                                "created_by": "mkimage.py layer %d" % i})
    finally:
        shutil.rmtree(work)
    cfg = {"architecture": spec.get("architecture", "amd64"), "os": spec.get("os", "linux")}
    if spec.get("variant"):
        cfg["variant"] = spec["variant"]
    cfg.update({"created": "2023-11-14T22:13:20Z",
                "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history})
    cfg_blob = dumps(cfg)
    cfg_mt = DOCKER_CONFIG if media == "docker" else OCI_CONFIG
    man_mt = DOCKER_MANIFEST if media == "docker" else OCI_MANIFEST
    man = {"schemaVersion": 2, "mediaType": man_mt,
           "config": {"mediaType": cfg_mt, "digest": lay.put(cfg_blob), "size": len(cfg_blob)},
           "layers": descs}
    man_blob = dumps(man)
    dg = lay.put(man_blob)
    lay.tag(ref, {"mediaType": man_mt, "digest": dg, "size": len(man_blob)})
    if a.named_out:
        named.discard("")
        with open(a.named_out, "w") as f:
            f.write("".join(p + "\n" for p in sorted(named)))
    if a.layers_out:
        with open(a.layers_out, "w") as f:
            for i, d in enumerate(descs):
                f.write("%d %s %s %d\n" % (i, d["digest"], d["mediaType"], d["size"]))
    print(dg)


def cmd_index(a):
    lay = Layout(a.outdir)
    entries = []
    for ref in (a.ref_a, a.ref_b):
        m = lay.lookup(ref)
        man = json.loads(lay.get(m["digest"]))
        cfg = json.loads(lay.get(man["config"]["digest"]))
        plat = {"architecture": cfg["architecture"], "os": cfg["os"]}
        if cfg.get("variant"):
            plat["variant"] = cfg["variant"]
        entries.append({"mediaType": m["mediaType"], "digest": m["digest"],
                        "size": m["size"], "platform": plat})
    if not a.no_attestation:
        # What BuildKit attaches to an image: a manifest whose layer is an in-toto
        # statement, listed under the platform unknown/unknown.
        stmt = dumps({"_type": "https://in-toto.io/Statement/v0.1",
                      "predicateType": "https://spdx.dev/Document",
                      "subject": [{"name": "mkimage", "digest": {
                          "sha256": entries[0]["digest"][7:]}}],
                      "predicate": {"spdxVersion": "SPDX-2.3"}})
        cfg = dumps({"architecture": "unknown", "os": "unknown", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": [sha256(stmt)]}})
        man = dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                     "config": {"mediaType": OCI_CONFIG, "digest": lay.put(cfg),
                                "size": len(cfg)},
                     "layers": [{"mediaType": "application/vnd.in-toto+json",
                                 "digest": lay.put(stmt), "size": len(stmt),
                                 "annotations": {
                                     "in-toto.io/predicate-type": "https://spdx.dev/Document"}}]})
        entries.append({"mediaType": OCI_MANIFEST, "digest": lay.put(man), "size": len(man),
                        "annotations": {"vnd.docker.reference.digest": entries[0]["digest"],
                                        "vnd.docker.reference.type": "attestation-manifest"},
                        "platform": {"architecture": "unknown", "os": "unknown"}})
    idx = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    dg = lay.put(idx)
    lay.tag(a.name, {"mediaType": OCI_INDEX, "digest": dg, "size": len(idx)})
    print(dg)


def push_blob(conn, repo, data, dg):
    conn.request("HEAD", "/v2/%s/blobs/%s" % (repo, dg))
    r = conn.getresponse()
    r.read()
    if r.status == 200:
        return
    conn.request("POST", "/v2/%s/blobs/uploads/" % repo, body=b"",
                 headers={"Content-Length": "0"})
    r = conn.getresponse()
    r.read()
    if r.status != 202:
        die("POST upload for %s: HTTP %d" % (repo, r.status))
    loc = urllib.parse.urlsplit(r.getheader("Location"))
    q = (loc.query + "&" if loc.query else "") + "digest=" + dg
    conn.request("PUT", loc.path + "?" + q, body=data,
                 headers={"Content-Type": "application/octet-stream",
                          "Content-Length": str(len(data))})
    r = conn.getresponse()
    body = r.read()
    if r.status != 201:
        die("PUT blob %s: HTTP %d %s" % (dg, r.status, body[:200]))


def push_manifest(conn, lay, repo, ref, desc):
    data = lay.get(desc["digest"])
    man = json.loads(data)
    if "manifests" in man:
        for m in man["manifests"]:
            push_manifest(conn, lay, repo, m["digest"], m)
    else:
        for d in [man["config"]] + man["layers"]:
            push_blob(conn, repo, lay.get(d["digest"]), d["digest"])
    conn.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=data,
                 headers={"Content-Type": man.get("mediaType", desc["mediaType"]),
                          "Content-Length": str(len(data))})
    r = conn.getresponse()
    body = r.read()
    if r.status != 201:
        die("PUT manifest %s:%s: HTTP %d %s" % (repo, ref, r.status, body[:300]))


class _Conn(http.client.HTTPConnection):
    """With ACRFS_TEST_ACR=1 (tests/lib/registry.sh: the registry is the ACR
    emulator) every request carries the emulator admin's Basic credentials."""

    def request(self, method, url, body=None, headers=None, **kw):
        headers = dict(headers or {})
        if os.environ.get("ACRFS_TEST_ACR") == "1":
            headers.setdefault("Authorization", "Basic YWRtaW46YWRtaW5wdw==")  # admin:adminpw
        return super().request(method, url, body=body, headers=headers, **kw)


def cmd_push(a):
    lay = Layout(a.outdir)
    u = urllib.parse.urlsplit(a.dest if "://" in a.dest else "http://" + a.dest)
    desc = lay.lookup(a.ref)
    if a.by_digest:
        repo, tag = u.path.lstrip("/"), desc["digest"]
    else:
        repo, _, tag = u.path.lstrip("/").rpartition(":")
    if not repo or "/" in tag:
        die("push: destination must be URL/REPO:TAG (URL/REPO with --by-digest)")
    conn = _Conn(u.hostname, u.port or 80, timeout=60)
    push_manifest(conn, lay, repo, tag, desc)
    print(desc["digest"])


OCI_EMPTY = "application/vnd.oci.empty.v1+json"


def cmd_artifact(a):
    lay = Layout(a.outdir)
    subj = lay.lookup(a.subject_ref)
    cfg = (a.config if a.config is not None else "{}").encode()
    cfg_mt = a.config_type or OCI_EMPTY
    names = [a.name] if a.count is None else ["%s-%d" % (a.name, i) for i in range(a.count)]
    for i, name in enumerate(names):
        ann = dict(kv.split("=", 1) for kv in a.annotation)
        if a.count is not None:
            ann["n"] = str(i)
        blob = (a.blob if a.blob is not None else "artifact " + name).encode()
        man = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
        if a.artifact_type:
            man["artifactType"] = a.artifact_type
        man["config"] = {"mediaType": cfg_mt, "digest": lay.put(cfg), "size": len(cfg)}
        man["layers"] = [{"mediaType": a.blob_type, "digest": lay.put(blob),
                          "size": len(blob)}]
        man["subject"] = {"mediaType": subj["mediaType"], "digest": subj["digest"],
                          "size": subj["size"]}
        if ann:
            man["annotations"] = ann
        data = dumps(man)
        dg = lay.put(data)
        lay.tag(name, {"mediaType": OCI_MANIFEST, "digest": dg, "size": len(data)})
        print(dg)


def cmd_referrers(a):
    lay = Layout(a.outdir)
    refs = list(a.refs)
    if a.prefix:
        refs += [m["annotations"][REF_ANNOTATION] for m in lay.index["manifests"]
                 if m.get("annotations", {}).get(REF_ANNOTATION, "").startswith(a.prefix)]
    entries = []
    for ref in refs:
        m = lay.lookup(ref)
        man = json.loads(lay.get(m["digest"]))
        d = {"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"]}
        at = man.get("artifactType") or man.get("config", {}).get("mediaType")
        if at:
            d["artifactType"] = at
        if man.get("annotations"):
            d["annotations"] = man["annotations"]
        entries.append(d)
    idx = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    dg = lay.put(idx)
    lay.tag(a.name, {"mediaType": OCI_INDEX, "digest": dg, "size": len(idx)})
    print(dg)


def cmd_blob(a):
    lay = Layout(a.outdir)
    m = lay.lookup(a.ref)
    if a.what == "manifest":
        print(lay.path(m["digest"]))
        return
    man = json.loads(lay.get(m["digest"]))
    if a.what == "config":
        print(lay.path(man["config"]["digest"]))
    else:
        print(lay.path(man["layers"][int(a.what)]["digest"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("spec")
    b.add_argument("outdir")
    b.add_argument("--ref")
    b.add_argument("--named-out")
    b.add_argument("--layers-out")
    b.add_argument("--plain-oci", action="store_true")
    b.set_defaults(fn=cmd_build)
    x = sub.add_parser("index")
    x.add_argument("outdir")
    x.add_argument("name")
    x.add_argument("ref_a")
    x.add_argument("ref_b")
    x.add_argument("--no-attestation", action="store_true")
    x.set_defaults(fn=cmd_index)
    p = sub.add_parser("push")
    p.add_argument("outdir")
    p.add_argument("ref")
    p.add_argument("dest")
    p.add_argument("--by-digest", action="store_true")
    p.set_defaults(fn=cmd_push)
    r = sub.add_parser("artifact")
    r.add_argument("outdir")
    r.add_argument("name")
    r.add_argument("subject_ref")
    r.add_argument("--artifact-type")
    r.add_argument("--annotation", action="append", default=[])
    r.add_argument("--config-type")
    r.add_argument("--config")
    r.add_argument("--blob-type", default="application/octet-stream")
    r.add_argument("--blob")
    r.add_argument("--count", type=int)
    r.set_defaults(fn=cmd_artifact)
    f = sub.add_parser("referrers")
    f.add_argument("outdir")
    f.add_argument("name")
    f.add_argument("refs", nargs="*")
    f.add_argument("--prefix")
    f.set_defaults(fn=cmd_referrers)
    c = sub.add_parser("blob")
    c.add_argument("outdir")
    c.add_argument("ref")
    c.add_argument("what")
    c.set_defaults(fn=cmd_blob)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
