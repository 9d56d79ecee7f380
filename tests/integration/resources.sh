#!/bin/bash
# linux.resources: limits written to the cgroup files and enforced, `update`, `events`.
. "$(dirname "$0")/lib.sh"

CG=/sys/fs/cgroup
[ -d "$CG/memory" ] || skip_all "needs cgroup v1 controllers under $CG (hybrid host)"
cgf() { cat "$CG/$1/moat/$2/$3" 2>/dev/null; } # cgf CTRL ID FILE

sleeper=$(jargs /bin/moat-helper sleep 60)

# --- memory limit: read back, and enforced by the OOM killer
b=$TEST_TMP/b-mem
mkbundle "$b" ".process.args = $sleeper | .linux.resources.memory = {limit: 33554432, swap: 33554432}" || bail_out mkbundle
newid_var id mem
ok "run -d with a 32M memory limit" rt run -d --bundle "$b" "$id"
is "$(cgf memory "$id" memory.limit_in_bytes)" 33554432 "memory.limit_in_bytes is 32M"
is "$(cgf memory "$id" memory.memsw.limit_in_bytes)" 33554432 "memory.memsw.limit_in_bytes is 32M (swap = limit)"
out=$(rt exec "$id" /bin/moat-helper alloc 200 2>&1)
rc=$?
is "$rc" 137 "a process allocating 200M beyond 32M is OOM-killed (SIGKILL)"
unlike "$out" "allocated 200" "the allocation never completes"
like "$(grep oom_kill "$CG/memory/moat/$id/memory.oom_control" 2>/dev/null)" "oom_kill [1-9]" "memory.oom_control counts the kill"
out=$(rt events --stats "$id" 2>&1)
is "$(printf '%s' "$out" | jq -r .type 2>/dev/null)" stats "events --stats prints a stats event"
is "$(printf '%s' "$out" | wc -l | tr -d ' ')" 0 "events --stats prints one line"
is "$(printf '%s' "$out" | jq -r .id 2>/dev/null)" "$id" "events --stats names the container"
like "$(printf '%s' "$out" | jq -r '.data.memory.usage.limit' 2>/dev/null)" '^33554432$' "stats: memory.usage.limit is the limit"
like "$(printf '%s' "$out" | jq -r '.data.memory.usage.usage' 2>/dev/null)" '^[1-9][0-9]*$' "stats: memory usage"
like "$(printf '%s' "$out" | jq -r '.data.cpu.usage.total' 2>/dev/null)" '^[1-9][0-9]*$' "stats: cpu usage total"
like "$(printf '%s' "$out" | jq -r '.data.pids.current' 2>/dev/null)" '^[1-9][0-9]*$' "stats: pids current"

# --- update: with flags, and with -r resources.json
ok "update --memory 64m --memory-swap 64m" rt update --memory 64m --memory-swap 64m "$id"
is "$(cgf memory "$id" memory.limit_in_bytes)" 67108864 "memory.limit_in_bytes is 64M after update"
ok "update --memory 48m (swap kept)" rt update --memory 48m "$id"
is "$(cgf memory "$id" memory.limit_in_bytes)" 50331648 "memory.limit_in_bytes is 48M after update"
ok "update --pids-limit 20" rt update --pids-limit 20 "$id"
is "$(cgf pids "$id" pids.max)" 20 "pids.max is 20 after update"
ok "update --cpu-quota 20000 --cpu-period 100000" rt update --cpu-quota 20000 --cpu-period 100000 "$id"
is "$(cgf cpu "$id" cpu.cfs_quota_us)" 20000 "cpu.cfs_quota_us after update"
is "$(cgf cpu "$id" cpu.cfs_period_us)" 100000 "cpu.cfs_period_us after update"
echo '{"memory": {"limit": 100663296, "swap": 100663296}, "pids": {"limit": 33}, "cpu": {"shares": 256}}' >"$TEST_TMP/res.json"
ok "update -r resources.json" rt update -r "$TEST_TMP/res.json" "$id"
is "$(cgf memory "$id" memory.limit_in_bytes)" 100663296 "update -r: memory limit 96M"
is "$(cgf pids "$id" pids.max)" 33 "update -r: pids.max 33"
is "$(cgf cpu "$id" cpu.shares)" 256 "update -r: cpu.shares 256"
is "$(cgf pids "$id" pids.max)" 33 "update -r: untouched values stay"
out=$(rt update --memory lots "$id" 2>&1)
isnt "$?" 0 "update --memory with a bad size fails"
like "$out" "lots" "the error names the bad value"
ok "update -r - (stdin)" bash -c "echo '{\"pids\": {\"limit\": 44}}' | '$MOAT_RUNTIME' --root '$TEST_ROOT' update -r - '$id'"
is "$(cgf pids "$id" pids.max)" 44 "update -r -: pids.max 44"
rt delete --force "$id" >/dev/null 2>&1

