#!/bin/bash
# Bind mounts into a VM (virtiofs): `moat run --isolation vm -v HOST:GUEST[:ro]` and a config.json
# bind through moat-runtime share host directories and files with the guest.  One virtiofsd per
# VM serves a staging tree made in its own mount namespace.  Checked: host -> guest and guest ->
# host through a rw share, a ro share refusing writes (the host dir unchanged), a single file
# bound onto /etc/hosts, the raw staging tree out of the process's sight, a missing source and a
# missing virtiofsd failing clearly with nothing started, virtiofsd killed while the VM runs
# ending it with an error naming virtiofsd, QEMU's own root holding the virtiofs socket, and
# nothing left (virtiofsd, QEMU, mounts, state).  Three boots under TCG.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

vm_require
[ -x /usr/lib/qemu/virtiofsd ] || skip_all "no /usr/lib/qemu/virtiofsd (apt-get install qemu-system-common)"
env_setup mtvs localhost/vmshare:1
run() { "${MOAT[@]}" run --isolation vm "$@"; }
mine() { pgrep -f "(qemu-system-x86_64|virtiofsd).*($STORE|$TEST_TMP)" | tr '\n' ' '; }
my_mounts() { awk -v a="$STORE/" -v b="$TEST_TMP/" 'index($5, a) == 1 || index($5, b) == 1' /proc/self/mountinfo; }

RW=$TEST_TMP/rw
RO=$TEST_TMP/ro
mkdir -p "$RW" "$RO/sub"
echo "from the host" >"$RW/in.txt"
echo "read only" >"$RO/keep.txt"
echo "10.1.2.3 moat-share-test" >"$TEST_TMP/hosts"
ro_before=$(cd "$RO" && find . -printf '%p %s\n' | sort | md5sum)

