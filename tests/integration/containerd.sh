#!/bin/bash
# containerd + ctr with --runc-binary $MOAT_RUNTIME (through containerd-shim-runc-v2):
# an OCI archive of the test rootfs is imported, containers run, output and exit status checked.
# containerd is our own: its config, root, state and sockets live in $TEST_TMP; it is stopped by pid.
. "$(dirname "$0")/lib.sh"

command -v containerd >/dev/null || skip_all "containerd is not installed (scripts/deps.sh)"
command -v ctr >/dev/null || skip_all "ctr is not installed (scripts/deps.sh)"
command -v containerd-shim-runc-v2 >/dev/null || skip_all "containerd-shim-runc-v2 is not installed"
runtime=$(command -v "$MOAT_RUNTIME") || skip_all "runtime '$MOAT_RUNTIME' not found"
runtime=$(realpath -s "$runtime")

C=$TEST_TMP/containerd
mkdir -p "$C"/{root,state}
ns=moat-test-$$-$RANDOM
sock=$C/containerd.sock
cat >"$C/config.toml" <<T
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
T

# shims put their sockets under /run/containerd/s: remove what we created
pre_run_containerd=0
[ -e /run/containerd ] && pre_run_containerd=1
cpid=
containerd_cleanup() {
	local id
	if [ -n "$cpid" ]; then
		for id in $(ctr -a "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
			ctr -a "$sock" -n "$ns" tasks kill -s KILL "$id" >/dev/null 2>&1
			ctr -a "$sock" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1
		done
		for id in $(ctr -a "$sock" -n "$ns" containers ls -q 2>/dev/null); do
			ctr -a "$sock" -n "$ns" containers delete "$id" >/dev/null 2>&1
		done
		kill -TERM "$cpid" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.05; done
		kill -KILL "$cpid" 2>/dev/null
		wait "$cpid" 2>/dev/null
		cpid=
	fi
	for d in $(find /sys/fs/cgroup -maxdepth 3 -depth -type d -path "*/$ns*" 2>/dev/null); do rmdir "$d" 2>/dev/null; done
	# the shim runs the runtime with --root /run/containerd/runc/<namespace>
	rm -rf --one-file-system "/run/containerd/runc/$ns"
	if [ $pre_run_containerd = 0 ] && [ -d /run/containerd ]; then
		rmdir /run/containerd/s /run/containerd/fifo /run/containerd/runc /run/containerd 2>/dev/null
	fi
	return 0
}
trap 'containerd_cleanup; _lib_exit' EXIT

containerd --config "$C/config.toml" --log-level warn </dev/null >"$C/containerd.log" 2>&1 &
cpid=$!
containerd_pid=$cpid
for _ in $(seq 200); do
	[ -S "$sock" ] && ctr -a "$sock" version >/dev/null 2>&1 && break
	kill -0 "$cpid" 2>/dev/null || break
	sleep 0.05
done
if ! ctr -a "$sock" version >/dev/null 2>&1; then
	fail "containerd starts"
	sed 's/^/#   /' "$C/containerd.log" | tail -20
	done_testing
fi
pass "containerd starts with its own config, root, state and socket"
c() { ctr -a "$sock" -n "$ns" "$@"; }

# --- an OCI archive of the test rootfs, written by hand (one uncompressed layer)
img=localhost/moat-test:latest
O=$TEST_TMP/oci
mkdir -p "$O/blobs/sha256"
blob() { # FILE MEDIATYPE -> descriptor json; moves FILE into blobs/
	local d s
	d=$(sha256sum "$1" | cut -d' ' -f1)
	s=$(stat -c %s "$1")
	mv "$1" "$O/blobs/sha256/$d"
	jq -cn --arg m "$2" --arg d "sha256:$d" --argjson s "$s" '{mediaType: $m, digest: $d, size: $s}'
}
tar -C "$MOAT_ROOTFS" -cf "$O/layer.tar" . || bail_out "tar of the rootfs"
diffid=sha256:$(sha256sum "$O/layer.tar" | cut -d' ' -f1)
layer=$(blob "$O/layer.tar" application/vnd.oci.image.layer.v1.tar)
jq -cn --arg d "$diffid" '{architecture: "amd64", os: "linux",
	config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh"]},
	rootfs: {type: "layers", diff_ids: [$d]}}' >"$O/config.json"
