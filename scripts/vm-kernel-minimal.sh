#!/bin/bash
# Build a minimal guest kernel for moat's vm tier from Debian's linux-source-6.12 package: x86_64,
# booted through PVH on QEMU's microvm, everything the guest needs BUILT IN (no modules at all:
# under TCG each module costs 50-600 ms at boot), nothing else. An option, not the default: the
# default guest kernel stays Debian's linux-image-6.12-cloud-amd64 (scripts/vm-kernel.sh), which
# follows Debian's security updates without a rebuild. See docs/vm.md, "A minimal kernel".
#
#   scripts/vm-kernel-minimal.sh [DEST]    DEST defaults to /var/lib/moat/vm/kernels
#
# Result:  DEST/<version>-moat-minimal/vmlinux            (ELF, for PVH)
#          DEST/<version>-moat-minimal/moat-modules       (empty: nothing to load)
#          DEST/<version>-moat-minimal/moat-modules-net   (empty)
#          DEST/<version>-moat-minimal/config             (the kernel's .config)
#          DEST/<version>-moat-minimal/lib/modules/<version>-moat-minimal/modules.dep (empty)
# Use it with  MOAT_VM_KERNEL=DEST/<version>-moat-minimal moat run --isolation vm ...
# `current` is NOT repointed. A version already built is reused (MOAT_KMIN_FORCE=1 rebuilds).
# The build runs in $MOAT_KMIN_WORK (default /var/tmp/moat-kmin, ~1.5 GB while it runs; removed
# after), with $MOAT_KMIN_JOBS jobs (default: nproc). Installs the build's dependencies with
# apt-get (not part of scripts/deps.sh: CI does not build kernels). Takes ~15-40 min on 2 cores.
set -euo pipefail

SRC_PKG=linux-source-6.12
BUILD_DEPS=(bc bison flex libelf-dev libssl-dev make gcc libc6-dev xz-utils)
DEST=${1:-/var/lib/moat/vm/kernels}
WORK=${MOAT_KMIN_WORK:-/var/tmp/moat-kmin}
JOBS=${MOAT_KMIN_JOBS:-$(nproc)}
SUFFIX=-moat-minimal

die() { echo "vm-kernel-minimal.sh: $*" >&2; exit 1; }
say() { echo "vm-kernel-minimal.sh: $*"; }
[ "$(id -u)" -eq 0 ] || die "run as root (apt-get install, and DEST is usually root's)"

# What the guest needs, all built in. Dependencies are listed too: scripts/config does not
# resolve them, and every option here is checked to be =y after olddefconfig.
ENABLE=(
	# the machine: x86_64 SMP guest booted through PVH, discovered with ACPI (microvm, pcie=on)
	64BIT SMP HYPERVISOR_GUEST PARAVIRT KVM_GUEST PVH ACPI
	PCI PCI_MSI PCI_MMCONFIG
	HIGH_RES_TIMERS NO_HZ_IDLE
	# the kernel's basics (tinyconfig turns them off)
	PRINTK BUG MULTIUSER POSIX_TIMERS FUTEX EPOLL SIGNALFD TIMERFD EVENTFD SHMEM AIO
	FILE_LOCKING ADVISE_SYSCALLS MEMBARRIER RSEQ FHANDLE SYSVIPC POSIX_MQUEUE SYSCTL
	PROC_SYSCTL INOTIFY_USER
	BINFMT_ELF BINFMT_SCRIPT BLK_DEV_INITRD
	# what the OCI process may ask for
	SECCOMP SECCOMP_FILTER NAMESPACES UTS_NS IPC_NS PID_NS NET_NS CGROUPS
	# devices: the console and control port (virtio-serial), disks, shares, network
	TTY UNIX98_PTYS VIRTIO_MENU VIRTIO VIRTIO_PCI VIRTIO_CONSOLE HVC_DRIVER
	BLOCK BLK_DEV VIRTIO_BLK
	NET INET UNIX NETDEVICES NET_CORE VIRTIO_NET
	# filesystems: root (ext4 + overlay), binds (virtiofs), /proc /sys /dev /dev/pts, tmpfs
	EXT4_FS OVERLAY_FS FUSE_FS VIRTIO_FS PROC_FS SYSFS DEVTMPFS TMPFS
	# run fast: -O2 (TCG executes every instruction)
	CC_OPTIMIZE_FOR_PERFORMANCE
)
DISABLE=(
	MODULES CC_OPTIMIZE_FOR_SIZE LOCALVERSION_AUTO
	# the initramfs moat writes is uncompressed
	RD_GZIP RD_BZIP2 RD_LZMA RD_XZ RD_LZO RD_LZ4 RD_ZSTD
	# ACPI drivers the guest has no use for (microvm has no battery, fan, thermal zone, ...)
	ACPI_AC ACPI_BATTERY ACPI_BUTTON ACPI_FAN ACPI_THERMAL ACPI_PROCESSOR ACPI_TABLE_UPGRADE
	VIRTIO_PCI_LEGACY
	# defaults the guest has no use for: no keyboard, mouse, screen or USB (and no i8042 probe),
	# no IPv6-in-IPv4 tunnel (sit0 would show beside eth0), no wireless
	VT VGA_CONSOLE INPUT SERIO HID_SUPPORT USB_SUPPORT VGA_ARB
	IPV6_SIT INET_DIAG WIRELESS WLAN ETHERNET
)

