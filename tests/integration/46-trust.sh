#!/usr/bin/env bash
# Issue 9 (network half): trust boundaries. The registry, its storage host and the
# network are untrusted; credentials stay with the registry's origin.
#   - a redirect from https to plain http is refused (a plain-http loopback registry
#     may still redirect to plain http);
#   - an upload Location on another origin gets no Authorization;
#   - the Azure AD exchange goes to the registry's own origin only;
#   - logs: storage URLs without their query (the SAS signature), registry-supplied
#     text with its control characters escaped;
#   - $ACRFS_PASSWORD is gone from the environment before a credential helper runs;
#   - rmdir's sibling check sees an index reaching the image through another index.
# (The storage host's 401 with a foreign realm is a row of 45-faults.sh.)
# shellcheck disable=SC2154 # REG_*, PROXY_*, MNT_*, TS_* are exported by the helpers
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/acrfs.sh"
. "$TESTS_LIB/faults.sh"
PY=/usr/bin/python3
T=$TEST_TMP
O=$T/o
mkdir -p -- "$O"
tap_trap_cleanup faults_cleanup

export HOME=$T/home
mkdir -p "$HOME"
unset DOCKER_CONFIG REGISTRY_AUTH_FILE XDG_RUNTIME_DIR XDG_CONFIG_HOME ACRFS_USERNAME ACRFS_PASSWORD
mkimage() { "$PY" "$TESTS_LIB/mkimage.py" "$@"; }

reg_start r || exit 1
URL=$REG_r_URL
cat >"$O/app.json" <<'EOF'
{"mtime": 1700000000, "layers": [
 {"compression": "gzip", "entries": [{"type": "file", "path": "hello.txt", "content": "hello\n"}]}
]}
EOF
cat >"$O/two.json" <<'EOF'
{"mtime": 1700000000, "layers": [
 {"compression": "gzip", "entries": [{"type": "file", "path": "two.txt", "content": "two\n"}]}
]}
EOF
mkimage build "$O/app.json" "$O/oci" --ref app >/dev/null &&
	mkimage build "$O/two.json" "$O/oci" --ref two >/dev/null &&
	mkimage push "$O/oci" app "$URL/app:v1" >/dev/null || {
	fail "build and push the test images"
	tap_done
	exit 1
}
CFGFILE=$(mkimage blob "$O/oci" app config)

# ---------------------------------------------------------------- https -> http
_reg_make_tls "$T/tls" || exit 1
proxy_start tls "$URL" --tls "$T/tls/server.crt" "$T/tls/server.key" --header-log "$T/hdr-tls.log" \
	--rule "^/v2/app/blobs/:redirect" || fail "proxy tls"
TLS_URL=https://127.0.0.1:$(sed -n 's/^READY port=//p' "$T/proxy-tls.out")
mount_fg tls "$TLS_URL" -o "ca_file=$T/tls/ca.crt" || fail "mount the https proxy"
rc=$(guarded "$O/tls.out" cat "$MNT_tls/app/v1/config.json")
check "https registry redirecting to plain http: EIO (rc $rc: $(errno_text "$O/tls.out.err"))" \
	grep -q 'Input/output error' "$O/tls.out.err"
is "$(proxy_count tls "GET /v2/app/blobs/.* -> 307")" 1 "… the registry did redirect"
is "$(grep -c '"listener": "storage"' "$T/hdr-tls.log")" 0 "… and the plain-http storage host got no request"
check "… the log says why" grep -q 'https to http downgrade' "$T/mnt-tls.log"
mnt_stop tls

proxy_start pl "$URL" --rule "^/v2/app/blobs/:redirect" || fail "proxy pl"
mount_fg pl "$PROXY_pl_URL" || fail "mount the plain proxy"
cmp_files "$MNT_pl/app/v1/config.json" "$CFGFILE" \
	"a plain-http loopback registry may redirect to plain http: right bytes"
check "… through the storage host" test "$(proxy_count pl 'GET storage:/v2/app/blobs/.* -> 200')" -ge 1
mnt_stop pl

