#!/bin/bash
# The environment supervisor (v0) and moat events / logs / exec: up -d starts a supervisor that
# records denied connections (NFLOG, with service names), OOM kills and exits in the env's
# event log and applies x-moat on-violation; down stops it, also after kill -9 of it.
# Ports differ from env-up.sh's (which looks for its own nc processes) so both can run at once.
# Only the environment's own bridge, veths and netns: no traffic leaves them.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

[ -x "$MOAT_ROOTFS/bin/moat-helper" ] || skip_all "the test rootfs has no moat-helper"

env_setup mtev localhost/evtest:1

mkdir -p "$TEST_TMP/proj"
cat >"$TEST_TMP/proj/compose.yaml" <<'YAML'
services:
  web:
    image: localhost/evtest:1
    command: ["/bin/busybox", "nc", "-ll", "-p", "81", "-e", "/bin/busybox", "echo", "web"]
    depends_on: [api]
  api:
    image: localhost/evtest:1
    command: ["/bin/busybox", "sh", "-c", "echo api-says-hello; exec /bin/busybox nc -ll -p 8081 -e /bin/busybox echo api"]
    depends_on: [db]
  db:
    image: localhost/evtest:1
    command: ["/bin/busybox", "nc", "-ll", "-p", "5433", "-e", "/bin/busybox", "echo", "db"]
  hog:
    image: localhost/evtest:1
    command: ["/bin/busybox", "sleep", "1000"]
    mem_limit: 32m
  rogue:
    image: localhost/evtest:1
    command: ["/bin/busybox", "sleep", "1000"]
    x-moat:
      on-violation: kill
YAML
F=(-f "$TEST_TMP/proj/compose.yaml" -p "$P")

