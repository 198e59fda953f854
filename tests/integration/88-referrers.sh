#!/usr/bin/env bash
# test-weight: 2 (tests/run.sh starts heavier scripts first)
# Issue 10 point 6: every view root (tag, digest, platform) has a referrers/ directory
# listing one directory per referrer manifest (signatures, SBOMs), named by its digest,
# in the registry's order; each is an ordinary view (manifest.json, config.json,
# layers/, ...) with user.acrfs.artifact_type and user.acrfs.annotation.<key> xattrs.
#
# 1. distribution 2.8 (no referrers API: 404): the tag schema. What was pushed, and
#    accepted by distribution 2.8.2: an image app:v1; two OCI 1.1 artifacts pushed by
#    digest — image manifests (application/vnd.oci.image.manifest.v1+json) with
#    "subject" = app:v1 and annotations: a "signature" (artifactType
#    application/vnd.cncf.notary.signature, the empty config
#    application/vnd.oci.empty.v1+json "{}", one application/jose+json blob) and an
#    "sbom" (no artifactType field: its config's media type
#    application/vnd.example.sbom.config.v1+json is the artifact type, a JSON config,
#    one application/spdx+json blob); the OCI index listing both at the tag
#    sha256-<hex of app:v1>. distribution ignores the fields it does not know
#    (artifactType, subject), so a hostile index (artifactType: 5) is accepted too.
# 2. the ACR emulator (tests/lib/acremu.py: GET /v2/<r>/referrers/<d>, pages of 100):
#    the API, one request per page, never the tag; with "referrers": false it answers
#    404 like distribution and a new mount falls back to the tag.
# Requests are counted in the registry's access log / the emulator's request log.
# shellcheck disable=SC2154 # REG_*, ACR_*, MNT_* are exported by the helpers
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/acremu.sh"
. "$TESTS_LIB/acrfs.sh"
PY=/usr/bin/python3
MK=$TESTS_LIB/mkimage.py
# This script picks its registries itself (distribution, then the emulator).
unset ACRFS_TEST_ACR

cleanup() {
	mnt_stop_all
	acremu_stop_all
	reg_stop_all
}
tap_trap_cleanup cleanup
export HOME=$TEST_TMP/home
mkdir -p "$HOME"
unset DOCKER_CONFIG REGISTRY_AUTH_FILE XDG_RUNTIME_DIR XDG_CONFIG_HOME ACRFS_USERNAME ACRFS_PASSWORD

lsw() { ls "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
xattr_of() { # PATH NAME → the attribute's value, or the error's text
	$PY -c 'import os, sys
try:
    sys.stdout.write(os.getxattr(sys.argv[1], sys.argv[2]).decode())
except OSError as e:
    print(e.strerror)' "$1" "$2"
}
xattr_names() { # PATH → the user.acrfs.* names, sorted, space-separated
	$PY -c 'import os, sys; print(" ".join(sorted(os.listxattr(sys.argv[1]))))' "$1" 2>&1
}
# The names of a directory in readdir order (ls -U would do; python says it plainly).
readdir_order() {
	$PY -c 'import os, sys; print(" ".join(os.listdir(sys.argv[1])))' "$1" 2>&1
}
hex() { echo "${1#sha256:}"; }

O=$TEST_TMP/oci
cat >"$TEST_TMP/img.json" <<'EOF'
{"layers": [{"entries": [{"type": "file", "path": "hello.txt", "content": "hi\n"}]}]}
EOF
$MK build "$TEST_TMP/img.json" "$O" --ref app >/dev/null || exit 1
S=$(/usr/bin/python3 -c 'import json, sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    if m["annotations"]["org.opencontainers.image.ref.name"] == "app": print(m["digest"])' \
	"$O/index.json")
cat >"$TEST_TMP/other.json" <<'EOF'
{"layers": [{"entries": [{"type": "file", "path": "other.txt", "content": "other\n"}]}]}
EOF
$MK build "$TEST_TMP/other.json" "$O" --ref other >/dev/null || exit 1
SIG=$($MK artifact "$O" sig app --artifact-type application/vnd.cncf.notary.signature \
	--annotation 'io.cncf.notary.x509chain.thumbprint#S256=["ab12"]' \
	--annotation 'org.opencontainers.image.created=2026-12-01T00:00:00Z' \
	--blob-type application/jose+json --blob '{"payload":"sig"}') || exit 1
SBOM=$($MK artifact "$O" sbom app --config-type application/vnd.example.sbom.config.v1+json \
	--config '{"tool":"mk"}' --annotation org.example.format=spdx \
	--annotation "$(printf 'k%.0s' {1..240})=a key too long for an xattr name" \
	--blob-type application/spdx+json --blob '{"spdxVersion":"SPDX-2.3"}') || exit 1
$MK referrers "$O" refs sig sbom >/dev/null || exit 1

# ---------------------------------------------------------------- 1. distribution 2.8
reg_start d || {
	fail "distribution starts"
	exit 1
}
U=$REG_d_URL
$MK index "$O" multi app other --no-attestation >/dev/null || exit 1
$MK push "$O" app "$U/app:v1" >/dev/null &&
	$MK push "$O" other "$U/app:none" >/dev/null &&
	$MK push "$O" multi "$U/app:multi" >/dev/null &&
	$MK push "$O" refs "$U/app:sha256-$(hex "$S")" >/dev/null || {
	fail "push the image, its artifacts and the referrers index"
	exit 1
}
# A hostile index for the subject "other" under a second repository: an artifactType
# that is not a string (distribution 2.8 does not read the field, so it takes it).
$MK push "$O" other "$U/bad:v1" >/dev/null && $MK push "$O" sig "$U/bad" --by-digest >/dev/null || {
	fail "push bad:v1"
	exit 1
}
OTHER=$(reg_digest d bad v1)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,"artifactType":5}]}' \
	"$SIG" "$(stat -c %s "$O/blobs/sha256/$(hex "$SIG")")" >"$TEST_TMP/bad.json"
