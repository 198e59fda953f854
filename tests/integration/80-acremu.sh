#!/usr/bin/env bash
# Issue 10: the ACR emulator (tests/lib/acremu.py) answers like Azure Container Registry,
# checked against REFERENCE.md with curl and python: the token dialect, paginated /v2
# and /acr/v1 listings with ACR's Link form, _tags / _manifests fields and times,
# orderby and the 1,000 cap, untag, repository delete, DELETE by tag refused, locks,
# PATCH, missing scopes, blobs by 307 to a storage origin with an expiring SAS, the
# referrers API, the request log and a restart that keeps the metadata. Images are
# pushed through the emulator (skopeo, curl), so their times come from the push.
# shellcheck disable=SC2154 # ACR_<NAME>_* are exported by acremu_start
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/images.sh"
. "$TESTS_LIB/acremu.sh"

cleanup() {
	acremu_stop_all
	reg_stop_all
}
tap_trap_cleanup cleanup
export HOME=$TEST_TMP/home
mkdir -p "$HOME"
PY=/usr/bin/python3
R=ssongman/userlist
RE=ssongman%2Fuserlist
OCI_M=application/vnd.oci.image.manifest.v1+json
OCI_I=application/vnd.oci.image.index.v1+json

acremu_start a || {
	fail "the emulator starts in front of distribution"
	exit 1
}
U=$ACR_a_URL

