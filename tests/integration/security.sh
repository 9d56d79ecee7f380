#!/bin/bash
# Attacks on the runtime itself: each test here attacks one defence.
. "$(dirname "$0")/lib.sh"

rt_bin=$(readlink -f "$MOAT_RUNTIME")
case $rt_bin in */moat | */moat-runtime) ;; *) skip_all "attack tests target moat-runtime (MOAT_RUNTIME=$MOAT_RUNTIME)" ;; esac

# --- CVE-2019-5736: the runtime binary cannot be reached from inside
b=$TEST_TMP/b-exe
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out mkbundle
newid_var id exe
sum_before=$(sha256sum "$rt_bin" | cut -d' ' -f1)
ok "create" rt create --bundle "$b" "$id"
pid=$(pid_of "$id")
# Until start, the init is still the runtime: it must run from a sealed memfd.
like "$(readlink /proc/"$pid"/exe)" '^/memfd:moat' "the container's init runs from a memfd, not the binary on disk"
seals=$(python3 -c "import fcntl,os,sys; fd=os.open('/proc/$pid/exe', os.O_RDONLY); print(fcntl.fcntl(fd, 1034))" 2>&1)
is "$seals" 15 "the memfd is sealed against write, grow, shrink and reseal"
out=$(rt exec "$id" /bin/moat-helper exe-attack 1 2>/dev/null)
is "$out" BLOCKED "exe attack from inside the created container is blocked"
ok "start" rt start "$id"
out=$(rt exec "$id" /bin/moat-helper exe-attack 1 2>&1)
like "$out" "BLOCKED" "exe attack while exec enters a running container is blocked"
is "$(sha256sum "$rt_bin" | cut -d' ' -f1)" "$sum_before" "the runtime binary on disk is unchanged"
rt delete --force "$id" >/dev/null 2>&1

# --- CVE-2024-21626: no fd leaks, and no cwd outside the root
b=$TEST_TMP/b-fds
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper fds)" || bail_out mkbundle
newid_var id fds
out=$(rt run --bundle "$b" "$id" </dev/null 7</etc/hostname 8<"$TEST_TMP" 2>/dev/null)
fds=$(printf '%s\n' "$out" | awk '{print $1}' | sort -n | tr '\n' ' ')
like "$fds" '^0 1 2 ([0-9]+ )?$' "run: only stdio (and the listing's own dir fd) reach the container: $fds"
unlike "$out" "hostname|$TEST_TMP" "run: the caller's extra fds do not leak"
rt delete "$id" >/dev/null 2>&1
newid_var id fds2
out=$(rt run --preserve-fds 1 --bundle "$b" "$id" </dev/null 3</etc/hostname 2>&1)
like "$out" "3 /etc/hostname" "run --preserve-fds 1 passes fd 3"
rt delete "$id" >/dev/null 2>&1

b=$TEST_TMP/b-exec-fds
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out mkbundle
newid_var id xfds
ok "run -d for exec" rt run -d --bundle "$b" "$id" </dev/null
out=$(rt exec "$id" /bin/moat-helper fds 7</etc/hostname 2>&1)
unlike "$out" "hostname" "exec: the caller's extra fds do not leak"
out=$(rt exec --cwd /proc/self/fd/7 "$id" /bin/moat-helper cwd 7<"$TEST_TMP" 2>&1)
rc=$?
isnt "$rc" 0 "exec --cwd through a leaked fd is refused"
unlike "$out" "$TEST_TMP" "exec: the process never sees the host dir"
rt delete --force "$id" >/dev/null 2>&1

b=$TEST_TMP/b-cwd
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper cwd) | .process.cwd = \"/proc/self/fd/7\"" || bail_out mkbundle
newid_var id cwd
out=$(rt run --bundle "$b" "$id" </dev/null 7<"$TEST_TMP" 2>&1)
isnt "$?" 0 "a cwd through an inherited fd is refused"
unlike "$out" "^/" "the process did not run in a host directory"
rt delete --force "$id" >/dev/null 2>&1

