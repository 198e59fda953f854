#!/usr/bin/env bash
# bench/content.sh — image contents: acrfs against inflating alone (igzip, zcat, python's
# zlib), against skopeo + umoci, and against a FUSE server that does no work per request.
# Not a test: prints figures, ratios against anchors measured in the same run, then the
# goals table of issue 12 with this run's ratios (informational: the exit status does not
# depend on them).
#
#   bench/content.sh [RUNS]      (default 3; each figure is the median over RUNS)
#   COLD_ONLY=1 ACRFS_BIN=OLD bench/content.sh   only I, A, A' and the two cold walks (to
#                                compare the cold path of two builds back to back)
#
# Needs root (to drop the page cache; without it the figures are warm-cache ones), GNU tar,
# gzip, igzip (Debian package isal), skopeo, umoci, docker-registry, curl, fusermount3 and
# a built ./acrfs (it is copied first, so a rebuild during the run does not disturb it;
# this script never runs make).
#
# Images: bench/mkcontent.py builds them from files already on this machine, cached in
# .test-tmp/bench-content-cache keyed by the file lists, and this script pushes them to a
# loopback docker-registry:
#   bench/content:v1  3 tar+gzip layers, ~1.3 GB uncompressed (~58k entries; a 110 MB
#                     shared library in the top layer; a whiteout);
#   bench/single:v1   1 tar+gzip layer of >= 1 GiB (/usr/lib/x86_64-linux-gnu, padded).
#
# Each run measures, with the page cache dropped (sync; echo 3 >/proc/sys/vm/drop_caches)
# before every timed step unless said otherwise:
#   I    igzip -d -c of each layer blob (local copies) to /dev/null, one after the other:
#        the time inflating alone takes with ISA-L; A the same with zcat (GNU gzip), A'
#        with python3's zlib (1 MiB reads); for the single layer I1 and A1';
#   S    the streaming floor of a cold load: each layer blob fetched from the registry
#        with curl and piped to igzip -d, all layers at once (no hashing, no tar parsing,
#        no tree): what a cold walk cannot beat before it lists a name; S1 for the single
#        layer;
#   B    skopeo copy docker://… oci:DIR, umoci unpack --rootless, find rootfs | wc -l;
#   cold     a fresh mount with an empty -o cache_dir: find rootfs | wc -l (both images);
#   remount  the same cache_dir: find rootfs | wc -l, and the blob bytes it fetched;
#   second   the same find again, page cache kept: what the kernel serves from its own
#            caches (no-opendir mode); also on a remount with -o ro (a read-write mount
#            still answers one GETATTR per directory: the kernel drops a directory's
#            atime after reading it);
#   load     what the remount's find is made of: ls rootfs on a fresh mount (the rootfs
#            file read: the merged tree the cold mount saved), then find with the tree
#            loaded;
#   R0       the remount's floor: F0 plus what a remount cannot skip, each timed after
#            dropping the page cache: the registry's two answers before rootfs can be
#            listed (the catalog: bench/ is a directory; the manifest: what v1 names now;
#            curl's transfer times) and reading the rootfs file;
#   F, F0    the FUSE floor: bench/fusefloor.c, a FUSE server that does no work per
#            request (every reply precomputed in memory), serving the same tree (listed
#            from the acrfs mount once); a fresh mount, find | wc -l. F answers OPENDIR
#            with handles (as acrfs did before issue 12), F0 uses the kernel's no-opendir
#            mode (as acrfs does now: the fewest requests any FUSE file system can get
#            away with); F0's second find is the floor of the second walk;
#   cat      the big file of bench/content:v1 to /dev/null on a fresh mount (index warm),
#            its bytes from the local blob copy (default cache_max) and by Range requests
#            (-o cache_max=0), as MB/s of output against zcat of the file alone gzip'd the
#            same way (the same bytes: the goal is taken against it) and, for reference,
#            of its whole layer; the content's sha256 is checked once;
#   random   a fresh mount (index warm, cache_max=0): RANDOM_READS (default 4) reads of
#            4 KiB with O_DIRECT at random offsets of the big file (offsets seeded, one per
#            stretch of the file), and the blob bytes each fetched.
# Bytes fetched are counted on the registry's side, independent of acrfs: the size field
# of the access log's blob GET lines (200 and 206) after a mark. The script first checks
# that accounting against curl's own byte counts for a whole blob and a Range request.
# shellcheck disable=SC2154 # REG_c_* are set by reg_start, MNT_a by mnt_start
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUNS=${1:-3}
RANDOM_READS=${RANDOM_READS:-4}
COLD_ONLY=${COLD_ONLY:-} # non-empty: only the inflate anchors and the cold walks
SPAN=$((4 << 20))
REPO=bench/content
REPO1=bench/single
TAG=v1
export TEST_TMP=$ROOT/.test-tmp/bench-content-$$ TESTS_LIB=$ROOT/tests/lib
CACHE=$ROOT/.test-tmp/bench-content-cache
ACRFS_BIN=${ACRFS_BIN:-$ROOT/acrfs}
[ -x "$ACRFS_BIN" ] || {
	echo "bench/content.sh: build ./acrfs first (make)" >&2
	exit 1
}
command -v igzip >/dev/null || {
	echo "bench/content.sh: igzip is missing (apt-get install isal)" >&2
	exit 1
}
mkdir -p "$TEST_TMP"
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

