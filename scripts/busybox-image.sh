#!/bin/bash
# busybox-image.sh [NAME]: a small local image to try moat with, built from Debian's
# busybox-static (tests/lib/mkrootfs.sh: busybox, its applet links, /etc basics), no registry
# needed; imported as NAME (default localhost/busybox:1) into moat's store ($MOAT_STORE, else
# moat's default).  Needs a build (make) and busybox-static (scripts/deps.sh).
#
#   scripts/busybox-image.sh && build/moat run --isolation vm localhost/busybox:1 -- uname -a
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${MOAT_BUILD_ROOT:-$src/build}
name=${1:-localhost/busybox:1}
moat=$build/moat
helper=$build/tests/helpers/moat-helper
die() { echo "busybox-image.sh: $*" >&2; exit 1; }
[ -x "$moat" ] || die "'$moat' is not built: run make"
[ -x "$helper" ] || die "'$helper' is not built: run make"
store=()
[ -n "${MOAT_STORE:-}" ] && store=(--store "$MOAT_STORE")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/moat-busybox.XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT
bash "$src/tests/lib/mkrootfs.sh" "$tmp/rootfs" "$helper" >/dev/null
bash "$src/tests/lib/mkimage.sh" layout "$tmp/layout" --tag 1 --rootfs "$tmp/rootfs" >/dev/null
"$moat" "${store[@]}" image import "$tmp/layout" --name "$name"
