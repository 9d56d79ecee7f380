#!/bin/bash
# An environment with a VM service (x-moat: {isolation: vm}) beside two container services:
# the VM gets a TAP on the environment's bridge where a container gets a veth, named the
# same way, so the same nftables policy and the same events apply.  Checked: the VM runs its
# own kernel; it reaches what it is allowed (a container's port) and nothing else (another
# container's port: refused, a `denied` event naming the VM service); a container allowed to
# reach the VM reaches it, one that is not is refused (event); the guest sees no host network
# beyond its own eth0 and cannot reach the host; down leaves nothing (no QEMU, no TAP).
# Slow under TCG: one VM boot (~3-10 s).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

vm_require
# the list file, empty for a kernel with virtio_net built in (scripts/vm-kernel-minimal.sh)
[ -f "${MOAT_VM_KERNEL:-/var/lib/moat/vm/kernels/current}/moat-modules-net" ] ||
	skip_all "the guest kernel has no network modules list (rerun scripts/vm-kernel.sh)"
env_setup mtvme localhost/vmenv:1

mkdir -p "$TEST_TMP/proj"
cat >"$TEST_TMP/proj/compose.yaml" <<'YAML'
services:
  web:
    image: localhost/vmenv:1
    command: ["/bin/busybox", "nc", "-ll", "-p", "81", "-e", "/bin/busybox", "echo", "web"]
    x-moat:
      allow: ["guest:8080"]
  db:
    image: localhost/vmenv:1
    command: ["/bin/busybox", "nc", "-ll", "-p", "5433", "-e", "/bin/busybox", "echo", "db"]
  guest:
    image: localhost/vmenv:1
    command: ["/bin/busybox", "sh", "-c", "uname -r > /tmp/kernel; echo guest-says-hello; exec /bin/busybox nc -ll -p 8080 -e /bin/busybox echo vm"]
    mem_limit: 256m
    ports: ["17380:8080"]
    healthcheck:
      test: ["CMD", "/bin/busybox", "test", "-s", "/tmp/kernel"]
      interval: 1s
      retries: 30
    x-moat:
      isolation: vm
      allow: ["web:81"]
YAML
F=(-f "$TEST_TMP/proj/compose.yaml" -p "$P")
qemus() { pgrep -f "qemu-system-x86_64.*$ENVDIR" | tr '\n' ' '; }

start=$(date +%s%N)
ok "up -d with a VM service" "${MOAT[@]}" up -d "${F[@]}" || bail_out "up -d failed"
diag "up -d with one VM: $((($(date +%s%N) - start) / 1000000)) ms"
BR=$(jq -r .bridge "$ENVDIR/state.json")
addr() { jq -r --arg s "$1" '.services[] | select(.name == $s) | .address' "$ENVDIR/state.json"; }
gaddr=$(addr guest) waddr=$(addr web) daddr=$(addr db)
tap=$("${MOAT[@]}" ps -p "$P" --format json 2>/dev/null | jq -r '.[]? | select(.name == "guest") | .host_if' 2>/dev/null)
[ -n "$tap" ] && [ "$tap" != null ] || tap=$(jq -r '.services[] | select(.name == "guest") | .host_if' "$ENVDIR/state.json")
like "$tap" "^$BR-[0-9]+\$" "the VM's port on the bridge is named like a container's ($tap)"
is "$(ip -d -o link show "$tap" 2>/dev/null | grep -o 'tun type tap' | head -1)" "tun type tap" "... and it is a TAP"
is "$(ip -o link show "$tap" 2>/dev/null | grep -o "master $BR")" "master $BR" "... a port of the environment's bridge"
is "$("${MOAT[@]}" ps -p "$P" 2>/dev/null | awk '$1 == "guest" {print $2}')" running "ps: the VM service runs"

vmexec() { "${MOAT[@]}" exec -p "$P" guest "$@"; }
# the VM service talks from inside its guest: run probes through its own command would need
# exec; instead the probes run in the containers and the guest's own server answers
for ((i = 0; i < 300; i++)); do
	out=$("${MOAT[@]}" exec -p "$P" web /bin/busybox nc -w 2 "$gaddr" 8080 2>/dev/null) && [ "$out" = vm ] && break
	sleep 0.2
done
is "$out" vm "a container allowed to reach the VM's port reaches it (web -> guest:8080)"
out=$("${MOAT[@]}" exec -p "$P" db /bin/busybox nc -w 2 "$gaddr" 8080 2>&1)
isnt "$out" vm "a container not allowed to is refused (db -> guest:8080)"
ok "... with a denied event naming both" wait_event denied db
is "$(events_of denied db | jq -r ".fields.dst" | head -1)" guest "... the event names the VM service as the destination"

