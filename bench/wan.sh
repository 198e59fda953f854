#!/usr/bin/env bash
# bench/wan.sh — audit walks through a far registry: acrfs against the serial floor and
# against curl in a shell loop (issue 11). Not a test: prints figures, ratios against
# anchors measured in the same run and the issue's goals as PASS/MISS (informational;
# the exit status does not depend on them).
#
#   bench/wan.sh [RUNS]     (default 1; with more, each figure is the median over RUNS)
#
# Setting. A loopback docker-registry holds registry-scale fixtures (bench/wanfix.py,
# built once and cached in .test-tmp/bench-wan-cache/<key>, keyed by the parameters and
# the generator's source): 1,000 repositories wanrepo-NNNN with 1-3 tags, wanbig with
# 2,000 tags over 4 manifests, 200 distinct small images wanimg-NNN:v1 (one gzip layer,
# a few files, the needle "acrfs-wan-needle" in one), 8 images wanmem-NN:v1 of 100,000
# entries each. Every name is flat. bench/delayproxy.py sits in front and adds
# ACRFS_WAN_DELAY_MS (default 25) to each request before forwarding it — the round
# trip to a far registry — optionally capping bodies at ACRFS_WAN_BW bytes/s per
# connection; acrfs and curl both go through it and it counts what they send.
#
# Walks, each on a fresh mount (new process, empty -o cache_dir, -o ttl=3600):
#   w1  find MNT -mindepth 2 -maxdepth 2           every tag of every repository
#   w2  find MNT/wanbig -maxdepth 2                a manifest per tag (2,000)
#   w3  getfattr -n user.acrfs.digest MNT/wanbig/*  the digest of every tag
#   w4  cat MNT/wanimg-NNN/v1/rootfs/etc/wan-release, one cat, 200 images
#   w5  grep -r -l acrfs-wan-needle over rootfs/ of 50 images
# For each: the time through acrfs, the requests it sent (by kind) and the body bytes
# fetched, the most requests in flight at once; the serial floor = requests needed ×
# delay, "requests needed" being the fewest a client must send on this registry:
#   w1  catalog pages (n=1000, distribution's maximum) + one tag list per repository
#   w2  one tag list + one manifest GET per tag (nothing lists tag → digest in /v2)
#   w3  one tag list + one manifest HEAD per tag
#   w4  per image: its manifest + its layer blob (the tag is known, no list needed)
#   w5  the same per image;
# the same walk done by curl in a shell loop through the same proxy (one curl process
# per request, serial; a list is parsed once per page, nothing per object) and its
# request count (= requests needed: checks the count); the ratios acrfs/floor and
# acrfs/curl; then the same walk again on the warm mount (requests: goal 0).
# Then `ls MNT` and `ls MNT/wanbig` alone, each on a fresh mount: the requests the mount
# sent from its start to its unmount (the GET /v2/ of the mount shows as "other").
# Then the memory step: one fresh mount walks rootfs/ of every distinct image (one
# find, every root), with -o mem_max=$ACRFS_WAN_MEMMAX only when that is set; the
# daemon's peak RSS (VmHWM from /proc) against budget + ACRFS_WAN_MEM_OVERHEAD_MB
# (default 64, the fixed overhead stated in bench/wan.md), and the blob GETs against the
# distinct layer blobs (goal: each blob once).
#
# Environment:
#   ACRFS_WAN_DELAY_MS=25     per-request delay
#   ACRFS_WAN_BW=0            bytes/s per connection for bodies, 0 = no cap
#   ACRFS_WAN_QUICK=1         small fixtures for development (100 repositories, 200
#                             tags, 20 images, 5 grepped, 2 × 20,000-entry images)
#   ACRFS_WAN_ONLY=ERE        run only the steps whose name (w1..w5, ls, mem) matches
#   ACRFS_WAN_OPTS=OPT,...    extra -o options for every mount
#   ACRFS_WAN_CURL=0          skip the curl loops (most of a run's time: one process
#                             per request); ratios to the floor only
#   ACRFS_WAN_MEMMAX=SIZE     pass -o mem_max=SIZE in the memory step
#   ACRFS_WAN_MEM_OVERHEAD_MB=64  the fixed overhead allowed above that budget
#   ACRFS_WAN_KEEP=1          keep the run's directory (proxy log: every request)
#   ACRFS_BIN=PATH            acrfs binary (default ./acrfs; copied first, never built)
# Needs what `make check` installs (docker-registry, curl, fusermount3, python3) and
# getfattr (Debian package attr), the tool the README shows for the digest xattr.
# shellcheck disable=SC2154 # REG_w_*, MNT_a* are set by reg_start and mnt_start_fg
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUNS=${1:-1}
DELAY_MS=${ACRFS_WAN_DELAY_MS:-25}
BW=${ACRFS_WAN_BW:-0}
QUICK=${ACRFS_WAN_QUICK:-0}
ONLY=${ACRFS_WAN_ONLY:-}
OPTS=${ACRFS_WAN_OPTS:-}
CURL=${ACRFS_WAN_CURL:-1}
MEMMAX=${ACRFS_WAN_MEMMAX:-}
OVERHEAD_MB=${ACRFS_WAN_MEM_OVERHEAD_MB:-64}
if [ "$QUICK" = 1 ]; then
	FIX_ARGS=(--repos 100 --big-tags 200 --images 20 --mem-images 2 --mem-entries 20000)
	GREP_N=5
