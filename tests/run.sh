#!/usr/bin/env bash
# tests/run.sh — run every unit and integration test; called by 'make check' after the
# release and sanitized builds. The last line of output is exactly 'N passed, M failed';
# the exit status is non-zero when M > 0.
#
# 1. Unit tests: build/release/tests/test_* then build/asan-ubsan/tests/test_* (cmocka).
#    The '[  PASSED  ] N test(s).' and '[  FAILED  ] N test(s)' summaries are added up;
#    a binary that exits non-zero without a FAILED count (crash, sanitizer abort,
#    timeout) counts as one failure. Output is shown only for failing binaries.
# 2. Integration: each tests/integration/*.sh with ACRFS=$PWD/acrfs and again with
#    ACRFS=$PWD/build/acrfs-san ('[san]'). Each run gets a fresh TEST_TMP under
#    .test-tmp/, 'timeout 600', and is counted by its 'ok'/'not ok' lines (skips are
#    'ok'). A script that exits non-zero without a 'not ok', or prints no result at all,
#    counts as one failure; so does leaving a FUSE mount or a process behind under its
#    TEST_TMP (the runner unmounts with 'fusermount3 -u -z' and stops it by PID), and,
#    in the [san] pass, a sanitizer report written by the daemon (ASAN/UBSAN log_path
#    points into TEST_TMP).
#
# Unit binaries and integration runs are jobs, ACRFS_TEST_JOBS of them at a time (most
# tests wait on servers and mounts as much as they compute). Integration runs start
# heaviest first: a script declares its weight in a '# test-weight: N' line (default
# 1). Each job's output is printed whole, in the order the jobs end, under its
# '=== <script> [san] (N s)' line. Scripts are written to run beside each other: free
# ports, their own TEST_TMP, their own processes.
#
# Environment:
#   ACRFS_TEST_ONLY=ERE   run only integration scripts whose file name matches ERE
#                         (e.g. '^00-' or 'catalog|tags'); unit tests still run
#   ACRFS_TEST_NOSAN=1    skip the sanitized unit and integration passes
#   ACRFS_TEST_UNIT=0     skip unit tests
#   ACRFS_KEEP=1          keep .test-tmp/run-<pid>/ (logs, registry data) afterwards
#   ACRFS_TEST_JOBS=N     jobs at a time (default: the number of CPUs + 1, at least 2)
#
# Scripts receive: ACRFS (binary under test), ACRFS_SAN (1 in the [san] pass, else 0),
# ACRFS_ROOT (repo root, also their working directory), TESTS_LIB (tests/lib),
# TEST_TMP (fresh, empty, theirs alone), ACRFS_TEST_ID (marks their processes),
# XDG_CACHE_HOME=$TEST_TMP/xdg-cache (so acrfs never touches ~/.cache),
# ACRFS_TEST_CACHE (one directory for the whole run: tests/lib/fixture.sh builds what
# several scripts need there once).
set -uo pipefail

cd "$(dirname -- "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$PWD
RUN_TMP=$ROOT/.test-tmp/run-$$
mkdir -p -- "$RUN_TMP" "$RUN_TMP/cache" || exit 2
export ACRFS_TEST_CACHE=$RUN_TMP/cache

PASSED=0
FAILED=0
SAN_ASAN_OPTIONS='detect_leaks=1:abort_on_error=1'
SAN_UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1'

indent() {
	sed -e 's/^/    /'
}

# ---------------------------------------------------------------- leftovers

