#!/bin/bash
# mkrootfs.sh DIR [HELPER]: build the test rootfs in DIR.
#   busybox-static (applets as symlinks relative to the rootfs), /bin/moat-helper,
#   /etc/passwd and /etc/group (root, user 1000, nobody), empty /proc /sys /dev /tmp.
# Cached: rebuilt only when busybox, the helper or this script changed (key in DIR.key).
# Safe to run in parallel (flock on DIR.lock); DIR is replaced atomically.
set -euo pipefail

dir=${1:?usage: mkrootfs.sh DIR [HELPER]}
helper=${2:-${MOAT_HELPER:-}}
busybox=${MOAT_BUSYBOX:-/bin/busybox}
[ -n "$helper" ] || { echo "mkrootfs.sh: no helper (argument 2 or MOAT_HELPER)" >&2; exit 1; }
[ -x "$helper" ] || { echo "mkrootfs.sh: helper '$helper' not found (build it: ninja -C build)" >&2; exit 1; }
[ -x "$busybox" ] || { echo "mkrootfs.sh: '$busybox' not found (apt-get install busybox-static)" >&2; exit 1; }

dir=$(realpath -m "$dir")
mkdir -p "$(dirname "$dir")"
key=$(cat "$busybox" "$helper" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)

exec 9>"$dir.lock"
flock 9
if [ -d "$dir" ] && [ "$(cat "$dir.key" 2>/dev/null)" = "$key" ]; then
	exit 0
fi

tmp=$(mktemp -d "$dir.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,run,var/tmp,home/user}
chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
chmod 700 "$tmp/root"
cp "$busybox" "$tmp/bin/busybox"
cp "$helper" "$tmp/bin/moat-helper"
chmod 755 "$tmp/bin/busybox" "$tmp/bin/moat-helper"
# relative links: "bin/sh" -> "busybox", "usr/bin/awk" -> "../../bin/busybox"
"$busybox" --list-full | while read -r p; do
	case $p in bin/busybox | */*) ;; *) continue ;; esac
	[ "$p" = bin/busybox ] && continue
	d=$(dirname "$p")
	mkdir -p "$tmp/$d"
	if [ "$d" = bin ]; then
		ln -sf busybox "$tmp/$p"
	else
		up=$(echo "$d" | sed 's#[^/][^/]*#..#g')
		ln -sf "$up/bin/busybox" "$tmp/$p"
	fi
done
cat >"$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:test user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >"$tmp/etc/group" <<'G'
root:x:0:
user:x:1000:
nogroup:x:65534:
G
chown 1000:1000 "$tmp/home/user"
: >"$tmp/etc/hosts"
: >"$tmp/etc/resolv.conf"
echo moat-test >"$tmp/etc/hostname"

rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$key" >"$dir.key"
