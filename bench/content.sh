#!/usr/bin/env bash
# bench/content.sh — image contents: acrfs against zcat and against skopeo + umoci.
# Not a test: prints figures, ratios against anchors measured in the same run, and the
# issue-4 targets as PASS/MISS (informational; the exit status does not depend on them).
#
#   bench/content.sh [RUNS]      (default 3; each figure is the median over RUNS)
#
# Needs root (to drop the page cache; without it the figures are warm-cache ones), GNU tar,
# gzip, skopeo, umoci, docker-registry, curl, fusermount3 and a built ./acrfs (it is copied
# first, so a rebuild during the run does not disturb it; this script never runs make).
#
# Image: bench/mkcontent.py builds, from files already on this machine, a 3-layer tar+gzip
# OCI image of ~1.3 GB uncompressed (~58k entries; a 110 MB shared library in the top
# layer; a whiteout), cached in .test-tmp/bench-content-cache keyed by the file list, and
# this script pushes it to a loopback docker-registry as bench/content:v1.
#
# Each run measures, with the page cache dropped (sync; echo 3 >/proc/sys/vm/drop_caches)
# before every timed step:
#   A    zcat of each layer blob (local copies) to /dev/null: the time inflating alone
#        takes (GNU gzip's own inflate); A' the same with python3's zlib, 1 MiB reads;
#   B    skopeo copy docker://… oci:DIR, umoci unpack --rootless, find rootfs | wc -l;
#   cold   a fresh mount with an empty -o cache_dir: find rootfs | wc -l;
#   remount  the same cache_dir: find rootfs | wc -l, and the blob bytes it fetched;
#   seq    a fresh mount (index warm, -o cache_max=0 so bytes come from the registry):
#          cat of the big file to /dev/null, as MB/s of output against zcat of the file
#          alone gzip'd the same way (the same bytes: the target is taken against it) and,
#          for reference, of its whole layer (other content inflates at other rates);
#   F, F0  the FUSE floor: bench/fusefloor.c, a FUSE server that does no work per request
#          (every reply precomputed in memory), serving the same tree (listed from the
#          acrfs mount once); a fresh mount, find | wc -l. F answers OPENDIR with handles
#          and READDIRPLUS as acrfs does (the same kernel requests); F0 uses the kernel's
#          no-opendir mode (the fewest requests any FUSE file system can get away with).
#          What the kernel and the machine charge for FUSE round trips alone: the
#          remount figure is also given as a ratio to F;
#   random a fresh mount (index warm, cache_max=0): RANDOM_READS (default 4) reads of
#          4 KiB with O_DIRECT at random offsets of the big file (offsets seeded, one per
#          stretch of the file), and the blob bytes each fetched.
# Bytes fetched are counted on the registry's side, independent of acrfs: the size field
# of the access log's blob GET lines (200 and 206) after a mark. The script first checks
# that accounting against curl's own byte counts for a whole blob and a Range request.
# shellcheck disable=SC2154 # REG_c_* are set by reg_start, MNT_a by mnt_start
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUNS=${1:-3}
RANDOM_READS=${RANDOM_READS:-4}
SPAN=$((4 << 20))
REPO=bench/content
TAG=v1
export TEST_TMP=$ROOT/.test-tmp/bench-content-$$ TESTS_LIB=$ROOT/tests/lib
CACHE=$ROOT/.test-tmp/bench-content-cache
mkdir -p "$TEST_TMP"
ACRFS_BIN=${ACRFS_BIN:-$ROOT/acrfs}
[ -x "$ACRFS_BIN" ] || {
	echo "bench/content.sh: build ./acrfs first (make)" >&2
	exit 1
}
cp "$ACRFS_BIN" "$TEST_TMP/acrfs"
export ACRFS=$TEST_TMP/acrfs
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/acrfs.sh"
FLOOR_MNT=$TEST_TMP/mnt-floor
cleanup() {
	is_mounted "$FLOOR_MNT" && fusermount3 -u -- "$FLOOR_MNT"
	mnt_stop_all
	reg_stop_all
	rm -rf "$TEST_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "" }'; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
MB() { calc "$1 / 1e6" "${2:-0}"; }

DROP=yes
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || DROP=no
}