code=$(reg_curl d -o /dev/null -w '%{http_code}' -X PUT \
	-H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary "@$TEST_TMP/bad.json" \
	"/v2/bad/manifests/sha256-$(hex "$OTHER")")
is "$code" 201 "distribution 2.8 takes an index whose artifactType is a number"
is "$(reg_curl d -o /dev/null -w '%{http_code}' "/v2/app/referrers/$S")" 404 \
	"distribution 2.8 has no referrers API (404)"

mnt_start_fg d "$U" -o ttl=600 || {
	fail "mount distribution"
	exit 1
}
M=$MNT_d
refreqs() { reg_count_requests d '"GET /v2/[^ ]*(/referrers/|/manifests/sha256-)'; }

n0=$(refreqs)
is "$(lsw "$M/app")" "multi none sha256-$(hex "$S") v1" "ls <repo> shows the tags (the referrers tag too)"
is "$(lsw "$M/app/v1")" "config.json layers manifest.json referrers rootfs" \
	"a tag directory has referrers/"
is "$(refreqs)" "$n0" "… listing the repository and the tag fetched no referrers"

is "$(readdir_order "$M/app/v1/referrers")" "$SIG $SBOM" \
	"ls referrers: one directory per referrer, named by digest, in the index's order"
is "$(reg_requests d '"GET /v2/[^ ]*(/referrers/|/manifests/sha256-)' | tail -n +$((n0 + 1)) |
	sed -E 's/.*"(GET [^ ]*) HTTP[^"]*" ([0-9]+) .*/\1 \2/')" \
	"GET /v2/app/referrers/$S 404
GET /v2/app/manifests/sha256-$(hex "$S") 200" \
	"… the API answered 404, then the sha256-<hex> tag was read"
n1=$(refreqs)
readdir_order "$M/app/v1/referrers" >/dev/null
ls -l "$M/app/v1/referrers" >/dev/null
is "$(refreqs)" "$n1" "ls referrers again within the TTL: no request"

R=$M/app/v1/referrers
for d in "$SIG" "$SBOM"; do
	is "$(sha256sum <"$R/$d/manifest.json" | cut -d' ' -f1)" "$(hex "$d")" \
		"manifest.json of $(hex "$d" | cut -c1-12) hashes to its directory name"
	cmp_files "$R/$d/manifest.json" "$O/blobs/sha256/$(hex "$d")" \
		"… and is the pushed bytes"
done
is "$(lsw "$R/$SIG")" "config.json layers manifest.json referrers rootfs" \
	"a referrer directory is a view"
