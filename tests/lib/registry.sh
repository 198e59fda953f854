# shellcheck shell=bash
# tests/lib/registry.sh — real CNCF distribution registries on loopback for tests.
#
#   reg_start NAME [--tls] [--no-delete] [--htpasswd FILE]
#                  [--token REALM ISSUER SERVICE ROOTCERT] [--acr-config FILE]
#                  [--data-from DIR]
#       Start 'docker-registry serve' on 127.0.0.1:<free port>. NAME is [A-Za-z0-9_]+.
#       Files live in $TEST_TMP/NAME: config.yml, data/ (storage), access.log, pid,
#       tls/ (with --tls). Exports REG_<NAME>_URL (http[s]://127.0.0.1:PORT),
#       REG_<NAME>_HOST (127.0.0.1:PORT), REG_<NAME>_PID, REG_<NAME>_DIR and, with --tls,
#       REG_<NAME>_CA (CA certificate that signed the server certificate).
#       Returns once GET /v2/ answers (any HTTP status: 401 with auth); fails after ~10 s.
#       --data-from DIR: the storage starts as a copy of DIR (another registry's data/,
#       e.g. a fixture.sh fixture), so what it held is there without pushing it again.
#   reg_stop NAME            SIGTERM the saved PID and wait for it (SIGKILL after 5 s).
#   reg_stop_all             stop every registry started by this shell (use in traps).
#   reg_count_requests NAME [ERE]
#       Number of HTTP requests the registry has answered so far (optionally only those
#       whose access-log line matches the extended regex ERE, e.g. '"GET /v2/_catalog').
#       reg_start's own readiness probes are not counted, so a fresh registry counts 0.
#   reg_requests NAME [ERE]  print those access-log lines (for diagnostics).
#   reg_curl NAME [CURL-ARGS...] PATH
#       curl -sS against REG_<NAME>_URL/PATH with the right CA; PATH starts with /v2/.
#   reg_catalog NAME [N [CURL-ARGS...]]
#       Oracle: every repository, one per line, in the registry's order, following the
#       Link rel="next" pages of GET /v2/_catalog?n=N (N defaults to 100).
#   reg_tags NAME REPO [CURL-ARGS...]
#       Oracle: the tags of REPO, one per line, following Link rel="next" pages
#       (distribution 2.8 returns them all at once; ACR pages them).
#   reg_digest NAME REPO REF [CURL-ARGS...]
#       Oracle: Docker-Content-Digest of HEAD /v2/REPO/manifests/REF (any manifest type).
#   (These oracles send requests: they show up in reg_count_requests.)
#
# ACRFS_TEST_ACR=1 (issue 10: the suite against the ACR emulator): reg_start NAME of a
# plain registry (no --tls, --htpasswd, --token or --no-delete) starts the ACR emulator
# NAME (acremu.sh) in front of a distribution registry instead: REG_<NAME>_URL / _HOST
# are the emulator's, REG_<NAME>_DIR is distribution's, REG_<NAME>_ACR is 1. reg_curl
# sends the emulator's admin credentials (Basic), reg_requests / reg_count_requests read
# the emulator's request log (registry origin; the same combined-log form, User-Agent
# included), reg_stop stops both. images.sh, seed.py, mkimage.py push and acrfs.sh mount
# as admin; REGISTRY_AUTH_FILE names a file with the admin's credentials for skopeo.
# --acr-config FILE (ACRFS_TEST_ACR=1 only): the emulator's identities are FILE's
# (acremu.sh --config), not admin:adminpw & co., and the script chooses credentials
# itself: reg_curl sends none, REGISTRY_AUTH_FILE is left alone.
#
# Request counting. distribution writes two logs: a structured logrus log on stderr
# ("response completed" lines), which omits requests rejected by auth (401) and requests
# to unknown routes, and a combined-format access log on stdout (gorilla handlers), one
# line per request whatever its status:
#     127.0.0.1 - - [28/Nov/2026:17:43:50 +0000] "GET /v2/ HTTP/1.1" 401 87 "" "curl/7.88.1"
# Both go to access.log; counting uses only the combined-format lines. A request's line
# is written when its handler returns, which can be a moment after the client saw the
# last byte, so reg_count_requests waits until the log has been quiet for 50 ms.
#
# TEST_TMP defaults to $PWD/.test-tmp/$$ and is created.

: "${TEST_TMP:=$(pwd)/.test-tmp/$$}"
export TEST_TMP
mkdir -p -- "$TEST_TMP"

REG_PYTHON=${REG_PYTHON:-/usr/bin/python3}
REG_BIN=${REG_BIN:-/usr/bin/docker-registry}
REG_NAMES=()
# The readiness probe's User-Agent; its requests are left out of the counts.
REG_PROBE_UA=acrfs-reg-probe

