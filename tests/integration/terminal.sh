#!/bin/bash
# process.terminal: the pty handed over a console socket, its size, /dev/console, foreground use.
. "$(dirname "$0")/lib.sh"

recv_py=$(dirname "$0")/console-recv.py
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
console_wait() {
	local i
	for ((i = 0; i < 400; i++)); do
		kill -0 "$recv_pid" 2>/dev/null || { wait "$recv_pid"; return; }
		sleep 0.05
	done
	kill "$recv_pid" 2>/dev/null
	return 1
}
sock=$TEST_TMP/console.sock
cout=$TEST_TMP/console.out
# to_file CMD...: run CMD with its output in a file, not a pipe (a container created
# by CMD inherits it and would keep $(...) waiting), then print the file
to_file() {
	local rc
	"$@" >"$TEST_TMP/.out" 2>&1 </dev/null
	rc=$?
	cat "$TEST_TMP/.out"
	return $rc
}

# --- create + start with a console socket
b=$TEST_TMP/b-tty
mkbundle "$b" '.process.terminal = true | .process.consoleSize = {"height": 37, "width": 111}
	| .process.args = ["/bin/sh", "-c", "sleep 0.5; moat-helper tty; echo console=$(stat -L -c %t:%T /dev/console) fd0=$(stat -L -c %t:%T /proc/self/fd/0); exit 0"]' || bail_out mkbundle
newid_var id tty
if console_listen "$sock" "$cout"; then
	ok "create with terminal=true and --console-socket" rt create --console-socket "$sock" --bundle "$b" "$id"
	ok "start" rt start "$id"
	console_wait
	c=$(cat "$cout" 2>/dev/null)
	like "$c" '^pty=[0-9]+' "the console socket receives a pty master"
	like "$c" '0 isatty=1 name=/dev/pts/[0-9]+' "stdin of the container is the pty slave"
	like "$c" '1 isatty=1 name=/dev/pts/[0-9]+' "stdout of the container is the pty slave"
	like "$c" '2 isatty=1 name=/dev/pts/[0-9]+' "stderr of the container is the pty slave"
	like "$c" '0 isatty=1 name=[^ ]* rows=37 cols=111' "consoleSize is applied"
	like "$c" 'console=88:[0-9a-f]+ fd0=' "/dev/console is a pts device"
	cons=$(sed -n 's/.*console=\([^ ]*\) .*/\1/p' <<<"$c")
	fd0=$(sed -n 's/.*fd0=\([^ ]*\).*/\1/p' <<<"$c")
	is "$cons" "${fd0:-x}" "/dev/console is the container's pty"
	like "$c" '--eof--' "the master sees EOF/EIO when the container exits"
	ok "stopped after exit" wait_status "$id" stopped 10
else
	skip "console receiver did not start" 11
fi
rt delete --force "$id" >/dev/null 2>&1

# --- input reaches the container through the master
b=$TEST_TMP/b-echo
mkbundle "$b" '.process.terminal = true | .process.args = ["/bin/moat-helper", "stdin-echo"]' || bail_out mkbundle
newid_var id echo
if console_listen "$sock" "$cout" 'typed-5678\n' '\x04'; then
	ok "run -d --console-socket (stdin-echo)" rt run -d --console-socket "$sock" --bundle "$b" "$id"
	console_wait
	is "$(grep -c 'typed-5678' "$cout" 2>/dev/null)" 2 "what is typed reaches the process and its output comes back"
	ok "stopped after ^D" wait_status "$id" stopped 10
else
	skip "console receiver did not start" 3
fi
rt delete --force "$id" >/dev/null 2>&1

# --- without consoleSize the size is left alone (0x0), as runc
b=$TEST_TMP/b-nosize
mkbundle "$b" '.process.terminal = true | .process.args = ["/bin/moat-helper", "tty"]' || bail_out mkbundle
newid_var id nosize
if console_listen "$sock" "$cout"; then
	ok "run -d --console-socket (no consoleSize)" rt run -d --console-socket "$sock" --bundle "$b" "$id"
	console_wait
	like "$(cat "$cout")" '0 isatty=1 name=/dev/pts/[0-9]+' "terminal without consoleSize works"
