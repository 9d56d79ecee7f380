#!/bin/bash
# The environment's supervisor: start order by depends_on conditions (service_healthy waits
# for a health check to pass, service_completed_successfully for a one-shot to exit 0, a
# failing one fails its dependents), health in ps and as events, restart policies (no,
# on-failure:N, always) with exit statuses, moat restart through the control socket, capped
# logs, and `up` in the foreground taken down by SIGINT.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

env_setup mtsup localhost/suptest:1

mkdir -p "$TEST_TMP/proj"
F=(-f "$TEST_TMP/proj/compose.yaml" -p "$P")
svc() { jq -r --arg n "$1" --arg k "$2" '.[] | select(.name == $n) | .[$k] // empty' <<<"$3"; }
ps_json() { "${MOAT[@]}" ps -p "$P" --format json; }
# wait_for SECONDS JQ-EXPR: until `ps --format json | jq -e EXPR` holds
wait_for() {
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ]; do
		ps_json | jq -e "$2" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

# ---------------------------------------------------------------- conditions and health
# db becomes healthy only once /tmp/ready exists (1 s after it starts); migrate is a one-shot
# that must exit 0; api waits for both; web only for api to have started.
cat >"$TEST_TMP/proj/compose.yaml" <<'YAML'
services:
  db:
    image: localhost/suptest:1
    command: ["/bin/sh", "-c", "sleep 1; touch /tmp/ready; echo db-ready; exec sleep 1000"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 300ms
      start_interval: 200ms
      start_period: 10s
      timeout: 2s
      retries: 2
  migrate:
    image: localhost/suptest:1
    command: ["/bin/sh", "-c", "echo migrated; exit 0"]
  api:
    image: localhost/suptest:1
    command: ["/bin/sh", "-c", "echo api-started; exec sleep 1000"]
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  web:
    image: localhost/suptest:1
    command: ["sleep", "1000"]
    depends_on: [api]
YAML
out=$("${MOAT[@]}" up -d "${F[@]}" 2>&1)
is "$?" 0 "up -d with health and completion conditions"
like "$out" "db healthy" "up reports db healthy"
# the order shown: db healthy comes before api starts, migrate before api
first_api=$(grep -n "^api started" <<<"$out" | cut -d: -f1)
db_h=$(grep -n "^db healthy" <<<"$out" | cut -d: -f1)
mig=$(grep -n "^migrate started" <<<"$out" | cut -d: -f1)
[ -n "$first_api" ] && [ -n "$db_h" ] && [ "$db_h" -lt "$first_api" ] && [ "$mig" -lt "$first_api" ] &&
	pass "api started after db was healthy and migrate ran" || fail "api started after db was healthy and migrate ran: $out"
j=$(ps_json)
is "$(svc db health "$j")" "healthy" "ps: db healthy"
is "$(svc migrate state "$j")" "exited" "ps: migrate exited"
is "$(svc migrate exit_status "$j")" "0" "ps: migrate's exit status 0"
is "$(svc web state "$j")" "running" "ps: web running"
like "$("${MOAT[@]}" ps -p "$P")" "db +running +healthy" "ps table: a HEALTH column"
like "$("${MOAT[@]}" ps -p "$P")" "migrate +exited \(0\)" "ps table: exit status of an exited service"
ev=$("${MOAT[@]}" events -p "$P")
like "$ev" 'db +health +\{.*"status":"healthy"' "a health event for db, saying healthy"

# ---------------------------------------------------------------- moat restart
pid_before=$(svc api pid "$(ps_json)")
out=$("${MOAT[@]}" restart -p "$P" api 2>&1)
is "$?" 0 "moat restart api"
like "$out" "api restarted" "... says so"
pid_after=$(svc api pid "$(ps_json)")
[ -n "$pid_after" ] && [ "$pid_after" != "$pid_before" ] && pass "api runs with a new pid" ||
	fail "api runs with a new pid ($pid_before -> $pid_after)"
is "$(grep -c api-started "$ENVDIR/logs/api.log")" 2 "its log shows both starts"
out=$("${MOAT[@]}" restart -p "$P" nosuch 2>&1)
isnt "$?" 0 "restart of an unknown service fails"
like "$out" "no service 'nosuch'" "... naming it"
ok "down" "${MOAT[@]}" down -p "$P"

# ---------------------------------------------------------------- a failing dependency
cat >"$TEST_TMP/proj/compose.yaml" <<'YAML'
services:
  migrate:
    image: localhost/suptest:1
    command: ["/bin/sh", "-c", "echo broken; exit 3"]
  api:
    image: localhost/suptest:1
    command: ["sleep", "1000"]
    depends_on:
      migrate: {condition: service_completed_successfully}
YAML
out=$("${MOAT[@]}" up -d "${F[@]}" 2>&1)
isnt "$?" 0 "up fails when a completion dependency fails"
like "$out" "service 'api': dependency 'migrate' exited with an error \(status 3\)" "... naming both and the status"
is "$(svc api state "$(ps_json)")" "failed" "ps: api failed"
ok "down after a failed up" "${MOAT[@]}" down -p "$P"

# a service_healthy dependency on a service without a healthcheck is refused before anything runs
cat >"$TEST_TMP/proj/compose.yaml" <<'YAML'
services:
  db: {image: localhost/suptest:1, command: ["sleep", "100"]}
  api:
    image: localhost/suptest:1
    command: ["sleep", "100"]
    depends_on: {db: {condition: service_healthy}}
YAML
out=$("${MOAT[@]}" up -d "${F[@]}" 2>&1)
isnt "$?" 0 "service_healthy on a service without a healthcheck: refused"
like "$out" "'db' has no healthcheck" "... saying why"
[ ! -d "$ENVDIR" ] && pass "... and nothing was made" || { fail "... and nothing was made"; cleanup_env; }

# ---------------------------------------------------------------- restart policies, log caps
cat >"$TEST_TMP/proj/compose.yaml" <<'YAML'
services:
  flaky:
    image: localhost/suptest:1
    command: ["/bin/sh", "-c", "echo run; exit 7"]
    restart: on-failure:2
  steady:
    image: localhost/suptest:1
    command: ["/bin/sh", "-c", "echo once; exit 0"]
    restart: on-failure
  phoenix:
    image: localhost/suptest:1
    command: ["/bin/sh", "-c", "sleep 0.3; exit 0"]
    restart: always
  never:
    image: localhost/suptest:1
    command: ["/bin/sh", "-c", "exit 5"]
  chatty:
    image: localhost/suptest:1
    command: ["/bin/sh", "-c", "while :; do i=0; while [ $$i -lt 2000 ]; do echo 0123456789012345678901234567890123456789012345678901234567890123456789; i=$$((i+1)); done; sleep 0.2; done"]
    logging:
      options: {max-size: 64k, max-file: "2"}
YAML
ok "up -d with restart policies" "${MOAT[@]}" up -d "${F[@]}"
wait_for 15 '[.[] | select(.name == "flaky" and .state == "exited" and .restarts == 2)] | length == 1' &&
	pass "on-failure:2: restarted twice, then left exited" || {
	fail "on-failure:2: $(ps_json | jq -c '.[] | select(.name == "flaky")')"
	diag "$("${MOAT[@]}" events -p "$P" | grep flaky)" "$(cat "$ENVDIR/supervisor.log")"
}
j=$(ps_json)
is "$(svc flaky exit_status "$j")" "7" "... with its exit status 7"
is "$(grep -c '^run$' "$ENVDIR/logs/flaky.log")" 3 "... three runs in its log"
is "$(svc steady state "$j")" "exited" "on-failure and exit 0: not restarted"
is "$(svc steady restarts "$j")" "" "... no restart counted"
is "$(svc never state "$j")" "exited" "restart: no: stays exited"
is "$(svc never exit_status "$j")" "5" "... exit status 5"
wait_for 15 '[.[] | select(.name == "phoenix" and .restarts >= 3)] | length == 1' &&
	pass "always: restarted again and again" || fail "always: $(ps_json | jq -c '.[] | select(.name == "phoenix")')"
ev=$("${MOAT[@]}" events -p "$P")
like "$ev" 'flaky +restart +\{"restarts":1\}' "restart events, counted"
like "$ev" 'flaky +exit +\{.*"status":7' "exit events carry the status"
sleep 2.5 # two log checks (once a second: about 700 KB/s come in between)
size=$(stat -c %s "$ENVDIR/logs/chatty.log")
[ "$size" -lt $((1024 * 1024)) ] && pass "the log is capped ($size bytes now)" || fail "the log is capped: $size bytes"
[ -f "$ENVDIR/logs/chatty.log.1" ] && pass "... the previous part kept as chatty.log.1" || fail "... chatty.log.1 kept"
[ ! -e "$ENVDIR/logs/chatty.log.2" ] && pass "... and no more (max-file 2)" || fail "... and no more (max-file 2)"
lines=$("${MOAT[@]}" logs -p "$P" chatty | head -n 3 | grep -c 0123456789)
is "$lines" 3 "moat logs reads the capped log"
ok "down" "${MOAT[@]}" down -p "$P"

# ---------------------------------------------------------------- up in the foreground
cat >"$TEST_TMP/proj/compose.yaml" <<'YAML'
services:
  talker:
    image: localhost/suptest:1
    command: ["/bin/sh", "-c", "echo hello-from-talker; exec sleep 1000"]
YAML
"${MOAT[@]}" up "${F[@]}" >"$TEST_TMP/fg.out" 2>&1 &
fg=$!
end=$((SECONDS + 15))
until grep -q "talker | hello-from-talker" "$TEST_TMP/fg.out" || [ $SECONDS -ge $end ]; do sleep 0.2; done
like "$(cat "$TEST_TMP/fg.out")" "talker \| hello-from-talker" "foreground up shows the service's output"
kill -INT "$fg"
wait "$fg"
is "$?" 0 "Ctrl-C: up returns 0"
like "$(cat "$TEST_TMP/fg.out")" "is down" "... after taking the environment down"
[ ! -d "$ENVDIR" ] && pass "... nothing left of it" || fail "... nothing left of it"

# a foreground environment whose services all end goes down by itself
cat >"$TEST_TMP/proj/compose.yaml" <<'YAML'
services:
  oneshot:
    image: localhost/suptest:1
    command: ["/bin/sh", "-c", "echo done-now"]
YAML
timeout 30 "${MOAT[@]}" up "${F[@]}" >"$TEST_TMP/fg2.out" 2>&1
is "$?" 0 "foreground up returns when every service ended"
like "$(cat "$TEST_TMP/fg2.out")" "oneshot \| done-now" "... having shown its output"
[ ! -d "$ENVDIR" ] && pass "... and took it down" || fail "... and took it down"

done_testing
