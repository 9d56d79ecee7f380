#!/bin/bash
# moat run IMAGE [--] CMD...: a one-shot container from an image in a store.
# The image: the test rootfs (busybox + moat-helper) with a config of our own
# (Cmd, Env, WorkingDir), put in the store with `moat image import` of an OCI
# layout; where import is not available yet, the store is written by hand
# (one layer, image.h's layout: blobs/, layers/, images.json).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

[ -x "$MOAT_BIN" ] || skip_all "moat not built ('$MOAT_BIN')"
MKIMAGE=$_src_root/tests/lib/mkimage.sh

STORE=$TEST_TMP/store
MOAT=("$MOAT_BIN" --store "$STORE" --root "$TEST_ROOT")
IMAGE_CONFIG='{Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "FOO=image", "BAR=image"],
	Cmd: ["/bin/moat-helper", "exit", "7"], WorkingDir: "/home/user"}'

# layout_with_config LAYOUT TAG: rewrites the config of the image TAG in LAYOUT (made by mkimage.sh)
layout_with_config() {
	local dir=$1 tag=$2 md cd h
	md=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$dir/index.json")
	cd=$(jq -r .config.digest "$dir/blobs/sha256/${md#sha256:}")
	jq -c ".config = $IMAGE_CONFIG" "$dir/blobs/sha256/${cd#sha256:}" >"$dir/cfg.tmp"
	h=$(sha256sum "$dir/cfg.tmp" | cut -d' ' -f1)
	mv "$dir/cfg.tmp" "$dir/blobs/sha256/$h"
	jq -c --arg d "sha256:$h" --argjson s "$(stat -c %s "$dir/blobs/sha256/$h")" '.config.digest = $d | .config.size = $s' \
		"$dir/blobs/sha256/${md#sha256:}" >"$dir/man.tmp"
	h=$(sha256sum "$dir/man.tmp" | cut -d' ' -f1)
	mv "$dir/man.tmp" "$dir/blobs/sha256/$h"
	jq --arg old "$md" --arg d "sha256:$h" --argjson s "$(stat -c %s "$dir/blobs/sha256/$h")" \
		'.manifests |= map(if .digest == $old then .digest = $d | .size = $s else . end)' "$dir/index.json" >"$dir/ix.tmp"
	mv "$dir/ix.tmp" "$dir/index.json"
}

# store_by_hand NAME: one layer (a copy of the test rootfs) and its config, written as the store keeps them
store_by_hand() {
	local name=$1 work=$TEST_TMP/byhand cfg man ch mh lh
	mkdir -p "$STORE"/{blobs/sha256,layers/sha256,tmp} "$work"
	tar -C "$MOAT_ROOTFS" -cf "$work/layer.tar" . || return 1
	lh=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
	cp -a "$MOAT_ROOTFS" "$STORE/layers/sha256/$lh" || return 1
	cfg=$(jq -nc --arg d "sha256:$lh" "{architecture: \"amd64\", os: \"linux\", created: \"2024-01-01T00:00:00Z\",
		config: $IMAGE_CONFIG, rootfs: {type: \"layers\", diff_ids: [\$d]}}")
	printf '%s' "$cfg" >"$work/config.json"
	ch=$(sha256sum "$work/config.json" | cut -d' ' -f1)
	cp "$work/config.json" "$STORE/blobs/sha256/$ch"
	man=$(jq -nc --arg c "sha256:$ch" --argjson cs "${#cfg}" --arg l "sha256:$lh" --argjson ls "$(stat -c %s "$work/layer.tar")" \
		'{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
		  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
		  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls}]}')
	printf '%s' "$man" >"$work/manifest.json"
	mh=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
	cp "$work/manifest.json" "$STORE/blobs/sha256/$mh"
	jq -n --arg n "$name" --arg m "sha256:$mh" --arg c "sha256:$ch" --arg l "sha256:$lh" \
		'{version: 1, images: [{name: $n, manifest: $m, config: $c, layers: [$l], size: 0, created: "2024-01-01T00:00:00Z"}]}' \
		>"$STORE/images.json"
}

IMG=localhost/moat-run-test:1
layout=$TEST_TMP/layout
how=""
if bash "$MKIMAGE" layout "$layout" --tag 1 --rootfs "$MOAT_ROOTFS" >/dev/null 2>"$TEST_TMP/mkimage.err" &&
	layout_with_config "$layout" 1 &&
	"${MOAT[@]}" image import "$layout" --name "$IMG" >"$TEST_TMP/import.out" 2>&1; then
	how="moat image import"
else
	diag "moat image import is not usable ($(head -c 300 "$TEST_TMP/import.out" 2>/dev/null)); writing the store by hand"
	rm -rf "$STORE"
	store_by_hand "localhost/moat-run-test:1" || bail_out "cannot write the store by hand"
	how="a store written by hand"
fi
diag "image from $how"

containers_left() { find "$STORE/containers" -mindepth 1 -maxdepth 1 2>/dev/null; }
mounts_left() { _mounts_under "$STORE"; }