# one boot checks: rw both ways, ro refused, a file onto /etc/hosts, the staging tree hidden
start=$(date +%s%N)
out=$(run -v "$RW:/data" -v "$RO:/ro:ro" -v "$TEST_TMP/hosts:/etc/hosts" localhost/vmshare:1 -- /bin/sh -c '
	cat /data/in.txt
	echo "from the guest" > /data/out.txt && echo wrote-rw
	echo x > /ro/new.txt 2>/dev/null && echo wrote-ro || echo ro-refused
	rm /ro/keep.txt 2>/dev/null && echo removed-ro || echo ro-kept
	cat /etc/hosts
	ls /.moat-shares 2>/dev/null | wc -l
	grep -c virtiofs /proc/self/mountinfo
	grep " /ro " /proc/self/mountinfo | grep -c " ro,"' 2>"$TEST_TMP/err")
rc=$?
diag "a boot with three shares: $((($(date +%s%N) - start) / 1000000)) ms"
is "$rc" 0 "moat run --isolation vm with -v: exit 0" || diag "$(cat "$TEST_TMP/err")"
lines() { sed -n "$1p" <<<"$out"; }
is "$(lines 1)" "from the host" "a file written on the host is read in the guest"
is "$(lines 2)" "wrote-rw" "the guest writes into the rw share"
is "$(cat "$RW/out.txt" 2>/dev/null)" "from the guest" "... and the file appears on the host with its content"
is "$(lines 3)" "ro-refused" "a read-only share refuses a new file"
is "$(lines 4)" "ro-kept" "... and a removal"
is "$(cd "$RO" && find . -printf '%p %s\n' | sort | md5sum)" "$ro_before" "... the host dir is unchanged"
is "$(lines 5)" "10.1.2.3 moat-share-test" "a single-file bind onto /etc/hosts shows the host file's content"
is "$(lines 6)" "0" "the raw tree of shares is not in the process's sight"
is "$(lines 7)" "3" "three virtiofs mounts (the binds) in the guest, no more"
is "$(lines 8)" "1" "the ro share is mounted read-only in the guest too"
is "$(mine)" "" "no virtiofsd or QEMU left"
is "$(my_mounts)" "" "no mount of ours on the host"

# the runtime face: config.json binds (a file, read-only, and a dir) through moat-runtime; the
# process has CAP_SYS_ADMIN and remounts the ro file rw in the guest: the host side still refuses
b=$TEST_TMP/vsbundle
mkbundle "$b" '.process.args = ["/bin/sh", "-c", "cat /etc/motd-host; cat /d/in.txt; mount -o remount,bind,rw /etc/motd-host && echo remounted-rw; echo x >> /etc/motd-host || echo file-ro"] |
	.annotations = {"moat.isolation": "vm"} | .process.terminal = false |
	.process.capabilities = {"bounding": ["CAP_SYS_ADMIN"], "effective": ["CAP_SYS_ADMIN"], "permitted": ["CAP_SYS_ADMIN"]} |
	.mounts += [{"destination": "/etc/motd-host", "type": "bind", "source": "'"$TEST_TMP/hosts"'", "options": ["bind", "ro"]},
	            {"destination": "/d", "type": "bind", "source": "'"$RW"'", "options": ["rbind"]}]' ||
	bail_out mkbundle
newid_var vid vs
RT=("$MOAT_BUILD_ROOT/moat-runtime" --root "$TEST_TMP/rtroot")
"${RT[@]}" create --bundle "$b" "$vid" >"$TEST_TMP/rt.out" 2>"$TEST_TMP/rt.err" </dev/null
is "$?" 0 "moat-runtime create of a vm bundle with config.json binds" || diag "$(cat "$TEST_TMP/rt.err")"
v=$(pgrep -f "virtiofsd.*$TEST_TMP/rtroot" | head -1)
if [ -n "$v" ]; then
	pass "a virtiofsd serves the VM while it runs"
	isnt "$(readlink /proc/"$v"/ns/mnt)" "$(readlink /proc/self/ns/mnt)" "... in a mount namespace of its own"
	is "$(my_mounts)" "" "... none of its mounts is on the host"
else
	for k in 1 2 3; do fail "a virtiofsd serves the VM while it runs"; done
fi
q=$(pgrep -f "qemu-system-x86_64.*$TEST_TMP/rtroot" | head -1)
vs=$([ -n "$q" ] && tr '\0' '\n' </proc/"$q"/cmdline | grep -o 'socket,id=vfs,path=.*' | cut -d= -f3)
[ -n "$vs" ] && [ -S "/proc/$q/root$vs" ] && pass "QEMU's own root holds the virtiofs socket ($vs)" ||
	fail "QEMU's own root holds the virtiofs socket ('$vs')"
ok "start" "${RT[@]}" start "$vid"
for ((i = 0; i < 300; i++)); do [ "$("${RT[@]}" state "$vid" | jq -r .status)" = stopped ] && break; sleep 0.1; done
is "$(cat "$TEST_TMP/rt.out")" "10.1.2.3 moat-share-test
from the host
remounted-rw
file-ro" "the bound file and dir are seen in the guest; the ro file refuses a write even remounted rw in the guest"
is "$(cat "$TEST_TMP/hosts")" "10.1.2.3 moat-share-test" "... the host file is unchanged"
ok "delete" "${RT[@]}" delete "$vid"

# a source that does not exist: moat run's -v and a config.json bind name it, nothing started
out=$(run -v "$TEST_TMP/nowhere:/data" localhost/vmshare:1 -- true 2>&1)
is "$?" 125 "moat run -v with a missing source fails (125)"
like "$out" "$TEST_TMP/nowhere.*does not exist" "... naming it"
jq '.mounts += [{"destination": "/gone", "type": "bind", "source": "'"$TEST_TMP/not-there"'", "options": ["rbind"]}]' \
	"$b/config.json" >"$b/c2" && mv "$b/c2" "$b/config.json"
newid_var vid2 vs
"${RT[@]}" create --bundle "$b" "$vid2" >/dev/null 2>"$TEST_TMP/rt.err" </dev/null
isnt "$?" 0 "moat-runtime create with a bind whose source does not exist fails"
like "$(cat "$TEST_TMP/rt.err")" "$TEST_TMP/not-there.*does not exist" "... naming the missing source"
"${RT[@]}" delete --force "$vid2" >/dev/null 2>&1
is "$(mine)" "" "... and nothing was started"

# virtiofsd killed while the VM runs: moat run ends at once with an error naming it
run -v "$RW:/data" localhost/vmshare:1 -- /bin/sh -c 'echo running; exec sleep 100' >"$TEST_TMP/kill.out" 2>"$TEST_TMP/kill.err" &
p=$!
for ((i = 0; i < 600; i++)); do has running "$TEST_TMP/kill.out" && break; sleep 0.1; done
v=$(pgrep -f "virtiofsd.*$STORE" | head -1)
if [ -n "$v" ]; then
	start=$(date +%s%N)
	kill -9 "$v"
	for ((i = 0; i < 150; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	ms=$((($(date +%s%N) - start) / 1000000))
	if kill -0 "$p" 2>/dev/null; then
		fail "virtiofsd killed: moat run ends (still running after 15 s)"
		kill -9 "$p"
	else
		pass "virtiofsd killed: moat run ends ($ms ms)"
	fi
	wait "$p"
	is "$?" 125 "... with an error (125)"
	like "$(cat "$TEST_TMP/kill.err")" "virtiofsd.*killed by signal 9.*VM stopped" "... naming virtiofsd and how it ended"
	is "$(mine)" "" "... and no QEMU or virtiofsd is left"
else
	kill "$p"
	wait "$p"
	for k in 1 2 3 4; do fail "a virtiofsd runs for a VM with a share"; done
fi

# virtiofsd missing: a clear error naming it and its package, only for VMs with binds
out=$(MOAT_VM_VIRTIOFSD=/usr/lib/qemu/virtiofsd-missing run -v "$RW:/data" localhost/vmshare:1 -- true 2>&1)
is "$?" 125 "without virtiofsd, a VM with a bind mount does not start (125)"
like "$out" "virtiofsd-missing.*qemu-system-common" "... the error names virtiofsd's path and its package"

is "$(mine)" "" "no virtiofsd or QEMU left at the end"
is "$(my_mounts)" "" "no mount of ours left"
is "$(ls "$STORE/containers" 2>/dev/null | tr '\n' ' ')" "" "no container dir left"
is "$(ls "$TEST_TMP/rtroot" 2>/dev/null | tr '\n' ' ')" "" "nothing left under the runtime root"
done_testing