_reg_die() {
	printf 'registry.sh: %s\n' "$*" >&2
	return 1
}

_reg_free_port() {
	"$REG_PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# _reg_var NAME FIELD -> value of REG_<NAME>_<FIELD> (empty if unset)
_reg_var() {
	local v="REG_${1}_${2}"
	printf '%s' "${!v:-}"
}

_reg_make_tls() {
	local dir=$1
	mkdir -p -- "$dir"
	(
		cd -- "$dir" || exit 1
		openssl ecparam -name prime256v1 -genkey -noout -out ca.key &&
			openssl req -x509 -new -key ca.key -sha256 -days 3 -subj '/CN=acrfs test CA' \
				-addext 'basicConstraints=critical,CA:TRUE' \
				-addext 'keyUsage=critical,keyCertSign,cRLSign' -out ca.crt &&
			openssl ecparam -name prime256v1 -genkey -noout -out server.key &&
			openssl req -new -key server.key -subj '/CN=127.0.0.1' -out server.csr &&
			printf '%s\n' 'basicConstraints=CA:FALSE' \
				'keyUsage=critical,digitalSignature,keyEncipherment' \
				'extendedKeyUsage=serverAuth' \
				'subjectAltName=IP:127.0.0.1,DNS:localhost' >server.ext &&
			openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
				-days 3 -sha256 -extfile server.ext -out server.crt
	) >"$dir/openssl.log" 2>&1 || {
		cat -- "$dir/openssl.log" >&2
		_reg_die "cannot create TLS material in $dir"
	}
}

reg_start() {
	local name=${1:-}
	shift || true
	[[ $name =~ ^[A-Za-z0-9_]+$ ]] || {
		_reg_die "reg_start: bad NAME '$name'"
		return 1
	}
	local tls=0 delete=true htpasswd='' token_realm='' token_issuer='' token_service=''
	local token_root='' acr_config='' data_from=''
	while [ $# -gt 0 ]; do
		case $1 in
		--tls) tls=1 ;;
		--acr-config)
			acr_config=$2
			shift
			;;
		--no-delete) delete=false ;;
		--data-from)
			data_from=$2
			shift
			;;
		--htpasswd)
			htpasswd=$2
			shift
			;;
		--token)
			[ $# -ge 5 ] || {
				_reg_die "--token needs REALM ISSUER SERVICE ROOTCERT"
				return 1
			}
			token_realm=$2 token_issuer=$3 token_service=$4 token_root=$5
			shift 4
			;;
		*)
			_reg_die "reg_start: unknown option $1"
			return 1
			;;
		esac
		shift
	done
	if [ -n "$(_reg_var "$name" PID)" ]; then
		_reg_die "reg_start: registry $name already running"
		return 1
	fi
	if [ "${ACRFS_TEST_ACR:-0}" = 1 ] && [[ $name != acremu_* ]]; then
		if [ "$tls" = 1 ] || [ -n "$htpasswd$token_realm$data_from" ] || [ "$delete" != true ]; then
			_reg_die "reg_start: ACRFS_TEST_ACR=1 stands in only for plain registries ($name)"
			return 1
		fi
		_reg_start_acr "$name" "$acr_config"
		return
	fi
	if [ -n "$acr_config" ]; then
		_reg_die "reg_start: --acr-config needs ACRFS_TEST_ACR=1"
		return 1
	fi

	local dir=$TEST_TMP/$name
	mkdir -p -- "$dir/data" || return 1
	if [ -n "$data_from" ]; then
		cp -a -- "$data_from/." "$dir/data/" || return 1
	fi
	local scheme=http curl_ca=()
	if [ "$tls" = 1 ]; then
		_reg_make_tls "$dir/tls" || return 1
		scheme=https
		curl_ca=(--cacert "$dir/tls/ca.crt")
	fi

	local port pid code i
	for _ in 1 2 3 4 5; do
		port=$(_reg_free_port) || return 1
		{
			printf '%s\n' 'version: 0.1' 'log:' '  level: info' '  formatter: text' \
				'  accesslog:' '    disabled: false' 'storage:' '  filesystem:' \
				"    rootdirectory: $dir/data" '  delete:' "    enabled: $delete" \
				'  maintenance:' '    uploadpurging:' '      enabled: false' \
				'http:' "  addr: 127.0.0.1:$port" "  secret: acrfs-test-$name-$$"
			if [ "$tls" = 1 ]; then
				printf '%s\n' '  tls:' "    certificate: $dir/tls/server.crt" \
					"    key: $dir/tls/server.key"
			fi
			if [ -n "$htpasswd" ]; then
				printf '%s\n' 'auth:' '  htpasswd:' '    realm: acrfs-test' \
					"    path: $(realpath -- "$htpasswd")"
			elif [ -n "$token_realm" ]; then
				printf '%s\n' 'auth:' '  token:' "    realm: $token_realm" \
					"    service: $token_service" "    issuer: $token_issuer" \
					"    rootcertbundle: $(realpath -- "$token_root")"
			fi
		} >"$dir/config.yml"

		# Append mode: tests may truncate or rotate nothing, but two writers share the file.
		# distribution reads REGISTRY_<SECTION>_<KEY> variables as configuration: a
		# REGISTRY_AUTH_FILE meant for skopeo (the ACR switch exports one) would be
		# its auth section.
		env -u REGISTRY_AUTH_FILE "$REG_BIN" serve "$dir/config.yml" >>"$dir/access.log" \
			2>>"$dir/access.log" </dev/null &
		pid=$!
		for ((i = 0; i < 100; i++)); do
			if ! kill -0 "$pid" 2>/dev/null; then
				break
			fi
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -A "$REG_PROBE_UA" \
				"${curl_ca[@]}" \
				"$scheme://127.0.0.1:$port/v2/" 2>/dev/null) || true
			if [ -n "$code" ] && [ "$code" != 000 ]; then
				printf '%s\n' "$pid" >"$dir/pid"
				printf '%s\n' "$port" >"$dir/port"
				export "REG_${name}_URL=$scheme://127.0.0.1:$port"
				export "REG_${name}_HOST=127.0.0.1:$port"
				export "REG_${name}_PID=$pid"
				export "REG_${name}_DIR=$dir"
				if [ "$tls" = 1 ]; then
					export "REG_${name}_CA=$dir/tls/ca.crt"
				fi
				REG_NAMES+=("$name")
				return 0
			fi
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			_reg_die "registry $name did not answer on port $port within 10 s"
			tail -n 20 -- "$dir/access.log" >&2
			return 1
		fi
		wait "$pid" 2>/dev/null
		if grep -q 'address already in use' -- "$dir/access.log"; then
			: >"$dir/access.log"
			continue # another process took the port between probe and bind
		fi
		_reg_die "registry $name exited during start-up"
		tail -n 20 -- "$dir/access.log" >&2
		return 1
	done
	_reg_die "registry $name: no free port after 5 attempts"
	return 1
}

