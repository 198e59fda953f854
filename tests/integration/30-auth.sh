#!/usr/bin/env bash
# test-weight: 4 (tests/run.sh starts heavier scripts first)
# Issue 3: authentication against a real registry (distribution 2.8, `auth: token`)
# and tests/lib/tokenserver.py speaking ACR's dialect: every credential source, ACR's
# four ways in, scoped identities (pull-only, no catalog), clear start-up failures,
# token caching, expiry and refresh, htpasswd + TLS, and secrets kept out of logs.
# ACRFS_TEST_ACR=1 (82-acr-auth.sh): the registry is the ACR emulator, its own token
# service (/oauth2/token, /oauth2/exchange on the registry's origin) with these
# identities, plus ACR's metadata_read (admin: metadata_write too) that ACR's roles
# carry; acrfs then lists tags through /acr/v1. Parts that cannot be on ACR are
# skipped, saying why (docker-style token replies; htpasswd Basic-only registries);
# ACR's anonymous pull is tested instead.
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/images.sh"
. "$TESTS_LIB/acrfs.sh"

cleanup() {
	mnt_stop_all
	proxy_stop_all
	reg_stop_all
	ts_stop_all
}
tap_trap_cleanup cleanup

# Nothing from the user running the tests may leak in: a private HOME, no
# credential variables.
export HOME=$TEST_TMP/home
mkdir -p "$HOME"
unset DOCKER_CONFIG REGISTRY_AUTH_FILE XDG_RUNTIME_DIR XDG_CONFIG_HOME ACRFS_USERNAME ACRFS_PASSWORD
NULL_GUID=00000000-0000-0000-0000-000000000000
ADMIN_PW='Adm1n-S3cret-pw'
SP_ID=3f0c7d0e-5e4b-4d5e-9c1a-2b3c4d5e6f70
SP_PW='sp~Secret.Value_42'
PY=/usr/bin/python3
b64() { printf '%s' "$1" | base64 -w0; }
lsw() { ls "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
ALL='other secret ssongman'
TAGS='v1 v2'
ACR=${ACRFS_TEST_ACR:-0}

cat >"$TEST_TMP/ids.json" <<EOF
{"identities": [
  {"username": "admin", "password": "$ADMIN_PW", "catalog": true,
   "repositories": [{"pattern": "*", "actions": ["pull", "push", "delete"]}]},
  {"username": "pusher", "password": "pusherpw", "catalog": true,
   "repositories": [{"pattern": "*", "actions": ["pull", "push"]}]},
  {"username": "reader", "password": "readerpw", "catalog": true,
   "repositories": [{"pattern": "ssongman/*", "actions": ["pull"]},
                    {"pattern": "other", "actions": ["pull"]}]},
  {"username": "nocat", "password": "nocatpw", "catalog": false,
   "repositories": [{"pattern": "*", "actions": ["pull"]}]},
  {"username": "$SP_ID", "password": "$SP_PW", "catalog": true,
   "repositories": [{"pattern": "*", "actions": ["pull"]}]}
 ],
 "aad_tokens": {"aad-token-admin": "admin",
                "aad-token-reader": {"identity": "reader", "tenant": "t-1"}}}
EOF
# tags_re REPO: the requests that list REPO's tags (ACR: /acr/v1/<r>/_tags first).
tags_re() { printf 'GET /(v2/%s/tags/list|acr/v1/%s/_tags)' "$1" "$1"; }
if [ "$ACR" = 1 ]; then
	$PY -c 'import json, sys
c = json.load(open(sys.argv[1]))
for i in c["identities"]:
    for r in i["repositories"]:
        r["actions"] += ["metadata_read"] + (["metadata_write"] if "delete" in r["actions"] else [])
json.dump(c, open(sys.argv[1], "w"))' "$TEST_TMP/ids.json" || exit 1
	reg_start tok --acr-config "$TEST_TMP/ids.json" || exit 1
	# The emulator is the token service: the same log, token list and counters
	# (/_acremu/stats), its control endpoint for the token knobs.
	TS_a_URL=$ACR_tok_URL TS_a_REALM=$ACR_tok_REALM TS_a_SERVICE=$ACR_tok_SERVICE
	TS_a_LOG=$ACR_tok_TSLOG TS_a_TOKENS=$ACR_tok_TOKENS
	ts_stat() {
		curl -sS "$ACR_tok_URL/_acremu/stats" | $PY -c 'import json, sys
print(json.load(sys.stdin).get(sys.argv[1], 0))' "$2"
	}
	ts_control() { # tokenserver's keys; ACR always answers in its own dialect
		acremu_control tok "$($PY -c 'import json, sys
c = json.loads(sys.argv[1])
c.pop("acr_style", None)
if "ttl" in c:
    c["token_ttl"] = c.pop("ttl")
print(json.dumps(c))' "$2")" >/dev/null
	}
	# From here on every mount chooses its credentials itself (acrfs.sh would add the
	# emulator's admin): that is what this script tests.
	export ACRFS_TEST_ACR=0
else
	ts_start a "$TEST_TMP/ids.json" || exit 1
	reg_start tok --token "$TS_a_REALM" "$TS_a_ISSUER" "$TS_a_SERVICE" "$TS_a_ROOT" || exit 1
fi
R=$REG_tok_URL
H=$REG_tok_HOST
img_build_simple "$TEST_TMP/oci" v1 "hello.txt=hello" >/dev/null || exit 1
img_build_simple "$TEST_TMP/oci" v2 "hello.txt=hello2" >/dev/null || exit 1
for d in ssongman/userlist:v1 ssongman/userlist:v2 secret/db:v1 other:v1; do
	IMG_CREDS="admin:$ADMIN_PW" img_push "$TEST_TMP/oci:${d##*:}" "$R/$d" >/dev/null ||
		{ fail "push $d with token auth"; exit 1; }
done
check "anonymous cannot list the catalog (the registry really enforces tokens)" \
	test "$(curl -sS -o /dev/null -w '%{http_code}' "$R/v2/_catalog")" = 401

# Token requests the token service has answered (GET + POST + exchange).
tokreq() {
	curl -sS "$TS_a_URL/$([ "$ACR" = 1 ] && echo _acremu/)stats" | $PY -c 'import json, sys
d = json.load(sys.stdin)
print(d["GET /oauth2/token"] + d["POST /oauth2/token"] + d["POST /oauth2/exchange"])'
}
# Token service log lines written since ts_mark.
ts_mark() { TS_MARK=$(wc -l <"$TS_a_LOG"); }
ts_since() { tail -n +$((TS_MARK + 1)) "$TS_a_LOG"; }
# A refresh token for USER, as `az acr login --expose-token` prints one.
refresh_token_for() {
	curl -sS -X POST --data-urlencode grant_type=password --data-urlencode "username=$1" \
		--data-urlencode "password=$2" --data-urlencode access_type=offline \
		--data-urlencode "service=$TS_a_SERVICE" "$TS_a_REALM" |
		$PY -c 'import json, sys; print(json.load(sys.stdin)["refresh_token"])'
}

# expect_view NAME IDENTITY CATALOG: the mount MNT_<NAME> shows what IDENTITY may see,
# and the token service issued its tokens to IDENTITY.
expect_view() {
	local name=$1 who=$2 cat=$3 v="MNT_$1" M
	M=${!v}
	is "$(lsw "$M")" "$cat" "$name: / lists what $who may list"
	is "$(lsw "$M/ssongman/userlist")" "$TAGS" "$name: ssongman/userlist lists its tags"
	check "$name: the token service issued tokens to $who" grep -q "user=$who " <(ts_since)
}

# ---- a. -o username with ACRFS_PASSWORD / password_file / password_stdin ----
ts_mark
ACRFS_PASSWORD=$ADMIN_PW mnt_start admin "$R" -o username=admin || fail "mount -o username + ACRFS_PASSWORD"
expect_view admin admin "$ALL"
check "admin: reads ask for repository:<name>:pull only (no push/delete granted)" \
	test -z "$(ts_since | grep 'access=' | grep -E 'push|delete')"
check "admin: the catalog is asked with registry:catalog:*" \
	grep -q 'access=registry:catalog:\*' <(ts_since)
mnt_stop admin

# Service principal: appId/secret as Basic on the token GET, password from a file.
printf '%s\n' "$SP_PW" >"$TEST_TMP/sp.pw"
chmod 600 "$TEST_TMP/sp.pw"
ts_mark
mnt_start sp "$R" -o "username=$SP_ID" -o "password_file=$TEST_TMP/sp.pw" ||
	fail "mount service principal with password_file"
expect_view sp "$SP_ID" "$ALL"
check "sp: the token GET carried Basic credentials" grep -q "GET /oauth2/token 200 user=$SP_ID" <(ts_since)
mnt_stop sp

ts_mark
mnt_start stdin "$R" -o username=admin -o password_stdin <<<"$ADMIN_PW" ||
	fail "mount with password_stdin"
expect_view stdin admin "$ALL"
mnt_stop stdin

mkdir -p "$TEST_TMP/m"
out=$("$ACRFS" -o password_file="$TEST_TMP/sp.pw" "$R" "$TEST_TMP/m" 2>&1)
rc=$?
check "password_file without username is refused (exit $rc): $out" test "$rc" -ne 0
check "… saying why" grep -q "needs -o username" <<<"$out"

# ---- b. ACRFS_USERNAME + ACRFS_PASSWORD ----
ts_mark
ACRFS_USERNAME=pusher ACRFS_PASSWORD=pusherpw mnt_start env "$R" || fail "mount with ACRFS_USERNAME/PASSWORD"
expect_view env pusher "$ALL"
check "env: the source is logged (never the secret)" \
	grep -q "from environment ACRFS_USERNAME/ACRFS_PASSWORD" "$TEST_TMP/mnt-env.err"
mnt_stop env

# ---- ACR: az acr login --expose-token (null GUID + refresh token) ----
RT_ADMIN=$(refresh_token_for admin "$ADMIN_PW")
RT_READER=$(refresh_token_for reader readerpw)
check "the token service handed out refresh tokens" test -n "$RT_ADMIN" -a -n "$RT_READER"
before=$(ts_stat a refresh_token)
ts_mark
ACRFS_USERNAME=$NULL_GUID ACRFS_PASSWORD=$RT_ADMIN mnt_start expose "$R" ||
	fail "mount with the null GUID and a refresh token"
expect_view expose admin "$ALL"
after=$(ts_stat a refresh_token)
check "expose-token: tokens came from POST grant_type=refresh_token ($before → $after)" \
	test "$after" -gt "$before"
check "expose-token: no token GET with the refresh token as a password" \
	test -z "$(ts_since | grep 'GET /oauth2/token')"
mnt_stop expose

# ---- c. docker config: auth, identitytoken (az acr login), registrytoken ----
mkdir -p "$HOME/.docker"
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$H" "$(b64 "pusher:pusherpw")" >"$HOME/.docker/config.json"
ts_mark
mnt_start dauth "$R" || fail "mount with docker config auth"
expect_view dauth pusher "$ALL"
check "docker auth: the log names the config file" \
	grep -q "docker config $HOME/.docker/config.json" "$TEST_TMP/mnt-dauth.err"
mnt_stop dauth
rm -f "$HOME/.docker/config.json"

mkdir -p "$TEST_TMP/dcfg"
printf '{"auths": {"https://%s": {"auth": "%s", "identitytoken": "%s"}}}\n' "$H" \
	"$(b64 "$NULL_GUID:")" "$RT_READER" >"$TEST_TMP/dcfg/config.json"
ts_mark
DOCKER_CONFIG=$TEST_TMP/dcfg mnt_start ident "$R" || fail "mount with docker config identitytoken"
expect_view ident reader "$ALL"
check "identitytoken: POST grant_type=refresh_token was used" grep -q "POST /oauth2/token 200 user=reader" <(ts_since)
mnt_stop ident

REGTOK=$(curl -sS -u "admin:$ADMIN_PW" -G --data-urlencode "service=$TS_a_SERVICE" \
	--data-urlencode 'scope=registry:catalog:*' \
	--data-urlencode 'scope=repository:ssongman/userlist:pull' "$TS_a_REALM" |
	$PY -c 'import json, sys; d = json.load(sys.stdin); print(d.get("token") or d["access_token"])')
printf '{"auths": {"%s": {"registrytoken": "%s"}}}\n' "$H" "$REGTOK" >"$TEST_TMP/dcfg/config.json"
before=$(tokreq)
DOCKER_CONFIG=$TEST_TMP/dcfg mnt_start regtok "$R" || fail "mount with docker config registrytoken"
is "$(lsw "$MNT_regtok")" "$ALL" "registrytoken: / lists the catalog"
is "$(lsw "$MNT_regtok/ssongman/userlist")" "$TAGS" "registrytoken: ssongman/userlist lists its tags"
is "$(tokreq)" "$before" "registrytoken: used as is, no token requests"
mnt_stop regtok

# ---- c. credential helpers: credHelpers, credsStore, "credentials not found" ----
mkdir -p "$TEST_TMP/bin"
for h in acrfstest acrfsnone; do
	cat >"$TEST_TMP/bin/docker-credential-$h" <<EOF
#!/bin/sh
read -r server
echo "\$1 \$server" >>"$TEST_TMP/helper-$h.calls"
if [ "$h" = acrfstest ] && [ "\$1" = get ] && [ "\$server" = "$H" ]; then
	printf '{"ServerURL":"%s","Username":"pusher","Secret":"pusherpw"}\n' "\$server"
	exit 0
fi
echo "credentials not found in native keychain"
exit 1
EOF
	chmod +x "$TEST_TMP/bin/docker-credential-$h"
done
export PATH=$TEST_TMP/bin:$PATH
printf '{"credHelpers": {"%s": "acrfstest"}, "auths": {"%s": {"auth": "%s"}}}\n' "$H" "$H" \
	"$(b64 "nocat:nocatpw")" >"$TEST_TMP/dcfg/config.json"
ts_mark
DOCKER_CONFIG=$TEST_TMP/dcfg mnt_start helper "$R" || fail "mount with credHelpers"
expect_view helper pusher "$ALL"
is "$(cat "$TEST_TMP/helper-acrfstest.calls")" "get $H" "credHelpers: the helper was asked 'get' for $H"
mnt_stop helper

printf '{"credsStore": "acrfstest"}\n' >"$TEST_TMP/dcfg/config.json"
ts_mark
DOCKER_CONFIG=$TEST_TMP/dcfg mnt_start store "$R" || fail "mount with credsStore"
expect_view store pusher "$ALL"
mnt_stop store

printf '{"credsStore": "acrfsnone"}\n' >"$TEST_TMP/dcfg/config.json"
ts_mark
DOCKER_CONFIG=$TEST_TMP/dcfg mnt_start none "$R" || fail "credsStore without credentials: anonymous mount"
check "credsStore 'credentials not found': the helper was asked" test -s "$TEST_TMP/helper-acrfsnone.calls"
check "… and acrfs went on anonymously" grep -q "anonymous" "$TEST_TMP/mnt-none.err"
is "$(lsw "$MNT_none")" "" "anonymous: / lists nothing (no catalog right)"
check "anonymous: ssongman/userlist is Permission denied" \
	grep -q "Permission denied" <<<"$(lsw "$MNT_none/ssongman/userlist")"
check "anonymous: the token service saw anonymous requests" grep -q "GET /oauth2/token 200 user=- " <(ts_since)
mnt_stop none

if [ "$ACR" = 1 ]; then
	# ACR's anonymous pull (az acr update --anonymous-pull-enabled): every repository
	# may be pulled without credentials, the catalog still may not be listed. The
	# emulator restarts with it (same keys and ports), and again without it.
	cp "$TEST_TMP/ids.json" "$TEST_TMP/ids-noanon.json"
	$PY -c 'import json, sys
c = json.load(open(sys.argv[1]))
c["anonymous"] = {"catalog": False, "repositories": [{"pattern": "*", "actions": ["pull"]}]}
json.dump(c, open(sys.argv[2], "w"))' "$TEST_TMP/ids.json" "$ACR_tok_DIR/config.json"
	acremu_restart tok || fail "restart the emulator with anonymous pull"
	printf '{"credsStore": "acrfsnone"}\n' >"$TEST_TMP/dcfg/config.json"
	ts_mark
	DOCKER_CONFIG=$TEST_TMP/dcfg mnt_start anon "$R" || fail "ACR anonymous pull: mount"
	is "$(lsw "$MNT_anon")" "" "ACR anonymous pull: / lists nothing (no catalog right)"
	is "$(lsw "$MNT_anon/ssongman/userlist")" "$TAGS" "ACR anonymous pull: ssongman/userlist lists its tags"
	is "$(cat "$MNT_anon/secret/db/v1/rootfs/hello.txt" 2>&1)" "hello" \
		"ACR anonymous pull: secret/db/v1's files are read"
	check "ACR anonymous pull: tokens issued to anonymous only" \
		test -z "$(ts_since | grep 'user=' | grep -v 'user=- ')"
	mnt_stop anon
	cp "$TEST_TMP/ids-noanon.json" "$ACR_tok_DIR/config.json"
	acremu_restart tok || fail "restart the emulator without anonymous pull"
fi

printf '{"credsStore": "acrfsnone", "auths": {"%s": {"auth": "%s"}}}\n' "$H" \
	"$(b64 "pusher:pusherpw")" >"$TEST_TMP/dcfg/config.json"
ts_mark
DOCKER_CONFIG=$TEST_TMP/dcfg mnt_start storeauths "$R" || fail "credsStore not found, then auths"
expect_view storeauths pusher "$ALL"
mnt_stop storeauths

# ---- d. podman auth.json (REGISTRY_AUTH_FILE); no-catalog identity ----
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$H" "$(b64 "nocat:nocatpw")" >"$TEST_TMP/auth.json"
ts_mark
REGISTRY_AUTH_FILE=$TEST_TMP/auth.json mnt_start podman "$R" || fail "mount with podman auth.json"
is "$(lsw "$MNT_podman")" "" "no-catalog identity: / lists nothing"
is "$(lsw "$MNT_podman/ssongman/userlist")" "$TAGS" "no-catalog identity: ssongman/userlist still lists its tags"
is "$(lsw "$MNT_podman/secret/db")" "v1" "no-catalog identity: secret/db reached by path"
check "podman: tokens were issued to nocat" grep -q "user=nocat " <(ts_since)
check "podman: the log names REGISTRY_AUTH_FILE's file" grep -q "$TEST_TMP/auth.json" "$TEST_TMP/mnt-podman.err"
mnt_stop podman

# ---- pull-only identity: EACCES where it may not read ----
ts_mark
ACRFS_PASSWORD=readerpw mnt_start reader "$R" -o username=reader || fail "mount reader"
expect_view reader reader "$ALL"
is "$(lsw "$MNT_reader/other")" "v1" "pull-only: other lists its tag"
out=$(lsw "$MNT_reader/secret/db")
check "pull-only: secret/db is Permission denied (EACCES): $out" grep -q "Permission denied" <<<"$out"
check "pull-only: … not an I/O error" test -z "$(grep -i "input/output" <<<"$out")"
out=$(stat "$MNT_reader/secret/db/v1" 2>&1)
check "pull-only: stat secret/db/v1 (a tag it may not read) is Permission denied: $out" \
	grep -q "Permission denied" <<<"$out"
mnt_stop reader

# ---- ACR: Azure AD access token exchanged at /oauth2/exchange ----
# The exchange goes to the registry's own origin only (as ACR serves it): a proxy puts
# the token service's /oauth2/ on the registry's origin.
proxy_start aad "$R" --route "/oauth2/=$TS_a_URL" || fail "proxy for the registry's /oauth2/"
RA=$PROXY_aad_URL
printf 'aad-token-admin\n' >"$TEST_TMP/aad-admin"
printf 'aad-token-reader\n' >"$TEST_TMP/aad-reader"
chmod 600 "$TEST_TMP/aad-admin" "$TEST_TMP/aad-reader"
before=$(ts_stat a "POST /oauth2/exchange")
ts_mark
mnt_start aad "$RA" -o "aad_token_file=$TEST_TMP/aad-admin" || fail "mount with aad_token_file"
expect_view aad admin "$ALL"
is "$(ts_stat a "POST /oauth2/exchange")" "$((before + 1))" "aad: exchanged once for all scopes"
check "aad: then POST grant_type=refresh_token" grep -q "POST /oauth2/token 200 user=admin" <(ts_since)
mnt_stop aad
ts_mark
mnt_start aadt "$RA" -o "aad_token_file=$TEST_TMP/aad-reader" -o tenant=t-1 ||
	fail "mount with aad_token_file and tenant"
expect_view aadt reader "$ALL"
mnt_stop aadt
before=$(ts_stat a "POST /oauth2/exchange")
out=$("$ACRFS" -o "aad_token_file=$TEST_TMP/aad-reader" -o tenant=t-2 "$RA" "$TEST_TMP/m" 2>&1)
rc=$?
is "$(ts_stat a "POST /oauth2/exchange")" "$((before + 1))" "aad with the wrong tenant: one exchange attempt, no retry"
check "aad with the wrong tenant fails the mount (exit $rc)" test "$rc" -ne 0
check "… naming the exchange: $out" grep -q "Azure AD token (from aad_token_file.*HTTP 401 from $RA/oauth2/exchange" <<<"$out"

# ---- wrong credentials fail the mount, clearly, without a retry loop ----
before=$(tokreq)
out=$(ACRFS_PASSWORD=wrong-pw "$ACRFS" -o username=admin "$R" "$TEST_TMP/m" 2>&1)
rc=$?
after=$(tokreq)
check "wrong password: non-zero exit ($rc)" test "$rc" -ne 0
check "… a clear message: $out" \
	grep -q "authentication failed for user 'admin' (from -o username, password from \$ACRFS_PASSWORD): HTTP 401 from $TS_a_REALM" <<<"$out"
check "… no mount" test ! "$(is_mounted "$TEST_TMP/m" && echo yes)"
check "… at most 2 token requests ($((after - before)))" test "$((after - before))" -le 2 -a "$((after - before))" -ge 1
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$H" "$(b64 "pusher:nope")" >"$HOME/.docker/config.json"
before=$(tokreq)
out=$("$ACRFS" "$R" "$TEST_TMP/m" 2>&1)
rc=$?
after=$(tokreq)
check "wrong docker config password: non-zero exit ($rc)" test "$rc" -ne 0
check "… names the user and the config file: $out" \
	grep -q "authentication failed for user 'pusher' (from docker config $HOME/.docker/config.json" <<<"$out"
check "… at most 2 token requests ($((after - before)))" test "$((after - before))" -le 2
rm -f "$HOME/.docker/config.json"
out=$(ACRFS_USERNAME=$NULL_GUID ACRFS_PASSWORD=not-a-refresh-token "$ACRFS" "$R" "$TEST_TMP/m" 2>&1)
rc=$?
check "bad refresh token: non-zero exit ($rc), clear message: $out" \
	grep -q "authentication failed for user '$NULL_GUID'.*HTTP 401 from $TS_a_REALM" <<<"$out"
check "… no mount" test ! "$(is_mounted "$TEST_TMP/m" && echo yes)"

# ---- tokens are cached per scope while valid (docker and ACR reply styles) ----
styles='docker acr'
if [ "$ACR" = 1 ]; then
	skip "docker-style token replies (token, expires_in): cached per scope" \
		"ACR: its token service answers only in ACR's dialect"
	styles=acr
fi
for style in $styles; do
	[ "$style" = acr ] && ts_control a '{"acr_style": true}'
	ACRFS_PASSWORD=$ADMIN_PW mnt_start "c$style" "$R" -o username=admin -o ttl=0 || fail "mount c$style"
	v="MNT_c$style"
	M=${!v}
	lsw "$M" >/dev/null
	lsw "$M/ssongman/userlist" >/dev/null
	before=$(tokreq)
	regs=$(reg_count_requests tok "$(tags_re ssongman/userlist)")
	bad=0
	for _ in 1 2 3 4 5; do
		[ "$(lsw "$M")" = "$ALL" ] || bad=$((bad + 1))
		[ "$(lsw "$M/ssongman/userlist")" = "$TAGS" ] || bad=$((bad + 1))
	done
	is "$bad" 0 "$style replies: 10 listings succeed"
	regs2=$(reg_count_requests tok "$(tags_re ssongman/userlist)")
	check "$style replies: with ttl=0 every listing asked the registry ($regs → $regs2)" \
		test "$((regs2 - regs))" -ge 5
	is "$(tokreq)" "$before" "$style replies: no new token requests while tokens are valid"
	mnt_stop "c$style"
done
ts_control a '{"acr_style": false}'

# ---- tokens expiring every 3 s while trees are listed and files read for 15 s ----
# ttl=0: every listing and every look into a tag asks the registry again (tags lists,
# manifest GETs); cache_max=0 keeps no blob copy, so first reads are ranged blob GETs.
ts_control a '{"ttl": 3, "acr_style": true}'
ACRFS_PASSWORD=$ADMIN_PW mnt_start exp "$R" -o username=admin -o ttl=0 -o cache_max=0 ||
	fail "mount exp"
before=$(ts_stat a issued)
bad=0 n=0 reads=0
U=$MNT_exp/ssongman/userlist
end=$((SECONDS + 15))
while [ "$SECONDS" -lt "$end" ]; do
	[ "$(lsw "$MNT_exp")" = "$ALL" ] || bad=$((bad + 1))
	[ "$(lsw "$U")" = "$TAGS" ] || bad=$((bad + 1))
	[ "$(lsw "$MNT_exp/other")" = "v1" ] || bad=$((bad + 1))
	[ "$(lsw "$U/v2")" = "config.json layers manifest.json referrers rootfs" ] || bad=$((bad + 1))
	[ "$(cat "$U/v1/rootfs/hello.txt" 2>&1)" = hello ] || bad=$((bad + 1))
	[ "$(cat "$U/v2/layers/0/hello.txt" 2>&1)" = hello2 ] || bad=$((bad + 1))
	cmp -s "$U/v1/config.json" "$MNT_exp/other/v1/config.json" || bad=$((bad + 1))
	n=$((n + 4)) reads=$((reads + 3))
	sleep 0.2
done
after=$(ts_stat a issued)
is "$bad" 0 "3 s tokens: none of $n listings and $reads file reads in 15 s failed"
check "3 s tokens: re-issued as they expired ($((after - before)) issued; ≥ 12 expected for 3 scopes)" \
	test "$((after - before))" -ge 12
mnt_stop exp
ts_control a '{"ttl": 300, "acr_style": false}'

# ---- a token the registry refuses (401 invalid_token): refresh once, never loop ----
ACRFS_PASSWORD=$ADMIN_PW mnt_start_fg bad "$R" -o username=admin -o ttl=0 -d || fail "mount bad"
before=$(ts_stat a issued_untrusted)
ts_control a '{"bad_tokens": 1}'
is "$(lsw "$MNT_bad/other")" "v1" "an untrusted token: acrfs refreshes once and the listing succeeds"
is "$(ts_stat a issued_untrusted)" "$((before + 1))" "… the untrusted token was issued and used"
check "… the registry refused it with 401" grep -q "refused the token" "$TEST_TMP/mnt-bad.log"
ts_control a '{"bad_tokens": 1000}'
t0=$(tokreq)
r0=$(reg_count_requests tok "$(tags_re secret/db)")
out=$(lsw "$MNT_bad/secret/db")
t1=$(tokreq)
r1=$(reg_count_requests tok "$(tags_re secret/db)")
check "only untrusted tokens: the listing fails with EACCES: $out" grep -q "Permission denied" <<<"$out"
check "… after at most 2 token requests per scope ($((t1 - t0)) in all)" test "$((t1 - t0))" -le 4
check "… and at most 2 registry requests per attempt ($((r1 - r0)) for secret/db)" test "$((r1 - r0))" -le 4
sleep 2
is "$(tokreq)" "$t1" "… and nothing keeps asking afterwards"
ts_control a '{"bad_tokens": 0}'
is "$(lsw "$MNT_bad/secret/db")" "v1" "trusted tokens again: the listing recovers"
kill -TERM "$MNT_bad_PID"
mnt_wait_exit "$MNT_bad_PID"
MNT_NAMES=()

# ---- secrets never in logs, argv or on disk ----
AAD_TOKEN=aad-token-admin
ACRFS_PASSWORD=$ADMIN_PW mnt_start_fg s1 "$R" -o username=admin -o ttl=0 -d -o "cache_dir=$TEST_TMP/cache" ||
	fail "mount s1"
ACRFS_USERNAME=$NULL_GUID ACRFS_PASSWORD=$RT_ADMIN mnt_start_fg s2 "$R" -o ttl=0 -d || fail "mount s2"
mnt_start_fg s3 "$RA" -o "aad_token_file=$TEST_TMP/aad-admin" -o ttl=0 -d || fail "mount s3"
ts_control a '{"bad_tokens": 1}'
for m in "$MNT_s1" "$MNT_s2" "$MNT_s3"; do
	lsw "$m" "$m/ssongman/userlist" "$m/other" "$m/secret/db" >/dev/null
	# Look inside images too: the cache directory gets index files and blob copies.
	cat "$m/ssongman/userlist/v1/rootfs/hello.txt" "$m/other/v1/config.json" >/dev/null
done
out=$(ACRFS_PASSWORD=wrong-pw-xyzzy "$ACRFS" -f -d -o username=admin "$R" "$TEST_TMP/m" 2>&1)
printf '%s\n' "$out" >"$TEST_TMP/wrong.log"
ps_out=$(ps -ww -o args= -p "$MNT_s1_PID","$MNT_s2_PID","$MNT_s3_PID")
cmdlines=$(cat "/proc/$MNT_s1_PID/cmdline" "/proc/$MNT_s2_PID/cmdline" "/proc/$MNT_s3_PID/cmdline" | tr '\0' ' ')
for s in s1 s2 s3; do
	v="MNT_${s}_PID"
	kill -TERM "${!v}"
	mnt_wait_exit "${!v}"
done
MNT_NAMES=()
logs=("$TEST_TMP/mnt-s1.log" "$TEST_TMP/mnt-s2.log" "$TEST_TMP/mnt-s3.log" "$TEST_TMP/wrong.log")
check "the debug logs are not empty (they show token traffic)" grep -q "token for" "${logs[@]}"
leaks() {
	# $1: what, $2: the secret
	if grep -qF -- "$2" "${logs[@]}"; then
		fail "$1 appears in a log"
	else
		ok "$1 is in no log"
	fi
	if grep -qF -- "$2" <<<"$ps_out$cmdlines"; then
		fail "$1 appears in ps / cmdline"
	else
		ok "$1 is not in ps / cmdline"
	fi
}
leaks "the admin password" "$ADMIN_PW"
leaks "the wrong password" "wrong-pw-xyzzy"
leaks "the refresh token" "$RT_ADMIN"
leaks "the AAD token" "$AAD_TOKEN"
nt=0 leaked=0
while read -r tok; do
	[ -n "$tok" ] || continue
	nt=$((nt + 1))
	if grep -qF -e "$tok" -e "${tok##*.}" "${logs[@]}"; then
		leaked=$((leaked + 1))
	fi
done <"$TS_a_TOKENS"
check "tokens issued by the token service ($nt) never appear in a log, nor their signatures ($leaked did)" \
	test "$nt" -gt 0 -a "$leaked" -eq 0
check "no JWT-looking string (eyJ…) in any log" test -z "$(grep -h 'eyJ' "${logs[@]}")"
check "the cache directory holds index files and blob copies ($(find "$TEST_TMP/cache" -type f | wc -l) files)" \
	test "$(find "$TEST_TMP/cache/v1/index" "$TEST_TMP/cache/v1/blobs" -type f 2>/dev/null | wc -l)" -ge 2
check "nothing secret under the cache directory (password, refresh token, issued tokens)" \
	test -z "$(grep -rlF -e "$ADMIN_PW" -e "$RT_ADMIN" -f <(grep -v '^$' "$TS_a_TOKENS") "$TEST_TMP/cache")"
is "$(stat -c %a "$TEST_TMP/cache") $(find "$TEST_TMP/cache" -type d ! -perm 700 | wc -l) $(find "$TEST_TMP/cache" -type f ! -perm 600 | wc -l)" \
	"700 0 0" "the cache directory is 0700, its directories 0700 and its files 0600"

# ---- plain Basic: htpasswd (bcrypt) + TLS ----
if [ "$ACR" = 1 ]; then
	skip "plain Basic (htpasswd + TLS): mount, list, wrong password" \
		"ACR: always its token dialect (Basic only at /oauth2/token and as a data-plane shortcut); 30-auth tests it on distribution"
	tap_done
	exit 0
fi
htpasswd -Bbn basicuser 'B4sic-pw!' >"$TEST_TMP/htpasswd" 2>/dev/null || fail "htpasswd -B"
reg_start b --tls --htpasswd "$TEST_TMP/htpasswd" || exit 1
IMG_CREDS='basicuser:B4sic-pw!' img_push "$TEST_TMP/oci:v1" "$REG_b_URL/ssongman/userlist:v1" "$REG_b_CA" \
	>/dev/null || fail "push to the htpasswd registry"
ACRFS_PASSWORD='B4sic-pw!' mnt_start basic "$REG_b_HOST" -o username=basicuser -o "ca_file=$REG_b_CA" ||
	fail "mount the htpasswd + TLS registry"
is "$(lsw "$MNT_basic")" "ssongman" "htpasswd + TLS: / lists the catalog"
is "$(lsw "$MNT_basic/ssongman/userlist")" "v1" "htpasswd + TLS: ssongman/userlist lists its tag"
mnt_stop basic
n0=$(reg_count_requests b 'GET /v2/ ')
out=$(ACRFS_PASSWORD=wrong "$ACRFS" -o username=basicuser -o "ca_file=$REG_b_CA" "$REG_b_HOST" "$TEST_TMP/m" 2>&1)
rc=$?
n1=$(reg_count_requests b 'GET /v2/ ')
check "htpasswd, wrong password: non-zero exit ($rc)" test "$rc" -ne 0
check "… clear message: $out" \
	grep -q "authentication failed for user 'basicuser' (from -o username.*HTTP 401 from https://$REG_b_HOST/v2/" <<<"$out"
check "… 2 requests, no loop ($((n1 - n0)))" test "$((n1 - n0))" -le 2
check "… no mount" test ! "$(is_mounted "$TEST_TMP/m" && echo yes)"

tap_done
