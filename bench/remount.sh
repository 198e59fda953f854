#!/usr/bin/env bash
# bench/remount.sh — the first `ls rootfs` after a remount (index files read, layer trees
# built and merged), for builds compared back to back (issue 12). Not a test: prints
# figures.
#
#   bench/remount.sh [RUNS] BIN...     (default 3 runs; BINs default to ./acrfs)
#
# Uses bench/content.sh's 3-layer image (KIND=single: its 1 GB single-layer one;
# bench/mkcontent.py, cached in .test-tmp/bench-content-cache, or CONTENT_CACHE=DIR),
# pushed to a loopback docker-registry. Per BIN: one cold mount with an empty -o
# cache_dir and `ls rootfs` (the index files written), then RUNS times, builds
# interleaved: a fresh mount of that cache_dir, the page cache dropped (sync; echo 3
# >/proc/sys/vm/drop_caches, root), `ls` of the repository, the tag and rootfs, each
# timed. The rootfs figure is the load; the
# other two show what the mount's registry round trips cost. Beside each wall time, the
# daemon's CPU time for the rootfs step (utime + stime from /proc, both cores counted):
# on a loaded machine it moves less than the wall time. Any blob GET during the timed
# steps is reported (a remount must fetch none). Medians per BIN.
# shellcheck disable=SC2154 # REG_c_* are set by reg_start, MNT_a by mnt_start
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUNS=3
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
	RUNS=$1
	shift
fi
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=("$ROOT/acrfs")
REPO=bench/content
TAG=v1
. bench/lib.sh
bench_init remount
# timed FILE CMD...: run CMD (output discarded), append its seconds to FILE.
timed() {
	local file=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	"$@" >/dev/null
	t1=$EPOCHREALTIME
	awk "BEGIN { printf \"%.4f\n\", $t1 - $t0 }" >>"$file"
}

eval "$(/usr/bin/python3 bench/mkcontent.py --cache "$CACHE" --kind "${KIND:-multi}")"
reg_start c >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$IMG_LAYOUT:$TAG" "docker://$REG_c_HOST/$REPO:$TAG" \
	>/dev/null
echo "image $REPO:$TAG: $IMG_NLAYERS layers, $IMG_ENTRIES entries; $RUNS runs per build"

# cpu_ticks PID: utime + stime of the process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
blob_gets() { reg_requests c 'GET /v2/[^ ]*/blobs/' | wc -l; }

for ((b = 0; b < ${#BINS[@]}; b++)); do
	cp "${BINS[b]}" "$TEST_TMP/acrfs$b"
	mkdir -p "$TEST_TMP/c$b"
	ACRFS=$TEST_TMP/acrfs$b mnt_start a "$REG_c_URL" -o "cache_dir=$TEST_TMP/c$b" >/dev/null
	ls "$MNT_a/$REPO/$TAG/rootfs" >/dev/null
	mnt_stop a
done
for ((run = 1; run <= RUNS; run++)); do
	for ((b = 0; b < ${#BINS[@]}; b++)); do
		ACRFS=$TEST_TMP/acrfs$b mnt_start a "$REG_c_URL" -o "cache_dir=$TEST_TMP/c$b" >/dev/null
		pid=$(_mnt_pid_of "$MNT_a")
		drop_caches
		g0=$(blob_gets)
		timed "$TEST_TMP/repo$b" ls "$MNT_a/$REPO"
		timed "$TEST_TMP/tag$b" ls "$MNT_a/$REPO/$TAG"
		c0=$(cpu_ticks "$pid")
		timed "$TEST_TMP/rootfs$b" ls "$MNT_a/$REPO/$TAG/rootfs"
		c1=$(cpu_ticks "$pid")
		awk "BEGIN { printf \"%.2f\n\", ($c1 - $c0) / $TICK }" >>"$TEST_TMP/cpu$b"
		mnt_stop a
		g1=$(blob_gets)
		[ "$g1" = "$g0" ] || echo "${BINS[b]} run $run: $((g1 - g0)) blob GETs after the remount"
	done
done
for ((b = 0; b < ${#BINS[@]}; b++)); do
	printf '%s: ls rootfs %s s (runs: %s), daemon CPU %s s (%s); ls repo %s s, ls tag %s s\n' \
		"${BINS[b]}" "$(median <"$TEST_TMP/rootfs$b")" "$(paste -sd' ' "$TEST_TMP/rootfs$b")" \
		"$(median <"$TEST_TMP/cpu$b")" "$(paste -sd' ' "$TEST_TMP/cpu$b")" \
		"$(median <"$TEST_TMP/repo$b")" "$(median <"$TEST_TMP/tag$b")"
done