# ---------------------------------------------------------------- exit status, cmd and entrypoint
"${MOAT[@]}" run "$IMG" -- /bin/moat-helper exit 3 >"$TEST_TMP/out" 2>&1
is "$?" 3 "the command's exit status passes through (3)"
"${MOAT[@]}" run "$IMG" >"$TEST_TMP/out" 2>&1
is "$?" 7 "without CMD the image's Cmd runs (exit 7)"
"${MOAT[@]}" run "$IMG" /bin/moat-helper exit 0 >"$TEST_TMP/out" 2>&1
is "$?" 0 "'--' is optional"
out=$("${MOAT[@]}" run "$IMG" -- /nonexistent 2>&1)
rc=$?
isnt "$rc" 0 "a missing command fails"
out=$("${MOAT[@]}" run no-such-image -- true 2>&1)
rc=$?
is "$rc" 125 "a missing image: exit 125"
like "$out" "image 'no-such-image' not found \(moat image pull/import it first\)" "a missing image is named"

# ---------------------------------------------------------------- env, workdir, user, hostname
out=$("${MOAT[@]}" run --env FOO=cli --env BAZ=1 "$IMG" -- /bin/moat-helper env 2>&1)
like "$out" "FOO=cli" "--env overrides the image's env"
unlike "$out" "FOO=image" "the image's FOO is replaced"
like "$out" "BAR=image" "the image's env applies"
like "$out" "BAZ=1" "--env adds"
like "$out" "HOME=/root" "HOME for root"
export MOAT_RUN_COPY=copied
out=$("${MOAT[@]}" run -e MOAT_RUN_COPY "$IMG" -- /bin/moat-helper env 2>&1)
like "$out" "MOAT_RUN_COPY=copied" "--env KEY copies our value"
out=$("${MOAT[@]}" run "$IMG" -- /bin/moat-helper cwd 2>&1)
is "$out" "/home/user" "the image's WorkingDir"
out=$("${MOAT[@]}" run --workdir /tmp "$IMG" -- /bin/moat-helper cwd 2>&1)
is "$out" "/tmp" "--workdir"
out=$("${MOAT[@]}" run --workdir /new/dir "$IMG" -- /bin/moat-helper cwd 2>&1)
is "$out" "/new/dir" "a missing --workdir is created"
out=$("${MOAT[@]}" run --user 1000 "$IMG" -- /bin/moat-helper id 2>&1)
like "$out" "uid=1000" "--user 1000: uid"
like "$out" "gid=1000" "--user 1000: gid from the image's /etc/passwd"
out=$("${MOAT[@]}" run --user user "$IMG" -- /bin/moat-helper env 2>&1)
like "$out" "HOME=/home/user" "--user by name: HOME from the image's /etc/passwd"
out=$("${MOAT[@]}" run --user nosuchuser "$IMG" -- true 2>&1)
rc=$?
is "$rc" 125 "--user of an unknown name: exit 125"
like "$out" "user 'nosuchuser' not found" "the unknown user is named"
out=$("${MOAT[@]}" run --hostname ci-box "$IMG" -- /bin/moat-helper hostname 2>&1)
like "$out" "hostname=ci-box" "--hostname"
out=$("${MOAT[@]}" run "$IMG" -- /bin/moat-helper hostname 2>&1)
like "$out" "hostname=[0-9a-f]{12}"$'\n' "the default hostname is a short id"

# ---------------------------------------------------------------- volumes
vol=$TEST_TMP/vol
mkdir -p "$vol"
echo host-data >"$vol/in.txt"
out=$("${MOAT[@]}" run -v "$vol:/data" "$IMG" -- /bin/moat-helper read /data/in.txt 2>&1)
like "$out" "host-data" "--volume: a host dir is visible"
"${MOAT[@]}" run -v "$vol:/data" "$IMG" -- /bin/moat-helper write /data/out.txt written >/dev/null 2>&1
is "$(cat "$vol/out.txt" 2>/dev/null)" "written" "--volume: writes reach the host"
rm -f "$vol/out.txt"
"${MOAT[@]}" run -v "$vol:/data:ro" "$IMG" -- /bin/moat-helper write /data/out.txt nope >"$TEST_TMP/out" 2>&1
isnt "$?" 0 "--volume :ro refuses writes"
ok "--volume :ro: nothing written on the host" test ! -e "$vol/out.txt"
out=$("${MOAT[@]}" run -v "$TEST_TMP/missing:/data" "$IMG" -- true 2>&1)
rc=$?
is "$rc" 125 "--volume with a missing source: exit 125"
like "$out" "does not exist" "the missing source is named"

# ---------------------------------------------------------------- limits
out=$("${MOAT[@]}" run --memory 64m "$IMG" -- /bin/sh -c \
	'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max' 2>&1)
is "$out" "$((64 << 20))" "--memory read back in the cgroup"
out=$("${MOAT[@]}" run --pids-limit 32 "$IMG" -- /bin/sh -c \
	'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max' 2>&1)
is "$out" "32" "--pids-limit read back in the cgroup"
out=$("${MOAT[@]}" run --cpus 1.5 "$IMG" -- /bin/sh -c \
	'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max' 2>&1)