is "$(xattr_names "$R/$SIG")" \
	"user.acrfs.annotation.io.cncf.notary.x509chain.thumbprint#S256 user.acrfs.annotation.org.opencontainers.image.created user.acrfs.artifact_type user.acrfs.digest user.acrfs.media_type" \
	"listxattr: artifact type, annotations, digest, media type"
is "$(xattr_of "$R/$SIG" user.acrfs.artifact_type)" "application/vnd.cncf.notary.signature" \
	"the signature's artifact type (its artifactType)"
is "$(xattr_of "$R/$SIG" 'user.acrfs.annotation.io.cncf.notary.x509chain.thumbprint#S256')" \
	'["ab12"]' "… an annotation"
is "$(xattr_of "$R/$SIG" user.acrfs.digest)" "$SIG" "… its digest"
is "$(xattr_of "$R/$SBOM" user.acrfs.artifact_type)" \
	"application/vnd.example.sbom.config.v1+json" \
	"the sbom's artifact type (no artifactType: its config's media type)"
is "$(xattr_of "$R/$SBOM" user.acrfs.annotation.org.example.format)" "spdx" "… its annotation"
is "$(xattr_names "$R/$SBOM")" \
	"user.acrfs.annotation.org.example.format user.acrfs.artifact_type user.acrfs.digest user.acrfs.media_type" \
	"… an annotation key too long for an xattr name (240 bytes) is left out"
out=$(xattr_of "$R/$SBOM" user.acrfs.annotation.nope)
check "… an annotation it does not have: no data ($out)" grep -q "No data" <<<"$out"
is "$(cat "$R/$SIG/config.json")" "{}" "the signature's config.json is the empty config"
is "$(cat "$R/$SBOM/config.json")" '{"tool":"mk"}' "the sbom's config.json is its JSON config"
is "$(xattr_of "$R/$SBOM/layers/0" user.acrfs.media_type)" "application/spdx+json" \
	"layers/0 names the blob's media type"
out=$(ls -A "$R/$SBOM/layers/0" 2>&1)
is "$out|$?" "|0" "… a blob that is not a tar is an empty directory (nothing invented)"
check "… and the log says why" grep -q "unsupported media type \"application/spdx+json\"" \
	"$TEST_TMP/mnt-d.log"
out=$(ls "$R/$SBOM/rootfs" 2>&1)
check "rootfs of an artifact is refused: $out" grep -q "Operation not supported" <<<"$out"
is "$(lsw "$R/$SIG/referrers")" "" "a referrer's own referrers/ (none): empty"
out=$(ls "$R/sha256:$(printf '%064d' 7)" 2>&1)
check "a digest that is not a referrer: $out" grep -q "No such file" <<<"$out"
out=$(ls "$R/not-a-digest" 2>&1)
check "a name that is not a digest: $out" grep -q "No such file" <<<"$out"

# The same subject by digest.
is "$(readdir_order "$M/app/$S/referrers")" "$SIG $SBOM" "the digest directory has them too"

n2=$(refreqs)
out=$(ls -A "$M/app/none/referrers" 2>&1)
is "$out|$?" "|0" "a subject without referrers: an empty directory"
is "$(reg_requests d '"GET /v2/[^ ]*(/referrers/|/manifests/sha256-)' | tail -n +$((n2 + 1)) |
	sed -E 's/.*"(GET [^ ]*) HTTP[^"]*" ([0-9]+) .*/\1 \2/')" \
	"GET /v2/app/manifests/sha256-$(hex "$OTHER") 404" \
	"… one request: the tag (404); the API is not asked again after its 404"

out=$(ls "$M/bad/v1/referrers" 2>&1)
is "$?" 2 "a broken referrers index: ls fails"
check "… with EIO: $out" grep -q "Input/output error" <<<"$out"
check "… nothing of it is listed" bash -c "! grep -q sha256: <<<\"\$1\"" _ "$out"
check "… and the log says why" grep -q "artifactType.* is not a media type" "$TEST_TMP/mnt-d.log"

# An index: its root and its platforms have referrers/.
is "$(lsw "$M/app/multi")" "index.json linux-amd64 linux-amd64-$(hex "$OTHER" | cut -c1-12) referrers" \
	"an index directory has referrers/"
is "$(readdir_order "$M/app/multi/linux-amd64/referrers")" "$SIG $SBOM" \
	"… and so has each platform (app:v1's referrers)"
mnt_stop d

