#!/bin/bash
# examples/realworld/compose.yaml brought up for real (7 services: proxy -> frontend -> api ->
# {cache, db}, worker -> {queue, db}, on one image built here from the busybox test rootfs), then
# the FULL reachability matrix: for every ordered pair of services (src, dst) and every port dst
# listens on, a TCP connection from src answers (with dst's own banner) iff the plan of
# `moat config --format json` says src reaches dst (on that port, or on any); the plan itself is
# checked against a table written here from the file. Every denied (src, dst, port) must show up
# as a `denied` event with those three; no allowed one may. The published port answers from the
# host at the bridge's gateway address; a container cannot use it to get around the policy.
# Settings of the file are checked where visible from inside (env_file, environment, read_only,
# tmpfs, mem_limit, pids_limit). down leaves nothing (links by the bridge name in state.json).
# Only the environment's own bridge, veths and netns (and the gateway address, from the host):
# no traffic leaves them.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

"$MOAT_ROOTFS/bin/busybox" httpd --help >/dev/null 2>&1 || [ $? = 1 ] || skip_all "the test rootfs' busybox has no httpd"
EXAMPLE=$_src_root/examples/realworld
[ -f "$EXAMPLE/compose.yaml" ] || bail_out "'$EXAMPLE/compose.yaml' is missing"
BB=$MOAT_ROOTFS/bin/busybox

env_setup mtrw localhost/moat-realworld:1
t_start=$(date +%s)

# the example as shipped (with its .env and app.env); the image name is the file's own
cp -a "$EXAMPLE" "$TEST_TMP/proj"
unset APP_IMAGE PROXY_PORT # the shell's environment would win over .env
F=(-f "$TEST_TMP/proj/compose.yaml" -p "$P")
PUBLISHED=18090

# what each service listens on, and the line it answers with (httpd: index.html's line)
declare -A LISTEN=(
	[proxy]="80" [frontend]="3000" [api]="8080" [cache]="6379"
	[db]="5432 9187" [queue]="5672 15672" [worker]=""
)
declare -A BANNER=(
	[proxy:80]=proxy [frontend:3000]=frontend [api:8080]=api [cache:6379]=cache
	[db:5432]=db [db:9187]=db-metrics [queue:5672]=queue [queue:15672]=queue-admin
)
# who reaches whom, as written in the file (depends_on: any port; allow S:P: that port; both:
# the allow narrows it)
declare -A WANT_REACHES=(
	[proxy]="frontend" [frontend]="api cache:6379" [api]="cache db:5432" [cache]=""
	[db]="" [queue]="" [worker]="db queue:5672"
)
SERVICES=(proxy frontend api cache db queue worker)

# ---------------------------------------------------------------- the plan
plan=$("${MOAT[@]}" config "${F[@]}" --format json 2>"$TEST_TMP/config.err")
is "$?" 0 "config --format json of the example" || diag "$(cat "$TEST_TMP/config.err")"
is "$(jq -r '.services | keys | sort | join(" ")' <<<"$plan")" "api cache db frontend proxy queue worker" \
	"the plan has the seven services"
is "$(jq -r '.services.proxy.ports[0] | "\(.published):\(.target)"' <<<"$plan")" "$PUBLISHED:80" \
	"proxy publishes $PUBLISHED:80 (from .env)"
