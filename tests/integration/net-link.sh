#!/bin/bash
# net-link: an environment's network made through libmoat (bridge, veths, addresses, routes, IPAM),
# driven by `test-net-link tool` (tests/unit/test-net-link.c) inside a network namespace that stands
# in for the host, so the real host's links and routes are never touched.  Namespaces are named
# moat-t-<random>-* and removed at the end, also on failure.  Traffic only between them.
. "$(dirname "$0")/lib.sh"

TOOL=$MOAT_BUILD_ROOT/tests/test-net-link
[ -x "$TOOL" ] || skip_all "'$TOOL' not built"
command -v ip >/dev/null || skip_all "ip(8) is not installed (iproute2, scripts/deps.sh)"
if command -v ping >/dev/null; then PING=(ping)
elif busybox --list 2>/dev/null | grep -x ping >/dev/null; then PING=(busybox ping) # (not -q: an early exit of grep SIGPIPEs busybox, and pipefail makes that a miss)
else skip_all "no ping (iputils-ping or busybox-static)"; fi

R=$$-$RANDOM
H=moat-t-$R-h A=moat-t-$R-a B=moat-t-$R-b C=moat-t-$R-c
STATE=$TEST_TMP/net-state
_net_cleanup() {
	local n
	for n in $A $B $C $H; do ip netns del "$n" 2>/dev/null; done
}
trap 'rc=$?; _net_cleanup; (exit $rc); _lib_exit' EXIT

ip netns add "$H" && ip netns add "$A" && ip netns add "$B" && ip netns add "$C" ||
	bail_out "cannot create network namespaces"
in_h() { ip netns exec "$H" "$@"; }
tool() { in_h "$TOOL" tool "$@"; }
# one ping, tried 3 times: a fresh veth carries nothing until the kernel's link watch ran for it
reach() {
	local i
	for i in 1 2 3; do ip netns exec "$1" "${PING[@]}" -c1 -W1 "$2" >/dev/null 2>&1 && return 0; done
	return 1
}

ip -n "$H" link set lo up
# a route of the "host" over the first /24 of the default pool: the IPAM must skip it
ip -n "$H" route add 10.213.0.0/24 dev lo

out=$(tool up "$STATE" shop web /run/netns/"$A" 2>&1)
is "$out" "10.213.1.2 moat-shop-2" "up web: skips the host's 10.213.0.0/24, gets .2 of the next"
out=$(tool up "$STATE" shop api /run/netns/"$B" 2>&1)
is "$out" "10.213.1.3 moat-shop-3" "up api: .3"
like "$(ip -n "$H" -d link show moat-shop 2>&1)" "bridge" "bridge moat-shop exists in the host netns"
like "$(ip -n "$H" -4 addr show moat-shop 2>&1)" "inet 10.213.1.1/24" "the bridge holds the gateway"
like "$(ip -n "$A" -4 addr show eth0 2>&1)" "inet 10.213.1.2/24" "eth0 inside web has its address"
like "$(ip -n "$A" route show default 2>&1)" "default via 10.213.1.1 dev eth0" "web's default route"
ok "web reaches api" reach "$A" 10.213.1.3
ok "api reaches web" reach "$B" 10.213.1.2
ok "web reaches its gateway" reach "$A" 10.213.1.1
is "$(ip netns exec "$A" cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6)" 1 "no IPv6 inside web"
is "$(tool list moat-shop | sort | tr '\n' ' ')" "moat-shop moat-shop-2 moat-shop-3 " "links listed by prefix"

# crash: SIGKILL right after the veth of a third service is made
tool up "$STATE" shop db /run/netns/"$C" crash >/dev/null 2>&1
is "$?" 137 "up db killed midway (SIGKILL)"
like "$(tool list moat-shop | tr '\n' ' ')" "moat-shop-4" "its veth is left behind"
ok "down after the crash" tool down "$STATE" shop
is "$(tool list moat-shop)" "" "no moat-shop* link left"
like "$(ip -n "$C" link show eth0 2>&1)" "not exist" "db's eth0 went with its veth"
like "$(ip -n "$A" link show eth0 2>&1)" "not exist" "web's eth0 too"
like "$(jq -c '.envs.shop.active' "$STATE/ipam.json")" "false" "IPAM: environment released"

# a second up works and gives the same addresses
out=$(tool up "$STATE" shop api /run/netns/"$B" 2>&1)
is "$out" "10.213.1.3 moat-shop-3" "second up: api keeps .3"
out=$(tool up "$STATE" shop web /run/netns/"$A" 2>&1)
is "$out" "10.213.1.2 moat-shop-2" "second up: web keeps .2"
ok "web reaches api after the second up" reach "$A" 10.213.1.3

# another environment beside it: its own bridge and /24, no path between them
out=$(tool up "$STATE" blog web /run/netns/"$C" 2>&1)
is "$out" "10.213.2.2 moat-blog-2" "environment blog gets 10.213.2.0/24"
like "$(ip -n "$H" -o link show master moat-blog 2>&1)" "moat-blog-2" "blog's veth is a port of its own bridge"
unlike "$(ip -n "$H" -o link show master moat-shop 2>&1)" "moat-blog" "and not of shop's"
ok "blog reaches its gateway" reach "$C" 10.213.2.1
ok "down shop" tool down "$STATE" shop
ok "down blog" tool down "$STATE" blog
is "$(tool list moat- | tr '\n' ' ')" "" "no moat-* link left in the host netns"

_net_cleanup
is "$(ip netns list | grep -c "moat-t-$R-")" 0 "test namespaces removed"
done_testing