# ---------------------------------------------------------------- 2. the ACR emulator
acremu_start e || {
	fail "the emulator starts"
	exit 1
}
U=$ACR_e_URL
export ACRFS_TEST_ACR=1 # mkimage.py pushes as the emulator's admin
$MK push "$O" app "$U/app:v1" >/dev/null && $MK push "$O" other "$U/app:none" >/dev/null &&
	$MK push "$O" sig "$U/app" --by-digest >/dev/null &&
	$MK push "$O" sbom "$U/app" --by-digest >/dev/null || {
	fail "push through the emulator"
	exit 1
}
# 101 referrers of one subject: two pages of the API (100 a page). Their index is pushed
# to the tag schema's tag too (pushing it pushes them, by digest): the API is asked first.
$MK artifact "$O" many other --artifact-type application/vnd.example.many --count 101 >/dev/null &&
	$MK referrers "$O" manyidx --prefix many- >/dev/null &&
	$MK push "$O" other "$U/paged:v1" >/dev/null &&
	$MK push "$O" manyidx "$U/paged:sha256-$(hex "$OTHER")" >/dev/null || {
	fail "push 101 referrers"
	exit 1
}
unset ACRFS_TEST_ACR
api=$(curl -sS -f -u admin:adminpw "$U/v2/app/referrers/$S" |
	$PY -c 'import json, sys; print(" ".join(m["digest"] for m in json.load(sys.stdin)["manifests"]))')

acremu_log_mark e
ACRFS_USERNAME=admin ACRFS_PASSWORD=adminpw mnt_start_fg e "$U" -o ttl=600 || {
	fail "mount the emulator"
	exit 1
}
M=$MNT_e
ereqs() { acremu_log_since e '"path": "/v2/[^"]*(/referrers/|/manifests/sha256-)' |
	$PY -c 'import json, sys
for line in sys.stdin:
    d = json.loads(line)
    print(d["method"], d["path"], d["status"])'; }
lsw "$M/app" >/dev/null
is "$(lsw "$M/app/v1")" "config.json layers manifest.json referrers rootfs" "ACR: the tag has referrers/"
is "$(ereqs)" "" "… listing the repository and the tag fetched no referrers"
is "$(readdir_order "$M/app/v1/referrers")" "$api" "ls referrers: the API's referrers, in its order"
check "… both of them" test "$(wc -w <<<"$api")" = 2
is "$(ereqs)" "GET /v2/app/referrers/$S 200" "… one request, the API (no tag)"
acremu_log_mark e
readdir_order "$M/app/v1/referrers" >/dev/null
is "$(ereqs)" "" "… again within the TTL: no request"
is "$(xattr_of "$M/app/v1/referrers/$SBOM" user.acrfs.artifact_type)" \
	"application/vnd.example.sbom.config.v1+json" "… the xattrs are the same"
is "$(sha256sum <"$M/app/v1/referrers/$SIG/manifest.json" | cut -d' ' -f1)" "$(hex "$SIG")" \
	"… manifest.json hashes to its name"
acremu_log_mark e
out=$(ls -A "$M/app/none/referrers" 2>&1)
is "$out|$?" "|0" "a subject without referrers: an empty directory"
is "$(ereqs)" "GET /v2/app/referrers/$OTHER 200" "… from one API request"

acremu_log_mark e
n=$(ls "$M/paged/v1/referrers" | wc -l)
is "$n" 101 "101 referrers listed"
is "$(ereqs | sed -E 's/\?[^ ]*//' | sort | uniq -c | sed 's/^ *//')" \
	"2 GET /v2/paged/referrers/$OTHER 200" "… in two requests (two pages)"
mnt_stop e

# No API ("referrers": false → distribution's 404): a new mount falls back to the tag.
acremu_control e '{"referrers": false}' >/dev/null
acremu_log_mark e
ACRFS_USERNAME=admin ACRFS_PASSWORD=adminpw mnt_start_fg f "$U" -o ttl=600 || fail "mount again"
is "$(readdir_order "$MNT_f/paged/v1/referrers" | wc -w)" 101 "without the API: the tag's index"
is "$(ereqs)" "GET /v2/paged/referrers/$OTHER 404
GET /v2/paged/manifests/sha256-$(hex "$OTHER") 200" \
	"… after one 404 from the API"
mnt_stop f

tap_done
