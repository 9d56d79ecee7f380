#!/bin/bash
# Install the Debian packages moat needs to build, test, demo and benchmark.
# Idempotent: asks dpkg what is missing and runs apt-get only for that.
# Quiet on success. Add a package: one line in PACKAGES, with a comment.
set -euo pipefail

PACKAGES=(
	# --- build ---
	gcc               # the compiler the -Werror build is checked with
	clang             # second compiler; libFuzzer targets
	meson             # build system
	ninja-build       # meson's backend
	pkg-config        # meson dependency() lookups
	libjansson-dev    # JSON (config.json, state)
	libseccomp-dev    # seccomp filters
	libcap-dev        # capabilities
	libcurl4-openssl-dev # image pull (OCI distribution over HTTP(S))
	libarchive-dev    # layer unpacking, image archives
	libssl-dev        # libcrypto: sha256 of blobs
	libyaml-dev       # environment (Compose) files
	libmnl-dev        # netlink: bridges, veths, addresses, routes
	libnftables-dev   # the per-environment nftables policy
	nftables          # nft, to inspect the policy in tests
	# --- tests ---
	busybox-static    # the test rootfs userland
	jq                # config.json edits in tests/integration
	python3           # test helpers: the console-socket receiver, raw frames, a host listener
	iproute2          # ip netns / link checks
	valgrind          # leak checks of unit tests
	util-linux        # unshare, nsenter, flock, mountpoint
	# --- clients and peers (integration tests and bench) ---
	podman            # tests/integration/podman.sh
	crun              # bench peer
	runc              # bench peer, stand-in runtime for tests
	containerd        # tests/integration/containerd.sh (ctr)
	uidmap            # newuidmap/newgidmap for podman
	skopeo            # OCI archives for containerd; fills the test registry
	docker-registry   # a real registry on loopback for the image tests
	apache2-utils     # htpasswd (bcrypt) for the registry auth test
	zstd              # zstd-compressed layers in the image tests
	umoci             # bench peer: umoci unpack
	iperf3            # bench: throughput through the policy
	podman-compose    # bench/env.sh: the peer for moat up/down
	# --- vm tier ---
	qemu-system-x86   # the VMM (QEMU 7.2: microvm, PVH boot)
	e2fsprogs         # mkfs.ext4 -d: the guest's root and writable disks
	kmod              # depmod/modprobe --show-depends in scripts/vm-kernel.sh
	# --- bench ---
	hyperfine         # ad-hoc comparisons (bench/run.sh uses its own harness)
)

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

install_missing() {
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "deps.sh: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	log=$(mktemp)
	trap 'rm -f "$log"' EXIT
	if ! { apt-get update -q && apt-get install -y -q "${missing[@]}"; } </dev/null >"$log" 2>&1; then
		cat "$log" >&2
		echo "deps.sh: apt-get failed" >&2
		exit 1
	fi
}
install_missing

# The vm tier's guest kernel (unpacked under /var/lib/moat/vm/kernels, not installed).
# Quiet when it is already there; needs root to write there.
if [ "$(id -u)" -eq 0 ]; then
	out=$("$(dirname "$0")/vm-kernel.sh" 2>&1) || { echo "$out" >&2; exit 1; }
	grep -qv 'already in\|current ->' <<<"$out" && echo "$out" >&2
fi
exit 0