config=$(blob "$O/config.json" application/vnd.oci.image.config.v1+json)
jq -cn --argjson c "$config" --argjson l "$layer" \
	'{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: $c, layers: [$l]}' >"$O/manifest.json"
manifest=$(blob "$O/manifest.json" application/vnd.oci.image.manifest.v1+json)
jq -cn --argjson m "$manifest" --arg n "$img" \
	'{schemaVersion: 2, manifests: [$m + {annotations: {"io.containerd.image.name": $n, "org.opencontainers.image.ref.name": "latest"}}]}' >"$O/index.json"
echo '{"imageLayoutVersion": "1.0.0"}' >"$O/oci-layout"
tar -C "$O" -cf "$TEST_TMP/image.tar" oci-layout index.json blobs || bail_out "tar of the OCI archive"

ok "ctr images import of an OCI archive" c images import "$TEST_TMP/image.tar"
like "$(c images ls -q 2>&1)" "$img" "the image is listed"

newid_var id hostname
out=$(c run --rm --runc-binary "$runtime" "$img" "$id" /bin/moat-helper hostname </dev/null 2>&1)
is "$?" 0 "ctr run --rm exits 0"
like "$out" "hostname=" "the helper runs (ctr sets no hostname: the uts namespace starts as a copy)"

newid_var id pid
out=$(c run --rm --runc-binary "$runtime" "$img" "$id" /bin/moat-helper pid </dev/null 2>&1)
like "$out" "^pid=1 ppid=0" "the process is pid 1"

newid_var id status
c run --rm --runc-binary "$runtime" "$img" "$id" /bin/moat-helper exit 5 </dev/null >/dev/null 2>&1
is "$?" 5 "ctr run passes the exit status through"

newid_var id caps
out=$(c run --rm --runc-binary "$runtime" "$img" "$id" /bin/moat-helper caps </dev/null 2>&1)
like "$out" "CapBnd:	00000000a80425fb" "containerd's default capability set applies"

# --- detached task, exec, kill
newid_var id detached
ok "ctr run -d" c run -d --runc-binary "$runtime" "$img" "$id" /bin/moat-helper sleep 600
like "$(c tasks ls 2>&1)" "$id +[0-9]+ +RUNNING" "the task is RUNNING"
out=$(c tasks exec --exec-id e1 "$id" /bin/moat-helper pid </dev/null 2>&1)
is "$?" 0 "tasks exec exits 0"
like "$out" "^pid=[0-9]+ ppid=0" "exec enters the container's pid namespace"
unlike "$out" "^pid=1 " "the exec'd process is not pid 1"
c tasks exec --exec-id e2 "$id" /bin/moat-helper exit 4 </dev/null >/dev/null 2>&1
is "$?" 4 "tasks exec passes the exit status through"
ok "tasks kill -s KILL" c tasks kill -s KILL "$id"
for _ in $(seq 100); do [[ "$(c tasks ls 2>&1)" =~ $id\ +[0-9]+\ +STOPPED ]] && break; sleep 0.05; done
like "$(c tasks ls 2>&1)" "$id +[0-9]+ +STOPPED" "the task is STOPPED after kill"
ok "tasks delete" c tasks delete "$id"
ok "containers delete" c containers delete "$id"
is "$(c containers ls -q 2>&1)" "" "no container left in containerd"
is "$(find /sys/fs/cgroup -maxdepth 3 -type d -path "*/$ns/*" 2>/dev/null)" "" "no container cgroup left"

is "$(ls -A "/run/containerd/runc/$ns" 2>/dev/null)" "" "no runtime state left under the shim's --root"
containerd_cleanup
ok "containerd stopped" bash -c "! kill -0 $containerd_pid 2>/dev/null"
is "$(_mounts_under "$C")" "" "no mount left under containerd's root"
done_testing