# from inside the VM (exec through the VM's channel): the allowed peer by name (/etc/hosts is
# the environment's, shared into the guest), a forbidden one, the host
is "$(vmexec /bin/busybox nc -w 3 web 81 2>&1)" web "the VM reaches what it is allowed, by name (guest -> web:81)"
isnt "$(vmexec /bin/busybox nc -w 3 db 5433 2>&1)" db "the VM is refused what it is not (guest -> db:5433)"
ok "... with a denied event naming the VM service" wait_event denied guest
is "$(events_of denied guest | jq -r '.fields.dst' | head -1)" db "... and db as the destination"
is "$(vmexec /bin/busybox sh -c 'ls /sys/class/net | tr "\n" " "')" "eth0 lo " "the guest sees only its eth0 and lo"
like "$(vmexec /bin/busybox ip -4 -o addr show eth0 2>&1)" "inet $gaddr/" "... with the environment's address for it ($gaddr)"
isnt "$(vmexec cat /tmp/kernel)" "$(uname -r)" "the VM service runs its own kernel"
is "$(vmexec /bin/busybox sh -c 'ps -o comm | grep -cE "qemu|moat|supervisor|bash|meson" || true')" 0 \
	"the guest root sees none of the host's processes (no QEMU, no moat, no test)"
mkdir -p "$TEST_TMP/host-only" && echo secret >"$TEST_TMP/host-only/file"
is "$(vmexec /bin/busybox sh -c "cat $TEST_TMP/host-only/file 2>/dev/null || echo absent")" absent \
	"the guest root cannot see a host file"
is "$(vmexec /bin/busybox sh -c 'ls /dev/vda /dev/vdb /dev/hvc0 /dev/vport0p1 2>/dev/null | wc -l')" 0 \
	"... nor the VM's disks, console or channel (its /dev is a tmpfs with the usual nodes)"
# the host, on the bridge's gateway address: a listener there answers the host itself, but
# neither a container nor the VM (the policy lets services reach the host for replies only)
gw=$(jq -r .gateway "$ENVDIR/state.json")
python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8799))
s.listen(8)
while True:
    c, _ = s.accept()
    c.sendall(b"host\n")
    c.close()
' "$gw" >/dev/null 2>&1 &
hostnc=$!
for ((i = 0; i < 50; i++)); do
	[ "$("$MOAT_ROOTFS/bin/busybox" nc -w 1 "$gw" 8799 2>/dev/null)" = host ] && break
	sleep 0.1
done
is "$("$MOAT_ROOTFS/bin/busybox" nc -w 1 "$gw" 8799 2>&1)" host "a host listener on $gw:8799 answers the host"
isnt "$("${MOAT[@]}" exec -p "$P" web /bin/busybox nc -w 2 "$gw" 8799 2>&1)" host "... not a container"
isnt "$(vmexec /bin/busybox nc -w 2 "$gw" 8799 2>&1)" host "... and not the VM: exactly as for a container"
kill "$hostnc" 2>/dev/null
wait "$hostnc" 2>/dev/null
for ((i = 0; i < 100; i++)); do
	[ "$("${MOAT[@]}" ps -p "$P" 2>/dev/null | awk '$1 == "guest" {print $3}')" = healthy ] && break
	sleep 0.2
done
like "$("${MOAT[@]}" ps -p "$P" 2>/dev/null | awk '$1 == "guest"')" "healthy" "the VM service's health check (run in the guest) says healthy"

like "$("${MOAT[@]}" logs -p "$P" guest 2>&1)" "guest-says-hello" "moat logs shows the VM service's output"

# the VM's published port, from the host (DNAT to the guest's address, as for a container)
is "$(timeout 4 "$MOAT_ROOTFS/bin/busybox" nc -w 2 "$gw" 17380 </dev/null 2>&1)" vm \
	"the VM service's published port 17380 answers from the host at $gw"

# moat restart of the VM service: a new VM, same address and port, reachable again
q1=$(qemus)
ok "restart the VM service" "${MOAT[@]}" restart -p "$P" guest
for ((i = 0; i < 300; i++)); do
	out=$("${MOAT[@]}" exec -p "$P" web /bin/busybox nc -w 2 "$gaddr" 8080 2>/dev/null) && [ "$out" = vm ] && break
	sleep 0.2
done
is "$out" vm "... it answers again on $gaddr:8080"
isnt "$(qemus)" "$q1" "... from a new QEMU (the old one is gone)"
is "$(ip -o link show "$tap" 2>/dev/null | grep -o "master $BR")" "master $BR" "... behind a new TAP of the same name"

# the leak check: down takes the VM (QEMU, its TAP) with everything else
q=$(qemus)
isnt "$q" "" "a QEMU runs for the VM service"
ok "down" "${MOAT[@]}" down "${F[@]}"
for ((i = 0; i < 50; i++)); do [ -z "$(qemus)" ] && break; sleep 0.1; done
is "$(qemus)" "" "no QEMU left after down"
is "$(ip -o link show "$tap" 2>/dev/null)" "" "the TAP is gone"
is "$(leftovers)" "" "nothing of the environment is left"
done_testing
