#!/usr/bin/env bash
# test-weight: 3 (tests/run.sh starts heavier scripts first)
# Issue 4: image contents (tag directories, layers/i, rootfs, index platforms) against
# independent oracles. Images are built here byte by byte with tests/lib/mkimage.py and
# pushed to a real registry; the oracles are
#   rootfs/     'umoci unpack' as root (devices, owners, xattrs real), cross-checked
#               with GNU tar + hand-made whiteout handling (tests/lib/gnuextract.py);
#   layers/i/   tests/lib/tarlist.py of the layer blob (Python's tarfile);
#   bytes       the blobs in the OCI layout, 'skopeo inspect --raw', the access log.
# Then laziness, single-flight, random reads, by-digest lookup, and hostile tars; hard
# links to files of lower layers and symlink modes against umoci (issue 9, point 10);
# names no file system holds, the limits on one image, and a layer listed 300 times
# (issue 9, points 6 and 7).
# shellcheck disable=SC2154,SC2012 # REG_r_*, MNT_* are exported by reg_start / mnt_start
# (SC2012: ls output is what a user sees; the names here are known)
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/acrfs.sh"
. "$TESTS_LIB/fixture.sh"
PY=/usr/bin/python3
mkimage() { "$PY" "$TESTS_LIB/mkimage.py" "$@"; }
tarlist() { "$PY" "$TESTS_LIB/tarlist.py" "$@"; }
fslist() { "$PY" "$TESTS_LIB/fslist.py" "$@"; }
treecmp() { "$PY" "$TESTS_LIB/treecmp.py" "$@"; }
OCI=$TEST_TMP/oci     # one OCI layout holding every image, ref = image name
O=$TEST_TMP/oracle    # per image: NAME.named, NAME.layers, NAME.umoci/, NAME.gnux/ ...
mkdir -p -- "$O"
umask 022             # umoci creates implicit parents 0777 &~umask

cleanup() {
	mnt_stop_all
	proxy_stop_all
	reg_stop_all
}
tap_trap_cleanup cleanup

if [ "$(id -u)" -ne 0 ]; then
	skip "image oracle tests" "need root: umoci unpack (not rootless) creates devices and owners"
	tap_done
	exit
fi

reg_start r || exit 1
URL=$REG_r_URL
HOST=$REG_r_HOST

xattr() { # PATH NAME → the attribute's value (no follow)
	$PY -c 'import os, sys
sys.stdout.write(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False).decode())' "$1" "$2" 2>&1
}
dd_at() { # FILE OFFSET LENGTH → those bytes, with one pread-sized read where possible
	dd if="$1" bs=1M iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none
}
sha_of() { sha256sum -- "$1" | cut -d' ' -f1; }
blob_gets() { # DIGEST → GET requests for that blob so far (any repository)
	reg_count_requests r "\"GET /v2/[^ ]*/blobs/$1 "
}
layer_field() { # NAME I FIELD(2=digest 3=media type 4=size)
	awk -v i="$2" -v f="$3" '$1 == i { print $f }' "$O/$1.layers"
}
nlayers() { wc -l <"$O/$1.layers" | tr -d ' '; }

# ---------------------------------------------------------------- image specs
cat >"$O/multilayer.json" <<'EOF'
{"mtime": 1700000000, "layers": [
 {"format": "pax", "compression": "gzip", "entries": [
  {"type": "dir", "path": "etc"},
  {"type": "file", "path": "etc/passwd", "content": "root:x:0:0:root:/root:/bin/sh\n"},
  {"type": "file", "path": "etc/dup", "content": "first\n"},
  {"type": "symlink", "path": "etc/localtime", "target": "/usr/share/zoneinfo/UTC"},
  {"type": "dir", "path": "usr/"},
  {"type": "dir", "path": "./usr/bin", "mtime": 1600000000},
  {"type": "file", "path": "usr/bin/su", "mode": "4755", "size": 3000, "seed": "su"},
  {"type": "file", "path": "usr/bin/wall", "mode": "2755", "gid": 5, "size": 100, "seed": "w"},
  {"type": "file", "path": "usr/bin/ping", "mode": "0755", "size": 500, "seed": "ping",
   "xattrs_hex": {"security.capability": "0100000200200000000000000000000000000000"}},
  {"type": "file", "path": "usr/bin/a", "mode": "0750", "uid": 1000, "gid": 1000, "content": "hard linked\n"},
  {"type": "hardlink", "path": "usr/bin/b", "target": "usr/bin/a"},
  {"type": "hardlink", "path": "usr/lib/c", "target": "usr/bin/a"},
  {"type": "symlink", "path": "bin", "target": "usr/bin"},
  {"type": "dir", "path": "tmp", "mode": "1777"},
  {"type": "dir", "path": "srv/www", "uid": 33, "gid": 33, "mode": "2775", "xattrs": {"user.dir": "on a dir"}},
  {"type": "file", "path": "srv/www/index.html", "uid": 33, "gid": 33, "content": "<html/>\n",
   "xattrs": {"user.comment": "hello", "user.mime_type": "text/html"}, "xattrs_hex": {"user.bin": "00ff0001"}},
  {"type": "char", "path": "dev/null", "mode": "0666", "major": 1, "minor": 3},
  {"type": "block", "path": "dev/sda", "mode": "0660", "gid": 6, "major": 8, "minor": 0},
  {"type": "fifo", "path": "run/fifo", "mode": "0600"},
  {"type": "file", "path": "opt/implicit/deep/file.txt", "content": "parents never named\n"},
  {"type": "file", "path": "données/résumé-日本語.txt", "content": "non-ASCII name\n"},
  {"type": "file", "path": "emoji/😀 space.txt", "content": "emoji\n"},
  {"type": "file", "path": "long/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.txt", "content": "name > 100 bytes\n"},
  {"type": "file", "path": "long/p1111111111111111111111111111111111111111111111111111111111111111111111111111/p2222222222222222222222222222222222222222222222222222222222222222222222222222222222/p33333333333333333333333333333333333333333333333333333333333333333333333333333333333333333/file-beyond-255-bytes.txt", "content": "path > 255 bytes\n"},
  {"type": "symlink", "path": "long/link", "target": "../long/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.txt"},
  {"type": "file", "path": "frac-mtime", "content": "x", "mtime": 1700000123.75},
  {"type": "file", "path": "rm/me.txt", "content": "to be whited out\n"},
  {"type": "file", "path": "rm/dir/x", "content": "x\n"},
  {"type": "file", "path": "rm/dir/y", "content": "y\n"},
  {"type": "dir", "path": "var/lib/opq1"},
  {"type": "file", "path": "var/lib/opq1/old-a", "content": "old\n"},
  {"type": "file", "path": "var/lib/opq1/sub/old-b", "content": "old\n"},
  {"type": "file", "path": "var/lib/opq2/old-c", "content": "old\n"},
  {"type": "file", "path": "replace-dir/child", "content": "hidden by a file above\n"},
  {"type": "file", "path": "etc/dup", "content": "second, wins\n"}
 ]},
 {"format": "gnu", "compression": "gzip", "entries": [
  {"type": "whiteout", "path": "rm/me.txt"},
  {"type": "whiteout", "path": "rm/dir"},
  {"type": "opaque", "path": "var/lib/opq1"},
  {"type": "file", "path": "var/lib/opq1/new", "content": "after the marker\n"},
  {"type": "file", "path": "var/lib/opq2/new", "content": "before the marker\n"},
  {"type": "opaque", "path": "var/lib/opq2"},
  {"type": "file", "path": "etc/passwd", "mode": "0600", "content": "root:x:0:0::/root:/bin/bash\n"},
  {"type": "dir", "path": "etc", "mode": "0750", "mtime": 1710000000},
  {"type": "file", "path": "home/big-uid", "uid": 3000000, "gid": 3000001, "content": "base-256 ids\n"},
  {"type": "file", "path": "gnu/lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll-L.txt", "content": "GNU L\n"},
  {"type": "symlink", "path": "gnu/k", "target": "/kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk/K"},
  {"type": "file", "path": "data/big.bin", "size": 9437184, "seed": "big", "fill": "mixed"},
  {"type": "file", "path": "data/h1", "content": "layer-1 hard link\n"},
  {"type": "hardlink", "path": "data/h2", "target": "data/h1"}
 ]},
 {"format": "ustar", "compression": "gzip", "entries": [
  {"type": "whiteout", "path": "usr/bin/b"},
  {"type": "file", "path": "replace-dir", "content": "a file replaces the lower directory\n"},
  {"type": "file", "path": "usr/share/pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp/qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq.txt", "content": "ustar prefix+name\n"},
  {"type": "file", "path": "tmp/in-sticky", "content": "in tmp\n"},
  {"type": "file", "path": "etc/dup", "content": "third layer\n", "mtime": 1720000000}
 ]}
]}
EOF
cat >"$O/docker.json" <<'EOF'
{"media": "docker", "layers": [
 {"entries": [{"type": "file", "path": "hello", "content": "docker media types\n"},
              {"type": "file", "path": "keep/me", "mode": "0600", "uid": 5, "content": "kept\n"},
              {"type": "hardlink", "path": "keep/me2", "target": "keep/me"}]},
 {"format": "gnu", "entries": [{"type": "whiteout", "path": "hello"},
              {"type": "file", "path": "bin/tool", "mode": "4711", "size": 70000, "seed": "tool"}]}]}
