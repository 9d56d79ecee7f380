#!/bin/bash
# bench/env.sh (make bench): environments.
#  1. `moat up -d` (until every service runs) and `moat down` of a 10-service environment against
#     podman-compose on the same services and the same image (busybox httpd as each service, as
#     in the issue), alternating, BENCH_ENV_ROUNDS rounds (default 3), medians, ratios.
#  2. TCP throughput between two services with iperf3: through moat's bridge and nft policy (the
#     pair allowed) against the same pair of network namespaces on a plain bridge with no nft
#     table (made here with ip(8)), alternating, BENCH_ENV_IPERF_ROUNDS rounds (default 3) of
#     BENCH_ENV_IPERF_SECS seconds (default 5), medians.
#  3. The same throughput with 100 services' rules: the pair inside an environment of 100 services
#     (98 `sleep` services with three allow rules each) against part 2's two-service environment and
#     the plain bridge, alternating, same rounds and seconds.
# Isolation: moat uses its own store, IPAM dir and project names; podman its own --root/--runroot/
# network config, and podman-compose runs inside a network namespace made here, so its bridge and
# firewall rules never touch the host's. The baseline bridge (moatb<pid>) carries no address: no
# host route. Everything is removed at the end, also on failure.
# Env: MOAT_BUILD_ROOT (default build/), BENCH_ENV_ROUNDS, BENCH_ENV_IPERF_ROUNDS, BENCH_ENV_IPERF_SECS,
# BENCH_ENV_BIG_SERVICES (default 100), BENCH_ENV_ONLY=PART[,PART...] of updown, iperf, iperf100
# (only those parts).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${MOAT_BUILD_ROOT:-$src/build}
rounds=${BENCH_ENV_ROUNDS:-3}
irounds=${BENCH_ENV_IPERF_ROUNDS:-3}
isecs=${BENCH_ENV_IPERF_SECS:-5}
moat=$build/moat
runtime=$build/moat-runtime
# podman's runtime: runc (crun 1.8 refuses this hybrid cgroup host, see bench/RESULTS.md)
runc=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
nsvc=10
[ "$(id -u)" -eq 0 ] || { echo "bench/env.sh: run as root" >&2; exit 1; }
[ -x "$moat" ] || { echo "bench/env.sh: $moat not built: run 'make'" >&2; exit 1; }
for c in iperf3 ip jq podman; do
	command -v "$c" >/dev/null || { echo "bench/env.sh: $c is not installed (scripts/deps.sh)" >&2; exit 1; }
done
have_pc=1
command -v podman-compose >/dev/null || have_pc=0
rootfs=$build/tests/helpers/rootfs
bash "$src/tests/lib/mkrootfs.sh" "$rootfs" "$build/tests/helpers/moat-helper"

tmp=$(mktemp -d /var/tmp/moat-bench-env.XXXXXX)
P=$tmp/podman
mkdir -p "$P"/{root,runroot,tmp,net} "$tmp/moat"
export MOAT_IPAM_DIR=$tmp/ipam
M=("$moat" --store "$tmp/store")
proj=benchenv$$
iproj=benchnet$$
pcproj=benchpc$$
netns=moat-b-pc-$$
nsa=moat-b-a-$$
nsb=moat-b-b-$$
br=moatb$$
cat >"$P/containers.conf" <<C
[engine]
events_logger = "file"
events_logfile_path = "$P/events.log"
cgroup_manager = "cgroupfs"
[containers]
log_driver = "k8s-file"
C
export CONTAINERS_CONF=$P/containers.conf
# podman with an isolated store, for podman-compose (--podman-path) and for us
cat >"$P/podman" <<W
#!/bin/bash
export CONTAINERS_CONF=$P/containers.conf TMPDIR=$P/tmp
exec podman --root $P/root --runroot $P/runroot --tmpdir $P/tmp --network-config-dir $P/net \\
	--storage-driver overlay --cgroup-manager cgroupfs --events-backend file --runtime $runc "\$@"
