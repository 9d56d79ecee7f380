#!/bin/bash
# exec: a new process in a running container.
. "$(dirname "$0")/lib.sh"

recv_py=$(dirname "$0")/console-recv.py
# console_listen SOCK OUT [INPUT...]: start the receiver in the background, wait until it listens
console_listen() {
	local sock=$1 i
	rm -f "$sock" "$sock.ready"
	python3 "$recv_py" "$@" </dev/null >/dev/null 2>&1 &
	recv_pid=$!
	for ((i = 0; i < 100; i++)); do
		[ -e "$sock.ready" ] && return 0
		sleep 0.05
	done
	return 1
}
console_wait() { # wait for the receiver (it ends at EOF of the pty)
	local i
	for ((i = 0; i < 400; i++)); do
		kill -0 "$recv_pid" 2>/dev/null || { wait "$recv_pid"; return; }
		sleep 0.05
	done
	kill "$recv_pid" 2>/dev/null
	return 1
}

b=$TEST_TMP/b-main
mkbundle "$b" '.process.args = ["/bin/moat-helper", "sleep", "120"]
	| .linux.seccomp = {"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}' || bail_out mkbundle
newid_var id main
ok "run -d" rt run -d --bundle "$b" "$id" </dev/null
ipid=$(pid_of "$id")

# --- args, output, exit status
out=$(rt exec "$id" /bin/echo hello world 2>&1)
is "$out" "hello world" "exec passes args and stdout through"
rt exec "$id" /bin/moat-helper exit 7 >/dev/null 2>&1
is "$?" 7 "exec passes the exit status through"
rt exec "$id" /bin/sh -c 'kill -TERM $$' >/dev/null 2>&1
is "$?" 143 "exec: killed by a signal gives 128+N"
out=$(rt exec "$id" /nonexistent 2>&1)
rc=$?
isnt "$rc" 0 "exec of a missing binary fails"
like "$out" "nonexistent" "the error names the missing binary"
out=$(rt exec "$id" /bin/sh -c 'cat' <<<"from-stdin" 2>&1)
is "$out" "from-stdin" "exec passes stdin through"

# --- env, cwd
out=$(rt exec --env FOO=bar --env TERM=dumb "$id" /bin/moat-helper env 2>&1)
is "$(printf '%s\n' "$out" | grep -x 'FOO=bar')" FOO=bar "--env adds a variable"
is "$(printf '%s\n' "$out" | grep '^TERM=')" TERM=dumb "--env overrides the config's variable (and it appears once)"
is "$(printf '%s\n' "$out" | grep '^PATH=')" "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "--env keeps the config's other variables"
out=$(rt exec --cwd /tmp "$id" /bin/moat-helper cwd 2>&1)
is "$out" /tmp "--cwd sets the working directory"
out=$(rt exec "$id" /bin/moat-helper cwd 2>&1)
is "$out" / "without --cwd the config's cwd is used"
out=$(rt exec --cwd /nonexistent "$id" /bin/moat-helper cwd 2>&1)
isnt "$?" 0 "--cwd to a missing directory fails"

# --- user and groups
out=$(rt exec --user 1000:1000 --additional-gids 10 --additional-gids 20 "$id" /bin/moat-helper id 2>&1)
like "$out" '^uid=1000 euid=1000 gid=1000 egid=1000 ' "--user 1000:1000"
like "$out" 'groups=10,20$' "--additional-gids sets the supplementary groups"
out=$(rt exec --user 1000 "$id" /bin/moat-helper id 2>&1)
like "$out" '^uid=1000 euid=1000 gid=0 ' "--user UID alone keeps gid 0"
out=$(rt exec --user 1000:1000 "$id" /bin/moat-helper caps 2>&1)
like "$out" 'CapEff:[[:space:]]+0000000000000000' "a non-root exec has no effective caps"

# --- -p process.json
cat >"$TEST_TMP/process.json" <<'EOF'
{
	"terminal": false,
	"user": { "uid": 1000, "gid": 1000, "additionalGids": [ 30 ] },
	"args": [ "/bin/sh", "-c", "/bin/moat-helper id; /bin/moat-helper cwd; echo A=$A; /bin/moat-helper caps | grep CapBnd; exit 3" ],
	"env": [ "A=from-process-json", "PATH=/bin" ],
	"cwd": "/home/user",
	"capabilities": { "bounding": [ "CAP_KILL" ], "effective": [], "permitted": [] },
	"noNewPrivileges": true
}
EOF
out=$(rt exec -p "$TEST_TMP/process.json" "$id" 2>&1)
rc=$?
is "$rc" 3 "-p: the status of the process.json process"
like "$out" 'uid=1000 euid=1000 gid=1000 egid=1000 groups=30' "-p: user and additionalGids"
like "$out" $'\n/home/user\n' "-p: cwd"
like "$out" 'A=from-process-json' "-p: env"
like "$out" 'CapBnd:[[:space:]]+0000000000000020' "-p: capabilities (bounding = CAP_KILL only)"
out=$(rt exec -p "$TEST_TMP/nonexistent.json" "$id" 2>&1)
isnt "$?" 0 "-p with a missing file fails"

# --- detach and pid file
pf=$TEST_TMP/exec.pid
ok "exec --detach --pid-file" rt exec --detach --pid-file "$pf" "$id" /bin/moat-helper sleep 60
xpid=$(cat "$pf" 2>/dev/null)
like "$xpid" '^[1-9][0-9]*$' "the pid file holds a pid"
ok "the detached process runs" kill -0 "${xpid:-0}"
like "$(tr '\0' ' ' </proc/"${xpid:-0}"/cmdline 2>/dev/null)" "moat-helper sleep 60" "the pid is the exec'd process"
is "$(readlink /proc/"${xpid:-0}"/ns/pid 2>&1)" "$(readlink /proc/"$ipid"/ns/pid)" "the exec'd process is in the container's pid namespace"
is "$(readlink /proc/"${xpid:-0}"/ns/mnt 2>&1)" "$(readlink /proc/"$ipid"/ns/mnt)" "the exec'd process is in the container's mount namespace"
is "$(readlink /proc/"${xpid:-0}"/ns/net 2>&1)" "$(readlink /proc/"$ipid"/ns/net)" "the exec'd process is in the container's net namespace"
is "$(sed 's/^[0-9]*://' /proc/"${xpid:-0}"/cgroup 2>&1 | sort)" "$(sed 's/^[0-9]*://' /proc/"$ipid"/cgroup | sort)" "the exec'd process is in the container's cgroups"
like "$(rt ps --format json "$id" 2>&1)" "(\\[|,)$xpid(,|\\])" "ps --format json lists the exec'd process"
out=$(rt exec "$id" /bin/moat-helper pid 2>&1)
unlike "$out" '^pid=1 ' "exec'd process is not the init"
like "$out" 'ppid=0$' "exec'd process's parent is outside the pid namespace (ppid 0)"
kill -9 "${xpid:-0}" 2>/dev/null

# --- seccomp of the container applies
out=$(rt exec "$id" /bin/moat-helper syscall mkdir 2>&1)
is "$out" EPERM "the container's seccomp filter applies to exec'd processes"
like "$(rt exec "$id" /bin/moat-helper seccomp-mode 2>&1)" 'Seccomp:[[:space:]]+2' "exec'd process is in seccomp filter mode"
out=$(rt exec "$id" /bin/moat-helper nnp 2>&1)
like "$out" '1' "exec keeps no_new_privs of the config"

# --- tty with a console socket
sock=$TEST_TMP/console.sock
cout=$TEST_TMP/console.out
# runc allows --console-socket only with --detach: test that way (both runtimes)
if console_listen "$sock" "$cout"; then
	ok "exec --tty --detach --console-socket" rt exec --tty --detach --console-socket "$sock" "$id" /bin/moat-helper tty
	console_wait
	c=$(cat "$cout" 2>/dev/null)
	like "$c" '^pty=[0-9]+' "exec --tty: the console socket receives a pty master"
	like "$c" '0 isatty=1 name=/dev/pts/[0-9]+' "exec --tty: stdin is the pty"
	like "$c" '1 isatty=1 name=/dev/pts/[0-9]+' "exec --tty: stdout is the pty"
else
	skip "console receiver did not start" 4
fi
if console_listen "$sock" "$cout" 'ping-1234\n' '\x04'; then
	ok "exec --tty --detach stdin-echo" rt exec --tty --detach --console-socket "$sock" "$id" /bin/moat-helper stdin-echo
	console_wait
	c=$(cat "$cout" 2>/dev/null)
	is "$(grep -c 'ping-1234' <<<"$c")" 2 "exec --tty: input is echoed by the terminal and by the process"
else
	skip "console receiver did not start" 2
fi
# moat also takes --console-socket in the foreground and waits for the process
case $(readlink -f "$MOAT_RUNTIME") in
*/moat)
	if console_listen "$sock" "$cout"; then
		rt exec --tty --console-socket "$sock" "$id" /bin/sh -c 'moat-helper tty; exit 5' >/dev/null 2>&1
		is "$?" 5 "exec --tty --console-socket (foreground) passes the exit status"
		console_wait
		like "$(cat "$cout" 2>/dev/null)" '2 isatty=1 name=/dev/pts/[0-9]+' "exec --tty (foreground): stderr is the pty"
	else
		skip "console receiver did not start" 2
	fi
	;;
