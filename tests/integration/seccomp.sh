#!/bin/bash
# linux.seccomp: errno rules, allow lists, argument filters, kill, flags, the
# notify listener, and clear errors for bad profiles.
. "$(dirname "$0")/lib.sh"

# A realistic allow list (a subset of Docker's default profile): enough for the
# helper, busybox sh and the runtime's last steps before execve.
allow_list=$(jargs accept accept4 access arch_prctl bind brk capget capset chdir chmod chown clock_getres \
	clock_gettime clock_nanosleep clone clone3 close close_range connect dup dup2 dup3 epoll_create1 epoll_ctl \
	epoll_pwait epoll_wait eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fchdir fchmod \
	fchmodat fchown fchownat fcntl fdatasync flock fork fstat fstatfs fsync ftruncate futex getcwd getdents \
	getdents64 getegid geteuid getgid getgroups getpgid getpgrp getpid getppid getpriority getrandom getresgid \
	getresuid getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday getuid getxattr ioctl kill \
	lgetxattr link linkat listen lseek lstat madvise membarrier memfd_create mkdir mkdirat mmap mprotect mremap \
	munmap nanosleep newfstatat open openat openat2 pause pipe pipe2 poll ppoll prctl pread64 preadv prlimit64 \
	pselect6 pwrite64 read readlink readlinkat readv recvfrom recvmsg rename renameat renameat2 restart_syscall \
	rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend \
	rt_sigtimedwait sched_getaffinity sched_yield select sendmsg sendto set_robust_list set_tid_address setgid \
	setgroups setitimer setpgid setregid setresgid setresuid setreuid setsid setsockopt setuid shutdown \
	sigaltstack socket socketpair stat statfs statx symlink symlinkat sysinfo tgkill time times tkill truncate \
	umask uname unlink unlinkat utimensat vfork wait4 waitid write writev)

# --- defaultAction ALLOW, mkdir/mkdirat -> EPERM via errnoRet
b=$TEST_TMP/b-errno
mkbundle "$b" '.process.args = ["/bin/sh", "-c", "/bin/moat-helper syscall mkdir; /bin/moat-helper syscall getppid; mkdir /tmp/x 2>&1; /bin/moat-helper seccomp-mode"] | .linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], syscalls: [{names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1}]}' || bail_out mkbundle
newid_var id errno
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$?" 0 "run with an errno rule exits 0"
like "$out" $'^EPERM\n' "mkdir returns EPERM (errnoRet 1)"
like "$out" $'\nOK\n' "other syscalls still work (getppid)"
like "$out" "Operation not permitted" "busybox mkdir (mkdirat) fails with EPERM too"
like "$out" "Seccomp:[[:space:]]+2" "the seccomp mode is 2 (filter) in /proc/self/status"
rt delete "$id" >/dev/null 2>&1

# errnoRet other than EPERM
b=$TEST_TMP/b-errno2
mkbundle "$b" '.process.args = ["/bin/moat-helper", "syscall", "mkdir"] | .linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [{names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 28}]}' || bail_out mkbundle
newid_var id errno2
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$out" ENOSPC "errnoRet 28 gives ENOSPC"
rt delete "$id" >/dev/null 2>&1

# SCMP_ACT_ERRNO without errnoRet defaults to EPERM
b=$TEST_TMP/b-errno3
mkbundle "$b" '.process.args = ["/bin/moat-helper", "syscall", "mkdir"] | .linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [{names: ["mkdir"], action: "SCMP_ACT_ERRNO"}]}' || bail_out mkbundle
newid_var id errno3
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$out" EPERM "SCMP_ACT_ERRNO without errnoRet gives EPERM"
rt delete "$id" >/dev/null 2>&1

# --- defaultAction ERRNO with an allow list
b=$TEST_TMP/b-allow
mkbundle "$b" ".process.args = [\"/bin/sh\", \"-c\", \"/bin/moat-helper syscall getppid; /bin/moat-helper syscall mkdir; /bin/moat-helper syscall unshare; /bin/moat-helper syscall sethostname; echo DONE\"] | .linux.seccomp = {defaultAction: \"SCMP_ACT_ERRNO\", defaultErrnoRet: 38, architectures: [\"SCMP_ARCH_X86_64\"], syscalls: [{names: $allow_list, action: \"SCMP_ACT_ALLOW\"}]}" || bail_out mkbundle
newid_var id allow
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$?" 0 "run with a default-deny allow list exits 0"
is "$out" $'OK\nOK\nENOSYS\nENOSYS\nDONE' "allowed syscalls work, others get defaultErrnoRet (ENOSYS)"
rt delete "$id" >/dev/null 2>&1

