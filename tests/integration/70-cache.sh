#!/usr/bin/env bash
# test-weight: 2 (tests/run.sh starts heavier scripts first)
# Issue 4, points 6-7 and the read-only view: the persistent cache (-o cache_dir, index
# files bounded by -o index_max, local blob copies bounded by -o cache_max), a remount
# that lists rootfs/ without fetching a blob byte, corrupt and truncated index files
# rebuilt, sequential reads that never restart inflating, file modes of the cache, mount
# flags, and what rm/touch/mkdir do inside an image view. Proof comes from the registry's
# own access log.
# shellcheck disable=SC2154 # REG_r_*, MNT_* are exported by reg_start / mnt_start
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/acrfs.sh"
PY=/usr/bin/python3
mkimage() { "$PY" "$TESTS_LIB/mkimage.py" "$@"; }
OCI=$TEST_TMP/oci
O=$TEST_TMP/o
mkdir -p -- "$O"

cleanup() {
	mnt_stop_all
	reg_stop_all
}
tap_trap_cleanup cleanup

reg_start r || exit 1
URL=$REG_r_URL
HOST=$REG_r_HOST

cat >"$O/img.json" <<'EOF'
{"mtime": 1700000000, "layers": [
 {"compression": "gzip", "entries": [
  {"type": "file", "path": "etc/os-release", "content": "ID=acrfs-test\n"},
  {"type": "file", "path": "data/big.bin", "size": 12582912, "seed": "big", "fill": "mixed"},
  {"type": "file", "path": "data/gone", "content": "whited out above\n"},
  {"type": "symlink", "path": "bin", "target": "usr/bin"}
 ]},
 {"compression": "gzip", "entries": [
  {"type": "whiteout", "path": "data/gone"},
  {"type": "file", "path": "usr/bin/tool", "mode": "0755", "size": 3145728, "seed": "tool", "fill": "mixed"},
  {"type": "file", "path": "etc/hostname", "content": "cached\n"}
 ]}
]}
EOF
mkimage build "$O/img.json" "$OCI" --ref img --layers-out "$O/img.layers" >"$O/img.digest" ||
	fail "build the image"
skopeo copy -q --dest-tls-verify=false --preserve-digests "oci:$OCI:img" \
	"docker://$HOST/cache/img:v1" || fail "push the image"
skopeo copy -q --dest-tls-verify=false --preserve-digests "oci:$OCI:img" \
	"docker://$HOST/cache/img:v2" || fail "push a second tag"
mkdir -p -- "$O/ref"
tar -xzf "$(mkimage blob "$OCI" img 0)" -C "$O/ref"
tar -xzf "$(mkimage blob "$OCI" img 1)" -C "$O/ref" usr etc/hostname
L0=$(awk '$1 == 0 { print $2 }' "$O/img.layers")
L1=$(awk '$1 == 1 { print $2 }' "$O/img.layers")
S0=$(awk '$1 == 0 { print $4 }' "$O/img.layers")
S1=$(awk '$1 == 1 { print $4 }' "$O/img.layers")

blob_gets() { reg_count_requests r '"GET /v2/[^ ]*/blobs/sha256:'; }
# Bytes the registry sent for blob GETs so far (the access log's response size field).
blob_bytes() {
	reg_requests r '"GET /v2/[^ ]*/blobs/sha256:' |
		awk '{ for (i = 1; i < NF; i++) if ($i ~ /HTTP\/[0-9.]+"$/) { s += $(i + 2); break } }
		     END { print s + 0 }'
}

xattr_of() { # PATH NAME → the attribute's value
	$PY -c 'import os, sys; sys.stdout.write(os.getxattr(sys.argv[1], sys.argv[2]).decode())' "$1" "$2" 2>&1
}

C=$TEST_TMP/cache # a cache directory that does not exist yet
R=cache/img/v1/rootfs

# ---------------------------------------------------------------- first mount
mnt_start a "$URL" -o cache_dir="$C" || {
	fail "mount"
	tap_done
	exit 1
}
check "the mount is nosuid,nodev (images hold setuid files and device nodes)" \
	awk -v d="$(readlink -f "$MNT_a")" '$2 == d && $4 ~ /(^|,)nosuid(,|$)/ && $4 ~ /(^|,)nodev(,|$)/ { f = 1 } END { exit !f }' /proc/mounts
