#!/bin/bash
# Cgroups: placement (default, absolute, relative, refused paths), the cgroup mount
# inside the container, ps / kill --all, pause / resume, and cleanup on delete.
. "$(dirname "$0")/lib.sh"

CG=/sys/fs/cgroup
[ -d "$CG/memory" ] || skip_all "needs cgroup v1 controllers under $CG (hybrid host)"
hiers=()
for h in cpu cpuacct cpuset memory devices freezer blkio pids systemd; do
	[ -d "$CG/$h" ] && hiers+=("$h")
done

# cgroup dir of hierarchy H for the container relative path REL
cgdir() { printf '%s\n' "$CG/$1$2"; }
own_cg() { awk -F: -v c="$1" '$2 == c || $2 == "name=" c { print $3 }' /proc/self/cgroup; }

# check every hierarchy has REL, and PID is in its cgroup.procs
check_placed() {
	local rel=$1 pid=$2 what=$3 h missing="" notin=""
	for h in "${hiers[@]}"; do
		local own base
		own=$(own_cg "$h")
		base=$rel
		[ "${rel:0:1}" = / ] || base="${own%/}/$rel"
		[ -d "$(cgdir "$h" "$base")" ] || { missing+=" $h:$base"; continue; }
		grep -qx "$pid" "$(cgdir "$h" "$base")/cgroup.procs" || notin+=" $h"
	done
	is "$missing" "" "$what: the cgroup exists in every v1 hierarchy"
	is "$notin" "" "$what: the init is in cgroup.procs of every hierarchy"
	if [ -d "$CG/unified" ] && [ "${rel:0:1}" = / ]; then
		ok "$what: the unified dir exists" test -d "$CG/unified$rel"
	fi
}

gone_everywhere() {
	local rel=$1 h left=""
	for h in "${hiers[@]}" unified; do
		local own base
		own=$(own_cg "$h")
		[ "$h" = unified ] && own=$(awk -F: '$1 == 0 { print $3 }' /proc/self/cgroup)
		base=$rel
		[ "${rel:0:1}" = / ] || base="${own%/}/$rel"
		[ -e "$(cgdir "$h" "$base")" ] && left+=" $h:$base"
	done
	printf '%s' "$left"
}

# --- default path /moat/<id>
b=$TEST_TMP/b-default
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out mkbundle
newid_var id def
ok "create (default cgroup)" rt create --bundle "$b" "$id"
pid=$(pid_of "$id")
check_placed "/moat/$id" "$pid" "default /moat/<id>"
ok "start (default)" rt start "$id"
ok "delete --force (default)" rt delete --force "$id"
is "$(gone_everywhere "/moat/$id")" "" "delete removes every cgroup directory"

# --- absolute cgroupsPath
abs="/moat-it-$$-$RANDOM/abs"
track_cgroup "$(basename "$(dirname "$abs")")"
b=$TEST_TMP/b-abs
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60) | .linux.cgroupsPath = \"$abs\"" || bail_out mkbundle
newid_var id abs
ok "create (absolute cgroupsPath)" rt create --bundle "$b" "$id"
pid=$(pid_of "$id")
check_placed "$abs" "$pid" "absolute $abs"
ok "delete --force (absolute)" rt delete --force "$id"
is "$(gone_everywhere "$abs")" "" "delete removes the absolute cgroup dirs"
for h in "${hiers[@]}"; do rmdir "$CG/$h$(dirname "$abs")" 2>/dev/null; done
rmdir "$CG/unified$(dirname "$abs")" 2>/dev/null

# --- relative cgroupsPath: relative to the runtime's own cgroup
rel="moat-it-rel-$$-$RANDOM"
track_cgroup "$rel"
b=$TEST_TMP/b-rel
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60) | .linux.cgroupsPath = \"$rel\"" || bail_out mkbundle
newid_var id rel
ok "create (relative cgroupsPath)" rt create --bundle "$b" "$id"
pid=$(pid_of "$id")
check_placed "$rel" "$pid" "relative $rel"
ok "delete --force (relative)" rt delete --force "$id"
is "$(gone_everywhere "$rel")" "" "delete removes the relative cgroup dirs"

# --- ".." refused, nothing created
b=$TEST_TMP/b-dotdot
esc="moat-it-esc-$$"
track_cgroup "$esc"
mkbundle "$b" ".linux.cgroupsPath = \"../$esc\"" || bail_out mkbundle
newid_var id dotdot
out=$(rt create --bundle "$b" "$id" 2>&1)
isnt "$?" 0 "a '../x' cgroupsPath is refused"
like "$out" "cgroupsPath" "the error names cgroupsPath"
is "$(status_of "$id")" none "no container left after the refusal"
is "$(find "$CG" -maxdepth 4 -name "$esc" 2>/dev/null)" "" "no cgroup dir created for ../x"
b=$TEST_TMP/b-dotdot2
mkbundle "$b" ".linux.cgroupsPath = \"/moat/../../$esc\"" || bail_out mkbundle
newid_var id dotdot2
out=$(rt create --bundle "$b" "$id" 2>&1)
isnt "$?" 0 "an absolute cgroupsPath with '..' is refused"
like "$out" "cgroupsPath" "the error names cgroupsPath (absolute)"

