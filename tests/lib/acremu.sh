# shellcheck shell=bash
# tests/lib/acremu.sh — an Azure Container Registry emulator (tests/lib/acremu.py) in front
# of a real distribution registry, for tests. Needs registry.sh (sourced here if missing).
#
#   acremu_start NAME [--config FILE] [ACREMU-ARGS...]
#       Start distribution (reg_start acremu_NAME, no auth: the emulator is the auth
#       boundary) and the emulator in front of it; wait until both answer. NAME is
#       [A-Za-z0-9_]+. Files live in $TEST_TMP/acremu-NAME/: config.json, state/ (keys,
#       acremu-state.json), requests.jsonl (request log), token.log (the token service's
#       log: identity and granted access, no secrets), tokens (every token issued), out.
#       Exports:
#         ACR_<NAME>_URL      http://127.0.0.1:PORT (the registry origin: /v2, /acr/v1,
#                             /oauth2/token, /oauth2/exchange)
#         ACR_<NAME>_HOST     127.0.0.1:PORT
#         ACR_<NAME>_STORAGE  http://127.0.0.1:PORT2 (the storage origin blobs redirect to)
#         ACR_<NAME>_LOG      the request log (JSON lines: t, origin, method, path, auth,
#                             status, ua; SAS signatures redacted)
#         ACR_<NAME>_CONTROL  http://127.0.0.1:PORT/_acremu/control
#         ACR_<NAME>_REALM, _SERVICE, _PID, _DIR, _TSLOG, _TOKENS
#         ACR_<NAME>_REG      the registry.sh name of the distribution behind it
#                             (REG_<that>_URL reaches distribution directly, around
#                             the emulator)
#       The default identities (--config replaces them; tokenserver.py's format, with
#       ACR's actions metadata_read / metadata_write besides pull / push / delete):
#         admin:adminpw     catalog; every repository: all five actions
#         pusher:pusherpw   catalog; pull, push, metadata_read
#         reader:readerpw   catalog; pull, metadata_read
#         puller:pullerpw   no catalog; pull only (a repository-scoped token)
#         anonymous         nothing; AAD token "aad-token-admin" exchanges to admin.
#   acremu_stop NAME         stop the emulator (SIGTERM, by PID) and its distribution.
#   acremu_stop_all          for traps.
#   acremu_restart NAME      stop the emulator only and start it again on the same ports
#                            with the same state directory (metadata, keys, SAS key).
#   acremu_control NAME JSON POST JSON to the control endpoint; prints the reply; fails
#                            unless it answered 200 (keys: see acremu.py's header).
#   acremu_token NAME USER:PASS SCOPE...
#       Print an access token for the SCOPEs from GET /oauth2/token (USER:PASS empty:
#       anonymous). The token holds what the identity may have of them.
#   acremu_log_mark NAME     remember the request log's length;
#   acremu_log_since NAME [ERE]
#                            print the request-log lines written since the mark (those
#                            matching ERE). Lines are written before the client has its
#                            answer, so no waiting is needed.

if ! declare -F reg_start >/dev/null; then
	# shellcheck source=tests/lib/registry.sh
	. "${TESTS_LIB:-$(dirname -- "${BASH_SOURCE[0]}")}/registry.sh"
fi

ACREMU_PY=${ACREMU_PY:-$(dirname -- "${BASH_SOURCE[0]}")/acremu.py}
ACREMU_NAMES=()

_acremu_die() {
	printf 'acremu.sh: %s\n' "$*" >&2
	return 1
}

_acremu_var() {
	local v="ACR_${1}_${2}"
	printf '%s' "${!v:-}"
}

_acremu_default_config() {
	cat <<'EOF'
{"identities": [
  {"username": "admin", "password": "adminpw", "catalog": true,
   "repositories": [{"pattern": "*", "actions":
     ["pull", "push", "delete", "metadata_read", "metadata_write"]}]},
  {"username": "pusher", "password": "pusherpw", "catalog": true,
   "repositories": [{"pattern": "*", "actions": ["pull", "push", "metadata_read"]}]},
  {"username": "reader", "password": "readerpw", "catalog": true,
   "repositories": [{"pattern": "*", "actions": ["pull", "metadata_read"]}]},
  {"username": "puller", "password": "pullerpw", "catalog": false,
   "repositories": [{"pattern": "*", "actions": ["pull"]}]}
 ],
 "aad_tokens": {"aad-token-admin": "admin"}}
EOF
}

