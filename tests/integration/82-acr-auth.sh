#!/usr/bin/env bash
# test-weight: 4 (tests/run.sh starts heavier scripts first)
# Issue 10: 30-auth.sh (every credential source, ACR's four ways in, scoped identities,
# start-up failures, token caching, expiry and refresh, refused tokens, secrets kept out
# of logs) against the ACR emulator, which is its own token service, instead of
# distribution with tokenserver.py. ACRFS_TEST_ACR=1 makes 30-auth.sh start the emulator
# with its identities (reg_start --acr-config) and skip, saying why, what ACR does not
# have (docker-style token replies, htpasswd Basic-only registries); it tests ACR's
# anonymous pull instead. Release pass only: 30-auth runs these flows in both builds,
# and make check's time counts.
if [ "${ACRFS_SAN:-0}" = 1 ]; then
	. "$TESTS_LIB/tap.sh"
	skip "30-auth.sh against the ACR emulator" "release pass only (make check's time)"
	tap_done
	exit 0
fi
export ACRFS_TEST_ACR=1
. "${ACRFS_ROOT:-$PWD}/tests/integration/30-auth.sh"
