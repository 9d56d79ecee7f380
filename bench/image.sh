#!/bin/bash
# make bench (after bench/run.sh): image import and pull + unpack, moat against the peers
# (skopeo copy + umoci unpack, Debian packages), on the same locally built 5-layer image,
# alternating moat / peers every round, BENCH_IMAGE_N rounds (default 5), 1 warm-up round.
#   (a) import: `moat image import DIR` into a fresh store
#       vs `skopeo copy oci:DIR:TAG oci:TMP:TAG` + `umoci unpack --image TMP:TAG BUNDLE`
#   (b) pull from a loopback docker-registry: `moat image pull --insecure` into a fresh store
#       vs `skopeo copy --src-tls-verify=false docker://... oci:TMP:TAG` + `umoci unpack`
#   (c) a second `moat image pull` of the unchanged image into the same store
# The image (built with tar + gzip, as tests/lib/mkimage.sh does): 1 = the busybox test rootfs,
# 2 = 4 x 16 MiB random, 3 = 48 x 1 MiB random, 4 = ~100 MiB of compressible text,
# 5 = 3000 small files (0.5-4 KiB, half random, half text); every layer gzip.
# Env: BENCH_IMAGE_N, MOAT_BUILD_ROOT (default build/), MOAT_BIN (default $build/moat),
#      BENCH_TMP (default /var/tmp: a disk, like the store; /tmp may be a tmpfs elsewhere),
#      BENCH_IMAGE_DIR (keep the image there and reuse it if it is there already),
#      BENCH_RESULTS (default bench/RESULTS.md; "-" does not write it).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${MOAT_BUILD_ROOT:-$src/build}
n=${BENCH_IMAGE_N:-5}
moat=${MOAT_BIN:-$build/moat}
results=${BENCH_RESULTS:-$src/bench/RESULTS.md}
tag=bench
[ "$(id -u)" -eq 0 ] || { echo "bench/image.sh: run as root" >&2; exit 1; }
[ -x "$moat" ] || { echo "bench/image.sh: '$moat' not built: run 'make'" >&2; exit 1; }
for t in skopeo umoci /usr/bin/docker-registry jq python3 curl; do
	command -v "$t" >/dev/null || { echo "bench/image.sh: '$t' not found (make deps)" >&2; exit 1; }
done
rootfs=$build/tests/helpers/rootfs
bash "$src/tests/lib/mkrootfs.sh" "$rootfs" "$build/tests/helpers/moat-helper"