# _reg_start_acr NAME [CONFIG]: the ACR emulator NAME in front of distribution
# acremu_NAME (with CONFIG's identities: see --acr-config).
_reg_start_acr() {
	local name=$1 cfg=${2:-} v
	if ! declare -F acremu_start >/dev/null; then
		# shellcheck source=tests/lib/acremu.sh
		. "$(dirname -- "${BASH_SOURCE[0]}")/acremu.sh"
	fi
	acremu_start "$name" ${cfg:+--config "$cfg"} || return 1
	for v in URL HOST PID; do
		export "REG_${name}_$v=$(_acremu_var "$name" "$v")"
	done
	export "REG_${name}_DIR=$(_reg_var "acremu_$name" DIR)" "REG_${name}_ACR=1"
	REG_NAMES+=("$name")
	if [ -n "$cfg" ]; then
		export "REG_${name}_ACRCFG=1" # no admin:adminpw: the script's own identities
		return 0
	fi
	# skopeo run by a script itself (not img_push) finds the admin here.
	"$REG_PYTHON" -c 'import base64, json, os, sys
p, host = sys.argv[1], sys.argv[2]
d = json.load(open(p)) if os.path.exists(p) else {"auths": {}}
d["auths"][host] = {"auth": base64.b64encode(b"admin:adminpw").decode()}
json.dump(d, open(p, "w"))' "$TEST_TMP/acr-auth.json" "$(_acremu_var "$name" HOST)" || return 1
	export REGISTRY_AUTH_FILE=$TEST_TMP/acr-auth.json
}

# Drop NAME from REG_NAMES.
_reg_forget() {
	local n keep=()
	for n in "${REG_NAMES[@]}"; do
		[ "$n" = "$1" ] || keep+=("$n")
	done
	REG_NAMES=("${keep[@]}")
}

reg_stop() {
	local name=$1 pid i
	if [ "$(_reg_var "$name" ACR)" = 1 ]; then
		acremu_stop "$name"
		unset "REG_${name}_PID" "REG_${name}_URL" "REG_${name}_HOST" "REG_${name}_ACR" \
			"REG_${name}_ACRCFG"
		_reg_forget "$name"
		return 0
	fi
	pid=$(_reg_var "$name" PID)
	[ -n "$pid" ] || return 0
	if kill "$pid" 2>/dev/null; then
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	rm -f -- "$TEST_TMP/$name/pid"
	unset "REG_${name}_PID" "REG_${name}_URL" "REG_${name}_HOST" "REG_${name}_CA"
	_reg_forget "$name"
	return 0
}

reg_stop_all() {
	local n
	for n in "${REG_NAMES[@]}"; do
		reg_stop "$n"
	done
	return 0
}

