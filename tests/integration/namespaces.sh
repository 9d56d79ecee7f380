#!/bin/bash
# Namespaces: each type created, joined by path, refused when of the wrong type, absent = the host's.
. "$(dirname "$0")/lib.sh"

# runout NAME JQ: bundle NAME from JQ, `run` it in the foreground; prints stdout+stderr, returns its status
runout() {
	local name=$1 filter=$2 id rc
	mkbundle "$TEST_TMP/b-$name" "$filter" || return 99
	newid_var id "$name"
	rt run --bundle "$TEST_TMP/b-$name" "$id" </dev/null 2>&1
	rc=$?
	rt delete --force "$id" >/dev/null 2>&1
	return $rc
}

host_ns() { readlink "/proc/self/ns/$1"; }
nsdel() { printf '.linux.namespaces |= map(select(.type != "%s"))' "$1"; }

# --- pid
out=$(runout pid ".process.args = $(jargs /bin/moat-helper pid)")
like "$out" '^pid=1 ppid=0' "pid: the process is pid 1"
out=$(runout pid-none "$(nsdel pid) | .process.args = $(jargs /bin/moat-helper pid)")
unlike "$out" '^pid=1 ' "pid: without a pid namespace the process is not pid 1"

# --- network: only lo, brought up (as runc does)
out=$(runout net '.process.args = ["/bin/sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags; readlink /proc/self/ns/net"]')
is "$(printf '%s\n' "$out" | head -1)" lo "network: lo is the only interface"
like "$out" $'\n0x[0-9a-f]*[13579bdf]\n' "network: lo is up (IFF_UP in flags)"
isnt "$(printf '%s\n' "$out" | tail -1)" "$(host_ns net)" "network: a new net namespace"
out=$(runout net-none "$(nsdel network) | .process.args = $(jargs /bin/readlink /proc/self/ns/net)")
is "$out" "$(host_ns net)" "network: no entry means the host's net namespace"

# --- mount
out=$(runout mnt '.process.args = ["/bin/readlink", "/proc/self/ns/mnt"]')
like "$out" '^mnt:\[[0-9]+\]$' "mount: readlink works"
isnt "$out" "$(host_ns mnt)" "mount: a new mount namespace"

# --- ipc: a SysV message queue made on the host is not visible inside
qid=$(python3 -c 'import ctypes; l=ctypes.CDLL(None); print(l.msgget(0x6d6f6174, 0o1600))' 2>/dev/null)
if [[ $qid =~ ^[0-9]+$ ]]; then
	host_q=$(grep -c 6d6f6174 /proc/sysvipc/msg 2>/dev/null || awk '$1 == 1836015988' /proc/sysvipc/msg | wc -l)
	out=$(runout ipc '.process.args = ["/bin/cat", "/proc/sysvipc/msg"]')
	unlike "$out" '1836015988' "ipc: the host's message queue is not visible inside"
	out=$(runout ipc-none "$(nsdel ipc)"' | .process.args = ["/bin/cat", "/proc/sysvipc/msg"]')
	like "$out" '1836015988' "ipc: without an ipc namespace the host's queue is visible"
	python3 -c "import ctypes; l=ctypes.CDLL(None); l.msgctl($qid, 0, None)"
else
	skip "cannot create a SysV message queue" 2
fi
out=$(runout ipc-ns '.process.args = ["/bin/readlink", "/proc/self/ns/ipc"]')
isnt "$out" "$(host_ns ipc)" "ipc: a new ipc namespace"

# --- uts
out=$(runout uts '.hostname = "moat-uts" | .domainname = "example.test" | .process.args = ["/bin/moat-helper", "hostname"]')
like "$out" 'hostname=moat-uts' "uts: hostname is set"
like "$out" 'domainname=example.test' "uts: domainname is set"
is "$(hostname)" "$(uname -n)" "uts: the host's hostname is untouched"
out=$(runout uts-none "$(nsdel uts) | del(.hostname)"' | .process.args = ["/bin/moat-helper", "hostname"]')
like "$out" "hostname=$(uname -n)\$|hostname=$(uname -n)"$'\n' "uts: without a uts namespace the host's hostname is seen"
out=$(runout uts-bad "$(nsdel uts)"' | .hostname = "x" | .process.args = ["/bin/true"]')
rc=$?
isnt "$rc" 0 "uts: a hostname without a uts namespace is refused"

