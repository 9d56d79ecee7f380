#!/bin/bash
# The vm tier's runtime face has what a container has (docs/vm.md): the monitor and its QEMU in
# the container's cgroup (linux.cgroupsPath), the memory limit = guest RAM + the VMM's allowance,
# the cpu quota and pids limit applied; pause freezes QEMU (the guest's counter stops) and
# resume lets it go on; ps lists them; kill -9 of the monitor then delete leaves nothing; a
# terminal through --console-socket (tty, its size at start and after a resize, input).
# Two boots under TCG.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

vm_require
[ -x "$MOAT_BUILD_ROOT/moat" ] || skip_all "moat not built (moat-runtime hands a VM's create to it)"
RT=("$MOAT_BUILD_ROOT/moat-runtime" --root "$TEST_ROOT")
rt() { "${RT[@]}" "$@"; }
# the cgroup directory of CTRL for this test's container
cgdir() { echo "/sys/fs/cgroup/$1/$2"; }
in_procs() { grep -qx "$1" "$2/cgroup.procs" 2>/dev/null; }
lines() { grep -c '^n=' "$1" 2>/dev/null; }
wait_for() { # wait_for SECS CMD...
	local i n=$(($1 * 10))
	shift
	for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done
	return 1
}
qemu_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------- boot 1: cgroup, pause, ps, kill -9
b=$TEST_TMP/b-cg
newid_var id vmcg
mkbundle "$b" '.process.args = ["/bin/sh", "-c", "i=0; while :; do echo n=$i; i=$((i+1)); sleep 0.2; done"]
	| .annotations = {"moat.isolation": "vm"} | .linux.cgroupsPath = "/'"$id"'"
	| .linux.resources.memory = {"limit": 209715200} | .linux.resources.cpu = {"quota": 50000, "period": 100000}
	| .linux.resources.pids = {"limit": 10}' || bail_out mkbundle
out=$TEST_TMP/cg.out
rt create --bundle "$b" "$id" >"$out" 2>"$TEST_TMP/cg.err" </dev/null
is "$?" 0 "create (cgroupsPath /$id, memory 200 MiB, cpu quota 50000/100000, pids 10)" ||
	diag "$(head -c 600 "$TEST_TMP/cg.err")"
mon=$(pid_of "$id")
qemu=$(pgrep -P "$mon" -f qemu-system 2>/dev/null | head -1)
[ -n "$qemu" ] && pass "the monitor ($mon) runs QEMU ($qemu)" || fail "the monitor ($mon) runs QEMU"
allin=1
for c in pids memory cpu freezer unified; do
	in_procs "$mon" "$(cgdir $c "$id")" && in_procs "$qemu" "$(cgdir $c "$id")" || { allin=0; diag "not in $c"; }
done
is "$allin" 1 "the monitor and QEMU are in the cgroup's cgroup.procs (pids, memory, cpu, freezer, unified)"
is "$(cat "$(cgdir memory "$id")/memory.limit_in_bytes" 2>/dev/null)" $(((200 + 192) << 20)) \
	"memory limit: the guest's 200 MiB + 192 MiB for QEMU"
is "$(cat "$(cgdir cpu "$id")/cpu.cfs_quota_us" 2>/dev/null)" 50000 "cpu quota applied to QEMU (50000/100000)"
is "$(cat "$(cgdir pids "$id")/pids.max" 2>/dev/null)" 128 "pids limit 10 raised to 128 (QEMU's threads count)"
is "$(status_of "$id")" created "state: created"

ok "start" rt start "$id"
wait_for 30 eval '[ "$(lines "$out")" -ge 3 ]'
like "$(cat "$out")" "n=2" "the guest's counter runs"
pids=$(rt ps --format json "$id" 2>/dev/null)
is "$(jq -r "(index($mon) != null) and (index($qemu) != null)" <<<"$pids" 2>/dev/null)" true \
	"ps lists the monitor and QEMU ($pids)"

out2=$(rt update --memory 64m "$id" 2>&1)
isnt "$?" 0 "update --memory of a VM is refused (the guest's RAM is fixed at boot)"
like "$out2" "runs in a VM: its memory is the guest's RAM" "... saying why ($out2)"
is "$(cat "$(cgdir memory "$id")/memory.limit_in_bytes" 2>/dev/null)" $(((200 + 192) << 20)) "... the limit unchanged"
ok "update --pids-limit 20 --cpu-quota 20000" rt update --pids-limit 20 --cpu-quota 20000 "$id"
is "$(cat "$(cgdir pids "$id")/pids.max" 2>/dev/null)" 128 "... pids raised to 128 again (QEMU's threads)"
is "$(cat "$(cgdir cpu "$id")/cpu.cfs_quota_us" 2>/dev/null)" 20000 "... the cpu quota applied to QEMU"
ev=$(rt events --stats "$id" 2>&1)
is "$(jq -r .type <<<"$ev" 2>/dev/null)" stats "events --stats of a VM container: a stats event"
mem=$(jq -r '.data.memory.usage.usage // 0' <<<"$ev" 2>/dev/null)
[ "${mem:-0}" -gt $((20 << 20)) ] && pass "... its memory is QEMU's ($((mem >> 20)) MiB)" ||
	fail "... its memory is QEMU's (got '$mem': $(head -c 300 <<<"$ev"))"