# time_to FILE CMD...: run CMD (stdout kept in $TEST_TMP/out), append seconds to FILE.
time_to() {
	local file=$1 t0 t1 rc=0
	shift
	t0=$EPOCHREALTIME
	"$@" >"$TEST_TMP/out" || rc=$?
	t1=$EPOCHREALTIME
	calc "$t1 - $t0" 6 >>"$file"
	echo >>"$file"
	return "$rc"
}
NOTES=()
note() { NOTES+=("run $run: $*"); }

# Registry-side byte accounting.
log_mark() { reg_count_requests c; }
# blob_bytes_since MARK → "BYTES REQUESTS STATUSES": blob GETs logged after MARK.
blob_bytes_since() {
	reg_requests c | tail -n +"$(($1 + 1))" | awk -F'"' '
		$2 ~ /^GET \/v2\/.*\/blobs\/sha256:[0-9a-f]+ / {
			split($3, f, " ")
			if (f[2] ~ /^[0-9]+$/) b += f[2]
			n++; st[f[1]]++
		}
		END { s = ""; for (k in st) s = s (s == "" ? "" : ",") k "x" st[k]
		      printf "%d %d %s\n", b, n, (s == "" ? "-" : s) }'
}

echo "acrfs content benchmark: $(nproc) cores, $RUNS runs, medians"

# ---- the image -----------------------------------------------------------------------
t0=$EPOCHREALTIME
eval "$(/usr/bin/python3 bench/mkcontent.py --cache "$CACHE")"
t1=$EPOCHREALTIME
if [ "$IMG_BUILT" = 1 ]; then
	echo "image built in $(calc "$t1 - $t0" 1) s (cached in $CACHE/$IMG_KEY)"
else
	echo "image from cache $CACHE/$IMG_KEY"
fi
LAYERS=()
for ((i = 0; i < IMG_NLAYERS; i++)); do
	v=IMG_LAYER${i}_DIGEST
	LAYERS+=("$IMG_LAYOUT/blobs/sha256/${!v#sha256:}")
done

reg_start c >/dev/null
HOST=$REG_c_HOST
URL=$REG_c_URL
t0=$EPOCHREALTIME
skopeo copy -q --dest-tls-verify=false "oci:$IMG_LAYOUT:$TAG" "docker://$HOST/$REPO:$TAG" >/dev/null
t1=$EPOCHREALTIME
printf 'image %s:%s: %d gzip layers, %s MB uncompressed (%s MB gzip), %d entries; pushed in %s s\n' \
	"$REPO" "$TAG" "$IMG_NLAYERS" "$(MB "$IMG_USIZE")" "$(MB "$IMG_CSIZE")" "$IMG_ENTRIES" \
	"$(calc "$t1 - $t0" 1)"
printf 'big file /%s: %s MB in layer %d (layer %s MB uncompressed, %s MB gzip)\n' "$IMG_BIG" \
	"$(MB "$IMG_BIG_SIZE")" "$IMG_BIG_LAYER" \
	"$(MB "$(eval echo "\$IMG_LAYER${IMG_BIG_LAYER}_USIZE")")" \
	"$(MB "$(eval echo "\$IMG_LAYER${IMG_BIG_LAYER}_CSIZE")")"

# ---- check the access-log accounting against curl --------------------------------------
BIGL_DIGEST=$(eval echo "\$IMG_LAYER${IMG_BIG_LAYER}_DIGEST")
mark=$(log_mark)
n1=$(curl -sS -f -o /dev/null -w '%{size_download}' "$URL/v2/$REPO/blobs/$IMG_CONFIG")
n2=$(curl -sS -f -o /dev/null -w '%{size_download}' -r 1000000-1065535 \
	"$URL/v2/$REPO/blobs/$BIGL_DIGEST")
n3=$(curl -sS -f -o /dev/null -w '%{size_download}' "$URL/v2/$REPO/blobs/$BIGL_DIGEST")
read -r lb ln lst <<<"$(blob_bytes_since "$mark")"
if [ "$lb" = $((n1 + n2 + n3)) ] && [ "$n2" = 65536 ] && [ "$ln" = 3 ]; then
	echo "access-log accounting: OK (curl $n1 + $n2 (Range) + $n3 bytes = log $lb bytes, $lst)"
