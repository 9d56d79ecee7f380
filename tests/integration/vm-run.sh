#!/bin/bash
# The vm tier end to end: `moat run --isolation vm` boots the image's rootfs in a VM of its own
# (QEMU, the guest kernel from scripts/vm-kernel.sh, moat-vminit as PID 1): another kernel than
# the host's, the exit status, stdout/stderr, stdin, a signal passed on, the root an overlay
# whose writes go with the VM; a hostile "guest" (a fake QEMU that writes garbage on the
# channel) ends with an error and nothing left; nothing of any VM stays (QEMU, disks, sockets).
# Slow under TCG (a few seconds a boot): six boots.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

vm_require
env_setup mtvm localhost/vmtest:1
CACHE=/var/lib/moat/vm/cache
run() { "${MOAT[@]}" run --isolation vm localhost/vmtest:1 -- "$@"; }
qemus() { pgrep -f "qemu-system-x86_64.*($STORE|$TEST_TMP)" | tr '\n' ' '; }

start=$(date +%s%N)
out=$(run /bin/sh -c 'uname -r; echo to-stderr >&2; exit 7' 2>"$TEST_TMP/err")
rc=$?
diag "first run (root disk made, TCG or KVM boot): $((($(date +%s%N) - start) / 1000000)) ms"
is "$rc" 7 "the process's exit status comes back (7)"
isnt "$out" "$(uname -r)" "the guest runs its own kernel ($out, the host $(uname -r))"
like "$out" "^[0-9]+\.[0-9]+" "... a kernel release"
like "$(cat "$TEST_TMP/err")" "to-stderr" "stderr comes back on stderr"

start=$(date +%s%N)
out=$(echo "through stdin" | run /bin/sh -c 'cat; cat /proc/1/comm; echo written > /file; cat /file')
diag "second run (root disk cached): $((($(date +%s%N) - start) / 1000000)) ms"
is "$out" "through stdin
init
written" "stdin reaches the process; PID 1 is the guest's init; the root is writable"
is "$(run /bin/sh -c 'cat /file 2>/dev/null || echo absent')" "absent" "a write does not outlive its VM (writable layer discarded)"
out=$(run /bin/sh -c 'ps -o comm | grep -cE "qemu|moat|meson|bash"; ls /sys/class/net | tr "\n" " "')
is "$out" "0
lo " "a guest sees none of the host's processes and no network but lo"

"${MOAT[@]}" run --isolation vm localhost/vmtest:1 -- /bin/sh -c 'echo running; exec sleep 100' >"$TEST_TMP/sig.out" &
p=$!
for ((i = 0; i < 600; i++)); do has running "$TEST_TMP/sig.out" && break; sleep 0.1; done
# the VMM confined: no capability, no_new_privs, a network namespace of its own
q=$(qemus | cut -d' ' -f1)
if [ -n "$q" ]; then
	is "$(awk '/^CapEff:/ {print $2}' /proc/"$q"/status)" 0000000000000000 "QEMU runs without any capability"
	is "$(awk '/^CapBnd:/ {print $2}' /proc/"$q"/status)" 0000000000000000 "... none in its bounding set either"
	is "$(awk '/^NoNewPrivs:/ {print $2}' /proc/"$q"/status)" 1 "... with no_new_privs"
	isnt "$(readlink /proc/"$q"/ns/net)" "$(readlink /proc/self/ns/net)" "... in a network namespace of its own"
	# its root: a read-only tmpfs with /usr, a few devices and its own files, nothing else
	R=/proc/$q/root
	[ ! -e "$R/etc/passwd" ] && [ ! -e "$R/home" ] && [ ! -e "$R/root" ] && [ ! -e "$R/proc/self" ] &&
		[ ! -e "$R/sys/kernel" ] && [ ! -e "$R$STORE/images" ] && pass "QEMU's root has no /etc/passwd, /home, /root, /proc, /sys, image store" ||
		fail "QEMU's root has no /etc/passwd, /home, /root, /proc, /sys, image store ($(ls "$R" | tr '\n' ' '))"
	[ -x "$R/usr/bin/qemu-system-x86_64" ] && [ -e "$R/bin/sh" ] && [ -c "$R/dev/null" ] && pass "... it has /usr (and /bin through usr), /dev/null" || fail "... it has /usr, /dev/null"
	args=$(tr '\0' '\n' </proc/"$q"/cmdline)
	kern=$(sed -n '/^-kernel$/{n;p}' <<<"$args")
	vda=$(grep -o 'node-name=vda,.*' <<<"$args" | sed 's/.*file.filename=//; s/,.*//')
	vdb=$(grep -o 'node-name=vdb,.*' <<<"$args" | sed 's/.*file.filename=//; s/,.*//')
	[ -f "$R$kern" ] && [ -f "$R$vda" ] && [ -f "$R$vdb" ] && pass "... its kernel and disks at their paths" ||
		fail "... its kernel and disks at their paths ('$kern' '$vda' '$vdb')"
	mi=$(cat /proc/"$q"/mountinfo)
	diag "QEMU's mountinfo:"
	diag "$mi"
	like "$(awk '$5 == "/" {print $6, $(NF - 2)}' <<<"$mi")" "^ro,.* tmpfs$" "... its / a read-only tmpfs"
	like "$(awk '$5 == "/usr" {print $6}' <<<"$mi")" "^ro," "... /usr read-only"
	is "$(awk -v d="$vdb" '$5 == d {print substr($6, 1, 3)}' <<<"$mi")" "rw," "... only the writable disk and the console log writable"
	is "$(awk '$6 ~ /^rw/ {print $5}' <<<"$mi" | grep -vcE '^/dev/(null|zero|urandom|kvm)$|/(rw\.ext4|console\.log)$')" 0 \
		"... nothing else writable"
	is "$(awk '{print $5}' <<<"$mi" | grep -vcE '^/$|^/usr$|^/etc/ld\.so\.cache$|^/dev/(null|zero|urandom|kvm)$|/vmlinux$|/initramfs-[^/]*$|/(img-[^/]*|root|rw)\.ext4$|/console\.log$|/vm\.sock$')" 0 \
		"... and no mount but those ($(awk '{print $5}' <<<"$mi" | wc -l) mounts)"
