#!/bin/bash
# moat up -d / ps / down: three services (web -> api -> db) from an image imported into a
# private store, each on the environment's bridge behind its nft policy; allowed and denied
# connections; names from /etc/hosts; down leaves nothing, also after kill -9 of up half-way.
# Only the environment's own bridge, veths and netns: no traffic leaves them.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

env_setup mtenv localhost/envtest:1
RTE=("$MOAT_RUNTIME" --root "$ENVDIR/runtime")

mkdir -p "$TEST_TMP/proj"
cat >"$TEST_TMP/proj/compose.yaml" <<'YAML'
services:
  web:
    image: localhost/envtest:1
    command: ["/bin/busybox", "nc", "-ll", "-p", "80", "-e", "/bin/busybox", "echo", "web"]
    depends_on: [api]
  api:
    image: localhost/envtest:1
    command: ["/bin/busybox", "nc", "-ll", "-p", "8080", "-e", "/bin/busybox", "echo", "api"]
    depends_on: [db]
    networks:
      default:
        aliases: [backend]
  db:
    image: localhost/envtest:1
    command: ["/bin/busybox", "nc", "-ll", "-p", "5432", "-e", "/bin/busybox", "echo", "db"]
YAML
F=(-f "$TEST_TMP/proj/compose.yaml" -p "$P")

ENV_PROC_CMDLINE="nc -ll -p (80|8080|5432) -e /bin/busybox echo" # the leak probe: lib.sh leftovers

# ---------------------------------------------------------------- up, ps
start=$(date +%s%N)
ok "up -d" "${MOAT[@]}" up -d "${F[@]}"
diag "up -d took $((($(date +%s%N) - start) / 1000000)) ms"
ps_json=$("${MOAT[@]}" ps -p "$P" --format json)
is "$(jq -r '[.[] | select(.state == "running")] | length' <<<"$ps_json")" 3 "ps: three services running"
is "$(jq -r '[.[].name] | join(",")' <<<"$ps_json")" "db,api,web" "ps: in start order"
like "$(jq -r '[.[].address] | join(",")' <<<"$ps_json")" '^10\.[0-9.]+,10\.[0-9.]+,10\.[0-9.]+$' "ps: with addresses"
out=$("${MOAT[@]}" ps -p "$P")
like "$out" "NAME +STATE +HEALTH +ADDRESS +PORTS" "ps: a table header"
like "$out" "web +running +- +10\." "ps: a line per service"
[ -f "$ENVDIR/state.json" ] && pass "state.json recorded" || fail "state.json recorded"
BR=$(jq -r .bridge "$ENVDIR/state.json")

ex() { "${RTE[@]}" exec "$P-$1" "${@:2}"; }
out=$(ex api /bin/busybox cat /etc/hosts 2>&1)
db_addr=$(jq -r '.[] | select(.name == "db") | .address' <<<"$ps_json")
like "$out" "$db_addr[[:space:]]+db" "/etc/hosts names db"
like "$out" "backend" "... and api's alias"
is "$(ex web /bin/busybox cat /proc/1/cmdline | tr '\0' ' ')" "/.moat/init --grace 2000 -- /bin/busybox nc -ll -p 80 -e /bin/busybox echo web " "moat-init is PID 1"

out=$(ex api /bin/busybox timeout 3 /bin/busybox nc -w 2 db 5432 </dev/null 2>&1)
is "$out" "db" "api -> db (depends_on): allowed, by name"
out=$(ex web /bin/busybox timeout 3 /bin/busybox nc -w 2 api 8080 </dev/null 2>&1)
is "$out" "api" "web -> api: allowed"
out=$(ex web /bin/busybox timeout 3 /bin/busybox nc -w 2 db 5432 </dev/null 2>&1)
isnt "$out" "db" "web -> db: denied"
out=$(ex db /bin/busybox timeout 3 /bin/busybox nc -w 2 api 8080 </dev/null 2>&1)
isnt "$out" "api" "db -> api (not declared): denied"

out=$("${MOAT[@]}" up -d "${F[@]}" 2>&1)
isnt "$?" 0 "a second up while up: refused"
like "$out" "moat down -p $P" "... saying to take it down first"

start=$(date +%s%N)
ok "down" "${MOAT[@]}" down -p "$P"
diag "down took $((($(date +%s%N) - start) / 1000000)) ms"
is "$(leftovers)" "" "down leaves nothing (links, state dir, nft table, cgroups, mounts, processes)"
out=$("${MOAT[@]}" down -p "$P" 2>&1)
is "$?" 0 "down again: not an error"
like "$out" "was not up" "... and says so"

# ---------------------------------------------------------------- kill -9 of up half-way
"${MOAT[@]}" up -d "${F[@]}" >"$TEST_TMP/up2.out" 2>&1 &
up_pid=$!
for ((i = 0; i < 400; i++)); do
	[ "$(jq -r '.services[0].state // ""' "$ENVDIR/state.json" 2>/dev/null)" = running ] && break
	sleep 0.01
done
kill -9 "$up_pid" 2>/dev/null
wait "$up_pid" 2>/dev/null
diag "up killed with the record at: $(jq -c '[.services[].state]' "$ENVDIR/state.json" 2>/dev/null)"
ok "down after kill -9 of up" "${MOAT[@]}" down -p "$P"
is "$(leftovers)" "" "... leaves nothing"

# ---------------------------------------------------------------- a second up after down
ok "up -d after down" "${MOAT[@]}" up -d "${F[@]}"
is "$("${MOAT[@]}" ps -p "$P" --format json | jq -r '[.[] | select(.state == "running")] | length')" 3 "... three running"
out=$(ex api /bin/busybox timeout 3 /bin/busybox nc -w 2 db 5432 </dev/null 2>&1)
is "$out" "db" "... api -> db works again"
ok "down" "${MOAT[@]}" down -p "$P"
is "$(leftovers)" "" "... leaves nothing"

# ---------------------------------------------------------------- errors
cat >"$TEST_TMP/proj/noimage.yaml" <<'YAML'
services:
  lonely:
    image: localhost/not-there:1
YAML
out=$("${MOAT[@]}" up -d -f "$TEST_TMP/proj/noimage.yaml" -p "$P" 2>&1)
isnt "$?" 0 "up with an image not in the store fails"
like "$out" "service 'lonely'.*moat image pull/import it first" "... naming the service and what to do"
is "$(leftovers)" "" "... having made nothing"

done_testing
