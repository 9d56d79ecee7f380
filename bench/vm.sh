#!/bin/bash
# The vm tier against its floor, alternating, BENCH_VM_N rounds (default 5) after 1 warm-up:
#   moat:  `moat run --isolation vm IMAGE -- echo ready` end to end (the busybox test rootfs;
#          its root disk cached after the warm-up, as for any second start of an image), and
#          the time until the process's first output reaches moat's stdout ("to the process")
#   floor: bare QEMU with the very argv moat used (same machine, accelerator, kernel, devices,
#          command line), but an initramfs holding only a static init that powers off
# Guest kernels: BENCH_VM_KERNELS="DIR DIR..." compares several kernel dirs (each as
# MOAT_VM_KERNEL), alternating them in every round; default: $MOAT_VM_KERNEL, else moat's default.
# Prints medians and minimums, the ratio to the floor (target <= 1.25), the accelerator, and
# QEMU's resident memory for an idle guest (a `sleep` in the VM), for each kernel.  Results go
# to bench/RESULTS.md (BENCH_RESULTS=- not).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${MOAT_BUILD_ROOT:-$src/build}
n=${BENCH_VM_N:-5}
moat=${MOAT_BIN:-$build/moat}
results=${BENCH_RESULTS:-$src/bench/RESULTS.md}
[ "$(id -u)" -eq 0 ] || { echo "bench/vm.sh: run as root" >&2; exit 1; }
[ -x "$moat" ] || { echo "bench/vm.sh: '$moat' not built: run 'make'" >&2; exit 1; }
[ -x "$build/bench/vm-floor-init" ] || { echo "bench/vm.sh: '$build/bench/vm-floor-init' not built" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "bench/vm.sh: QEMU not installed (make deps)" >&2; exit 1; }
command -v bsdtar >/dev/null || { echo "bench/vm.sh: bsdtar not installed (libarchive-tools)" >&2; exit 1; }
export MOAT_VMINIT=$build/guest/moat-vminit
rootfs=$build/tests/helpers/rootfs
bash "$src/tests/lib/mkrootfs.sh" "$rootfs" "$build/tests/helpers/moat-helper"

tmp=$(mktemp -d /var/tmp/moat-vmbench.XXXXXX)
trap 'rm -rf --one-file-system "$tmp"' EXIT
store=$tmp/store
bash "$src/tests/lib/mkimage.sh" layout "$tmp/layout" --tag 1 --rootfs "$rootfs" >/dev/null
"$moat" --store "$store" image import "$tmp/layout" --name localhost/vmbench:1 >/dev/null