else
	echo "access-log accounting: MISMATCH (curl $n1 + $n2 + $n3, log $lb bytes in $ln requests," \
		"$lst) — byte figures below are suspect"
fi

# ---- the FUSE floor server -------------------------------------------------------------
FLOOR=$TEST_TMP/fusefloor
# shellcheck disable=SC2046 # pkg-config prints several words
cc -O2 -o "$FLOOR" bench/fusefloor.c $(pkg-config --cflags --libs fuse3) -lpthread ||
	FLOOR=
FLOOR_LIST=$TEST_TMP/floor.list
# floor_find MODE...: a fresh floor mount, the page cache dropped, find | wc -l timed.
floor_find() {
	local file=$1
	shift
	mkdir -p "$FLOOR_MNT"
	"$FLOOR" "$@" "$FLOOR_LIST" "$FLOOR_MNT" || {
		note "fusefloor $* failed to mount"
		return
	}
	drop_caches
	time_to "$file" find_count "$FLOOR_MNT" || note "fusefloor $*: find failed"
	[ "$(cat "$TEST_TMP/out")" = "${A_COUNT:-}" ] ||
		note "fusefloor $*: find counted $(cat "$TEST_TMP/out") entries, acrfs ${A_COUNT:-?}"
	fusermount3 -u -- "$FLOOR_MNT"
}

