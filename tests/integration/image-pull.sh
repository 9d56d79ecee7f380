#!/bin/bash
# moat image pull against a real registry on loopback (docker-registry, filled with skopeo from an
# image built locally by tests/lib/mkimage.sh): anonymous, basic auth, a multi-platform index, a
# corrupted blob, an interrupted pull resumed, a second pull of an unchanged image.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

MKIMAGE="$_src_root/tests/lib/mkimage.sh"
for t in /usr/bin/docker-registry skopeo htpasswd python3 curl; do
	command -v "$t" >/dev/null || skip_all "'$t' is not installed (scripts/deps.sh)"
done
if "$MOAT_BIN" image pull --help 2>&1 | has "not available yet"; then
	skip_all "'moat image pull' is not wired in this build (src/cli/image.c)"
fi

REG=$TEST_TMP/reg
AREG=$TEST_TMP/areg
THR=$TEST_TMP/thr
LAYOUT=$TEST_TMP/oci
# stop what we started (by pid), then lib.sh's own exit handler
# shellcheck disable=SC2317
_pull_exit() {
	local rc=$?
	bash "$MKIMAGE" throttle-stop "$THR" 2>/dev/null
	bash "$MKIMAGE" token-stop "$TEST_TMP/tok" 2>/dev/null
	bash "$MKIMAGE" token-stop "$TEST_TMP/tok2" 2>/dev/null
	bash "$MKIMAGE" registry-stop "$REG" 2>/dev/null
	bash "$MKIMAGE" registry-stop "$AREG" 2>/dev/null
	(exit "$rc")
	_lib_exit
}
trap _pull_exit EXIT

pull() { # pull STORE ARGS...
	local store=$1
	shift
	"$MOAT_BIN" --store "$store" image pull "$@"
}
blob_gets() { grep -c "\"GET /v2/[^ ]*/blobs/sha256:" "$1/registry.log" || true; }
# shellcheck disable=SC2317
in_store() { [ -e "$1/blobs/sha256/${2#sha256:}" ]; }
layer_in_store() { [ -d "$1/layers/sha256/${2#sha256:}" ]; }
# config diff ids of a manifest in the layout
diff_ids_of() {
	local m=$1 c
	c=$(jq -r .config.digest "$LAYOUT/blobs/sha256/${m#sha256:}")
	jq -r '.rootfs.diff_ids[]' "$LAYOUT/blobs/sha256/${c#sha256:}"
}

# ---------------------------------------------------------------- images and registries
small=$(bash "$MKIMAGE" layout "$LAYOUT" --tag small --marker "hello from moat-test") || bail_out "cannot build the image"
multi=$(bash "$MKIMAGE" layout "$LAYOUT" --tag multi --multi --marker "hello multi") || bail_out "cannot build the index"
corrupt=$(bash "$MKIMAGE" layout "$LAYOUT" --tag corrupt --marker "this layer gets corrupted") || bail_out "image"
big=$(bash "$MKIMAGE" layout "$LAYOUT" --tag big --big 30 --marker "big one") || bail_out "cannot build the big image"
hp=$(bash "$MKIMAGE" registry-start "$REG") || bail_out "cannot start the registry"
ahp=$(bash "$MKIMAGE" registry-start "$AREG" --htpasswd moat:s3cret) || bail_out "cannot start the auth registry"
for t in small multi corrupt big; do
	bash "$MKIMAGE" push "$LAYOUT" $t "$hp/test/$t:1" || bail_out "cannot push '$t'"