like "$out" "^150000" "--cpus 1.5: quota 150000"
out=$("${MOAT[@]}" run --memory lots "$IMG" -- true 2>&1)
rc=$?
is "$rc" 125 "--memory lots: exit 125"
like "$out" "'lots'" "the bad value is named"

# ---------------------------------------------------------------- network
out=$("${MOAT[@]}" run --network none "$IMG" -- /bin/sh -c 'ls /sys/class/net' 2>&1)
is "$(echo $out)" "lo" "--network none: only lo"
out=$("${MOAT[@]}" run --network none "$IMG" -- /bin/sh -c 'cat /sys/class/net/lo/operstate; ip -o link show lo 2>/dev/null' 2>&1)
like "$out" "UP|unknown" "--network none: lo is up"
out=$("${MOAT[@]}" run "$IMG" -- /bin/sh -c 'ls /sys/class/net' 2>&1)
is "$(echo $out)" "lo" "--network default: a private network with lo (for now)"
host_ifs=$(ls /sys/class/net | sort | tr '\n' ' ')
out=$("${MOAT[@]}" run --network host "$IMG" -- /bin/sh -c 'ls /sys/class/net | sort | tr "\n" " "' 2>&1)
is "$out" "$host_ifs" "--network host: the host's interfaces"

# ---------------------------------------------------------------- nothing left behind, --rm=false
is "$(containers_left)" "" "--rm: no container dir left"
is "$(mounts_left)" "" "--rm: no mount left under the store"
is "$(ls "$TEST_ROOT" 2>/dev/null | grep moat-run)" "" "--rm: no runtime state left"
cg=$(find /sys/fs/cgroup -maxdepth 4 -type d -name 'moat-run-*' 2>/dev/null | head -3)
is "$cg" "" "--rm: no cgroup left"

"${MOAT[@]}" run --rm=false --name "kept-$$" "$IMG" -- /bin/moat-helper exit 0 >"$TEST_TMP/out" 2>&1
is "$?" 0 "--rm=false runs"
ok "--rm=false keeps the container dir" test -f "$STORE/containers/kept-$$/config.json"
ok "--rm=false keeps the runtime state" test -d "$TEST_ROOT/kept-$$"
"${MOAT[@]}" runtime --root "$TEST_ROOT" delete --force "kept-$$" >/dev/null 2>&1
umount "$STORE/containers/kept-$$/rootfs" 2>/dev/null
rm -rf --one-file-system "$STORE/containers/kept-$$"

# interrupted: SIGTERM to moat run while the command waits -> forwarded, then cleanup.
# (The command is the container's pid 1: like any pid 1 it only gets the signals it handles,
# as with docker run; moat-helper signals handles them all.)
"${MOAT[@]}" run --name "sig-$$" "$IMG" -- /bin/moat-helper signals >"$TEST_TMP/sig.out" 2>&1 &
pid=$!
for _ in $(seq 1 200); do grep -q ready "$TEST_TMP/sig.out" 2>/dev/null && break; sleep 0.05; done
kill -TERM "$pid"
wait "$pid"
rc=$?
is "$rc" 0 "SIGTERM forwarded: the command handled it and exited 0"
like "$(cat "$TEST_TMP/sig.out")" "SIGTERM" "the command got SIGTERM"
ok "interrupted: no container dir left" test ! -e "$STORE/containers/sig-$$"
ok "interrupted: no runtime state left" test ! -e "$TEST_ROOT/sig-$$"
is "$(mounts_left)" "" "interrupted: no mount left"

# killed from outside: 128+9 passes through, and cleanup still happens
"${MOAT[@]}" run --name "kill-$$" "$IMG" -- /bin/moat-helper sleep 30 >/dev/null 2>&1 &
pid=$!
# (the state file, not `moat-runtime state`: that does not see a container of `run` while it runs)
cpid=""
for _ in $(seq 1 200); do
	cpid=$(jq -r '.pid // empty' "$TEST_ROOT/kill-$$/state.json" 2>/dev/null)
	[ -n "$cpid" ] && [ "$cpid" != 0 ] && grep -q moat-helper "/proc/$cpid/cmdline" 2>/dev/null && break
	sleep 0.05
done
kill -KILL "$cpid"
wait "$pid"
is "$?" 137 "death by SIGKILL: 128+9"
ok "killed: no container dir left" test ! -e "$STORE/containers/kill-$$"
ok "killed: no runtime state left" test ! -e "$TEST_ROOT/kill-$$"

# a bundle step that fails half way (an unknown user, after the rootfs is mounted)
"${MOAT[@]}" run --name "half-$$" --user nosuch "$IMG" -- true >/dev/null 2>&1
ok "a failed bundle step leaves no container dir" test ! -e "$STORE/containers/half-$$"
is "$(mounts_left)" "" "a failed bundle step leaves no mount"

out=$("${MOAT[@]}" run --detach "$IMG" -- true 2>&1)
like "$out" "not supported" "--detach is refused, saying so"

done_testing