# ---- runs ------------------------------------------------------------------------------
M=$TEST_TMP/m
mkdir -p "$M"
pyzlib_layers() {
	/usr/bin/python3 -c 'import sys, zlib
for p in sys.argv[1:]:
    d = zlib.decompressobj(31)
    with open(p, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            d.decompress(b)' "${LAYERS[@]}"
}
find_count() { find "$1" | wc -l; }
skopeo_pull() { skopeo copy -q --src-tls-verify=false "docker://$HOST/$REPO:$TAG" "oci:$1:$TAG"; }
umoci_unpack() { umoci unpack --rootless --image "$1:$TAG" "$2" >/dev/null 2>&1; }
rand_blocks() { # SEED N FILESIZE → N 4 KiB block numbers, one in each 1/N of the file
	/usr/bin/python3 -c 'import random, sys
r = random.Random(int(sys.argv[1])); n = int(sys.argv[2]); blocks = int(sys.argv[3]) // 4096
for i in range(n):
    print(r.randrange(i * blocks // n, (i + 1) * blocks // n))' "$@"
}

ACRFS_OK=1
acrfs_unavailable() {
	[ "$ACRFS_OK" = 1 ] && echo "acrfs: rootfs not available ($*); acrfs rows skipped"
	ACRFS_OK=0
}
DIRECT=iflag=direct
ROOTFS_REL=$REPO/$TAG/rootfs

for ((run = 1; run <= RUNS; run++)); do
	printf 'run %d/%d:' "$run" "$RUNS"
	# A: inflate alone.
	drop_caches
	t0=$EPOCHREALTIME
	for ((i = 0; i < IMG_NLAYERS; i++)); do
		zcat <"${LAYERS[$i]}" >/dev/null
		t1=$EPOCHREALTIME
		calc "$t1 - $t0" 6 >>"$M/zcat$i" && echo >>"$M/zcat$i"
		t0=$t1
	done
	awk '{ s += $1 } END { printf "%.6f\n", s }' < <(for ((i = 0; i < IMG_NLAYERS; i++)); do
		tail -n 1 "$M/zcat$i"; done) >>"$M/zcat"
	drop_caches
	time_to "$M/pyzlib" pyzlib_layers
	drop_caches
	time_to "$M/zcat_big" zcat "$IMG_BIG_GZ"
	printf ' A'

	# B: skopeo copy + umoci unpack + find.
	rm -rf "$TEST_TMP/oci" "$TEST_TMP/bundle"
	drop_caches
	time_to "$M/b_copy" skopeo_pull "$TEST_TMP/oci"
	time_to "$M/b_unpack" umoci_unpack "$TEST_TMP/oci" "$TEST_TMP/bundle"
	drop_caches
	time_to "$M/b_find" find_count "$TEST_TMP/bundle/rootfs"
	B_COUNT=$(cat "$TEST_TMP/out")
	paste -d' ' <(tail -n1 "$M/b_copy") <(tail -n1 "$M/b_unpack") <(tail -n1 "$M/b_find") |
		awk '{ printf "%.6f\n", $1 + $2 + $3 }' >>"$M/b"
	rm -rf "$TEST_TMP/oci" "$TEST_TMP/bundle"
	printf ' B'

	[ "$ACRFS_OK" = 1 ] || {
		echo
		continue
	}
	# acrfs cold: empty cache_dir.
	CDIR=$TEST_TMP/acache
	rm -rf "$CDIR"
	if ! mnt_start a "$URL" -o "cache_dir=$CDIR" >/dev/null 2>&1; then
		acrfs_unavailable "mount failed: $(head -c 300 "$TEST_TMP/mnt-a.err")"
		echo
		continue
	fi
	drop_caches
	mark=$(log_mark)
	if ! time_to "$M/cold" find_count "$MNT_a/$ROOTFS_REL" 2>"$TEST_TMP/find.err" ||
		[ "$(cat "$TEST_TMP/out")" -le 1 ]; then
		sed -i '$d' "$M/cold"
		mnt_stop a
		acrfs_unavailable "$(head -n1 "$TEST_TMP/find.err")"
		echo
		continue
	fi
	A_COUNT=$(cat "$TEST_TMP/out")
	blob_bytes_since "$mark" >>"$M/cold_bytes"
	mnt_stop a
	printf ' cold'

	# acrfs after a remount: same cache_dir.
	mnt_start a "$URL" -o "cache_dir=$CDIR" >/dev/null 2>&1 || {
		note "mount failed: $(head -c 300 "$TEST_TMP/mnt-a.err")"
		echo
		continue
	}
	drop_caches
	mark=$(log_mark)
	time_to "$M/warm" find_count "$MNT_a/$ROOTFS_REL" 2>"$TEST_TMP/find.err" ||
		note "remount: find failed: $(head -n1 "$TEST_TMP/find.err")"
	[ "$(cat "$TEST_TMP/out")" = "$A_COUNT" ] ||
		note "remount: find counted $(cat "$TEST_TMP/out") entries, cold $A_COUNT"
	blob_bytes_since "$mark" >>"$M/warm_bytes"
	# The floor serves the same tree: list it once (not timed).
	[ -n "$FLOOR" ] && [ ! -s "$FLOOR_LIST" ] &&
		{ find "$MNT_a/$ROOTFS_REL" -mindepth 1 -printf '%y %m %s %U %G %T@ %P\0' >"$FLOOR_LIST" ||
			note "listing the tree for fusefloor failed"; }
	mnt_stop a
	printf ' remount'
	if [ -n "$FLOOR" ] && [ -s "$FLOOR_LIST" ]; then
		floor_find "$M/floor" --opendir
		floor_find "$M/floor0"
		printf ' floor'
	fi

	# Sequential read of the big file: index warm, bytes from the registry.
	mnt_start a "$URL" -o "cache_dir=$CDIR,cache_max=0" >/dev/null 2>&1 || {
		note "mount failed: $(head -c 300 "$TEST_TMP/mnt-a.err")"
		echo
		continue
	}
	stat "$MNT_a/$ROOTFS_REL/$IMG_BIG" >/dev/null
	drop_caches
	mark=$(log_mark)
	time_to "$M/seq" cat "$MNT_a/$ROOTFS_REL/$IMG_BIG" 2>"$TEST_TMP/cat.err" ||
		note "seq: cat failed: $(head -n1 "$TEST_TMP/cat.err")"
	blob_bytes_since "$mark" >>"$M/seq_bytes"
	if [ "$run" = 1 ]; then
		sum=$(sha256sum <"$MNT_a/$ROOTFS_REL/$IMG_BIG" | cut -d' ' -f1)
		[ "$sum" = "$IMG_BIG_SHA256" ] && SEQ_OK=yes || SEQ_OK="NO (sha256 differs)"
	fi
	mnt_stop a
	printf ' seq'

	# Random 4 KiB reads: fresh mount, index warm; one offset per stretch of the file.
	mnt_start a "$URL" -o "cache_dir=$CDIR,cache_max=0" >/dev/null 2>&1 || {
		note "mount failed: $(head -c 300 "$TEST_TMP/mnt-a.err")"
		echo
		continue
	}
	F=$MNT_a/$ROOTFS_REL/$IMG_BIG
	mark=$(log_mark)
	stat "$F" >/dev/null
	blob_bytes_since "$mark" >>"$M/lookup_bytes"
	if [ "$DIRECT" = iflag=direct ] &&
		! dd if="$F" of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null; then
		DIRECT=   # O_DIRECT refused: page-cache reads (kernel readahead may add bytes)
	fi
	for blk in $(rand_blocks $((4200 + run)) "$RANDOM_READS" "$IMG_BIG_SIZE"); do
		mark=$(log_mark)
		dd if="$F" of=/dev/null bs=4096 count=1 skip="$blk" $DIRECT status=none 2>"$TEST_TMP/dd.err" ||
			note "random: dd at block $blk failed: $(head -n1 "$TEST_TMP/dd.err")"
		read -r b n _ <<<"$(blob_bytes_since "$mark")"
		echo "$b $n $((blk * 4096))" >>"$M/rand"
	done
	mnt_stop a
	printf ' random\n'
done
[ "$DROP" = yes ] && echo "(page cache dropped before every timed step)" ||
	echo "(page cache NOT dropped: not root — figures are warm-cache ones)"

# ---- table -----------------------------------------------------------------------------
med() { median <"$M/$1"; }
col1() { awk '{ print $1 }' "$M/$1" | median; }
zcat_t=$(med zcat)
pyz_t=$(med pyzlib)
b_t=$(med b)
big_u=$(eval echo "\$IMG_LAYER${IMG_BIG_LAYER}_USIZE")
zl_t=$(med "zcat$IMG_BIG_LAYER")
zl_mbs=$(calc "$big_u / $zl_t / 1e6" 0)
zb_mbs=$(calc "$IMG_BIG_SIZE / $(med zcat_big) / 1e6" 0)
pf() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "le") ? v <= t : v >= t
	print ok ? "PASS" : "MISS" }'; }

echo
echo "| step | time | figure | ratio | target |"
echo "|---|---:|---|---|---|"
printf '| A: zcat of the %d layers | %.2f s | %s MB/s of output | 1 | |\n' "$IMG_NLAYERS" \
	"$zcat_t" "$(calc "$IMG_USIZE / $zcat_t / 1e6" 0)"
printf "| A': python3 zlib of the %d layers | %.2f s | %s MB/s of output | %.2f× A | |\n" \
	"$IMG_NLAYERS" "$pyz_t" "$(calc "$IMG_USIZE / $pyz_t / 1e6" 0)" "$(calc "$pyz_t / $zcat_t")"
printf '| B: skopeo copy + umoci unpack + find \\| wc -l | %.2f s | copy %.2f s, unpack %.2f s, find %.2f s; %s entries | %.2f× A | |\n' \
	"$b_t" "$(med b_copy)" "$(med b_unpack)" "$(med b_find)" "${B_COUNT:-?}" "$(calc "$b_t / $zcat_t")"
if [ -s "$M/cold" ]; then
	cold_t=$(med cold)
	warm_t=$(med warm)
	seq_t=$(med seq)
	seq_mbs=$(calc "$IMG_BIG_SIZE / $seq_t / 1e6" 0)
	printf "| acrfs cold: find rootfs \\| wc -l | %.2f s | %s entries%s; %s MB of blobs fetched (%.2f× the layers) | %.2f× A, %.2f× A', %.2f× B | ≤ 1.15× A: %s; ≤ 1.15× A' (zlib): %s |\n" \
		"$cold_t" "$A_COUNT" "$([ "$A_COUNT" = "${B_COUNT:-}" ] && echo " (= B)" || echo " (B: ${B_COUNT:-?})")" \
		"$(MB "$(col1 cold_bytes)")" "$(calc "$(col1 cold_bytes) / $IMG_CSIZE")" "$(calc "$cold_t / $zcat_t")" "$(calc "$cold_t / $pyz_t")" \
		"$(calc "$cold_t / $b_t" 3)" "$(pf "$(calc "$cold_t / $zcat_t" 4)" 1.15 le)" \
		"$(pf "$(calc "$cold_t / $pyz_t" 4)" 1.15 le)"
	wb=$(col1 warm_bytes)
	floor_t=$( [ -s "$M/floor" ] && med floor || echo 0)
	floor0_t=$( [ -s "$M/floor0" ] && med floor0 || echo 0)
	if [ "$floor_t" != 0 ]; then
		printf '| F: the same find on fusefloor (no work per request; OPENDIR + READDIRPLUS as acrfs) | %.3f s | FUSE round trips alone | 1 | |\n' "$floor_t"
		printf '| F0: fusefloor in no-opendir mode (the fewest requests) | %.3f s | | %.2f× F | |\n' \
			"$floor0_t" "$(calc "$floor0_t / $floor_t")"
	fi
	printf '| acrfs after remount: find rootfs \\| wc -l | %.3f s | %s blob bytes fetched | %.3f× cold%s | ≤ 0.3 s: %s; 0 bytes: %s |\n' \
		"$warm_t" "$wb" "$(calc "$warm_t / $cold_t" 3)" \
		"$([ "$floor_t" != 0 ] && printf ', %.2f× F, %.2f× F0' "$(calc "$warm_t / $floor_t" 4)" "$(calc "$warm_t / $floor0_t" 4)")" \
		"$(pf "$warm_t" 0.3 le)" \
		"$([ "$(sort -g "$M/warm_bytes" | tail -n1 | cut -d' ' -f1)" = 0 ] && echo PASS || echo MISS)"
	printf '| acrfs sequential read: cat %s MB file | %.2f s | %s MB/s; %s MB fetched; content %s | %.2f× zcat of the file alone (%s MB/s); %.2f× zcat of its whole layer (%s MB/s) | ≥ 0.8× zcat of the same bytes: %s |\n' \
		"$(MB "$IMG_BIG_SIZE")" "$seq_t" "$seq_mbs" "$(MB "$(col1 seq_bytes)" 1)" "${SEQ_OK:-?}" \
		"$(calc "$seq_mbs / $zb_mbs")" "$zb_mbs" "$(calc "$seq_mbs / $zl_mbs")" "$zl_mbs" \
		"$(pf "$(calc "$seq_mbs / $zb_mbs" 4)" 0.8 ge)"
	read -r rmax rmean rn <<<"$(awk '{ if ($1 > m) m = $1; s += $1; n++ } END { printf "%d %d %d\n", m, s / n, n }' "$M/rand")"
	printf '| acrfs random 4 KiB read%s, %d offsets | | max %s KiB, mean %s KiB fetched (lookup: %s bytes) | max %.2f× a span (4 MiB) | ≤ 4 MiB + 64 KiB: %s |\n' \
		"$([ -n "$DIRECT" ] && echo " (O_DIRECT)" || echo " (page cache)")" "$rn" \
		"$((rmax / 1024))" "$((rmean / 1024))" "$(col1 lookup_bytes)" \
		"$(calc "$rmax / $SPAN")" "$(pf "$rmax" $((SPAN + 65536)) le)"
else
	for s in "acrfs cold: find rootfs \\| wc -l" "acrfs after remount: find rootfs \\| wc -l" \
		"acrfs sequential read" "acrfs random 4 KiB read"; do
		printf '| %s | pending | acrfs: rootfs not available | | |\n' "$s"
	done
	printf '| (zcat of the big file'"'"'s layer: %s MB/s; of the file alone: %s MB/s) | | | | |\n' \
		"$zl_mbs" "$zb_mbs"
fi
for n in "${NOTES[@]}"; do
	echo "note: $n"
done
exit 0
