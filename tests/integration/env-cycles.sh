#!/bin/bash
# 50 `moat up -d` / `moat down` cycles of a three-service environment (front -> mid -> back, nc
# listeners; front's check calls mid through the policy), then nothing of the environment may be
# left: no bridge or veth (ip link), no nft table (nft list tables), no cgroup (the runtime's
# <ctrl>/moat/<env>-<svc> in every hierarchy), no mount under its state dir, no process
# (moat-init, the supervisor, the services), no state dir; then a 51st up works and answers.
# Prints the time of every cycle (diag) and the median. ENV_CYCLES=N changes the count.
# Only the environment's own bridge, veths and netns: no traffic leaves them.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

N=${ENV_CYCLES:-50}

env_setup mtcy localhost/cytest:1

# ports of their own (env-up.sh and env-events.sh look for their nc processes by port)
mkdir -p "$TEST_TMP/proj"
cat >"$TEST_TMP/proj/compose.yaml" <<'YAML'
services:
  front:
    image: localhost/cytest:1
    command: ["/bin/busybox", "nc", "-ll", "-p", "7180", "-e", "/bin/busybox", "echo", "front"]
    depends_on: [mid]
    ports: ["17180:7180"]
  mid:
    image: localhost/cytest:1
    command: ["/bin/busybox", "nc", "-ll", "-p", "7181", "-e", "/bin/busybox", "echo", "mid"]
    depends_on: [back]
  back:
    image: localhost/cytest:1
    command: ["/bin/busybox", "sleep", "100000"]
YAML
F=(-f "$TEST_TMP/proj/compose.yaml" -p "$P")

# the leak probe (lib.sh: leftovers); the nc services are found by their command line too
ENV_PROC_CMDLINE="nc -ll -p 718[01] -e"

is "$(leftovers)" "" "nothing of '$P' before the first up"

# ---------------------------------------------------------------- N cycles
ms() { echo $((($2 - $1) / 1000000)); }
: >"$TEST_TMP/times"
failed_at="" t_all0=$(date +%s%N)
for ((c = 1; c <= N; c++)); do
	t0=$(date +%s%N)
	if ! "${MOAT[@]}" up -d "${F[@]}" >"$TEST_TMP/up.out" 2>&1; then
		failed_at="up of cycle $c: $(head -c 400 "$TEST_TMP/up.out")"
		break
	fi
	t1=$(date +%s%N)
	[ -z "$BR" ] && BR=$(jq -r '.bridge // ""' "$ENVDIR/state.json" 2>/dev/null)
	n=$("${MOAT[@]}" ps -p "$P" --format json 2>/dev/null | jq '[.[] | select(.state == "running")] | length')
	if [ "$n" != 3 ]; then
		failed_at="cycle $c: $n of 3 running after up"
		break
	fi
	t2=$(date +%s%N)
	if ! "${MOAT[@]}" down -p "$P" >"$TEST_TMP/down.out" 2>&1; then
		failed_at="down of cycle $c: $(head -c 400 "$TEST_TMP/down.out")"
		break
	fi
	t3=$(date +%s%N)
	echo "$c $(ms "$t0" "$t1") $(ms "$t2" "$t3") $(ms "$t0" "$t3")" >>"$TEST_TMP/times"
	# a cheap leak probe every cycle (links, nft, state dir); the full one every 10
	if [ -n "$(env_links)" ] || [ -d "$ENVDIR" ] ||
		nft list tables 2>/dev/null | has -w "moat-$P"; then
		failed_at="cycle $c: left after down: $(leftovers)"
		break
	fi
	if ((c % 10 == 0)); then
		l=$(leftovers)
		[ -n "$l" ] && { failed_at="cycle $c: left after down: $l"; break; }
	fi
done
t_all=$(ms "$t_all0" "$(date +%s%N)")
is "${failed_at:-none}" none "$N up -d / down cycles"
while read -r c u d t; do diag "cycle $c: up $u ms, down $d ms, cycle $t ms"; done <"$TEST_TMP/times"
med() { sort -n | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print "n/a"}'; }
diag "$N cycles in $t_all ms; medians: up $(awk '{print $2}' "$TEST_TMP/times" | med) ms, down $(awk '{print $3}' "$TEST_TMP/times" | med) ms, cycle $(awk '{print $4}' "$TEST_TMP/times" | med) ms; slowest cycle $(awk '{print $4}' "$TEST_TMP/times" | sort -n | tail -1) ms"

# ---------------------------------------------------------------- nothing left
like "$BR" "^moat-[a-z0-9]+$" "the bridge's name was recorded ($BR)"
is "$(env_links | tr '\n' ' ')" "" "no bridge or veth of the environment"
is "$(nft list tables 2>/dev/null | grep -w "moat-$P" | tr '\n' ' ')" "" "no nft table of the environment"
is "$(find /sys/fs/cgroup -maxdepth 6 -type d -name "$P-*" 2>/dev/null | tr '\n' ' ')" "" "no cgroup of the environment, in any hierarchy"
is "$(awk -v p="$ENVDIR/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | tr '\n' ' ')" "" "no mount under the environment's dir"
is "$(procs_of_env | tr '\n' ' ')" "" "no process of the environment (init, services, supervisor)"
[ ! -e "$ENVDIR" ] && pass "no state dir" || fail "no state dir"
# the IPAM dir is this test's own: after down, no record may be active
is "$(jq '[.. | objects | select(.active? == true)] | length' "$MOAT_IPAM_DIR/ipam.json" 2>&1)" 0 \
	"no active address record (IPAM released)"

# ---------------------------------------------------------------- the 51st up
ok "up -d number $((N + 1))" "${MOAT[@]}" up -d "${F[@]}"
is "$("${MOAT[@]}" ps -p "$P" --format json | jq -r '[.[] | select(.state == "running")] | length')" 3 "... three running"
# the probes can fail: while up they see it (3 inits, 3 services, the supervisor; cgroups, links)
n=$(procs_of_env | wc -l)
[ "$n" -ge 7 ] && pass "the process probe sees the running environment ($n processes)" ||
	fail "the process probe sees the running environment ($n processes, expected >= 7)"
like "$(leftovers)" "^links state-dir nft cgroups.* mounts processes" "the leak probe sees every kind of thing while up"
out=""
for ((i = 0; i < 3; i++)); do
	out=$("${MOAT[@]}" exec -p "$P" front -- /bin/busybox timeout 3 /bin/busybox nc -w 2 mid 7181 </dev/null 2>&1)
	[ "$out" = mid ] && break
done
is "$out" "mid" "... front -> mid answers through the policy"
# the published port, from the host: DNAT on every local address; the bridge's (gateway) address
# is one (127.0.0.1 would need route_localnet, which moat does not set)
gw=$("${MOAT[@]}" ps -p "$P" --format json | jq -r '.[] | select(.name == "front") | .address' | sed 's/\.[0-9]*$/.1/')
out=$(timeout 4 "$MOAT_ROOTFS/bin/busybox" nc -w 2 "$gw" 17180 </dev/null 2>&1)
is "$out" "front" "... front's published port 17180 answers from the host at $gw"
out=$(timeout 4 "$MOAT_ROOTFS/bin/busybox" nc -w 2 "$gw" 17181 </dev/null 2>&1)
isnt "$out" "mid" "... mid's port is not published"
ok "down" "${MOAT[@]}" down -p "$P"
is "$(leftovers)" "" "... leaves nothing"

done_testing
