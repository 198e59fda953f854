# shellcheck shell=bash
# tests/lib/faults.sh — helpers of the fault and trust-boundary tests (45-faults.sh,
# 46-trust.sh), on top of acrfs.sh (proxy_start, mnt_start_fg) and registry.sh.
#
#   faults_cleanup           stop every mount, proxy, registry and token service (trap)
#   proxy_port NAME WHICH    the STORAGE or EVIL port of proxy NAME
#   proxy_rules NAME RULE... replace the rules of the running proxy NAME
#   proxy_count NAME ERE     requests proxy NAME logged whose line matches ERE
#   guarded OUT CMD...       run CMD under `timeout $GUARD` (default 90 s), stdout to OUT,
#                            stderr to OUT.err; prints its exit status (124: it hung)
#   failed_in_time RC        RC is a failure that is not the guard's
#   is_prefix OUT ORACLE     OUT is a prefix of ORACLE (no wrong byte)
#   errno_text FILE          FILE on one line, for test descriptions
#   mount_fg NAME URL [ARGS...]
#                            mnt_start_fg with -o timeout=$MOUNT_TIMEOUT (default 5) and a
#                            cache directory of its own, $TEST_TMP/cache-NAME

GUARD=${GUARD:-90}
MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-5}

faults_cleanup() {
	mnt_stop_all
	proxy_stop_all
	reg_stop_all
	ts_stop_all
}

proxy_port() { sed -n "s/^$2 port=//p" "$TEST_TMP/proxy-$1.out"; }

proxy_rules() {
	local v="PROXY_${1}_URL"
	shift
	printf '%s\n' "$@" | curl -sS -X PUT --data-binary @- "${!v}/__faultproxy/rules"
}

proxy_count() {
	local v="PROXY_${1}_LOG"
	grep -cE -- "$2" "${!v}"
}

guarded() {
	local out=$1 rc=0
	shift
	timeout "$GUARD" "$@" >"$out" 2>"$out.err" || rc=$?
	printf '%s' "$rc"
}

failed_in_time() { [ "$1" != 0 ] && [ "$1" != 124 ]; }

is_prefix() {
	local n
	n=$(stat -c %s -- "$1")
	[ "$n" -le "$(stat -c %s -- "$2")" ] && cmp -s -n "$n" -- "$1" "$2"
}

errno_text() { tr '\n' ' ' <"$1"; }

mount_fg() {
	local name=$1 url=$2
	shift 2
	mnt_start_fg "$name" "$url" -o "timeout=$MOUNT_TIMEOUT,cache_dir=$TEST_TMP/cache-$name" "$@"
}