EOF
cat >"$O/amd64.json" <<'EOF'
{"architecture": "amd64", "layers": [{"entries": [
 {"type": "file", "path": "arch.txt", "content": "amd64\n"},
 {"type": "file", "path": "bin/prog", "mode": "0755", "size": 20000, "seed": "amd64"}]}]}
EOF
cat >"$O/arm64.json" <<'EOF'
{"architecture": "arm64", "variant": "v8", "layers": [{"entries": [
 {"type": "file", "path": "arch.txt", "content": "arm64 v8\n"},
 {"type": "file", "path": "bin/prog", "mode": "0755", "size": 20000, "seed": "arm64"}]}]}
EOF
cat >"$O/zstd.json" <<'EOF'
{"layers": [
 {"entries": [{"type": "file", "path": "base", "content": "gzip base\n"},
              {"type": "file", "path": "gone", "content": "whited out by the zstd layer\n"}]},
 {"compression": "zstd", "zstd_frames": 3, "entries": [
  {"type": "whiteout", "path": "gone"},
  {"type": "file", "path": "zz/big", "size": 3000000, "seed": "zz", "fill": "mixed"},
  {"type": "symlink", "path": "zz/link", "target": "big"},
  {"type": "file", "path": "zz/small", "mode": "0640", "uid": 12, "gid": 34, "content": "zstd\n"}]}]}
EOF
cat >"$O/plain.json" <<'EOF'
{"layers": [
 {"compression": "none", "entries": [{"type": "file", "path": "d/old", "content": "old\n"},
              {"type": "file", "path": "plain.txt", "content": "an uncompressed layer\n"}]},
 {"compression": "none", "format": "gnu", "entries": [{"type": "opaque", "path": "d"},
              {"type": "file", "path": "d/new", "size": 100000, "seed": "plain"}]}]}
EOF
cat >"$O/sparse.json" <<'EOF'
{"layers": [{"entries": [
 {"type": "file", "path": "sp/before", "content": "before the sparse file\n"},
 {"type": "sparse", "path": "sp/sparse.img", "size": 67108864, "mode": "0640", "uid": 7,
  "data": [[0, 4096, "s0"], [1048576, 10000, "s1"], [33554432, 70000, "s2"], [67104768, 4096, "s3"]]},
 {"type": "file", "path": "sp/after", "content": "after the sparse file\n"}]}]}
EOF
cat >"$O/conc.json" <<'EOF'
{"layers": [
 {"entries": [{"type": "file", "path": "c0/f", "size": 2000000, "seed": "c0"}, {"type": "file", "path": "c0/g", "content": "g\n"}]},
 {"entries": [{"type": "file", "path": "c1/f", "size": 2000000, "seed": "c1"}, {"type": "file", "path": "c1/g", "content": "g\n"}]},
 {"entries": [{"type": "file", "path": "c2/f", "size": 2000000, "seed": "c2"}, {"type": "file", "path": "c2/g", "content": "g\n"}]}]}
EOF
# Hostile archives (point 8). Raw headers carry what no well-behaved writer emits.
cat >"$O/escape.json" <<'EOF'
{"layers": [{"entries": [
 {"type": "file", "path": "ok.txt", "content": "benign\n"},
 {"type": "raw", "name": "../../etc/x", "data_len": 5, "seed": "dotdot"},
 {"type": "raw", "name": "/abs/path", "data_len": 5, "seed": "abs"},
 {"type": "raw", "name": "sub/../../../escape", "data_len": 3},
 {"type": "raw", "name": "loop1", "typeflag": "1", "linkname": "loop2"},
 {"type": "raw", "name": "loop2", "typeflag": "1", "linkname": "loop1"},
 {"type": "raw", "name": "self", "typeflag": "1", "linkname": "self"},
 {"type": "raw", "name": "dangling", "typeflag": "1", "linkname": "no/such/file"},
 {"type": "raw", "name": "uplink", "typeflag": "1", "linkname": "../../etc/passwd"},
 {"type": "symlink", "path": "lnk", "target": "/etc"},
 {"type": "raw", "name": "lnk/through-symlink", "data_len": 4},
 {"type": "file", "path": "dup", "content": "one\n"},
 {"type": "file", "path": "dup", "content": "two, wins\n"},
 {"type": "file", "path": "ok2.txt", "content": "also benign\n"}]}]}
