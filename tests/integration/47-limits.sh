#!/usr/bin/env bash
# test-weight: 1 (tests/run.sh starts heavier scripts first)
# Issue 9 (network half, point 6): the bounds on one listing (a catalog or a tag list,
# all its pages). A registry announcing endless rel="next" pages, a huge page, or pages
# that never stop adding up gets EIO and a log line naming the limit; the mount survives.
# Its own script: the endless listing is 5,000 requests (seconds; minutes when the
# proxy's replies waited for delayed ACKs).
# shellcheck disable=SC2154 # REG_*, PROXY_*, MNT_* are exported by the helpers
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/acrfs.sh"
MOUNT_TIMEOUT=60 # not a deadline test: time enough for the proxy to make its pages
. "$TESTS_LIB/faults.sh"
T=$TEST_TMP
O=$T/o
mkdir -p -- "$O"
tap_trap_cleanup faults_cleanup

reg_start r || exit 1
printf '{"mtime": 1700000000, "layers": [{"entries": [{"type": "file", "path": "a", "content": "a"}]}]}\n' \
	>"$O/img.json"
/usr/bin/python3 "$TESTS_LIB/mkimage.py" build "$O/img.json" "$O/oci" --ref img >/dev/null &&
	for repo in app other more; do
		/usr/bin/python3 "$TESTS_LIB/mkimage.py" push "$O/oci" img "$REG_r_URL/$repo:v1" >/dev/null ||
			exit 1
	done || {
	fail "build and push the test image"
	tap_done
	exit 1
}

proxy_start lim "$REG_r_URL" --rule "^/v2/app/tags/list:pages" --rule "^/v2/other/tags/list:hugepage" \
	--rule "^/v2/more/tags/list:bigpages" || fail "proxy lim"
mount_fg lim "$PROXY_lim_URL" -o ttl=0 || fail "mount lim"
rc=$(GUARD=500 guarded "$O/lim1.out" ls "$MNT_lim/app")
check "endless next pages: EIO (rc $rc: $(head -c 200 "$O/lim1.out.err" | tr '\n' ' '))" \
	grep -q 'Input/output error' "$O/lim1.out.err"
check "… the log names the limit (5000 pages)" grep -q 'more than 5000 pages' "$T/mnt-lim.log"
n=$(proxy_count lim 'GET /v2/app/tags/list')
check "… after 5000 pages per listing ($n requests)" test "$n" -ge 5000 -a $((n % 5000)) = 0
rc=$(guarded "$O/lim2.out" ls "$MNT_lim/other")
check "a 9 MiB page: EIO (rc $rc)" grep -q 'Input/output error' "$O/lim2.out.err"
check "… the log names the limit (8 MiB)" grep -q 'larger than 8 MiB' "$T/mnt-lim.log"
rc=$(guarded "$O/lim3.out" ls "$MNT_lim/more")
check "1 MiB pages without end: EIO (rc $rc)" grep -q 'Input/output error' "$O/lim3.out.err"
check "… the log names the limit (32 MiB)" grep -q 'more than 32 MiB' "$T/mnt-lim.log"
proxy_rules lim
sleep 1.1 # past the second a failed listing is held (fs/dcache.h)
is "$(ls "$MNT_lim/app" "$MNT_lim/other" "$MNT_lim/more" 2>&1 | grep -c '^v1$')" 3 \
	"the mount survives: the same repositories list once the registry behaves"
mnt_stop lim

tap_done