kernels=(${BENCH_VM_KERNELS:-${MOAT_VM_KERNEL:-/var/lib/moat/vm/kernels/current}})
mkdir -p "$tmp/floor"
cp "$build/bench/vm-floor-init" "$tmp/floor/init"
(cd "$tmp/floor" && bsdtar --format newc -cf "$tmp/floor.cpio" init)
# QEMU's argv as moat runs it: a wrapper records it, then runs the real QEMU
cat >"$tmp/qemu-wrap" <<SH
#!/bin/bash
printf '%s\n' "\$@" >"$tmp/argv"
exec qemu-system-x86_64 "\$@"
SH
chmod +x "$tmp/qemu-wrap"
names=()
for ((k = 0; k < ${#kernels[@]}; k++)); do
	kd=$(realpath "${kernels[$k]}") || { echo "bench/vm.sh: no kernel dir '${kernels[$k]}'" >&2; exit 1; }
	kernels[$k]=$kd
	names+=("$(basename "$kd")")
	# (the wrapper writes outside QEMU's own root: this one recording run goes without it)
	MOAT_VM_NO_ROOT_CONFINE=1 MOAT_VM_KERNEL=$kd MOAT_VM_QEMU=$tmp/qemu-wrap "$moat" --store "$store" \
		run --isolation vm localhost/vmbench:1 -- /bin/true
	mapfile -t argv <"$tmp/argv"
	floor=()
	for ((i = 0; i < ${#argv[@]}; i++)); do
		a=${argv[$i]}
		# the floor needs no disks nor channel: the same machine, kernel, accelerator and command line
		case $a in -blockdev | -chardev) i=$((i + 1)); continue ;; esac
		if [ "$a" = -device ] && [[ ${argv[$((i + 1))]} == virtio-blk* || ${argv[$((i + 1))]} == virtserialport* ]]; then
			i=$((i + 1)); continue
		fi
		[ "$a" = -initrd ] && { floor+=(-initrd "$tmp/floor.cpio"); i=$((i + 1)); continue; }
		floor+=("$a")
	done
	# the console device needs a chardev: give it a null one
	floor+=(-chardev null,id=con)
	printf '%s\n' "${floor[@]}" >"$tmp/floor.$k"
	accel=$(printf '%s\n' "${argv[@]}" | grep -A1 -x -- -accel | tail -1 | cut -d, -f1)
	: >"$tmp/moat.$k.t"
	: >"$tmp/proc.$k.t"
	: >"$tmp/floor.$k.t"
done

now() { date +%s%N; }
med() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
min() { sort -n | head -1; }
for ((r = 0; r <= n; r++)); do
	for ((k = 0; k < ${#kernels[@]}; k++)); do
		mapfile -t floor <"$tmp/floor.$k"
		rm -f "$tmp/first"
		t0=$(now)
		# the first line of the process's output: the process runs
		MOAT_VM_KERNEL=${kernels[$k]} "$moat" --store "$store" run --isolation vm localhost/vmbench:1 -- echo ready \
			| { read -r _ && now >"$tmp/first"; cat >/dev/null; }
		t1=$(now)
		qemu-system-x86_64 "${floor[@]}" </dev/null >/dev/null 2>&1
		t2=$(now)
		[ "$r" -eq 0 ] && continue # warm-up
		[ -s "$tmp/first" ] || { echo "bench/vm.sh: no output from the process (${names[$k]})" >&2; exit 1; }
		echo $(((t1 - t0) / 1000000)) >>"$tmp/moat.$k.t"
		echo $((($(cat "$tmp/first") - t0) / 1000000)) >>"$tmp/proc.$k.t"
		echo $(((t2 - t1) / 1000000)) >>"$tmp/floor.$k.t"
	done
done

report=$(printf 'vm tier, `run echo ready`, %d rounds alternating%s, median / min in ms (accelerator: %s)\n' \
	"$n" "$([ ${#kernels[@]} -gt 1 ] && echo " the ${#kernels[@]} kernels")" "$accel")
for ((k = 0; k < ${#kernels[@]}; k++)); do
	m=$(med <"$tmp/moat.$k.t"); mm=$(min <"$tmp/moat.$k.t")
	p=$(med <"$tmp/proc.$k.t"); pm=$(min <"$tmp/proc.$k.t")
	f=$(med <"$tmp/floor.$k.t"); fm=$(min <"$tmp/floor.$k.t")
	ratio=$(awk -v a="$m" -v b="$f" 'BEGIN {printf "%.2f", a / b}')
	ratiom=$(awk -v a="$mm" -v b="$fm" 'BEGIN {printf "%.2f", a / b}')
	# QEMU's resident memory with an idle guest
	MOAT_VM_KERNEL=${kernels[$k]} "$moat" --store "$store" run --isolation vm localhost/vmbench:1 -- sleep 8 &
	pid=$!
	rss=""
	for ((i = 0; i < 200; i++)); do
		q=$(pgrep -f "qemu-system-x86_64.*$store" | head -1 || true)
		[ -n "$q" ] && { sleep 6; rss=$(ps -o rss= -p "$q" | tr -d ' '); break; }
		sleep 0.1
	done
	wait "$pid" || true
	report+=$(printf '\nkernel %s (vmlinux %d KiB)\n' "${names[$k]}" "$(($(stat -c %s "${kernels[$k]}/vmlinux") / 1024))")
	report+=$(printf '\n  moat run --isolation vm:  %6d / %6d ms\n  to the process (first output): %6d / %6d ms\n  floor (bare QEMU, same argv, a power-off init): %6d / %6d ms\n  moat / floor: %s / %s (target <= 1.25)\n  QEMU RSS, idle guest: %s KiB\n' \
		"$m" "$mm" "$p" "$pm" "$f" "$fm" "$ratio" "$ratiom" "${rss:-?}")
done

machine="$(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), Debian $(cat /etc/debian_version)"
echo "$report"
if [ "$results" != - ]; then
	{
		printf '\n## vm tier: moat run against the bare-QEMU floor (%s)\n\n' "$(date -u +%F)"
		printf 'Machine: %s. Accelerator: %s.\n\n```\n%s\n```\n' "$machine" "$accel" "$report"
	} >>"$results"
fi