W
chmod +x "$P/podman"
pm() { "$P/podman" "$@"; }
# nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup hierarchies from podman
pc() { nsenter --net="/run/netns/$netns" podman-compose --podman-path "$P/podman" -p "$pcproj" -f "$tmp/podman-compose.yaml" "$@"; }

pre_existing=()
for d in /var/lib/containers /sys/fs/cgroup/*/libpod_parent; do [ -e "$d" ] && pre_existing+=("$d"); done
ours() { local p; for p in "${pre_existing[@]}"; do [ "$p" = "$1" ] && return 1; done; return 0; }
cleanup() {
	set +e
	"${M[@]}" down -p "$proj" >/dev/null 2>&1
	"${M[@]}" down -p "$iproj" >/dev/null 2>&1
	[ -n "${bigproj:-}" ] && "${M[@]}" down -p "$bigproj" >/dev/null 2>&1
	if [ -f "$tmp/podman-compose.yaml" ] && [ -e "/run/netns/$netns" ]; then
		pc down -t 0 >/dev/null 2>&1
	fi
	pm rm -af -t 0 >/dev/null 2>&1
	pm pod rm -af >/dev/null 2>&1
	pm rmi -af >/dev/null 2>&1
	pm system reset -f >/dev/null 2>&1
	local d
	for d in /sys/fs/cgroup/*/libpod_parent; do
		[ -d "$d" ] && ours "$d" || continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	ours /var/lib/containers && rm -rf /var/lib/containers
	[ -f "$tmp/iperf-b.pid" ] && kill "$(cat "$tmp/iperf-b.pid")" 2>/dev/null
	ip link del "$br" 2>/dev/null
	for n in "$netns" "$nsa" "$nsb"; do ip netns del "$n" 2>/dev/null; done
	mountpoint -q "$P/root/overlay" 2>/dev/null && umount "$P/root/overlay"
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }
median() { sort -n | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
secs() { awk -v m="$1" 'BEGIN {printf "%.2f s", m / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print "n/a"}'; }

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "machine: Linux $(uname -r), $cpu, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo "versions: $(podman --version) (runtime $("$runc" --version | head -1)), podman-compose $(dpkg-query -W -f='${Version}' podman-compose 2>/dev/null || echo none), $(iperf3 --version | head -1 | cut -d' ' -f1-2), moat: $moat"

# ---------------------------------------------------------------- images
bash "$src/scripts/demo-images.sh" "$tmp/img" "$rootfs" --iperf3 "svc=hello from a bench service"
"${M[@]}" image import "$tmp/img/layout-svc" --name localhost/moat-bench:1 >/dev/null
pm import -q "$tmp/img/svc.tar" localhost/moat-bench:1 >/dev/null

# the environment: s0..s9, busybox httpd as PID 1 (it ignores SIGTERM), each depending on the
# one before (a chain: start order matters); podman's copy adds ulimits (podman's default nproc
# and nofile are above this machine's hard limits and fail without CAP_SYS_RESOURCE)
gen() {
	local ul=$1 i
	echo "services:"
	for ((i = 0; i < nsvc; i++)); do
		echo "  s$i:"
		echo "    image: localhost/moat-bench:1"
		echo "    command: [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]"
		[ "$i" -gt 0 ] && echo "    depends_on: [s$((i - 1))]"
		if [ "$ul" = 1 ]; then
			echo "    ulimits:"
			echo "      nofile: {soft: 1024, hard: 1024}"
			echo "      nproc: {soft: 4096, hard: 4096}"
		fi
	done
}
gen 0 >"$tmp/compose.yaml"
gen 1 >"$tmp/podman-compose.yaml"
ip netns add "$netns"
ip -n "$netns" link set lo up

running_moat_p() { "${M[@]}" ps -p "$1" --format json | jq '[.[] | select(.state == "running")] | length'; }
running_moat() { running_moat_p "$proj"; }
running_pc() { pm ps --filter "label=io.podman.compose.project=$pcproj" --filter status=running -q | wc -l; }

only=${BENCH_ENV_ONLY:-}
# want PART: is PART to run (every part when BENCH_ENV_ONLY is empty, else those it lists)
want() { [ -z "$only" ] || [[ ,$only, == *",$1,"* ]]; }
if want updown; then
echo
echo "== up (until all $nsvc running) and down, $nsvc busybox httpd services, $rounds rounds alternating"
: >"$tmp/t"
for ((r = 1; r <= rounds; r++)); do
	t0=$(now)
	"${M[@]}" up -d -f "$tmp/compose.yaml" -p "$proj" >"$tmp/moat-up.log" 2>&1 || { cat "$tmp/moat-up.log" >&2; exit 1; }
	t1=$(now)
	n=$(running_moat)
	[ "$n" = "$nsvc" ] || { echo "bench/env.sh: moat: $n of $nsvc running after up" >&2; exit 1; }
	t2=$(now)
	"${M[@]}" down -p "$proj" >/dev/null
	t3=$(now)
	echo "moat up $(ms "$t0" "$t1") down $(ms "$t2" "$t3")" >>"$tmp/t"
	if [ "$have_pc" = 1 ]; then
		t0=$(now)
		pc up -d >"$tmp/pc-up.log" 2>&1 || { cat "$tmp/pc-up.log" >&2; exit 1; }
		t1=$(now)
		n=$(running_pc)
		[ "$n" = "$nsvc" ] || { tail -20 "$tmp/pc-up.log" >&2; echo "bench/env.sh: podman-compose: $n of $nsvc running after up" >&2; exit 1; }
		t2=$(now)
		pc down >"$tmp/pc-down.log" 2>&1 || { cat "$tmp/pc-down.log" >&2; exit 1; }
		t3=$(now)
		echo "podman-compose up $(ms "$t0" "$t1") down $(ms "$t2" "$t3")" >>"$tmp/t"
	else
		# no podman-compose: 10 plain `podman run -d` (and rm -f -t 10) as the issue's fallback
		t0=$(now)
		for ((i = 0; i < nsvc; i++)); do
			pm run -d --name "$pcproj-s$i" --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
				localhost/moat-bench:1 httpd -f -p 80 -h /www >/dev/null
		done
		t1=$(now)
		t2=$(now)
		for ((i = 0; i < nsvc; i++)); do pm rm -f "$pcproj-s$i" >/dev/null; done
		t3=$(now)
		echo "podman-run up $(ms "$t0" "$t1") down $(ms "$t2" "$t3")" >>"$tmp/t"
	fi
	tail -n 2 "$tmp/t" | sed "s/^/  round $r: /"
done
peer=$(awk 'NR == 2 {print $1}' "$tmp/t")
mu=$(awk '$1 == "moat" {print $3}' "$tmp/t" | median)
md=$(awk '$1 == "moat" {print $5}' "$tmp/t" | median)
pu=$(awk -v p="$peer" '$1 == p {print $3}' "$tmp/t" | median)
pd=$(awk -v p="$peer" '$1 == p {print $5}' "$tmp/t" | median)
echo
echo "| | moat | $peer | moat / $peer |"
echo "|---|---|---|---|"
echo "| up (all running) | $(secs "$mu") | $(secs "$pu") | **$(ratio "$mu" "$pu")** |"
echo "| down | $(secs "$md") | $(secs "$pd") | **$(ratio "$md" "$pd")** |"
echo "targets: moat up under 0.5 s, down under 1 s"
fi

# ---------------------------------------------------------------- throughput
gbps() { jq -r '.end.sum_received.bits_per_second / 1e9'; }
listening() { nsenter --net="$1" ss -Hltn "sport = :5201" | grep -q .; }
srv_netns() { echo "/proc/$("$runtime" --root "/run/moat/env/$1/runtime" state "$1-srv" | jq -r .pid)/ns/net"; }
wait_listening() { for _ in $(seq 200); do listening "$1" && return 0; sleep 0.05; done; echo "bench/env.sh: no iperf3 server in $1" >&2; exit 1; }
# iperf_moat PROJECT: one run from the project's cli to its srv, in Gbit/s
iperf_moat() { timeout $((isecs + 30)) "$runtime" --root "/run/moat/env/$1/runtime" exec "$1-cli" /usr/bin/iperf3 -c srv -p 5201 -t "$isecs" -J | gbps; }
iperf_plain() { timeout $((isecs + 30)) ip netns exec "$nsa" iperf3 -c 192.168.251.2 -p 5201 -t "$isecs" -J | gbps; }

# the two-service environment (srv, cli -> srv) and the baseline, made once for parts 2 and 3
setup_pair() {
	[ -e "$tmp/pair.up" ] && return 0
	cat >"$tmp/iperf.yaml" <<'YAML'
services:
  srv:
    image: localhost/moat-bench:1
    command: ["/usr/bin/iperf3", "-s", "-p", "5201"]
  cli:
    image: localhost/moat-bench:1
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    depends_on: [srv]
YAML
	"${M[@]}" up -d -f "$tmp/iperf.yaml" -p "$iproj" >/dev/null
	# the baseline: two netns, veths on a bridge of ours, no address on the host side
	ip netns add "$nsa"
	ip netns add "$nsb"
	ip link add "$br" type bridge
	ip link set "$br" up
	local x ns
	for x in a b; do
		ns=moat-b-$x-$$
		ip link add "mb$x$$" type veth peer name eth0 netns "$ns"
		ip link set "mb$x$$" master "$br" up
		ip -n "$ns" link set lo up
		ip -n "$ns" link set eth0 up
	done
	ip -n "$nsa" addr add 192.168.251.1/24 dev eth0
	ip -n "$nsb" addr add 192.168.251.2/24 dev eth0
	ip netns exec "$nsb" iperf3 -s -p 5201 >/dev/null 2>&1 </dev/null &
	echo $! >"$tmp/iperf-b.pid"
	wait_listening "/run/netns/$nsb"
	wait_listening "$(srv_netns "$iproj")"
	touch "$tmp/pair.up"
}

if want iperf; then
echo
echo "== TCP throughput, iperf3 -t $isecs, $irounds rounds alternating: moat policy (pair allowed) vs plain bridge, no nft"
setup_pair
: >"$tmp/tp"
for ((r = 1; r <= irounds; r++)); do
	a=$(iperf_moat "$iproj")
	b=$(iperf_plain)
	printf '  round %d: moat %.2f Gbit/s, plain bridge %.2f Gbit/s\n' "$r" "$a" "$b"
	echo "moat $a" >>"$tmp/tp"
	echo "plain $b" >>"$tmp/tp"
done
ta=$(awk '$1 == "moat" {print $2}' "$tmp/tp" | median)
tb=$(awk '$1 == "plain" {print $2}' "$tmp/tp" | median)
echo
echo "| | moat (bridge + nft policy) | plain bridge, no nft | moat / plain |"
echo "|---|---|---|---|"
printf '| TCP, one stream | %.2f Gbit/s | %.2f Gbit/s | **%s** |\n' "$ta" "$tb" "$(ratio "$ta" "$tb")"
echo "target: the policy costs at most 10 % (ratio >= 0.9)"
fi
want iperf100 || exit 0

# ---------------------------------------------------------------- throughput with 100 services' rules
# The same pair (srv running iperf3 -s, cli -> srv by depends_on) inside an environment of 100
# services: the 98 others are `sleep` services, each allowing three destinations (the next two
# sleepers on a port, and srv on a port that is not iperf3's), so the policy's pair sets hold
# ~300 entries, many of them with srv's or cli's address. Against the two-service environment
# (part 2's: a policy of one pair) and the plain bridge with no nft table, alternating.
nbig=${BENCH_ENV_BIG_SERVICES:-100}
bigproj=benchbig$$
gen_big() {
	local i n=$((nbig - 2))
	echo "services:"
	echo "  srv:"
	echo "    image: localhost/moat-bench:1"
	echo "    command: [\"/usr/bin/iperf3\", \"-s\", \"-p\", \"5201\"]"
	echo "  cli:"
	echo "    image: localhost/moat-bench:1"
	echo "    command: [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]"
	echo "    depends_on: [srv]"
	echo "    x-moat:"
	echo "      allow: [s0:80, s1:443]"
	for ((i = 0; i < n; i++)); do
		echo "  s$i:"
		echo "    image: localhost/moat-bench:1"
		echo "    command: [\"sleep\", \"1000000\"]"
		echo "    x-moat:"
		echo "      allow: [s$(((i + 1) % n)):80, s$(((i + 2) % n)):443, srv:$((9000 + i))]"
	done
}
echo
echo "== TCP throughput with $nbig services' rules: iperf3 -t $isecs, $irounds rounds alternating"
setup_pair
gen_big >"$tmp/big.yaml"
t0=$(now)
"${M[@]}" up -d -f "$tmp/big.yaml" -p "$bigproj" >"$tmp/big-up.log" 2>&1 || { cat "$tmp/big-up.log" >&2; exit 1; }
t1=$(now)
n=$(running_moat_p "$bigproj")
[ "$n" = "$nbig" ] || { echo "bench/env.sh: $n of $nbig services running" >&2; exit 1; }
wait_listening "$(srv_netns "$bigproj")"
# the policy's size, from nft itself: rules, and elements in all sets and maps (both tables)
nftj=$( { nft -j list table inet "moat-$bigproj"; nft -j list table bridge "moat-$bigproj"; } 2>/dev/null || true)
nrules=$(jq -s '[.[].nftables[] | select(.rule)] | length' <<<"$nftj" 2>/dev/null || echo "?")
nelem=$(jq -s '[.[].nftables[] | (.set // .map) | select(.) | (.elem // []) | length] | add' <<<"$nftj" 2>/dev/null || echo "?")
echo "  up of $nbig services: $(secs "$(ms "$t0" "$t1")"); policy (inet + bridge tables): $nrules rules, $nelem set/map elements"
: >"$tmp/tp100"
for ((r = 1; r <= irounds; r++)); do
	a=$(iperf_moat "$bigproj")
	b=$(iperf_moat "$iproj")
	c=$(iperf_plain)
	printf '  round %d: moat, %d services %.2f Gbit/s; moat, 2 services %.2f Gbit/s; plain bridge %.2f Gbit/s\n' "$r" "$nbig" "$a" "$b" "$c"
	echo "big $a" >>"$tmp/tp100"
	echo "pair $b" >>"$tmp/tp100"
	echo "plain $c" >>"$tmp/tp100"
done
kill "$(cat "$tmp/iperf-b.pid")" 2>/dev/null || true
ta=$(awk '$1 == "big" {print $2}' "$tmp/tp100" | median)
tb=$(awk '$1 == "pair" {print $2}' "$tmp/tp100" | median)
tc=$(awk '$1 == "plain" {print $2}' "$tmp/tp100" | median)
echo
echo "| TCP, one stream | Gbit/s (median) | / plain bridge |"
echo "|---|---|---|"
printf '| moat, %d services (%d-pair policy) | %.2f | **%s** |\n' "$nbig" "$((3 * (nbig - 2) + 3))" "$ta" "$(ratio "$ta" "$tc")"
printf '| moat, 2 services (1-pair policy) | %.2f | %s |\n' "$tb" "$(ratio "$tb" "$tc")"
printf '| plain bridge, no nft | %.2f | 1 |\n' "$tc"
echo "moat $nbig services / moat 2 services: $(ratio "$ta" "$tb"); target: the policy costs at most 10 % (ratio >= 0.9)"
