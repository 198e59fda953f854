#!/usr/bin/python3
"""Write the seed corpora of the fuzz targets: tests/fuzz/corpus/<target>/seed-*.

  tests/fuzz/mkseeds.py MKINDEX     (make fuzz-seeds; MKINDEX: build/release/fuzz/mkindex)

Seeds are small and real: tars written by python's tarfile (PAX, GNU, ustar) and by
GNU tar (old-GNU and PAX 0.0/0.1/1.0 sparse files), image layers stacked with
whiteouts, hand-made hostile headers; manifests and indexes of every media type;
WWW-Authenticate values as docker, distribution and ACR send them; Link headers;
docker config.json and containers auth.json files; layer index files and zran
indexes written by acrfs's own code (MKINDEX); gzip streams with every header field.
Everything is deterministic: running it twice gives the same bytes. Files named
crash-* (inputs that once crashed a target, kept as regression tests) are left
alone; stale seed-* files are removed.
"""
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
MTIME = 1700000000
LAYER_SEP = b"\n--acrfs-fuzz-next-layer--\n"  # FUZZ_LAYER_SEP in fuzz.h

written = {}


def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    written.setdefault(target, {})["seed-" + name] = data


# ---------------------------------------------------------------- tars


def tar_end(data):
    """Cut the record padding after the end-of-archive marker (two zero blocks)."""
    tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    for _ in tf:
        pass
    return data[: tf.offset] + b"\0" * 1024


