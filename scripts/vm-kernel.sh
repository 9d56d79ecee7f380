#!/bin/bash
# Fetch the guest kernel of moat's vm tier: Debian's 6.12 cloud kernel, unpacked (never
# installed into /boot), with an uncompressed vmlinux for PVH boot and the ordered list of
# module files the guest init loads (virtio_blk, overlay; virtio_net for a VM with a network).
#
#   scripts/vm-kernel.sh [DEST]        DEST defaults to /var/lib/moat/vm/kernels
#
# Result:  DEST/<version>/boot/vmlinuz-<version>        (from the .deb)
#          DEST/<version>/lib/modules/<version>/...     (from the .deb, + depmod output)
#          DEST/<version>/vmlinux                        (ELF, extracted from the zstd vmlinuz)
#          DEST/<version>/moat-modules                   (module files relative to DEST/<version>, load order)
#          DEST/<version>/moat-modules-net               (the same for the network: loaded only by a VM that has one)
#          DEST/current -> <version>
# Idempotent: a version already complete is reused; `current` is repointed.
# Needs: apt-get, dpkg-deb, depmod/modprobe (kmod), zstdcat (zstd).
set -euo pipefail

META=linux-image-6.12-cloud-amd64   # the meta package: follows Debian's security updates
MODULES=(virtio_blk overlay)        # what the guest loads (ext4, virtio_pci, virtio_console are built in)
NET_MODULES=(virtio_net)            # what a guest with a network loads too
DEST=${1:-/var/lib/moat/vm/kernels}

die() { echo "vm-kernel.sh: $*" >&2; exit 1; }
for t in apt-cache apt-get dpkg-deb depmod modprobe zstdcat; do
	command -v "$t" >/dev/null || die "'$t' not found (run scripts/deps.sh)"
done

# The package behind the meta package, e.g. linux-image-6.12.117+deb12-cloud-amd64.
pkg=$(apt-cache depends "$META" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
[ -n "$pkg" ] || die "cannot resolve '$META' with apt-cache depends (is bookworm-security in the apt sources? try apt-get update)"
version=${pkg#linux-image-}
dir=$DEST/$version

# Module files in load order (dependencies and softdeps first), relative to ROOT: LIST <- MODULES...
module_list() {
	local root=$1 list=$2 m
	shift 2
	for m in "$@"; do
		modprobe -d "$root" -S "$version" --show-depends "$m"
	done | awk '$1 == "insmod" { print $2 }' \
		| sed "s|^$root/||" | awk '!seen[$0]++' >"$list.tmp"
	for m in "$@"; do
		grep -q "/${m}\.ko" "$list.tmp" || die "module '$m' not found in $pkg"
	done
	mv "$list.tmp" "$list"
}

if [ -s "$dir/vmlinux" ] && [ -s "$dir/moat-modules" ] && [ -f "$dir/lib/modules/$version/modules.dep" ]; then
	echo "vm-kernel.sh: $pkg already in $dir"
	# an install made before the network modules were listed gets its list
	[ -s "$dir/moat-modules-net" ] || module_list "$dir" "$dir/moat-modules-net" "${NET_MODULES[@]}"
else
	mkdir -p "$DEST"
	tmp=$(mktemp -d "$DEST/.tmp-XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	chmod 755 "$tmp"    # apt-get download runs as _apt when it can read the dir
	echo "vm-kernel.sh: downloading $pkg"
	if ! (cd "$tmp" && apt-get download -q "$pkg") >"$tmp/apt.log" 2>&1; then
		cat "$tmp/apt.log" >&2
		die "apt-get download '$pkg' failed (the package behind '$META'; try apt-get update)"
	fi
	deb=$(ls "$tmp"/*.deb)
	mkdir "$tmp/root"
	dpkg-deb -x "$deb" "$tmp/root"
	vmlinuz=$tmp/root/boot/vmlinuz-$version
	[ -f "$vmlinuz" ] || die "'$deb' has no boot/vmlinuz-$version"

	# The .deb ships no modules.dep (its postinst makes it).
	depmod -b "$tmp/root" "$version"

	# vmlinuz is a bzImage whose payload is zstd: find the first zstd frame (28 b5 2f fd).
	off=$(LC_ALL=C grep -m1 -obUaP '\x28\xb5\x2f\xfd' "$vmlinuz" | head -n1 | cut -d: -f1) || true
	[ -n "$off" ] || die "no zstd payload in '$vmlinuz' (not a zstd-compressed kernel?)"
	# zstdcat stops at the trailing bzImage data with an error after writing the ELF: judge the ELF.
	tail -c +"$((off + 1))" "$vmlinuz" | zstdcat -q >"$tmp/root/vmlinux" 2>/dev/null || true
	[ "$(head -c4 "$tmp/root/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] \
		|| die "the zstd payload of '$vmlinuz' is not an ELF vmlinux"

	module_list "$tmp/root" "$tmp/root/moat-modules" "${MODULES[@]}"
	module_list "$tmp/root" "$tmp/root/moat-modules-net" "${NET_MODULES[@]}"

	rm -rf "$dir"
	mv "$tmp/root" "$dir"
	echo "vm-kernel.sh: unpacked $pkg into $dir"
	echo "vm-kernel.sh: vmlinux $(stat -c %s "$dir/vmlinux") bytes; modules: $(cat "$dir/moat-modules" "$dir/moat-modules-net" | xargs -n1 basename | tr '\n' ' ')"
fi

ln -sfn "$version" "$DEST/current.tmp"
mv -T "$DEST/current.tmp" "$DEST/current"
echo "vm-kernel.sh: $DEST/current -> $version"
