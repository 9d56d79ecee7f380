# shellcheck shell=bash
# tests/integration/lib.sh: sourced by every tests/integration/*.sh.
#
# TAP:        ok DESC CMD [ARGS...]   pass if CMD exits 0 (its output is shown on failure)
#             is GOT EXPECTED DESC | isnt GOT UNEXPECTED DESC | like GOT ERE DESC | unlike GOT ERE DESC
#             pass DESC | fail DESC | diag MSG | skip REASON [N] | skip_all REASON | done_testing
#             MOAT_MUST_WORK=1 turns every skip into a failure.
# Runtime:    rt ARGS...              $MOAT_RUNTIME --root $TEST_ROOT ARGS
#             newid [NAME]            a unique container id; the id is deleted (--force) at the end
#             mkbundle DIR [JQ]       DIR/rootfs (a private copy of the test rootfs) + DIR/config.json
#                                     (config.json.in through jq JQ); DIR relative = under $TEST_TMP
#             jargs A B ...           JSON array of its arguments (for jq filters)
#             status_of ID            the status from `state`, or "none"
#             wait_status ID STATUS [SECONDS]
#             track_cgroup NAME       another cgroup dir name the leak check must not find
# Environment (set by meson, overridable):
#   MOAT_RUNTIME   runtime under test (default: $MOAT_BUILD_RUNTIME = build/moat-runtime);
#                  MOAT_RUNTIME=/usr/sbin/runc runs the suite against runc
#   MOAT_HELPER    build/tests/helpers/moat-helper      MOAT_ROOTFS  build/tests/helpers/rootfs
#   MOAT_KEEP=1    keep $TEST_TMP for inspection
#   MOAT_INTEGRATION_LEAKS=1  keep LeakSanitizer on under ASan (off by default: see below)
# At the end (done_testing) every container created is deleted and leak checks run as TAP
# tests: no state dir left under --root, no cgroup dir named after a container, no mount
# left under a bundle.

set -uo pipefail
# `... | has PATTERN`: grep -q without its early exit (which SIGPIPEs the writer, and pipefail
# would turn a match into a miss)
has() { grep "$@" >/dev/null; }

_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_src_root=$(cd "$_lib_dir/../.." && pwd)
: "${MOAT_BUILD_ROOT:=$_src_root/build}"
: "${MOAT_BUILD_RUNTIME:=$MOAT_BUILD_ROOT/moat-runtime}"
: "${MOAT_RUNTIME:=$MOAT_BUILD_RUNTIME}"
: "${MOAT_BIN:=$MOAT_BUILD_ROOT/moat}"
: "${MOAT_HELPER:=$MOAT_BUILD_ROOT/tests/helpers/moat-helper}"
: "${MOAT_ROOTFS:=$MOAT_BUILD_ROOT/tests/helpers/rootfs}"
: "${MOAT_MUST_WORK:=0}"
export MOAT_RUNTIME MOAT_BIN MOAT_HELPER MOAT_ROOTFS

# Under ASan (make check-sanitize), LeakSanitizer's exit-time check spins forever in a process
# that has joined a container's namespaces (moat-runtime exec): its tracer cannot see us.
# Leak detection stays on in the unit tests; here only with MOAT_INTEGRATION_LEAKS=1.
if [ -n "${ASAN_OPTIONS:-}" ]; then
	export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=${MOAT_INTEGRATION_LEAKS:-0}"
fi

TEST_NAME=$(basename "$0" .sh)
_tap_n=0
_tap_failed=0
_tap_done=0
_ids=()
_bundles=()
_cgroups=()
_id_n=0

# ---------------------------------------------------------------- TAP

_tap_line() { printf '%s\n' "$*"; }
diag() { printf '# %s\n' "$@" | sed '2,$s/^/# /'; }

pass() { _tap_n=$((_tap_n + 1)); _tap_line "ok $_tap_n - $1"; return 0; }
fail() {
	_tap_n=$((_tap_n + 1))
	_tap_failed=$((_tap_failed + 1))
	_tap_line "not ok $_tap_n - $1"
	local c=1
	while [ -n "${BASH_SOURCE[$c]:-}" ] && [ "${BASH_SOURCE[$c]}" = "${BASH_SOURCE[0]}" ]; do c=$((c + 1)); done
	_tap_line "#   failed at ${BASH_SOURCE[$c]:-?}:${BASH_LINENO[$((c - 1))]:-?}"
	return 1
}