g0=$(blob_gets)
(cd "$MNT_a/$R" && find . | sort) >"$O/find.1"
(cd "$O/ref" && find . | grep -vx ./data/gone | sort) >"$O/find.want"
cmp_files "$O/find.1" "$O/find.want" "find rootfs lists the merged tree ($(wc -l <"$O/find.want") entries)"
is "$(($(blob_gets) - g0))" 2 "the cold listing fetched each layer blob once"
check "cat etc/hostname = the layer's" cmp -- "$MNT_a/$R/etc/hostname" "$O/ref/etc/hostname"
check "the whiteout hides data/gone" test ! -e "$MNT_a/$R/data/gone"

# Reads from the local copies fetch nothing.
g1=$(blob_gets)
check "cat data/big.bin = the oracle (12 MiB)" cmp -- "$MNT_a/$R/data/big.bin" "$O/ref/data/big.bin"
is "$(($(blob_gets) - g1))" 0 "reading files with local blob copies fetches no blob"
mnt_stop a # the cache files are written in the background; the daemon waits for them at exit

# The cache directory: 0700 directories, 0600 files, nothing else.
is "$(stat -c %a "$C")" 700 "cache_dir was created 0700"
is "$(find "$C" -type d ! -perm 700 | wc -l) $(find "$C" -type f ! -perm 600 | wc -l)" "0 0" \
	"every directory below it is 0700 and every file 0600"
is "$(ls "$C/v1/index" | sort | tr '\n' ' ')" "${L0#sha256:}.idx ${L1#sha256:}.idx " \
	"one index file per layer, named by digest"
is "$(ls "$C/v1/rootfs" | grep -c '^[0-9a-f]\{64\}\.rfs$') $(ls "$C/v1/rootfs" | wc -l)" "1 1" \
	"one rootfs file: the merged tree of the image's layers"
