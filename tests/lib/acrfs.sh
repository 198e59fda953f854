# shellcheck shell=bash
# tests/lib/acrfs.sh — mount and unmount the acrfs under test ($ACRFS).
#
#   mnt_start NAME REGISTRY [ACRFS-ARGS...]
#       Mount REGISTRY at $TEST_TMP/mnt-NAME in the background (acrfs daemonises and
#       returns once the mount is live); exports MNT_<NAME> (the mount point) and
#       records it for mnt_stop_all. Debug log: acrfs logs to syslog in the background,
#       so use mnt_start_fg when a test reads the log.
#   mnt_start_fg NAME REGISTRY [ACRFS-ARGS...]
#       Same with -f: acrfs stays in the foreground (a background job of this shell),
#       its stderr goes to $TEST_TMP/mnt-NAME.log; waits until the mount is live.
#       Exports MNT_<NAME>_PID.
#   mnt_stop NAME            fusermount3 -u, then wait for the daemon to exit.
#   mnt_stop_all             for traps.
#   is_mounted DIR           0 if DIR is a FUSE mount point.

ACRFS=${ACRFS:-$PWD/acrfs}
MNT_NAMES=()

is_mounted() {
	local d
	d=$(readlink -f -- "$1") || return 1
	# mountinfo: field 5 is the mount point; the type follows the " - " separator.
	awk -v d="$d" '{ for (i = 7; i <= NF; i++) if ($i == "-") break }
		$5 == d && $(i + 1) ~ /^fuse/ { f = 1 } END { exit !f }' /proc/self/mountinfo
}

_mnt_pid_of() {
	# The daemon serving mount point $1 (it has the mount point in its argv). One grep
	# over every process's argv (NUL-separated: -z, whole arguments: -x), then the
	# program name of the few that match: not two pipes per process on the machine.
	local mp=$1 f
	while IFS= read -r f; do
		if head -z -n 1 -- "$f" 2>/dev/null | grep -qz acrfs; then
			f=${f%/cmdline}
			printf '%s\n' "${f#/proc/}"
			return 0
		fi
	done < <(grep -lzxF -- "$mp" /proc/[0-9]*/cmdline 2>/dev/null)
	return 1
}

# ACRFS_TEST_ACR=1 (registry.sh): mount as the emulator's admin unless the test chose
# credentials (ACRFS_USERNAME, -o username=, docker_config=, aad_token_file=).
# Sets _MNT_ENV (for env(1)) from the acrfs arguments.
_mnt_acr_env() {
	_MNT_ENV=()
	if [ "${ACRFS_TEST_ACR:-0}" = 1 ] && [ -z "${ACRFS_USERNAME:-}" ] &&
		! [[ " $* " =~ (username=|docker_config=|aad_token_file=) ]]; then
		_MNT_ENV=(ACRFS_USERNAME=admin ACRFS_PASSWORD=adminpw)
	fi
}

mnt_start() {
	local name=$1 reg=$2
	shift 2
	local mp=$TEST_TMP/mnt-$name
	mkdir -p -- "$mp"
	_mnt_acr_env "$@"
	env "${_MNT_ENV[@]}" "$ACRFS" "$@" "$reg" "$mp" 2>"$TEST_TMP/mnt-$name.err" || {
		sed 's/^/# /' "$TEST_TMP/mnt-$name.err" >&2
		return 1
	}
	MNT_NAMES+=("$name")
	printf -v "MNT_$name" '%s' "$mp"
	export "MNT_$name"
}

mnt_start_fg() {
	local name=$1 reg=$2 i
	shift 2
	local mp=$TEST_TMP/mnt-$name
	mkdir -p -- "$mp"
	# Background jobs of a non-interactive shell ignore SIGINT; restore the
	# default so that a test can interrupt the daemon as a terminal would.
	_mnt_acr_env "$@"
	env "${_MNT_ENV[@]}" /usr/bin/python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$ACRFS" -f "$@" "$reg" "$mp" 2>"$TEST_TMP/mnt-$name.log" &
	local pid=$!
	for ((i = 0; i < 100; i++)); do
		is_mounted "$mp" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if ! is_mounted "$mp"; then
		sed 's/^/# /' "$TEST_TMP/mnt-$name.log" >&2
		return 1
	fi
	MNT_NAMES+=("$name")
	printf -v "MNT_$name" '%s' "$mp"
	printf -v "MNT_${name}_PID" '%s' "$pid"
	export "MNT_$name" "MNT_${name}_PID"
}

