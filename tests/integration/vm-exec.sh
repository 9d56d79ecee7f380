#!/bin/bash
# moat-runtime exec into a running vm-tier container (annotation moat.isolation=vm): the
# process runs in the guest (its kernel, its PID 1), stdin/stdout/stderr relayed, the exit
# status returned, a signal to the exec'd process, a missing command, --detach with a pid
# file, exec before start and after the end refused, a terminal (-t, --console-socket: tty,
# size, input, resize); nothing left after delete.  One boot.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

vm_require
[ -x "$MOAT_BIN" ] || skip_all "moat not built"
command -v jq >/dev/null || skip_all "jq is not installed"
[ -x "$MOAT_ROOTFS/bin/busybox" ] || skip_all "the test rootfs has no busybox"
qemus() { pgrep -f "qemu-system-x86_64.*$TEST_ROOT" | tr '\n' ' '; }

b=$TEST_TMP/vmbundle
mkbundle "$b" '.process.args = ["/bin/sh", "-c", "echo main > /tmp/main; exec sleep 300"] | .annotations = {"moat.isolation": "vm"} | .process.terminal = false' ||
	bail_out mkbundle
newid_var id vx
rt create --bundle "$b" "$id" >"$TEST_TMP/main.out" 2>"$TEST_TMP/main.err" </dev/null
is "$?" 0 "create a VM container (sleep)"
out=$(rt exec "$id" /bin/true 2>&1)
isnt "$?" 0 "exec before start fails"
like "$out" "created|start it first" "... saying the container is only created ($out)"
ok "start" rt start "$id"
wait_status "$id" running 10

start=$(date +%s%N)
out=$(rt exec "$id" cat /proc/1/comm 2>&1)
is "$?" 0 "exec cat /proc/1/comm"
diag "exec round trip: $((($(date +%s%N) - start) / 1000000)) ms"
is "$out" "init" "... runs in the guest: PID 1 is the guest's init"
out=$(rt exec "$id" uname -r)
isnt "$out" "$(uname -r)" "uname -r: the guest's kernel ($out), not the host's"
is "$(rt exec "$id" cat /tmp/main)" "main" "exec sees the main process's files (the same root)"
is "$(echo "through stdin" | rt exec "$id" /bin/sh -c 'cat; echo err >&2' 2>"$TEST_TMP/err")" "through stdin" \
	"stdin reaches the exec'd process, stdout comes back"
is "$(cat "$TEST_TMP/err")" "err" "stderr comes back on stderr"
rt exec "$id" /bin/sh -c 'exit 3'
is "$?" 3 "the exit status comes back (3)"
is "$(rt exec -e FOO=bar --cwd /tmp "$id" /bin/sh -c 'echo $FOO $(pwd) $(id -u)')" "bar /tmp 0" "-e and --cwd applied"
is "$(rt exec -u 1000:1000 "$id" id -u)" "1000" "-u 1000 applied"

# (not through rt(): $! must be moat-runtime itself, not a subshell)
"$MOAT_RUNTIME" --root "$TEST_ROOT" exec "$id" /bin/sh -c 'trap "echo got-term; exit 7" TERM; echo ready; sleep 100 & wait' \
	>"$TEST_TMP/sig.out" &
p=$!
for ((i = 0; i < 100; i++)); do has ready "$TEST_TMP/sig.out" && break; sleep 0.1; done
kill -TERM "$p"
wait "$p"
is "$?" 7 "SIGTERM to moat-runtime exec reaches the exec'd process (its trap exits 7)"
like "$(cat "$TEST_TMP/sig.out")" "got-term" "... which saw the TERM"

out=$(rt exec "$id" no-such-command-xyz 2>&1)
rc=$?
isnt "$rc" 0 "a missing command fails"
like "$out" "no-such-command-xyz" "... the error names it ($out)"
# --- a terminal (exec -t): the guest's pty for the process; ours, raw, carries it
recv_py=$(dirname "$0")/console-recv.py
csock=$TEST_TMP/console.sock
cout=$TEST_TMP/console.out
console_listen() { # SOCK OUT [INPUT...]: a receiver of the master
	local i
	rm -f "$1" "$1.ready"
	python3 "$recv_py" "$@" </dev/null >/dev/null 2>&1 &
	recv_pid=$!
	for ((i = 0; i < 100; i++)); do [ -e "$1.ready" ] && return 0; sleep 0.05; done
	return 1
}
jq '.process | .terminal = true | .consoleSize = {"height": 37, "width": 111}
	| .args = ["/bin/sh", "-c", "moat-helper tty; echo; stty size; exit 5"]' "$b/config.json" >"$TEST_TMP/proc.json"
if console_listen "$csock" "$cout"; then
	rt exec --console-socket "$csock" --process "$TEST_TMP/proc.json" "$id" </dev/null >/dev/null 2>&1
	is "$?" 5 "exec --process (terminal: true) --console-socket: the exit status comes back (5)"
	wait "$recv_pid"
	c=$(cat "$cout" 2>/dev/null)
	like "$c" '^pty=[0-9]+' "the console socket receives a pty master"
	like "$c" '0 isatty=1 name=/dev/pts/[0-9]+' "stdin of the exec'd process is a pty (a /dev/pts/N of the guest)"
	like "$c" '1 isatty=1 name=/dev/pts/[0-9]+' "... stdout too"
	like "$c" '0 isatty=1 name=[^ ]* rows=37 cols=111' "consoleSize is the pty's size before it runs"
	like "$c" $'\n37 111' "stty size: 37 111"
	like "$c" '--eof--' "the master sees the end when the process exits"
