#!/bin/bash
# moat-init (init/moat-init.c) as PID 1 of a container: bind-mounted read-only at /.moat/init,
# process.args = ["/.moat/init", "--grace", MS, "--", CMD...]. A service that ignores SIGTERM
# still stops (SIGKILL after the grace); a plain one gets the default SIGTERM action at once
# (it is PID 2); exit status passthrough; zombies reaped; signals forwarded; exec failures.
. "$(dirname "$0")/lib.sh"

: "${MOAT_INIT:=$MOAT_BUILD_ROOT/moat-init}"
[ -x "$MOAT_INIT" ] || skip_all "moat-init not found at '$MOAT_INIT' (build it: ninja -C build)"
MOAT_INIT=$(readlink -f "$MOAT_INIT")

# ibundle NAME INIT_ARGS... -- CMD...: a bundle running CMD under the init (INIT_ARGS before
# the "--"); with NAME=-x-NAME: CMD alone, without the init. Sets $b.
ibundle() {
	local name=$1 args
	shift
	b=$TEST_TMP/b-$name
	if [[ $name == -x-* ]]; then
		args=$(jarr "$@")
		mkbundle "$b" ".process.args = $args" || bail_out mkbundle
		return 0
	fi
	args=$(jarr /.moat/init "$@")
	mkbundle "$b" ".process.args = $args
		| .mounts += [{destination: \"/.moat/init\", type: \"bind\", source: \"$MOAT_INIT\",
		               options: [\"bind\", \"ro\", \"nosuid\", \"nodev\"]}]" || bail_out mkbundle
}

# jarr ARGS...: a JSON array of its arguments, none with a newline (jargs would take "-c" or
# "--grace" for jq options)
jarr() { printf '%s\n' "$@" | jq -R . | jq -sc .; }

# bg_run ID OUT: `rt run` of $b in the background, its output in OUT and its status in OUT.rc
bg_run() {
	rm -f "$2.rc"
	{ rt run --bundle "$b" "$1" >"$2" 2>&1 </dev/null; echo $? >"$2.rc"; } &
	rpid=$!
}

# bg_status OUT [SECONDS]: the status of a bg_run once it has exited; after SECONDS (default
# 10) kill it and say 124
bg_status() {
	local i
	for ((i = 0; i < ${2:-10} * 20; i++)); do
		[ -s "$1.rc" ] && { cat "$1.rc"; return 0; }
		sleep 0.05
	done
	kill "$rpid" 2>/dev/null
	echo 124
}

ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_file FILE ERE [SECONDS]: until FILE has a line matching ERE
wait_file() {
	local i
	for ((i = 0; i < ${3:-10} * 20; i++)); do
		grep -Eq "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "no /$2/ in $1 after ${3:-10}s: $(cat "$1" 2>/dev/null)" >&2
	return 1
}

# --- the binary itself (on the host: it is then a child subreaper, not PID 1)
file_out=$(file -L "$MOAT_INIT" 2>/dev/null)
if [ -n "$file_out" ]; then
	like "$file_out" "statically linked|static-pie" "moat-init is a static binary"
else
	skip "file(1) is not installed: cannot check that moat-init is static"
fi
"$MOAT_INIT" --help >/dev/null 2>&1
is "$?" 0 "moat-init --help exits 0"
out=$("$MOAT_INIT" 2>&1)
is "$?" 2 "moat-init without a command: exit 2"
like "$out" "no command given" "... saying so"
out=$("$MOAT_INIT" --grace soon -- true 2>&1)
is "$?" 2 "an invalid --grace: exit 2"
like "$out" "invalid --grace 'soon'" "... naming the value"
printf 'echo should not run\n' >"$TEST_TMP/noexec"
chmod 644 "$TEST_TMP/noexec"
out=$("$MOAT_INIT" -- "$TEST_TMP/noexec" 2>&1)
is "$?" 126 "a command that is not executable: exit 126"
like "$out" "moat-init: cannot run '$TEST_TMP/noexec': Permission denied" "... with a clear message"
chmod 755 "$TEST_TMP/noexec"
out=$("$MOAT_INIT" -- "$TEST_TMP/noexec" 2>&1)
is "$?" 126 "an executable that is no binary nor #! script: exit 126 (no silent sh fallback)"
like "$out" "cannot run '$TEST_TMP/noexec': Exec format error" "... saying why"
"$MOAT_INIT" -- sh -c 'exit 9' >/dev/null 2>&1
is "$?" 9 "on the host too: the child's exit status"

# --- (1) a service that ignores SIGTERM: without the init (it is PID 1) it stays running
ibundle -x-trap /bin/sh -c 'trap "" TERM; echo up; exec sleep 100'
newid_var id notinit
ok "run -d (TERM ignored, no init)" rt run -d --bundle "$b" "$id"
ok "kill TERM (no init)" rt kill "$id" TERM
sleep 1
is "$(status_of "$id")" running "without the init, a PID 1 that ignores SIGTERM is still running 1 s later"
rt kill "$id" KILL >/dev/null 2>&1
wait_status "$id" stopped 10 >/dev/null
rt delete --force "$id" >/dev/null 2>&1

# ... and under the init it stops once the grace (300 ms) is over
ibundle trap --grace 300 -- /bin/sh -c 'trap "" TERM; sleep 100'
newid_var id trap
ok "run -d (TERM ignored, under the init)" rt run -d --bundle "$b" "$id"
sleep 0.2
t0=$(ms)
ok "kill TERM (under the init)" rt kill "$id" TERM
ok "stopped after TERM, under the init" wait_status "$id" stopped 10
dt=$(($(ms) - t0))
ok "stopped within 3 s (took ${dt} ms; grace 300 ms)" test "$dt" -lt 3000
ok "not before the grace: SIGKILL came from the grace timer (took ${dt} ms)" test "$dt" -ge 250
rt delete --force "$id" >/dev/null 2>&1

# the same, through run: status 137 (the shell was killed by SIGKILL), the init says why
ibundle trapfg --grace 300 -- /bin/sh -c 'trap "" TERM; echo up; sleep 100'
newid_var id trapfg
bg_run "$id" "$TEST_TMP/trapfg.out"
if wait_file "$TEST_TMP/trapfg.out" '^up$'; then
	rt kill "$id" TERM >/dev/null 2>&1
	is "$(bg_status "$TEST_TMP/trapfg.out")" 137 "run: a service killed after the grace exits 137"
	like "$(cat "$TEST_TMP/trapfg.out")" "did not exit 300 ms after SIGTERM: sending SIGKILL" \
		"the init says it sent SIGKILL"
else
	kill "$rpid" 2>/dev/null
	fail "the service under the init did not start"
	skip "the service did not start" 1
fi
rt delete --force "$id" >/dev/null 2>&1

# --- (2) a plain service stops at once on TERM: as PID 2 it gets the default action
ibundle sleep --grace 5000 -- /bin/sleep 100
newid_var id sleep
ok "run -d (sleep under the init)" rt run -d --bundle "$b" "$id"
sleep 0.2
t0=$(ms)
ok "kill TERM (sleep)" rt kill "$id" TERM
ok "stopped after TERM (sleep)" wait_status "$id" stopped 10
dt=$(($(ms) - t0))
ok "stopped at once, long before the 5 s grace (took ${dt} ms)" test "$dt" -lt 2000
rt delete --force "$id" >/dev/null 2>&1

# --- (3) exit status passthrough
ibundle exit7 -- /bin/sh -c 'exit 7'
newid_var id exit7
rt run --bundle "$b" "$id" >/dev/null 2>&1 </dev/null
is "$?" 7 "exit 7 under the init: run exits 7"
rt delete --force "$id" >/dev/null 2>&1

ibundle exit0 -- /bin/moat-helper pid
newid_var id exit0
out=$(rt run --bundle "$b" "$id" 2>&1 </dev/null)
is "$?" 0 "exit 0 under the init: run exits 0"
like "$out" "^pid=[02-9][0-9]* ppid=1( |\$)" "the service is not PID 1 but a child of the init (PID 1)"
rt delete --force "$id" >/dev/null 2>&1

ibundle killed -- /bin/sh -c 'kill -KILL $$'
newid_var id killed
rt run --bundle "$b" "$id" >/dev/null 2>&1 </dev/null
is "$?" 137 "a service killed by SIGKILL: run exits 137"
rt delete --force "$id" >/dev/null 2>&1

# --- (4) zombies are reaped: orphans of the service are reparented to PID 1 and exit
# children_of PID [STATE]: how many processes (in STATE, e.g. Z) have PID as their parent. Not
# `ps`: a zombie has left its cgroup already, so only /proc shows it.
children_of() {
	# through cat: a process may be gone before it is read (mawk stops at a file it cannot open)
	cat /proc/[0-9]*/status 2>/dev/null | awk -v P="$1" -v S="${2:-}" '/^Name:/ { st = "" } /^State:/ { st = $2 }
		/^PPid:/ && $2 == P && (S == "" || st == S) { n++ } END { print n + 0 }'
}
orphans='(sleep 0.1 &); (sleep 0.1 &); (sleep 0.1 &); exec sleep 100'
ibundle -x-zomb /bin/sh -c "$orphans"
newid_var id zombx
ok "run -d (orphans, no init)" rt run -d --bundle "$b" "$id"
sleep 1
is "$(children_of "$(pid_of "$id")" Z)" 3 "without the init, a PID 1 that never waits leaves 3 zombies"
rt delete --force "$id" >/dev/null 2>&1

ibundle zomb -- /bin/sh -c "$orphans"
newid_var id zomb
ok "run -d (orphans, under the init)" rt run -d --bundle "$b" "$id"
sleep 1
ipid=$(pid_of "$id")
is "$(children_of "$ipid" Z)" 0 "under the init: no zombie"
is "$(children_of "$ipid")" 1 "under the init: the service is its only child"
rt delete --force "$id" >/dev/null 2>&1

# --- (5) signals are forwarded to the service. Detached (run -d, output in a file): a
# foreground `runc run` forwards its Go runtime's SIGURGs too, and the helper reports only one.
for sig in USR1 HUP INT WINCH; do
	ibundle "sig$sig" -- /bin/moat-helper signals
	newid_var id "sig$sig"
	sout=$TEST_TMP/sig$sig.out
	if rt run -d --bundle "$b" "$id" >"$sout" 2>&1 </dev/null && wait_file "$sout" '^ready$'; then
		rt kill "$id" "$sig" >/dev/null 2>&1
		ok "the service exits after SIG$sig" wait_status "$id" stopped 10
		ok "SIG$sig is forwarded to the service" grep -qx "SIG$sig" "$sout" || diag "its output: $(cat "$sout")"
	else
		fail "moat-helper signals did not start (SIG$sig)"
		diag "its output: $(cat "$sout")"
		skip "the service did not start" 1
	fi
	rt delete --force "$id" >/dev/null 2>&1
done

# --- with a terminal: the service gets it as its foreground process group (so a shell's job
# control and ^C work), and the init passes its status through
if command -v script >/dev/null; then
	ibundle tty -- /bin/sh -c 'read -r _ _ _ _ pg _ _ tpg _ </proc/self/stat; echo "self=$$ pgrp=$pg tpgid=$tpg"; exit 5'
	jq '.process.terminal = true' "$b/config.json" >"$b/config.json.new" && mv "$b/config.json.new" "$b/config.json"
	newid_var id tty
	out=$(timeout 20 script -qec "$(printf '%q ' "$MOAT_RUNTIME" --root "$TEST_ROOT" run --bundle "$b" "$id")" \
		/dev/null </dev/null 2>&1)
	rc=$?
	is "$rc" 5 "with a terminal: the service's status passes through"
	if [[ $out =~ self=([0-9]+)\ pgrp=([0-9]+)\ tpgid=([0-9]+) ]] && [ "${BASH_REMATCH[1]}" != 1 ] &&
		[ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] && [ "${BASH_REMATCH[2]}" = "${BASH_REMATCH[3]}" ]; then
		pass "with a terminal: the service leads its own group, the terminal's foreground group"
	else
		fail "with a terminal: the service leads its own group, the terminal's foreground group"
		diag "got: $out"
	fi
	rt delete --force "$id" >/dev/null 2>&1
else
	skip "script(1) is not installed (util-linux)" 2
fi

# --- (6) exec failure: a clear message, exit 127
ibundle noexec -- /no/such/cmd arg
newid_var id noexec
out=$(rt run --bundle "$b" "$id" 2>&1 </dev/null)
is "$?" 127 "a command that does not exist: run exits 127"
like "$out" "moat-init: cannot run '/no/such/cmd': No such file or directory" "... and the init says why"
rt delete --force "$id" >/dev/null 2>&1

ibundle nopath -- no-such-cmd-in-path
newid_var id nopath
out=$(rt run --bundle "$b" "$id" 2>&1 </dev/null)
is "$?" 127 "a command not found in PATH: exit 127"
like "$out" "cannot run 'no-such-cmd-in-path'" "... naming the command"
rt delete --force "$id" >/dev/null 2>&1

done_testing