sup_pid() { awk '{print $1}' "$ENVDIR/supervisor.pid" 2>/dev/null; }
leftovers() {
	local out=""
	[ -n "$BRIDGE" ] && ip -o link show 2>/dev/null | has "$BRIDGE" && out+="links "
	[ -d "$ENVDIR" ] && out+="state-dir "
	nft list tables 2>/dev/null | has -w "moat-$P" && out+="nft "
	[ -n "$(find /sys/fs/cgroup -maxdepth 6 -type d -name "$P-*" 2>/dev/null)" ] && out+="cgroups "
	awk -v p="$ENVDIR/" 'index($5, p) == 1' /proc/self/mountinfo | has . && out+="mounts "
	# (a zombie is gone for us: its parent, whoever reaps orphans here, may take a moment)
	[ -n "$1" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != "" ] &&
		[ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" != Z ] && out+="supervisor($(cut -d' ' -f3 "/proc/$1/stat")) "
	printf '%s' "$out"
}
# The NFLOG group is shared by every environment: another one's supervisor may hold it for a while.
wait_nflog() {
	local i
	grep -q "held by another listener" "$ENVDIR/supervisor.log" 2>/dev/null || return 0
	for ((i = 0; i < 600; i++)); do
		grep -q "NFLOG group [0-9]* bound" "$ENVDIR/supervisor.log" && return 0
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- up: the supervisor
ok "up -d" "${MOAT[@]}" up -d "${F[@]}"
BRIDGE=$(jq -r .bridge "$ENVDIR/state.json")
sp=$(sup_pid)
like "$sp" '^[0-9]+$' "the supervisor's pid is recorded"
is "$(cat "/proc/$sp/comm" 2>/dev/null)" "moat-supervisor" "... and it runs"
is "$(jq -r '.services[] | select(.name == "rogue") | .on_violation' "$ENVDIR/state.json")" kill \
	"on-violation is in the record"
ok "events without any: no error" "${MOAT[@]}" events -p "$P"

# ---------------------------------------------------------------- denied
wait_nflog || diag "supervisor.log: $(cat "$ENVDIR/supervisor.log")"
ex() { "${MOAT[@]}" exec -p "$P" "$@"; }
out=$(ex web -- /bin/busybox timeout 3 /bin/busybox nc -w 2 api 8081 </dev/null 2>&1)
is "$out" "api" "exec: web -> api allowed"
out=$(ex web -- /bin/busybox timeout 3 /bin/busybox nc -w 1 db 5433 </dev/null 2>&1)
isnt "$out" "db" "web -> db: denied"
if wait_event denied web; then pass "a denied event for web"; else fail "a denied event for web"; fi
ev=$(events_of denied web | head -1)
is "$(jq -r '.fields.dst' <<<"$ev")" db "... naming db as the destination"
is "$(jq -r '.fields.src' <<<"$ev")" web "... and web as the source"
is "$(jq -r '.fields.dport' <<<"$ev")" 5433 "... with the port"
is "$(jq -r '.env' <<<"$ev")" "$P" "... and the environment"
out=$("${MOAT[@]}" events -p "$P")
like "$out" "web +denied .*\"dst\":\"db\"" "events: a text line TIME SERVICE TYPE details"
is "$(ps -o stat= -p "$(jq -r '.[] | select(.name == "web") | .pid' < <("${MOAT[@]}" ps -p "$P" --format json))" | head -c1)" "S" \
	"web (on-violation: log) still runs"

# ---------------------------------------------------------------- logs, exec
out=$("${MOAT[@]}" logs -p "$P" api)
is "$out" "api-says-hello" "logs api: its output"
out=$("${MOAT[@]}" logs -p "$P")
like "$out" "api \| api-says-hello" "logs: several services, prefixed"
ex api -- /bin/moat-helper exit 3
is "$?" 3 "exec passes the exit status through"
out=$(ex nosuch -- /bin/true 2>&1)
isnt "$?" 0 "exec in an unknown service: an error"
like "$out" "no service 'nosuch'" "... naming it"

# ---------------------------------------------------------------- follow
"${MOAT[@]}" events -p "$P" --follow --format json >"$TEST_TMP/follow.out" 2>&1 &
follow_pid=$!

# ---------------------------------------------------------------- oom
ex hog -- /bin/moat-helper alloc 256 >/dev/null 2>&1
isnt "$?" 0 "alloc past mem_limit in hog: killed"
if wait_event oom hog; then pass "an oom event for hog"; else fail "an oom event for hog"; fi

# ---------------------------------------------------------------- on-violation: kill
ex rogue -- /bin/busybox timeout 3 /bin/busybox nc -w 1 db 5433 </dev/null >/dev/null 2>&1
if wait_event violation_action rogue; then pass "a violation_action event for rogue"; else fail "a violation_action event for rogue"; fi
is "$(events_of violation_action rogue | head -1 | jq -r .fields.action)" kill "... action kill"
for ((i = 0; i < 50; i++)); do
	st=$("${MOAT[@]}" ps -p "$P" --format json | jq -r '.[] | select(.name == "rogue") | .state')
	[ "$st" = running ] || break
	sleep 0.1
done
isnt "$st" running "rogue was killed"
if wait_event exit rogue; then pass "an exit event for rogue"; else fail "an exit event for rogue"; fi

sleep 0.5
kill "$follow_pid" 2>/dev/null
wait "$follow_pid" 2>/dev/null
like "$(cat "$TEST_TMP/follow.out")" '"type":"oom"' "events --follow: showed the oom as it came"
like "$(cat "$TEST_TMP/follow.out")" '"type":"denied"' "... after what was recorded before"

# ---------------------------------------------------------------- down
unlike "$(cat "$ENVDIR/supervisor.log" 2>/dev/null)" "Sanitizer|runtime error" "supervisor.log: no sanitizer report"
ok "down" "${MOAT[@]}" down -p "$P"
is "$(leftovers "$sp")" "" "down stops the supervisor and leaves nothing"

# ---------------------------------------------------------------- kill -9 of the supervisor
ok "up -d again" "${MOAT[@]}" up -d "${F[@]}"
sp=$(sup_pid)
kill -9 "$sp"
for ((i = 0; i < 50; i++)); do kill -0 "$sp" 2>/dev/null || break; sleep 0.05; done
ok "down after kill -9 of the supervisor" "${MOAT[@]}" down -p "$P"
is "$(leftovers "$sp")" "" "... leaves nothing"

done_testing
