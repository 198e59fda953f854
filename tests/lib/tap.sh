# shellcheck shell=bash
# tests/lib/tap.sh — minimal TAP producer for the integration scripts.
#
# Source it, then:
#   ok DESC                      record a pass
#   fail DESC [DETAILS...]       record a failure; DETAILS are printed as '# ' lines
#   check DESC CMD [ARGS...]     run CMD; pass if it exits 0, else fail and show its
#                                output (stdout+stderr) indented with '# '
#   is ACTUAL EXPECTED DESC      string equality; prints both values on failure
#   cmp_files A B DESC           files identical; shows 'diff -u' on failure
#   skip DESC WHY                record a skip (counts as passed)
#   diag MSG...                  print '# MSG' lines (commentary, not a result)
#   tap_done                     print '# <script>: N passed, M failed'; return 1 if M > 0
#   tap_trap_cleanup FUNC        run FUNC on EXIT (also on INT/TERM/HUP, which then exit)
#
# Result lines are 'ok - DESC', 'not ok - DESC' and 'ok - DESC # SKIP why'; tests/run.sh
# counts them. Every function returns 0 except 'check'/'is'/'cmp_files', which return 1
# on failure so a script can write 'check ... || return'.

TAP_PASSED=0
TAP_FAILED=0
TAP_SKIPPED=0
TAP_SCRIPT=${TAP_SCRIPT:-$(basename -- "${BASH_SOURCE[1]:-$0}")}

# Prefix every line of stdin with '# '.
_tap_indent() {
	sed -e 's/^/# /'
}

diag() {
	printf '%s\n' "$*" | _tap_indent
}

ok() {
	TAP_PASSED=$((TAP_PASSED + 1))
	printf 'ok - %s\n' "$1"
}

fail() {
	local desc=$1
	shift
	TAP_FAILED=$((TAP_FAILED + 1))
	printf 'not ok - %s\n' "$desc"
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" | _tap_indent
	fi
}

skip() {
	TAP_SKIPPED=$((TAP_SKIPPED + 1))
	TAP_PASSED=$((TAP_PASSED + 1))
	printf 'ok - %s # SKIP %s\n' "$1" "${2:-}"
}

check() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1) && rc=0 || rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "$desc"
		return 0
	fi
	fail "$desc" "command: $*" "exit status: $rc"
	if [ -n "$out" ]; then
		printf '%s\n' "$out" | _tap_indent
	fi
	return 1
}

is() {
	local actual=$1 expected=$2 desc=$3
	if [ "$actual" = "$expected" ]; then
		ok "$desc"
		return 0
	fi
	fail "$desc"
	printf '%s\n' "expected:" | _tap_indent
	printf '%s\n' "$expected" | sed -e 's/^/#   /'
	printf '%s\n' "got:" | _tap_indent
	printf '%s\n' "$actual" | sed -e 's/^/#   /'
	return 1
}

cmp_files() {
	local a=$1 b=$2 desc=$3 out
	if out=$(diff -u -- "$a" "$b" 2>&1); then
		ok "$desc"
		return 0
	fi
	fail "$desc"
	printf '%s\n' "$out" | head -n 200 | _tap_indent
	return 1
}

tap_done() {
	printf '# %s: %d passed, %d failed\n' "$TAP_SCRIPT" "$TAP_PASSED" "$TAP_FAILED"
	[ "$TAP_FAILED" -eq 0 ]
}

# Cleanup functions run in reverse order of registration, once, on EXIT. A fatal signal
# is turned into an exit so that the EXIT trap runs (bash does not run it otherwise when
# killed by SIGTERM, e.g. from 'timeout').
TAP_CLEANUPS=()
_tap_run_cleanups() {
	local rc=$? i
	trap - EXIT INT TERM HUP
	for ((i = ${#TAP_CLEANUPS[@]} - 1; i >= 0; i--)); do
		"${TAP_CLEANUPS[i]}" || true
	done
	TAP_CLEANUPS=()
	return "$rc"
}

tap_trap_cleanup() {
	TAP_CLEANUPS+=("$1")
	trap _tap_run_cleanups EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
}
