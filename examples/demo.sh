#!/bin/bash
# The moat demo (`make demo`), in two acts.
# Act 1, one container through build/moat-runtime, the runc-compatible face: makes a bundle from
#   the test rootfs, starts a container that prints its hostname, its pid (1) and its capabilities,
#   shows `state` and `list`, then kills and deletes it. MOAT_RUNTIME=/usr/sbin/runc runs this act
#   with another runtime.
# Act 2, an environment (examples/demo/compose.yaml): web -> api -> db, three images built here
#   from busybox (scripts/demo-images.sh) into the demo's own store, `moat up -d`, `moat ps`, an
#   allowed call (web -> api, api -> db), a forbidden one (web -> db) dropped by the policy (and its
#   event when `moat events` exists), web's published port fetched from the host (wget to the
#   bridge's address, port 18080), then `moat down`. Everything is removed at the end, also when
#   a step fails. DEMO_ACT=2 runs only act 2.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${MOAT_BUILD_ROOT:-$src/build}
runtime=${MOAT_RUNTIME:-$build/moat-runtime}
moat=$build/moat
helper=$build/tests/helpers/moat-helper
rootfs=$build/tests/helpers/rootfs
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (containers need it)" >&2; exit 1; }
[ -x "$runtime" ] || { echo "demo: '$runtime' not found: run 'make' first" >&2; exit 1; }
bash "$src/tests/lib/mkrootfs.sh" "$rootfs" "$helper"

tmp=$(mktemp -d /tmp/moat-demo.XXXXXX)
root=$tmp/state
id=demo-$$
project=demo
envdir=/run/moat/env/$project
export MOAT_IPAM_DIR=$tmp/ipam
env_up=0
cleanup() {
	"$runtime" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
	if [ "$env_up" = 1 ]; then
		"$moat" --store "$tmp/store" down -p "$project" >/dev/null 2>&1 ||
			echo "demo: 'moat down -p $project' failed: see $envdir" >&2
	fi
	rm -rf --one-file-system "$tmp"
}
on_exit() {
	local rc=$?
	cleanup
	[ "$rc" -eq 0 ] || echo "demo: a step failed (exit $rc); what it made is removed" >&2
}
trap on_exit EXIT

if [ -t 1 ]; then bold=$'\033[1m' off=$'\033[0m'; else bold='' off=''; fi
# show the command (with short names for the demo's paths), then run it
show() {
	printf '\n%s$ %s%s\n' "$bold" "$*" "$off" |
		sed -e "s|$runtime --root $root|moat-runtime|" -e "s|$runtime --root $envdir/runtime|moat-runtime --root $envdir/runtime|" \
			-e "s|$moat --store $tmp/store|moat|" -e "s|$tmp/|\$DEMO/|g" -e "s|$src/||g"
}
step() { show "$@"; "$@"; }
heading() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }

if [ "${DEMO_ACT:-1}" = 1 ]; then
heading "Act 1: one container through moat-runtime (the runc-compatible face)"
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
fi

# ---------------------------------------------------------------- act 2: an environment
[ -x "$moat" ] || { echo "demo: '$moat' not found: run 'make' first" >&2; exit 1; }
heading "Act 2: an environment, web -> api -> db, each reaching only what it declares"
if [ -d "$envdir" ]; then
	echo "(an environment '$project' was left up by an earlier run: taking it down first)"
	"$moat" down -p "$project" >/dev/null
fi
M=("$moat" --store "$tmp/store")
# run SERVICE CMD...: a command inside a service (moat exec when this moat has it)
if "$moat" exec --help >/dev/null 2>&1; then
	run_in() { local svc=$1; shift; step "${M[@]}" exec -p "$project" "$svc" -- "$@"; }
	in_quiet() { local svc=$1; shift; "${M[@]}" exec -p "$project" "$svc" -- "$@"; }
	shown() { local svc=$1; shift; show "${M[@]}" exec -p "$project" "$svc" -- "$@"; }
else
	RE=("$runtime" --root "$envdir/runtime")
	run_in() { local svc=$1; shift; step "${RE[@]}" exec "$project-$svc" "$@"; }
	in_quiet() { local svc=$1; shift; "${RE[@]}" exec "$project-$svc" "$@"; }
	shown() { local svc=$1; shift; show "${RE[@]}" exec "$project-$svc" "$@"; }
fi
compose=examples/demo/compose.yaml
cd "$src"

heading "1. Build three images locally from busybox, into the demo's store (\$DEMO/store)"
echo "each is the busybox rootfs plus /www/index.html saying who it is (scripts/demo-images.sh)"
bash scripts/demo-images.sh "$tmp/img" "$rootfs" "web=web: hello from the front end" \
	"api=api: hello from the api" "db=db: 42 rows"
for s in web api db; do
	step "${M[@]}" image import "$tmp/img/layout-$s" --name "localhost/moat-demo-$s:1"
done

heading "2. The plan: who may connect to whom ($compose)"
show "${M[@]}" config -f "$compose" --format json "| jq ..."
"${M[@]}" config -f "$compose" --format json |
	jq -r '.services | to_entries[] | "  \(.key) -> \(if (.value.reaches | length) == 0 then "(nothing)" else (.value.reaches | join(", ")) end)"'

heading "3. Up: a bridge, a veth and an address per service, the nft policy, then the services"
env_up=1
step "${M[@]}" up -d -f "$compose" -p "$project"
step "${M[@]}" ps -p "$project"

heading "4. Allowed: web -> api (web depends_on api), api -> db:5432 (x-moat.allow)"
run_in web wget -qO- http://api:8080/
run_in api nc -w 2 db 5432 </dev/null

heading "4b. Published: web's port 80 is the host's port 18080 (ports: [\"18080:80\"])"
# the bridge's address (the gateway, .1 of the environment's /24) is a local address of the host
gw=$("${M[@]}" ps -p "$project" --format json | jq -r '.[] | select(.name == "web") | .address' | sed 's/\.[0-9]*$/.1/')
if command -v curl >/dev/null; then step curl -sS --max-time 3 "http://$gw:18080/"
else step wget -qO- -T 3 "http://$gw:18080/"; fi

heading "5. Forbidden: web -> db (not declared): dropped on the host side, where web cannot change it"
shown web nc -w 2 db 5432
if out=$(in_quiet web nc -w 2 db 5432 </dev/null 2>&1) && [ -n "$out" ]; then
	echo "$out"
	echo "demo: web reached db: the policy did not hold" >&2
	exit 1
fi
echo "${out:-(no answer)}  -> refused: the connection never reached db"
if "$moat" events --help >/dev/null 2>&1; then
	sleep 0.5 # the supervisor reads the NFLOG group
	step "${M[@]}" events -p "$project"
else
	echo "(the nft table inet moat-$project on the host dropped it and logged it to its NFLOG group)"
fi

heading "6. Down: stop the services, remove veths, bridge, nft table, cgroups and state"
step "${M[@]}" down -p "$project"
env_up=0
left=$(ip -o link show 2>/dev/null | grep -c "moat-$project" || true)
echo "left behind: $left links, $(nft list tables 2>/dev/null | grep -cw "moat-$project" || true) nft tables, state dir $([ -d "$envdir" ] && echo present || echo gone)"

echo
echo "demo: done ($(basename "$(readlink -f "$runtime")"))"
