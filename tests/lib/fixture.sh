# shellcheck shell=bash
# tests/lib/fixture.sh — a run-wide cache of directories that are costly to build and
# the same for every script that builds them (a seeded registry's storage, an image
# layout): built once per tests/run.sh run, copied for each user.
#
#   fixture_get NAME DEST BUILDER [ARGS...]
#       Make DEST (must not exist) a copy of fixture NAME. The first caller in the run
#       builds it: BUILDER DIR ARGS... fills the empty directory DIR (0 on success);
#       later callers, in this or any other script of the run, copy what it built.
#       The key is NAME plus the text of BUILDER (declare -f) and ARGS, so a changed
#       recipe never reuses an old result. Callers of the same key wait for each other
#       (flock); a failed build leaves nothing behind, and the next caller tries again.
#       Returns BUILDER's status when it fails, 1 on any other failure.
#
# The cache is $ACRFS_TEST_CACHE (tests/run.sh: one directory for the whole run), else
# $TEST_TMP/fixtures (a script run on its own builds for itself). A fixture holds only
# files: no server runs from it; whoever built it stopped what it started.

_fixture_die() {
	printf 'fixture.sh: %s\n' "$*" >&2
	return 1
}

fixture_get() {
	local name=${1:?NAME} dest=${2:?DEST} builder=${3:?BUILDER}
	shift 3
	[[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || {
		_fixture_die "bad NAME '$name'"
		return 1
	}
	[ ! -e "$dest" ] || {
		_fixture_die "$dest exists"
		return 1
	}
	local cache=${ACRFS_TEST_CACHE:-$TEST_TMP/fixtures} key dir rc=0
	mkdir -p -- "$cache" || return 1
	key=$({ declare -f "$builder" && printf '%s\0' "$@"; } | sha256sum | cut -c1-16) || return 1
	dir=$cache/$name-$key
	# A subshell: the lock is held until it ends, and its exits end only it.
	(
		flock 9 || {
			_fixture_die "cannot lock $dir.lock"
			exit 1
		}
		if [ ! -d "$dir" ]; then
			rm -rf -- "$dir.new"
			mkdir -- "$dir.new" || exit 1
			"$builder" "$dir.new" "$@" || {
				rc=$?
				rm -rf -- "$dir.new"
				_fixture_die "building $name failed (status $rc)"
				exit "$rc"
			}
			mv -T -- "$dir.new" "$dir" || exit 1
		fi
		cp -a -- "$dir" "$dest" || exit 1
	) 9>"$dir.lock"
}
