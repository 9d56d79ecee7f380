#!/bin/bash
# Process attributes: rlimits, oom_score_adj, noNewPrivileges, user, umask, cwd, env,
# ioPriority, scheduler, sysctl, hostname, personality, readonly root, masked and
# readonly paths.
. "$(dirname "$0")/lib.sh"

# CAP_SYS_RESOURCE in the runtime's bounding set?
has_sys_resource=0
bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
(( (16#$bnd >> 24) & 1 )) && has_sys_resource=1


# run_out NAME JQ: runs a bundle made with JQ, sets $out and $rc
run_out() {
	local b=$TEST_TMP/b-$1 id
	mkbundle "$b" "$2" || bail_out mkbundle
	newid_var id "$1"
	out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
	rc=$?
	rt delete --force "$id" >/dev/null 2>&1
	last_id=$id
}

# --- rlimits
run_out rlim '.process.args = ["/bin/moat-helper", "rlimits"] | .process.rlimits = [{type: "RLIMIT_NOFILE", soft: 512, hard: 768}, {type: "RLIMIT_NPROC", soft: 300, hard: 400}, {type: "RLIMIT_CORE", soft: 0, hard: 0}]'
is "$rc" 0 "run (rlimits) exits 0"
like "$out" "NOFILE 512 768" "RLIMIT_NOFILE soft 512 hard 768 inside"
like "$out" "NPROC 300 400" "RLIMIT_NPROC soft 300 hard 400 inside"
like "$out" "CORE 0 0" "RLIMIT_CORE 0 0 inside"
host_hard=$(ulimit -Hn)
if [ "$host_hard" != unlimited ]; then
	above=$((host_hard + 1000))
	run_out rlimhigh ".process.args = [\"/bin/moat-helper\", \"rlimits\"] | .process.rlimits = [{type: \"RLIMIT_NOFILE\", soft: 1024, hard: $above}]"
	if [ $has_sys_resource = 0 ]; then
		is "$rc" 1 "raising the NOFILE hard limit above the host's ($host_hard) fails with status 1"
		like "$out" "RLIMIT_NOFILE" "the error names the rlimit"
		like "$out" "CAP_SYS_RESOURCE" "the error names CAP_SYS_RESOURCE"
		is "$(status_of "$last_id")" none "nothing left after the rlimit error"
	else
		skip "the runtime has CAP_SYS_RESOURCE: raising the hard limit is allowed" 4
	fi
fi
run_out rlimbad '.process.rlimits = [{type: "RLIMIT_BOGUS", soft: 1, hard: 1}]'
is "$rc" 1 "an unknown rlimit type fails with status 1"
like "$out" "RLIMIT_BOGUS" "the error names the rlimit type"
run_out rlimsoft '.process.rlimits = [{type: "RLIMIT_NOFILE", soft: 2048, hard: 1024}]'
isnt "$rc" 0 "soft above hard is refused"
like "$out" "rlimits\\[0\\]|RLIMIT_NOFILE" "the soft > hard error names the rlimit"

# --- oomScoreAdj, noNewPrivileges
run_out oom '.process.args = ["/bin/cat", "/proc/self/oom_score_adj"] | .process.oomScoreAdj = 345'
is "$out" 345 "oomScoreAdj 345 inside"
run_out oomneg '.process.args = ["/bin/cat", "/proc/self/oom_score_adj"] | .process.oomScoreAdj = -500'
if [ $has_sys_resource = 1 ]; then
	is "$out" -500 "a negative oomScoreAdj (-500) inside"
else
	is "$rc" 1 "lowering oomScoreAdj without CAP_SYS_RESOURCE fails (as runc)"
	like "$out" "oomScoreAdj.*CAP_SYS_RESOURCE" "the error names oomScoreAdj and CAP_SYS_RESOURCE"
fi
run_out oombad '.process.oomScoreAdj = 5000'
isnt "$rc" 0 "oomScoreAdj 5000 (out of range) is refused"
like "$out" "oomScoreAdj" "the error names oomScoreAdj"
run_out nnp '.process.args = ["/bin/moat-helper", "nnp"] | .process.noNewPrivileges = true'
like "$out" "NoNewPrivs:[[:space:]]+1" "noNewPrivileges true: NoNewPrivs 1"
run_out nnp0 '.process.args = ["/bin/moat-helper", "nnp"] | .process.noNewPrivileges = false'
like "$out" "NoNewPrivs:[[:space:]]+0" "noNewPrivileges false: NoNewPrivs 0"

# --- user, umask, cwd, env
run_out user '.process.args = ["/bin/moat-helper", "id"] | .process.user = {uid: 1234, gid: 2345, additionalGids: [3000, 3001]}'
is "$out" "uid=1234 euid=1234 gid=2345 egid=2345 groups=3000,3001" "uid, gid and additionalGids inside"
run_out user2 '.process.args = ["/bin/moat-helper", "id"] | .process.user = {uid: 1000, gid: 1000}'
is "$out" "uid=1000 euid=1000 gid=1000 egid=1000 groups=" "no additionalGids: no supplementary groups"
run_out umask '.process.args = ["/bin/sh", "-c", "umask; touch /tmp/f; stat -c %a /tmp/f"] | .process.user.umask = 63'
is "$out" $'0077\n600' "umask 077 inside, and applied to new files"
run_out umask0 '.process.args = ["/bin/sh", "-c", "umask"]'
is "$out" 0022 "the default umask is 0022"
b=$TEST_TMP/b-cwdok
mkbundle "$b" '.process.args = ["/bin/moat-helper", "cwd"] | .process.cwd = "/var/lib/deep/dir"' || bail_out mkbundle
mkdir -p "$b/rootfs/var/lib/deep/dir"
newid_var id cwdok
is "$(rt run --bundle "$b" "$id" </dev/null 2>&1)" /var/lib/deep/dir "cwd is used"
rt delete --force "$id" >/dev/null 2>&1
run_out cwd '.process.args = ["/bin/moat-helper", "cwd"] | .process.cwd = "/var/lib/deep/dir"'
is "$out" /var/lib/deep/dir "a missing cwd is created (as runc does)"
run_out cwdrel '.process.args = ["/bin/moat-helper", "cwd"] | .process.cwd = "relative/dir"'
isnt "$rc" 0 "a relative cwd is refused"
like "$out" "cwd" "the error names cwd"
run_out env '.process.args = ["/bin/moat-helper", "env"] | .process.env = ["A=1", "B=two words", "PATH=/bin", "C="]'
is "$out" $'A=1\nB=two words\nPATH=/bin\nC=' "env is exactly the spec's list"
run_out envsh '.process.args = ["sh", "-c", "echo $FOO"] | .process.env = ["FOO=bar", "PATH=/bin"]'
is "$out" bar "args[0] is found on the spec's PATH"

# --- ioPriority and scheduler
run_out ioprio '.process.args = ["/bin/sh", "-c", "ionice -p $$"] | .process.ioPriority = {class: "IOPRIO_CLASS_BE", priority: 6}'
like "$out" "best-effort.*6|be.*6|: 2.*6" "ioPriority BE/6 shows in ionice"
run_out ioidle '.process.args = ["/bin/sh", "-c", "ionice -p $$"] | .process.ioPriority = {class: "IOPRIO_CLASS_IDLE", priority: 0}'
like "$out" "idle" "ioPriority IDLE shows in ionice"
run_out iobad '.process.ioPriority = {class: "IOPRIO_CLASS_FAST", priority: 0}'
is "$rc" 1 "an unknown ioPriority class fails with status 1"
like "$out" "IOPRIO_CLASS_FAST" "the error names the class"
run_out sched '.process.args = ["/bin/sh", "-c", "grep -E \"^policy\" /proc/self/sched; cut -d\" \" -f41 /proc/self/stat"] | .process.scheduler = {policy: "SCHED_BATCH", nice: 5}'
like "$out" $'policy[[:space:]]+:[[:space:]]+3\n3$' "scheduler SCHED_BATCH (policy 3) inside"
run_out nice '.process.args = ["/bin/sh", "-c", "cut -d\" \" -f19 /proc/self/stat"] | .process.scheduler = {policy: "SCHED_OTHER", nice: 7}'
is "$out" 7 "scheduler nice 7 inside"
run_out schedbad '.process.scheduler = {policy: "SCHED_TURBO"}'
is "$rc" 1 "an unknown scheduler policy fails with status 1"
like "$out" "SCHED_TURBO" "the error names the policy"

# --- sysctl
run_out sysctl '.process.args = ["/bin/cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/msgmax"] | .linux.sysctl = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "12345"}'
is "$out" $'1\n12345' "namespaced sysctls (net.ipv4.ip_forward, kernel.msgmax) are set inside"
isnt "$(cat /proc/sys/kernel/msgmax)" 12345 "the host's kernel.msgmax is untouched"
run_out sysctlhost '.linux.sysctl = {"kernel.panic": "5"}'
isnt "$rc" 0 "a sysctl that is not namespaced (kernel.panic) is refused"
like "$out" "kernel.panic" "the error names the sysctl"
is "$(status_of "$last_id")" none "nothing left after the sysctl error"
run_out sysctlnet '.linux.sysctl = {"net.ipv4.ip_forward": "1"} | .linux.namespaces |= map(select(.type != "network"))'
isnt "$rc" 0 "a net.* sysctl without a network namespace is refused"
like "$out" "net.ipv4.ip_forward" "the error names the net sysctl"

# --- hostname, domainname
run_out host '.process.args = ["/bin/moat-helper", "hostname"] | .hostname = "box1" | .domainname = "example.org"'
is "$out" $'hostname=box1\ndomainname=example.org' "hostname and domainname inside"
run_out hostnouts '.hostname = "box1" | .linux.namespaces |= map(select(.type != "uts"))'
isnt "$rc" 0 "a hostname without a uts namespace is refused"
like "$out" "hostname|uts|UTS" "the error names hostname or uts"

# --- personality
if [ "$(uname -m)" = x86_64 ]; then
	run_out pers '.process.args = ["/bin/uname", "-m"] | .linux.personality = {domain: "LINUX32"}'
	is "$out" i686 "personality LINUX32: uname -m is i686"
	run_out pers64 '.process.args = ["/bin/uname", "-m"] | .linux.personality = {domain: "LINUX"}'
	is "$out" x86_64 "personality LINUX: uname -m is x86_64"
else
	skip "personality test needs x86_64" 2
fi
run_out persbad '.linux.personality = {domain: "PDP11"}'
isnt "$rc" 0 "an unknown personality domain is refused"
like "$out" "PDP11" "the error names the domain"

# --- readonly root
run_out ro '.process.args = ["/bin/sh", "-c", "/bin/moat-helper write /newfile x; /bin/moat-helper write /tmp/newfile x; /bin/moat-helper write /dev/shm/f x && echo SHM_OK"] | .root.readonly = true'
like "$out" "/newfile: .*EROFS" "readonly root: writing / fails with EROFS"
like "$out" "/tmp/newfile: .*EROFS" "readonly root: /tmp (no mount) is read-only too"
like "$out" "SHM_OK" "readonly root: tmpfs mounts stay writable"
run_out rw '.process.args = ["/bin/moat-helper", "write", "/newfile", "x"]'
is "$rc:$out" "0:" "a writable root accepts writes"

# --- maskedPaths and readonlyPaths
[ -e /proc/timer_list ] || skip "no /proc/timer_list on this kernel"
run_out masked '.process.args = ["/bin/sh", "-c", "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; /bin/moat-helper write /proc/sys/kernel/domainname x; /bin/moat-helper mounts"]'
like "$out" $'^0\n0\n' "masked: /proc/timer_list and /sys/firmware are empty"
like "$out" "domainname: .*EROFS" "readonly: /proc/sys is read-only"
like "$out" " /proc/sys ro," "readonly: /proc/sys is a ro mount"
run_out unmasked '.process.args = ["/bin/sh", "-c", "wc -c < /proc/timer_list"] | .linux.maskedPaths = []'
isnt "$out" 0 "without maskedPaths /proc/timer_list has content (the mask test can fail)"
b=$TEST_TMP/b-masked2
mkbundle "$b" '.process.args = ["/bin/sh", "-c", "cat /etc/secret; echo; ls /etc/secretdir | wc -l; echo hi > /etc/rodir/f || echo RO_DENIED; cat /etc/rodir/keep"] | .linux.maskedPaths += ["/etc/secret", "/etc/secretdir"] | .linux.readonlyPaths += ["/etc/rodir"]' || bail_out mkbundle
echo topsecret >"$b/rootfs/etc/secret"
mkdir -p "$b/rootfs/etc/secretdir" "$b/rootfs/etc/rodir"
touch "$b/rootfs/etc/secretdir/a" "$b/rootfs/etc/secretdir/b"
echo kept >"$b/rootfs/etc/rodir/keep"
newid_var id masked2
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
unlike "$out" "topsecret" "a masked file reads empty"
like "$out" $'\n0\n' "a masked directory is empty"
like "$out" "RO_DENIED" "a readonlyPaths directory refuses writes"
like "$out" "kept" "a readonlyPaths directory is still readable"
is "$(cat "$b/rootfs/etc/secret")" topsecret "the masked file on disk is untouched"
rt delete --force "$id" >/dev/null 2>&1
run_out maskmissing '.process.args = ["/bin/moat-helper", "exit", "0"] | .linux.maskedPaths += ["/does/not/exist"] | .linux.readonlyPaths += ["/nor/this"]'
is "$rc" 0 "missing masked/readonly paths are ignored"

# --- signals: the caller's blocked and ignored signals are not the container's (a supervisor
# blocks TERM for its signalfd and ignores PIPE; its services must still stop on TERM)
if command -v python3 >/dev/null; then
	b=$TEST_TMP/b-sigs
	mkbundle "$b" '.process.args = ["/bin/busybox", "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]' || bail_out mkbundle
	newid_var id sigs
	out=$(python3 -c 'import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
os.execv(sys.argv[1], sys.argv[1:])' "$MOAT_RUNTIME" --root "$TEST_ROOT" run --bundle "$b" "$id" </dev/null 2>&1)
	rt delete --force "$id" >/dev/null 2>&1
	like "$out" "SigBlk:[[:space:]]+0000000000000000" "a caller's blocked TERM/INT/HUP are not blocked in the container"
	like "$out" "SigIgn:[[:space:]]+0000000000000000" "a caller's ignored PIPE/USR1 are not ignored in the container"
else
	skip "python3 is not installed (blocks signals before running the runtime)" 2
fi

done_testing