# jget PYEXPR: evaluate PYEXPR with d = the JSON document on stdin; strings as they
# are, anything else as compact JSON.
jget() {
	$PY -c 'import json, sys
d = json.load(sys.stdin)
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))' "$1"
}
# areq TOKEN [CURL-ARGS...] PATH: a request to the registry origin (TOKEN empty: no
# Authorization). Body on stdout; status in $TEST_TMP/code; headers for hdr.
areq() {
	local t=$1 a
	shift
	a=("$@")
	local p=${a[${#a[@]} - 1]}
	unset 'a[${#a[@]}-1]'
	[ -z "$t" ] || a+=(-H "Authorization: Bearer $t")
	curl -sS -D "$TEST_TMP/h" -o "$TEST_TMP/b" -w '%{http_code}' "${a[@]}" "$U$p" >"$TEST_TMP/code"
	cat "$TEST_TMP/b"
}
code() { cat "$TEST_TMP/code"; }
# hdr NAME: that header of the last areq answer (empty if absent).
hdr() { tr -d '\r' <"$TEST_TMP/h" | sed -n "s/^$1: *//Ip" | tail -n 1; }
# errcode: "STATUS CODE" of the last answer (CODE from the error body).
errcode() { printf '%s %s' "$(code)" "$(jget 'd["errors"][0]["code"]' <"$TEST_TMP/b")"; }
tok() { acremu_token a "$@"; }

# put_manifest TOKEN REPO REF FILE [MEDIATYPE]: PUT a manifest's exact bytes.
put_manifest() {
	areq "$1" -X PUT -H "Content-Type: ${5:-$OCI_M}" --data-binary "@$4" \
		"/v2/$2/manifests/$3" >/dev/null
	code
}
# push_blob TOKEN REPO FILE: upload a blob through the emulator (POST, then PUT).
push_blob() {
	local loc d sep
	areq "$1" -X POST "/v2/$2/blobs/uploads/" >/dev/null
	loc=$(hdr Location)
	d=sha256:$(sha256sum <"$3" | cut -d' ' -f1)
	case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
	curl -sS -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $1" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$3" "$loc${sep}digest=$d"
}
epoch() { $PY -c 'import time; print("%.3f" % time.time())'; }
# within T0 T1 TIME: RFC 3339 TIME (7 fractional digits, Z) lies between epochs T0 and T1.
within() {
	$PY -c 'import calendar, re, sys, time
t0, t1, s = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{7})Z$", s)
v = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + int(m.group(2)) / 1e7
sys.exit(0 if t0 - 0.001 <= v <= t1 + 0.001 else 1)' "$@"
}

# ---- images pushed through the emulator ----
if ! img_build_simple "$TEST_TMP/oci" v1 "hello.txt=hello one" "big.bin=#64K:seed1" >/dev/null ||
	! img_build_simple "$TEST_TMP/oci" v2 "hello.txt=hello two" >/dev/null; then
	fail "build test images"
	exit 1
fi
D1=$(img_manifest_digest "$TEST_TMP/oci" v1)
D2=$(img_manifest_digest "$TEST_TMP/oci" v2)
T0=$(epoch)
for d in "$R:v1" "$R:v2" "$R:latest" other:v1 lib/nested:v1; do
	t=${d##*:}
	[ "$t" = latest ] && t=v1
	IMG_CREDS=admin:adminpw img_push "$TEST_TMP/oci:$t" "$U/$d" >/dev/null ||
		{
			fail "push $d through the emulator"
			exit 1
		}
done
T1=$(epoch)
ok "skopeo pushed 5 tags through the emulator (token auth at the emulator)"

ALL="repository:$R:pull,push,delete,metadata_read,metadata_write"
ADM=$(tok admin:adminpw 'registry:catalog:*' "$ALL" \
	'repository:other:pull,delete,metadata_read' 'repository:lib/nested:pull')

# ---- the token dialect ----
reply=$(curl -sS -u admin:adminpw -G --data-urlencode "service=$ACR_a_SERVICE" \
	--data-urlencode "scope=repository:$R:pull" "$ACR_a_REALM")
is "$(jget 'sorted(d)' <<<"$reply")" '["access_token"]' \
	"token GET answers {\"access_token\"} only, no expires_in (ACR's dialect)"
check "… and the JWT carries exp" $PY -c 'import base64, json, sys
p = sys.argv[1].split(".")[1]
c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
sys.exit(0 if c["exp"] > c["iat"] else 1)' "$(jget 'd["access_token"]' <<<"$reply")"
areq "" /v2/ >/dev/null
is "$(code) $(hdr WWW-Authenticate)" \
	"401 Bearer realm=\"$ACR_a_REALM\",service=\"$ACR_a_SERVICE\"" \
	"GET /v2/ without a token: 401 with the emulator's realm"
areq "$ADM" -H "Accept: $OCI_M" "/v2/$R/manifests/v1" >/dev/null
is "$(code) $(hdr Docker-Content-Digest)" "200 $D1" "a manifest GET is served by distribution"
# Go clients (skopeo, docker) send one Accept line per media type; an OCI manifest is
# served when any of them accepts it (ACR converts nothing, refuses nothing it can serve).
areq "$ADM" -H "Accept: $OCI_M" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
	"/v2/$R/manifests/v1" >/dev/null
is "$(code) $(hdr Docker-Content-Digest) $(hdr Content-Type)" "200 $D1 $OCI_M" \
	"a manifest GET with several Accept lines, OCI in the first: the OCI manifest"
areq "" -u admin:adminpw /acr/v1/_catalog >/dev/null
is "$(code)" 200 "Basic credentials work on the data plane, as on ACR"

# ---- /v2 pagination in ACR's Link form ----
acremu_log_mark a
out=$(areq "$ADM" '/v2/_catalog?n=1')
is "$out|$(hdr Link)" \
	'{"repositories":["lib/nested"]}|</v2/_catalog?last=lib%2Fnested&n=1&orderby=>; rel="next"' \
	"/v2/_catalog?n=1: one repository, Link with last escaped, n and an empty orderby"
next='/v2/_catalog?n=1'
got=''
while [ -n "$next" ]; do
	got+=$(areq "$ADM" "$next" | jget '" ".join(d["repositories"])')' '
	next=$(hdr Link | sed -n 's/^<\([^>]*\)>; rel="next"$/\1/p')
done
is "$got" 'lib/nested other ssongman/userlist ' "following Link gives the whole catalog; no Link on the last page"
is "$(acremu_log_since a '"/v2/_catalog' | wc -l)" 4 "one request per page (1 + 3 pages)"
is "$(areq "$ADM" /v2/_catalog)|$(hdr Link)" \
	'{"repositories":["lib/nested","other","ssongman/userlist"]}|' "without n: a page of up to 100, no Link"
out=$(areq "$ADM" "/v2/$R/tags/list?n=2")
is "$out|$(hdr Link)" \
	"{\"name\":\"$R\",\"tags\":[\"latest\",\"v1\"]}|</v2/$R/tags/list?last=v1&n=2&orderby=>; rel=\"next\"" \
	"/v2/<r>/tags/list?n=2 is paginated like ACR"
is "$(areq "$ADM" "/v2/$R/tags/list?last=v1&n=2&orderby=")|$(hdr Link)" \
	"{\"name\":\"$R\",\"tags\":[\"v2\"]}|" "… the last page has no Link"
out=$(areq "$ADM" '/acr/v1/_catalog?n=2')
is "$out|$(hdr Link)" \
	'{"repositories":["lib/nested","other"]}|</acr/v1/_catalog?last=other&n=2&orderby=>; rel="next"' \
	"/acr/v1/_catalog?n=2 with ACR's Link"

# ---- _tags: fields, times from the push ----
tags=$(areq "$ADM" "/acr/v1/$RE/_tags")
is "$(jget '[d["registry"], d["imageName"], [t["name"] for t in d["tags"]]]' <<<"$tags")" \
	"[\"$ACR_a_SERVICE\",\"$R\",[\"latest\",\"v1\",\"v2\"]]" "_tags: registry, imageName, tags by name"
is "$(jget '[[t["digest"] for t in d["tags"]], sorted(d["tags"][0]),
	d["tags"][0]["changeableAttributes"], d["tags"][0]["signed"]]' <<<"$tags")" \
	"[[\"$D1\",\"$D1\",\"$D2\"],[\"changeableAttributes\",\"createdTime\",\"digest\",\"lastUpdateTime\",\"name\",\"signed\"],{\"deleteEnabled\":true,\"writeEnabled\":true,\"readEnabled\":true,\"listEnabled\":true},false]" \
	"_tags: digest, times, signed and changeableAttributes of each tag"
bad=''
for tm in $(jget '" ".join(t[k] for t in d["tags"] for k in ("createdTime", "lastUpdateTime"))' <<<"$tags"); do
	within "$T0" "$T1" "$tm" || bad+=" $tm"
done
is "$bad" '' "createdTime/lastUpdateTime: RFC 3339, 7 fractional digits, Z, set by the push"

one=$(areq "$ADM" "/acr/v1/$R/_tags/v1")
is "$(jget '[sorted(d), d["tag"]["name"], d["tag"]["digest"]]' <<<"$one")" \
	"[[\"imageName\",\"registry\",\"tag\"],\"v1\",\"$D1\"]" "one tag: {registry, imageName, tag}"
areq "$ADM" "/acr/v1/$R/_tags/nope" >/dev/null
is "$(errcode)" "404 TAG_UNKNOWN" "an unknown tag: 404 TAG_UNKNOWN"
areq "$ADM" "/acr/v1/nope/_tags" >/dev/null
is "$(errcode)" "401 UNAUTHORIZED" "a repository outside the token: 401 (scope is checked first)"
areq "$(tok admin:adminpw 'repository:nope:metadata_read')" "/acr/v1/nope/_tags" >/dev/null
is "$(errcode)" "404 NAME_UNKNOWN" "an unknown repository: 404 NAME_UNKNOWN"

# ---- orderby and times set by the control endpoint ----
tb=$(epoch)
acremu_control a "{\"times\": [{\"repo\": \"$R\", \"tag\": \"v1\", \"age\": 8640000},
	{\"repo\": \"$R\", \"tag\": \"v2\", \"age\": 4320000},
	{\"repo\": \"$R\", \"tag\": \"latest\", \"age\": 864000}]}" >/dev/null
order() { areq "$ADM" "/acr/v1/$RE/_tags?orderby=$1" | jget '" ".join(t["name"] for t in d["tags"])'; }
is "$(order timedesc)|$(order timeasc)" "latest v2 v1|v1 v2 latest" "orderby=timedesc / timeasc sort by lastUpdateTime"
ta=$(epoch)
V1C=$(areq "$ADM" "/acr/v1/$R/_tags/v1" | jget 'd["tag"]["createdTime"]')
check "control: v1 is 100 days old ($V1C)" within "$($PY -c "print($tb - 8640000)")" \
	"$($PY -c "print($ta - 8640000)")" "$V1C"
acremu_log_mark a
out=$(areq "$ADM" "/acr/v1/$RE/_tags?n=1&orderby=timedesc" | jget 'd["tags"][0]["name"]')
is "$out|$(hdr Link)" \
	"latest|</acr/v1/$RE/_tags?last=latest&n=1&orderby=timedesc>; rel=\"next\"" \
	"_tags?n=1&orderby=timedesc: Link keeps orderby"
next=$(hdr Link | sed -n 's/^<\([^>]*\)>.*/\1/p')
while [ -n "$next" ]; do
	out+=" $(areq "$ADM" "$next" | jget 'd["tags"][0]["name"]')"
	next=$(hdr Link | sed -n 's/^<\([^>]*\)>.*/\1/p')
done
is "$out|$(acremu_log_since a '_tags' | wc -l)" "latest v2 v1|3" "walking timedesc pages: every tag once, one request per page"

# ---- the 1,000 cap: 1,001 tags ----
# t0000 is pushed through the emulator; t0001..t1000 are written into distribution's
# storage as distribution writes a tag (a PUT costs ~20 ms in distribution alone here),
# so the emulator first sees them at the next listing.
IMG_CREDS=admin:adminpw img_push "$TEST_TMP/oci:v2" "$U/many:t0000" >/dev/null || fail "push many:t0000"
MANY=$(tok admin:adminpw 'repository:many:pull,push,metadata_read')
dist_dir=REG_${ACR_a_REG}_DIR
$PY - "${!dist_dir}/data/docker/registry/v2/repositories/many/_manifests/tags" \
	"$D2" <<'EOF2' || fail "write 1,000 tags into distribution's storage"
import os, sys
base, dg = sys.argv[1:]
for i in range(1, 1001):
    for sub in ("current", "index/sha256/" + dg[7:]):
        d = os.path.join(base, "t%04d" % i, sub)
        os.makedirs(d)
        with open(os.path.join(d, "link"), "w") as f:
            f.write(dg)
EOF2
is "$(reg_curl "$ACR_a_REG" "/v2/many/tags/list" | jget 'len(d["tags"])')" 1001 \
	"distribution holds 1,001 tags of many"
T2=$(epoch)
n1=$(areq "$MANY" '/acr/v1/many/_tags?n=5000' | jget '[len(d["tags"]), d["tags"][-1]["name"]]')
is "$n1|$(hdr Link)" '[1000,"t0999"]|</acr/v1/many/_tags?last=t0999&n=1000&orderby=>; rel="next"' \
	"_tags?n=5000: at most 1,000 per page"
T3=$(epoch)
out=$(areq "$MANY" '/acr/v1/many/_tags?last=t0999&n=1000&orderby=')
is "$(jget '[t["name"] for t in d["tags"]]' <<<"$out")|$(hdr Link)" \
	'["t1000"]|' "… the next page holds the 1,001st tag"
check "a tag made around the emulator gets createdTime when first seen" \
	within "$T2" "$T3" "$(jget 'd["tags"][0]["createdTime"]' <<<"$out")"
n1=$(areq "$MANY" '/acr/v1/many/_tags' | jget 'len(d["tags"])')
is "$n1|$(hdr Link)" '100|</acr/v1/many/_tags?last=t0099&n=100&orderby=>; rel="next"' \
	"_tags without n: 100 per page"
n1=$(areq "$MANY" '/v2/many/tags/list?n=5000' | jget 'len(d["tags"])')
is "$n1|$(hdr Link)" '1000|</v2/many/tags/list?last=t0999&n=1000&orderby=>; rel="next"' \
	"/v2 tags/list?n=5000: at most 1,000 per page"

# ---- _manifests, an index and its references ----
python_index() {
	$PY - "$@" <<'EOF'
import json, sys
oci, d1, d2 = sys.argv[1:]
def desc(d, arch):
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d,
            "size": len(open("%s/blobs/sha256/%s" % (oci, d[7:]), "rb").read()),
            "platform": {"architecture": arch, "os": "linux"}}
sys.stdout.write(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [desc(d1, "amd64"), desc(d2, "arm64")]}))
EOF
}
python_index "$TEST_TMP/oci" "$D1" "$D2" >"$TEST_TMP/index.json"
DI=sha256:$(sha256sum <"$TEST_TMP/index.json" | cut -d' ' -f1)
is "$(put_manifest "$ADM" "$R" multi "$TEST_TMP/index.json" "$OCI_I")" 201 "PUT an index to $R:multi"
mans=$(areq "$ADM" "/acr/v1/$R/_manifests")
is "$(jget '[[m["digest"], m.get("tags")] for m in d["manifests"]]' <<<"$mans")" \
	"$($PY -c 'import json, sys; print(json.dumps(sorted([[sys.argv[1], ["latest", "v1"]], [sys.argv[2], ["v2"]], [sys.argv[3], ["multi"]]]), separators=(",", ":")))' "$D1" "$D2" "$DI")" \
	"_manifests: every manifest in digest order with its tags"
SZ1=$(stat -c %s "$TEST_TMP/oci/blobs/sha256/${D1#sha256:}")
is "$(jget "[m for m in d['manifests'] if m['digest'] == '$D1'][0]" <<<"$mans" |
	jget '[d["imageSize"], d["architecture"], d["os"], d["mediaType"], d["configMediaType"], sorted(d)]')" \
	"[$SZ1,\"amd64\",\"linux\",\"$OCI_M\",\"application/vnd.oci.image.config.v1+json\",[\"architecture\",\"changeableAttributes\",\"configMediaType\",\"createdTime\",\"digest\",\"imageSize\",\"lastUpdateTime\",\"mediaType\",\"os\",\"tags\"]]" \
	"_manifests: an image's size, platform, media types"
mi=$(areq "$ADM" "/acr/v1/$R/_manifests/$DI")
is "$(jget '[sorted(d), d["manifest"]["mediaType"], "os" in d["manifest"], d["manifest"]["references"]]' <<<"$mi")" \
	"[[\"imageName\",\"manifest\",\"registry\"],\"$OCI_I\",false,[{\"digest\":\"$D1\",\"architecture\":\"amd64\",\"os\":\"linux\"},{\"digest\":\"$D2\",\"architecture\":\"arm64\",\"os\":\"linux\"}]]" \
	"_manifests/<index>: {manifest} with references, no platform of its own"
out=$(areq "$ADM" "/acr/v1/$R/_manifests?n=1" | jget 'd["manifests"][0]["digest"]')
first=$($PY -c 'import sys; print(sorted(sys.argv[1:])[0])' "$D1" "$D2" "$DI")
is "$out|$(hdr Link)" "$first|</acr/v1/$RE/_manifests?last=${first/:/%3A}&n=1&orderby=>; rel=\"next\"" \
	"_manifests?n=1 is paginated"

# ---- PATCH, locks ----
RD=$(tok reader:readerpw "repository:$R:pull,metadata_read,metadata_write,delete")
areq "$RD" -X PATCH -H 'Content-Type: application/json' --data '{"writeEnabled":false}' \
	"/acr/v1/$R/_tags/v2" >/dev/null
is "$(errcode)|$(jget 'd["errors"][0]["detail"]' <"$TEST_TMP/b")" \
	"401 UNAUTHORIZED|[{\"Type\":\"repository\",\"Name\":\"$R\",\"Action\":\"metadata_write\"}]" \
	"PATCH without metadata_write: 401 naming the missing action"
out=$(areq "$ADM" -X PATCH -H 'Content-Type: application/json' --data '{"writeEnabled":false}' \
	"/acr/v1/$R/_tags/v2" | jget 'd["tag"]["changeableAttributes"]')
is "$(code) $out" '200 {"deleteEnabled":true,"writeEnabled":false,"readEnabled":true,"listEnabled":true}' \
	"PATCH _tags/v2 writeEnabled=false (a partial body)"
cp "$TEST_TMP/oci/blobs/sha256/${D1#sha256:}" "$TEST_TMP/m1.json"
cp "$TEST_TMP/oci/blobs/sha256/${D2#sha256:}" "$TEST_TMP/m2.json"
areq "$ADM" -X DELETE "/acr/v1/$R/_tags/v2" >/dev/null
is "$(errcode)" "405 REGISTRY_DISALLOWED_OPERATION" "writeEnabled=false: untag refused"
put_manifest "$ADM" "$R" v2 "$TEST_TMP/m1.json" >/dev/null
is "$(errcode)" "405 REGISTRY_DISALLOWED_OPERATION" "writeEnabled=false: pushing over the tag refused"
areq "$ADM" -X DELETE "/v2/$R/manifests/$D2" >/dev/null
is "$(errcode)" "405 REGISTRY_DISALLOWED_OPERATION" "writeEnabled=false: deleting its manifest refused"
is "$(areq "$ADM" "/acr/v1/$R/_tags/v2" | jget 'd["tag"]["digest"]')" "$D2" "… and the tag is unchanged"
areq "$ADM" -X PATCH --data '{"writeEnabled":true,"deleteEnabled":false}' "/acr/v1/$R/_tags/v2" >/dev/null
areq "$ADM" -X DELETE "/acr/v1/$R/_tags/v2" >/dev/null
is "$(errcode)" "405 REGISTRY_DISALLOWED_OPERATION" "deleteEnabled=false: untag refused"
before=$(areq "$ADM" "/acr/v1/$R/_tags/v2" | jget '[d["tag"]["createdTime"], d["tag"]["lastUpdateTime"]]')
is "$(put_manifest "$ADM" "$R" v2 "$TEST_TMP/m1.json")" 201 "deleteEnabled=false: the tag can still be updated"
after=$(areq "$ADM" "/acr/v1/$R/_tags/v2" | jget '[d["tag"]["digest"], d["tag"]["createdTime"], d["tag"]["lastUpdateTime"]]')
check "… it moved: new digest, same createdTime, later lastUpdateTime ($before → $after)" \
	$PY -c 'import json, sys
b, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.exit(0 if a[0] == sys.argv[3] and a[1] == b[0] and a[2] > b[1] else 1)' "$before" "$after" "$D1"
is "$(put_manifest "$ADM" "$R" v2 "$TEST_TMP/m2.json")" 201 "… and back to its image"
areq "$ADM" -X PATCH --data '{"deleteEnabled":true}' "/acr/v1/$R/_tags/v2" >/dev/null
areq "$ADM" -X PATCH --data '{"writeEnabled":false}' "/acr/v1/$R" >/dev/null
is "$(code) $(jget 'd["changeableAttributes"]' <"$TEST_TMP/b")" \
	'200 {"deleteEnabled":true,"writeEnabled":false,"readEnabled":true,"listEnabled":true,"teleportEnabled":false}' \
	"PATCH the repository: writeEnabled=false"
put_manifest "$ADM" "$R" newtag "$TEST_TMP/m1.json" >/dev/null
is "$(errcode)" "405 REGISTRY_DISALLOWED_OPERATION" "a locked repository: no new tag"
areq "$ADM" -X DELETE "/acr/v1/$R/_tags/latest" >/dev/null
is "$(errcode)" "405 REGISTRY_DISALLOWED_OPERATION" "a locked repository: no untag"
areq "$ADM" -X PATCH --data '{"writeEnabled":true,"deleteEnabled":false}' "/acr/v1/$R" >/dev/null
areq "$ADM" -X DELETE "/acr/v1/$R" >/dev/null
is "$(errcode)" "405 REGISTRY_DISALLOWED_OPERATION" "repository deleteEnabled=false: the repository cannot be deleted"
areq "$ADM" -X PATCH --data '{"writeEnabled":"no"}' "/acr/v1/$R" >/dev/null
is "$(code)" 400 "PATCH with a non-boolean attribute: 400"

# ---- DELETE by tag, untag ----
areq "$ADM" -X DELETE "/v2/$R/manifests/v1" >/dev/null
is "$(errcode)" "405 UNSUPPORTED" "DELETE /v2/<r>/manifests/<tag>: 405 UNSUPPORTED (digests only)"
out=$(areq "$ADM" -X DELETE "/acr/v1/$R/_tags/latest")
is "$(code)|$out|$(hdr Content-Length)" "202||0" \
	"untag (repository deleteEnabled=false still lets images go): 202, empty body"
is "$(areq "$ADM" "/v2/$R/tags/list" | jget 'd["tags"]')" '["multi","v1","v2"]' "… the tag is gone, the others stay"
areq "$ADM" -H "Accept: $OCI_M" "/v2/$R/manifests/$D1" >/dev/null
is "$(code)" 200 "… its manifest stays"
areq "$ADM" "/acr/v1/$R/_tags/latest" >/dev/null
is "$(errcode)" "404 TAG_UNKNOWN" "… _tags/latest: 404 TAG_UNKNOWN"
areq "$ADM" -X PATCH --data '{"deleteEnabled":true}' "/acr/v1/$R" >/dev/null

# ---- missing scopes ----
PUL=$(tok puller:pullerpw "repository:$R:pull,metadata_read" 'registry:catalog:*')
areq "$PUL" "/acr/v1/$R/_tags" >/dev/null
is "$(errcode)|$(jget 'd["errors"][0]["detail"]' <"$TEST_TMP/b")|$(hdr WWW-Authenticate)" \
	"401 UNAUTHORIZED|[{\"Type\":\"repository\",\"Name\":\"$R\",\"Action\":\"metadata_read\"}]|Bearer realm=\"$ACR_a_REALM\",service=\"$ACR_a_SERVICE\",scope=\"repository:$R:metadata_read\",error=\"insufficient_scope\"" \
	"pull-only identity: _tags is 401 with the missing metadata_read in detail and challenge"
areq "$PUL" "/v2/$R/tags/list" >/dev/null
is "$(code)" 200 "… it may still list tags through /v2"
areq "$PUL" /v2/_catalog >/dev/null
is "$(errcode)|$(jget 'd["errors"][0]["detail"]' <"$TEST_TMP/b")" \
	'401 UNAUTHORIZED|[{"Type":"registry","Name":"catalog","Action":"*"}]' "… and no catalog without registry:catalog:*"
areq "$RD" -X DELETE "/acr/v1/$R/_tags/v1" >/dev/null
is "$(errcode)|$(jget 'd["errors"][0]["detail"][0]["Action"]' <"$TEST_TMP/b")" "401 UNAUTHORIZED|delete" \
	"untag needs the delete scope"
areq "$RD" -X DELETE "/acr/v1/$R" >/dev/null
is "$(errcode)" "401 UNAUTHORIZED" "repository delete needs the delete scope"

# ---- blobs: 307 to the storage origin, SAS, ranges ----
L=$(jget 'd["layers"][0]["digest"]' <"$TEST_TMP/m1.json")
LF=$TEST_TMP/oci/blobs/sha256/${L#sha256:}
LSZ=$(stat -c %s "$LF")
areq "$ADM" "/v2/$R/blobs/$L" >/dev/null
loc=$(hdr Location)
is "$(code)|${loc%%/registry/docker/*}" "307|$ACR_a_STORAGE" "a blob GET: 307 to the storage origin"
check "… with a signed, expiring query (se=, sig=)" grep -qE '[?&]se=[^&]+.*&sig=[^&]+' <<<"$loc"
curl -sS -D "$TEST_TMP/h" -o "$TEST_TMP/part" -H 'Range: bytes=10-4105' "$loc"
is "$(tr -d '\r' <"$TEST_TMP/h" | head -1 | cut -d' ' -f2)|$(hdr Content-Range)|$(hdr Accept-Ranges)|$(hdr Docker-Content-Digest)" \
	"206|bytes 10-4105/$LSZ|bytes|" "storage: 206 for a range, Accept-Ranges, no Docker-Content-Digest"
cmp_files <(tail -c +11 "$LF" | head -c 4096) "$TEST_TMP/part" "… the range's bytes are the blob's"
is "$(curl -sS "$loc" | sha256sum | cut -d' ' -f1)" "${L#sha256:}" "… the whole blob without Range"
acremu_log_mark a
out=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADM" "$loc")
is "$out" 400 "storage refuses a request that carries an Authorization header"
is "$(acremu_log_since a '"origin": "storage"' | jget 'd["auth"]')" true "… and the log shows the header came"
out=$(curl -sS -o "$TEST_TMP/b" -w '%{http_code}' "${loc/sig=/sig=x}")
is "$out $(grep -o '<Code>[A-Za-z]*' "$TEST_TMP/b")" "403 <Code>AuthenticationFailed" "a bad signature: 403"
acremu_control a '{"sas_ttl": -1}' >/dev/null
areq "$ADM" "/v2/$R/blobs/$L" >/dev/null
is "$(curl -sS -o /dev/null -w '%{http_code}' "$(hdr Location)")" 403 "an expired SAS: 403"
acremu_control a '{"sas_ttl": 2}' >/dev/null
areq "$ADM" "/v2/$R/blobs/$L" >/dev/null
short=$(hdr Location)
first=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Range: bytes=0-0' "$short")
for ((i = 0; i < 150; i++)); do
	last=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Range: bytes=0-0' "$short")
	[ "$last" = 403 ] && break
	sleep 0.1
done
is "$first $last" "206 403" "a 2 s SAS works, then storage answers 403 once it expired"
acremu_control a '{"sas_ttl": 1200}' >/dev/null
sig=$(sed -n 's/.*[?&]sig=\([^&]*\).*/\1/p' <<<"$loc")
check "the request log never holds a SAS signature" test -z "$(grep -F -- "$sig" "$ACR_a_LOG")"
acremu_control a '{"redirect_blobs": false}' >/dev/null
areq "$ADM" "/v2/$R/blobs/$L" >/dev/null
is "$(code) $(sha256sum <"$TEST_TMP/b" | cut -d' ' -f1)" "200 ${L#sha256:}" "redirect_blobs=false: the registry serves the blob"
acremu_control a '{"redirect_blobs": true}' >/dev/null

# ---- referrers (OCI 1.1) computed from the pushed manifests ----
printf '{}' >"$TEST_TMP/empty.json"
printf 'an sbom' >"$TEST_TMP/sbom.txt"
printf 'a signature' >"$TEST_TMP/sig.txt"
for f in empty.json sbom.txt sig.txt; do
	[ "$(push_blob "$ADM" "$R" "$TEST_TMP/$f")" = 201 ] || fail "upload blob $f"
done
artifact() { # TYPE FILE KIND
	$PY - "$@" "$D1" "$SZ1" <<'EOF'
import hashlib, json, os, sys
atype, f, kind, subj, ssz = sys.argv[1:]
d = lambda p: "sha256:" + hashlib.sha256(open(p, "rb").read()).hexdigest()
e = os.path.join(os.path.dirname(f), "empty.json")
sys.stdout.write(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": atype,
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": d(e), "size": 2},
    "layers": [{"mediaType": "text/plain", "digest": d(f), "size": os.path.getsize(f)}],
    "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": subj, "size": int(ssz)},
    "annotations": {"org.example.kind": kind}}))
