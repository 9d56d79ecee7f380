#!/bin/bash
# Named and anonymous volumes, cap_add / cap_drop, and egress by host name in an environment:
# a named volume keeps its data across down/up and goes with down -v; a new named volume starts
# with the image's content at its mount point; an anonymous one goes with down; an external one
# must exist; capabilities as Compose computes them; a host name in x-moat.egress becomes its
# addresses in the policy.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# an image with content at /seed (what a new volume mounted there starts with)
cp -a "$MOAT_ROOTFS" "$TEST_TMP/rootfs"
mkdir -p "$TEST_TMP/rootfs/seed"
echo from-the-image >"$TEST_TMP/rootfs/seed/hello"
export MOAT_VOLUMES_DIR=$TEST_TMP/volumes
env_setup mtvol localhost/voltest:1 "$TEST_TMP/rootfs"

mkdir -p "$TEST_TMP/proj"
F=(-f "$TEST_TMP/proj/compose.yaml" -p "$P")
ex() { "${MOAT[@]}" exec -p "$P" "$@"; }
cat >"$TEST_TMP/proj/compose.yaml" <<'YAML'
services:
  app:
    image: localhost/voltest:1
    command: ["sleep", "1000"]
    volumes:
      - data:/data
      - seeded:/seed
      - /scratch
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE, chown]
  plain:
    image: localhost/voltest:1
    command: ["sleep", "1000"]
    cap_drop: [NET_RAW]
    x-moat:
      egress: ["localhost:8443"]
volumes:
  data: {}
  seeded: {}
YAML

ok "up -d with volumes" "${MOAT[@]}" up -d "${F[@]}"
ex app -- /bin/sh -c 'echo kept > /data/file; echo anon > /scratch/file'
is "$(ex app -- /bin/busybox cat /seed/hello)" "from-the-image" "a new named volume starts with the image's content"
[ -f "$MOAT_VOLUMES_DIR/$P/data/_data/file" ] && pass "the named volume lives under the volumes dir" ||
	fail "the named volume lives under the volumes dir"
anon=$(find "$ENVDIR/volumes" -name file 2>/dev/null | head -1)
[ -n "$anon" ] && pass "the anonymous volume lives in the environment ($anon)" || fail "the anonymous volume lives in the environment"

# capabilities: app has exactly NET_BIND_SERVICE (10) and CHOWN (0); plain lost NET_RAW (13)
capbnd() { ex "$1" -- /bin/busybox awk '/^CapBnd:/ {print $2}' /proc/self/status; }
is "$(capbnd app)" "0000000000000401" "cap_drop ALL + cap_add: only those two"
b=$(capbnd plain)
[ -n "$b" ] && (( (16#$b >> 13) & 1 )) && fail "cap_drop NET_RAW: gone ($b)" || pass "cap_drop NET_RAW: gone ($b)"
(( (16#$b >> 0) & 1 )) && pass "... the rest of the default set stays" || fail "... the rest of the default set stays ($b)"

# egress by name: localhost resolves (from /etc/hosts) to 127.0.0.1, which is in the policy now
like "$(nft list table inet "moat-$P")" "127\.0\.0\.1" "egress 'localhost:8443': its address is in the policy"

ok "down (volumes kept)" "${MOAT[@]}" down -p "$P"
[ -f "$MOAT_VOLUMES_DIR/$P/data/_data/file" ] && pass "... the named volume is still there" ||
	fail "... the named volume is still there"
ok "up again" "${MOAT[@]}" up -d "${F[@]}"
is "$(ex app -- /bin/busybox cat /data/file)" "kept" "the named volume's data is back"
is "$(ex app -- /bin/sh -c 'cat /scratch/file 2>/dev/null || echo none')" "none" "an anonymous volume starts empty again"
ok "down -v" "${MOAT[@]}" down -v -p "$P"
[ ! -e "$MOAT_VOLUMES_DIR/$P" ] && pass "... removes the named volumes" || fail "... removes the named volumes"

# an external volume must exist; a bad capability is refused with the service named
cat >"$TEST_TMP/proj/compose.yaml" <<'YAML'
services:
  app:
    image: localhost/voltest:1
    command: ["sleep", "1000"]
    volumes: ["shared:/shared"]
volumes:
  shared: {external: true}
YAML
out=$("${MOAT[@]}" up -d "${F[@]}" 2>&1)
isnt "$?" 0 "an external volume that does not exist: refused"
like "$out" "shared" "... naming it"
cleanup_env
mkdir -p "$MOAT_VOLUMES_DIR/external/shared/_data"
echo outside >"$MOAT_VOLUMES_DIR/external/shared/_data/f"
ok "... and used once it exists" "${MOAT[@]}" up -d "${F[@]}"
is "$(ex app -- /bin/busybox cat /shared/f)" "outside" "... with its content"
ok "down -v" "${MOAT[@]}" down -v -p "$P"
[ -f "$MOAT_VOLUMES_DIR/external/shared/_data/f" ] && pass "... leaves external volumes alone" ||
	fail "... leaves external volumes alone"
cat >"$TEST_TMP/proj/compose.yaml" <<'YAML'
services:
  app:
    image: localhost/voltest:1
    command: ["sleep", "1000"]
    cap_add: [NOT_A_CAP]
YAML
out=$("${MOAT[@]}" up -d "${F[@]}" 2>&1)
isnt "$?" 0 "an unknown capability: refused"
like "$out" "app.*NOT_A_CAP" "... naming the service and the capability"
cleanup_env
done_testing