# --- user: id 0 inside is 100000 outside
b=$TEST_TMP/b-user
mkbundle "$b" '.linux.namespaces += [{"type": "user"}]
	| .linux.uidMappings = [{"containerID": 0, "hostID": 100000, "size": 65536}]
	| .linux.gidMappings = [{"containerID": 0, "hostID": 100000, "size": 65536}]
	| .process.args = ["/bin/moat-helper", "sleep", "60"]' || bail_out mkbundle
chown -hR 100000:100000 "$b/rootfs"
newid_var id user
ok "user: create" rt create --bundle "$b" "$id"
ok "user: start" rt start "$id"
pid=$(pid_of "$id")
is "$(awk '/^Uid:/ {print $2}' /proc/"$pid"/status)" 100000 "user: the init runs as uid 100000 on the host"
is "$(awk '/^Gid:/ {print $2}' /proc/"$pid"/status)" 100000 "user: the init runs as gid 100000 on the host"
like "$(cat /proc/"$pid"/uid_map)" '^ *0 +100000 +65536$' "user: uid_map is 0 100000 65536"
like "$(cat /proc/"$pid"/gid_map)" '^ *0 +100000 +65536$' "user: gid_map is 0 100000 65536"
out=$(rt exec "$id" /bin/moat-helper id 2>&1)
like "$out" '^uid=0 euid=0 gid=0 egid=0' "user: id 0 inside"
isnt "$(readlink /proc/"$pid"/ns/user)" "$(host_ns user)" "user: a new user namespace"
out=$(rt exec --user 1000:1000 "$id" /bin/moat-helper id 2>&1)
like "$out" '^uid=1000 euid=1000 gid=1000 egid=1000' "user: exec --user 1000:1000 inside the user namespace"
xpf=$TEST_TMP/user-exec.pid
rt exec -d --pid-file "$xpf" --user 1000:1000 "$id" /bin/moat-helper sleep 30 >/dev/null 2>&1
is "$(awk '/^Uid:/ {print $2}' /proc/"$(cat "$xpf" 2>/dev/null || echo 0)"/status 2>&1)" 101000 "user: uid 1000 inside is 101000 on the host"
out=$(rt exec "$id" /bin/sh -c 'touch /tmp/f && stat -c %u:%g /tmp/f' 2>&1)
is "$out" "0:0" "user: a file made inside is owned by 0:0 inside"
is "$(stat -c %u:%g "$b/rootfs/tmp/f" 2>&1)" "100000:100000" "user: ... and by 100000:100000 on the host"
rt delete --force "$id" >/dev/null 2>&1

# --- cgroup
out=$(runout cgroup '.process.args = ["/bin/moat-helper", "cgroup"]')
like "$out" ':memory:/$|:memory:/'$'\n' "cgroup: memory cgroup is / inside"
unlike "$out" ':/[^[:space:]]' "cgroup: every hierarchy shows / inside"
out=$(runout cgroup-none "$(nsdel cgroup)"' | .process.args = ["/bin/moat-helper", "cgroup"]')
like "$out" ':memory:/[^[:space:]]' "cgroup: without a cgroup namespace the real path shows"