EOF
}
artifact application/vnd.example.sbom "$TEST_TMP/sbom.txt" sbom >"$TEST_TMP/a1.json"
artifact application/vnd.example.sig "$TEST_TMP/sig.txt" sig >"$TEST_TMP/a2.json"
A1=sha256:$(sha256sum <"$TEST_TMP/a1.json" | cut -d' ' -f1)
A2=sha256:$(sha256sum <"$TEST_TMP/a2.json" | cut -d' ' -f1)
is "$(put_manifest "$ADM" "$R" "$A1" "$TEST_TMP/a1.json")|$(hdr OCI-Subject)" "201|$D1" \
	"PUT of an artifact with a subject: 201 and OCI-Subject"
put_manifest "$ADM" "$R" "$A2" "$TEST_TMP/a2.json" >/dev/null
ref=$(areq "$ADM" "/v2/$R/referrers/$D1")
exp=$($PY - "$A1" "$A2" "$TEST_TMP" <<'EOF'
import json, os, sys
a1, a2, t = sys.argv[1:]
descs = []
for dg, f, at, kind in ((a1, "a1.json", "application/vnd.example.sbom", "sbom"),
                        (a2, "a2.json", "application/vnd.example.sig", "sig")):
    descs.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": dg,
                  "size": os.path.getsize(os.path.join(t, f)), "artifactType": at,
                  "annotations": {"org.example.kind": kind}})