EOF
cat >"$O/sizes.json" <<'EOF'
{"layers": [
 {"entries": [{"type": "file", "path": "fine", "content": "fine\n"}]},
 {"entries": [{"type": "file", "path": "before", "content": "before\n"},
              {"type": "raw", "name": "huge-octal", "size_field": "77777777777", "data_len": 1024}]},
 {"entries": [{"type": "file", "path": "before2", "content": "before\n"},
              {"type": "raw", "name": "huge-b256", "size_field": "b256:1180591620717411303424", "data_len": 1024}]},
 {"entries": [{"type": "file", "path": "t/file", "size": 200000, "seed": "trunc"},
              {"type": "file", "path": "t/after", "content": "after\n"}], "truncate": 30000}]}
EOF
# Hard links whose target lives in a lower layer (umoci links to the lower file): with
# the header's own attributes, to a lower hard link, chained in the upper layer, with
# the target whited out after the link (the link keeps the file), into a directory made
# opaque after the link, before a replacement of the target; symlinks archived 0644/0600.
# GNU tar + manual whiteouts cannot extract these (it applies a layer's whiteouts
# first): umoci alone is the oracle.
cat >"$O/hardlinks.json" <<'EOF'
{"mtime": 1700000000, "layers": [
 {"entries": [
  {"type": "file", "path": "a1", "mode": "0640", "uid": 7, "content": "a1: linked from above\n"},
  {"type": "file", "path": "a2", "content": "a2: whited out after the link\n"},
  {"type": "file", "path": "a4", "content": "a4: a group\n"},
  {"type": "hardlink", "path": "a4h", "target": "a4"},
  {"type": "file", "path": "a5", "content": "a5: chained\n"},
  {"type": "file", "path": "f/a8", "content": "a8: its directory made opaque\n"},
  {"type": "file", "path": "repl", "content": "lower repl\n"},
  {"type": "symlink", "path": "s644", "target": "a1", "mode": "0644"}]},
 {"format": "gnu", "entries": [
  {"type": "hardlink", "path": "b1", "target": "a1", "own_attrs": true, "mode": "0600", "uid": 9,
   "mtime": 1600000000},
  {"type": "hardlink", "path": "b2", "target": "a2"},
  {"type": "whiteout", "path": "a2"},
  {"type": "hardlink", "path": "b4", "target": "a4h"},
  {"type": "hardlink", "path": "c5", "target": "a5"},
  {"type": "hardlink", "path": "d5", "target": "c5"},
  {"type": "hardlink", "path": "new/e8", "target": "f/a8"},
  {"type": "opaque", "path": "f"},
  {"type": "hardlink", "path": "r1", "target": "repl"},
  {"type": "file", "path": "repl", "content": "upper repl\n"},
  {"type": "symlink", "path": "s600", "target": "/etc/passwd", "mode": "0600"}]},
 {"format": "ustar", "entries": [
  {"type": "whiteout", "path": "a4"},
  {"type": "hardlink", "path": "top", "target": "b2"}]}
]}
EOF
# Names no Linux file system holds (point 7): umoci refuses such images, so acrfs is
# checked against what a user must see: listings that work, without those entries.
$PY - "$O/names.json" <<'EOF'
import json, sys
deep = "deep/" + "d/" * 2046 + "ff"  # 4097 bytes
json.dump({"layers": [
    {"entries": [
        {"type": "file", "path": "names/fine", "content": "fine\n"},
        {"type": "file", "path": "names/" + "a" * 255, "content": "a 255-byte name\n"},
        {"type": "file", "path": "names/" + "b" * 256, "content": "a 256-byte name\n"},
        {"type": "file", "path": "names/" + "c" * 256 + "/below", "content": "below\n"},
        {"type": "file", "path": "deep/ok", "content": "ok\n"},
        {"type": "file", "path": deep, "content": "a 4097-byte path\n"},
        {"type": "symlink", "path": "names/sym-ok", "target": "x" * 4095},
        {"type": "symlink", "path": "names/sym-long", "target": "x" * 4096}]},
    {"entries": [
        {"type": "file", "path": "x/file", "content": "x\n",
         "xattrs": {"\u0000": "an empty name", "user.kept": "yes"}}]},
    {"entries": [
        {"type": "file", "path": "names/nul-ph", "pax": {"path": "names/nul\u0000/../../nulx"},
         "content": "a NUL in a PAX path\n"},
        {"type": "file", "path": "names/bigid", "uid": 4294967296, "gid": 4294967295,
         "content": "owner ids beyond uid_t\n"}]}]},
    open(sys.argv[1], "w"))
