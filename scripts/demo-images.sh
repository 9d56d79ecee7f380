#!/bin/bash
# demo-images.sh WORK ROOTFS [--iperf3] NAME=TEXT...
#   Local images for the demo and the environment bench, built from the busybox test rootfs
#   (tests/lib/mkrootfs.sh), nothing from the internet. For each NAME: WORK/rootfs-NAME, a copy of
#   ROOTFS with /www/index.html = TEXT (what the service answers) and /etc/hostname = NAME; then
#   WORK/layout-NAME, an OCI image layout of it tagged "1" (tests/lib/mkimage.sh), and
#   WORK/NAME.tar, a plain tar of the rootfs (for `podman import`).
#   --iperf3: also copy the host's iperf3 and the shared libraries it needs into each rootfs.
# Import into moat: moat --store S image import WORK/layout-NAME --name localhost/NAME:1.
# Prints nothing on success.
set -euo pipefail

die() { echo "demo-images.sh: $*" >&2; exit 1; }
[ $# -ge 3 ] || die "usage: demo-images.sh WORK ROOTFS [--iperf3] NAME=TEXT..."
work=$1 rootfs=$2
shift 2
iperf=0
if [ "${1:-}" = --iperf3 ]; then iperf=1; shift; fi
src=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$rootfs/bin/busybox" ] || die "'$rootfs' is not the test rootfs (no bin/busybox): run tests/lib/mkrootfs.sh"

# copy_with_libs BIN DEST_ROOT: BIN and every library ldd names, at the same paths
copy_with_libs() {
	local bin=$1 dest=$2 f
	for f in "$bin" $(ldd "$bin" | grep -o '/[^ ]*'); do
		mkdir -p "$dest/$(dirname "$f")"
		cp -L "$f" "$dest/$f"
	done
}

mkdir -p "$work"
for spec in "$@"; do
	name=${spec%%=*} text=${spec#*=}
	[[ $name =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "bad image name '$name'"
	r=$work/rootfs-$name
	rm -rf "$r" "$work/layout-$name"
	cp -a "$rootfs" "$r"
	mkdir -p "$r/www"
	printf '%s\n' "$text" >"$r/www/index.html"
	echo "$name" >"$r/etc/hostname"
	if [ "$iperf" = 1 ]; then
		command -v iperf3 >/dev/null || die "iperf3 is not installed (scripts/deps.sh)"
		copy_with_libs "$(command -v iperf3)" "$r"
	fi
	bash "$src/tests/lib/mkimage.sh" layout "$work/layout-$name" --tag 1 --rootfs "$r" >/dev/null
	tar -C "$r" -cf "$work/$name.tar" .
done