done
bash "$MKIMAGE" push "$LAYOUT" small "$ahp/priv/small:1" --creds moat:s3cret || bail_out "cannot push to the auth registry"
amd64=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' "$LAYOUT/blobs/sha256/${multi#sha256:}")
arm64=$(jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest' "$LAYOUT/blobs/sha256/${multi#sha256:}")

# ---------------------------------------------------------------- anonymous
S=$TEST_TMP/store
out=$(pull "$S" "$hp/test/small:1" --insecure --format json 2>&1)
is "$(jq -r .manifest_digest <<<"$out" 2>/dev/null)" "$small" "anonymous pull: the manifest digest" || diag "$out"
is "$(jq -r .name <<<"$out" 2>/dev/null)" "$hp/test/small:1" "the image is tagged with its canonical name"
ok "the manifest and config blobs are stored" in_store "$S" "$small"
n=0
for d in $(diff_ids_of "$small"); do layer_in_store "$S" "$d" && n=$((n + 1)); done
is "$n" 3 "all three layers are unpacked in the store"
top=$(diff_ids_of "$small" | tail -1)
is "$(cat "$S/layers/sha256/${top#sha256:}/hello.txt" 2>/dev/null)" "hello from moat-test" "the top layer's file is there"
ok "busybox is in the bottom layer" test -x "$S/layers/sha256/$(diff_ids_of "$small" | head -1 | cut -d: -f2)/bin/busybox"
out=$(pull "$S" "$hp/test/small:1" --insecure 2>&1 >/dev/null </dev/null)
like "$out" "already present" "plain progress lines when stderr is not a terminal"

# second pull of an unchanged image: no blob fetched again, and fast
before=$(blob_gets "$REG")
t0=$(date +%s%N)
ok "second pull of the unchanged image" pull "$S" "$hp/test/small:1" --insecure -q
t1=$(date +%s%N)
diag "second pull of an unchanged image: $(((t1 - t0) / 1000000)) ms (target < 50 ms)"
is "$(blob_gets "$REG")" "$before" "the second pull downloads no blob"

# errors
out=$(pull "$S" "$hp/test/small:nope" --insecure 2>&1)
like "$out" "HTTP 404.*'http://$hp/v2/test/small/manifests/nope'" "an unknown tag: the URL and the HTTP status"
out=$(pull "$S" "192.0.2.1:5000/test/small:1" --insecure 2>&1)
like "$out" "only allowed for a loopback registry.*192.0.2.1:5000" "--insecure refused for a non-loopback registry"
out=$(pull "$S" "$hp/test/small:1" 2>&1)
like "$out" "https://$hp/v2/test/small/manifests/1" "https against a plain-http registry: the error names the URL"

# ---------------------------------------------------------------- multi-platform index
S2=$TEST_TMP/store-multi
out=$(pull "$S2" "$hp/test/multi:1" --insecure --format json 2>&1)
is "$(jq -r .manifest_digest <<<"$out" 2>/dev/null)" "$amd64" "an index: the host's platform (linux/amd64) is selected" || diag "$out"
out=$(pull "$S2" "$hp/test/multi:1" --insecure --platform linux/arm64 --format json 2>&1)
is "$(jq -r .manifest_digest <<<"$out" 2>/dev/null)" "$arm64" "--platform linux/arm64 selects the other manifest" || diag "$out"
is "$(jq -r '.layers | length' <<<"$out" 2>/dev/null)" 4 "the arm64 image has its extra layer"
out=$(pull "$S2" "$hp/test/multi:1" --insecure --platform linux/s390x 2>&1)
like "$out" "linux/s390x.*linux/arm64/v8.*linux/amd64" "a platform not in the index: the error says what is there"
out=$(pull "$S2" "$hp/test/multi:1" --insecure --platform linux 2>&1)
like "$out" "expected os/arch" "a malformed --platform is refused"

# ---------------------------------------------------------------- basic auth
S3=$TEST_TMP/store-auth
auth=$TEST_TMP/auth.json
b64=$(printf 'moat:s3cret' | base64)
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$ahp" "$b64" >"$auth"
out=$(env -u REGISTRY_AUTH_FILE HOME="$TEST_TMP/nohome" XDG_RUNTIME_DIR="$TEST_TMP/noxdg" \
	"$MOAT_BIN" --store "$S3" image pull "$ahp/priv/small:1" --insecure 2>&1)
like "$out" "requires a login.*no credentials for '$ahp'" "no credentials: a clear error"
out=$(REGISTRY_AUTH_FILE=$auth pull "$S3" "$ahp/priv/small:1" --insecure --format json 2>&1)
is "$(jq -r .manifest_digest <<<"$out" 2>/dev/null)" "$small" "pull with basic auth from \$REGISTRY_AUTH_FILE" || diag "$out"
printf '{"auths":{"http://%s":{"auth":"%s"}}}\n' "$ahp" "$(printf 'moat:wrong' | base64)" >"$TEST_TMP/bad.json"
out=$(REGISTRY_AUTH_FILE=$TEST_TMP/bad.json pull "$TEST_TMP/store-auth2" "$ahp/priv/small:1" --insecure 2>&1)
like "$out" "authentication to registry '$ahp' failed: HTTP 401.*wrong user or password" "a wrong password: a clear error"
mkdir -p "$TEST_TMP/home/.docker"
cp "$auth" "$TEST_TMP/home/.docker/config.json"
out=$(env -u REGISTRY_AUTH_FILE HOME="$TEST_TMP/home" XDG_RUNTIME_DIR="$TEST_TMP/noxdg" \
	"$MOAT_BIN" --store "$TEST_TMP/store-auth3" image pull "$ahp/priv/small:1" --insecure -q 2>&1)
like "$out" "priv/small:1" "credentials from ~/.docker/config.json"

# ---------------------------------------------------------------- Bearer tokens (a front that speaks the token protocol)
TOK=$TEST_TMP/tok
TOK2=$TEST_TMP/tok2
moat_blob_gets() { grep -c 'GET /v2/test/small/blobs/.*"moat/' "$REG/registry.log" || true; }
if tk=$(bash "$MKIMAGE" token-start "$TOK" "$hp" --redirect-blobs); then
	before=$(moat_blob_gets)
	out=$(pull "$TEST_TMP/store-tok" "$tk/test/small:1" --insecure --format json 2>&1)
	is "$(jq -r .manifest_digest <<<"$out" 2>/dev/null)" "$small" "pull with an anonymous Bearer token" || diag "$out"
	like "$(cat "$TOK/token.log")" "GET /token\?scope=repository%3Atest%2Fsmall%3Apull&service=moat-test" \
		"the token is asked for with the challenge's scope and service"
	like "$(grep blobs "$TOK/token.log" | head -1)" "auth=Bearer" "blob requests carry the token"
	is "$(($(moat_blob_gets) - before))" 4 "blob redirects (307) are followed: moat fetched config + 3 layers from the registry itself"
else
	fail "the token front starts"
fi
if tk2=$(bash "$MKIMAGE" token-start "$TOK2" "$hp" --creds moat:t0ken); then
	out=$(env -u REGISTRY_AUTH_FILE HOME="$TEST_TMP/nohome" XDG_RUNTIME_DIR="$TEST_TMP/noxdg" \
		"$MOAT_BIN" --store "$TEST_TMP/store-tok2" image pull "$tk2/test/small:1" --insecure 2>&1)
	like "$out" "token service 'http://$tk2/token' answered HTTP 401" "a token service that wants a login: a clear error"
	printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$tk2" "$(printf 'moat:t0ken' | base64)" >"$TEST_TMP/tok.json"
	out=$(REGISTRY_AUTH_FILE=$TEST_TMP/tok.json pull "$TEST_TMP/store-tok2" "$tk2/test/small:1" --insecure -q 2>&1)
	like "$out" "test/small:1" "the token is fetched with Basic credentials from the auth file"
else
	fail "the token front with credentials starts"
fi
bash "$MKIMAGE" token-stop "$TOK"
bash "$MKIMAGE" token-stop "$TOK2"

# ---------------------------------------------------------------- a corrupted blob
S4=$TEST_TMP/store-corrupt
cd_top=$(jq -r '.layers[2].digest' "$LAYOUT/blobs/sha256/${corrupt#sha256:}")
cd_diff=$(diff_ids_of "$corrupt" | tail -1)
f=$(bash "$MKIMAGE" blob-path "$REG" "$cd_top")
if [ -f "$f" ]; then
	size=$(stat -c %s "$f")
	head -c "$size" /dev/urandom >"$f"
	out=$(pull "$S4" "$hp/test/corrupt:1" --insecure 2>&1)
	rc=$?
	isnt "$rc" 0 "a corrupted layer blob fails the pull"
	like "$out" "$cd_top" "the error names the digest"
	like "$out" "$hp" "the error names the registry"
	ok "the corrupted blob is not in blobs/" test ! -e "$S4/blobs/sha256/${cd_top#sha256:}"
	ok "its layer is not in layers/" test ! -e "$S4/layers/sha256/${cd_diff#sha256:}"
	ok "the manifest is not stored" test ! -e "$S4/blobs/sha256/${corrupt#sha256:}"
	unlike "$(cat "$S4/images.json" 2>/dev/null)" "corrupt" "the image is not tagged"
else
	fail "the registry's blob file '$f' exists"
fi

# ---------------------------------------------------------------- an interrupted pull resumed
S5=$TEST_TMP/store-resume
big_layer=$(jq -r '.layers[3].digest' "$LAYOUT/blobs/sha256/${big#sha256:}")
tp=$(bash "$MKIMAGE" throttle-start "$THR" "$hp" 8000000) || bail_out "cannot start the throttle relay"
"$MOAT_BIN" --store "$S5" image pull "$tp/test/big:1" --insecure -q >"$TEST_TMP/pull1.log" 2>&1 &
pid=$!
partial=0
for _ in $(seq 1 200); do
	partial=$(find "$S5/tmp" -type f -name "*${big_layer#sha256:}*" -printf '%s\n' 2>/dev/null | sort -n | tail -1)
	[ "${partial:-0}" -gt 4000000 ] && break
	sleep 0.05
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
bash "$MKIMAGE" throttle-stop "$THR"
diag "killed the first pull with ${partial:-0} bytes of the 30 MiB layer downloaded"
ok "the first pull was killed mid-download" test "${partial:-0}" -gt 0 -a "${partial:-0}" -lt 31457280
ok "no half-written blob in blobs/" test ! -e "$S5/blobs/sha256/${big_layer#sha256:}"
out=$(pull "$S5" "$hp/test/big:1" --insecure --format json 2>&1)
is "$(jq -r .manifest_digest <<<"$out" 2>/dev/null)" "$big" "the second pull completes" || diag "$out"
ok "the big blob is stored" in_store "$S5" "$big_layer"
line=$(grep "GET /v2/test/big/blobs/$big_layer" "$REG/registry.log" | grep '" 206 ' | tail -1)
like "$line" '" 206 [0-9]+' "the second pull asked for the rest only (HTTP 206 in the registry log)"
sent=$(sed -E 's/.*" 206 ([0-9]+).*/\1/' <<<"$line")
ok "it downloaded less than the whole layer ($sent bytes)" test "${sent:-31457280}" -lt 31457280
big_diff=$(diff_ids_of "$big" | tail -1)
is "$(stat -c %s "$S5/layers/sha256/${big_diff#sha256:}/big.bin" 2>/dev/null)" 31457280 "the resumed layer is unpacked whole"


# ---------------------------------------------------------------- two pulls of the same image at once
S6=$TEST_TMP/store-concurrent
pull "$S6" "$hp/test/big:1" --insecure -q >"$TEST_TMP/c1.log" 2>&1 &
p1=$!
pull "$S6" "$hp/test/big:1" --insecure -q >"$TEST_TMP/c2.log" 2>&1 &
p2=$!
wait $p1
r1=$?
wait $p2
r2=$?
is "$r1 $r2" "0 0" "two pulls of the same image into one store at once both succeed" ||
	diag "$(cat "$TEST_TMP/c1.log" "$TEST_TMP/c2.log")"
is "$(stat -c %s "$S6/layers/sha256/${big_diff#sha256:}/big.bin" 2>/dev/null)" 31457280 "and the layer is whole"

done_testing