EOF
# Limits on one image (point 6): 1,200 xattrs of 61,000 bytes in a zstd layer of a few
# KiB (73 MB of xattrs > TAR_MAX_XATTR_LAYER); 17 x records of 64,000 bytes before one
# entry (> TAR_MAX_XATTR_ENTRY); a sound layer beside them.
cat >"$O/bombs.json" <<'EOF'
{"layers": [
 {"entries": [{"type": "file", "path": "fine", "content": "fine\n"}]},
 {"compression": "zstd", "entries": [
  {"type": "file", "path": "x%d", "repeat": 1200, "content": "", "xattrs_fill": {"user.big": 61000}}]},
 {"entries": [
  {"type": "pax", "fill": {"SCHILY.xattr.user.0": 64000}}, {"type": "pax", "fill": {"SCHILY.xattr.user.1": 64000}},
  {"type": "pax", "fill": {"SCHILY.xattr.user.2": 64000}}, {"type": "pax", "fill": {"SCHILY.xattr.user.3": 64000}},
  {"type": "pax", "fill": {"SCHILY.xattr.user.4": 64000}}, {"type": "pax", "fill": {"SCHILY.xattr.user.5": 64000}},
  {"type": "pax", "fill": {"SCHILY.xattr.user.6": 64000}}, {"type": "pax", "fill": {"SCHILY.xattr.user.7": 64000}},
  {"type": "pax", "fill": {"SCHILY.xattr.user.8": 64000}}, {"type": "pax", "fill": {"SCHILY.xattr.user.9": 64000}},
  {"type": "pax", "fill": {"SCHILY.xattr.user.a": 64000}}, {"type": "pax", "fill": {"SCHILY.xattr.user.b": 64000}},
  {"type": "pax", "fill": {"SCHILY.xattr.user.c": 64000}}, {"type": "pax", "fill": {"SCHILY.xattr.user.d": 64000}},
  {"type": "pax", "fill": {"SCHILY.xattr.user.e": 64000}}, {"type": "pax", "fill": {"SCHILY.xattr.user.f": 64000}},
  {"type": "pax", "fill": {"SCHILY.xattr.user.g": 64000}},
  {"type": "file", "path": "victim", "content": "17 x records of xattrs before it\n"}]}
]}
EOF
# One layer listed 300 times in a row by the manifest, between two others.
cat >"$O/repeat.json" <<'EOF'
{"layers": [
 {"entries": [{"type": "file", "path": "base", "content": "base\n"},
              {"type": "file", "path": "same", "content": "replaced\n"}]},
 {"repeat": 300, "entries": [{"type": "file", "path": "same", "content": "listed 300 times\n"},
                             {"type": "file", "path": "dir/f", "content": "f\n"}]},
 {"entries": [{"type": "file", "path": "top", "content": "top\n"}]}
]}
EOF

# ---------------------------------------------------------------- oracles
# build NAME [twin|nognux]: image NAME in $OCI; with 'twin', umoci unpacks the same tars
# built as OCI tar+gzip (umoci 0.4.7 refuses docker manifests and zstd layers); with
# 'nognux', umoci is the only rootfs oracle (no GNU tar cross-check). Writes the image
# and its oracles; build_check then checks the oracles against each other.
build() {
	local name=$1 twin=${2:-} ref=$1
	mkimage build "$O/$name.json" "$OCI" --ref "$name" --named-out "$O/$name.named" \
		--layers-out "$O/$name.layers" >"$O/$name.digest" || return 1
	if [ "$twin" = twin ]; then
		ref=$name-twin
		mkimage build "$O/$name.json" "$OCI" --ref "$ref" --plain-oci >/dev/null || return 1
	fi
	rm -rf -- "$O/$name.umoci"
	umoci unpack --image "$OCI:$ref" "$O/$name.umoci" >"$O/$name.umoci.log" 2>&1 || {
		fail "$name: umoci unpack" "$(tail -n 5 "$O/$name.umoci.log")"
		return 1
	}
	local blobs=() i
	for ((i = 0; i < $(nlayers "$name"); i++)); do
		blobs+=("$(mkimage blob "$OCI" "$name" "$i")")
		tarlist "${blobs[i]}" --named-out "$O/$name.$i.named" >"$O/$name.$i.want" || {
			fail "$name: tarlist of layer $i"
			return 1
		}
	done
	if [ "$twin" = nognux ]; then
		cp -- "$O/$name.named" "$O/$name.named.umoci"
		return 0
	fi
	$PY "$TESTS_LIB/gnuextract.py" "$O/$name.gnux" "${blobs[@]}" 2>"$O/$name.gnux.log" || {
		fail "$name: GNU tar extraction"
		return 1
	}
}
build_check() {
	local name=$1 twin=${2:-}
	if [ "$twin" = twin ]; then
		is "$(diff_ids "$name-twin")" "$(diff_ids "$name")" \
			"$name: the umoci twin has the same layer tars (diff_ids)"
	fi
	[ "$twin" != nognux ] || return 0
	# The two rootfs oracles agree, except for directory mtimes umoci leaves at "now".
	check "$name: oracle self-check: umoci unpack = GNU tar + manual whiteouts" \
		treecmp "$O/$name.umoci/rootfs" "$O/$name.gnux" --named "$O/$name.named" \
		--dir-mtime-quirks "$O/$name.quirks"
	grep -vxF -f "$O/$name.quirks" -- "$O/$name.named" >"$O/$name.named.umoci"
	[ ! -s "$O/$name.quirks" ] ||
		diag "$name: umoci leaves the mtime of $(tr '\n' ' ' <"$O/$name.quirks")at unpack time"
	if [ "$(nlayers "$name")" = 1 ]; then
		# One layer without whiteouts: its tar listing is its rootfs.
		fslist "$O/$name.umoci/rootfs" --named "$O/$name.0.named" >"$O/$name.umoci.list"
		cmp_files "$O/$name.umoci.list" "$O/$name.0.want" \
			"$name: oracle self-check: tarlist of the only layer = fslist of umoci's rootfs"
	fi
}
diff_ids() {
	$PY -c 'import json, sys
lay = sys.argv[1]
idx = json.load(open(lay + "/index.json"))
m = [m for m in idx["manifests"]
     if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]][0]
blob = lambda d: json.load(open(lay + "/blobs/sha256/" + d.split(":")[1]))
print(" ".join(blob(blob(m["digest"])["config"]["digest"])["rootfs"]["diff_ids"]))' "$OCI" "$1"
}
BUILDS=("multilayer" "plain" "sparse" "conc" "amd64" "arm64" "docker twin" "zstd twin"
	"hardlinks nognux")
# oracles DIR RECIPES-SHA: every image and its oracles, built from the recipes in $O
# into DIR/oci and DIR/oracle. Nothing here involves acrfs and the recipes are the same
# in every pass (and in 84-acr-image): fixture.sh builds them once per run.
oracles() {
	local dir=$1 OCI=$1/oci O=$1/oracle b n
	cp -a -- "$TEST_TMP/oracle" "$O" || return 1
	for b in "${BUILDS[@]}"; do
		# shellcheck disable=SC2086 # NAME [twin|nognux]
		build $b || return 1
	done
	for n in escape sizes names bombs repeat; do
		mkimage build "$O/$n.json" "$OCI" --ref "$n" --layers-out "$O/$n.layers" \
			>"$O/$n.digest" || {
			fail "build hostile image $n"
			return 1
		}
	done
	mkimage index "$OCI" multi amd64 arm64 >"$O/multi.digest" || {
		fail "build the index"
		return 1
	}
}