# ---------------------------------------------------------------- upload elsewhere
if command -v htpasswd >/dev/null; then
	htpasswd -Bbn alice 'wonder-land-9' >"$T/htpasswd" 2>/dev/null
	reg_start h --htpasswd "$T/htpasswd" || fail "htpasswd registry"
	skopeo copy -q --dest-tls-verify=false --dest-creds alice:wonder-land-9 "oci:$O/oci:app" \
		"docker://$REG_h_HOST/src:v1" &&
		skopeo copy -q --dest-tls-verify=false --dest-creds alice:wonder-land-9 "oci:$O/oci:two" \
			"docker://$REG_h_HOST/dst:two" || fail "push to the htpasswd registry"
	# The registry will not mount across repositories and hands out upload sessions on
	# another origin (the proxy's storage host, which adds its own credentials).
	proxy_start up "$REG_h_URL" --storage-creds alice:wonder-land-9 --header-log "$T/hdr-up.log" \
		--rule "POST ^/v2/dst/blobs/uploads/:uploadaway" || fail "proxy up"
	ACRFS_PASSWORD=wonder-land-9 mount_fg up "$PROXY_up_URL" -o username=alice || fail "mount up"
	rc=$(guarded "$O/up.out" mv "$MNT_up/src/v1" "$MNT_up/dst/v1")
	is "$rc" 0 "mv across repositories, uploads on another origin: done ($(errno_text "$O/up.out.err"))"
	n=$(proxy_count up 'PUT storage:/v2/dst/blobs/uploads/.* -> 201')
	check "… the blobs were uploaded to the other origin ($n PUTs)" test "$n" -ge 1
	is "$(proxy_count up 'storage:.* auth=yes')" 0 "… none of them with the registry's Authorization"
	check "… while the registry's own requests carried it" \
		test "$(proxy_count up 'PUT /v2/dst/manifests/v1 -> 201 auth=yes')" = 1
	is "$(grep '"listener": "storage"' "$T/hdr-up.log" | grep -cF wonder-land-9)" 0 \
		"… and the password never reached the storage host"
	mnt_stop up
else
	skip "upload Location on another origin" "no htpasswd (apache2-utils)"
fi

# ---------------------------------------------------------------- AAD exchange
cat >"$T/ids.json" <<'EOF'
{"identities": [
  {"username": "admin", "password": "Adm1n-trust-pw", "catalog": true,
   "repositories": [{"pattern": "*", "actions": ["pull", "push", "delete"]}]}],
 "aad_tokens": {"aad-token-admin": "admin"}}
EOF
ts_start a "$T/ids.json" || exit 1
reg_start tok --token "$TS_a_REALM" "$TS_a_ISSUER" "$TS_a_SERVICE" "$TS_a_ROOT" || exit 1
skopeo copy -q --dest-tls-verify=false --dest-creds admin:Adm1n-trust-pw "oci:$O/oci:app" \
	"docker://$REG_tok_HOST/app:v1" || fail "push to the token registry"
printf 'aad-token-admin\n' >"$T/aad"
chmod 600 "$T/aad"
exchanges() { ts_stat a "POST /oauth2/exchange"; }
before=$(exchanges)
mkdir -p "$T/m"
rc=$(guarded "$O/aad.out" "$ACRFS" -o "aad_token_file=$T/aad,cache_dir=$T/cache-aad" "$REG_tok_URL" "$T/m")
out=$(cat "$O/aad.out" "$O/aad.out.err")
is "$(exchanges)" "$before" "the token realm on another origin gets no Azure AD token"
check "… the exchange was asked of the registry itself, which has none here (rc $rc)" \
	grep -q "HTTP 404 from $REG_tok_URL/oauth2/exchange" <<<"$out"
is_mounted "$T/m" && fusermount3 -u "$T/m"
proxy_start aad "$REG_tok_URL" --route "/oauth2/=$TS_a_URL" || fail "proxy aad"
mount_fg aad "$PROXY_aad_URL" -o "aad_token_file=$T/aad" || fail "mount aad through the registry's origin"
is "$(ls "$MNT_aad/app" 2>&1)" v1 "with the token service on the registry's origin (as on ACR): the mount works"
is "$(exchanges)" "$((before + 1))" "… after one exchange, at the registry's origin"
check "… which the proxy saw" test "$(proxy_count aad 'POST /oauth2/exchange -> 200')" = 1
mnt_stop aad

# ---------------------------------------------------------------- logs
# The layer streams once through the storage host (its URL is remembered); with no
# local copy (cache_max=0) the file is then read by Range from that URL, which answers
# 429 once: the retry is logged, at debug level, with the storage URL.
proxy_start lg "$URL" --rule "^/v2/app/blobs/:redirect" --rule "^storage:/v2/app/blobs/:pass:1" \
	--rule "^storage:/v2/app/blobs/:429r1:1" --rule "^/v2/ctl/tags/list:ctlmsg" || fail "proxy lg"