# --- time
if [ -e /proc/self/ns/time ]; then
	out=$(runout time '.linux.namespaces += [{"type": "time"}]
		| .linux.timeOffsets = {"monotonic": {"secs": 864000, "nanosecs": 0}, "boottime": {"secs": 1728000, "nanosecs": 0}}
		| .process.args = ["/bin/sh", "-c", "cat /proc/self/timens_offsets /proc/uptime"]')
	like "$out" 'monotonic +864000 +0' "time: monotonic offset applied"
	like "$out" 'boottime +1728000 +0' "time: boottime offset applied"
	up=$(printf '%s\n' "$out" | tail -1 | cut -d. -f1)
	hostup=$(cut -d. -f1 /proc/uptime)
	[[ $up =~ ^[0-9]+$ ]] || up=0
	ok "time: /proc/uptime inside is shifted by the boottime offset ($up vs $hostup)" test "$((up - hostup))" -ge 1727990
	b=$TEST_TMP/b-time-exec
	mkbundle "$b" '.linux.namespaces += [{"type": "time"}] | .linux.timeOffsets = {"monotonic": {"secs": 4242, "nanosecs": 0}}
		| .process.args = ["/bin/moat-helper", "sleep", "60"]' || bail_out mkbundle
	newid_var id time-exec
	ok "time: run -d" rt run -d --bundle "$b" "$id"
	like "$(rt exec "$id" /bin/cat /proc/self/timens_offsets 2>&1)" 'monotonic +4242 +0' "time: an exec'd process is in the time namespace"
	is "$(rt exec "$id" /bin/readlink /proc/self/ns/time 2>&1)" "$(readlink /proc/"$(pid_of "$id")"/ns/time)" "time: exec joins the init's time namespace"
	rt delete --force "$id" >/dev/null 2>&1
	out=$(runout time-none '.process.args = ["/bin/cat", "/proc/self/timens_offsets"]')
	like "$out" 'monotonic +0 +0' "time: no offsets without a time namespace"
else
	skip "no time namespaces in this kernel" 7
fi

# --- joining namespaces by path
b=$TEST_TMP/b-ja
mkbundle "$b" '.hostname = "ns-a" | .process.args = ["/bin/moat-helper", "sleep", "60"]' || bail_out mkbundle
newid_var ida join-a
ok "join: run -d A" rt run -d --bundle "$b" "$ida"
pa=$(pid_of "$ida")
b=$TEST_TMP/b-jb
mkbundle "$b" "del(.hostname) | .linux.namespaces |= map(if .type == \"network\" then .path = \"/proc/$pa/ns/net\"
	elif .type == \"ipc\" then .path = \"/proc/$pa/ns/ipc\" elif .type == \"uts\" then .path = \"/proc/$pa/ns/uts\" else . end)
	| .process.args = [\"/bin/sh\", \"-c\", \"hostname; for n in net ipc uts mnt; do readlink /proc/self/ns/\$n; done\"]" || bail_out mkbundle
newid_var idb join-b
out=$(rt run --bundle "$b" "$idb" </dev/null 2>&1)
is "$?" 0 "join: B runs"
rt delete --force "$idb" >/dev/null 2>&1
is "$(printf '%s\n' "$out" | sed -n 1p)" ns-a "join: B sees A's hostname"
is "$(printf '%s\n' "$out" | sed -n 2p)" "$(readlink /proc/"$pa"/ns/net)" "join: B is in A's net namespace"
is "$(printf '%s\n' "$out" | sed -n 3p)" "$(readlink /proc/"$pa"/ns/ipc)" "join: B is in A's ipc namespace"
is "$(printf '%s\n' "$out" | sed -n 4p)" "$(readlink /proc/"$pa"/ns/uts)" "join: B is in A's uts namespace"
isnt "$(printf '%s\n' "$out" | sed -n 5p)" "$(readlink /proc/"$pa"/ns/mnt)" "join: B has its own mount namespace"

# --- a path of the wrong type
b=$TEST_TMP/b-wrong
mkbundle "$b" ".linux.namespaces |= map(if .type == \"network\" then .path = \"/proc/$pa/ns/ipc\" else . end)
	| .process.args = [\"/bin/true\"]" || bail_out mkbundle
newid_var id wrong
out=$(rt create --bundle "$b" "$id" 2>&1)
isnt "$?" 0 "wrong type: create fails"
like "$out" "network|net" "wrong type: the error names the namespace type: $out"
like "$out" "/proc/$pa/ns/ipc" "wrong type: the error names the path"
is "$(status_of "$id")" none "wrong type: nothing is left behind"

b=$TEST_TMP/b-missing
mkbundle "$b" '.linux.namespaces |= map(if .type == "ipc" then .path = "/nonexistent/ns/ipc" else . end)
	| .process.args = ["/bin/true"]' || bail_out mkbundle
newid_var id missing
out=$(rt create --bundle "$b" "$id" 2>&1)
isnt "$?" 0 "missing path: create fails"
like "$out" "/nonexistent/ns/ipc" "missing path: the error names the path"
rt delete --force "$ida" >/dev/null 2>&1

done_testing