# --- events --interval reports an OOM
b=$TEST_TMP/b-oomev
mkbundle "$b" '.process.args = ["/bin/sh", "-c", "sleep 2; /bin/moat-helper alloc 200; sleep 3"] | .linux.resources.memory = {limit: 33554432, swap: 33554432}' || bail_out mkbundle
newid_var id oomev
ok "run -d (oom events)" rt run -d --bundle "$b" "$id"
timeout 15 "$MOAT_RUNTIME" --root "$TEST_ROOT" events --interval 1s "$id" >"$TEST_TMP/events.out" 2>&1
ev=$(cat "$TEST_TMP/events.out")
like "$ev" '"type": ?"oom"' "events --interval 1s reports an oom event"
like "$ev" '"type": ?"stats"' "events --interval also prints stats events"
ok "every events line is JSON" bash -c "jq -e . '$TEST_TMP/events.out' >/dev/null"
rt delete --force "$id" >/dev/null 2>&1

# --- pids limit stops a fork bomb
b=$TEST_TMP/b-pids
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper fork-bomb 100) | .linux.resources.pids = {limit: 10}" || bail_out mkbundle
newid_var id pids
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
like "$out" "forked 9" "the fork bomb stops at the pids limit (10 with the init)"
like "$out" "fork failed: EAGAIN" "fork fails with EAGAIN at the limit"
rt delete --force "$id" >/dev/null 2>&1

# --- cpu and cpuset, blkio weight
b=$TEST_TMP/b-cpu
mkbundle "$b" ".process.args = $sleeper | .linux.resources.cpu = {shares: 512, quota: 50000, period: 200000, cpus: \"0\", mems: \"0\"}" || bail_out mkbundle
newid_var id cpu
ok "run -d with cpu limits" rt run -d --bundle "$b" "$id"
is "$(cgf cpu "$id" cpu.shares)" 512 "cpu.shares"
is "$(cgf cpu "$id" cpu.cfs_quota_us)" 50000 "cpu.cfs_quota_us"
is "$(cgf cpu "$id" cpu.cfs_period_us)" 200000 "cpu.cfs_period_us"
is "$(cgf cpuset "$id" cpuset.cpus)" 0 "cpuset.cpus"
is "$(cgf cpuset "$id" cpuset.mems)" 0 "cpuset.mems"
like "$(awk '/Cpus_allowed_list/ {print $2}' "/proc/$(pid_of "$id")/status")" '^0$' "the init may only run on cpu 0"
ok "update --cpuset-cpus 0-1 --cpu-share 1024" rt update --cpuset-cpus 0-1 --cpu-share 1024 "$id"
is "$(cgf cpuset "$id" cpuset.cpus)" 0-1 "cpuset.cpus after update"
is "$(cgf cpu "$id" cpu.shares)" 1024 "cpu.shares after update"
rt delete --force "$id" >/dev/null 2>&1