else
	FIX_ARGS=(--repos 1000 --big-tags 2000 --images 200 --mem-images 8 --mem-entries 100000)
	GREP_N=50
fi
export TEST_TMP=$ROOT/.test-tmp/bench-wan-$$ TESTS_LIB=$ROOT/tests/lib
export XDG_CACHE_HOME=$TEST_TMP/xdg
CACHE_ROOT=$ROOT/.test-tmp/bench-wan-cache
mkdir -p "$TEST_TMP" "$CACHE_ROOT"
for c in curl getfattr fusermount3 tar; do
	command -v "$c" >/dev/null || {
		echo "bench/wan.sh: $c is missing$([ "$c" = getfattr ] && echo " (apt-get install attr)")" >&2
		exit 1
	}
done
ACRFS_BIN=${ACRFS_BIN:-$ROOT/acrfs}
[ -x "$ACRFS_BIN" ] || {
	echo "bench/wan.sh: build ./acrfs first (make)" >&2
	exit 1
}
cp "$ACRFS_BIN" "$TEST_TMP/acrfs"
export ACRFS=$TEST_TMP/acrfs
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/acrfs.sh"
PROXY_PID=
BUILD=
cleanup() {
	set +e # stop everything even if one step fails
	mnt_stop_all
	[ -z "$PROXY_PID" ] || { kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null; }
	reg_stop_all
	[ -z "$BUILD" ] || rm -rf "$BUILD"
	if [ "${ACRFS_WAN_KEEP:-0}" = 1 ]; then
		echo "kept $TEST_TMP"
	else
		rm -rf "$TEST_TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "" }'; }
want() { [ -z "$ONLY" ] || [[ $1 =~ $ONLY ]]; }
NOTES=()
note() {
	NOTES+=("$*")
	echo "  note: $*"
}

# ---- fixtures ----------------------------------------------------------------------
KEY=$({
	printf '%s\n' "${FIX_ARGS[@]}"
	cat bench/wanfix.py tests/lib/seed.py
} | sha256sum | cut -c1-16)
FIX=$CACHE_ROOT/$KEY
if [ ! -f "$FIX/fixture.env" ]; then
	echo "building fixtures in $FIX (once; ${FIX_ARGS[*]})"
	BUILD=$CACHE_ROOT/build-$$
	mkdir -p "$BUILD/data" "$TEST_TMP/f"
	ln -s "$BUILD/data" "$TEST_TMP/f/data"
	reg_start f >/dev/null
	t0=$EPOCHREALTIME
	/usr/bin/python3 bench/wanfix.py "$REG_f_URL" "$BUILD" "${FIX_ARGS[@]}"
	reg_stop f
	mv "$BUILD" "$FIX"
	BUILD=
	echo "fixtures built in $(calc "$EPOCHREALTIME - $t0" 0) s"
fi
# shellcheck source=/dev/null
. "$FIX/fixture.env"
mkdir -p "$TEST_TMP/w"
ln -s "$FIX/data" "$TEST_TMP/w/data"
reg_start w >/dev/null
n=$(reg_catalog w 1000 | wc -l)
[ "$n" = "$WAN_CATALOG" ] || {
	echo "bench/wan.sh: the cached registry lists $n repositories, not $WAN_CATALOG:" \
		"remove $FIX and run again" >&2
	exit 1
}

# ---- the proxy ---------------------------------------------------------------------
/usr/bin/python3 bench/delayproxy.py "$REG_w_URL" --delay-ms "$DELAY_MS" --bw "$BW" \
	--log "$TEST_TMP/proxy.log" >"$TEST_TMP/proxy.out" 2>&1 &
PROXY_PID=$!
for ((i = 0; i < 200; i++)); do
	grep -q '^READY ' "$TEST_TMP/proxy.out" && break
	kill -0 "$PROXY_PID" 2>/dev/null || break
	sleep 0.05
done
read -r PPORT CPORT < <(sed -n 's/^READY port=\([0-9]*\) control=\([0-9]*\)$/\1 \2/p' \
	"$TEST_TMP/proxy.out") || {
	cat "$TEST_TMP/proxy.out" >&2
	exit 1
}
P=http://127.0.0.1:$PPORT
CTL=http://127.0.0.1:$CPORT

# snap FILE: the proxy's counters once nothing is in flight.
# (quiet: the readahead's jobs chain requests — a manifest, then a blob — and what a walk
# set going belongs to that walk, not to the next one.)
snap() { curl -sS -f "$CTL/stats?wait=idle&quiet=0.3&timeout=600" >"$1"; }
# delta A B → "REQUESTS BYTES catalog tags manifest blob token other" between snapshots.
delta() {
	awk 'NR == FNR { r[$1] = $2; b[$1] = $3; next }
		{ dr[$1] = $2 - r[$1]; db[$1] = $3 - b[$1] }
		END { printf "%d %d %d %d %d %d %d %d\n", dr["total"], db["total"], dr["catalog"],
			dr["tags"], dr["manifest"], dr["blob"], dr["token"], dr["other"] }' "$1" "$2"
}
# kinds "REQ BYTES c t m b tok o" → "catalog 2, tags 1210" (non-zero kinds only)
kinds() {
	awk '{ split("catalog tags manifest blob token other", k, " "); s = ""
		for (i = 1; i <= 6; i++) if ($(i + 2) > 0) s = s (s == "" ? "" : ", ") k[i] " " $(i + 2)
		print (s == "" ? "none" : s) }' <<<"$1"
}
peak() { awk '$1 == "peak" { print $2 }' "$1"; }