# The combined-format access-log lines of registry NAME.
_reg_access_lines() {
	if [ "$(_reg_var "$1" ACR)" = 1 ]; then
		# The emulator's log (registry origin) in the same form.
		"$REG_PYTHON" -c 'import json, sys, time
for line in sys.stdin:
    d = json.loads(line)
    if d["origin"] != "registry" or d.get("ua") == sys.argv[1]:
        continue
    t = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(d["t"]))
    print("127.0.0.1 - - [%s] \"%s %s HTTP/1.1\" %d 0 \"\" \"%s\"" % (
        t, d["method"], d["path"], d["status"], d.get("ua", "")))' "$REG_PROBE_UA" \
			<"$(_acremu_var "$1" LOG)"
		return
	fi
	grep -E '^[0-9a-fA-F.:]+ - [^ ]+ \[[^]]+\] "[A-Z]+ [^ ]+ HTTP/[0-9.]+" [0-9]{3} ' \
		-- "$TEST_TMP/$1/access.log" | grep -v -F "\"$REG_PROBE_UA\"" || true
}

_reg_settle() {
	local log=$TEST_TMP/$1/access.log a b i
	# The emulator writes a line before it answers: nothing to wait for.
	[ "$(_reg_var "$1" ACR)" != 1 ] || return 0
	b=$(stat -c %s -- "$log" 2>/dev/null || echo 0)
	for ((i = 0; i < 20; i++)); do
		sleep 0.05
		a=$b
		b=$(stat -c %s -- "$log" 2>/dev/null || echo 0)
		[ "$a" != "$b" ] || break
	done
}

reg_requests() {
	local name=$1 pattern=${2:-}
	_reg_settle "$name"
	if [ -n "$pattern" ]; then
		_reg_access_lines "$name" | grep -E -- "$pattern" || true
	else
		_reg_access_lines "$name"
	fi
}

reg_count_requests() {
	reg_requests "$@" | wc -l | tr -d ' '
}

reg_curl() {
	local name=$1 url ca
	shift
	url=$(_reg_var "$name" URL)
	[ -n "$url" ] || {
		_reg_die "reg_curl: registry $name not running"
		return 1
	}
	ca=$(_reg_var "$name" CA)
	local args=("$@")
	[ "$(_reg_var "$name" ACR)" != 1 ] || [ "$(_reg_var "$name" ACRCFG)" = 1 ] ||
		args=(-u admin:adminpw "${args[@]}")
	local path=${args[${#args[@]} - 1]}
	unset 'args[${#args[@]}-1]'
	if [ -n "$ca" ]; then
		curl -sS --cacert "$ca" "${args[@]}" "$url$path"
	else
		curl -sS "${args[@]}" "$url$path"
	fi
}

# _reg_json_list KEY: print the list at KEY of the JSON object on stdin, one per line.
_reg_json_list() {
	"$REG_PYTHON" -c 'import json, sys
v = json.load(sys.stdin).get(sys.argv[1]) or []
sys.stdout.write("".join(x + "\n" for x in v))' "$1"
}

# _reg_pages NAME PATH KEY [CURL-ARGS...]: the list KEY of every page from PATH on,
# following Link rel="next".
_reg_pages() {
	local name=$1 next=$2 key=$3 hdr body pages=0
	shift 3
	hdr=$(mktemp "$TEST_TMP/.hdr.XXXXXX") || return 1
	while [ -n "$next" ]; do
		pages=$((pages + 1))
		if [ "$pages" -gt 10000 ]; then
			_reg_die "_reg_pages: more than 10000 pages, Link loop?"
			rm -f -- "$hdr"
			return 1
		fi
		body=$(reg_curl "$name" -f -D "$hdr" "$@" "$next") || {
			rm -f -- "$hdr"
			return 1
		}
		printf '%s' "$body" | _reg_json_list "$key" || {
			rm -f -- "$hdr"
			return 1
		}
		next=$(tr -d '\r' <"$hdr" | sed -n 's/^[Ll]ink: *<\([^>]*\)>; *rel="next".*/\1/p')
	done
	rm -f -- "$hdr"
}

reg_catalog() {
	local name=$1 n=${2:-100}
	shift 2 2>/dev/null || shift $#
	_reg_pages "$name" "/v2/_catalog?n=$n" repositories "$@"
}

reg_tags() {
	local name=$1 repo=$2
	shift 2
	_reg_pages "$name" "/v2/$repo/tags/list" tags "$@"
}

reg_digest() {
	local name=$1 repo=$2 ref=$3
	shift 3
	reg_curl "$name" -f -I "$@" \
		-H 'Accept: application/vnd.oci.image.index.v1+json' \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"/v2/$repo/manifests/$ref" |
		tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p'
}