is "$(jq -r '.services.api.image' <<<"$plan")" "localhost/moat-realworld:1" "the image name comes from .env"
bad=""
for s in "${SERVICES[@]}"; do
	got=$(jq -r --arg s "$s" '.services[$s].reaches | sort | join(" ")' <<<"$plan")
	want=$(tr ' ' '\n' <<<"${WANT_REACHES[$s]}" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//')
	[ "$got" = "$want" ] || bad+="$s: plan '$got', file '$want'; "
done
is "${bad:-none}" none "the plan's reaches are what the file declares, for every service"

# reaches SRC DST PORT: does the plan let SRC connect to DST:PORT?
reaches() {
	jq -e --arg s "$1" --arg d "$2" --arg p "$3" \
		'.services[$s].reaches | any(. == $d or . == ($d + ":" + $p))' <<<"$plan" >/dev/null
}

# ---------------------------------------------------------------- up
t0=$(date +%s%N)
"${MOAT[@]}" up -d "${F[@]}" >"$TEST_TMP/up.out" 2>&1
rc=$?
is "$rc" 0 "up -d" || bail_out "up failed: $(head -c 600 "$TEST_TMP/up.out")"
diag "up -d took $((($(date +%s%N) - t0) / 1000000)) ms"
[ -s "$TEST_TMP/up.out" ] && diag "up said: $(head -c 600 "$TEST_TMP/up.out")"
BR=$(jq -r '.bridge // ""' "$ENVDIR/state.json" 2>/dev/null)
GW=$(jq -r '.gateway // ""' "$ENVDIR/state.json" 2>/dev/null)
like "$BR" '^moat-[a-z0-9]{6}$' "state.json names the bridge ($BR, a hashed tag)"
like "$GW" '^[0-9]+\.[0-9]+\.[0-9]+\.1$' "state.json names the gateway ($GW)"

ps_json=$("${MOAT[@]}" ps -p "$P" --format json)
is "$(jq -r '[.[] | select(.state == "running") | .name] | sort | join(" ")' <<<"$ps_json")" \
	"api cache db frontend proxy queue worker" "ps: all seven running"
order=$(jq -r '[.[].name] | join(" ")' <<<"$ps_json")
like "$order" "^(cache db|db cache) api frontend proxy" "ps: cache and db before api, api before frontend, frontend before proxy ($order)"
like "$order" "queue.*worker" "ps: queue before worker"

ex() { timeout 30 "${MOAT[@]}" exec -p "$P" "$1" -- "${@:2}" </dev/null 2>&1; }

# ---------------------------------------------------------------- the file's settings, from inside
out=$(ex api env)
like "$out" $'(^|\n)DB_HOST=db(\n|$)' "api: env_file app.env applied (DB_HOST)"
like "$out" $'(^|\n)ROLE=api(\n|$)' "api: environment applied (ROLE)"
like "$(ex worker env)" $'(^|\n)QUEUE_URL=amqp://queue:5672/(\n|$)' "worker: env_file app.env applied (QUEUE_URL)"
out=$(ex api sh -c '{ echo x >/x; } 2>/dev/null && echo writable || echo read-only')
is "$out" "read-only" "api: read_only rootfs"
out=$(ex api sh -c 'echo x >/tmp/x && cat /tmp/x && grep " /tmp " /proc/mounts | cut -d" " -f3')
is "$(tr '\n' ' ' <<<"$out")" "x tmpfs " "api: /tmp is a writable tmpfs"
# limits, read in the service's cgroups (v1 hierarchies here, v2 elsewhere)
api_pid=$(jq -r '.[] | select(.name == "api") | .pid' <<<"$ps_json")
cg_file() { # cg_file PID CONTROLLER FILE_V1 FILE_V2
	local path
	path=$(awk -F: -v c="$2" '$2 ~ "(^|,)" c "(,|$)" {print $3}' "/proc/$1/cgroup")
	if [ -n "$path" ] && [ -r "/sys/fs/cgroup/$2$path/$3" ]; then cat "/sys/fs/cgroup/$2$path/$3"; return; fi
	path=$(awk -F: '$1 == "0" {print $3}' "/proc/$1/cgroup")
	cat "/sys/fs/cgroup$path/$4" 2>/dev/null || cat "/sys/fs/cgroup/unified$path/$4" 2>/dev/null
}
is "$(cg_file "$api_pid" memory memory.limit_in_bytes memory.max)" 67108864 "api: mem_limit 64m in its memory cgroup"
is "$(cg_file "$api_pid" pids pids.max pids.max)" 64 "api: pids_limit 64 in its pids cgroup"

# ---------------------------------------------------------------- the matrix
# One exec per source, all sources at once; inside, the probes one after another (the pids
# limits of the services leave no room for many at a time). A probe sends an HTTP request (the
# nc listeners ignore it) and prints the answer's lines; "open" = dst's own banner came back.
probe_script='
for t in "$@"; do
	h=${t%:*} p=${t#*:}
	out=$(printf "GET / HTTP/1.0\r\n\r\n" | timeout 4 nc -w 1 "$h" "$p" 2>/dev/null | tr -d "\r")
	echo "$t $(echo "$out" | tail -n 1)"
done'
t0=$(date +%s%N)
npairs=0
for src in "${SERVICES[@]}"; do
	targets=()
	for dst in "${SERVICES[@]}"; do
		[ "$dst" = "$src" ] && continue
		for port in ${LISTEN[$dst]}; do targets+=("$dst:$port"); done
	done
	npairs=$((npairs + ${#targets[@]}))
	ex "$src" sh -c "$probe_script" probe "${targets[@]}" >"$TEST_TMP/probe.$src" &
done
wait
diag "$npairs connections from 7 sources in $((($(date +%s%N) - t0) / 1000000)) ms"

# compare; an allowed probe that failed is tried again, slowly (a veth's first packet can be lost)
wrong=() n_open=0 n_closed=0 denied_triples=() allowed_triples=()
for src in "${SERVICES[@]}"; do
	for dst in "${SERVICES[@]}"; do
		[ "$dst" = "$src" ] && continue
		for port in ${LISTEN[$dst]}; do
			b=${BANNER[$dst:$port]}
			got=$(awk -v t="$dst:$port" '$1 == t {print $2; exit}' "$TEST_TMP/probe.$src")
			if reaches "$src" "$dst" "$port"; then
				allowed_triples+=("$src $dst $port")
				if [ "$got" != "$b" ]; then
					got=$(ex "$src" sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | timeout 6 nc -w 4 "$1" "$2" | tr -d "\r" | tail -n 1' probe "$dst" "$port")
					[ "$got" = "$b" ] && diag "$src -> $dst:$port answered on the second try"
				fi
				if [ "$got" = "$b" ]; then n_open=$((n_open + 1)); else
					wrong+=("$src -> $dst:$port: allowed by the plan, but got '${got:-nothing}' (not '$b')")
				fi
			else
				denied_triples+=("$src $dst $port")
				if [ -z "$got" ]; then n_closed=$((n_closed + 1)); else
					wrong+=("$src -> $dst:$port: denied by the plan, but got '$got'")
				fi
			fi
		done
	done
done
is "$((n_open + n_closed + ${#wrong[@]}))" "$npairs" "every probe was run and compared ($npairs)"
is "${#wrong[@]}" 0 "reachability matrix: $n_open allowed connections answer, $n_closed denied ones do not"
for w in "${wrong[@]+"${wrong[@]}"}"; do diag "$w"; done
# the matrix must have both kinds, or the comparison proves nothing
[ "${#allowed_triples[@]}" -ge 6 ] && [ "${#denied_triples[@]}" -ge 30 ] &&
	pass "the matrix has ${#allowed_triples[@]} allowed and ${#denied_triples[@]} denied (src, dst, port)" ||
	fail "the matrix has ${#allowed_triples[@]} allowed and ${#denied_triples[@]} denied (src, dst, port)"

# ---------------------------------------------------------------- denied events
# every denied (src, dst, port) is recorded (the supervisor reads NFLOG); none that is allowed
ev_missing() {
	local ev t
	ev=$("${MOAT[@]}" events -p "$P" --format json 2>/dev/null |
		jq -r 'select(.type == "denied") | "\(.fields.src) \(.fields.dst) \(.fields.dport)"' | sort -u)
	for t in "${denied_triples[@]}"; do grep -qxF "$t" <<<"$ev" || echo "$t"; done
}
for ((i = 0; i < 50; i++)); do
	missing=$(ev_missing)
	[ -z "$missing" ] && break
	sleep 0.1
done
is "$(printf '%s' "$missing" | tr '\n' ';' | head -c 600)" "" "a denied event for each of the ${#denied_triples[@]} denied (src, dst, port)"
ev=$("${MOAT[@]}" events -p "$P" --format json 2>/dev/null |
	jq -r 'select(.type == "denied") | "\(.fields.src) \(.fields.dst) \(.fields.dport)"' | sort -u)
extra=""
for t in "${allowed_triples[@]}"; do grep -qxF "$t" <<<"$ev" && extra+="$t; "; done
is "${extra:-none}" none "no denied event for an allowed (src, dst, port)"
like "$("${MOAT[@]}" events -p "$P")" "api +denied .*\"dst\":\"db\".*9187|api +denied .*9187.*\"dst\":\"db\"" \
	"events (text): api -> db:9187 (the metrics port) denied"

# ---------------------------------------------------------------- the published port
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 6 "$BB" nc -w 3 "$GW" "$PUBLISHED" 2>&1 | tr -d '\r')
like "$out" $'^HTTP/1\\.[01] 200.*\nproxy$' "the host reaches proxy at $GW:$PUBLISHED (published, DNAT)"
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 6 "$BB" nc -w 2 "$GW" 3000 2>&1 | tr -d '\r')
unlike "$out" "frontend" "frontend's port 3000 is not published"
out=$(ex worker sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | timeout 4 nc -w 2 $GW $PUBLISHED 2>/dev/null" | tr -d '\r')
unlike "$out" "proxy" "worker cannot reach proxy through the published port (not allowed)"

# ---------------------------------------------------------------- down
n=$(procs_of_env | wc -l)
[ "$n" -ge 15 ] && pass "the leak probe sees the running environment ($n processes)" ||
	fail "the leak probe sees the running environment ($n processes, expected >= 15)"
[ "$(env_links | wc -l)" = 8 ] && pass "... and its bridge and 7 veths" || fail "... and its bridge and 7 veths ($(env_links | tr '\n' ' '))"

t0=$(date +%s%N)
ok "down" "${MOAT[@]}" down -p "$P"
diag "down took $((($(date +%s%N) - t0) / 1000000)) ms"
for ((i = 0; i < 20; i++)); do [ -z "$(leftovers)" ] && break; sleep 0.1; done
is "$(leftovers)" "" "down leaves nothing (links, state dir, nft tables, cgroups, mounts, processes)"
is "$(jq '[.. | objects | select(.active? == true)] | length' "$MOAT_IPAM_DIR/ipam.json" 2>&1)" 0 \
	"no active address record (IPAM released)"
# (no probe of the published port after down: the gateway address is gone, the packet would
# leave through the host's default route)
diag "the whole test took $(($(date +%s) - t_start)) s"

done_testing