# Print the FUSE mount points below directory $1, one per line (deepest first).
fuse_mounts_under() {
	local dir=$1 line mp fstype
	while IFS= read -r line; do
		mp=$(printf '%s\n' "$line" | cut -d' ' -f5)
		fstype=${line#* - }
		fstype=${fstype%% *}
		mp=$(printf '%b' "$mp") # mountinfo escapes space, tab, newline, backslash
		case $fstype in
		fuse | fuse.*) ;;
		*) continue ;;
		esac
		case $mp in
		"$dir"/*) printf '%s\n' "$mp" ;;
		esac
	done </proc/self/mountinfo | sort -r
}

# PIDs of processes a test left behind: those whose environment carries the run's
# ACRFS_TEST_ID=$2 (everything the script started, daemonized or not, unless it cleared
# its environment) or whose command line has an argument inside directory $1.
leftover_pids() {
	local dir=$1 id=$2 re
	re=$(printf '%s' "$dir" | sed -e 's/[][\\.^$*+?(){}|]/\\&/g')
	{
		[ -z "$id" ] || grep -lzxF -- "ACRFS_TEST_ID=$id" /proc/[0-9]*/environ 2>/dev/null
		grep -lzE -- "^$re(/|\$)" /proc/[0-9]*/cmdline 2>/dev/null
	} | sed -n 's|^/proc/\([0-9]*\)/.*|\1|p' | sort -un | while read -r p; do
		[ "$p" = $$ ] || [ "$p" = "$BASHPID" ] || printf '%s\n' "$p"
	done
}