descs.sort(key=lambda x: x["digest"])
print(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                  "manifests": descs}, separators=(",", ":")))
EOF
)
is "$(code)|$(hdr Content-Type)|$ref" "200|$OCI_I|$exp" \
	"referrers: an OCI index of both artifacts with artifactType and annotations"
out=$(areq "$ADM" "/v2/$R/referrers/$D1?artifactType=application/vnd.example.sig" | jget '[m["digest"] for m in d["manifests"]]')
is "$out|$(hdr OCI-Filters-Applied)" "[\"$A2\"]|artifactType" "referrers?artifactType= filters and says so"
first=$(jget 'd["manifests"][0]["digest"]' <<<"$ref")
second=$(jget 'd["manifests"][1]["digest"]' <<<"$ref")
out=$(areq "$ADM" "/v2/$R/referrers/$D1?n=1" | jget '[m["digest"] for m in d["manifests"]]')
is "$out|$(hdr Link)" "[\"$first\"]|</v2/$R/referrers/$D1?last=${first/:/%3A}&n=1>; rel=\"next\"" \
	"referrers?n=1 is paginated with Link"
next=$(hdr Link | sed -n 's/^<\([^>]*\)>.*/\1/p')
is "$(areq "$ADM" "$next" | jget '[m["digest"] for m in d["manifests"]]')|$(hdr Link)" "[\"$second\"]|" \
	"… the next page holds the other"