mkdir -p "$WORK"
tree=$WORK/src
# the source tree goes (MOAT_KMIN_KEEP=1 keeps it, to iterate on the configuration); the logs
# stay after a failure
cleanup() {
	local rc=$?
	[ -z "${MOAT_KMIN_KEEP:-}" ] || return 0
	rm -rf "$tree" "$WORK/out.tmp"
	if [ "$rc" -eq 0 ]; then
		rm -f "$WORK/apt.log" "$WORK/build.log"
		rmdir "$WORK" 2>/dev/null || true
	fi
}
trap cleanup EXIT
say "installing $SRC_PKG and the build's dependencies"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$SRC_PKG" "${BUILD_DEPS[@]}" \
	>"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; die "apt-get install $SRC_PKG failed (try apt-get update)"; }
tarball=$(dpkg -L "$SRC_PKG" | grep -m1 '/usr/src/linux-source-.*\.tar\.xz$') || die "$SRC_PKG ships no tarball"
pkgver=$(dpkg-query -W -f '${Version}' "$SRC_PKG")

version=${pkgver%%-*}$SUFFIX # 6.12.117-1~deb12u1 -> 6.12.117-moat-minimal (checked after the build)
dir=$DEST/$version
if [ -z "${MOAT_KMIN_FORCE:-}" ] && [ -s "$dir/vmlinux" ] && [ -f "$dir/moat-modules" ]; then
	say "$version already in $dir (MOAT_KMIN_FORCE=1 rebuilds)"
	exit 0
fi

if [ -n "${MOAT_KMIN_KEEP:-}" ] && [ -f "$tree/Makefile" ]; then
	say "reusing the source tree in $tree"
else
	rm -rf "$tree"
	mkdir -p "$tree"
	say "unpacking $tarball ($SRC_PKG $pkgver)"
	tar -xJf "$tarball" -C "$tree" --strip-components=1
fi
cd "$tree"
[ "$(make -s kernelversion)$SUFFIX" = "$version" ] ||
	die "the tree is Linux $(make -s kernelversion), not what $SRC_PKG $pkgver names ($version)"

say "configuring $version: tinyconfig + ${#ENABLE[@]} options"
make -s tinyconfig >/dev/null
args=()
for o in "${ENABLE[@]}"; do args+=(--enable "$o"); done
for o in "${DISABLE[@]}"; do args+=(--disable "$o"); done
scripts/config "${args[@]}" --set-str LOCALVERSION "$SUFFIX" --set-str INITRAMFS_SOURCE ""
make -s olddefconfig >/dev/null
# a second pass: options whose dependencies came with the first are offered only now
scripts/config "${args[@]}"
make -s olddefconfig >/dev/null
missing=()
for o in "${ENABLE[@]}"; do
	grep -qx "CONFIG_$o=y" .config || missing+=("$o")
done
[ "${#missing[@]}" -eq 0 ] || die "options not enabled (a dependency is missing): ${missing[*]}"
grep -qx 'CONFIG_MODULES=y' .config && die "CONFIG_MODULES is still set"
for o in "${DISABLE[@]}"; do # some are selected by others (ACPI_PROCESSOR by ACPI on x86)
	grep -qx "CONFIG_$o=y" .config && say "note: CONFIG_$o stays on (selected by another option)"
done

say "building vmlinux with $JOBS jobs (log: $WORK/build.log)"
start=$(date +%s)
if ! make -j"$JOBS" vmlinux >"$WORK/build.log" 2>&1; then
	tail -n 30 "$WORK/build.log" >&2
	die "the build failed (log: $WORK/build.log)"
fi
[ "$(make -s kernelrelease)" = "$version" ] || die "kernelrelease '$(make -s kernelrelease)' is not '$version'"
say "built in $(($(date +%s) - start)) s"

out=$WORK/out.tmp
rm -rf "$out"
mkdir -p "$out/lib/modules/$version"
cp vmlinux "$out/vmlinux"
cp .config "$out/config"
: >"$out/moat-modules"
: >"$out/moat-modules-net"
: >"$out/lib/modules/$version/modules.dep"
printf 'Built by scripts/vm-kernel-minimal.sh from %s %s (%s), %s\n' \
	"$SRC_PKG" "$pkgver" "$(basename "$tarball")" "$(date -u +%F)" >"$out/SOURCE"
mkdir -p "$DEST"
rm -rf "$dir"
mv "$out" "$dir"
say "installed $dir (vmlinux $(stat -c %s "$dir/vmlinux") bytes, no modules)"
say "use it with: MOAT_VM_KERNEL=$dir moat run --isolation vm ..."