else
	skip "console receiver did not start" 2
fi
rt delete --force "$id" >/dev/null 2>&1

# --- errors
b=$TEST_TMP/b-nosock
mkbundle "$b" '.process.terminal = true | .process.args = ["/bin/true"]' || bail_out mkbundle
newid_var id nosock
out=$(to_file rt create --bundle "$b" "$id")
isnt "$?" 0 "create with terminal=true needs --console-socket"
is "$(status_of "$id")" none "... and leaves nothing behind"
newid_var id badsock
out=$(to_file rt create --console-socket "$TEST_TMP/no-such.sock" --bundle "$b" "$id")
isnt "$?" 0 "create with a console socket nobody listens on fails"
like "$out" "no-such.sock" "the error names the socket"
is "$(status_of "$id")" none "... and leaves nothing behind"

b=$TEST_TMP/b-notty
mkbundle "$b" '.process.args = ["/bin/true"]' || bail_out mkbundle
newid_var id notty
out=$(to_file rt create --console-socket "$sock" --bundle "$b" "$id")
isnt "$?" 0 "--console-socket without terminal=true is refused (as runc)"
rt delete --force "$id" >/dev/null 2>&1

# --- foreground run with a terminal, under script(1)
if command -v script >/dev/null; then
	b=$TEST_TMP/b-fg
	mkbundle "$b" '.process.terminal = true | .process.consoleSize = {"height": 20, "width": 70}
		| .process.args = ["/bin/sh", "-c", "moat-helper tty; exit 9"]' || bail_out mkbundle
	newid_var id fg
	out=$(script -qec "$(printf '%q ' "$MOAT_RUNTIME" --root "$TEST_ROOT" run --bundle "$b" "$id")" /dev/null </dev/null 2>&1)
	rc=$?
	is "$rc" 9 "run with a terminal in the foreground passes the exit status"
	like "$out" '1 isatty=1 name=/dev/pts/[0-9]+' "the process's stdout is a pty"
	like "$out" '0 isatty=1 name=/dev/pts/0' "it is the container's own devpts (pts/0)"
	rt delete --force "$id" >/dev/null 2>&1

	b=$TEST_TMP/b-fg2
	mkbundle "$b" '.process.terminal = true | .process.args = ["/bin/moat-helper", "stdin-echo"]' || bail_out mkbundle
	newid_var id fg2
	out=$( (sleep 1; printf 'fg-input-42\n'; sleep 0.5; printf '\004'; sleep 1) |
		timeout 20 script -qec "$(printf '%q ' "$MOAT_RUNTIME" --root "$TEST_ROOT" run --bundle "$b" "$id")" /dev/null 2>&1)
	rc=$?
	is "$rc" 0 "foreground terminal: stdin-echo ends at ^D with status 0"
	like "$out" 'fg-input-42' "foreground terminal: input is relayed to the container and back"
	rt delete --force "$id" >/dev/null 2>&1

	exec_b=$TEST_TMP/b-fgx
	mkbundle "$exec_b" '.process.args = ["/bin/moat-helper", "sleep", "60"]' || bail_out mkbundle
	newid_var id fgx
	ok "run -d for exec -t" rt run -d --bundle "$exec_b" "$id"
	out=$(script -qec "$(printf '%q ' "$MOAT_RUNTIME" --root "$TEST_ROOT" exec -t "$id" /bin/sh -c 'moat-helper tty; exit 4')" /dev/null </dev/null 2>&1)
	rc=$?
	is "$rc" 4 "exec -t in the foreground passes the exit status"
	like "$out" '0 isatty=1 name=/dev/pts/[0-9]+' "exec -t: the process has a pty"
	rt delete --force "$id" >/dev/null 2>&1
else
	skip "script(1) is not installed" 8
fi

done_testing