esac
if console_listen "$sock" "$cout"; then
	pf=$TEST_TMP/exec-tty.pid
	ok "exec --tty --detach --console-socket" rt exec --tty --detach --pid-file "$pf" --console-socket "$sock" "$id" /bin/sh -c 'sleep 0.5; moat-helper tty'
	console_wait
	like "$(cat "$cout" 2>/dev/null)" '0 isatty=1 name=/dev/pts/[0-9]+' "exec --tty --detach: the process got the pty"
else
	skip "console receiver did not start" 2
fi

# --- paused and stopped containers refuse exec
ok "pause" rt pause "$id"
out=$(rt exec "$id" /bin/true 2>&1)
isnt "$?" 0 "exec into a paused container fails"
like "$out" "paused" "the error says the container is paused"
ok "resume" rt resume "$id"
ok "exec works again after resume" rt exec "$id" /bin/true

ok "kill" rt kill "$id" KILL
ok "stopped" wait_status "$id" stopped 10
out=$(rt exec "$id" /bin/true 2>&1)
isnt "$?" 0 "exec into a stopped container fails"
like "$out" "stopped|not running" "the error says the container is stopped"
rt delete --force "$id" >/dev/null 2>&1

# --- exec into a created (not started) container: allowed, as runc
b=$TEST_TMP/b-created
mkbundle "$b" '.process.args = ["/bin/moat-helper", "sleep", "60"]' || bail_out mkbundle
newid_var id created
ok "create" rt create --bundle "$b" "$id"
out=$(rt exec "$id" /bin/moat-helper hostname 2>&1)
like "$out" "hostname=moat" "exec into a created container runs in its uts namespace"
rt delete --force "$id" >/dev/null 2>&1

newid_var id missing
out=$(rt exec "$id" /bin/true 2>&1)
isnt "$?" 0 "exec into an unknown container fails"
like "$out" "$id" "the error names the container"

done_testing