t0=$SECONDS
recipes=$(cat -- "$O"/*.json | sha256sum | cut -d' ' -f1)
fixture_get oracles "$TEST_TMP/oracles" oracles "$recipes" || {
	fail "build the images and their oracles"
	tap_done
	exit 1
}
rm -rf -- "$OCI" "$O" && mv -- "$TEST_TMP/oracles/oci" "$OCI" &&
	mv -- "$TEST_TMP/oracles/oracle" "$O" && rmdir -- "$TEST_TMP/oracles" || exit 1
for b in "${BUILDS[@]}"; do
	# shellcheck disable=SC2086 # NAME [twin|nognux]
	build_check $b
done

# The oracle must be able to fail: one changed mode, xattr, owner, mtime or hard link each
# shows up.
M0=$O/mutated
cp -a -- "$O/multilayer.gnux" "$M0"
chmod 4750 "$M0/usr/bin/ping"
$PY -c 'import os, sys; os.setxattr(sys.argv[1], "user.comment", b"hellO")' \
	"$M0/srv/www/index.html"
rm -f -- "$M0/usr/lib/c" && cp -p -- "$M0/usr/bin/a" "$M0/usr/lib/c"
chown 1:1 "$M0/dev/sda"
touch -h -d @1700000001 "$M0/etc/localtime"
out=$(treecmp "$O/multilayer.gnux" "$M0" --named "$O/multilayer.named" 2>&1)
is "$(printf '%s\n' "$out" | grep -v '^treecmp' | cut -d: -f1,2 | sort | tr '\n' ' ')" \
	"dev/sda: owner etc/localtime: mtime srv/www/index.html: xattr usr/bin/a: hl usr/bin/a: nlink usr/bin/ping: mode usr/lib/c: hl usr/lib/c: nlink " \
	"oracle self-check: treecmp reports a changed mode, xattr, owner, mtime and hard link"
fslist_out=$(fslist "$O/multilayer.umoci/rootfs" --named "$O/multilayer.named")
check "oracle self-check: umoci kept security.capability and setuid" \
	grep -q '^usr/bin/ping f 0755 .*xattr=security.capability=0100000200200000000000000000000000000000$' \
	<<<"$fslist_out"
diag "oracles built in $((SECONDS - t0)) s"

# ---------------------------------------------------------------- push
push() { # REF REPO [--all]
	skopeo copy -q --dest-tls-verify=false --preserve-digests ${3:+"$3"} \
		"oci:$OCI:$1" "docker://$HOST/$2:v1"
}
REPOS=(multilayer plain sparse conc zstd hardlinks)
for n in "${REPOS[@]}"; do
	push "$n" "oracle/$n" || fail "push $n"
done
# skopeo's oci: transport only reads OCI manifests; the docker image goes up as built.
mkimage push "$OCI" docker "$URL/oracle/docker:v1" >/dev/null || fail "push docker"
push multi oracle/multi --all || fail "push the index"
push escape hostile/escape || fail "push hostile/escape"
for n in names bombs repeat; do # as built: skopeo need not accept what they hold
	mkimage push "$OCI" "$n" "$URL/hostile/$n:v1" >/dev/null || fail "push hostile/$n"
done
push sizes hostile/sizes || fail "push hostile/sizes"
for n in "${REPOS[@]}" docker multi escape sizes names bombs repeat; do
	repo=oracle/$n
	case $n in escape | sizes | names | bombs | repeat) repo=hostile/$n ;; esac
	remote=$(skopeo inspect --raw --tls-verify=false "docker://$HOST/$repo:v1" | sha256sum | cut -d' ' -f1)
	is "sha256:$remote" "$(cat "$O/$n.digest")" "$repo:v1 pushed with its digest"
done
diag "built and pushed in $((SECONDS - t0)) s"

# ---------------------------------------------------------------- mount
export XDG_CACHE_HOME=$TEST_TMP/xdg-cache # a fresh persistent cache
mnt_start a "$URL" || {
	fail "mount"
	tap_done
	exit 1
}
M=$MNT_a
T=$M/oracle/multilayer/v1
DG=$(cat "$O/multilayer.digest")

# ---------------------------------------------------------------- laziness
m0=$(reg_count_requests r '"GET /v2/oracle/multilayer/manifests')
b0=$(reg_count_requests r '"GET /v2/[^ ]*/blobs/')
is "$(ls "$M/oracle/multilayer")" "v1" "ls <repo> lists the tag"
is "$(reg_count_requests r '"GET /v2/oracle/multilayer/manifests')" "$m0" \
	"listing a repository fetches no manifest"
# Each "fetches no blob" holds only if the listing before it showed what it should:
# an empty directory fetches nothing either.
got=$(ls "$T" | tr '\n' ' ')
is "$got" "config.json layers manifest.json referrers rootfs " \
	"ls <tag>: manifest.json config.json layers referrers rootfs"
check "looking inside the tag fetched its manifest" \
	test "$(reg_count_requests r '"GET /v2/oracle/multilayer/manifests')" -gt "$m0"
is "$got|$(reg_count_requests r '"GET /v2/[^ ]*/blobs/')" \
	"config.json layers manifest.json referrers rootfs |$b0" "ls <tag> fetches no blob (listing|blob GETs)"
got=$(ls "$T/layers" | tr '\n' ' ')
is "$got" "0 1 2 " "layers/ holds 0 1 2"
is "$got|$(reg_count_requests r '"GET /v2/[^ ]*/blobs/')" "0 1 2 |$b0" \
	"ls layers/ fetches no blob (listing|blob GETs)"
L1=$(layer_field multilayer 1 2)
ls "$T/layers/1/" >/dev/null
is "$(reg_count_requests r '"GET /v2/[^ ]*/blobs/')" "$((b0 + 1))" \
	"ls layers/1/ fetches exactly one blob"
is "$(blob_gets "$L1")" 1 "… and it is layer 1's blob"

# Random access before anything read the file sequentially.
BIG=$O/multilayer.umoci/rootfs/data/big.bin
while read -r off len; do
	dd_at "$BIG" "$off" "$len" >"$O/dd.want"
	dd_at "$T/layers/1/data/big.bin" "$off" "$len" >"$O/dd.got" 2>&1
	check "read of $len bytes at offset $off of a 9 MiB gzip'd file = dd of the oracle" \
		cmp -- "$O/dd.got" "$O/dd.want"
done <<'EOF'
4718592 65536
5000001 100000
9437000 184
EOF
dd if="$BIG" bs=4096 skip=1500 count=3 status=none >"$O/dd.want"
dd if="$T/rootfs/data/big.bin" bs=4096 skip=1500 count=3 status=none >"$O/dd.got" 2>&1
check "rootfs: a read in the middle of the big file = dd of the oracle" \
	cmp -- "$O/dd.got" "$O/dd.want"

# ---------------------------------------------------------------- bytes and xattrs
is "sha256:$(sha_of "$T/manifest.json" 2>/dev/null)" "$DG" "sha256sum manifest.json = the manifest digest"
check "config.json = the config blob" \
	cmp -- "$T/config.json" "$(mkimage blob "$OCI" multilayer config)"
is "$(xattr "$T" user.acrfs.digest)" "$DG" "tag dir: user.acrfs.digest"
is "$(xattr "$T" user.acrfs.media_type)" "application/vnd.oci.image.manifest.v1+json" \
	"tag dir: user.acrfs.media_type"
for i in 0 1 2; do
	is "$(xattr "$T/layers/$i" user.acrfs.digest) $(xattr "$T/layers/$i" user.acrfs.media_type) $(xattr "$T/layers/$i" user.acrfs.size)" \
		"$(layer_field multilayer "$i" 2) $(layer_field multilayer "$i" 3) $(layer_field multilayer "$i" 4)" \
		"layers/$i: user.acrfs.digest, media_type, size"
done

# By digest: reachable by lookup, not listed.
check "<repo>/sha256:<hex>/ is reachable" test -d "$M/oracle/multilayer/$DG"
is "$(ls "$M/oracle/multilayer/$DG" 2>&1 | tr '\n' ' ')" "config.json layers manifest.json referrers rootfs " \
	"ls <repo>/sha256:<hex>/ shows the image"
is "$(find "$M/oracle/multilayer" -mindepth 1 -maxdepth 1 -name 'sha256:*' | wc -l)" 0 \
	"the digest directory is not listed"
is "$(xattr "$M/oracle/multilayer/$DG" user.acrfs.digest)" "$DG" "digest dir: user.acrfs.digest"

# ---------------------------------------------------------------- tree oracles
# compare NAME TAGDIR: every layers/i = tarlist of its blob, rootfs = umoci (+ GNU tar).
compare() {
	local name=$1 td=$2 i n
	n=$(nlayers "$name")
	is "$(ls "$td/layers" 2>&1 | tr '\n' ' ')" "$(seq 0 $((n - 1)) | tr '\n' ' ')" \
		"$name: layers/ holds 0..$((n - 1))"
	for ((i = 0; i < n; i++)); do
		fslist "$td/layers/$i" --named "$O/$name.$i.named" >"$O/$name.$i.got" 2>&1
		cmp_files "$O/$name.$i.got" "$O/$name.$i.want" \
			"$name: layers/$i = its tar listing ($(wc -l <"$O/$name.$i.want") entries)"
	done
	check "$name: rootfs = umoci unpack ($(find "$O/$name.umoci/rootfs" -mindepth 1 | wc -l) entries)" \
		treecmp "$td/rootfs" "$O/$name.umoci/rootfs" --named "$O/$name.named.umoci"
	[ ! -d "$O/$name.gnux" ] ||
		check "$name: rootfs mtimes of named directories = the top-most tar header's" \
			treecmp "$td/rootfs" "$O/$name.gnux" --named "$O/$name.named"
}

compare multilayer "$T"
for f in usr/bin/su etc/passwd etc/dup data/h2 usr/lib/c "données/résumé-日本語.txt" \
	"long/p1111111111111111111111111111111111111111111111111111111111111111111111111111/p2222222222222222222222222222222222222222222222222222222222222222222222222222222222/p33333333333333333333333333333333333333333333333333333333333333333333333333333333333333333/file-beyond-255-bytes.txt"; do
	check "cat rootfs/${f:0:60} = the oracle" cmp -- "$T/rootfs/$f" "$O/multilayer.umoci/rootfs/$f"
done
is "$(cat "$T/rootfs/etc/dup" 2>&1)" "third layer" "the top layer's etc/dup wins"
check "whiteout files never appear in rootfs" test -z "$(find "$T/rootfs" -name '.wh.*' 2>&1)"
is "$(stat -c '%h %i' "$T/rootfs/usr/bin/a" 2>&1 | cut -d' ' -f1)" 2 \
	"a hard-link group that lost a member to a whiteout has st_nlink 2"
ino=$(stat -c %i "$T/rootfs/usr/bin/a" 2>&1)
check "hard links share one inode" test -n "$ino" -a "$ino" = "$(stat -c %i "$T/rootfs/usr/lib/c" 2>&1)"

compare docker "$M/oracle/docker/v1"
is "$(xattr "$M/oracle/docker/v1" user.acrfs.media_type)" \
	"application/vnd.docker.distribution.manifest.v2+json" "docker: tag media type"
is "$(xattr "$M/oracle/docker/v1/layers/0" user.acrfs.media_type)" \
	"application/vnd.docker.image.rootfs.diff.tar.gzip" "docker: layer media type"
is "sha256:$(sha_of "$M/oracle/docker/v1/manifest.json" 2>/dev/null)" "$(cat "$O/docker.digest")" \
	"docker: manifest.json digest"
check "docker: config.json = the config blob" \
	cmp -- "$M/oracle/docker/v1/config.json" "$(mkimage blob "$OCI" docker config)"

compare zstd "$M/oracle/zstd/v1"
is "$(xattr "$M/oracle/zstd/v1/layers/1" user.acrfs.media_type)" \
	"application/vnd.oci.image.layer.v1.tar+zstd" "zstd: layer media type"
dd_at "$O/zstd.umoci/rootfs/zz/big" 2000000 5000 >"$O/dd.want"
dd_at "$M/oracle/zstd/v1/rootfs/zz/big" 2000000 5000 >"$O/dd.got" 2>&1
check "zstd: a read inside the third frame = the oracle" cmp -- "$O/dd.got" "$O/dd.want"

compare plain "$M/oracle/plain/v1"
is "$(xattr "$M/oracle/plain/v1/layers/0" user.acrfs.media_type)" \
	"application/vnd.oci.image.layer.v1.tar" "plain: uncompressed layer media type"

compare sparse "$M/oracle/sparse/v1"
S=$M/oracle/sparse/v1/rootfs/sp/sparse.img
is "$(stat -c %s "$S" 2>&1)" 67108864 "sparse: the file has its full size"
for off in 1048000 33554432 67104768 20000000; do
	dd_at "$O/sparse.umoci/rootfs/sp/sparse.img" "$off" 8192 >"$O/dd.want"
	dd_at "$S" "$off" 8192 >"$O/dd.got" 2>&1
	check "sparse: 8 KiB at $off = the oracle" cmp -- "$O/dd.got" "$O/dd.want"
done

# ---------------------------------------------------------------- hard links, symlinks
H=$M/oracle/hardlinks/v1
compare hardlinks "$H"
is "$(cat "$H/rootfs/b2" 2>&1)" "a2: whited out after the link" \
	"hardlinks: a link keeps the lower file its layer whites out"
is "$(stat -c '%h %u %a' "$H/rootfs/b1" 2>&1)" "2 7 640" \
	"hardlinks: a link to a lower file is that file (nlink 2, its owner and mode)"
is "$(stat -c %i "$H/rootfs/d5" 2>&1)" "$(stat -c %i "$H/rootfs/a5" 2>&1)" \
	"hardlinks: a link to a link to a lower file is the lower file"
is "$(ls "$H/layers/1" 2>&1 | tr '\n' ' ')" "f new repl s600 " \
	"hardlinks: layers/1 alone holds none of its links to lower files (as extracting it alone)"
is "$(stat -c %a "$H/rootfs/s644" "$H/layers/0/s644" "$H/layers/1/s600" 2>&1 | tr '\n' ' ')" \
	"777 777 777 " "symlinks archived 0644 and 0600 are 0777 in rootfs/ and layers/i/"

# ---------------------------------------------------------------- index
X=$M/oracle/multi/v1
is "$(ls "$X" 2>&1 | tr '\n' ' ')" "index.json linux-amd64 linux-arm64-v8 referrers " \
	"index: index.json, one directory per platform (the attestation is skipped), referrers"
is "sha256:$(sha_of "$X/index.json" 2>/dev/null)" "$(cat "$O/multi.digest")" "index: sha256sum index.json = the digest"
is "$(xattr "$X" user.acrfs.media_type)" "application/vnd.oci.image.index.v1+json" \
	"index: user.acrfs.media_type"
for p in amd64:linux-amd64 arm64:linux-arm64-v8; do
	n=${p%%:*} d=${p#*:}
	is "sha256:$(sha_of "$X/$d/manifest.json" 2>/dev/null)" "$(cat "$O/$n.digest")" "index: $d/manifest.json is its manifest"
	is "$(xattr "$X/$d" user.acrfs.digest)" "$(cat "$O/$n.digest")" "index: $d user.acrfs.digest"
	compare "$n" "$X/$d"
done
check "index: no unknown-unknown directory" test ! -e "$X/unknown-unknown"
check "index: by digest, the index is reachable" test -d "$M/oracle/multi/$(cat "$O/multi.digest")"
check "index: by digest, a platform image is reachable" \
	test -f "$M/oracle/multi/$(cat "$O/arm64.digest")/manifest.json"

# ---------------------------------------------------------------- single-flight
C=$M/oracle/conc/v1
ls "$C" >/dev/null 2>&1
pids=()
for k in 1 2 3 4; do
	find "$C/rootfs" >"$O/conc.find.$k" 2>&1 &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for i in 0 1 2; do
	is "$(blob_gets "$(layer_field conc "$i" 2)")" 1 \
		"4 concurrent finds of rootfs fetch layer $i's blob exactly once"
done
check "the 4 finds saw the same, whole tree" \
	test "$(cat "$O"/conc.find.* | sort | uniq -c | awk '$1 != 4' | wc -l)" -eq 0 -a \
	"$(grep -c -e '/rootfs/c[012]/[fg]$' "$O/conc.find.1")" -eq 6
compare conc "$C"

# ---------------------------------------------------------------- hostile input
E=$M/hostile/escape/v1
out=$(timeout 30 find "$E" 2>&1)
rc=$?
check "escape: find of the image finishes (no link-loop hang)" test "$rc" -ne 124
check "escape: the benign entries are there" test -f "$E/layers/0/ok.txt" -a -f "$E/layers/0/ok2.txt" \
	-a -f "$E/rootfs/ok.txt"
bad=$(printf '%s\n' "$out" | grep -E '/(x|path|escape)$' | grep -vE "^$E/(layers/0|rootfs)/")
is "$bad" "" "escape: '..' and absolute entries are dropped or contained in the layer tree"
for p in "$M/etc" "$M/abs" "$M/escape" "$M/hostile/etc" "$M/hostile/escape/etc" \
	"$M/hostile/escape/abs" "$E/etc" "$E/abs" "$E/layers/etc" "$E/layers/abs" "$E/escape"; do
	check "escape: nothing at ${p#"$M"/}" test ! -e "$p"
done
is "$(cat "$E/layers/0/dup" 2>&1)" "two, wins" "escape: of duplicate names the last wins (layer)"
is "$(cat "$E/rootfs/dup" 2>&1)" "two, wins" "escape: of duplicate names the last wins (rootfs)"
for l in loop1 loop2 self dangling uplink; do
	out=$(timeout 10 cat "$E/layers/0/$l" 2>&1)
	rc=$?
	check "escape: a hard link to nothing ($l) is absent or harmless (exit $rc)" \
		test "$rc" -ne 124 -a "$(printf %s "$out" | wc -c)" -lt 100000
done

Z=$M/hostile/sizes/v1
is "$(cat "$Z/layers/0/fine" 2>&1)" "fine" "sizes: a sound layer beside broken ones is served"
# broken DESC DIR: DIR exists (the manifest names it), but listing it fails with an
# error other than ENOENT, within 30 s, and prints no entry.
broken() {
	local desc=$1 dir=$2 got rc
	check "$desc: the directory exists" test -d "$dir"
	got=$(timeout 30 ls "$dir" 2>"$O/ls.err")
	rc=$?
	is "$got" "" "$desc: lists nothing"
	check "$desc: ls fails with an error ($(head -c 200 "$O/ls.err"))" \
		test "$rc" -ne 0 -a "$rc" -ne 124 -a -s "$O/ls.err" -a \
		"$(grep -c 'No such file or directory' "$O/ls.err")" -eq 0
}
broken "sizes: layers/1 (an 8 GiB octal size)" "$Z/layers/1"
broken "sizes: layers/2 (a 2^70 base-256 size)" "$Z/layers/2"
broken "sizes: layers/3 (a truncated gzip stream)" "$Z/layers/3"
broken "sizes: rootfs over broken layers" "$Z/rootfs"
pid=$(_mnt_pid_of "$M")
rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
check "the daemon survived the hostile images with bounded memory (RSS ${rss:-?} KiB)" \
	test -n "$rss" -a "${rss:-0}" -lt 524288
check "the mount still answers" test -d "$M/oracle"

# A blob whose bytes do not match its digest: the registry verifies uploads, so the
# corruption has to happen in transit.
if grep -qw corrupt "$TESTS_LIB/faultproxy.py"; then
	CL=$(layer_field conc 1 2)
	if [ "${REG_r_ACR:-0}" = 1 ]; then
		# ACR answers a blob GET with a 307 to its storage origin, which acrfs reaches
		# directly, around the proxy: let the registry origin serve the blobs itself for
		# this mount (the emulator's redirect_blobs knob), so that they pass the proxy.
		acremu_control r '{"redirect_blobs": false}' >/dev/null || fail "redirect_blobs off"
	fi
	proxy_start p "$URL" --rule "/blobs/$CL:corrupt" || fail "start the fault proxy"
	XDG_CACHE_HOME=$TEST_TMP/xdg-cache-p mnt_start p "$PROXY_p_URL" || fail "mount via proxy"
	broken "corrupt blob: layers/1" "$MNT_p/oracle/conc/v1/layers/1"
	check "corrupt blob: EIO" grep -q 'Input/output error' "$O/ls.err"
	is "$(cat "$MNT_p/oracle/conc/v1/layers/0/c0/g" 2>&1)" "g" "corrupt blob: other layers are fine"
	mnt_stop p
	if [ "${REG_r_ACR:-0}" = 1 ]; then
		acremu_control r '{"redirect_blobs": true}' >/dev/null || fail "redirect_blobs on"
	fi
else
	skip "a blob whose bytes do not match its digest gives EIO" \
		"tests/lib/faultproxy.py has no 'corrupt' action yet"
fi

# ---------------------------------------------------------------- names, limits, repeats
# A mount of its own, in the foreground, to read its log.
XDG_CACHE_HOME=$TEST_TMP/xdg-cache-h mnt_start_fg h "$URL" || fail "mount h"
LOG=$TEST_TMP/mnt-h.log
MH=$MNT_h
NM=$MH/hostile/names/v1
N255=$(printf 'a%.0s' {1..255})
for d in rootfs layers/0; do
	ls -l "$NM/$d/names" >/dev/null 2>"$O/ls.err"
	rc=$?
	want="$N255 bigid fine sym-ok "
	[ "$d" = rootfs ] || want="$N255 fine sym-ok "
	is "$rc $(ls -1 "$NM/$d/names" 2>&1 | tr '\n' ' ')" "0 $want" \
		"names: ls -l $d/names works ($(head -c 100 "$O/ls.err")), no name longer than 255 bytes"
	check "names: find $d succeeds ($(find "$NM/$d" 2>&1 >/dev/null | head -c 200))" \
		find "$NM/$d" -name nothing
	check "names: du $d succeeds" du -s "$NM/$d"
done
is "$(cd "$NM/rootfs" && find deep 2>&1 | tr '\n' ' ')" "deep deep/ok " \
	"names: a path longer than 4095 bytes is not there (nor its parents)"
is "$(readlink "$NM/rootfs/names/sym-ok" 2>&1 | wc -c)" 4096 "names: a 4095-byte symlink target is kept"
check "names: a 4096-byte symlink target is not" test ! -L "$NM/rootfs/names/sym-long"
check "names: an entry whose PAX path holds a NUL is not there, nor cut short" \
	test ! -e "$NM/rootfs/names/nul" -a ! -e "$NM/rootfs/nulx" -a ! -e "$NM/rootfs/names/nul-ph"
is "$(stat -c %u:%g "$NM/rootfs/names/bigid" 2>&1)" "65534:65534" \
	"names: owner ids beyond uid_t are 65534, not truncated (2^32 is not root)"
is "$($PY -c 'import os, sys; print(sorted(os.listxattr(sys.argv[1], follow_symlinks=False)))' \
	"$NM/rootfs/x/file" 2>&1)" "['user.kept']" "names: an empty xattr name is dropped, the others kept"
for w in "longer than 255 bytes (NAME_MAX)" "longer than 4095 bytes (PATH_MAX)" \
	"holds a NUL byte" "shown as 65534" "dropping xattr"; do
	check "names: the log says why ('$w')" grep -qF -- "$w" "$LOG"
done

BM=$MH/hostile/bombs/v1
is "$(cat "$BM/layers/0/fine" 2>&1)" "fine" "bombs: a sound layer beside them is served"
broken "bombs: layers/1 (73 MB of xattrs in a $(layer_field bombs 1 4)-byte zstd blob)" \
	"$BM/layers/1"
check "bombs: the log names TAR_MAX_XATTR_LAYER" grep -q 'TAR_MAX_XATTR_LAYER' "$LOG"
broken "bombs: layers/2 (17 x records of 64,000-byte xattrs for one entry)" "$BM/layers/2"
check "bombs: the log names TAR_MAX_XATTR_ENTRY" grep -q 'TAR_MAX_XATTR_ENTRY' "$LOG"
broken "bombs: rootfs" "$BM/rootfs"

RP=$MH/hostile/repeat/v1
is "$(ls "$RP/layers" | wc -l)" 302 "repeat: layers/ holds the 302 positions of the manifest"
is "$(cat "$RP/rootfs/same" "$RP/rootfs/top" "$RP/layers/150/same" "$RP/layers/300/same" 2>&1 |
	tr '\n' ' ')" "listed 300 times top listed 300 times listed 300 times " \
	"repeat: rootfs and layers/150 read the repeated layer"
check "repeat: rootfs = the three distinct layers merged" \
	test "$(cd "$RP/rootfs" && find . | sort | tr '\n' ' ')" = ". ./base ./dir ./dir/f ./same ./top "
is "$(blob_gets "$(layer_field repeat 150 2)")" 1 "repeat: the layer listed 300 times is fetched once"
pid=$MNT_h_PID
rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
check "the daemon survived names, bombs and repeats with bounded memory (RSS ${rss:-?} KiB)" \
	test -n "$rss" -a "${rss:-0}" -lt 524288
# The layer with the empty xattr name has a sound index file: a remount reads it,
# fetching no blob again.
L1N=$(layer_field names 1 2)
is "$(blob_gets "$L1N")" 1 "names: layers/1 fetched once"
mnt_stop h
XDG_CACHE_HOME=$TEST_TMP/xdg-cache-h mnt_start_fg h "$URL" || fail "remount h"
is "$(cat "$MNT_h/hostile/names/v1/layers/1/x/file" 2>&1)" "x" "names: layers/1 after a remount"
is "$(blob_gets "$L1N")" 1 "names: a remount reads the index file of layers/1, no blob GET"
check "names: no index file was rejected" test "$(grep -c 'index file .* is invalid' "$TEST_TMP/mnt-h.log")" -eq 0
mnt_stop h

mnt_stop a
check "fusermount3 -u unmounts" test ! -d "$M/oracle"
diag "60-image.sh took $((SECONDS - t0)) s"
tap_done