# --- the cgroup mount inside the container
b=$TEST_TMP/b-mount
mkbundle "$b" '.process.args = ["/bin/sh", "-c", "cat /proc/self/cgroup; echo ---; grep \" /sys/fs/cgroup\" /proc/self/mountinfo; echo ---; test -d /sys/fs/cgroup/memory && echo MEMDIR; test -f /sys/fs/cgroup/memory/memory.limit_in_bytes && echo MEMFILE; mkdir /sys/fs/cgroup/memory/x 2>&1 || echo MKDIRFAIL"]' || bail_out mkbundle
newid_var id mnt
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
like "$out" "MEMDIR" "/sys/fs/cgroup/memory exists inside"
like "$out" "MEMFILE" "the memory controller files are visible inside"
like "$out" "MKDIRFAIL" "the cgroup mount is read-only (mkdir fails)"
like "$out" $'(^|\n)[0-9]+:memory:/\n' "with a cgroup namespace the container's memory cgroup is /"
unlike "$out" "/moat/$id" "the container does not see its host cgroup path"
cgmounts=$(printf '%s\n' "$out" | sed -n '/^---$/,/^---$/p' | grep -v '^---$')
like "$cgmounts" " /sys/fs/cgroup/memory " "a memory cgroup mount under /sys/fs/cgroup"
unlike "$(printf '%s\n' "$cgmounts" | grep '/sys/fs/cgroup/' | awk '{print $6}' | grep -v '^ro' || true)" "." "every cgroup mount is ro"
rt delete --force "$id" >/dev/null 2>&1

# --- ps --format json, kill --all
b=$TEST_TMP/b-ps
mkbundle "$b" '.process.args = ["/bin/sh", "-c", "sleep 100 & sleep 100 & wait"]' || bail_out mkbundle
newid_var id ps
ok "run -d (ps)" rt run -d --bundle "$b" "$id"
pid=$(pid_of "$id")
sleep 0.5
pids=$(rt ps --format json "$id" 2>&1)
n=$(printf '%s' "$pids" | jq 'length' 2>/dev/null)
is "$n" 3 "ps --format json lists the shell and its two sleepers"
like "$(printf '%s' "$pids" | jq -c . 2>/dev/null)" "(\\[|,)$pid(,|\\])" "ps lists the init pid"
allok=1
for p in $(printf '%s' "$pids" | jq -r '.[]' 2>/dev/null); do
	grep -qx "$p" "$CG/pids/moat/$id/cgroup.procs" || allok=0
done
is "$allok" 1 "every pid ps lists is in the container's cgroup"
ok "ps (table)" rt ps "$id"
out=$(rt ps "$id" 2>&1)
like "$out" "sleep" "ps table shows the sleepers"
ok "kill --all TERM" rt kill --all "$id" KILL
ok "stopped after kill --all" wait_status "$id" stopped 10
left=$(cat "$CG/pids/moat/$id/cgroup.procs" 2>/dev/null)
is "$left" "" "no process left in the cgroup after kill --all"
ok "delete after kill --all" rt delete "$id"

# --- pause / resume
b=$TEST_TMP/b-pause
mkbundle "$b" '.process.args = ["/bin/sh", "-c", "sleep 100 & wait"]' || bail_out mkbundle
newid_var id pause
ok "run -d (pause)" rt run -d --bundle "$b" "$id"
sleep 0.3
ok "pause" rt pause "$id"
is "$(status_of "$id")" paused "state shows paused"
is "$(cat "$CG/freezer/moat/$id/freezer.state" 2>/dev/null)" FROZEN "freezer.state is FROZEN"
pid=$(pid_of "$id")
st=$(awk '/^State:/ {print $2}' "/proc/$pid/status")
like "$st" "^[SD]$" "the init is not running while paused ($st)"
out=$(rt pause "$id" 2>&1)
isnt "$?" 0 "pause of a paused container fails"
ok "resume" rt resume "$id"
is "$(status_of "$id")" running "state is running after resume"
is "$(cat "$CG/freezer/moat/$id/freezer.state" 2>/dev/null)" THAWED "freezer.state is THAWED after resume"
out=$(rt resume "$id" 2>&1)
isnt "$?" 0 "resume of a running container fails"
ok "pause again" rt pause "$id"
ok "delete --force of a paused container" rt delete --force "$id"
is "$(status_of "$id")" none "the paused container is gone"
is "$(gone_everywhere "/moat/$id")" "" "no cgroup dir left after delete --force of a paused container"
ok "its processes are gone" bash -c "for i in \$(seq 100); do kill -0 $pid 2>/dev/null || exit 0; sleep 0.05; done; exit 1"

# SIGKILL of a paused container thaws it (v1 frozen tasks die only once thawed), as runc does
b=$TEST_TMP/b-pkill
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out mkbundle
newid_var id pkill
ok "run -d (kill paused)" rt run -d --bundle "$b" "$id"
ok "pause (kill paused)" rt pause "$id"
ok "kill KILL of a paused container" rt kill "$id" KILL
ok "a paused container killed with KILL stops" wait_status "$id" stopped 5
ok "delete (kill paused)" rt delete "$id"

b=$TEST_TMP/b-pstop
mkbundle "$b" || bail_out mkbundle
newid_var id pstop
ok "create (pause stopped)" rt create --bundle "$b" "$id"
ok "start (pause stopped)" rt start "$id"
ok "stopped" wait_status "$id" stopped 10
out=$(rt pause "$id" 2>&1)
isnt "$?" 0 "pause of a stopped container fails"
like "$out" "$id|stopped|not running" "the error says why"
ok "delete (pause stopped)" rt delete "$id"

done_testing