#   mnt_wait_exit PID [SECONDS]  wait for a foreground daemon (a child of this shell)
#       to exit, at most SECONDS (default 10); sets MNT_EXIT to its exit status, or
#       "timeout". (Not in a $(...) subshell: only this shell can wait for its child.)
mnt_wait_exit() {
	local pid=$1 secs=${2:-10} i
	MNT_EXIT=timeout
	for ((i = 0; i < secs * 10; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			MNT_EXIT=$?
			return 0
		fi
		sleep 0.1
	done
}

mnt_stop() {
	local name=$1 mp pid i
	mp=$TEST_TMP/mnt-$name
	pid=$(_mnt_pid_of "$mp")
	if is_mounted "$mp"; then
		fusermount3 -u -- "$mp" 2>/dev/null || fusermount3 -u -z -- "$mp" 2>/dev/null
	fi
	if [ -n "$pid" ]; then
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	fi
	local n keep=()
	for n in "${MNT_NAMES[@]}"; do
		[ "$n" = "$name" ] || keep+=("$n")
	done
	MNT_NAMES=("${keep[@]}")
	return 0
}

mnt_stop_all() {
	local n
	for n in "${MNT_NAMES[@]}"; do
		mnt_stop "$n"
	done
	return 0
}

#   proxy_start NAME UPSTREAM_URL [--rule RULE ...]
#       Start tests/lib/faultproxy.py; exports PROXY_<NAME>_URL and PROXY_<NAME>_LOG.
#   proxy_stop_all           for traps.
PROXY_PIDS=()
proxy_start() {
	local name=$1 up=$2 line i
	shift 2
	local log=$TEST_TMP/proxy-$name.log out=$TEST_TMP/proxy-$name.out
	: >"$log"
	/usr/bin/python3 "$TESTS_LIB/faultproxy.py" "$up" --log "$log" "$@" >"$out" 2>&1 &
	PROXY_PIDS+=($!)
	for ((i = 0; i < 100; i++)); do
		line=$(grep -m1 '^READY port=' "$out" 2>/dev/null) && break
		sleep 0.05
	done
	[ -n "$line" ] || return 1
	printf -v "PROXY_${name}_URL" 'http://127.0.0.1:%s' "${line#READY port=}"
	printf -v "PROXY_${name}_LOG" '%s' "$log"
	export "PROXY_${name}_URL" "PROXY_${name}_LOG"
}

proxy_stop_all() {
	local p
	for p in "${PROXY_PIDS[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	PROXY_PIDS=()
	return 0
}

#   ts_start NAME CONFIG [TOKENSERVER-ARGS...]
#       Start tests/lib/tokenserver.py (state in $TEST_TMP/ts-NAME, request log
#       ts-NAME.log, every issued token in ts-NAME.tokens) and wait for its READY line.
#       Exports TS_<NAME>_URL (http://127.0.0.1:PORT), TS_<NAME>_REALM, _SERVICE,
#       _ISSUER, _ROOT (rootcertbundle), _PID, _LOG and _TOKENS.
#   ts_stat NAME KEY         print one counter of its /stats (0 if absent).
#   ts_control NAME JSON     POST JSON to its /control (e.g. '{"bad_tokens":1}').
#   ts_stop_all              for traps.
TS_PIDS=()
ts_start() {
	local name=$1 cfg=$2 line i
	shift 2
	local dir=$TEST_TMP/ts-$name out=$TEST_TMP/ts-$name.out
	mkdir -p -- "$dir"
	/usr/bin/python3 "$TESTS_LIB/tokenserver.py" --config "$cfg" --state-dir "$dir" \
		--log "$TEST_TMP/ts-$name.log" --token-log "$TEST_TMP/ts-$name.tokens" \
		--pid-file "$dir/pid" "$@" >"$out" 2>&1 &
	local pid=$!
	TS_PIDS+=("$pid")
	for ((i = 0; i < 200; i++)); do
		line=$(grep -m1 '^READY port=' "$out" 2>/dev/null) && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$line" ]; then
		sed 's/^/# /' "$out" >&2
		return 1
	fi
	local realm service issuer root
	realm=$(sed -n 's/.* realm=\([^ ]*\).*/\1/p' <<<"$line")
	service=$(sed -n 's/.* service=\([^ ]*\).*/\1/p' <<<"$line")
	issuer=$(sed -n 's/.* issuer=\([^ ]*\).*/\1/p' <<<"$line")
	root=$(sed -n 's/.* rootcertbundle=\([^ ]*\).*/\1/p' <<<"$line")
	printf -v "TS_${name}_URL" '%s' "${realm%%/oauth2/token}"
	printf -v "TS_${name}_REALM" '%s' "$realm"
	printf -v "TS_${name}_SERVICE" '%s' "$service"
	printf -v "TS_${name}_ISSUER" '%s' "$issuer"
	printf -v "TS_${name}_ROOT" '%s' "$root"
	printf -v "TS_${name}_PID" '%s' "$pid"
	printf -v "TS_${name}_LOG" '%s' "$TEST_TMP/ts-$name.log"
	printf -v "TS_${name}_TOKENS" '%s' "$TEST_TMP/ts-$name.tokens"
	export "TS_${name}_URL" "TS_${name}_REALM" "TS_${name}_SERVICE" "TS_${name}_ISSUER" \
		"TS_${name}_ROOT" "TS_${name}_PID" "TS_${name}_LOG" "TS_${name}_TOKENS"
}

ts_stat() {
	local v="TS_${1}_URL"
	curl -sS "${!v}/stats" | /usr/bin/python3 -c 'import json, sys
print(json.load(sys.stdin).get(sys.argv[1], 0))' "$2"
}

ts_control() {
	local v="TS_${1}_URL"
	curl -sS -X POST -H 'Content-Type: application/json' --data "$2" "${!v}/control" >/dev/null
}

ts_stop_all() {
	local p
	for p in "${TS_PIDS[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	TS_PIDS=()
	return 0
}