# --- caps: inheritable and ambient empty unless asked, on run and exec
b=$TEST_TMP/b-caps
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper caps) | .process.user = {uid: 1000, gid: 1000} | del(.process.capabilities.ambient)" || bail_out mkbundle
newid_var id caps
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
like "$out" "CapInh:[[:space:]]+0000000000000000" "run: inheritable set is empty"
like "$out" "CapAmb:[[:space:]]+0000000000000000" "run: ambient set is empty"
like "$out" "CapBnd:[[:space:]]+0000000020000420" "run: bounding set is exactly the spec's three"
rt delete "$id" >/dev/null 2>&1
b=$TEST_TMP/b-caps2
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60) | del(.process.capabilities.ambient)" || bail_out mkbundle
newid_var id caps2
ok "run -d (caps)" rt run -d --bundle "$b" "$id" </dev/null
out=$(rt exec --cap CAP_SYS_ADMIN "$id" /bin/moat-helper caps 2>&1)
like "$out" "CapInh:[[:space:]]+0000000000000000" "exec --cap: inheritable stays empty"
like "$out" "CapAmb:[[:space:]]+0000000000000000" "exec --cap: ambient stays empty"
like "$out" "CapEff:[[:space:]]+0000000020200420" "exec --cap: the added cap is effective"
rt delete --force "$id" >/dev/null 2>&1

# --- mounts resolved inside the rootfs (CVE-2021-30465 family)
b=$TEST_TMP/b-symlink
host_target=$TEST_TMP/host-target
mkdir -p "$host_target"
echo precious >"$host_target/file"
mkbundle "$b" ".process.args = [\"/bin/sh\", \"-c\", \"ls /escape/; cat /proc/self/mountinfo\"] | .mounts += [{destination: \"/escape\", type: \"tmpfs\", source: \"tmpfs\"}]" || bail_out mkbundle
ln -s "../../../../../../../../$host_target" "$b/rootfs/escape"
newid_var id sym
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$(cat "$host_target/file")" precious "a mount destination symlinked out of the rootfs does not reach the host"
is "$(awk -v p="$host_target" '$5 == p' /proc/self/mountinfo)" "" "nothing got mounted on the host target"
rt delete --force "$id" >/dev/null 2>&1

b=$TEST_TMP/b-procsym
mkbundle "$b" || bail_out mkbundle
rmdir "$b/rootfs/proc" && ln -s /tmp "$b/rootfs/proc"
newid_var id procsym
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
isnt "$?" 0 "/proc as a symlink is refused"
like "$out" "proc" "the error names /proc"
is "$(status_of "$id")" none "nothing left after the refusal"

# CVE-2025-31133: /dev/null replaced by a symlink before masking
b=$TEST_TMP/b-devnull
mkbundle "$b" ".process.args = [\"/bin/sh\", \"-c\", \"echo x > /proc/sys/kernel/core_pattern && echo WROTE\"] | .mounts |= map(select(.destination != \"/dev\"))" || bail_out mkbundle
mkdir -p "$b/rootfs/dev" && ln -sf /proc/sys/kernel/core_pattern "$b/rootfs/dev/null"
core_before=$(cat /proc/sys/kernel/core_pattern)
newid_var id devnull
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
unlike "$out" "WROTE" "a symlinked /dev/null does not unmask anything"
is "$(cat /proc/sys/kernel/core_pattern)" "$core_before" "the host's core_pattern is untouched"
rt delete --force "$id" >/dev/null 2>&1

# CVE-2025-52565: /dev/console as a symlink
b=$TEST_TMP/b-console
mkbundle "$b" ".process.terminal = true | .mounts |= map(select(.destination != \"/dev\"))" || bail_out mkbundle
mkdir -p "$b/rootfs/dev" && ln -sf /proc/sys/kernel/core_pattern "$b/rootfs/dev/console"
newid_var id console
out=$(script -qec "$MOAT_RUNTIME --root $TEST_ROOT run --bundle $b $id" /dev/null </dev/null 2>&1)
isnt "$?" 0 "a /dev/console symlink is refused"
is "$(cat /proc/sys/kernel/core_pattern)" "$core_before" "core_pattern untouched after the console attack"
rt delete --force "$id" >/dev/null 2>&1

# /proc and /sys must really be procfs and sysfs
b=$TEST_TMP/b-fstype
mkbundle "$b" ".process.args = [\"/bin/sh\", \"-c\", \"/bin/moat-helper statfs /proc; /bin/moat-helper statfs /sys\"]" || bail_out mkbundle
newid_var id fstype
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$out" $'0x9fa0\n0x62656572' "/proc is procfs and /sys is sysfs"
rt delete --force "$id" >/dev/null 2>&1

done_testing