# --- argument filters: socket(AF_INET) allowed, socket(AF_PACKET) denied
b=$TEST_TMP/b-args
mkbundle "$b" '.process.args = ["/bin/sh", "-c", "/bin/moat-helper syscall socket; /bin/moat-helper syscall socket-packet"] | .process.capabilities.bounding += ["CAP_NET_RAW"] | .process.capabilities.effective += ["CAP_NET_RAW"] | .process.capabilities.permitted += ["CAP_NET_RAW"] | .linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [{names: ["socket"], action: "SCMP_ACT_ERRNO", errnoRet: 97, args: [{index: 0, value: 17, op: "SCMP_CMP_EQ"}]}]}' || bail_out mkbundle
newid_var id args
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$out" $'OK\nEAFNOSUPPORT' "an argument filter (index 0 == AF_PACKET) matches only that call"
rt delete "$id" >/dev/null 2>&1
# SCMP_CMP_MASKED_EQ on unshare flags: CLONE_NEWUSER denied, CLONE_NEWUTS not
b=$TEST_TMP/b-args2
mkbundle "$b" '.process.args = ["/bin/sh", "-c", "/bin/moat-helper syscall unshare-user; /bin/moat-helper syscall unshare"] | .process.capabilities.bounding += ["CAP_SYS_ADMIN"] | .process.capabilities.effective += ["CAP_SYS_ADMIN"] | .process.capabilities.permitted += ["CAP_SYS_ADMIN"] | .linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [{names: ["unshare"], action: "SCMP_ACT_ERRNO", errnoRet: 1, args: [{index: 0, value: 268435456, valueTwo: 268435456, op: "SCMP_CMP_MASKED_EQ"}]}]}' || bail_out mkbundle
newid_var id args2
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$out" $'EPERM\nOK' "SCMP_CMP_MASKED_EQ: unshare(CLONE_NEWUSER) denied, unshare(CLONE_NEWUTS) allowed"
rt delete "$id" >/dev/null 2>&1

# --- SCMP_ACT_KILL_PROCESS: the container dies with SIGSYS
b=$TEST_TMP/b-kill
mkbundle "$b" '.process.args = ["/bin/moat-helper", "syscall", "mkdir"] | .linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [{names: ["mkdir"], action: "SCMP_ACT_KILL_PROCESS"}]}' || bail_out mkbundle
newid_var id kill
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$?" 159 "SCMP_ACT_KILL_PROCESS: exit status 159 (128 + SIGSYS)"
unlike "$out" "OK|EPERM" "the syscall never returned"
rt delete "$id" >/dev/null 2>&1

# --- flags
b=$TEST_TMP/b-flags
mkbundle "$b" '.process.args = ["/bin/moat-helper", "syscall", "mkdir"] | .linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"], syscalls: [{names: ["mkdir"], action: "SCMP_ACT_ERRNO"}]}' || bail_out mkbundle
newid_var id flags
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$out" EPERM "flags SECCOMP_FILTER_FLAG_LOG and SPEC_ALLOW are accepted"
rt delete "$id" >/dev/null 2>&1
b=$TEST_TMP/b-badflag
mkbundle "$b" '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_BOGUS"]}' || bail_out mkbundle
newid_var id badflag
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$?" 1 "an unknown flag fails with status 1"
like "$out" "SECCOMP_FILTER_FLAG_BOGUS" "the error names the flag"

# --- bad profiles: clear errors, status 1, nothing left
b=$TEST_TMP/b-badact
mkbundle "$b" '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [{names: ["mkdir"], action: "SCMP_ACT_EXPLODE"}]}' || bail_out mkbundle
newid_var id badact
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$?" 1 "an unknown action fails with status 1"
like "$out" "SCMP_ACT_EXPLODE" "the error names the action"
is "$(status_of "$id")" none "nothing left after an unknown action"
b=$TEST_TMP/b-badarch
mkbundle "$b" '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_Z80"]}' || bail_out mkbundle
newid_var id badarch
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$?" 1 "an unknown architecture fails with status 1"
like "$out" "SCMP_ARCH_Z80" "the error names the architecture"
b=$TEST_TMP/b-baddef
mkbundle "$b" '.linux.seccomp = {defaultAction: "SCMP_ACT_NOPE"}' || bail_out mkbundle
newid_var id baddef
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$?" 1 "an unknown defaultAction fails with status 1"
like "$out" "SCMP_ACT_NOPE" "the error names the defaultAction"
b=$TEST_TMP/b-badname
mkbundle "$b" '.process.args = ["/bin/moat-helper", "syscall", "mkdir"] | .linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [{names: ["no_such_syscall_xyz", "mkdir"], action: "SCMP_ACT_ERRNO"}]}' || bail_out mkbundle
newid_var id badname
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
like "$out" "EPERM" "an unknown syscall name is skipped (as runc does), the rest applies"
rt delete "$id" >/dev/null 2>&1

# --- SCMP_ACT_NOTIFY with a listener
if ! command -v python3 >/dev/null; then
	skip "python3 is needed for the seccomp listener" 5
else
	sock=$TEST_TMP/listener.sock
	cat >"$TEST_TMP/listener.py" <<'EOF'
