#!/bin/bash
# moat image import: an OCI image layout made with umoci (directory and tar), a docker-archive
# from `podman save` (isolated podman --root/--runroot), `moat image ls` shows them, the layers
# unpack to the test rootfs, and a corrupted blob is refused leaving nothing in blobs/ or layers/.
. "$(dirname "$0")/lib.sh"

require_root
for t in umoci podman skopeo; do command -v $t >/dev/null || skip_all "'$t' is not installed"; done
[ -x "$MOAT_BIN" ] || skip_all "'$MOAT_BIN' not built"
[ -d "$MOAT_ROOTFS" ] || skip_all "no test rootfs at '$MOAT_ROOTFS'"

S=$TEST_TMP/store
moat() { "$MOAT_BIN" --store "$S" "$@"; }
export TMPDIR=$TEST_TMP

# ---------------------------------------------------------------- an OCI layout with umoci
L=$TEST_TMP/layout
U=$TEST_TMP/umoci-bundle
umoci init --layout "$L" && umoci new --image "$L:v1" >/dev/null 2>&1
umoci unpack --image "$L:v1" "$U" >/dev/null 2>&1
cp -a "$MOAT_ROOTFS"/. "$U/rootfs/"
echo "layer two" >"$U/rootfs/marker"
umoci repack --refresh-bundle --image "$L:v1" "$U" >/dev/null 2>&1
rm "$U/rootfs/marker"
umoci repack --image "$L:v1" "$U" >/dev/null 2>&1  # a third layer with a whiteout of /marker
ok "umoci made an OCI layout" test -f "$L/index.json"

out=$(moat image import "$L" 2>&1)
like "$out" "names no repository|give --name" "a layout with only a tag and no --name: clear error"
out=$(moat image import "$L" --name localhost/moat-test/umoci:v1 2>&1)
is "$out" "localhost/moat-test/umoci:v1" "OCI layout dir imported under --name"

(cd "$L" && tar -cf "$TEST_TMP/layout.tar" .)
out=$(moat image import "$TEST_TMP/layout.tar" --name localhost/moat-test/umoci-tar:v1 --format json 2>&1)
is "$(jq -r '.imported[0]' <<<"$out" 2>/dev/null)" "localhost/moat-test/umoci-tar:v1" "OCI layout tar imported (json)"

# ---------------------------------------------------------------- a docker-archive from podman save
P=$TEST_TMP/podman
mkdir -p "$P"/{root,runroot,tmp}
pm() { podman --root "$P/root" --runroot "$P/runroot" --tmpdir "$P/tmp" --storage-driver vfs \
	--events-backend file --cgroup-manager cgroupfs "$@"; }
tar -C "$MOAT_ROOTFS" -c . | pm import - localhost/moat-test/podman:1 >/dev/null 2>&1
pm save --format docker-archive -o "$TEST_TMP/docker.tar" localhost/moat-test/podman:1 >/dev/null 2>&1
ok "podman save wrote a docker-archive" test -s "$TEST_TMP/docker.tar"
out=$(moat image import "$TEST_TMP/docker.tar" 2>&1)
is "$out" "localhost/moat-test/podman:1" "docker-archive imported under its RepoTags name"
# the same archive kind, written by skopeo from the OCI layout (blobs named by digest)
skopeo copy "oci:$L:v1" "docker-archive:$TEST_TMP/skopeo.tar:localhost/moat-test/skopeo:2" >/dev/null 2>&1
out=$(moat image import "$TEST_TMP/skopeo.tar" 2>&1)
is "$out" "localhost/moat-test/skopeo:2" "skopeo docker-archive imported"
pm rmi -af >/dev/null 2>&1; pm system reset -f >/dev/null 2>&1

ls_out=$(moat image ls 2>&1)
for n in umoci umoci-tar podman skopeo; do
	like "$ls_out" "localhost/moat-test/$n" "image ls shows '$n'"
done
is "$(moat image ls --format json | jq -r '[.[]?.name // empty] | length' 2>/dev/null || echo x)" 4 "image ls json: 4 images" ||
	diag "$(moat image ls --format json)"

# the layers: the umoci image's top layer whites out /marker; the podman one is the rootfs
lay=$(ls "$S/layers/sha256" | wc -l)
ok "layers unpacked into the store ($lay)" test "$lay" -ge 3
found_wh=0
for d in "$S"/layers/sha256/*; do
	[ -c "$d/marker" ] && [ "$(stat -c %t:%T "$d/marker")" = "0:0" ] && found_wh=1
done
is "$found_wh" 1 "the removed /marker is an overlay whiteout in a layer"
pl=$(jq -r '.[] | select(.name|test("podman")) | .layers[0]' <<<"$(moat image ls --format json)" 2>/dev/null | sed 's/^sha256://')
ok "the podman image's layer matches the rootfs" diff -r --no-dereference "$MOAT_ROOTFS" "$S/layers/sha256/$pl"

# importing again skips what is there
again=$( { time -p moat image import "$TEST_TMP/docker.tar" >/dev/null; } 2>&1 | awk '/^real/{print $2}')
is "$(ls "$S/layers/sha256" | wc -l)" "$lay" "a second import adds no layer (took ${again}s)"

# ---------------------------------------------------------------- a corrupted blob
S2=$TEST_TMP/store2
C=$TEST_TMP/corrupt
cp -a "$L" "$C"
man=$(jq -r '.manifests[0].digest' "$C/index.json" | cut -d: -f2)
big=$(jq -r '.layers[0].digest' "$C/blobs/sha256/$man" | cut -d: -f2)
printf 'X' | dd of="$C/blobs/sha256/$big" bs=1 seek=100 conv=notrunc 2>/dev/null
out=$("$MOAT_BIN" --store "$S2" image import "$C" --name localhost/moat-test/bad:1 2>&1)
rc=$?
isnt "$rc" 0 "a corrupted blob is refused"
like "$out" "corrupt|$big" "the error names the blob"
is "$(find "$S2/blobs" "$S2/layers" -mindepth 1 -not -type d 2>/dev/null | wc -l)" 0 "nothing left in blobs/"
is "$(find "$S2/layers" -mindepth 2 2>/dev/null | wc -l)" 0 "nothing left in layers/"
like "$("$MOAT_BIN" --store "$S2" image ls 2>&1)" "^NAME|^$|no image" "no image recorded"

out=$(moat image import "$TEST_TMP/nonexistent.tar" 2>&1)
like "$out" "nonexistent.tar" "a missing file is named in the error"
echo '{}' >"$TEST_TMP/junk.json"
out=$(moat image import "$TEST_TMP/junk.json" 2>&1)
like "$out" "junk.json" "a file that is no archive is named in the error"

done_testing