mount_fg lg "$PROXY_lg_URL" -d -o cache_max=0 || fail "mount lg (debug log)"
ls "$MNT_lg/app/v1/rootfs" >/dev/null
is "$(cat "$MNT_lg/app/v1/rootfs/hello.txt" 2>&1)" hello \
	"a remembered storage URL answering 429 once: retried, right bytes"
check "… the debug log shows the retry of the storage URL" \
	grep -q "GET http://127.0.0.1:$(proxy_port lg STORAGE)/v2/app/blobs/.*retrying" "$T/mnt-lg.log"
is "$(grep -c 's3cr3t' "$T/mnt-lg.log")" 0 "… and nowhere its query (the SAS signature)"
ls "$MNT_lg/ctl" >/dev/null 2>&1
check "a registry error message with control characters is logged" \
	grep -q 'NAME_INVALID (bad \\x1b\[31mred' "$T/mnt-lg.log"
is "$(grep -c '^FORGED' "$T/mnt-lg.log")" 0 "… escaped: its newline forges no log line"
is "$(grep -c $'\x1b' "$T/mnt-lg.log")" 0 "… and no raw ESC reaches the log"
mnt_stop lg

# ---------------------------------------------------------------- environment
mkdir -p "$T/bin" "$T/dcfg"
cat >"$T/bin/docker-credential-envdump" <<EOF
#!/bin/sh
env >"$T/helper.env"
echo "credentials not found in native keychain"
exit 1
EOF
chmod +x "$T/bin/docker-credential-envdump"
printf '{"credsStore": "envdump"}\n' >"$T/dcfg/config.json"
PW='env-Secret-pw-123'
PATH=$T/bin:$PATH DOCKER_CONFIG=$T/dcfg ACRFS_PASSWORD=$PW mount_fg env "$URL" || fail "mount env"
check "the credential helper ran" test -s "$T/helper.env"
is "$(grep -c '^ACRFS_PASSWORD=' "$T/helper.env")" 0 "… without ACRFS_PASSWORD in its environment"
is "$(grep -cF -- "$PW" "$T/helper.env")" 0 "… nor the password anywhere in it"
is "$(tr '\0' '\n' <"/proc/$MNT_env_PID/environ" | grep -cF -- "$PW")" 0 \
	"… and /proc/PID/environ of acrfs no longer shows it"
is "$(ls "$MNT_env/app" 2>&1)" v1 "… the mount works (anonymously)"
mnt_stop env

# ---------------------------------------------------------------- nested index
# outer -> index I2 -> index I1 -> image D (= v1). Removing v1 must keep D.
D=$(reg_digest r app v1)
DSIZE=$(reg_curl r -H 'Accept: application/vnd.oci.image.manifest.v1+json' /v2/app/manifests/v1 | wc -c)
IDX=application/vnd.oci.image.index.v1+json
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"os":"linux","architecture":"amd64"}}]}' \
	"$IDX" "$D" "$DSIZE" >"$O/i1.json"
I1=sha256:$(sha256sum <"$O/i1.json" | cut -d' ' -f1)
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%s}]}' \
	"$IDX" "$IDX" "$I1" "$(wc -c <"$O/i1.json")" >"$O/i2.json"
check "PUT index I1 (lists v1's image) by digest" reg_curl r -f -X PUT -H "Content-Type: $IDX" \
	--data-binary "@$O/i1.json" "/v2/app/manifests/$I1"
check "PUT index I2 (lists I1) as tag outer" reg_curl r -f -X PUT -H "Content-Type: $IDX" \
	--data-binary "@$O/i2.json" /v2/app/manifests/outer
mount_fg nx "$URL" || fail "mount nx"
rc=$(guarded "$O/nx.out" rmdir "$MNT_nx/app/v1")
is "$rc" 0 "rmdir app/v1 ($(errno_text "$O/nx.out.err"))"
is "$(reg_tags r app | tr '\n' ' ')" "outer " "… the tag v1 is gone, outer stays"
code() { reg_curl r -o /dev/null -w '%{http_code}' -H "Accept: $1" "/v2/app/manifests/$2"; }
is "$(code application/vnd.oci.image.manifest.v1+json "$D")" 200 \
	"… and v1's image, which outer reaches through I2 -> I1, is still there"
is "$(code "$IDX" "$I1")" 200 "… as is I1"
check "… the log says why only the tag went" grep -q 'is an index reaching it' "$T/mnt-nx.log"
mnt_stop nx

tap_done