tmp=$(mktemp -d "${BENCH_TMP:-/var/tmp}/moat-imgbench.XXXXXX")
cleanup() {
	bash "$src/tests/lib/mkimage.sh" registry-stop "$tmp/reg" >/dev/null 2>&1 || true
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

now() { date +%s%N; }
ms_since() { echo $(( ($(now) - $1) / 1000000 )); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
fmt_s() { awk -v m="$1" 'BEGIN {printf "%.2f s", m/1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }

# ---------------------------------------------------------------- the image
build_image() {
	local dir=$1 w=$tmp/work
	mkdir -p "$dir/blobs/sha256" "$w"/{l1,l2,l3,l4,l5}
	echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
	cp -a "$rootfs/." "$w/l1/"
	for i in 0 1 2 3; do head -c $((16 << 20)) /dev/urandom >"$w/l2/rand$i.bin"; done
	mkdir -p "$w/l3/data"
	for i in $(seq -w 0 47); do head -c $((1 << 20)) /dev/urandom >"$w/l3/data/chunk$i.bin"; done
	python3 - "$w/l4" "$w/l5" <<'PY'
import os, random, sys
l4, l5 = sys.argv[1], sys.argv[2]
rnd = random.Random(42)
words = [("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(3, 10)))) for _ in range(4000)]
os.makedirs(os.path.join(l4, "usr/share/doc"), exist_ok=True)
for f in range(25):  # 25 x 4 MiB of text: gzip gets it to ~1/3
    lines, size = [], 0
    while size < (4 << 20):
        s = "%08d %s\n" % (size, " ".join(rnd.choice(words) for _ in range(12)))
        lines.append(s); size += len(s)
    with open(os.path.join(l4, "usr/share/doc/text%02d.txt" % f), "w") as fh:
        fh.write("".join(lines))
for i in range(3000):  # a few thousand small files in 30 dirs
    d = os.path.join(l5, "usr/lib/pkg%02d" % (i % 30))
    os.makedirs(d, exist_ok=True)
    n = rnd.randint(512, 4096)
    data = os.urandom(n) if i % 2 else " ".join(rnd.choice(words) for _ in range(n // 6)).encode()
    with open(os.path.join(d, "file%04d" % i), "wb") as fh:
        fh.write(data)
PY
	local layers=() diffids=() l h s
	for l in l1 l2 l3 l4 l5; do
		tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
			--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$w/$l" -cf "$w/$l.tar" .
		diffids+=("sha256:$(sha256sum "$w/$l.tar" | cut -d' ' -f1)")
		gzip -n -c "$w/$l.tar" >"$w/$l.tgz"
		rm -f "$w/$l.tar"
		h=$(sha256sum "$w/$l.tgz" | cut -d' ' -f1)
		s=$(stat -c %s "$w/$l.tgz")
		mv "$w/$l.tgz" "$dir/blobs/sha256/$h"
		layers+=("$(jq -nc --arg d "sha256:$h" --argjson s "$s" '{mediaType:"application/vnd.oci.image.layer.v1.tar+gzip",digest:$d,size:$s}')")
	done
	jq -nc --argjson diffs "$(printf '%s\n' "${diffids[@]}" | jq -Rsc 'split("\n")|map(select(.!=""))')" '{
		created: "2024-01-01T00:00:00Z", architecture: "amd64", os: "linux",
		config: {Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh"], WorkingDir: "/"},
		rootfs: {type: "layers", diff_ids: $diffs}}' >"$w/config.json"
	local ch cs mh ms
	ch=$(sha256sum "$w/config.json" | cut -d' ' -f1); cs=$(stat -c %s "$w/config.json")
	mv "$w/config.json" "$dir/blobs/sha256/$ch"
	printf '%s\n' "${layers[@]}" | jq -sc --arg cd "sha256:$ch" --argjson cs "$cs" '{schemaVersion: 2,
		mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
		layers: .}' >"$w/manifest.json"
	mh=$(sha256sum "$w/manifest.json" | cut -d' ' -f1); ms=$(stat -c %s "$w/manifest.json")
	mv "$w/manifest.json" "$dir/blobs/sha256/$mh"
	jq -nc --arg d "sha256:$mh" --argjson s "$ms" --arg t "$tag" '{schemaVersion: 2, manifests: [
		{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
		 annotations: {"org.opencontainers.image.ref.name": $t}}]}' >"$dir/index.json"
	rm -rf "$w"
}

img=${BENCH_IMAGE_DIR:-$tmp/image}
if [ ! -f "$img/index.json" ]; then
	echo "bench/image.sh: building the test image in $img" >&2
	build_image "$img"
fi
img_mb=$(du -sm --apparent-size "$img/blobs" | cut -f1)
unpacked_mb=$(( $(for b in $(jq -r '.layers[].digest' "$img/blobs/sha256/$(jq -r '.manifests[0].digest' "$img/index.json" | cut -d: -f2)"); do
	zcat "$img/blobs/sha256/${b#sha256:}" | wc -c; done | awk '{s += $1} END {print s}') >> 20 ))

# the registry, filled once with skopeo (digests preserved)
host=$(bash "$src/tests/lib/mkimage.sh" registry-start "$tmp/reg")
ref=$host/bench/image:$tag
bash "$src/tests/lib/mkimage.sh" push "$img" "$tag" "$ref"

run_quiet() { "$@" >"$tmp/out.log" 2>&1 || { echo "bench/image.sh: failed: $*" >&2; cat "$tmp/out.log" >&2; exit 1; }; }

# One timed run of each; prints ms.  Every run writes into fresh directories of its own round
# ($tmp/r<i>/...), all removed at the end: removing a store just before the next run would make
# ext4 search past the recently deleted inodes for every file the next run creates (seen in
# perf as ext4_create -> recently_deleted), slowing whoever runs next.  With less than 20 GB
# free, each round's directories are removed after the round instead.  A `sync` before each
# run: moat's syncfs would otherwise also write back what the run before it left dirty.
moat_import() {
	local t; sync; t=$(now)
	run_quiet "$moat" --store "$r/store-i" image import "$img" --name bench/image:$tag
	ms_since "$t"
}
peer_import() { # prints "skopeo_ms umoci_ms"
	local t a; sync; t=$(now)
	run_quiet skopeo --insecure-policy copy -q "oci:$img:$tag" "oci:$r/oci-i:$tag"
	a=$(ms_since "$t"); t=$(now)
	run_quiet umoci unpack --image "$r/oci-i:$tag" "$r/bundle-i"
	echo "$a $(ms_since "$t")"
}
moat_pull() {
	local t; sync; t=$(now)
	run_quiet "$moat" --store "$r/store-p" image pull -q --insecure "$ref"
	ms_since "$t"
}
moat_repull() {
	local t; sync; t=$(now)
	run_quiet "$moat" --store "$r/store-p" image pull -q --insecure "$ref"
	ms_since "$t"
}
peer_pull() {
	local t a; sync; t=$(now)
	run_quiet skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$ref" "oci:$r/oci-p:$tag"
	a=$(ms_since "$t"); t=$(now)
	run_quiet umoci unpack --image "$r/oci-p:$tag" "$r/bundle-p"
	echo "$a $(ms_since "$t")"
}
keep=1
[ "$(df --output=avail -B1G "$tmp" | tail -1)" -ge 20 ] || keep=0

mi=() ps_i=() pu_i=() pt_i=() mp=() mr=() ps_p=() pu_p=() pt_p=()
echo "bench/image.sh: $n rounds + 1 warm-up, alternating" >&2
for i in $(seq 0 "$n"); do
	r=$tmp/r$i
	mkdir -p "$r"
	sync
	a=$(moat_import); read -r b c < <(peer_import)
	d=$(moat_pull); e=$(moat_repull); read -r f g < <(peer_pull)
	wu=""; [ "$i" -eq 0 ] && wu=" (warm-up)"
	echo "  round $i$wu: import moat $a ms, skopeo $b + umoci $c ms; pull moat $d ms, again $e ms, skopeo $f + umoci $g ms" >&2
	[ "$keep" = 1 ] || rm -rf --one-file-system "$r"
	[ "$i" -eq 0 ] && continue
	mi+=("$a"); ps_i+=("$b"); pu_i+=("$c"); pt_i+=("$((b + c))")
	mp+=("$d"); mr+=("$e"); ps_p+=("$f"); pu_p+=("$g"); pt_p+=("$((f + g))")
done

m_mi=$(median "${mi[@]}"); m_psi=$(median "${ps_i[@]}"); m_pui=$(median "${pu_i[@]}"); m_pti=$(median "${pt_i[@]}")
m_mp=$(median "${mp[@]}"); m_mr=$(median "${mr[@]}"); m_psp=$(median "${ps_p[@]}"); m_pup=$(median "${pu_p[@]}"); m_ptp=$(median "${pt_p[@]}")
r_i=$(ratio "$m_mi" "$m_pti"); r_p=$(ratio "$m_mp" "$m_ptp")

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
machine="Linux $(uname -r), $cpu, $(nproc) cores, $(date -u +%Y-%m-%d)"
versions="$(skopeo --version), $(umoci --version), $("$moat" version 2>/dev/null | head -1)"
nl=$'\n'
report="machine: $machine${nl}versions: $versions${nl}image: 5 gzip layers, ${img_mb} MiB compressed, ${unpacked_mb} MiB unpacked; n=$n rounds (+1 warm-up), alternating; medians; store and peers' dirs on $(df --output=fstype "$tmp" | tail -1)${nl}
| | moat | skopeo copy | umoci unpack | peers' total | moat / peers |
|---|---|---|---|---|---|
| import (OCI layout dir) | $(fmt_s "$m_mi") | $(fmt_s "$m_psi") | $(fmt_s "$m_pui") | $(fmt_s "$m_pti") | **$r_i** |
| pull + unpack (loopback registry) | $(fmt_s "$m_mp") | $(fmt_s "$m_psp") | $(fmt_s "$m_pup") | $(fmt_s "$m_ptp") | **$r_p** |

second pull of the unchanged image: **$m_mr ms** (target: under 50 ms); ratio targets: at most 0.5."
echo
echo "$report"

if [ "$results" != "-" ]; then
	{
		echo
		echo "## $(date -u +%Y-%m-%d) (issue 3: images, bench/image.sh)"
		echo
		echo "$report"
	} >>"$results"
	echo "(appended to $results)" >&2
fi