# --- blockIO: weight (if the host has the file) and a read bps throttle
blkdev=$(cat /sys/block/*/dev 2>/dev/null | head -1)
if [ -n "$blkdev" ] && [ -e "$CG/blkio/blkio.throttle.read_bps_device" ]; then
	maj=${blkdev%:*} min=${blkdev#*:}
	w='{}'
	[ -e "$CG/blkio/blkio.weight" ] || [ -e "$CG/blkio/blkio.bfq.weight" ] && w='{weight: 300}'
	b=$TEST_TMP/b-blkio
	mkbundle "$b" ".process.args = $sleeper | .linux.resources.blockIO = ($w + {throttleReadBpsDevice: [{major: $maj, minor: $min, rate: 1048576}]})" || bail_out mkbundle
	newid_var id blkio
	ok "run -d with blockIO" rt run -d --bundle "$b" "$id"
	is "$(cgf blkio "$id" blkio.throttle.read_bps_device)" "$blkdev 1048576" "blkio.throttle.read_bps_device has the throttle"
	if [ "$w" != '{}' ]; then
		f=blkio.weight
		[ -e "$CG/blkio/blkio.bfq.weight" ] && f=blkio.bfq.weight
		is "$(cgf blkio "$id" $f | awk 'NR==1 {print $NF}')" 300 "$f is 300"
	else
		skip "the host has no blkio weight file (no CFQ/BFQ)"
	fi
	rt delete --force "$id" >/dev/null 2>&1
else
	skip "no block device or blkio throttle files" 3
fi

# a cpuset outside the host's cpus is refused
b=$TEST_TMP/b-cpuset-bad
mkbundle "$b" '.linux.resources.cpu = {cpus: "63"}' || bail_out mkbundle
newid_var id cpubad
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
isnt "$?" 0 "cpuset.cpus 63 on a small host fails"
like "$out" "cpus|cpuset" "the error names cpuset"
is "$(status_of "$id")" none "nothing left after the cpuset error"

# --- devices: default deny (runc's defaults allow mknod of any device, not open)
capmk='.process.capabilities.bounding += ["CAP_MKNOD"] | .process.capabilities.effective += ["CAP_MKNOD"] | .process.capabilities.permitted += ["CAP_MKNOD"]'
b=$TEST_TMP/b-dev
mkbundle "$b" ".process.args = [\"/bin/sh\", \"-c\", \"mknod /dev/fuse c 10 229 && echo MKNOD_OK; head -c0 /dev/fuse && echo OPEN_OK || echo OPEN_DENIED; echo x > /dev/null && echo NULL_OK\"] | $capmk" || bail_out mkbundle
newid_var id dev
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
like "$out" "MKNOD_OK" "mknod works (runc's default 'c *:* m' rule)"
like "$out" "OPEN_DENIED" "a device not in the allow list cannot be opened (/dev/fuse)"
like "$out" "Operation not permitted" "the open fails with EPERM"
like "$out" "NULL_OK" "the default devices (/dev/null) still work"
rt delete --force "$id" >/dev/null 2>&1
# an explicit allow rule for 10:229 makes it openable
b=$TEST_TMP/b-dev2
mkbundle "$b" ".process.args = [\"/bin/sh\", \"-c\", \"mknod /dev/fuse c 10 229 && echo MKNOD_OK; head -c0 /dev/fuse && echo OPEN_OK || echo OPEN_DENIED\"] | $capmk | .linux.resources.devices += [{allow: true, type: \"c\", major: 10, minor: 229, access: \"rw\"}]" || bail_out mkbundle
newid_var id dev2
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
like "$out" "OPEN_OK" "an allowed device can be opened"
rt delete --force "$id" >/dev/null 2>&1
b=$TEST_TMP/b-dev3
mkbundle "$b" ".process.args = $sleeper" || bail_out mkbundle
newid_var id dev3
ok "run -d (devices list)" rt run -d --bundle "$b" "$id"
unlike "$(cgf devices "$id" devices.list)" "^a \*:\* rwm$" "devices.list is not allow-all"
like "$(cgf devices "$id" devices.list)" "c 1:3 rwm" "devices.list allows /dev/null"
rt delete --force "$id" >/dev/null 2>&1

# --- hugepage limits
if [ -d /sys/kernel/mm/hugepages/hugepages-2048kB ]; then
	b=$TEST_TMP/b-huge
	mkbundle "$b" ".process.args = $sleeper | .linux.resources.hugepageLimits = [{pageSize: \"2MB\", limit: 4194304}]" || bail_out mkbundle
	newid_var id huge
	out=$(rt run -d --bundle "$b" "$id" </dev/null 2>&1)
	if [ $? -eq 0 ]; then
		f=$(find "$CG" -maxdepth 4 -path "*/moat/$id/hugetlb.2MB.*" \( -name 'hugetlb.2MB.limit_in_bytes' -o -name 'hugetlb.2MB.max' \) 2>/dev/null | head -1)
		is "$(cat "$f" 2>/dev/null)" 4194304 "the 2MB hugetlb limit is written ($f)"
	else
		like "$out" "hugetlb|hugepage" "hugepageLimits refused clearly on a host without the hugetlb controller"
	fi
	rt delete --force "$id" >/dev/null 2>&1
fi
b=$TEST_TMP/b-hugebad
mkbundle "$b" '.linux.resources.hugepageLimits = [{pageSize: "64KB", limit: 65536}]' || bail_out mkbundle
newid_var id hugebad
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
isnt "$?" 0 "a hugepage size the host lacks is refused"
like "$out" "64KB" "the error names the page size"
is "$(status_of "$id")" none "no container left after the hugepage error"

done_testing
