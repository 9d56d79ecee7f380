#!/bin/bash
# The moat demo (`make demo`): one container through build/moat-runtime, the runc-compatible face.
# Makes a bundle from the test rootfs, starts a container that prints its hostname, its pid (1)
# and its capabilities, shows `state` and `list`, then kills and deletes it.
# MOAT_RUNTIME=/usr/sbin/runc runs the same demo with another runtime.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${MOAT_BUILD_ROOT:-$src/build}
runtime=${MOAT_RUNTIME:-$build/moat-runtime}
helper=$build/tests/helpers/moat-helper
rootfs=$build/tests/helpers/rootfs
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (containers need it)" >&2; exit 1; }
[ -x "$runtime" ] || { echo "demo: '$runtime' not found: run 'make' first" >&2; exit 1; }
bash "$src/tests/lib/mkrootfs.sh" "$rootfs" "$helper"

tmp=$(mktemp -d /tmp/moat-demo.XXXXXX)
root=$tmp/state
id=demo-$$
cleanup() {
	"$runtime" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

if [ -t 1 ]; then bold=$'\033[1m' off=$'\033[0m'; else bold='' off=''; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$off" | sed "s|$runtime --root $root|moat-runtime|"; "$@"; }

mkdir -p "$tmp/bundle"
cp -a "$rootfs" "$tmp/bundle/rootfs"
jq --arg h "moat-demo" '.hostname = $h | .process.args = ["/bin/sh", "-c",
	"echo \"hello from $(hostname), I am pid $$\"; /bin/moat-helper caps; exec /bin/moat-helper sleep 600"]' \
	"$src/tests/integration/config.json.in" >"$tmp/bundle/config.json"
echo "bundle: $tmp/bundle (busybox + moat-helper rootfs, config.json from tests/integration/config.json.in)"

rt=("$runtime" --root "$root")
step "${rt[@]}" create --bundle "$tmp/bundle" "$id"
step "${rt[@]}" state "$id"
step "${rt[@]}" start "$id"
sleep 0.5
step "${rt[@]}" state "$id"
step "${rt[@]}" list
step "${rt[@]}" kill "$id" KILL
for _ in $(seq 50); do
	[ "$("${rt[@]}" state "$id" | jq -r .status)" = stopped ] && break
	sleep 0.1
done
step "${rt[@]}" delete "$id"
step "${rt[@]}" list
echo
echo "demo: done ($(basename "$(readlink -f "$runtime")"))"