# _acremu_launch NAME PORT SPORT: start acremu.py with the saved arguments, wait for READY.
_acremu_launch() {
	local name=$1 port=$2 sport=$3 dir line i pid reg
	dir=$TEST_TMP/acremu-$name
	reg=acremu_$name
	local extra=()
	mapfile -t extra <"$dir/args"
	: >"$dir/out"
	/usr/bin/python3 "$ACREMU_PY" --upstream "$(_reg_var "$reg" URL)" \
		--storage-root "$(_reg_var "$reg" DIR)/data" --config "$dir/config.json" \
		--state-dir "$dir/state" --log "$dir/requests.jsonl" --ts-log "$dir/token.log" \
		--token-log "$dir/tokens" --pid-file "$dir/pid" --port "$port" \
		--storage-port "$sport" "${extra[@]}" >"$dir/out" 2>&1 </dev/null &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		line=$(grep -m1 '^READY port=' "$dir/out" 2>/dev/null) && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$line" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		sed 's/^/# /' "$dir/out" >&2
		_acremu_die "emulator $name did not start"
		return 1
	fi
	port=$(sed -n 's/^READY port=\([0-9]*\) .*/\1/p' <<<"$line")
	sport=$(sed -n 's/.* storage_port=\([0-9]*\) .*/\1/p' <<<"$line")
	printf '%s %s\n' "$port" "$sport" >"$dir/ports"
	local v
	for v in "URL=http://127.0.0.1:$port" "HOST=127.0.0.1:$port" \
		"STORAGE=http://127.0.0.1:$sport" "LOG=$dir/requests.jsonl" \
		"CONTROL=http://127.0.0.1:$port/_acremu/control" \
		"REALM=$(sed -n 's/.* realm=\([^ ]*\).*/\1/p' <<<"$line")" \
		"SERVICE=$(sed -n 's/.* service=\([^ ]*\).*/\1/p' <<<"$line")" \
		"PID=$pid" "DIR=$dir" "TSLOG=$dir/token.log" "TOKENS=$dir/tokens" "REG=$reg"; do
		export "ACR_${name}_$v"
	done
}

acremu_start() {
	local name=${1:-} cfg=''
	shift || true
	[[ $name =~ ^[A-Za-z0-9_]+$ ]] || {
		_acremu_die "acremu_start: bad NAME '$name'"
		return 1
	}
	if [ "${1:-}" = --config ]; then
		cfg=$2
		shift 2
	fi
	[ -z "$(_acremu_var "$name" PID)" ] || {
		_acremu_die "acremu_start: emulator $name already running"
		return 1
	}
	local dir=$TEST_TMP/acremu-$name
	mkdir -p -- "$dir/state" || return 1
	if [ -n "$cfg" ]; then
		cp -- "$cfg" "$dir/config.json" || return 1
	else
		_acremu_default_config >"$dir/config.json"
	fi
	printf '%s\n' "$@" >"$dir/args"
	[ $# -gt 0 ] || : >"$dir/args"
	reg_start "acremu_$name" || return 1
	if ! _acremu_launch "$name" 0 0; then
		reg_stop "acremu_$name"
		return 1
	fi
	ACREMU_NAMES+=("$name")
}

# _acremu_kill NAME: stop the emulator process only.
_acremu_kill() {
	local name=$1 pid
	pid=$(_acremu_var "$name" PID)
	[ -n "$pid" ] || return 0
	# SIGTERM: a clean exit (its metadata is on disk after every change); SIGKILL if
	# it has not exited within 5 s.
	if kill "$pid" 2>/dev/null; then
		timeout 5 tail -s 0.1 --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || true
	unset "ACR_${name}_PID"
}

acremu_restart() {
	local name=$1 ports
	ports=$(cat -- "$TEST_TMP/acremu-$name/ports") || return 1
	_acremu_kill "$name"
	# shellcheck disable=SC2086 # two numbers
	_acremu_launch "$name" $ports
}

acremu_stop() {
	local name=$1 n keep=()
	_acremu_kill "$name"
	reg_stop "acremu_$name"
	for n in "${ACREMU_NAMES[@]}"; do
		[ "$n" = "$name" ] || keep+=("$n")
	done
	ACREMU_NAMES=("${keep[@]}")
	return 0
}

acremu_stop_all() {
	local n
	for n in "${ACREMU_NAMES[@]}"; do
		acremu_stop "$n"
	done
	return 0
}

acremu_control() {
	curl -sS -f -X POST -H 'Content-Type: application/json' --data "$2" \
		"$(_acremu_var "$1" CONTROL)"
}

acremu_token() {
	local name=$1 cred=$2 s
	shift 2
	local args=(-sS -f -G --data-urlencode "service=$(_acremu_var "$name" SERVICE)")
	for s in "$@"; do
		args+=(--data-urlencode "scope=$s")
	done
	[ -z "$cred" ] || args+=(-u "$cred")
	curl "${args[@]}" "$(_acremu_var "$name" REALM)" |
		/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

acremu_log_mark() {
	local n
	n=$(wc -l <"$(_acremu_var "$1" LOG)")
	printf -v "ACR_${1}_MARK" '%s' "$n"
}

acremu_log_since() {
	local name=$1 pattern=${2:-} mark
	mark=$(_acremu_var "$name" MARK)
	tail -n +"$((${mark:-0} + 1))" -- "$(_acremu_var "$name" LOG)" |
		grep -E -- "${pattern:-.}" || true
}
