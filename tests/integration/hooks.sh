#!/bin/bash
# OCI hooks: all six, their order, stdin state, namespaces, failures and timeouts.
. "$(dirname "$0")/lib.sh"

logs=$TEST_TMP/logs
mkdir -p "$logs"
chmod 777 "$logs"
log=$logs/hooks.log
host_mnt=$(readlink /proc/self/ns/mnt)

# a host hook: mkhook NAME [BODY]
mkhook() {
	cat >"$TEST_TMP/hook-$1" <<EOF
#!/bin/sh
{ echo "== $1 mnt=\$(readlink /proc/self/ns/mnt) args=\$* var=\$HOOKVAR"; cat; echo; } >>$log
${2:-}
EOF
	chmod 755 "$TEST_TMP/hook-$1"
}
for k in prestart createRuntime createContainer poststart poststop; do mkhook "$k"; done
hook() { jq -cn --arg p "$TEST_TMP/hook-$1" '{path: $p, args: [$p, "a1", "a2"], env: ["HOOKVAR=v-'"$1"'"]}'; }

b=$TEST_TMP/b-all
mkbundle "$b" ".process.args = [\"/bin/moat-helper\", \"sleep\", \"60\"]
	| .mounts += [{destination: \"/hooklogs\", type: \"bind\", source: \"$logs\", options: [\"rbind\", \"rw\"]}]
	| .hooks = {prestart: [$(hook prestart)], createRuntime: [$(hook createRuntime)],
		createContainer: [$(hook createContainer)],
		startContainer: [{path: \"/hook-startContainer\", args: [\"/hook-startContainer\", \"a1\", \"a2\"], env: [\"HOOKVAR=v-startContainer\"]}],
		poststart: [$(hook poststart)], poststop: [$(hook poststop)]}" || bail_out mkbundle
# startContainer runs in the container: its path is inside the rootfs (as runc resolves it)
cat >"$b/rootfs/hook-startContainer" <<'EOF'
#!/bin/sh
{ echo "== startContainer mnt=$(readlink /proc/self/ns/mnt) args=$* var=$HOOKVAR"; cat; echo; } >>/hooklogs/hooks.log
EOF
chmod 755 "$b/rootfs/hook-startContainer"

newid_var id all
ok "create with all hooks" rt create --bundle "$b" "$id"
pid=$(pid_of "$id")
init_mnt=$(readlink /proc/"$pid"/ns/mnt)
ok "start" rt start "$id"
ok "running" wait_status "$id" running 5
sleep 0.3
ok "kill" rt kill "$id" KILL
ok "stopped" wait_status "$id" stopped 10
ok "delete" rt delete "$id"

order=$(grep '^== ' "$log" | awk '{print $2}' | tr '\n' ' ')
is "$order" "prestart createRuntime createContainer startContainer poststart poststop " "all six hooks ran once, in order"
for k in prestart createRuntime createContainer startContainer poststart poststop; do
	line=$(grep -A1 "^== $k " "$log" | sed -n 2p)
	is "$(jq -r .id <<<"$line" 2>&1)" "$id" "$k: the state JSON on stdin has the id"
	is "$(jq -r .bundle <<<"$line" 2>&1)" "$b" "$k: ... and the bundle"
	like "$(grep "^== $k " "$log")" "args=a1 a2 var=v-$k" "$k: args and env are passed"
done
for k in prestart createRuntime createContainer startContainer poststart; do
	line=$(grep -A1 "^== $k " "$log" | sed -n 2p)
	is "$(jq -r .pid <<<"$line" 2>&1)" "$pid" "$k: the state has the init pid"
done
is "$(grep -A1 '^== poststart ' "$log" | sed -n 2p | jq -r .status)" running "poststart: status is running"
is "$(grep -A1 '^== poststop ' "$log" | sed -n 2p | jq -r .status)" stopped "poststop: status is stopped"
mnt_of() { grep "^== $1 " "$log" | sed 's/.*mnt=\([^ ]*\) .*/\1/'; }
for k in prestart createRuntime poststart poststop; do
	is "$(mnt_of "$k")" "$host_mnt" "$k runs in the runtime's mount namespace"
done
for k in createContainer startContainer; do
	m=$(mnt_of "$k")
	like "$m" '^mnt:\[' "$k: mount namespace read"
	isnt "$m" "$host_mnt" "$k runs in the container's mount namespace"
	is "$m" "$init_mnt" "$k runs in the init's mount namespace"
done

# --- a failing createRuntime hook
mkhook fail 'echo "boom from hook" >&2; exit 3'
: >"$log"
b=$TEST_TMP/b-fail
mkbundle "$b" ".process.args = [\"/bin/true\"]
	| .hooks = {createRuntime: [{path: \"$TEST_TMP/hook-fail\"}], poststop: [$(hook poststop)]}" || bail_out mkbundle
newid_var id fail
out=$(rt create --bundle "$b" "$id" 2>&1)
isnt "$?" 0 "a failing createRuntime hook fails create"
like "$out" "$TEST_TMP/hook-fail" "the error names the hook"
like "$out" "createRuntime" "the error names the hook kind"
like "$out" "boom from hook" "the error has the hook's stderr"
like "$out" "status 3" "the error has the hook's exit status"
is "$(status_of "$id")" none "nothing is left behind after a failed hook"
ok "no state dir left" test ! -e "$TEST_ROOT/$id"

# --- a hook that times out
mkhook sleeper "echo \$\$ >$TEST_TMP/sleeper.pid; exec sleep 30"
b=$TEST_TMP/b-timeout
mkbundle "$b" ".process.args = [\"/bin/true\"]
	| .hooks = {prestart: [{path: \"$TEST_TMP/hook-sleeper\", timeout: 1}]}" || bail_out mkbundle
newid_var id timeout
t0=$(date +%s)
out=$(rt create --bundle "$b" "$id" 2>&1)
rc=$?
t1=$(date +%s)
isnt "$rc" 0 "a hook over its timeout fails create"
ok "... within a few seconds ($((t1 - t0)) s)" test $((t1 - t0)) -le 10
like "$out" "timed out|timeout" "the error says it timed out: $out"
like "$out" "hook-sleeper" "the error names the hook"
spid=$(cat "$TEST_TMP/sleeper.pid" 2>/dev/null)
ok "the hook process was killed" bash -c "! kill -0 ${spid:-999999999} 2>/dev/null"
is "$(status_of "$id")" none "nothing is left behind after a timeout"

# --- a missing hook binary
b=$TEST_TMP/b-missing
mkbundle "$b" ".process.args = [\"/bin/true\"] | .hooks = {createRuntime: [{path: \"$TEST_TMP/no-such-hook\"}]}" || bail_out mkbundle
newid_var id missing
out=$(rt create --bundle "$b" "$id" 2>&1)
isnt "$?" 0 "a missing hook binary fails create"
like "$out" "no-such-hook" "the error names the missing hook"
is "$(status_of "$id")" none "nothing is left behind"

# --- a failing startContainer hook fails start, as runc
b=$TEST_TMP/b-startfail
mkbundle "$b" '.process.args = ["/bin/moat-helper", "sleep", "60"]
	| .hooks = {startContainer: [{path: "/bin/false"}]}' || bail_out mkbundle
newid_var id startfail
ok "create (failing startContainer hook)" rt create --bundle "$b" "$id"
rt start "$id" >/dev/null 2>&1
ok "the process never runs: the container stops" wait_status "$id" stopped 10
rt delete --force "$id" >/dev/null 2>&1

# --- poststop on delete of a created-only container, and on delete --force of a running one
: >"$log"
b=$TEST_TMP/b-post
mkbundle "$b" ".process.args = [\"/bin/moat-helper\", \"sleep\", \"60\"] | .hooks = {poststop: [$(hook poststop)]}" || bail_out mkbundle
newid_var id post
ok "create (poststop)" rt create --bundle "$b" "$id"
is "$(grep -c '^== poststop' "$log")" 0 "poststop has not run at create"
ok "start (poststop)" rt start "$id"
is "$(grep -c '^== poststop' "$log")" 0 "poststop has not run at start"
ok "delete --force" rt delete --force "$id"
is "$(grep -c '^== poststop' "$log")" 1 "poststop runs once on delete"

: >"$log"
b=$TEST_TMP/b-post2
mkbundle "$b" ".process.args = [\"/bin/true\"] | .hooks = {poststop: [$(hook poststop)]}" || bail_out mkbundle
newid_var id post2
ok "run (poststop)" rt run --bundle "$b" "$id"
is "$(grep -c '^== poststop' "$log")" 1 "run (without --keep) deletes the container: poststop ran once"
is "$(status_of "$id")" none "run without --keep leaves no container"
: >"$log"
newid_var id post3
ok "run --keep (poststop)" rt run --keep --bundle "$b" "$id"
is "$(grep -c '^== poststop' "$log")" 0 "run --keep: poststop waits for delete"
ok "delete" rt delete "$id"
is "$(grep -c '^== poststop' "$log")" 1 "poststop runs on delete after run --keep"

done_testing