ok "pause" rt pause "$id"
is "$(status_of "$id")" paused "state: paused"
is "$(cat "$(cgdir freezer "$id")/freezer.state" 2>/dev/null)" FROZEN "the cgroup is frozen"
sleep 0.5
c1=$(lines "$out")
sleep 2
c2=$(lines "$out")
is "$c2" "$c1" "while paused the guest's counter stops ($c1 lines)"
ok "resume" rt resume "$id"
is "$(status_of "$id")" running "state: running again"
wait_for 30 eval '[ "$(lines "$out")" -ge $((c2 + 3)) ]'
c3=$(lines "$out")
[ "$c3" -ge $((c2 + 3)) ] && pass "after resume it goes on ($c2 -> $c3)" || fail "after resume it goes on ($c2 -> $c3)"
diag "memory in the cgroup at most $(($(cat "$(cgdir memory "$id")/memory.max_usage_in_bytes" 2>/dev/null || echo 0) >> 20)) MiB" \
	"QEMU's RSS $(awk '/^VmRSS/ {print $2 " " $3}' /proc/"$qemu"/status 2>/dev/null), threads in the cgroup $(cat "$(cgdir pids "$id")/pids.current" 2>/dev/null)"

kill -9 "$mon"
wait_for 10 eval '[ "$(status_of "$id")" = stopped ]'
is "$(status_of "$id")" stopped "kill -9 of the monitor: state stopped"
wait_for 10 eval '! qemu_alive "$qemu"'
qemu_alive "$qemu" && fail "... and QEMU is gone with it" || pass "... and QEMU is gone with it"
ok "delete" rt delete "$id"
left=""
for c in pids memory cpu freezer unified; do [ -e "$(cgdir $c "$id")" ] && left+="$c "; done
is "$left" "" "no cgroup left"
[ -e "$TEST_ROOT/$id" ] && fail "no state dir left" || pass "no state dir left"

# ---------------------------------------------------------------- boot 2: a terminal
# the --console-socket end: takes the master, waits for "ready", resizes it to 20x70, waits for
# the guest to see it, types a line, reads until the slave side is gone
cat >"$TEST_TMP/recv.py" <<'PY'
import fcntl, os, select, socket, struct, sys, termios, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path); s.listen(1)
open(path + ".ready", "w").close()
s.settimeout(120)
c, _ = s.accept()
_, fds, _, _ = socket.recv_fds(c, 4096, 4)
fd = fds[0]
data, resized, typed, t0 = b"", False, False, time.time()
while time.time() - t0 < 120:
    r, _, _ = select.select([fd], [], [], 1)
    if r:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        data += d
    if not resized and b"ready" in data:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 20, 70, 0, 0))
        resized = True
    if resized and not typed and b"20 70" in data:
        os.write(fd, b"typed-42\n")
        typed = True
open(out, "w").write(data.decode(errors="replace").replace("\r", ""))
PY
b=$TEST_TMP/b-tty
newid_var id vmtty
mkbundle "$b" '.process.terminal = true | .process.consoleSize = {"height": 37, "width": 111}
	| .annotations = {"moat.isolation": "vm"} | .linux.cgroupsPath = "/'"$id"'"
	| .process.args = ["/bin/sh", "-c", "tty; stty size; echo ready; i=0; while [ \"$(stty size)\" = \"37 111\" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; stty size; read x; echo got=$x; exit 3"]' ||
	bail_out mkbundle
if command -v python3 >/dev/null; then
	sock=$TEST_TMP/console.sock
	python3 "$TEST_TMP/recv.py" "$sock" "$TEST_TMP/tty.out" </dev/null >/dev/null 2>"$TEST_TMP/recv.err" &
	recv=$!
	wait_for 10 test -e "$sock.ready"
	rt create --console-socket "$sock" --bundle "$b" "$id" >"$TEST_TMP/tty.create" 2>&1 </dev/null
	is "$?" 0 "create with process.terminal and --console-socket" || diag "$(head -c 600 "$TEST_TMP/tty.create")"
	ok "start" rt start "$id"
	wait_for 120 eval '! kill -0 $recv 2>/dev/null'
	kill "$recv" 2>/dev/null
	wait "$recv"
	t=$(cat "$TEST_TMP/tty.out" 2>/dev/null)
	diag "$t"
	like "$t" "^/dev/pts/0" "the process's stdin is a terminal (tty: /dev/pts/0)"
	like "$t" "37 111" "consoleSize is its size at start (stty size: 37 111)"
	like "$t" "20 70" "a resize of the master reaches the guest (SIGWINCH -> RESIZE: 20 70)"
	like "$t" "got=typed-42" "what is typed on the master reaches the process"
	wait_for 10 eval '[ "$(status_of "$id")" = stopped ]'
	is "$(status_of "$id")" stopped "state: stopped once the process exited"
	ok "delete" rt delete "$id"
	[ -e "$(cgdir pids "$id")" ] || [ -e "$TEST_ROOT/$id" ] && fail "no cgroup, no state left" || pass "no cgroup, no state left"
else
	skip "python3 is not installed (the console socket's end)" 9
fi

# refused before any boot, as for containers
b=$TEST_TMP/b-nosock
mkbundle "$b" '.process.terminal = true | .annotations = {"moat.isolation": "vm"}' || bail_out mkbundle
newid_var id vmnosock
out=$(rt create --bundle "$b" "$id" 2>&1 </dev/null)
isnt "$?" 0 "terminal without --console-socket is refused: $out"
is "$(status_of "$id")" none "... and leaves nothing"

is "$(pgrep -f "qemu-system-x86_64.*$TEST_TMP" | tr '\n' ' ')" "" "no QEMU left"
done_testing