# ---- mounts ------------------------------------------------------------------------
NMOUNT=0
mount_cold() {
	local extra=${1:-}
	NMOUNT=$((NMOUNT + 1))
	CDIR=$TEST_TMP/cache-$NMOUNT
	mkdir -p "$CDIR"
	mnt_start_fg a "$P" -o "ttl=3600,cache_dir=$CDIR${OPTS:+,$OPTS}${extra:+,$extra}" || return 1
	MNT=$MNT_a
}
vmhwm_kb() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$MNT_a_PID/status"; }
umount_a() {
	local pid=$MNT_a_PID rc=0
	mnt_stop a
	wait "$pid" || rc=$?
	[ "$rc" = 0 ] || note "acrfs exited with status $rc"
	rm -rf "$CDIR"
}
# timed FILE CMD...: run CMD with stdout to FILE; sets SECS.
timed() {
	local out=$1 t0 rc=0
	shift
	t0=$EPOCHREALTIME
	"$@" >"$out" 2>"$out.err" || rc=$?
	SECS=$(calc "$EPOCHREALTIME - $t0" 3)
	[ "$rc" = 0 ] || note "$* → exit $rc: $(head -c 200 "$out.err")"
}

# ---- the walks, acrfs and curl -----------------------------------------------------
ACCEPT=(-H 'Accept: application/vnd.oci.image.index.v1+json'
	-H 'Accept: application/vnd.oci.image.manifest.v1+json'
	-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json'
	-H 'Accept: application/vnd.docker.distribution.manifest.v2+json')
mapfile -t IMGS <"$FIX/images.txt"
GREP_IMGS=("${IMGS[@]:0:GREP_N}")
CAT_PAGES=$(((WAN_CATALOG + 999) / 1000))
# json_list KEY < BODY: the strings of one JSON list (names never hold quotes or commas).
json_list() { sed -n "s/.*\"$1\":\[\([^]]*\)\].*/\1/p" | tr -d '"' | tr ',' '\n' | grep -v '^$' || true; }

