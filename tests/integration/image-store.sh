#!/bin/bash
# moat image ls|inspect|tag|rm|prune against a store filled by hand (self-contained: the
# blobs are made here with tar and sha256sum and placed where the store keeps verified content).
. "$(dirname "$0")/lib.sh"

[ -x "$MOAT_BIN" ] || skip_all "moat binary '$MOAT_BIN' not found"
STORE=$TEST_TMP/store
m() { "$MOAT_BIN" --store "$STORE" "$@"; }

# put FILE: stores FILE as a blob, prints its digest
put() {
	local hex
	hex=$(sha256sum "$1" | cut -d' ' -f1)
	mkdir -p "$STORE/blobs/sha256"
	cp "$1" "$STORE/blobs/sha256/$hex"
	echo "sha256:$hex"
}

# mkimage TAG-OF-CONTENT: a one-layer image; sets MANIFEST CONFIG LAYER
mkimage() {
	local w=$TEST_TMP/img-$1
	mkdir -p "$w/root/etc"
	echo "$1" >"$w/root/etc/content"
	tar -C "$w/root" -cf "$w/layer.tar" etc
	LAYER=$(put "$w/layer.tar")
	local size
	size=$(stat -c %s "$w/layer.tar")
	jq -cn --arg d "$LAYER" '{architecture:"amd64",os:"linux",created:"2024-01-02T03:04:05Z",
		config:{Cmd:["sh"],Env:["PATH=/bin"]},rootfs:{type:"layers",diff_ids:[$d]}}' >"$w/config.json"
	CONFIG=$(put "$w/config.json")
	jq -cn --arg c "$CONFIG" --argjson cs "$(stat -c %s "$w/config.json")" --arg l "$LAYER" --argjson ls "$size" \
		'{schemaVersion:2,mediaType:"application/vnd.oci.image.manifest.v1+json",
		  config:{mediaType:"application/vnd.oci.image.config.v1+json",digest:$c,size:$cs},
		  layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar",digest:$l,size:$ls}]}' >"$w/manifest.json"
	MANIFEST=$(put "$w/manifest.json")
}

out=$(m image ls)
is "$?" 0 "ls on an empty store"
like "$out" "^NAME +TAG +ID +CREATED +SIZE" "ls prints the table header"
is "$(m image ls --format json | jq length)" 0 "ls --format json: an empty array"

mkimage one
ok "tag a manifest digest with a name" m image tag "$MANIFEST" test/img:1
out=$(m image ls)
like "$out" "docker.io/test/img +1 +${CONFIG:7:12} +[0-9]+ years? ago +[0-9.]+ kB" "ls shows NAME TAG ID CREATED SIZE"
j=$(m image ls --format json)
is "$(jq -r '.[0].name' <<<"$j")" "docker.io/test/img:1" "ls json: name"
is "$(jq -r '.[0].tag' <<<"$j")" "1" "ls json: tag"
is "$(jq -r '.[0].manifest' <<<"$j")" "$MANIFEST" "ls json: manifest"
is "$(jq -r '.[0].layers[0]' <<<"$j")" "$LAYER" "ls json: layers"

j=$(m image inspect test/img:1)
is "$(jq -r '.[0].config' <<<"$j")" "$CONFIG" "inspect: the record"
is "$(jq -r '.[0].image_config.config.Cmd[0]' <<<"$j")" "sh" "inspect: the image config"
is "$(m image inspect --format json "${CONFIG:7:12}" | jq -r '.[0].name')" "docker.io/test/img:1" "inspect by id prefix"
is "$(m image inspect "$MANIFEST" | jq -r '.[0].name')" "docker.io/test/img:1" "inspect by manifest digest"

ok "tag an image by name" m image tag test/img:1 localhost:5000/x:2
is "$(m image tag --format json test/img:1 localhost:5000/x:3 | jq -r .name)" "localhost:5000/x:3" "tag --format json"
is "$(m image ls --format json | jq length)" 3 "three names"

m image rm nope:1 >"$TEST_TMP/rm.out" 2>&1
is "$?" 1 "rm of an unknown name fails"
like "$(cat "$TEST_TMP/rm.out")" "'nope:1'" "and names it"
m image inspect nope:1 >"$TEST_TMP/in.out" 2>&1
is "$?" 1 "inspect of an unknown name fails"
like "$(cat "$TEST_TMP/in.out")" "'nope:1'" "and names it"
m image tag nope:1 a:b >/dev/null 2>&1
is "$?" 1 "tag of an unknown image fails"
m image tag test/img:1 'Bad:Name:x' >"$TEST_TMP/tag.out" 2>&1
is "$?" 1 "tag to a bad name fails"
like "$(cat "$TEST_TMP/tag.out")" "Bad:Name:x" "and names it"

like "$(m image rm test/img:1)" "Untagged: test/img:1" "rm prints what it untagged"
is "$(m image rm --format json localhost:5000/x:3 | jq -r '.[0]')" "localhost:5000/x:3" "rm --format json"
is "$(m image ls --format json | jq -r '.[].name')" "localhost:5000/x:2" "one name left"

like "$(m image prune)" "Removed 0 unreferenced items" "prune with nothing to free"
echo junk >"$TEST_TMP/junk"
JUNK=$(put "$TEST_TMP/junk")
echo debris >"$STORE/tmp/blob-x.partial"
like "$(m image prune)" "Removed 2 unreferenced items, freed [0-9]+ B" "prune frees an unreferenced blob and tmp debris"
[ ! -e "$STORE/blobs/sha256/${JUNK:7}" ] && [ ! -e "$STORE/tmp/blob-x.partial" ] && pass "they are gone" || fail "they are gone"
[ -e "$STORE/blobs/sha256/${LAYER:7}" ] && pass "the referenced layer blob stays" || fail "the referenced layer blob stays"

ok "rm the last name" m image rm localhost:5000/x:2
j=$(m image prune --format json)
is "$(jq -r .items <<<"$j")" 3 "prune --format json: the manifest, config and layer blob"
is "$(ls "$STORE/blobs/sha256" | wc -l)" 0 "blobs/ is empty"

m image >/dev/null 2>&1
is "$?" 1 "image without a command fails"
like "$(m image frob 2>&1)" "unknown command 'frob'" "an unknown image command is named"
unlike "$(m image import 2>&1)" "unknown command" "import is dispatched"
unlike "$(m image pull 2>&1)" "unknown command" "pull is dispatched"

done_testing
