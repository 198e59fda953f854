#!/usr/bin/env bash
# Issue 10: 70-cache.sh against the ACR emulator. ACRFS_TEST_ACR=1 (tests/lib/registry.sh)
# puts tests/lib/acremu.py in front of the script's registry and pushes and mounts as its
# admin, so acrfs takes its ACR paths (recognised by the /acr/v1 probe; tags from
# /acr/v1/<r>/_tags; blobs through the storage origin); the expectations are 70-cache.sh's
# (one made explicit there: the emulator's log has no byte counts). Release pass only:
# the emulator roughly doubles the script's time, and 85-acr covers the ACR code in both.
if [ "${ACRFS_SAN:-0}" = 1 ]; then
	. "$TESTS_LIB/tap.sh"
	skip "70-cache.sh against the ACR emulator" "release pass only (make check's time)"
	tap_done
	exit 0
fi
export ACRFS_TEST_ACR=1
. "${ACRFS_ROOT:-$PWD}/tests/integration/70-cache.sh"
