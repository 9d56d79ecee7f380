#!/bin/bash
# podman with --runtime $MOAT_RUNTIME: run, exit status, exec, detach + stop/rm, stdin, networks.
# Isolated: podman's storage, runroot, tmpdir, network config and events live in $TEST_TMP;
# containers go under a cgroup parent of our own, removed at the end.
. "$(dirname "$0")/lib.sh"

command -v podman >/dev/null || skip_all "podman is not installed (scripts/deps.sh)"
command -v conmon >/dev/null || skip_all "conmon is not installed (podman needs it)"
runtime=$(command -v "$MOAT_RUNTIME") || skip_all "runtime '$MOAT_RUNTIME' not found"
runtime=$(realpath -s "$runtime")
if [ -n "${ASAN_OPTIONS:-}" ]; then
	# conmon gives the runtime a clean environment: carry the sanitizer options in a wrapper
	# (the name stays moat-runtime: moat dispatches on it)
	mkdir -p "$TEST_TMP/wrap"
	printf '#!/bin/bash\nexport ASAN_OPTIONS=%q UBSAN_OPTIONS=%q\nexec %q "$@"\n' \
		"$ASAN_OPTIONS" "${UBSAN_OPTIONS:-}" "$runtime" >"$TEST_TMP/wrap/$(basename "$runtime")"
	chmod +x "$TEST_TMP/wrap/$(basename "$runtime")"
	runtime=$TEST_TMP/wrap/$(basename "$runtime")
fi

P=$TEST_TMP/podman
mkdir -p "$P"/{root,runroot,tmp,net}
cgparent=/moat-test-podman-$$-$RANDOM
cat >"$P/containers.conf" <<C
[engine]
events_logger = "file"
events_logfile_path = "$P/events.log"
cgroup_manager = "cgroupfs"
[containers]
log_driver = "k8s-file"
C
export CONTAINERS_CONF=$P/containers.conf
export TMPDIR=$P/tmp
pm() {
	podman --root "$P/root" --runroot "$P/runroot" --tmpdir "$P/tmp" --network-config-dir "$P/net" \
		--storage-driver overlay --cgroup-manager cgroupfs --events-backend file \
		--runtime "$runtime" "$@"
}
# podman raises nproc (and nofile) to values above our hard limits; without CAP_SYS_RESOURCE
# in the bounding set that fails (EPERM): keep them within the hard limits.
ulimits=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
run_opts=(--network none "${ulimits[@]}" --cgroup-parent "$cgparent")

# podman (cgroupfs) puts conmon in <hierarchy>/libpod_parent/conmon whatever --cgroup-parent says,
# and image copies write /var/lib/containers/cache: remove them if they are ours.
pre_existing=()
for d in /var/lib/containers /sys/fs/cgroup/*/libpod_parent; do [ -e "$d" ] && pre_existing+=("$d"); done
ours() { local p; for p in "${pre_existing[@]}"; do [ "$p" = "$1" ] && return 1; done; return 0; }

podman_cleanup() {
	pm rm -af -t 0 >/dev/null 2>&1
	pm rmi -af >/dev/null 2>&1
	pm system reset -f >/dev/null 2>&1
	local d
	for d in $(find /sys/fs/cgroup -depth -type d -path "*$cgparent*" 2>/dev/null); do rmdir "$d" 2>/dev/null; done
	for d in /sys/fs/cgroup/*/libpod_parent; do
		[ -d "$d" ] && ours "$d" || continue
		[ -d "$d/conmon" ] && rmdir "$d/conmon" 2>/dev/null
		rmdir "$d" 2>/dev/null
	done
	ours /var/lib/containers && rm -rf /var/lib/containers
	return 0
}
trap 'podman_cleanup; _lib_exit' EXIT

# --- the image: a tar of the test rootfs
tar -C "$MOAT_ROOTFS" -cf "$TEST_TMP/rootfs.tar" . || bail_out "tar of the rootfs"
img=localhost/moat-test:latest
ok "podman import of the test rootfs" pm import "$TEST_TMP/rootfs.tar" "$img"

out=$(pm run --rm "${run_opts[@]}" "$img" /bin/moat-helper hostname 2>&1)
is "$?" 0 "run --rm --network none exits 0"
like "$out" "hostname=[0-9a-f]{12}" "the container has podman's hostname (its short id)"

out=$(pm run --rm "${run_opts[@]}" "$img" /bin/moat-helper pid 2>&1)
like "$out" "^pid=1 ppid=0" "the process is pid 1"

out=$(pm run --rm "${run_opts[@]}" "$img" /bin/moat-helper rlimits 2>&1)
like "$out" "NOFILE 1024 1024" "--ulimit nofile=1024:1024 applies"

out=$(pm run --rm "${run_opts[@]}" --hostname moat-pm "$img" /bin/moat-helper hostname 2>&1)
like "$out" "hostname=moat-pm" "--hostname applies"

pm run --rm "${run_opts[@]}" "$img" /bin/moat-helper exit 7 >/dev/null 2>&1
is "$?" 7 "exit status passes through podman"

out=$(echo "through stdin" | pm run --rm -i "${run_opts[@]}" "$img" /bin/moat-helper stdin-echo 2>&1)
is "$out" "through stdin" "run -i passes stdin"