# Unmount and stop whatever a test left under $1 (or marked with ACRFS_TEST_ID=$2);
# print what was found; return 1 if anything was.
reap_leftovers() {
	local dir=$1 id=${2:-} found=0 mp pid i alive
	while IFS= read -r mp; do
		[ -n "$mp" ] || continue
		found=1
		echo "# leftover FUSE mount: $mp"
		fusermount3 -u -z -- "$mp" 2>&1 | indent
	done < <(fuse_mounts_under "$dir")
	[ "$found" = 0 ] || sleep 1 # let the daemons notice the unmount and exit
	local pids=()
	mapfile -t pids < <(leftover_pids "$dir" "$id")
	if [ ${#pids[@]} -gt 0 ]; then
		found=1
		for pid in "${pids[@]}"; do
			echo "# leftover process $pid: $( (tr '\0' ' ' <"/proc/$pid/cmdline") 2>/dev/null)"
			kill "$pid" 2>/dev/null
		done
		for ((i = 0; i < 50; i++)); do
			alive=0
			for pid in "${pids[@]}"; do
				kill -0 "$pid" 2>/dev/null && alive=1
			done
			[ "$alive" = 1 ] || break
			sleep 0.1
		done
		for pid in "${pids[@]}"; do
			kill -KILL "$pid" 2>/dev/null
		done
	fi
	[ "$found" = 0 ]
}

# Stop leftovers under RUN_TMP, then remove it (unless ACRFS_KEEP=1 or mounts remain).
finish_tmp() {
	if ! reap_leftovers "$RUN_TMP" >/dev/null; then
		echo "# cleaned up leftovers under $RUN_TMP"
	fi
	if [ "${ACRFS_KEEP:-0}" = 1 ]; then
		echo "# kept $RUN_TMP"
	elif [ -n "$(fuse_mounts_under "$RUN_TMP")" ]; then
		echo "# not removing $RUN_TMP: FUSE mounts remain"
	else
		chmod -R u+rwX -- "$RUN_TMP" 2>/dev/null
		rm -rf -- "$RUN_TMP"
		rmdir -- "$ROOT/.test-tmp" 2>/dev/null
	fi
}

on_signal() {
	trap - INT TERM
	echo "run.sh: interrupted; cleaning up $RUN_TMP" >&2
	local pid
	for pid in "${JOB_PID[@]}"; do
		kill -- "$pid" 2>/dev/null
	done
	sleep 1
	finish_tmp >&2
	exit 130
}
trap on_signal INT TERM

# ---------------------------------------------------------------- unit tests

# ---------------------------------------------------------------- jobs
#
# A job runs in the background and leaves $RUN_TMP/jobs/<n>.out (what to print) and
# <n>.count ("PASSED FAILED"); the pool prints and adds them up as jobs end.

# One more job than CPUs: part of a job's time is waiting (servers, mounts, sleeps); on
# 2 CPUs, 3 jobs took make check (builds included) from 24.6 to 22.8 minutes (2026-12-02).
JOBS=${ACRFS_TEST_JOBS:-$(($(nproc 2>/dev/null || echo 2) + 1))}
[ "$JOBS" -ge 2 ] 2>/dev/null || JOBS=2
[ -z "${ACRFS_TEST_JOBS:-}" ] || JOBS=$ACRFS_TEST_JOBS
mkdir -p -- "$RUN_TMP/jobs"
declare -A JOB_PID=() # job number -> pid
NJOBS=0

# Collect one ended job: print its output, add its counts.
collect() {
	local n=$1 p f
	cat -- "$RUN_TMP/jobs/$n.out" 2>/dev/null
	read -r p f <"$RUN_TMP/jobs/$n.count" 2>/dev/null || {
		p=0
		f=1
		echo "not ok - job $n ended without a result"
	}
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
	unset "JOB_PID[$n]"
}

# Wait until fewer than $1 jobs run, collecting those that ended.
drain_to() {
	local max=$1 n
	while [ "${#JOB_PID[@]}" -ge "$max" ] && [ "${#JOB_PID[@]}" -gt 0 ]; do
		wait -n "${JOB_PID[@]}" 2>/dev/null
		for n in "${!JOB_PID[@]}"; do
			kill -0 "${JOB_PID[$n]}" 2>/dev/null && continue
			wait "${JOB_PID[$n]}" 2>/dev/null
			collect "$n"
		done
	done
}

# Start "$@" as a job (a shell function writing the job's files), once a slot is free.
spawn() {
	drain_to "$JOBS"
	NJOBS=$((NJOBS + 1))
	JOB_OUT=$RUN_TMP/jobs/$NJOBS.out
	JOB_COUNT=$RUN_TMP/jobs/$NJOBS.count
	("$@" >"$JOB_OUT" 2>&1) </dev/null &
	JOB_PID[$NJOBS]=$!
}

# ---------------------------------------------------------------- unit tests

run_unit() {
	local bin=$1 variant=$2 log p f rc name
	name=$variant/${bin##*/}
	log=$RUN_TMP/unit-$variant-${bin##*/}.log
	# The subshell reports a signal death ("Aborted") into the log, not the terminal.
	(
		if [ "$variant" = asan-ubsan ]; then
			export ASAN_OPTIONS=$SAN_ASAN_OPTIONS UBSAN_OPTIONS=$SAN_UBSAN_OPTIONS
		fi
		CMOCKA_MESSAGE_OUTPUT=STDOUT timeout -k 10 300 "$bin" >"$log" 2>&1 </dev/null
		exit $?
	) 2>>"$log"
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # crashed, aborted by a sanitizer or timed out: no count of its own
	fi
	if [ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		f=1 # exited 0 without running a single test: a suite that cannot fail
		echo "# no cmocka summary in the output" >>"$log"
	fi
	if [ "$f" -eq 0 ]; then
		printf 'unit %-40s %d passed\n' "$name" "$p"
	else
		printf 'unit %-40s FAILED: %d passed, %d failed (exit %d%s)\n' "$name" "$p" "$f" \
			"$rc" "$([ "$rc" -eq 124 ] && echo ', timeout')"
		indent <"$log"
	fi
	echo "$p $f" >"$JOB_COUNT"
}

if [ "${ACRFS_TEST_UNIT:-1}" != 0 ]; then
	variants=(release)
	[ "${ACRFS_TEST_NOSAN:-0}" = 1 ] || variants+=(asan-ubsan)
	for variant in "${variants[@]}"; do
		found=0
		for bin in build/"$variant"/tests/test_*; do
			if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then continue; fi
			found=1
			spawn run_unit "$ROOT/$bin" "$variant"
		done
		[ "$found" = 1 ] || echo "unit $variant: no test binaries in build/$variant/tests/"
	done
fi

# ---------------------------------------------------------------- integration

run_script() {
	local script=$1 bin=$2 san=$3 base tmp log rc nok nnot label t0 fails=0
	base=${script##*/}
	base=${base%.sh}
	label=$script
	tmp=$RUN_TMP/$base
	if [ "$san" = 1 ]; then
		label="$script [san]"
		tmp=$tmp-san
	fi
	mkdir -p -- "$tmp"
	log=$tmp.log
	local id=$$-$base-$san
	t0=$SECONDS
	[ -x "$bin" ] || echo "# warning: $bin does not exist or is not executable" >>"$log"
	if [ "$san" = 1 ]; then
		ACRFS_TEST_ID=$id ACRFS=$bin ACRFS_SAN=1 ACRFS_ROOT=$ROOT TESTS_LIB=$ROOT/tests/lib TEST_TMP=$tmp XDG_CACHE_HOME=$tmp/xdg-cache \
			ASAN_OPTIONS="$SAN_ASAN_OPTIONS:log_path=$tmp/sanitizer" \
			UBSAN_OPTIONS="$SAN_UBSAN_OPTIONS:log_path=$tmp/sanitizer" \
			timeout -k 10 600 bash "$script" >>"$log" 2>&1 </dev/null
	else
		ACRFS_TEST_ID=$id ACRFS=$bin ACRFS_SAN=0 ACRFS_ROOT=$ROOT TESTS_LIB=$ROOT/tests/lib TEST_TMP=$tmp XDG_CACHE_HOME=$tmp/xdg-cache \
			timeout -k 10 600 bash "$script" >>"$log" 2>&1 </dev/null
	fi
	rc=$?
	echo "=== $label ($((SECONDS - t0)) s)"
	cat -- "$log"
	nok=$(grep -cE '^ok( |$)' "$log")
	nnot=$(grep -cE '^not ok( |$)' "$log")
	if [ "$rc" -ne 0 ] && [ "$nnot" -eq 0 ]; then
		echo "not ok - $label exited with status $rc$([ "$rc" -eq 124 ] && echo ' (timeout)')"
		fails=$((fails + 1))
	elif [ "$rc" -eq 0 ] && [ "$nok" -eq 0 ] && [ "$nnot" -eq 0 ]; then
		echo "not ok - $label printed no test results"
		fails=$((fails + 1))
	fi
	if ! reap_leftovers "$tmp" "$id"; then
		echo "not ok - $label left mounts or processes behind"
		fails=$((fails + 1))
	fi
	if [ "$san" = 1 ] && compgen -G "$tmp/sanitizer*" >/dev/null; then
		echo "not ok - $label: sanitizer reports"
		cat -- "$tmp"/sanitizer* | head -n 200 | indent
		fails=$((fails + 1))
	fi
	echo "$nok $((nnot + fails))" >"$JOB_COUNT"
}

# The weight a script declares ('# test-weight: N'), else 1.
weight_of() {
	local w
	w=$(sed -n 's/^# test-weight: *\([0-9][0-9]*\).*/\1/p' "$1" | head -n 1)
	echo "${w:-1}"
}

passes=("$ROOT/acrfs:0")
[ "${ACRFS_TEST_NOSAN:-0}" = 1 ] || passes+=("$ROOT/build/acrfs-san:1")
scripts=()
for script in tests/integration/*.sh; do
	[ -f "$script" ] || continue
	if [ -n "${ACRFS_TEST_ONLY:-}" ] &&
		! printf '%s\n' "${script##*/}" | grep -qE -- "$ACRFS_TEST_ONLY"; then
		continue
	fi
	scripts+=("$(weight_of "$script") $script")
done
# The sanitized run of a script is the slower one: it starts first.
while read -r _ script; do
	[ -n "$script" ] || continue
	for ((i = ${#passes[@]} - 1; i >= 0; i--)); do
		pass=${passes[$i]}
		spawn run_script "$script" "${pass%:*}" "${pass##*:}"
	done
done < <(printf '%s\n' "${scripts[@]}" | sort -s -k1,1nr)
drain_to 1

# ---------------------------------------------------------------- cleanup

finish_tmp

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
