#!/bin/bash
# Crash at any point, and the next command cleans up.
. "$(dirname "$0")/lib.sh"

cgroups_of() { find /sys/fs/cgroup -maxdepth 6 -type d -name "$1" 2>/dev/null; }
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
gone_within() { # PID SECONDS
	local i
	for ((i = 0; i < $2 * 20; i++)); do alive "$1" || return 0; sleep 0.05; done
	return 1
}
wait_file() { # FILE SECONDS
	local i
	for ((i = 0; i < $2 * 20; i++)); do [ -s "$1" ] && return 0; sleep 0.05; done
	return 1
}

# --- kill -9 of `create` while a hook holds it mid-way
# stage: a prestart/createRuntime hook (inside the init's setup: cgroup made, init alive)
for hook in createRuntime prestart; do
	b=$TEST_TMP/b-crash-$hook
	hp=$TEST_TMP/hook-$hook.pid
	mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60) | .hooks.$hook = [{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"echo \$\$ > $hp; exec sleep 30\"]}]" || bail_out mkbundle
	newid_var id crash
	rm -f "$hp"
	"$MOAT_RUNTIME" --root "$TEST_ROOT" create --bundle "$b" "$id" >"$TEST_TMP/create.out" 2>&1 </dev/null &
	cpid=$!
	ok "$hook: create reaches the hook" wait_file "$hp" 10
	hook_pid=$(cat "$hp" 2>/dev/null)
	is "$(status_of "$id")" creating "$hook: state says creating while create is stuck (and does not block)"
	like "$(rt list --format json | jq -r '.[] | select(.id == "'"$id"'") | .status')" creating "$hook: list shows it as creating"
	init=$(rt state "$id" | jq -r .pid)
	like "$init" '^[1-9][0-9]*$' "$hook: the early state has the init's pid"
	isnt "$(cgroups_of "$id")" "" "$hook: the cgroup exists"
	kill -9 "$cpid"
	wait "$cpid" 2>/dev/null
	[ -n "$hook_pid" ] && kill "$hook_pid" 2>/dev/null
	ok "$hook: state dir is still there after the crash" test -d "$TEST_ROOT/$id"
	ok "$hook: delete --force cleans up" rt delete --force "$id"
	ok "$hook: no state dir" test ! -e "$TEST_ROOT/$id"
	is "$(cgroups_of "$id")" "" "$hook: no cgroup"
	ok "$hook: the half-made init is gone" gone_within "$init" 5
	mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out mkbundle
	ok "$hook: a new create with the same id works" rt create --bundle "$b" "$id"
	is "$(status_of "$id")" created "$hook: it is created"
	ok "$hook: delete it" rt delete --force "$id"
done

# --- kill -9 of `create` at random points (no hook): delete --force always cleans
# (the binary, not the rt function: kill must hit the runtime, not a subshell)
b=$TEST_TMP/b-random
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out mkbundle
bad=""
for delay in 0.001 0.005 0.01 0.02 0.03 0.05 0.08 0.12; do
	newid_var id rnd
	"$MOAT_RUNTIME" --root "$TEST_ROOT" create --bundle "$b" "$id" >/dev/null 2>&1 </dev/null &
	cpid=$!
	sleep "$delay"
	kill -9 "$cpid" 2>/dev/null
	wait "$cpid" 2>/dev/null
	rt delete --force "$id" >/dev/null 2>"$TEST_TMP/del.err" || bad+=" $delay:delete($(cat "$TEST_TMP/del.err"))"
	[ -e "$TEST_ROOT/$id" ] && bad+=" $delay:state"
	[ -n "$(cgroups_of "$id")" ] && bad+=" $delay:cgroup"
	grep -lsa -- "${id:0:1}[${id:1:1}]${id:2}" /proc/[0-9]*/cmdline >/dev/null 2>&1 && bad+=" $delay:process"
	rt create --bundle "$b" "$id" >/dev/null 2>&1 </dev/null || bad+=" $delay:recreate"
	rt delete --force "$id" >/dev/null 2>&1 || bad+=" $delay:delete2"
done
is "$bad" "" "create killed at 8 points: delete --force cleans up and the id is reusable"

# --- the init dies while `start` waits
b=$TEST_TMP/b-startdie
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out mkbundle
newid_var id startdie
ok "create (start-die)" rt create --bundle "$b" "$id"
pid=$(pid_of "$id")
kill -STOP "$pid"
rt start "$id" >"$TEST_TMP/start.out" 2>&1 &
spid=$!
sleep 0.5
ok "start waits for the stopped init" alive "$spid"
kill -9 "$pid"
ok "start returns once the init died" gone_within "$spid" 5
wait "$spid"
is "$?" 1 "start fails with exit 1"
like "$(cat "$TEST_TMP/start.out")" "'$id'.*exited" "start says the init exited"
ok "stopped after" wait_status "$id" stopped 5
ok "delete after a failed start" rt delete "$id"
is "$(cgroups_of "$id")" "" "no cgroup after a failed start"

# --- init killed behind our back
b=$TEST_TMP/b-behind
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out mkbundle
newid_var id behind
ok "run -d (behind)" rt run -d --bundle "$b" "$id"
pid=$(pid_of "$id")
kill -9 "$pid"
ok "stopped after an outside kill" wait_status "$id" stopped 5
out=$(rt kill "$id" TERM 2>&1); is "$?" 1 "kill of a dead container: exit 1"
like "$out" "not running" "kill of a dead container: says so"
ok "delete (no --force) of a container killed behind our back" rt delete "$id"
is "$(cgroups_of "$id")" "" "no cgroup left"
newid_var id behind2
ok "create (behind, created)" rt create --bundle "$b" "$id"
kill -9 "$(pid_of "$id")"
ok "a created container killed outside is stopped" wait_status "$id" stopped 5
ok "and deletes" rt delete "$id"

# --- --root on a fresh tmpfs (and a root dir that does not exist yet)
fresh=$TEST_TMP/fresh
mkdir -p "$fresh"
if mount -t tmpfs -o size=4m,mode=700 moat-test "$fresh"; then
	b=$TEST_TMP/b-fresh
	mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out mkbundle
	newid_var id fresh
	fr() { "$MOAT_RUNTIME" --root "$fresh/state/deeper" "$@"; }
	ok "create with --root on a fresh tmpfs (missing dirs made)" fr create --bundle "$b" "$id"
	is "$(fr state "$id" | jq -r .status)" created "state under the fresh root"
	ok "start (fresh root)" fr start "$id"
	like "$(fr list -q)" "$id" "list (fresh root)"
	ok "delete --force (fresh root)" fr delete --force "$id"
	is "$(ls -A "$fresh/state/deeper")" "" "fresh root is empty again"
	umount "$fresh"
else
	skip "cannot mount a tmpfs" 6
fi

# --- two creates with the same id at once
b=$TEST_TMP/b-race
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out mkbundle
newid_var id race
for i in 1 2 3; do
	rt create --bundle "$b" "$id" >"$TEST_TMP/race$i.out" 2>&1 </dev/null &
	eval "rp$i=\$!"
done
wins=0 already=0
for i in 1 2 3; do
	eval "wait \$rp$i"
	rc=$?
	[ $rc -eq 0 ] && wins=$((wins + 1))
	[ $rc -eq 1 ] && grep -q "'$id' already exists" "$TEST_TMP/race$i.out" && already=$((already + 1))
done
is "$wins" 1 "three creates with the same id at once: one wins"
is "$already" 2 "the others fail with 'already exists'"
is "$(status_of "$id")" created "the winner's container is intact"
ok "start the winner" rt start "$id"
is "$(status_of "$id")" running "the winner runs"
ok "delete --force the winner" rt delete --force "$id"
is "$(cgroups_of "$id")" "" "no cgroup after the race"

done_testing