else
	skip "console receiver did not start" 7
fi
if console_listen "$csock" "$cout" 'typed-5678\n' '\x04'; then
	rt exec -t --console-socket "$csock" "$id" /bin/sh -c 'read x; echo "got=$x"; cat; echo cat-done' \
		</dev/null >/dev/null 2>&1
	is "$?" 0 "exec -t --console-socket (read; cat)"
	wait "$recv_pid"
	like "$(cat "$cout")" 'got=typed-5678' "what is typed on the master reaches the process"
	like "$(cat "$cout")" 'cat-done' "^D on the master is the end of its input (cat ends)"
else
	skip "console receiver did not start" 3
fi
if console_listen "$csock" "$cout" '@winsize=50,132' 'go\n'; then
	rt exec -d --pid-file "$TEST_TMP/tpid" -t --console-socket "$csock" "$id" /bin/sh -c 'read x; stty size' \
		</dev/null >/dev/null 2>&1
	is "$?" 0 "exec -d -t --console-socket returns at once"
	wait "$recv_pid"
	like "$(cat "$cout")" '50 132' "a resize of the master (SIGWINCH) reaches the process's pty ($(tr '\n' ' ' <"$cout"))"
else
	skip "console receiver did not start" 2
fi
# a process group leader (job control) cannot make the slave its terminal: the size is polled
if console_listen "$csock" "$cout" '@winsize=50,132' 'go\n'; then
	(set -m; "$MOAT_RUNTIME" --root "$TEST_ROOT" exec -t --console-socket "$csock" "$id" /bin/sh -c 'read x; stty size' \
		</dev/null >/dev/null 2>&1)
	wait "$recv_pid"
	like "$(cat "$cout")" '50 132' "... also when moat-runtime leads a process group ($(tr '\n' ' ' <"$cout"))"
else
	skip "console receiver did not start" 1
fi
out=$(rt exec -t "$id" /bin/sh -c 'tty; exit 3' </dev/null 2>&1)
is "$?" 3 "exec -t without a console socket, stdin not a terminal: runs (exit 3)"
like "$out" '/dev/pts/[0-9]+' "... on a pty of the guest ($out)"

rt exec -d --pid-file "$TEST_TMP/pid" "$id" /bin/sh -c 'sleep 1; exit 4' </dev/null >/dev/null 2>&1
is "$?" 0 "exec --detach returns at once"
pid=$(cat "$TEST_TMP/pid" 2>/dev/null)
like "$pid" '^[0-9]+$' "... the pid file names the process that stands for it"
for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "... which ends with the process" || pass "... which ends with the process"

pids=()
for i in 1 2 3; do
	rt exec "$id" /bin/sh -c "echo c$i" >"$TEST_TMP/c$i" &
	pids+=($!)
done
wait "${pids[@]}"
is "$(cat "$TEST_TMP/c1" "$TEST_TMP/c2" "$TEST_TMP/c3" | tr '\n' ' ')" "c1 c2 c3 " "three execs at once"
sock=$TEST_ROOT/$id/exec.sock
is "$(stat -c %a "$sock" 2>/dev/null)" 600 "the exec socket is 0600"

# a client killed while its process floods output: the process goes, the container stays
"$MOAT_RUNTIME" --root "$TEST_ROOT" exec "$id" /bin/sh -c 'while :; do echo flooding-the-channel-with-output; done' >/dev/null &
c=$!
sleep 1.5
kill -9 "$c"
wait "$c" 2>/dev/null
sleep 0.5
is "$(status_of "$id")" running "kill -9 of an exec client mid-output: the container runs on"
for ((i = 0; i < 50; i++)); do
	n=$(rt exec "$id" /bin/sh -c 'ps -o args | grep -c "[f]looding"')
	[ "$n" = 0 ] && break
	sleep 0.2
done
diag "flood gone after $i rounds"
is "$n" 0 "... its process is gone in the guest"

# a client that stops reading (stopped) while its process floods: dropped after 2 s, and its
# process with it (it stood for the process; it must not hold a session forever)
"$MOAT_RUNTIME" --root "$TEST_ROOT" exec "$id" /bin/sh -c 'while :; do echo stalled-client-flood; done' >/dev/null &
c=$!
sleep 1
kill -STOP "$c"
for ((i = 0; i < 60; i++)); do
	n=$(rt exec "$id" /bin/sh -c 'ps -o args | grep -c "[s]talled-client"')
	[ "$n" = 0 ] && break
	sleep 0.2
done
is "$n" 0 "a client that stops reading is dropped, and its process killed (after $i rounds)"
kill -KILL "$c"
wait "$c" 2>/dev/null
is "$(status_of "$id")" running "... the container runs on"

ok "kill KILL" rt kill "$id" KILL
wait_status "$id" stopped 20
out=$(rt exec "$id" /bin/true 2>&1)
isnt "$?" 0 "exec in a stopped container fails"
like "$out" "stopped|not running" "... clearly ($out)"
ok "delete" rt delete "$id"
is "$(qemus)" "" "no QEMU left"
[ -e "$sock" ] && fail "the exec socket is gone" || pass "the exec socket is gone"
done_testing