out=$(pm run --rm "${run_opts[@]}" "$img" /bin/moat-helper caps 2>&1)
like "$out" "CapBnd:	00000000[0-9a-f]{8}" "podman's default bounding set applies"
unlike "$out" "CapBnd:	000001ff" "not every capability"

# --- detached: ps, exec, stop, rm
cid=$(pm run -d "${run_opts[@]}" --name moat-detached "$img" /bin/moat-helper sleep 600 2>"$TEST_TMP/err")
is "$?" 0 "run -d"
[ -s "$TEST_TMP/err" ] && diag "$(cat "$TEST_TMP/err")"
like "$(pm ps --format '{{.Names}} {{.Status}}' 2>&1)" "moat-detached Up" "ps shows it running"
out=$(pm exec moat-detached /bin/moat-helper pid 2>&1)
is "$?" 0 "exec exits 0"
like "$out" "^pid=[0-9]+ ppid=0" "exec enters the pid namespace"
unlike "$out" "^pid=1 " "the exec'd process is not pid 1"
pm exec moat-detached /bin/moat-helper exit 3 >/dev/null 2>&1
is "$?" 3 "exec passes the exit status through"
out=$(echo hi | pm exec -i moat-detached /bin/moat-helper stdin-echo 2>&1)
is "$out" "hi" "exec -i passes stdin"
ok "stop (SIGTERM is ignored by pid 1: SIGKILL after 1s)" pm stop -t 1 moat-detached
like "$(pm ps -a --format '{{.Names}} {{.Status}}' 2>&1)" "moat-detached Exited" "ps -a shows it exited"
ok "rm" pm rm moat-detached
is "$(pm ps -aq 2>&1)" "" "no container left"
if [ -n "$cid" ]; then
	is "$(find /sys/fs/cgroup -maxdepth 6 -type d -name "*${cid}*" 2>/dev/null)" "" "no cgroup left for the container"
fi

# --- network host
out=$(pm run --rm --network host "${ulimits[@]}" --cgroup-parent "$cgparent" "$img" \
	/bin/moat-helper read /proc/net/dev 2>&1)
is "$?" 0 "run --network host exits 0"
like "$out" "lo:" "network host: the host's interfaces are visible"

# --- the vm tier through podman: the annotation moat.isolation=vm
if command -v qemu-system-x86_64 >/dev/null && [ -e /var/lib/moat/vm/kernels/current/vmlinux ] &&
	[ -x "$(dirname "$MOAT_RUNTIME")/moat" ]; then
	out=$(pm run --rm --annotation moat.isolation=vm "${ulimits[@]}" --cgroup-parent "$cgparent" "$img" \
		/bin/sh -c 'uname -r; exit 4' 2>"$TEST_TMP/vm.err")
	is "$?" 4 "run --annotation moat.isolation=vm: the exit status from the VM"
	like "$out" "^[0-9]" "... it printed a kernel release"
	isnt "$out" "$(uname -r)" "... the guest's own kernel ($out, the host $(uname -r))"
	[ -s "$TEST_TMP/vm.err" ] && diag "$(head -5 "$TEST_TMP/vm.err")"
	# a terminal (-t: conmon's console socket) and exec into the running VM (podman exec)
	printf '#!/bin/bash\nstty rows 30 cols 90\n%s\n' "$(declare -f pm); pm run --rm -t --annotation moat.isolation=vm \
		${ulimits[*]} --cgroup-parent $cgparent $img /bin/sh -c 'tty; stty size'" >"$TEST_TMP/pm-tty.sh"
	out=$(P="$P" runtime="$runtime" CONTAINERS_CONF="$CONTAINERS_CONF" TMPDIR="$TMPDIR" \
		script -qec "bash $TEST_TMP/pm-tty.sh" /dev/null 2>&1 </dev/null | tr -d '\r')
	like "$out" "/dev/pts/[0-9]+" "run -t in a VM: the process has a terminal"
	like "$out" "30 90" "... of the caller's size"
	id=$(pm run -d --annotation moat.isolation=vm "${ulimits[@]}" --cgroup-parent "$cgparent" "$img" /bin/sleep 600)
	out=$(pm exec "$id" /bin/sh -c 'uname -r; cat /proc/1/comm' 2>&1)
	is "$out" "$(printf '%s\ninit' "$(pm exec "$id" uname -r 2>/dev/null)")" "podman exec runs in the VM (its init is PID 1)"
	isnt "$(head -1 <<<"$out")" "$(uname -r)" "... under the guest's kernel"
	is "$(pm inspect -f '{{.State.Status}}' "$id" 2>&1)" running "podman sees the VM container running"
	ok "podman rm -f of the VM container" pm rm -f -t 0 "$id"
else
	skip "no QEMU, guest kernel or moat binary next to the runtime (scripts/deps.sh)" 8
fi

podman_cleanup
ok "storage reset leaves no mount under the test dir" test -z "$(_mounts_under "$P")"
is "$(find /sys/fs/cgroup -maxdepth 3 -type d \( -path "*$cgparent*" -o -name libpod_parent \) 2>/dev/null | while read -r d; do ours "$d" && echo "$d"; done)" "" "no cgroup left by podman"
done_testing