is "$(areq "$ADM" "/v2/$R/referrers/$D2" | jget 'd["manifests"]')|$(code)" "[]|200" \
	"referrers of a manifest without any: 200, empty index"
is "$(areq "$ADM" "/acr/v1/$R/_manifests/$A1" | jget '[d["manifest"].get("tags"), d["manifest"]["mediaType"]]')" \
	"[null,\"$OCI_M\"]" "_manifests: an untagged artifact has no tags"
acremu_control a '{"referrers": false}' >/dev/null
areq "$ADM" "/v2/$R/referrers/$D1" >/dev/null
is "$(code)" 404 "referrers=false: 404 (a registry without the API)"
acremu_control a '{"referrers": true}' >/dev/null

# ---- repository delete ----
out=$(areq "$ADM" -X DELETE /acr/v1/other)
is "$(code)|$out" "202|{\"manifestsDeleted\":[\"$D1\"],\"tagsDeleted\":[\"v1\"]}" \
	"DELETE /acr/v1/<repo>: 202 with manifestsDeleted and tagsDeleted"
is "$(areq "$ADM" /acr/v1/_catalog | jget 'd["repositories"]')" '["lib/nested","many","ssongman/userlist"]' \
	"… it is gone from the catalog"
areq "$ADM" /acr/v1/other >/dev/null
is "$(errcode)" "404 NAME_UNKNOWN" "… /acr/v1/other: 404 NAME_UNKNOWN"
areq "$ADM" /v2/other/tags/list >/dev/null
is "$(errcode)" "404 NAME_UNKNOWN" "… /v2/other/tags/list: 404 NAME_UNKNOWN"

# ---- the request log ----
check "every log line is a JSON object with t, origin, method, path, auth, status, ua" $PY -c 'import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    assert sorted(d) == ["auth", "method", "origin", "path", "status", "t", "ua"], d
    assert d["origin"] in ("registry", "storage") and isinstance(d["status"], int)
    assert isinstance(d["ua"], str)' "$ACR_a_LOG"
check "… token requests are in it too" grep -q '"path": "/oauth2/token' "$ACR_a_LOG"

# ---- a restart keeps the metadata and the keys ----
acremu_restart a || fail "restart the emulator"
is "$(areq "$ADM" "/acr/v1/$R/_tags/v1" | jget 'd["tag"]["createdTime"]')" "$V1C" \
	"after a restart: times kept, tokens issued before still accepted"

tap_done
