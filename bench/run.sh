#!/bin/bash
# make bench: the container lifecycle (create, start, wait, delete of /bin/true) for moat,
# crun and runc, alternating, BENCH_N times each (default 100), plus the unshare floor.
# Pass 1: all runtimes get the same cgroup treatment: cgroup v1 cgroupfs, in a private mount
# namespace where /sys/fs/cgroup holds the v1 hierarchies only (crun refuses this hybrid host).
# Pass 2: the host as it is (hybrid), for the runtimes that accept it (moat, runc).
# Env: BENCH_N, MOAT_BUILD_ROOT (default build/), MOAT_RUNTIME (the "moat" entry), CRUN, RUNC.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${MOAT_BUILD_ROOT:-$src/build}
n=${BENCH_N:-100}
moat=${MOAT_RUNTIME:-$build/moat-runtime}
crun=${CRUN:-$(command -v crun || echo /usr/bin/crun)}
runc=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
harness=$build/bench/lifecycle-bench
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
[ -x "$harness" ] || { echo "bench: $harness not built: run 'make'" >&2; exit 1; }
rootfs=$build/tests/helpers/rootfs
bash "$src/tests/lib/mkrootfs.sh" "$rootfs" "$build/tests/helpers/moat-helper"

tmp=$(mktemp -d /tmp/moat-bench.XXXXXX)
# state roots under /run, where the runtimes keep them by default (/run/runc, /run/crun, /run/moat)
state=$(mktemp -d /run/moat-bench-state.XXXXXX)
trap 'rm -rf --one-file-system "$tmp" "$state"' EXIT
mkdir -p "$tmp/bundle"
cp -a "$rootfs" "$tmp/bundle/rootfs"
jq '.process.args = ["/bin/true"]' "$src/tests/integration/config.json.in" >"$tmp/bundle/config.json"

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "machine: Linux $(uname -r), $cpu, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo "versions: $("$crun" --version | head -1), $("$runc" --version | head -1), moat: $moat"
echo "lifecycle of /bin/true (create, start, wait for init, delete), n=$n each, alternating, 3 warm-up rounds"
rc=0
echo
echo "== pass 1: pure cgroup v1 view, every runtime"
"$harness" -n "$n" -b "$tmp/bundle" -s "$state/a" -H -F "moat=$moat" "crun=$crun" "runc=$runc" || rc=$?
echo
echo "== pass 2: the hybrid host as it is (crun refuses it)"
"$harness" -n "$n" -b "$tmp/bundle" -s "$state/b" "moat=$moat" "runc=$runc" || rc=$?
[ $rc -eq 0 ] || echo "bench: some runtime failed (see above)" >&2
exit $rc
