#!/usr/bin/env bash
# test-weight: 2 (tests/run.sh starts heavier scripts first)
# Issue 2: command line, start-up check, TLS, foreground/background life cycle,
# read-only mounts, catalog denied or absent, HTTP retries and errno mapping.
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/images.sh"
. "$TESTS_LIB/acrfs.sh"

cleanup() {
	mnt_stop_all
	proxy_stop_all
	[ -n "${WEB_PID:-}" ] && kill "$WEB_PID" 2>/dev/null
	reg_stop_all
}
tap_trap_cleanup cleanup

# --help and --version
help=$("$ACRFS" --help)
for o in ttl= ca_file= ' ro ' username= password_file= password_stdin allow_other -f -d; do
	check "--help documents $o" grep -q -- "$o" <<<"$help"
done
check "--help gives defaults" grep -q "default: 60" <<<"$help"
check "--version prints a version" grep -Eq '^acrfs [0-9]+\.[0-9]+' <<<"$("$ACRFS" --version)"

# Bad arguments
mkdir -p "$TEST_TMP/m"
out=$("$ACRFS" -o password=hunter2 127.0.0.1:1 "$TEST_TMP/m" 2>&1)
rc=$?
check "a password in argv is refused (exit $rc)" test "$rc" -ne 0
check "… with a message saying why" grep -q "ACRFS_PASSWORD" <<<"$out"
check "… which does not repeat the password" test -z "$(grep hunter2 <<<"$out")"
out=$("$ACRFS" ftp://x "$TEST_TMP/m" 2>&1)
check "a bad REGISTRY is refused" grep -q "not a registry address" <<<"$out"

# Start-up check: nothing listening
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$("$ACRFS" "http://127.0.0.1:$port" "$TEST_TMP/m" 2>&1)
rc=$?
check "unreachable registry: non-zero exit ($rc)" test "$rc" -ne 0
check "… names the cause: $out" grep -qi "connect" <<<"$out"
check "… leaves no mount" test ! "$(is_mounted "$TEST_TMP/m" && echo yes)"

# Start-up check: something that is not a registry
mkdir -p "$TEST_TMP/web"
/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$TEST_TMP/web" "$port" >/dev/null 2>&1 &
WEB_PID=$!
for _ in $(seq 50); do curl -s "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
out=$("$ACRFS" "http://127.0.0.1:$port" "$TEST_TMP/m" 2>&1)
rc=$?
check "not a registry: non-zero exit ($rc)" test "$rc" -ne 0
check "… says so: $out" grep -q "does not look like a container registry" <<<"$out"
check "… leaves no mount" test ! "$(is_mounted "$TEST_TMP/m" && echo yes)"

# TLS with a CA the test generated
reg_start t --tls || exit 1
img_build_simple "$TEST_TMP/oci" v1 "hello.txt=hello" >/dev/null || exit 1
img_push "$TEST_TMP/oci:v1" "$REG_t_URL/ssongman/userlist:v1" "$REG_t_CA" >/dev/null ||
	fail "push over TLS"
out=$("$ACRFS" "$REG_t_HOST" "$TEST_TMP/m" 2>&1)
rc=$?
check "TLS without the CA: non-zero exit ($rc)" test "$rc" -ne 0
check "… names the TLS failure: $out" grep -qiE "TLS|certificate" <<<"$out"
check "… leaves no mount" test ! "$(is_mounted "$TEST_TMP/m" && echo yes)"
mnt_start tls "$REG_t_HOST" -o ca_file="$REG_t_CA" || fail "mount with ca_file"
is "$(ls "$MNT_tls/ssongman/userlist")" "v1" "host:port means HTTPS; ca_file is trusted"
mnt_stop tls
mnt_start tls2 "https://$REG_t_HOST/" -o "ca_file=$REG_t_CA" || fail "mount https://"
is "$(ls "$MNT_tls2/ssongman")" "userlist" "https://host:port/ works too"
mnt_stop tls2

# Plain registry for the rest
reg_start r || exit 1
img_push "$TEST_TMP/oci:v1" "$REG_r_URL/ssongman/userlist:v1" >/dev/null
img_push "$TEST_TMP/oci:v1" "$REG_r_URL/other:v1" >/dev/null

# Foreground life cycle: SIGTERM and SIGINT unmount cleanly.
for sig in TERM INT; do
	mnt_start_fg fg "$REG_r_URL" || fail "mount -f"
	is "$(ls "$MNT_fg")" "$(printf 'other\nssongman')" "-f mount works ($sig run)"
	kill -s "$sig" "$MNT_fg_PID"
	mnt_wait_exit "$MNT_fg_PID"
	is "$MNT_EXIT" 0 "SIG$sig: the foreground daemon exits 0"
	check "SIG$sig: … and the mount is gone" test ! "$(is_mounted "$MNT_fg" && echo yes)"
	MNT_NAMES=()
done
check "-f logs to stderr" grep -q "mounted $REG_r_URL" "$TEST_TMP/mnt-fg.log"

# Read-only
mnt_start ro "$REG_r_URL" -o ro || fail "mount -o ro"
is "$(stat -c %a "$MNT_ro/ssongman/userlist/v1")" 555 "-o ro: directories are r-x"
out=$(rmdir "$MNT_ro/ssongman/userlist/v1" 2>&1)
check "-o ro: rmdir is refused with EROFS" grep -q "Read-only file system" <<<"$out"
mnt_stop ro

# Catalog absent (404) and denied (401/403): repositories reachable by path.
for st in 404 401 403; do
	proxy_start "c$st" "$REG_r_URL" --rule "^/v2/_catalog:$st" || fail "proxy"
	url_var=PROXY_c${st}_URL
	mnt_start "c$st" "${!url_var}" || fail "mount via proxy"
	mp_var=MNT_c$st
	M=${!mp_var}
	is "$(ls -A "$M")" "" "catalog $st: / lists nothing"
	is "$(ls "$M/ssongman/userlist")" "v1" "catalog $st: ls ssongman/userlist still works"
	check "catalog $st: a tag directory is reachable" test -d "$M/other/v1"
	mnt_stop "c$st"
done

# Retries: transient 503, 502, dropped connections and 429 Retry-After recover.
proxy_start flaky "$REG_r_URL" \
	--rule '/v2/ssongman/userlist/tags/list:503:2' \
	--rule '/v2/other/tags/list:drop:2' \
	--rule '^/v2/_catalog:429r1:1' || fail "proxy"
mnt_start_fg flaky "$PROXY_flaky_URL" || fail "mount via flaky proxy"
is "$(ls "$MNT_flaky" | tr '\n' ' ')" "other ssongman " "429 with Retry-After is retried"
t=$(awk '/ \/v2\/_catalog/ {print $1}' "$PROXY_flaky_LOG")
check "… after waiting Retry-After (log times: $(echo $t))" \
	awk -v a="$(echo "$t" | sed -n 1p)" -v b="$(echo "$t" | sed -n 2p)" 'BEGIN { exit !(b - a >= 0.95) }'
is "$(ls "$MNT_flaky/ssongman/userlist")" "v1" "two 503s are retried"
is "$(grep -c 'ssongman/userlist/tags/list' "$PROXY_flaky_LOG")" 3 "… three requests in all"
is "$(ls "$MNT_flaky/other")" "v1" "two dropped connections are retried"
mnt_stop flaky

# Exhausted retries → EIO, logged once with URL, status and code; 403 → EACCES.
proxy_start down "$REG_r_URL" --rule '/v2/other/tags/list:503' \
	--rule '/v2/ssongman/userlist/tags/list:403' || fail "proxy"
mnt_start_fg down "$PROXY_down_URL" || fail "mount via failing proxy"
out=$(ls "$MNT_down/other" 2>&1)
check "503 until retries run out: EIO ($out)" grep -q "Input/output error" <<<"$out"
n=$(grep -c "other/tags/list: HTTP 503 UNAVAILABLE" "$TEST_TMP/mnt-down.log")
is "$n" 1 "… logged once with URL, status and registry code"
out=$(ls "$MNT_down/ssongman/userlist" 2>&1)
check "403 DENIED: EACCES ($out)" grep -q "Permission denied" <<<"$out"
mnt_stop down

tap_done