w1_acrfs() { find "$MNT" -mindepth 2 -maxdepth 2; }
w1_curl() {
	local next="/v2/_catalog?n=1000" r
	: >"$TEST_TMP/c-repos"
	while [ -n "$next" ]; do
		curl -sS -f -D "$TEST_TMP/hdr" -o "$TEST_TMP/body" "$P$next"
		json_list repositories <"$TEST_TMP/body" >>"$TEST_TMP/c-repos"
		next=$(tr -d '\r' <"$TEST_TMP/hdr" | sed -n 's/^[Ll]ink: *<\([^>]*\)>; *rel="next".*/\1/p')
	done
	while read -r r; do
		curl -sS -f "$P/v2/$r/tags/list"
		echo
	done <"$TEST_TMP/c-repos"
}
w2_acrfs() { find "$MNT/$WAN_BIG" -maxdepth 2; }
big_tags() { curl -sS -f "$P/v2/$WAN_BIG/tags/list" | json_list tags; }
w2_curl() {
	local t
	for t in $(big_tags); do
		curl -sS -f -o /dev/null "${ACCEPT[@]}" "$P/v2/$WAN_BIG/manifests/$t"
		echo "$t"
	done
}
w3_acrfs() { getfattr -n user.acrfs.digest --absolute-names -- "$MNT/$WAN_BIG"/* | sed -n 's/^user.acrfs.digest="\(.*\)"$/\1/p'; }
w3_curl() {
	local t
	for t in $(big_tags); do
		curl -sS -f -I -o /dev/null -w '%header{docker-content-digest}\n' "${ACCEPT[@]}" \
			"$P/v2/$WAN_BIG/manifests/$t"
	done
}
# in_mnt SUFFIX REPO:TAG...: PATHS=(MNT/REPO/TAG/SUFFIX ...).
in_mnt() {
	local s=$1 r
	shift
	PATHS=()
	for r in "$@"; do
		PATHS+=("$MNT/${r%%:*}/${r#*:}/$s")
	done
}
w4_acrfs() {
	in_mnt "rootfs/$WAN_IMG_FILE" "${IMGS[@]}"
	cat -- "${PATHS[@]}"
}
# layer_of REPO:TAG: the first layer digest of its manifest (one GET).
layer_of() {
	local m
	m=$(curl -sS -f "${ACCEPT[@]}" "$P/v2/${1%%:*}/manifests/${1#*:}")
	[[ $m =~ \"layers\":\[\{[^}]*\"digest\":\"(sha256:[0-9a-f]{64})\" ]] || return 1
	printf '%s' "${BASH_REMATCH[1]}"
}
w4_curl() {
	local r d
	for r in "${IMGS[@]}"; do
		d=$(layer_of "$r")
		curl -sS -f "$P/v2/${r%%:*}/blobs/$d" | tar -xzO -- "$WAN_IMG_FILE"
	done
}
w5_acrfs() {
	in_mnt rootfs "${GREP_IMGS[@]}"
	grep -r -l -- "$WAN_NEEDLE" "${PATHS[@]}"
}
w5_curl() {
	local r d x=$TEST_TMP/x
	for r in "${GREP_IMGS[@]}"; do
		d=$(layer_of "$r")
		rm -rf "$x" && mkdir -p "$x/${r%%:*}"
		curl -sS -f "$P/v2/${r%%:*}/blobs/$d" | tar -xz -C "$x/${r%%:*}"
		grep -r -l -- "$WAN_NEEDLE" "$x"
	done
	rm -rf "$x"
}

# entries W OUTFILE: what a walk's output is checked by (the count of its lines, or of
# the lines that show what was asked for).
entries() {
	case $1 in
	w1 | w2 | w5) wc -l <"$2" ;;
	w3) grep -c '^sha256:' "$2" || true ;;
	w4) grep -c '^ID=' "$2" || true ;;
	esac
}
expect_entries() {
	case $1 in
	w1) echo "$WAN_TAGS_TOTAL" ;;
	w2) echo $((1 + 6 * WAN_BIG_TAGS)) ;; # wanbig, its tags, the 5 entries of each (config.json layers manifest.json referrers rootfs)
	w3) echo "$WAN_BIG_TAGS" ;;
	w4) echo "$WAN_IMAGES" ;;
	w5) echo "$GREP_N" ;;
	esac
}
# curl_entries W OUTFILE: the same for the curl loop's output (w2: the tags it fetched).
curl_entries() {
	case $1 in
	w1) grep -o '"tags":\[[^]]*\]' "$2" | json_list tags | wc -l ;;
	w2) wc -l <"$2" ;;
	*) entries "$@" ;;
	esac
}
curl_expect() {
	case $1 in
	w2) echo "$WAN_BIG_TAGS" ;;
	*) expect_entries "$1" ;;
	esac
}
needed() {
	case $1 in
	w1) echo $((CAT_PAGES + WAN_CATALOG)) ;;
	w2 | w3) echo $((1 + WAN_BIG_TAGS)) ;;
	w4) echo $((2 * WAN_IMAGES)) ;;
	w5) echo $((2 * GREP_N)) ;;
	esac
}
label() {
	case $1 in
	w1) echo "find MNT -mindepth 2 -maxdepth 2 ($WAN_CATALOG repos, $WAN_TAGS_TOTAL tags)" ;;
	w2) echo "find MNT/$WAN_BIG -maxdepth 2 ($WAN_BIG_TAGS tags)" ;;
	w3) echo "getfattr user.acrfs.digest of $WAN_BIG_TAGS tags" ;;
	w4) echo "cat a file in each of $WAN_IMAGES images" ;;
	w5) echo "grep -r across rootfs/ of $GREP_N images" ;;
	esac
}

M=$TEST_TMP/m
mkdir -p "$M"
# walk W: one run of W (acrfs cold + warm, curl); appends a line to $M/W:
# acrfs_s req bytes cat tags man blob tok other peak entries warm_s warm_req curl_s curl_req rss_kb
walk() {
	local w=$1 s0=$TEST_TMP/s0 s1=$TEST_TMP/s1 a w_s w_req c c_s ent rss pk
	mount_cold
	curl -sS -f "$CTL/reset-peak" >/dev/null
	snap "$s0"
	timed "$TEST_TMP/out-$w" "${w}_acrfs"
	snap "$s1"
	a=$(delta "$s0" "$s1")
	pk=$(peak "$s1")
	ent=$(entries "$w" "$TEST_TMP/out-$w")
	[ "$ent" = "$(expect_entries "$w")" ] ||
		note "$w: acrfs gave $ent entries, expected $(expect_entries "$w")"
	local cold_s=$SECS
	timed "$TEST_TMP/warm-$w" "${w}_acrfs"
	w_s=$SECS
	snap "$s0"
	w_req=$(delta "$s1" "$s0" | cut -d' ' -f1)
	cmp -s "$TEST_TMP/out-$w" "$TEST_TMP/warm-$w" || note "$w: the warm walk's output differs"
	rss=$(vmhwm_kb)
	umount_a
	c_s=- c=-
	[ "$CURL" = 0 ] || curl_walk "$w"
	echo "$cold_s $a $pk $ent $w_s $w_req $c_s $(cut -d' ' -f1 <<<"$c") $rss" >>"$M/$w"
	printf '  %s: acrfs %s s, %s requests (%s), peak %s in flight; warm %s s, %s requests; curl %s s, %s requests\n' \
		"$w" "$cold_s" "$(cut -d' ' -f1 <<<"$a")" "$(kinds "$a")" "$pk" "$w_s" "$w_req" \
		"$c_s" "$(cut -d' ' -f1 <<<"$c")"
}
# curl_walk W (called by walk, whose s0, s1, c_s and c it uses): the curl loop of W;
# sets c_s (seconds) and c (the proxy's delta).
curl_walk() {
	local w=$1 cent
	snap "$s0"
	timed "$TEST_TMP/curl-$w" "${w}_curl"
	c_s=$SECS
	snap "$s1"
	c=$(delta "$s0" "$s1")
	cent=$(curl_entries "$w" "$TEST_TMP/curl-$w")
	[ "$cent" = "$(curl_expect "$w")" ] ||
		note "$w: curl gave $cent entries, expected $(curl_expect "$w")"
	if [ "$w" = w3 ] && ! cmp -s <(sort -u "$TEST_TMP/out-$w") <(sort -u "$TEST_TMP/curl-$w"); then
		note "w3: the digests read through acrfs differ from curl's"
	fi
	[ "$(cut -d' ' -f1 <<<"$c")" = "$(needed "$w")" ] ||
		note "$w: curl sent $(cut -d' ' -f1 <<<"$c") requests, $(needed "$w") counted as needed"
}

# ls_alone NAME PATH: a fresh mount, `ls PATH` alone; requests from mount to unmount.
ls_alone() {
	local name=$1 path=$2 s0=$TEST_TMP/s0 s1=$TEST_TMP/s1 d rss
	snap "$s0"
	mount_cold
	timed "$TEST_TMP/out-$name" ls "$MNT$path"
	snap "$s1"
	rss=$(vmhwm_kb)
	umount_a
	snap "$s1"
	d=$(delta "$s0" "$s1")
	echo "$d $SECS $rss" >"$M/$name"
	printf '  ls MNT%s: %s requests (%s), %s s\n' "$path" "$(cut -d' ' -f1 <<<"$d")" "$(kinds "$d")" "$SECS"
}

# mem_step: rootfs/ of every distinct image on one mount; peak RSS and blob GETs.
mem_step() {
	local s0=$TEST_TMP/s0 s1=$TEST_TMP/s1 refs d rss
	mount_cold "${MEMMAX:+mem_max=$MEMMAX}" || {
		note "mem: the mount failed (mem_max=$MEMMAX not supported?)"
		return 0
	}
	mapfile -t refs < <(cut -d' ' -f1 "$FIX/distinct.txt")
	in_mnt rootfs "${refs[@]}"
	snap "$s0"
	timed "$TEST_TMP/out-mem" find "${PATHS[@]}"
	snap "$s1"
	rss=$(vmhwm_kb)
	# What the daemon counts: the budget (-o mem_max), evictions, its inodes.
	python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); m = s["memory"]
mib = lambda v: "%.1f MiB" % (v / 1048576.0) if v is not None else "?"
print("  mem: budget %s, counted %s (peak %s), %s evictions (%s refused: in use), inodes %s (%s), listings %s, view objects %s, RSS now %s (heap in use %s, free %s)" % (
    m.get("max_bytes"), m.get("bytes"), m.get("peak_bytes"), m.get("evictions"), m.get("busy"),
    s.get("inodes"), mib(s.get("inode_bytes")), mib(s.get("listing_bytes")), mib(s.get("view_bytes")),
    mib(m["rss_bytes"]), mib(m.get("heap_in_use_bytes")), mib(m.get("heap_free_bytes"))))' "$MNT/.acrfs/status" || true
	[ -n "${ACRFS_WAN_SMAPS:-}" ] && cp "/proc/$MNT_a_PID/smaps" "$ACRFS_WAN_SMAPS"
	umount_a
	d=$(delta "$s0" "$s1")
	echo "$SECS $(wc -l <"$TEST_TMP/out-mem") $rss $d" >>"$M/mem"
	printf '  mem: %s s, %s entries, peak RSS %s MiB, %s blob GETs (%s)\n' "$SECS" \
		"$(wc -l <"$TEST_TMP/out-mem")" "$(calc "$rss / 1024" 1)" "$(cut -d' ' -f6 <<<"$d")" \
		"$(kinds "$d")"
}

echo "acrfs WAN benchmark: $(nproc) cores, $RUNS run(s), ${DELAY_MS} ms per request," \
	"bandwidth cap $([ "$BW" = 0 ] && echo none || echo "$BW B/s per connection")"
echo "registry: $WAN_CATALOG repositories, $WAN_TAGS_TOTAL tags; $WAN_BIG: $WAN_BIG_TAGS tags over" \
	"$WAN_BIG_MANIFESTS manifests; $WAN_IMAGES small images; $WAN_MEM_IMAGES × $WAN_MEM_ENTRIES-entry images" \
	"(fixtures $FIX)"
[ -z "$OPTS" ] || echo "extra mount options: $OPTS"
T_START=$EPOCHREALTIME
for ((run = 1; run <= RUNS; run++)); do
	echo "run $run/$RUNS:"
	for w in w1 w2 w3 w4 w5; do
		want "$w" && walk "$w"
	done
	if want ls; then
		ls_alone ls_root ""
		ls_alone ls_repo "/$WAN_BIG"
	fi
	if want mem; then
		mem_step
	fi
done
echo "total bench time $(calc "$EPOCHREALTIME - $T_START" 0) s"

# ---- table -------------------------------------------------------------------------
col() { awk -v c="$2" '{ print $c }' "$M/$1" | median; }
pf() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "PASS" : "MISS" }'; }
D=$(calc "$DELAY_MS / 1000" 4)
echo
echo "| walk | requests needed | serial floor | acrfs | acrfs requests | fetched | in flight | acrfs/floor | curl loop | acrfs/curl | warm | warm requests | goal ≤ 0.25× floor, warm 0 |"
echo "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"
for w in w1 w2 w3 w4 w5; do
	[ -s "$M/$w" ] || continue
	need=$(needed "$w")
	floor=$(calc "$need * $D" 2)
	t=$(col "$w" 1)
	ct=$(col "$w" 14)
	req=$(tail -n1 "$M/$w" | cut -d' ' -f2-9)
	wreq=$(col "$w" 13)
	if [ "$ct" = - ]; then
		curlcol="skipped" curlratio=-
	else
		curlcol="$ct s ($(col "$w" 15) req)" curlratio="$(calc "$t / $ct")×"
	fi
	printf '| %s: %s | %s | %s s | %s s | %s (%s) | %s KB | %s | %s× | %s | %s | %s s | %s | %s, %s |\n' \
		"$w" "$(label "$w")" "$need" "$floor" "$t" "$(cut -d' ' -f1 <<<"$req")" "$(kinds "$req")" \
		"$(calc "$(cut -d' ' -f2 <<<"$req") / 1000" 0)" "$(col "$w" 10)" "$(calc "$t / $floor")" \
		"$curlcol" "$curlratio" "$(col "$w" 12)" "$wreq" \
		"$(pf "$(calc "$t / $floor" 4)" 0.25)" "$([ "$wreq" = 0 ] && echo PASS || echo MISS)"
done
# Today (main at 93e7c35) `ls MNT` sends the catalog pages, `ls MNT/<repo>` the catalog
# pages (a flat name could be a namespace) and one tag list; each mount adds its GET /v2/
# and, since issue 10, its ACR probe (GET /acr/v1/_catalog?n=1, counted as "catalog").
for name in ls_root ls_repo; do
	[ -s "$M/$name" ] || continue
	d=$(cut -d' ' -f1-8 "$M/$name")
	today=$((CAT_PAGES + 2))
	[ "$name" = ls_root ] || today=$((today + 1))
	printf '| `ls MNT%s` alone (fresh mount, mount to unmount) | | | %s s | %s (%s) | | | | | | | | same as today (%s): %s |\n' \
		"$([ "$name" = ls_repo ] && echo "/$WAN_BIG")" "$(cut -d' ' -f9 "$M/$name")" \
		"$(cut -d' ' -f1 <<<"$d")" "$(kinds "$d")" "$today" \
		"$([ "$(cut -d' ' -f1 <<<"$d")" = "$today" ] && echo PASS || echo MISS)"
done
if [ -s "$M/mem" ]; then
	read -r ms ment mrss mreq _ _ _ _ mblob _ <<<"$(tail -n1 "$M/mem")"
	base=$( [ -s "$M/ls_root" ] && cut -d' ' -f10 "$M/ls_root" || echo 0)
	layers=$(cut -d' ' -f2- "$FIX/distinct.txt" | tr ' ' '\n' | sort -u | wc -l)
	if [ -n "$MEMMAX" ]; then
		lim=$(numfmt --from=iec "$MEMMAX")
		goal="peak ≤ $MEMMAX + $OVERHEAD_MB MiB: $(pf "$mrss" $(((lim >> 10) + OVERHEAD_MB * 1024)))"
	else
		goal="no budget (ACRFS_WAN_MEMMAX unset)"
	fi
	printf '| mem: find rootfs/ of %d distinct images (%s entries) | | | %s s | %s (blob %s; distinct layer blobs %s) | | | | | | | | %s; each blob once: %s |\n' \
		"$(wc -l <"$FIX/distinct.txt")" "$ment" "$ms" "$mreq" "$mblob" "$layers" "$goal" \
		"$([ "$mblob" = "$layers" ] && echo PASS || echo MISS)"
	printf '\npeak RSS of the daemon in the memory step: %s MiB%s\n' "$(calc "$mrss / 1024" 1)" \
		"$([ -n "$MEMMAX" ] && echo " (budget $MEMMAX + fixed overhead $OVERHEAD_MB MiB)")"
	[ "$base" = 0 ] ||
		printf 'a fresh mount after `ls MNT`: %s MiB; (step − that) / entries walked: %s bytes\n' \
			"$(calc "$base / 1024" 1)" "$(calc "($mrss - $base) * 1024 / $ment" 0)"
fi
for n in "${NOTES[@]}"; do
	echo "note: $n"
done
exit 0