else
	for k in 1 2 3 4 5 6 7 8 9 10 11; do fail "a QEMU runs while the process runs"; done
fi
kill -TERM "$p"
wait "$p"
is "$?" 143 "SIGTERM to moat run reaches the process in the VM (143)"

# a hostile guest: a fake QEMU that connects to the channel and writes a frame of 4 GiB
cat >"$TEST_TMP/fakeqemu" <<'PY'
#!/usr/bin/env python3
import socket, sys, time
path = [a.split('path=')[1].split(',')[0] for a in sys.argv if a.startswith('socket,id=ctl,')][0]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall(b'\xff\xff\xff\xff\x01garbage' * 100)
time.sleep(60)
PY
chmod +x "$TEST_TMP/fakeqemu"
if command -v python3 >/dev/null; then
	start=$(date +%s)
	out=$(MOAT_VM_QEMU=$TEST_TMP/fakeqemu run true 2>&1)
	rc=$?
	is "$rc" 125 "a guest writing garbage: moat run fails (125), it does not crash"
	like "$out" "broke the channel protocol" "... saying the guest broke the protocol"
	[ $(($(date +%s) - start)) -lt 30 ] && pass "... at once (not after a timeout)" || fail "... at once"
	pgrep -f "$TEST_TMP/fakeqemu" >/dev/null && fail "... and the fake VMM is gone" || pass "... and the fake VMM is gone"
else
	skip "python3 is not installed (the fake VMM)" 4
fi

# the runtime face: moat-runtime create/start/state/kill/delete of a bundle with moat.isolation=vm
b=$TEST_TMP/vmbundle
mkbundle "$b" '.process.args = ["/bin/sh", "-c", "echo vm-started; exec sleep 100"] | .annotations = {"moat.isolation": "vm"} | .process.terminal = false' ||
	bail_out mkbundle
newid_var vid vm
RT=("$MOAT_BUILD_ROOT/moat-runtime" --root "$TEST_TMP/rtroot")
"${RT[@]}" create --bundle "$b" "$vid" >"$TEST_TMP/rt.out" 2>"$TEST_TMP/rt.err" </dev/null
is "$?" 0 "moat-runtime create of a moat.isolation=vm bundle (the lean binary hands it to moat)"
is "$("${RT[@]}" state "$vid" | jq -r .status)" created "state: created (the VM is up, the process waits)"
ok "start" "${RT[@]}" start "$vid"
for ((i = 0; i < 100; i++)); do has vm-started "$TEST_TMP/rt.out" && break; sleep 0.1; done
is "$("${RT[@]}" state "$vid" | jq -r .status)" running "state: running"
like "$(cat "$TEST_TMP/rt.out")" "vm-started" "the process's output reaches create's stdout"
ok "kill TERM" "${RT[@]}" kill "$vid" TERM
for ((i = 0; i < 100; i++)); do [ "$("${RT[@]}" state "$vid" | jq -r .status)" = stopped ] && break; sleep 0.1; done
is "$("${RT[@]}" state "$vid" | jq -r .status)" stopped "state: stopped once the process got TERM in the VM"
ok "delete" "${RT[@]}" delete "$vid"
is "$(ls "$TEST_TMP/rtroot" 2>/dev/null | tr '\n' ' ')" "" "nothing left under the runtime root"

is "$(qemus)" "" "no QEMU left"
is "$(ls "$STORE/containers" 2>/dev/null | tr '\n' ' ')" "" "no container dir left (disks, sockets)"
ls "$CACHE"/img-*.ext4 >/dev/null 2>&1 && pass "the image's root disk is cached" || fail "the image's root disk is cached"
done_testing