import array, json, os, socket, struct, sys, fcntl
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(1)
s.settimeout(20)
print("listening", flush=True)
c, _ = s.accept()
fds = array.array("i")
data, anc, flags, addr = c.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
for level, typ, d in anc:
    if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
        fds.frombytes(d[:len(d) - (len(d) % fds.itemsize)])
c.settimeout(1)
try:
    while True:
        more = c.recv(65536)
        if not more:
            break
        data += more
except socket.timeout:
    pass
st = json.loads(data)
res = {"state": st, "nfds": len(fds)}
if fds:
    fd = fds[0]
    res["fdlink"] = os.readlink("/proc/self/fd/%d" % fd)
    # struct seccomp_notif: id u64, pid u32, flags u32, nr i32, arch u32, ip u64, args u64[6]
    SECCOMP_IOCTL_NOTIF_RECV = 0xc0502100
    SECCOMP_IOCTL_NOTIF_SEND = 0xc0182101
    buf = bytearray(80)
    fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, buf)
    nid, npid, _, nr = struct.unpack_from("QIIi", buf)
    res["notif_pid"] = npid
    res["notif_nr"] = nr
    # answer: error -ENOSPC
    fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(struct.pack("QqiI", nid, 0, -28, 0)))
with open(out, "w") as f:
    json.dump(res, f)
EOF
	python3 "$TEST_TMP/listener.py" "$sock" "$TEST_TMP/listener.json" >"$TEST_TMP/listener.log" 2>&1 &
	lpid=$!
	for i in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
	b=$TEST_TMP/b-notify
	mkbundle "$b" ".process.args = [\"/bin/sh\", \"-c\", \"sleep 1; /bin/moat-helper syscall mkdir\"] | .linux.seccomp = {defaultAction: \"SCMP_ACT_ALLOW\", listenerPath: \"$sock\", listenerMetadata: \"meta-moat\", syscalls: [{names: [\"mkdir\"], action: \"SCMP_ACT_NOTIFY\"}]}" || bail_out mkbundle
	newid_var id notify
	out=$(timeout 30 "$MOAT_RUNTIME" --root "$TEST_ROOT" run --bundle "$b" "$id" </dev/null 2>&1)
	rc=$?
	wait "$lpid"
	lj=$(cat "$TEST_TMP/listener.json" 2>/dev/null)
	[ -n "$lj" ] || diag "listener: $(cat "$TEST_TMP/listener.log")"
	is "$(printf '%s' "$lj" | jq -r .nfds 2>/dev/null)" 1 "the listener receives one fd"
	like "$(printf '%s' "$lj" | jq -r .fdlink 2>/dev/null)" "seccomp" "the fd is a seccomp notify fd"
	is "$(printf '%s' "$lj" | jq -c .state.fds 2>/dev/null)" '["seccompFd"]' "the state says fds: [\"seccompFd\"]"
	like "$(printf '%s' "$lj" | jq -r .state.pid 2>/dev/null)" '^[1-9][0-9]*$' "the state has the container's pid"
	is "$(printf '%s' "$lj" | jq -r .state.metadata 2>/dev/null)" meta-moat "the state has listenerMetadata"
	is "$(printf '%s' "$lj" | jq -r .state.state.id 2>/dev/null)" "$id" "the state has the container state with its id"
	is "$(printf '%s' "$lj" | jq -r .notif_nr 2>/dev/null)" 83 "the listener got the mkdir notification (nr 83)"
	is "$rc:$out" "0:ENOSPC" "the listener's answer (-ENOSPC) reaches the container"
	rt delete --force "$id" >/dev/null 2>&1

	# no listener at listenerPath: a clear error
	b=$TEST_TMP/b-nolistener
	mkbundle "$b" ".linux.seccomp = {defaultAction: \"SCMP_ACT_ALLOW\", listenerPath: \"$TEST_TMP/none.sock\", syscalls: [{names: [\"mkdir\"], action: \"SCMP_ACT_NOTIFY\"}]}" || bail_out mkbundle
	newid_var id nolistener
	out=$(timeout 30 "$MOAT_RUNTIME" --root "$TEST_ROOT" run --bundle "$b" "$id" </dev/null 2>&1)
	is "$?" 1 "a missing listener fails with status 1"
	like "$out" "none.sock" "the error names the listener path"
	is "$(status_of "$id")" none "nothing left after the listener error"
	# SCMP_ACT_NOTIFY without a listenerPath
	b=$TEST_TMP/b-nopath
	mkbundle "$b" '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", syscalls: [{names: ["mkdir"], action: "SCMP_ACT_NOTIFY"}]}' || bail_out mkbundle
	newid_var id nopath
	out=$(timeout 30 "$MOAT_RUNTIME" --root "$TEST_ROOT" run --bundle "$b" "$id" </dev/null 2>&1)
	isnt "$?" 0 "SCMP_ACT_NOTIFY without listenerPath is refused"
	like "$out" "listenerPath" "the error names listenerPath"
fi

done_testing