def info(name, kind=tarfile.REGTYPE, size=0, mode=0o644, **kw):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    ti.mode = mode
    ti.mtime = kw.pop("mtime", MTIME)
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def mktar(fmt, entries):
    """entries: (TarInfo, data or None)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return tar_end(out.getvalue())


def file(name, text, **kw):
    data = text.encode() if isinstance(text, str) else text
    return info(name, size=len(data), **kw), data


def d(name, **kw):
    return info(name, tarfile.DIRTYPE, mode=kw.pop("mode", 0o755), **kw), None


def sym(name, target, **kw):
    return info(name, tarfile.SYMTYPE, mode=0o777, linkname=target, **kw), None


def hard(name, target, **kw):
    return info(name, tarfile.LNKTYPE, linkname=target, **kw), None


def dev(name, kind, major, minor):
    return info(name, kind, devmajor=major, devminor=minor), None


def basic_entries():
    long = "very/" * 25 + "long-name.txt"
    return [
        d("etc"),
        file("etc/os-release", 'ID=acrfs\nVERSION_ID="1"\n'),
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", mode=0o600),
        d("usr/bin"),
        file("usr/bin/tool", "#!/bin/sh\necho hi\n", mode=0o4755, uid=1000, gid=1000),
        sym("usr/bin/alias", "tool"),
        hard("usr/bin/tool2", "usr/bin/tool"),
        file(long, "deep\n"),
        sym("link-to-long", "/" + long),
        dev("dev/null", tarfile.CHRTYPE, 1, 3),
        dev("dev/sda", tarfile.BLKTYPE, 8, 0),
        (info("run/fifo", tarfile.FIFOTYPE), None),
        file("empty", ""),
    ]


def pax_entries():
    e = basic_entries()
    ti, data = file("xattrs", "x")
    ti.pax_headers = {
        "SCHILY.xattr.user.comment": "hello",
        "SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00",
        "LIBARCHIVE.xattr.user.a%3Db": "dmFsdWU=",
        "mtime": "1700000000.123456789",
        "uid": "4294967294",
        "gid": "65534",
        "uname": "nobody",
        "comment": "ignored",
    }
    e.append((ti, data))
    ti, data = file("pax-path-placeholder", "renamed by PAX\n")
    ti.pax_headers = {"path": "srv/renamed by pax/ünïcode"}
    e.append((ti, data))
    ti, data = file("neg-mtime", "old\n")
    ti.pax_headers = {"mtime": "-1.5"}
    e.append((ti, data))
    return e


def hostile_header(name, typeflag=b"0", size=0, linkname=b"", magic=b"ustar\x0000",
                   size_field=None, extra=None):
    """A hand-made ustar header block (checksum computed)."""
    if isinstance(name, str):
        name = name.encode()
    b = bytearray(512)
    b[0:len(name[:100])] = name[:100]
    b[100:108] = b"0000644\0"
    b[108:116] = b"0000000\0"
    b[116:124] = b"0000000\0"
    b[124:136] = size_field if size_field is not None else b"%011o\0" % size
    b[136:148] = b"%011o\0" % MTIME
    b[156:157] = typeflag
    b[157:157 + len(linkname)] = linkname
    b[257:265] = magic
    if extra:
        for off, val in extra:
            b[off:off + len(val)] = val
    b[148:156] = b" " * 8
    b[148:156] = b"%06o\0 " % sum(b)
    return bytes(b)


def blocks(data):
    return data + b"\0" * (-len(data) % 512)


def pax_record(key, value):
    if isinstance(value, str):
        value = value.encode()
    body = b" " + key.encode() + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n).encode()) + len(body) != n:
        n = len(str(n).encode()) + len(body)
    return str(n).encode() + body


def pax_block(records, typeflag=b"x"):
    data = b"".join(pax_record(k, v) for k, v in records)
    return hostile_header("PaxHeaders/x", typeflag, len(data)) + blocks(data)


def raw_file(name, data, typeflag=b"0", **kw):
    return hostile_header(name, typeflag, len(data), **kw) + blocks(data)


EOA = b"\0" * 1024


def gnu_sparse(tmp, version):
    """A sparse file archived by GNU tar: 'S' headers (version None) or PAX 0.0/0.1/1.0."""
    src = os.path.join(tmp, "src")
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    path = os.path.join(src, "sparse.bin")
    with open(path, "wb") as f:
        f.truncate(64 * 1024)
        for i, off in enumerate((0, 8192, 20480, 33280, 45056, 60928)):
            f.seek(off)
            f.write(b"sparse data segment %d\n" % i)
    with open(os.path.join(src, "plain.txt"), "w") as f:
        f.write("a plain file after the sparse one\n")
    os.utime(path, (MTIME, MTIME))
    out = os.path.join(tmp, "out.tar")
    cmd = ["tar", "--create", "--file", out, "--sparse", "--hole-detection=raw",
           "--sort=name", "--owner=0", "--group=0", "--numeric-owner",
           "--mtime=@%d" % MTIME, "-C", src, "sparse.bin", "plain.txt"]
    if version is None:
        cmd[2:2] = ["--format=gnu"]
    else:
        cmd[2:2] = ["--format=pax", "--sparse-version=" + version,
                    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime"]
    subprocess.run(cmd, check=True)
    with open(out, "rb") as f:
        data = bytearray(tar_end(f.read()))
    # GNU tar names sparse members "GNUSparseFile.<pid>/...": make that reproducible.
    for off in range(0, len(data) - 511, 512):
        name = bytes(data[off:off + 100])
        if b"GNUSparseFile." in name:
            name = re.sub(rb"GNUSparseFile\.[0-9]+", b"GNUSparseFile.0", name.rstrip(b"\0"))
            data[off:off + 100] = name.ljust(100, b"\0")
            data[off + 148:off + 156] = b" " * 8
            data[off + 148:off + 156] = b"%06o\0 " % sum(data[off:off + 512])
    return bytes(data)


def tar_seeds(tmp):
    t = {}
    t["pax"] = mktar(tarfile.PAX_FORMAT, pax_entries())
    t["gnu"] = mktar(tarfile.GNU_FORMAT, basic_entries() + [
        file("big-ids", "x", uid=0o77777777 + 1, gid=2 ** 40),
        file("neg-mtime", "x", mtime=-1000),
    ])
    t["ustar"] = mktar(tarfile.USTAR_FORMAT, [e for e in basic_entries()
                                              if len(e[0].name) < 200 and
                                              len(e[0].linkname) < 100])
    # v7: no magic, a trailing slash marks a directory.
    t["v7"] = (hostile_header("v7dir/", b"\0", magic=b"\0" * 8) +
               raw_file("v7dir/file", b"v7 data\n", b"\0", magic=b"\0" * 8) + EOA)
    t["gnu-sparse"] = gnu_sparse(tmp, None)
    for v in ("0.0", "0.1", "1.0"):
        t["pax-sparse-" + v] = gnu_sparse(tmp, v)
    # Layers of an image, bottom first: whiteouts, opaque dirs, replacements.
    lower = mktar(tarfile.PAX_FORMAT, [
        d("a"), file("a/x", "x\n"), file("a/y", "y\n"), d("a/sub"), file("a/sub/z", "z\n"),
        d("b"), file("b/keep", "keep\n"), file("b/gone", "gone\n"),
        file("c", "a file that becomes a dir\n"), d("e"), file("e/f", "f\n"),
        file("h1", "hard\n"), hard("h2", "h1"), hard("h3", "h1"),
    ])
    upper = mktar(tarfile.PAX_FORMAT, [
        file("a/.wh.x", ""), file("b/.wh..wh..opq", ""), file("b/new", "new\n"),
        d("c"), file("c/inside", "i\n"), file("e", "a dir that becomes a file\n"),
        file(".wh.h2", ""), file("a/sub/.wh..wh.plnk", ""), file(".wh.missing", ""),
        d("only-whiteouts"), file("only-whiteouts/.wh.q", ""),
    ])
    top = mktar(tarfile.GNU_FORMAT, [file(".wh.a", ""), d("a"), file("a/again", "again\n"),
                                     hard("h4", "h1")])
    t["layers-whiteouts"] = lower + LAYER_SEP + upper + LAYER_SEP + top
    # Hostile names and links.
    deep = "/".join("d%d" % i for i in range(300))
    t["hostile-paths"] = (
        raw_file("../escape", b"no\n") + raw_file("/abs/olute", b"abs\n") +
        raw_file("./a/../../b", b"escape\n") + raw_file("ok//x/./y/", b"", b"5") +
        hostile_header("./", b"5") + raw_file("f", b"file\n") + raw_file("f/below", b"x\n") +
        hostile_header("hl-missing", b"1", linkname=b"nowhere") +
        hostile_header("hl-dir", b"1", linkname=b"ok") +
        hostile_header("hl-root", b"1", linkname=b"./") +
        hostile_header("hl-later", b"1", linkname=b"later") + raw_file("later", b"l\n") +
        hostile_header("sl-loop1", b"2", linkname=b"sl-loop2") +
        hostile_header("sl-loop2", b"2", linkname=b"sl-loop1") +
        raw_file("dup", b"first\n") + raw_file("dup", b"second\n") +
        hostile_header("dup", b"5") + raw_file("dup/child", b"c\n") +
        pax_block([("path", deep)]) + raw_file("x", b"deep\n") +
        raw_file("unknown-type", b"?\n", b"Z") +
        raw_file("contiguous", b"c\n", b"7") +
        hostile_header("dirsize", b"5", 1024) +
        hostile_header("gnu-dumpdir", b"D", 3) + blocks(b"a\0\0") +
        EOA)
    t["records"] = (
        pax_block([("comment", "global")], b"g") +
        hostile_header("volume", b"V") +
        raw_file("././@LongLink", b"long/name/from/gnu/L" * 10 + b"\0", b"L") +
        raw_file("././@LongLink", b"long/target" * 12 + b"\0", b"K") +
        hostile_header("short", b"2", linkname=b"short-target") +
        pax_block([("path", "pax/path"), ("linkpath", "pax/link"), ("size", "5"),
                   ("uid", "1"), ("gid", "2"), ("mtime", "1.000000001"),
                   ("SCHILY.xattr.user.x", "v"), ("SCHILY.xattr.user.x", "w"),
                   ("GNU.sparse.name", "ignored")]) +
        raw_file("header-name", b"sized", b"0") +
        pax_block([("path", "")]) + raw_file("empty-pax-path", b"e\n") +
        pax_block([("GNU.sparse.major", "0"), ("GNU.sparse.minor", "0"),
                   ("GNU.sparse.offset", "0"), ("GNU.sparse.numbytes", "3"),
                   ("GNU.sparse.offset", "100"), ("GNU.sparse.numbytes", "2"),
                   ("GNU.sparse.realsize", "200"), ("GNU.sparse.name", "sp00")]) +
        raw_file("GNUSparseFile.0/sp00", b"abcde") +
        pax_block([("GNU.sparse.map", "0,1,10,1"), ("GNU.sparse.size", "20"),
                   ("GNU.sparse.name", "sp01")]) +
        raw_file("GNUSparseFile.0/sp01", b"xy") +
        raw_file("bad-base256", b"b", size_field=b"\x80" + b"\0" * 10 + b"\x01") +
        EOA)
    t["truncated"] = mktar(tarfile.PAX_FORMAT, pax_entries())[:3000]
    t["single-zero-block"] = raw_file("a", b"a\n") + b"\0" * 512 + raw_file("b", b"b\n")
    t["no-eoa"] = raw_file("a", b"a\n") + raw_file("b", b"b\n")
    t["empty-layer"] = b"\0" * 1024
    return t


# ---------------------------------------------------------------- manifests


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def desc(mt, data, **kw):
    x = {"mediaType": mt, "digest": sha(data), "size": len(data)}
    x.update(kw)
    return x


def manifest_seeds():
    cfg = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    oci_layer = "application/vnd.oci.image.layer.v1.tar"
    m = {}
    m["oci-manifest"] = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", cfg),
        "layers": [desc(oci_layer + "+gzip", b"l1"), desc(oci_layer + "+zstd", b"l2"),
                   desc(oci_layer, b"l3")],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }
    m["oci-manifest-no-mediatype"] = {
        "schemaVersion": 2,
        "config": desc("application/vnd.oci.image.config.v1+json", cfg),
        "layers": [],
    }
    m["oci-index"] = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            desc("application/vnd.oci.image.manifest.v1+json", b"a",
                 platform={"os": "linux", "architecture": "amd64"}),
            desc("application/vnd.oci.image.manifest.v1+json", b"b",
                 platform={"os": "linux", "architecture": "arm64", "variant": "v8",
                           "os.version": "x", "features": ["sse4"]}),
            desc("application/vnd.oci.image.manifest.v1+json", b"c",
                 platform={"os": "unknown", "architecture": "unknown"},
                 annotations={"vnd.docker.reference.type": "attestation-manifest",
                              "vnd.docker.reference.digest": sha(b"a")}),
        ],
    }
    m["oci-index-shape-only"] = {"schemaVersion": 2, "manifests": []}
    m["docker-manifest"] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": desc("application/vnd.docker.container.image.v1+json", cfg),
        "layers": [desc("application/vnd.docker.image.rootfs.diff.tar.gzip", b"d1"),
                   desc("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", b"d2",
                        urls=["https://mcr.microsoft.com/v2/windows/blobs/" + sha(b"d2")])],
    }
    m["docker-list"] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [desc("application/vnd.docker.distribution.manifest.v2+json", b"x",
                           platform={"architecture": "ppc64le", "os": "linux"})],
    }
    m["schema1"] = {"schemaVersion": 1, "name": "library/x", "tag": "latest",
                    "architecture": "amd64", "fsLayers": [{"blobSum": sha(b"")}],
                    "history": [{"v1Compatibility": "{}"}], "signatures": []}
    m["artifact"] = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.cncf.notary.signature",
        "config": desc("application/vnd.oci.empty.v1+json", b"{}"),
        "layers": [desc("application/jose+json", b"sig")],
        "subject": desc("application/vnd.oci.image.manifest.v1+json", b"img"),
    }
    for k, v in m.items():
        put("manifest", k, json.dumps(v, indent=3 if k == "oci-index" else None))
    good = json.dumps(m["oci-manifest"])
    put("manifest", "duplicate-key", good[:-1] + ', "layers": []}')
    put("manifest", "nul-escape", good.replace('"linux"', '"li\\u0000nux"').replace(
        '"2024', '"\\u00002024'))
    put("manifest", "trailing-bytes", good + " {}")
    put("manifest", "size-2-53", good.replace('"size": 2,', '"size": 9007199254740992,'))
    put("manifest", "size-float", good.replace('"size": 2,', '"size": 2.5e0,'))
    put("manifest", "digest-sha512",
        good.replace(sha(b"l1"), "sha512:" + hashlib.sha512(b"l1").hexdigest()))
    put("manifest", "digest-upper", good.replace(sha(b"l1"), sha(b"l1").upper()))
    put("manifest", "deep-nesting", '{"schemaVersion":2,"x":' + "[" * 1200 + "]" * 1200 + "}")
    put("manifest", "platform-bad", json.dumps(m["oci-index"]).replace('"arm64"', '"arm/64"'))
    put("manifest", "not-json", "<html>404 page not found</html>")


# ---------------------------------------------------------------- headers


def referrers_seeds():
    """Pages of GET /v2/<r>/referrers/<d> (or the tag schema's index), and referrers'
    own manifests (referrer_from_manifest reads the same bytes)."""
    oci_m = "application/vnd.oci.image.manifest.v1+json"
    sig = desc(oci_m, b"sig", artifactType="application/vnd.cncf.notary.signature",
               annotations={"io.cncf.notary.x509chain.thumbprint#S256": '["abc"]',
                            "org.opencontainers.image.created": "2026-12-02T10:00:00Z"})
    sbom = desc(oci_m, b"sbom", artifactType="application/spdx+json")
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
    r = {}
    r["two"] = dict(index, manifests=[sig, sbom])
    r["empty"] = dict(index, manifests=[])
    r["artifact-manifest"] = {
        "schemaVersion": 2, "mediaType": oci_m, "artifactType": "application/vnd.example.sbom",
        "config": desc("application/vnd.oci.empty.v1+json", b"{}"), "layers": [],
        "subject": desc(oci_m, b"subject"), "annotations": {"k": "v"}}
    r["config-type-only"] = {
        "schemaVersion": 2, "mediaType": oci_m,
        "config": desc("application/vnd.example.config", b"{}"), "layers": []}
    r["bad-fields"] = {"manifests": [{"mediaType": "text", "digest": "sha256:XYZ", "size": -1}]}
    r["mistyped"] = {"manifests": [dict(sbom, artifactType=5, annotations={"": "x"})]}
    for k, v in r.items():
        put("referrers", k, json.dumps(v))
    good = json.dumps(r["two"])
    put("referrers", "duplicate-key", good.replace('"size": 3,', '"size": 3, "size": 4,', 1))
    put("referrers", "nul-in-annotation", good.replace('2026-12-02', '2026\\u0000-12-02'))
    put("referrers", "not-json", "not json")


def challenge_seeds():
    c = {
        "docker-hub": 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                      'scope="repository:library/alpine:pull"',
        "acr": 'Bearer realm="https://x.azurecr.io/oauth2/token",service="x.azurecr.io",'
               'scope="repository:ssongman/userlist:pull,push,delete registry:catalog:*"',
        "insufficient-scope": 'Bearer realm="https://r.example/token",service="r",'
                              'error="insufficient_scope",error_description="need \\"push\\"",'
                              'scope="repository:a/b:pull,push"',
        "basic": 'Basic realm="Registry Realm"',
        "several": 'Negotiate, Basic realm="x" , Bearer realm="y",service="z",,'
                   ' Digest realm="d", nonce="n", qop="auth"',
        "token68": "Negotiate YIIBhwYGKwYBBQUCoIIBezCCAXegDTALBgkqhkiG9xIBAgKhBAMCAXaiggFe==",
        "case-and-spaces": 'bEaReR   REALM = "https://r/t" ,  Service=r ,scope = "registry:catalog:*"',
        "plugin-scope": 'Bearer realm="https://r/t",scope="repository(plugin):host:5000/ns/a:pull'
                        ' repository:host:5000/x:*"',
        "repo-name-actions": "host:5000/ns/repo\npull,push",
        "unterminated": 'Bearer realm="https://r/t',
        "control-chars": 'Bearer realm="a\x01b"',
    }
    for k, v in c.items():
        put("challenge", k, v)


def link_seeds():
    l = {
        "catalog": '</v2/_catalog?last=b&n=100>; rel="next"',
        "acr": '</acr/v1/_catalog?last=repo%2Fx&n=100&orderby=>; rel="next"',
        "absolute-same": '<https://reg.example:5000/v2/_catalog?last=z>; rel=next',
        "absolute-other": '<https://evil.example/v2/_catalog?last=z>; rel="next"',
        "network-path": '<//evil.example/v2/x>; rel="next"',
        "relative": '<list?last=v1.2>; rel="next"',
        "query-only": '<?last=abc&n=2>; rel="next"',
        "several": '</v2/x?last=a>; rel="prev", </v2/x?last=c>; title="a, b; c"; '
                   'rel="first next"',
        "empty-target": '<>; rel="next"',
        "malformed": '</v2/_catalog?last=b; rel="next"',
        "userinfo": '<https://reg.example:5000@evil.example/x>; rel="next"',
        "escapes": '</v2/x>; rel="n\\"ext", </v2/y>; REL="NEXT"',
    }
    for k, v in l.items():
        put("link", k, v)


def b64(s):
    import base64
    return base64.b64encode(s.encode()).decode()


def creds_seeds():
    null_guid = "00000000-0000-0000-0000-000000000000"
    c = {
        "docker-auths": {"auths": {
            "x.azurecr.io": {"auth": b64("admin:s3cret-pass")},
            "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpass")},
            "http://127.0.0.1:5000": {"username": "u", "password": "p4ss"},
        }},
        "docker-identitytoken": {"auths": {"x.azurecr.io": {
            "auth": b64(null_guid + ":"), "identitytoken": "eyJhbGciOi.refresh.token"}}},
        "docker-registrytoken": {"auths": {"docker.io": {"registrytoken": "bearer-token-1"}}},
        "docker-helpers": {"auths": {"x.azurecr.io": {}}, "credsStore": "desktop",
                           "credHelpers": {"x.azurecr.io": "acr-env",
                                           "registry-1.docker.io": "pass"}},
        "docker-null-guid-basic": {"auths": {"x.azurecr.io": {
            "username": null_guid, "password": "acr-refresh-token"}}},
        "podman-namespaced": {"auths": {
            "x.azurecr.io/team": {"auth": b64("team:team-pw")},
            "x.azurecr.io/team/app": {"auth": b64("app:app-pw")},
            "docker.io/library": {"auth": b64("lib:lib-pw")},
            "127.0.0.1:5000": {"auth": b64("local:local-pw")},
        }},
        "bad-base64": {"auths": {"x.azurecr.io": {"auth": "%%%not base64"}}},
        "entry-not-object": {"auths": {"x.azurecr.io": "auth"}},
    }
    for k, v in c.items():
        put("creds", k, json.dumps(v, indent=1))
    put("creds", "not-object", "[1,2,3]")
    put("creds", "nul-in-auth", json.dumps({"auths": {"docker.io": {"auth": b64("a\0b:c")}}}))


# ---------------------------------------------------------------- gzip


def gzip_member(data, flags=0, name=b"", comment=b"", extra=b"", level=6, hcrc=False,
                block=0):
    """One gzip member; `block`: end a deflate block (Z_BLOCK) every so many input
    bytes, so that zran finds access points in very compressible data."""
    h = bytearray(b"\x1f\x8b\x08")
    f = (4 if extra else 0) | (8 if name else 0) | (16 if comment else 0) | (2 if hcrc else 0)
    h += bytes([f | flags]) + struct.pack("<I", MTIME) + b"\0\xff"
    if extra:
        h += struct.pack("<H", len(extra)) + extra
    if name:
        h += name + b"\0"
    if comment:
        h += comment + b"\0"
    if hcrc:
        h += struct.pack("<H", zlib.crc32(bytes(h)) & 0xffff)
    co = zlib.compressobj(level, zlib.DEFLATED, -15)
    step = block or len(data) or 1
    body = b"".join(co.compress(data[i:i + step]) + (co.flush(zlib.Z_BLOCK) if block else b"")
                    for i in range(0, len(data), step)) + co.flush()
    return bytes(h) + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xffffffff)


def gzip_seeds():
    text = b"".join(b"line %d of a compressible gzip seed\n" % (i % 500) for i in range(6000))
    g = {
        "python": gzip.compress(b"hello acrfs\n" * 10, mtime=0),
        "header-fields": gzip_member(b"with every header field\n", name=b"name.tar",
                                     comment=b"a comment", extra=b"AB\x02\x00xy", hcrc=True),
        "multi-member": gzip_member(b"one\n") + gzip_member(b"") + gzip_member(b"three\n" * 9),
        "stored": gzip_member(bytes(range(256)) * 4, level=0),
        "spans": gzip_member(text, level=9, block=16384),
        "spans-multi": gzip_member(text[:100000], level=1, block=30000) +
        gzip_member(text[100000:], block=8192),
        "zlib-not-gzip": zlib.compress(b"zlib stream"),
        "bad-crc": gzip_member(b"x")[:-8] + b"\0" * 8,
        "trailing-garbage": gzip_member(b"x") + b"garbage",
        "truncated": gzip_member(text)[:2000],
    }
    for k, v in g.items():
        put("gzip", k, v)


# ---------------------------------------------------------------- index files


def index_seeds(mkindex, tars, tmp):
    oci = "application/vnd.oci.image.layer.v1.tar"
    blobs = {}
    for name in ("pax", "gnu-sparse", "pax-sparse-1.0", "hostile-paths", "empty-layer"):
        blobs["tar-" + name] = (oci, tars[name])
    blobs["gzip-pax"] = (oci + "+gzip", gzip.compress(tars["pax"], mtime=0))
    # Several access points: a layer of ~200 KiB of text in one file.
    big = b"".join(b"%06d indexed text of a larger layer\n" % i for i in range(5000))
    big_tar = mktar(tarfile.PAX_FORMAT, [file("big.txt", big), file("after", "a\n")])
    blobs["gzip-spans"] = (oci + "+gzip", gzip_member(big_tar, block=16384))
    for name, frames in (("zstd-one-frame", 1), ("zstd-frames", 3)):
        out = b""
        step = -(-len(big_tar) // frames)
        for i in range(frames):
            r = subprocess.run(["zstd", "-q", "-c", "-3"], input=big_tar[i * step:(i + 1) * step],
                               stdout=subprocess.PIPE, check=True)
            out += r.stdout
        blobs[name] = (oci + "+zstd", out)
    for name, (mt, data) in blobs.items():
        src = os.path.join(tmp, "blob")
        dst = os.path.join(tmp, "index")
        with open(src, "wb") as f:
            f.write(data)
        subprocess.run([mkindex, "layer", mt, src, dst], check=True)
        with open(dst, "rb") as f:
            put("lindex", name, f.read())
    # Rootfs files: merges of one to three layers.
    for name, layers in (("layers-whiteouts", [tars["layers-whiteouts"]]),
                         ("pax", [tars["pax"]]),
                         ("sparse-over-gnu", [tars["gnu"], tars["gnu-sparse"]]),
                         ("hostile-paths", [tars["hostile-paths"]])):
        src = os.path.join(tmp, "tars")
        dst = os.path.join(tmp, "rootfs")
        with open(src, "wb") as f:
            f.write(LAYER_SEP.join(layers))
        subprocess.run([mkindex, "rootfs", src, dst], check=True)
        with open(dst, "rb") as f:
            put("rootfs", name, f.read())
    for i in range(2):  # FUZZ_GZIP_SAMPLES
        dst = os.path.join(tmp, "zran")
        subprocess.run([mkindex, "zran", str(i), dst], check=True)
        with open(dst, "rb") as f:
            put("zran", "sample-%d" % i, f.read())


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    mkindex = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        tars = tar_seeds(tmp)
        for k, v in tars.items():
            put("tar", k, v)
        manifest_seeds()
        referrers_seeds()
        challenge_seeds()
        link_seeds()
        creds_seeds()
        gzip_seeds()
        index_seeds(mkindex, tars, tmp)
    for target, files in sorted(written.items()):
        d = os.path.join(CORPUS, target)
        os.makedirs(d, exist_ok=True)
        for old in os.listdir(d):
            if old.startswith("seed-") and old not in files:
                os.unlink(os.path.join(d, old))
        for name, data in sorted(files.items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print("%-10s %3d seeds, %7d bytes" % (target, len(files),
                                             sum(len(v) for v in files.values())))


if __name__ == "__main__":
    main()