is "$(ls "$C/v1/blobs" | sort | tr '\n' ' ')" "$(printf '%s\n' "${L0#sha256:}" "${L1#sha256:}" | sort | tr '\n' ' ')" \
	"a local copy of each blob (cache_max defaults to 4G)"

# ---------------------------------------------------------------- remount
# same_listing MNT N WHAT GETS WHAT2: find rootfs on MNT = the first mount's, with GETS
# blob requests.
same_listing() {
	local g
	g=$(blob_gets)
	(cd "$1/$R" && find . | sort) >"$O/find.$2"
	cmp_files "$O/find.$2" "$O/find.1" "$3"
	is "$(($(blob_gets) - g))" "$4" "$5"
}
mnt_start b "$URL" -o cache_dir="$C" || fail "remount"
same_listing "$MNT_b" 2 "after a remount find rootfs lists the same tree" 0 \
	"… from the index files: no blob request at all"
g2=$(blob_gets)
check "… and a file reads right from the local copy" \
	cmp -- "$MNT_b/$R/usr/bin/tool" "$O/ref/usr/bin/tool"
is "$(($(blob_gets) - g2))" 0 "… without a blob request"
mnt_stop b

# ---------------------------------------------------------------- walks the kernel serves
# The no-opendir mode: the kernel keeps every listing and, in an image view (content-
# addressed), serves a repeated walk itself. Requests are counted in libfuse's debug log
# (-o debug: one "opcode:" line per request, written as it arrives); those about
# directories and names, not STATFS (find asks once per run) or FORGET.
dir_requests() { # LOG [OPCODES-ERE]
	grep -cE "opcode: (${2:-LOOKUP|GETATTR|OPENDIR|READDIR|READDIRPLUS|RELEASEDIR}) " "$1"
}
ndirs=$(grep -c '' <(cd "$O/ref" && find . -type d))
mnt_start_fg k "$URL" -o ro,debug,ttl=600,cache_dir="$C" || fail "mount -o ro,debug"
LK=$TEST_TMP/mnt-k.log
find "$MNT_k/$R" -printf "%P\n" >"$O/walk.1"
r0=$(dir_requests "$LK")
find "$MNT_k/$R" -printf "%P\n" >"$O/walk.2"
r1=$(dir_requests "$LK")
cmp_files "$O/walk.2" "$O/walk.1" "-o ro: a second find of rootfs lists the same tree"
is "$((r1 - r0))" 0 "… and sends no request at all: the kernel serves every listing and name"
mnt_stop k
# Read-write, the kernel drops a directory's atime after reading it (fs/fuse/readdir.c),
# so the next stat of it asks again: one GETATTR per directory, nothing else.
mnt_start_fg l "$URL" -o debug,ttl=600,cache_dir="$C" || fail "mount -o debug"
LL=$TEST_TMP/mnt-l.log
find "$MNT_l/$R" >/dev/null
r0=$(dir_requests "$LL") g0=$(dir_requests "$LL" GETATTR)
find "$MNT_l/$R" -printf "%P\n" >"$O/walk.3"
r1=$(dir_requests "$LL") g1=$(dir_requests "$LL" GETATTR)
cmp_files "$O/walk.3" "$O/walk.1" "read-write: a second find of rootfs lists the same tree"
is "$((r1 - r0 - (g1 - g0)))" 0 "… without a LOOKUP, OPENDIR or READDIR"
check "… and at most one GETATTR per directory ($((g1 - g0)) for $ndirs directories)" \
	test "$((g1 - g0))" -le "$ndirs"
mnt_stop l

# ---------------------------------------------------------------- a corrupt rootfs file
RF=$(ls "$C"/v1/rootfs/*.rfs)
szr=$(stat -c %s "$RF")
printf 'garbage' | dd of="$RF" bs=1 seek=$((szr / 2)) conv=notrunc status=none
mnt_start_fg r "$URL" -d -o cache_dir="$C" || fail "mount over a corrupt rootfs file"
same_listing "$MNT_r" 5 "a corrupt rootfs file: find rootfs still lists the right tree" 0 \
	"… merged again from the index files, without a blob request"
is "$(grep -c 'rootfs file in .* is invalid (checksum mismatch)' "$TEST_TMP/mnt-r.log")" 1 \
	"… and the log says the rootfs file was rejected"
mnt_stop r
mnt_start_fg s "$URL" -d -o cache_dir="$C" || fail "mount over the rewritten rootfs file"
same_listing "$MNT_s" 6 "the rewritten rootfs file serves the next mount" 0 "… without a blob request"
is "$(grep -c 'is invalid' "$TEST_TMP/mnt-s.log")" 0 "… and nothing in it is rejected"
mnt_stop s

# ---------------------------------------------------------------- corrupt index files
# Without the rootfs file, so that the listing needs the layers' trees.
rm -f "$C"/v1/rootfs/*.rfs
I0=$C/v1/index/${L0#sha256:}.idx
I1=$C/v1/index/${L1#sha256:}.idx
sz0=$(stat -c %s "$I0")
truncate -s $((sz0 / 2)) "$I0"                                   # truncated
printf 'garbage' | dd of="$I1" bs=1 seek=200 conv=notrunc status=none # one bit-rot
mnt_start_fg c "$URL" -d -o cache_dir="$C" || fail "mount over corrupt index files"
same_listing "$MNT_c" 3 "corrupt index files: find rootfs still lists the right tree" 0 \
	"… indexed again from the local blob copies, without a blob request"
is "$(grep -c 'index file .* is invalid' "$TEST_TMP/mnt-c.log")" 2 \
	"… and the log names each rejected index file"
is "$(stat -c %s "$I0")" "$sz0" "the truncated index file was rewritten whole"
mnt_stop c
mnt_start d "$URL" -o cache_dir="$C" || fail "mount over rebuilt index files"
same_listing "$MNT_d" 4 "the rebuilt index files serve the next mount" 0 \
	"… without a blob request"
mnt_stop d

# ---------------------------------------------------------------- cache_max
# A budget that holds the bigger blob but not both: least recently used goes first.
C2=$TEST_TMP/cache2
max=$((S0 > S1 ? S0 : S1))
max=$((max + 4096))
mnt_start e "$URL" -o cache_dir="$C2",cache_max="$max" || fail "mount with cache_max"
find "$MNT_e/$R" >/dev/null
cat "$MNT_e/$R/data/big.bin" >/dev/null
mnt_stop e
kept=$(du -cb "$C2"/v1/blobs/* 2>/dev/null | awk 'END { print $1 + 0 }')
check "cache_max=$max: blob copies take $kept bytes, within the bound" test "$kept" -le "$max"
is "$(ls "$C2/v1/blobs" | wc -l)" 1 "… so only one blob copy is kept"
is "$(ls "$C2/v1/index" | wc -l)" 2 "… while both index files stay (index_max bounds them apart)"

# ---------------------------------------------------------------- index_max
# Index and rootfs files have a bound of their own: over it, the least recently used go,
# and what they served comes back from the local blob copies (no blob request).
cache_stat() { # MNT KEY → .acrfs/status's cache.KEY
	"$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["cache"][sys.argv[2]])' \
		"$1/.acrfs/status" "$2"
}
meta_bytes() { cat "$1"/v1/index/* "$1"/v1/rootfs/* 2>/dev/null | wc -c; }
C3=$TEST_TMP/cache3
mnt_start j "$URL" -o cache_dir="$C3" || fail "mount for index_max"
find "$MNT_j/$R" >/dev/null
mnt_stop j # the files are stored in the background; the daemon waits for them at exit
total=$(meta_bytes "$C3")
mnt_start j2 "$URL" -o cache_dir="$C3" || fail "remount for index_max"
is "$(cache_stat "$MNT_j2" index_bytes)|$(cache_stat "$MNT_j2" index_files)" "$total|3" \
	".acrfs/status counts the 2 index files and the rootfs file ($total bytes)"
is "$(cache_stat "$MNT_j2" max_index_bytes)" "$((1 << 30))" "… against the default index_max, 1G"
mnt_stop j2
bound=$((total - 1))
mnt_start k "$URL" -o cache_dir="$C3",index_max="$bound" || fail "mount with index_max=$bound"
is "$(($(ls "$C3/v1/index" | wc -l) + $(ls "$C3/v1/rootfs" | wc -l)))" 2 \
	"index_max=$bound: one of the 3 files is evicted at mount"
check "… they take $(meta_bytes "$C3") bytes, within the bound" \
	test "$(meta_bytes "$C3")" -le "$bound"
is "$(cache_stat "$MNT_k" index_evictions)" 1 "… and .acrfs/status counts the eviction"
same_listing "$MNT_k" 7 "… find rootfs still lists the right tree" 0 "… without a blob request"
g3=$(blob_gets)
check "… both layers' files read right" cmp -- "$MNT_k/$R/usr/bin/tool" "$O/ref/usr/bin/tool"
check "… (the other layer's too)" cmp -- "$MNT_k/$R/data/big.bin" "$O/ref/data/big.bin"
is "$(($(blob_gets) - g3))" 0 "… from the local copies, without a blob request"
mnt_stop k
check "… and the files stay within the bound ($(meta_bytes "$C3") bytes)" \
	test "$(meta_bytes "$C3")" -le "$bound"
mnt_start l "$URL" -o cache_dir="$C3",index_max=0 || fail "mount with index_max=0"
is "$(ls "$C3/v1/index" "$C3/v1/rootfs" | grep -c '\.\(idx\|rfs\)$')" 0 \
	"index_max=0: the index and rootfs files are evicted at mount"
same_listing "$MNT_l" 8 "… find rootfs still lists the right tree" 0 \
	"… indexed again from the local copies, without a blob request"
is "$(ls "$C3/v1/index" "$C3/v1/rootfs" | grep -c '\.\(idx\|rfs\)$')" 0 "… and none is written"
mnt_stop l
# A local copy that does not match its digest is not indexed: the blob is downloaded.
B0=$C3/v1/blobs/${L0#sha256:}
printf 'garbage' | dd of="$B0" bs=1 seek=100 conv=notrunc status=none
mnt_start_fg m "$URL" -d -o cache_dir="$C3",index_max=0 || fail "mount over a damaged blob copy"
same_listing "$MNT_m" 9 "a damaged blob copy: find rootfs still lists the right tree" 1 \
	"… after downloading that blob (one request)"
is "$(grep -c 'local copy could not be indexed' "$TEST_TMP/mnt-m.log")" 1 \
	"… and the log says the copy was not used"
mnt_stop m # the new copy is committed in the background; the daemon waits for it at exit
check "… which is replaced by a good one" \
	test "sha256:$(sha256sum <"$B0" 2>/dev/null | cut -d' ' -f1)" = "$L0"

# ---------------------------------------------------------------- streaming reads
# No local copies (cache_max=0): bytes come by HTTP Range requests. A sequential cat
# must stream, not re-inflate from the start of the layer for every read.
C3=$TEST_TMP/cache3
mnt_start f "$URL" -o cache_dir="$C3",cache_max=0 || fail "mount with cache_max=0"
find "$MNT_f/$R" >/dev/null
b0=$(blob_bytes)
check "cache_max=0: cat data/big.bin = the oracle" cmp -- "$MNT_f/$R/data/big.bin" "$O/ref/data/big.bin"
read_bytes=$(($(blob_bytes) - b0))
if [ "${ACRFS_TEST_ACR:-0}" = 1 ]; then
	# 86-acr-cache: the bytes come from the storage origin the registry redirects to.
	skip "… no restart, at most the blob + 1 MiB" "ACR: the emulator's request log has no sizes"
else
	check "… fetching $read_bytes bytes of a $S0-byte blob: no restart, at most the blob + 1 MiB" \
		test "$read_bytes" -gt 0 -a "$read_bytes" -le $((S0 + 1048576))
fi
is "$(ls "$C3/v1/blobs" 2>/dev/null | wc -l)" 0 "… and nothing is kept on disk"
b1=$(blob_bytes)
dd if="$MNT_f/cache/img/v2/rootfs/data/big.bin" bs=4096 skip=2000 count=1 status=none | cmp -s - \
	<(dd if="$O/ref/data/big.bin" bs=4096 skip=2000 count=1 status=none)
check "a 4 KiB read at 8 MB through another tag = the oracle" test $? -eq 0
mnt_stop f

# ---------------------------------------------------------------- a read-only view
mnt_start g "$URL" -o cache_dir="$C" || fail "mount for the read-only checks"
V=$MNT_g/cache/img/v1
err() { "$@" 2>&1 | sed -n 's/.*: \([A-Z][a-z].*\)$/\1/p' | head -1; }
is "$(err touch "$V/rootfs/etc/new")" "Operation not permitted" "touch inside rootfs: EPERM"
is "$(err sh -c "echo x >>'$V/rootfs/etc/hostname'")" "Operation not permitted" \
	"appending to a file of rootfs: EPERM"
is "$(err rm -f "$V/rootfs/etc/hostname")" "Operation not permitted" "rm of a file: EPERM"
is "$(err mkdir "$V/rootfs/newdir")" "Operation not permitted" "mkdir inside rootfs: EPERM"
is "$(err rmdir "$V/layers/0")" "Operation not permitted" "rmdir of layers/0: EPERM"
rm -r "$V" >/dev/null 2>&1
check "rm -r of a tag fails inside the view and the tag stays (rmdir/rm -d delete it)" \
	test "$(ls "$MNT_g/cache/img" | tr '\n' ' ')" = "v1 v2 "
check "… with its image: the registry still has v1" reg_digest r cache/img v1
mnt_stop g

# ---------------------------------------------------------------- unsupported layer type
cat >"$O/odd.json" <<'EOF'
{"mtime": 1700000000, "layers": [
 {"compression": "none", "media_type": "application/vnd.example.layer.v1.tar+lz4",
  "entries": [{"type": "file", "path": "secret-looking", "content": "never shown\n"}]},
 {"compression": "gzip", "entries": [{"type": "file", "path": "ok", "content": "ok\n"}]}
]}
EOF
mkimage build "$O/odd.json" "$OCI" --ref odd >/dev/null || fail "build the odd image"
mkimage push "$OCI" odd "$URL/cache/odd:v1" >/dev/null || fail "push the odd image"
mnt_start_fg h "$URL" -o cache_dir="$TEST_TMP/cache4" || fail "mount for the odd image"
D=$MNT_h/cache/odd/v1
is "$(xattr_of "$D/layers/0" user.acrfs.media_type)" "application/vnd.example.layer.v1.tar+lz4" \
	"an unknown layer media type is shown as it is"
out=$(ls -A "$D/layers/0" 2>&1)
is "$out|$?" "|0" "… its layer directory is empty (nothing invented)"
check "… and the log says why" grep -q "unsupported media type" "$TEST_TMP/mnt-h.log"
is "$(cat "$D/layers/1/ok" 2>&1)" "ok" "the other layer is served"
out=$(ls "$D/rootfs" 2>&1)
check "rootfs is refused rather than shown without a layer: $out" \
	grep -q "Operation not supported" <<<"$out"
mnt_stop h

# ---------------------------------------------------------------- a moved tag shows at once
# With ttl=600, what a tag resolves to is cached; after mv -T replaces it through the
# mount, looking into it must show the new image at once.
skopeo copy -q --dest-tls-verify=false --preserve-digests "oci:$OCI:img" \
	"docker://$HOST/cache/mv:a" || fail "push cache/mv:a"
mkimage push "$OCI" odd "$URL/cache/mv:b" >/dev/null || fail "push cache/mv:b"
mnt_start i "$URL" -o ttl=600 -o cache_dir="$TEST_TMP/cache5" || fail "mount with ttl=600"
W=$MNT_i/cache/mv
is "$(ls "$W/b/layers/1" 2>&1)" "ok" "b shows its image (cached for 600 s)"
check "mv -T a b (b replaced)" mv -T "$W/a" "$W/b"
is "sha256:$(sha256sum <"$W/b/manifest.json" | cut -d' ' -f1)" "$(cat "$O/img.digest")" \
	"… b/manifest.json is a's manifest at once"
is "$(cat "$W/b/rootfs/etc/hostname" 2>&1)" "cached" "… and b/rootfs is a's tree"
mnt_stop i

tap_done