ok() {
	local desc=$1 out rc f=${TEST_TMP:-/tmp}/.ok.out
	shift
	# output to a file, not a pipe: a container started by CMD may inherit it and live on
	"$@" >"$f" 2>&1 </dev/null
	rc=$?
	out=$(cat "$f" 2>/dev/null)
	if [ $rc -eq 0 ]; then
		pass "$desc"
	else
		fail "$desc"
		diag "command: $* (exit $rc)"
		[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/#   /'
		return 1
	fi
}

is() {
	if [ "$1" = "$2" ]; then
		pass "$3"
	else
		fail "$3"
		printf '%s\n' "got: '$1'" "expected: '$2'" | sed 's/^/#   /'
		return 1
	fi
}

isnt() {
	if [ "$1" != "$2" ]; then pass "$3"; else
		fail "$3"
		diag "  got '$1', expected anything else"
		return 1
	fi
}

like() {
	if [[ $1 =~ $2 ]]; then
		pass "$3"
	else
		fail "$3"
		printf '%s\n' "got: '$1'" "expected to match: /$2/" | sed 's/^/#   /'
		return 1
	fi
}

unlike() {
	if ! [[ $1 =~ $2 ]]; then
		pass "$3"
	else
		fail "$3"
		printf '%s\n' "got: '$1'" "expected not to match: /$2/" | sed 's/^/#   /'
		return 1
	fi
}

# skip REASON [N]: N skipped tests (failures under MOAT_MUST_WORK=1)
skip() {
	local reason=$1 n=${2:-1} i
	for ((i = 0; i < n; i++)); do
		if [ "$MOAT_MUST_WORK" = 1 ]; then
			fail "skipped but MOAT_MUST_WORK=1: $reason"
		else
			_tap_n=$((_tap_n + 1))
			_tap_line "ok $_tap_n # SKIP $reason"
		fi
	done
	return 0
}

# skip_all REASON: the whole file is skipped (meson: SKIP); must come before any test
skip_all() {
	if [ "$MOAT_MUST_WORK" = 1 ]; then
		_tap_line "not ok 1 - skipped but MOAT_MUST_WORK=1: $1"
		_tap_line "1..1"
		_tap_done=1
		exit 1
	fi
	_tap_line "1..0 # SKIP $1"
	_tap_done=1
	exit 0
}

bail_out() {
	_tap_line "Bail out! $*"
	_tap_done=1
	exit 1
}

done_testing() {
	_cleanup_containers
	_leak_checks
	_tap_line "1..$_tap_n"
	_tap_done=1
	[ $_tap_failed -eq 0 ] && exit 0
	exit 1
}

# ---------------------------------------------------------------- runtime

require_root() { [ "$(id -u)" -eq 0 ] || skip_all "needs root"; }

command -v jq >/dev/null || skip_all "jq is not installed (scripts/deps.sh)"
require_root
if [ ! -x "$MOAT_RUNTIME" ] && ! command -v "$MOAT_RUNTIME" >/dev/null; then
	skip_all "runtime '$MOAT_RUNTIME' not found (build it, or set MOAT_RUNTIME)"
fi
if [ ! -x "$MOAT_ROOTFS/bin/moat-helper" ] || [ "${MOAT_REBUILD_ROOTFS:-0}" = 1 ]; then
	bash "$_src_root/tests/lib/mkrootfs.sh" "$MOAT_ROOTFS" "$MOAT_HELPER" >&2 || bail_out "cannot build the test rootfs"
fi

TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/moat-it-$TEST_NAME.XXXXXX")
chmod 755 "$TEST_TMP"
TEST_ROOT=$TEST_TMP/state
mkdir -p "$TEST_ROOT"
_id_prefix="mt-$TEST_NAME-$$-$RANDOM"

rt() { "$MOAT_RUNTIME" --root "$TEST_ROOT" "$@"; }

newid() {
	_id_n=$((_id_n + 1))
	local id="$_id_prefix-${1:-c}$_id_n"
	_ids+=("$id")
	printf '%s\n' "$id"
}

# newid in the current shell (not a subshell): newid_var VAR [NAME]
newid_var() {
	_id_n=$((_id_n + 1))
	local _newid="$_id_prefix-${2:-c}$_id_n"
	_ids+=("$_newid")
	printf -v "$1" '%s' "$_newid"
}

track_cgroup() { _cgroups+=("$1"); }

jargs() { jq -cn '$ARGS.positional' --args "$@"; }

mkbundle() {
	local dir=$1 filter=${2:-.}
	case $dir in /*) ;; *) dir=$TEST_TMP/$dir ;; esac
	mkdir -p "$dir" || return 1
	cp -a "$MOAT_ROOTFS" "$dir/rootfs" || return 1
	jq "$filter" "$_lib_dir/config.json.in" >"$dir/config.json" || return 1
	_bundles+=("$dir")
}

status_of() {
	local s
	s=$(rt state "$1" 2>/dev/null | jq -r .status 2>/dev/null)
	printf '%s\n' "${s:-none}"
}

wait_status() {
	local id=$1 want=$2 secs=${3:-10} i
	for ((i = 0; i < secs * 20; i++)); do
		[ "$(status_of "$id")" = "$want" ] && return 0
		sleep 0.05
	done
	echo "container '$id' is '$(status_of "$id")', not '$want' after ${secs}s" >&2
	return 1
}

# pid of a container's init from `state`
pid_of() { rt state "$1" 2>/dev/null | jq -r .pid; }

# ---------------------------------------------------------------- cleanup and leak checks

_cleanup_containers() {
	local id
	for id in "${_ids[@]+"${_ids[@]}"}"; do
		if [ "$(status_of "$id")" != none ]; then
			rt kill "$id" KILL >/dev/null 2>&1
			rt delete --force "$id" >/dev/null 2>&1 || rt delete --force "$id" >/dev/null 2>&1
		fi
	done
}

_mounts_under() { awk -v p="$1/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo; }

_leak_checks() {
	local id left dirs=() cg=() m b
	[ ${#_ids[@]} -eq 0 ] && [ ${#_bundles[@]} -eq 0 ] && return 0
	for id in "${_ids[@]}"; do
		[ -e "$TEST_ROOT/$id" ] && dirs+=("$TEST_ROOT/$id")
	done
	while IFS= read -r left; do dirs+=("$left"); done < <(find "$TEST_ROOT" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)
	if [ ${#dirs[@]} -eq 0 ]; then pass "leak: no state left under --root"; else
		fail "leak: no state left under --root"
		printf '#   %s\n' "${dirs[@]}"
	fi
	for id in "${_ids[@]}" "${_cgroups[@]}"; do
		while IFS= read -r left; do cg+=("$left"); done < <(find /sys/fs/cgroup -maxdepth 6 -type d -name "$id" 2>/dev/null)
	done
	if [ ${#cg[@]} -eq 0 ]; then pass "leak: no cgroup named after a container"; else
		fail "leak: no cgroup named after a container"
		printf '#   %s\n' "${cg[@]}"
	fi
	m=""
	for b in "${_bundles[@]}"; do m+=$(_mounts_under "$b"); done
	if [ -z "$m" ]; then pass "leak: no mount under a bundle"; else
		fail "leak: no mount under a bundle"
		printf '#   %s\n' $m
	fi
}

_lib_exit() {
	local rc=$?
	trap - EXIT
	_cleanup_containers
	if [ "$_tap_done" = 0 ]; then
		_tap_line "not ok $((_tap_n + 1)) - test script exited early (status $rc) before done_testing"
		_tap_line "1..$((_tap_n + 1))"
		rc=1
	fi
	if [ "${MOAT_KEEP:-0}" = 1 ]; then
		echo "# kept $TEST_TMP" >&2
	elif [ -n "${TEST_TMP:-}" ] && [ -d "$TEST_TMP" ]; then
		local m
		# never rm -rf through a mount a broken runtime left behind
		for m in $(_mounts_under "$TEST_TMP" | sort -r); do umount -l "$m" 2>/dev/null; done
		rm -rf --one-file-system "$TEST_TMP" 2>/dev/null
	fi
	exit $rc
}
trap _lib_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- environment tests
# env_setup PREFIX IMAGE [ROOTFS]: what an environment test starts with: the skips (moat,
# moat-init, nft, ip, jq, a busybox with nc -l -e in the test rootfs), a private store holding
# IMAGE (an OCI layout of ROOTFS, default the test rootfs), the project P=PREFIX<pid>, ENVDIR,
# MOAT=(moat --store ...), a private IPAM; at exit everything of P goes (cleanup_env).
cleanup_env() { "${MOAT[@]}" down -v -p "$P" >/dev/null 2>&1; }
# vm_require: the vm tier's tests skip, saying why, unless QEMU, a guest kernel ($MOAT_VM_KERNEL
# or the installed one) and moat-vminit are there; MOAT_VMINIT is then exported.
vm_require() {
	command -v qemu-system-x86_64 >/dev/null || skip_all "QEMU is not installed (scripts/deps.sh installs qemu-system-x86)"
	[ -e "${MOAT_VM_KERNEL:-/var/lib/moat/vm/kernels/current}/vmlinux" ] ||
		skip_all "no guest kernel (scripts/vm-kernel.sh fetches one)"
	[ -x "$MOAT_BUILD_ROOT/guest/moat-vminit" ] || skip_all "moat-vminit not built"
	export MOAT_VMINIT=$MOAT_BUILD_ROOT/guest/moat-vminit
}

env_setup() {
	local prefix=$1 image=$2 rootfs=${3:-$MOAT_ROOTFS} nc_help
	[ -x "$MOAT_BIN" ] || skip_all "moat not built ('$MOAT_BIN')"
	[ -x "$MOAT_BUILD_ROOT/moat-init" ] || skip_all "moat-init not built ('$MOAT_BUILD_ROOT/moat-init')"
	command -v nft >/dev/null || skip_all "nft is not installed (scripts/deps.sh)"
	command -v ip >/dev/null || skip_all "ip (iproute2) is not installed (scripts/deps.sh)"
	command -v jq >/dev/null || skip_all "jq is not installed (scripts/deps.sh)"
	[ -x "$MOAT_ROOTFS/bin/busybox" ] || skip_all "the test rootfs has no busybox"
	nc_help=$("$MOAT_ROOTFS/bin/busybox" nc --help 2>&1)
	[[ $nc_help == *"-l"*"-e PROG"* ]] || skip_all "the test rootfs' busybox has no nc with -l and -e"
	STORE=$TEST_TMP/store
	P=$prefix$$
	ENVDIR=/run/moat/env/$P
	export MOAT_IPAM_DIR=$TEST_TMP/ipam
	MOAT=("$MOAT_BIN" --store "$STORE")
	trap 'rc=$?; cleanup_env; (exit $rc); _lib_exit' EXIT
	bash "$_src_root/tests/lib/mkimage.sh" layout "$TEST_TMP/layout" --tag 1 --rootfs "$rootfs" >/dev/null \
		2>"$TEST_TMP/mkimage.err" || bail_out "mkimage.sh: $(head -c 300 "$TEST_TMP/mkimage.err")"
	"${MOAT[@]}" image import "$TEST_TMP/layout" --name "$image" >"$TEST_TMP/import.out" 2>&1 ||
		bail_out "moat image import: $(head -c 300 "$TEST_TMP/import.out")"
}

# What an environment P left, for the leak checks: "links state-dir nft cgroups(...) mounts
# processes(...)" (empty: nothing).  BR: the environment's bridge, read from state.json at up
# (the links' tag is a hash for names of more than 5 characters).  ENV_PROC_CMDLINE: an extended
# regex of the services' command lines, for processes not in a cgroup (yet).
BR=""
ENV_PROC_CMDLINE=""
env_links() { [ -n "$BR" ] && ip -o link show 2>/dev/null | grep -oE "^[0-9]+: $BR(-[0-9]+)?[:@]" | tr -d ':@' | awk '{print $2}'; }
# (a listing can fail while other tests change their tables: retried)
nft_tables() {
	local i out
	for i in 1 2 3 4 5; do
		out=$(nft list tables 2>/dev/null) && break
		sleep 0.1
	done
	printf '%s\n' "$out"
}
# Every live process whose cgroup (any hierarchy) is one of P's, or that is P's supervisor (a
# fork of `moat up`: comm moat-supervisor, up's command line).  Zombies do not count: the
# services' inits are reparented to whoever reaps orphans here, and a zombie holds only its pid.
procs_of_env() {
	local d pid st
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		st=$(sed 's/.*) //' "$d/stat" 2>/dev/null | cut -c1)
		[ -z "$st" ] || [ "$st" = Z ] && continue
		{ grep -qE ":/moat/$P-|/$P-[a-z0-9_-]+\$" "$d/cgroup" ||
			{ [ -n "$ENV_PROC_CMDLINE" ] && tr '\0' ' ' <"$d/cmdline" | has -E "$ENV_PROC_CMDLINE"; } ||
			{ [ "$(cat "$d/comm")" = moat-supervisor ] && tr '\0' ' ' <"$d/cmdline" | has -E -- "-p $P( |\$)"; }; } 2>/dev/null &&
			echo "$pid"
	done
}
leftovers() {
	local out="" l
	[ -n "$(env_links)" ] && out+="links "
	[ -d "$ENVDIR" ] && out+="state-dir "
	nft_tables | has -w "moat-$P" && out+="nft "
	l=$(find /sys/fs/cgroup -maxdepth 6 -type d -name "$P-*" 2>/dev/null)
	[ -n "$l" ] && out+="cgroups($(echo "$l" | head -3 | tr '\n' ' ')) "
	awk -v p="$ENVDIR/" 'index($5, p) == 1' /proc/self/mountinfo | has . && out+="mounts "
	l=$(procs_of_env | tr '\n' ' ')
	[ -n "$l" ] && out+="processes($l) "
	printf '%s' "$out"
}

# events_of TYPE [SERVICE]: environment P's recorded events of that type (JSON lines);
# wait_event TYPE SERVICE: until there is one, up to 10 s.
events_of() { "${MOAT[@]}" events -p "$P" --format json | jq -c --arg t "$1" --arg s "${2:-}" \
	'select(.type == $t and ($s == "" or .service == $s))'; }
wait_event() { # TYPE SERVICE: up to 10 s
	local i
	for ((i = 0; i < 100; i++)); do
		[ -n "$(events_of "$1" "$2")" ] && return 0
		sleep 0.1
	done
	return 1
}
