#!/bin/bash
# Network policy (src/net/policy*.c, nflog.c), from outside the process:
# - the traffic scenarios of test-policy-live (a/b/c netns on a bridge: allowed, denied + NFLOG,
#   published ports, egress, IPv6, re-apply, remove), with and without br_netfilter;
# - crash recovery: a process applies a policy and is killed with SIGKILL; the tables it left are
#   found by moat_policy_list and removed, and a second apply works;
# - the host's own nft tables, links and netns are untouched (all policy tables live in netns
#   this test creates).
. "$(dirname "$0")/lib.sh"

live=$MOAT_BUILD_ROOT/tests/test-policy-live
[ -x "$live" ] || skip_all "$live is not built"
for c in nft ip busybox; do
	command -v $c >/dev/null || skip_all "$c is not installed (scripts/deps.sh)"
done

# (moat-* entries are left out: other tests bring environments up on the host in parallel)
host_tables() { nft list tables 2>&1 | grep -v ' moat-'; }
host_links() { ip -o link show | awk -F': ' '{ print $2 }' | grep -v '^moat-' | sort; }
tables_before=$(host_tables)
links_before=$(host_links)
ns=moat-t-np$$-$RANDOM
pid=
_np_cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	return 0
}
trap '_np_rc=$?; _np_cleanup; (exit $_np_rc); _lib_exit' EXIT

# --- traffic scenarios (TAP of the C test is shown on failure)
ok "policy on real traffic: test-policy-live" "$live"

# --- crash recovery
ip netns add "$ns" || bail_out "cannot create netns $ns"
start_and_kill() {
	local out=$TEST_TMP/apply.out i
	: >"$out"
	"$live" --apply-and-wait "$ns" "$1" >"$out" 2>&1 &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		grep -q applied "$out" && break
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=
	grep -q applied "$out" || { cat "$out" >&2; return 1; }
}
ok "a process applies a policy and is killed (SIGKILL)" start_and_kill crashy
tables=$(ip netns exec "$ns" nft list tables)
like "$tables" "table inet moat-crashy" "the inet table outlives the process"
like "$tables" "table bridge moat-crashy" "the bridge table outlives the process"
rec=$("$live" --recover "$ns" 2>&1)
is "$rec" "crashy" "recovery lists the leftover environment"
is "$(ip netns exec "$ns" nft list tables)" "" "recovery removed every moat table"
is "$("$live" --recover "$ns" 2>&1)" "" "a second recovery finds nothing (and does not fail)"
ok "a second apply after recovery works" start_and_kill crashy
is "$("$live" --recover "$ns" 2>&1)" "crashy" "and is recovered again"
ip netns del "$ns"

# --- nothing of the host touched or left
is "$(host_tables)" "$tables_before" "the host's nft tables are unchanged"
is "$(host_links)" "$links_before" "the host's links are unchanged"
is "$(ip netns list | grep -c '^moat-t-pol')" "0" "no test netns left"

done_testing