# ---- the images ----------------------------------------------------------------------
# image KIND PREFIX: build or reuse the image, its facts as PREFIX_* variables.
image() {
	local t0 t1 built key
	t0=$EPOCHREALTIME
	eval "$(/usr/bin/python3 bench/mkcontent.py --cache "$CACHE" --kind "$1" | sed "s/^IMG_/$2_/")"
	t1=$EPOCHREALTIME
	built=${2}_BUILT key=${2}_KEY
	if [ "${!built}" = 1 ]; then
		echo "image $1 built in $(calc "$t1 - $t0" 1) s (cached in $CACHE/$1/${!key})"
	else
		echo "image $1 from cache $CACHE/$1/${!key}"
	fi
}
image multi IMG
image single ONE
LAYERS=() LAYER_DIGESTS=()
for ((i = 0; i < IMG_NLAYERS; i++)); do
	v=IMG_LAYER${i}_DIGEST
	LAYERS+=("$IMG_LAYOUT/blobs/sha256/${!v#sha256:}")
	LAYER_DIGESTS+=("${!v}")
done
ONE_LAYER=$ONE_LAYOUT/blobs/sha256/${ONE_LAYER0_DIGEST#sha256:}

reg_start c >/dev/null
HOST=$REG_c_HOST
URL=$REG_c_URL
t0=$EPOCHREALTIME
skopeo copy -q --dest-tls-verify=false "oci:$IMG_LAYOUT:$TAG" "docker://$HOST/$REPO:$TAG" >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$ONE_LAYOUT:$TAG" "docker://$HOST/$REPO1:$TAG" >/dev/null
t1=$EPOCHREALTIME
printf 'image %s:%s: %d gzip layers, %s MB uncompressed (%s MB gzip), %d entries\n' \
	"$REPO" "$TAG" "$IMG_NLAYERS" "$(MB "$IMG_USIZE")" "$(MB "$IMG_CSIZE")" "$IMG_ENTRIES"
printf 'image %s:%s: 1 gzip layer, %s MB uncompressed (%s MB gzip), %d entries\n' \
	"$REPO1" "$TAG" "$(MB "$ONE_USIZE")" "$(MB "$ONE_CSIZE")" "$ONE_ENTRIES"
printf 'both pushed in %s s\n' "$(calc "$t1 - $t0" 1)"
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
# floor_find FILE FILE2 MODE...: a fresh floor mount, the page cache dropped, find | wc -l
# timed into FILE; then (FILE2 not "-") the same find again, page cache kept.
floor_find() {
	local file=$1 file2=$2
	shift 2
	mkdir -p "$FLOOR_MNT"
	"$FLOOR" "$@" "$FLOOR_LIST" "$FLOOR_MNT" || {
		note "fusefloor $* failed to mount"
		return
	}
	drop_caches
	time_to "$file" find_count "$FLOOR_MNT" || note "fusefloor $*: find failed"
	[ "$(cat "$TEST_TMP/out")" = "${A_COUNT:-}" ] ||
		note "fusefloor $*: find counted $(cat "$TEST_TMP/out") entries, acrfs ${A_COUNT:-?}"
	[ "$file2" = - ] || time_to "$file2" find_count "$FLOOR_MNT" ||
		note "fusefloor $*: second find failed"
	fusermount3 -u -- "$FLOOR_MNT"
}

# ---- runs ------------------------------------------------------------------------------
M=$TEST_TMP/m
mkdir -p "$M"
pyzlib() {
	/usr/bin/python3 -c 'import sys, zlib
for p in sys.argv[1:]:
    d = zlib.decompressobj(31)
    with open(p, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            d.decompress(b)' "$@"
}
igzip_all() { # the layers one after the other
	local l
	for l in "$@"; do
		igzip -d -c <"$l" >/dev/null
	done
}
find_count() { find "$1" | wc -l; }
stream_all() { # REPO DIGEST...: curl each blob | igzip -d, all at once
	local repo=$1 d rc=0
	shift
	for d in "$@"; do
		curl -sS -f "$URL/v2/$repo/blobs/$d" | igzip -d -c >/dev/null &
	done
	for d in "$@"; do
		wait -n || rc=1
	done
	return "$rc"
}
skopeo_pull() { skopeo copy -q --src-tls-verify=false "docker://$HOST/$REPO:$TAG" "oci:$1:$TAG"; }
umoci_unpack() { umoci unpack --rootless --image "$1:$TAG" "$2" >/dev/null 2>&1; }
rand_blocks() { # SEED N FILESIZE → N 4 KiB block numbers, one in each 1/N of the file
	/usr/bin/python3 -c 'import random, sys
r = random.Random(int(sys.argv[1])); n = int(sys.argv[2]); blocks = int(sys.argv[3]) // 4096
for i in range(n):
    print(r.randrange(i * blocks // n, (i + 1) * blocks // n))' "$@"
}
# remount_walks NAME OPTS: a fresh mount of the warm cache_dir, the page cache dropped,
# find rootfs timed into NAME (and its blob bytes into NAME_bytes); the same find again,
# page cache kept, into NAME2. Lists the tree for fusefloor on the way if needed.
remount_walks() {
	local name=$1 opts=$2
	mnt_start a "$URL" -o "$opts" >/dev/null 2>&1 || {
		note "mount -o $opts failed: $(head -c 300 "$TEST_TMP/mnt-a.err")"
		return 1
	}
	drop_caches
	mark=$(log_mark)
	time_to "$M/$name" find_count "$MNT_a/$ROOTFS_REL" 2>"$TEST_TMP/find.err" ||
		note "$name: find failed: $(head -n1 "$TEST_TMP/find.err")"
	[ "$(cat "$TEST_TMP/out")" = "$A_COUNT" ] ||
		note "$name: find counted $(cat "$TEST_TMP/out") entries, cold $A_COUNT"
	blob_bytes_since "$mark" >>"$M/${name}_bytes"
	time_to "$M/${name}2" find_count "$MNT_a/$ROOTFS_REL" 2>"$TEST_TMP/find.err" ||
		note "$name: second find failed: $(head -n1 "$TEST_TMP/find.err")"
	# The floor serves the same tree: list it once (not timed).
	[ -n "$FLOOR" ] && [ ! -s "$FLOOR_LIST" ] &&
		{ find "$MNT_a/$ROOTFS_REL" -mindepth 1 -printf '%y %m %s %U %G %T@ %P\0' >"$FLOOR_LIST" ||
			note "listing the tree for fusefloor failed"; }
	mnt_stop a
}
# load_walk: what a remount's find is made of: a fresh mount (index warm), the page cache
# dropped, ls rootfs timed (index files read, trees built and merged) into "load"; the page
# cache dropped again (the kernel forgets every entry; the daemon keeps its trees), find
# rootfs timed into "loaded": the walk alone.
load_walk() {
	mnt_start a "$URL" -o "cache_dir=$CDIR" >/dev/null 2>&1 || {
		note "mount failed: $(head -c 300 "$TEST_TMP/mnt-a.err")"
		return 1
	}
	drop_caches
	time_to "$M/load" ls "$MNT_a/$ROOTFS_REL" || note "load: ls rootfs failed"
	drop_caches
	time_to "$M/loaded" find_count "$MNT_a/$ROOTFS_REL" || note "loaded: find failed"
	mnt_stop a
}
# cat_big NAME OPTS: a fresh mount (index warm), the page cache dropped, cat of the big file
# timed into NAME, its blob bytes into NAME_bytes.
cat_big() {
	local name=$1 opts=$2
	mnt_start a "$URL" -o "$opts" >/dev/null 2>&1 || {
		note "mount -o $opts failed: $(head -c 300 "$TEST_TMP/mnt-a.err")"
		return 1
	}
	stat "$MNT_a/$ROOTFS_REL/$IMG_BIG" >/dev/null
	drop_caches
	mark=$(log_mark)
	time_to "$M/$name" cat "$MNT_a/$ROOTFS_REL/$IMG_BIG" 2>"$TEST_TMP/cat.err" ||
		note "$name: cat failed: $(head -n1 "$TEST_TMP/cat.err")"
	blob_bytes_since "$mark" >>"$M/${name}_bytes"
	if [ "$run" = 1 ] && [ "$name" = seq ]; then
		sum=$(sha256sum <"$MNT_a/$ROOTFS_REL/$IMG_BIG" | cut -d' ' -f1)
		[ "$sum" = "$IMG_BIG_SHA256" ] && SEQ_OK=yes || SEQ_OK="NO (sha256 differs)"
	fi
	mnt_stop a
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
	# I, A, A': inflate alone.
	drop_caches
	time_to "$M/igzip" igzip_all "${LAYERS[@]}"
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
	time_to "$M/pyzlib" pyzlib "${LAYERS[@]}"
	drop_caches
	time_to "$M/zcat_big" zcat "$IMG_BIG_GZ"
	drop_caches
	time_to "$M/igzip1" igzip_all "$ONE_LAYER"
	drop_caches
	time_to "$M/pyzlib1" pyzlib "$ONE_LAYER"
	# S, S1: the streaming floor of a cold load: the blobs from the registry, inflated as
	# they arrive (no hashing, no tree), the 3 layers at once.
	drop_caches
	time_to "$M/stream" stream_all "$REPO" "${LAYER_DIGESTS[@]}"
	drop_caches
	time_to "$M/stream1" stream_all "$REPO1" "$ONE_LAYER0_DIGEST"
	printf ' inflate'

	# B: skopeo copy + umoci unpack + find.
	if [ -z "$COLD_ONLY" ]; then
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
	fi

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

	if [ -z "$COLD_ONLY" ]; then
	# After a remount (same cache_dir), then again; read-only too.
	remount_walks warm "cache_dir=$CDIR" || {
		echo
		continue
	}
	remount_walks warmro "ro,cache_dir=$CDIR" || true
	load_walk || true
	printf ' remount'
	if [ -n "$FLOOR" ] && [ -s "$FLOOR_LIST" ]; then
		floor_find "$M/floor" - --opendir
		floor_find "$M/floor0" "$M/floor02"
		printf ' floor'
	fi
	# What a remount must add to F0 at least, each after dropping the page cache: the
	# registry's two answers (the catalog says the first path component is a directory,
	# the manifest what the tag names now; curl's own transfer times) and the read of the
	# merged tree's rootfs file.
	drop_caches
	{
		curl -sS -o /dev/null -w '%{time_total} ' "$URL/v2/_catalog?n=1000"
		curl -sS -o /dev/null -w '%{time_total}\n' \
			-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
			-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
			"$URL/v2/$REPO/manifests/$TAG"
	} | awk '{ printf "%.6f\n", $1 + $2 }' >>"$M/rtt2" || note "remount floor: curl failed"
	drop_caches
	time_to "$M/rfsread" cat "$CDIR"/v1/rootfs/*.rfs || note "no rootfs file in $CDIR"

	# cat of the big file: from the local blob copy (the cold mount kept it), then by
	# Range requests (cache_max=0, which also drops the copies: after the local one).
	[ -n "$(ls "$CDIR/v1/blobs" 2>/dev/null)" ] || note "no local blob copies for the local cat"
	cat_big seq_local "cache_dir=$CDIR" || true
	cat_big seq "cache_dir=$CDIR,cache_max=0" || true
	printf ' cat'

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
	printf ' random'
	fi

	# The single layer, cold.
	CDIR1=$TEST_TMP/acache1
	rm -rf "$CDIR1"
	if mnt_start a "$URL" -o "cache_dir=$CDIR1" >/dev/null 2>&1; then
		drop_caches
		mark=$(log_mark)
		time_to "$M/cold1" find_count "$MNT_a/$REPO1/$TAG/rootfs" 2>"$TEST_TMP/find.err" ||
			note "single: find failed: $(head -n1 "$TEST_TMP/find.err")"
		ONE_COUNT=$(cat "$TEST_TMP/out")
		blob_bytes_since "$mark" >>"$M/cold1_bytes"
		mnt_stop a
	else
		note "single: mount failed: $(head -c 300 "$TEST_TMP/mnt-a.err")"
	fi
	rm -rf "$CDIR1"
	printf ' single\n'
done
[ "$DROP" = yes ] && echo "(page cache dropped before every timed step but the second finds)" ||
	echo "(page cache NOT dropped: not root — figures are warm-cache ones)"

# ---- tables ----------------------------------------------------------------------------
med() { [ -s "$M/$1" ] && median <"$M/$1" || echo 0; }
col1() { [ -s "$M/$1" ] && awk '{ print $1 }' "$M/$1" | median || echo 0; }
r() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'; }
pf() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { if (v == "?") { print "?"; exit }
	ok = (op == "le") ? v <= t : v >= t; print ok ? "met" : "**MISS**" }'; }
igz=$(med igzip) zcat_t=$(med zcat) pyz=$(med pyzlib) b_t=$(med b)
igz1=$(med igzip1) pyz1=$(med pyzlib1)
big_u=$(eval echo "\$IMG_LAYER${IMG_BIG_LAYER}_USIZE")
zl_mbs=$(calc "$big_u / $(med "zcat$IMG_BIG_LAYER") / 1e6" 0)
zb_mbs=$(calc "$IMG_BIG_SIZE / $(med zcat_big) / 1e6" 0)
rate() { calc "$1 / $2 / 1e6" 0; } # BYTES SECONDS → MB/s

echo
echo "| step | time | figure | ratio |"
echo "|---|---:|---|---|"
printf '| I: igzip -d of the %d layers, one after the other | %.2f s | %s MB/s of output | 1 |\n' \
	"$IMG_NLAYERS" "$igz" "$(rate "$IMG_USIZE" "$igz")"
printf '| A: zcat of the %d layers | %.2f s | %s MB/s | %s× I |\n' "$IMG_NLAYERS" "$zcat_t" \
	"$(rate "$IMG_USIZE" "$zcat_t")" "$(r "$zcat_t" "$igz")"
printf "| A': python3 zlib of the %d layers | %.2f s | %s MB/s | %s× I |\n" "$IMG_NLAYERS" \
	"$pyz" "$(rate "$IMG_USIZE" "$pyz")" "$(r "$pyz" "$igz")"
[ -n "$COLD_ONLY" ] ||
	printf '| B: skopeo copy + umoci unpack + find \\| wc -l | %.2f s | copy %.2f s, unpack %.2f s, find %.2f s; %s entries | %s× I |\n' \
		"$b_t" "$(med b_copy)" "$(med b_unpack)" "$(med b_find)" "${B_COUNT:-?}" "$(r "$b_t" "$igz")"
printf '| S: the %d blobs from the registry, inflated as they arrive (curl \\| igzip -d, all at once) | %.2f s | | %s× I |\n' \
	"$IMG_NLAYERS" "$(med stream)" "$(r "$(med stream)" "$igz")"
printf "| I1: igzip -d of the single layer | %.2f s | %s MB/s | 1 |\n" "$igz1" "$(rate "$ONE_USIZE" "$igz1")"
printf '| S1: the same for the single layer | %.2f s | | %s× I1 |\n' "$(med stream1)" \
	"$(r "$(med stream1)" "$igz1")"
printf "| A1': python3 zlib of the single layer | %.2f s | %s MB/s | %s× I1 |\n" "$pyz1" \
	"$(rate "$ONE_USIZE" "$pyz1")" "$(r "$pyz1" "$igz1")"
if [ -s "$M/cold" ]; then
	cold=$(med cold) warm=$(med warm) warm2=$(med warm2) cold1=$(med cold1)
	warmro=$(med warmro) warmro2=$(med warmro2)
	floor=$(med floor) floor0=$(med floor0) floor02=$(med floor02)
	seq=$(med seq) seql=$(med seq_local)
	seq_mbs=$(rate "$IMG_BIG_SIZE" "$seq") seql_mbs=$(rate "$IMG_BIG_SIZE" "$seql")
	printf "| acrfs cold: find rootfs \\| wc -l | %.2f s | %s entries%s; %s MB of blobs fetched (%.2f× the layers) | %s× I, %s× A', %s× B |\n" \
		"$cold" "$A_COUNT" "$([ "$A_COUNT" = "${B_COUNT:-}" ] && echo " (= B)" || echo " (B: ${B_COUNT:-?})")" \
		"$(MB "$(col1 cold_bytes)")" "$(calc "$(col1 cold_bytes) / $IMG_CSIZE")" \
		"$(r "$cold" "$igz")" "$(r "$cold" "$pyz")" "$(r "$cold" "$b_t")"
	printf "| acrfs cold, single layer: find rootfs \\| wc -l | %.2f s | %s entries; %s MB of blobs fetched | %s× I1, %s× A1' |\n" \
		"$cold1" "${ONE_COUNT:-?}" "$(MB "$(col1 cold1_bytes)")" "$(r "$cold1" "$igz1")" "$(r "$cold1" "$pyz1")"
	if [ -z "$COLD_ONLY" ]; then
	printf '| F: fusefloor, OPENDIR + READDIRPLUS (no work per request) | %.3f s | | |\n' "$floor"
	printf '| F0: fusefloor, no-opendir (the fewest requests) | %.3f s | | %s× F |\n' "$floor0" "$(r "$floor0" "$floor")"
	r0=$(awk -v a="$floor0" -v b="$(med rtt2)" -v c="$(med rfsread)" 'BEGIN { printf "%.6f", a + b + c }')
	printf '| R0: F0 + the registry answers a remount waits for (catalog, manifest: %.3f s) + reading the rootfs file (%.3f s) | %.3f s | | %s× F0 |\n' \
		"$(med rtt2)" "$(med rfsread)" "$r0" "$(r "$r0" "$floor0")"
	printf '| acrfs after remount: find rootfs \\| wc -l | %.3f s | %s blob bytes fetched | %s× F0, %s× F, %s× cold |\n' \
		"$warm" "$(sort -g "$M/warm_bytes" | tail -n1 | cut -d' ' -f1)" "$(r "$warm" "$floor0")" \
		"$(r "$warm" "$floor")" "$(r "$warm" "$cold")"
	printf '| … its parts: ls rootfs on a fresh mount (the rootfs file read) | %.3f s | | |\n' \
		"$(med load)"
	printf '| … and find with the trees loaded, page cache dropped | %.3f s | | %s× F0 |\n' \
		"$(med loaded)" "$(r "$(med loaded)" "$floor0")"
	printf '| acrfs second find (page cache kept) | %.3f s | | %s× the first after remount |\n' \
		"$warm2" "$(r "$warm2" "$warm")"
	printf '| F0 second find | %.3f s | | %s× F0 |\n' "$floor02" "$(r "$floor02" "$floor0")"
	printf '| acrfs -o ro: after remount, then second find | %.3f s, %.3f s | | second %s× first |\n' \
		"$warmro" "$warmro2" "$(r "$warmro2" "$warmro")"
	printf '| acrfs cat %s MB file, local blob copy | %.2f s | %s MB/s; %s MB fetched | %s× zcat of the file alone (%s MB/s); %s× zcat of its layer (%s MB/s) |\n' \
		"$(MB "$IMG_BIG_SIZE")" "$seql" "$seql_mbs" "$(MB "$(col1 seq_local_bytes)" 1)" \
		"$(r "$seql_mbs" "$zb_mbs")" "$zb_mbs" "$(r "$seql_mbs" "$zl_mbs")" "$zl_mbs"
	printf '| acrfs cat %s MB file, Range requests | %.2f s | %s MB/s; %s MB fetched; content %s | %s× zcat of the file alone; %s× zcat of its layer |\n' \
		"$(MB "$IMG_BIG_SIZE")" "$seq" "$seq_mbs" "$(MB "$(col1 seq_bytes)" 1)" "${SEQ_OK:-?}" \
		"$(r "$seq_mbs" "$zb_mbs")" "$(r "$seq_mbs" "$zl_mbs")"
	read -r rmax rmean rn <<<"$(awk '{ if ($1 > m) m = $1; s += $1; n++ } END { printf "%d %d %d\n", m, s / n, n }' "$M/rand")"
	printf '| acrfs random 4 KiB read%s, %d offsets | | max %s KiB, mean %s KiB fetched (lookup: %s bytes) | max %.2f× a span (4 MiB) |\n' \
		"$([ -n "$DIRECT" ] && echo " (O_DIRECT)" || echo " (page cache)")" "$rn" \
		"$((rmax / 1024))" "$((rmean / 1024))" "$(col1 lookup_bytes)" "$(calc "$rmax / $SPAN")"
	fi

	g1=$(r "$cold1" "$igz1") g2=$(r "$cold" "$igz") g3l=$(r "$seql_mbs" "$zb_mbs")
	g3r=$(r "$seq_mbs" "$zb_mbs") g4=$(r "$warm" "$floor0") g5=$(r "$warm2" "$warm")
	g3=$(awk -v a="$g3l" -v b="$g3r" 'BEGIN { print (a < b) ? a : b }')
	echo
	echo "| case | today | goal |"
	echo "|---|---|---|"
	printf '| cold `find rootfs` of a ≥ 1 GB single-gzip-layer image | %s× igzip (%.2f s vs %.2f s; %s× zlib inflate; the streaming floor S1 %s× igzip, acrfs %s× S1): %s | ≤ 1.2× the time `igzip -d -c layer > /dev/null` takes |\n' \
		"$g1" "$cold1" "$igz1" "$(r "$cold1" "$pyz1")" "$(r "$(med stream1)" "$igz1")" \
		"$(r "$cold1" "$(med stream1)")" "$(pf "$g1" 1.2 le)"
	printf '| cold `find rootfs` of the 3-layer bench image | %s× igzip (%.2f s vs %.2f s; %s× python zlib; the streaming floor S %s× igzip, acrfs %s× S): %s | ≤ 1.0× igzip of all layers, one after the other |\n' \
		"$g2" "$cold" "$igz" "$(r "$cold" "$pyz")" "$(r "$(med stream)" "$igz")" \
		"$(r "$cold" "$(med stream)")" "$(pf "$g2" 1.0 le)"
	if [ -z "$COLD_ONLY" ]; then
	printf '| `cat` of a ≥ 25 MB file (local copy / Range requests) | %s× / %s× zcat (%s / %s MB/s vs %s MB/s): %s | ≥ 1.0× zcat |\n' \
		"$g3l" "$g3r" "$seql_mbs" "$seq_mbs" "$zb_mbs" "$(pf "$g3" 1.0 ge)"
	printf '| `find` after a remount | %s× F0 (%.3f s vs %.3f s; of which %.3f s loading the rootfs; the walk with trees loaded %s× F0; the floor R0 %s× F0, acrfs %s× R0): %s | ≤ 1.05× F0 |\n' \
		"$g4" "$warm" "$floor0" "$(med load)" "$(r "$(med loaded)" "$floor0")" \
		"$(r "$r0" "$floor0")" "$(r "$warm" "$r0")" "$(pf "$g4" 1.05 le)"
	printf '| second `find` of the same tree | %s× the first after remount (%.3f s; F0: %s×; -o ro: %s×): %s | ≤ 0.3× the first after remount |\n' \
		"$g5" "$warm2" "$(r "$floor02" "$floor0")" "$(r "$warmro2" "$warmro")" "$(pf "$g5" 0.3 le)"
	fi
else
	echo "| acrfs rows | pending | acrfs: rootfs not available | |"
fi
for n in "${NOTES[@]}"; do
	echo "note: $n"
done
exit 0
