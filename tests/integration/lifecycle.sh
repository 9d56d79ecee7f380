#!/bin/bash
# Smoke test of the runc verbs: create, state, start, kill, delete, run, list, exit status.
. "$(dirname "$0")/lib.sh"

# --- create / start / kill / delete of a long-running container
b=$TEST_TMP/b-sleep
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out "mkbundle"
newid_var id sleep
ok "create" rt create --bundle "$b" "$id"
is "$(status_of "$id")" created "state is created after create"
pid=$(pid_of "$id")
like "$pid" '^[1-9][0-9]*$' "state has the init pid"
ok "init process exists" kill -0 "$pid"
like "$(rt state "$id" | jq -r .bundle)" "^$b\$" "state has the bundle path"
like "$(rt list -q)" "(^|$'\n')$id(\$|$'\n')" "list -q shows the container"
like "$(rt list --format json | jq -r '.[].id')" "$id" "list --format json shows the container"
ok "start" rt start "$id"
is "$(status_of "$id")" running "state is running after start"
ok "kill KILL" rt kill "$id" KILL
ok "stopped after kill" wait_status "$id" stopped 10
ok "delete" rt delete "$id"
is "$(status_of "$id")" none "state fails after delete"
ok "init is gone" bash -c "for i in \$(seq 100); do kill -0 $pid 2>/dev/null || exit 0; sleep 0.05; done; exit 1"

# --- a short process: created -> stopped after start
b=$TEST_TMP/b-exit
mkbundle "$b" || bail_out "mkbundle"
newid_var id exit
ok "create (exit 0)" rt create --bundle "$b" "$id"
ok "start (exit 0)" rt start "$id"
ok "stopped after the process exits" wait_status "$id" stopped 10
ok "delete a stopped container" rt delete "$id"

# --- delete --force of a running container
b=$TEST_TMP/b-force
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out "mkbundle"
newid_var id force
ok "create (force)" rt create --bundle "$b" "$id"
ok "start (force)" rt start "$id"
ok "delete --force a running container" rt delete --force "$id"
is "$(status_of "$id")" none "gone after delete --force"

# --- run: output and exit status passthrough
b=$TEST_TMP/b-run
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper hostname)" || bail_out "mkbundle"
newid_var id run
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
is "$?" 0 "run exits 0"
like "$out" "hostname=moat" "run: the container sees its own hostname"
rt delete "$id" >/dev/null 2>&1

b=$TEST_TMP/b-pid
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper pid)" || bail_out "mkbundle"
newid_var id pid
out=$(rt run --bundle "$b" "$id" </dev/null 2>&1)
like "$out" "^pid=1 ppid=0" "run: the process is pid 1 of its own namespace"
rt delete "$id" >/dev/null 2>&1

b=$TEST_TMP/b-status
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper exit 42)" || bail_out "mkbundle"
newid_var id status
rt run --bundle "$b" "$id" </dev/null >/dev/null 2>&1
is "$?" 42 "run passes the exit status through"
rt delete "$id" >/dev/null 2>&1

b=$TEST_TMP/b-detach
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out "mkbundle"
newid_var id detach
ok "run --detach" rt run --detach --bundle "$b" "$id"
is "$(status_of "$id")" running "running after run --detach"
ok "kill TERM-less: KILL" rt kill "$id" 9
ok "stopped after kill 9" wait_status "$id" stopped 10
ok "delete after run --detach" rt delete "$id"

newid_var id missing
rt state "$id" >/dev/null 2>&1
isnt "$?" 0 "state of an unknown container fails"
rt delete "$id" >/dev/null 2>&1
isnt "$?" 0 "delete of an unknown container fails"

done_testing
