#!/bin/bash
# moat config: parses an environment file and prints the resolved plan (text or JSON);
# a bad file exits 1 with the file:line, service and key.  No containers are started.
. "$(dirname "$0")/lib.sh"

[ -x "$MOAT_BIN" ] || skip_all "moat binary '$MOAT_BIN' not found"
command -v jq >/dev/null || skip_all "jq is not installed (scripts/deps.sh)"

SRC=$_src_root
W=$TEST_TMP/My_Project
mkdir -p "$W"

# a fixed web -> api -> db file (the demo's first version; the demo itself may change)
ok "moat config on the fixture file" "$MOAT_BIN" config -f "$SRC/tests/integration/fixtures/env-config-demo.yaml"
json=$("$MOAT_BIN" config -f "$SRC/tests/integration/fixtures/env-config-demo.yaml" --format json 2>&1)
ok "the JSON output parses with jq" jq -e . <<<"$json"
is "$(jq -r .project <<<"$json")" "demo" "project from the top-level name:"
is "$(jq -c .order <<<"$json")" '["db","api","web"]' "start order: dependencies first"
is "$(jq -c .services.web.reaches <<<"$json")" '["api"]' "web reaches api only"
is "$(jq -c .services.api.reaches <<<"$json")" '["db:5432"]' "api reaches db:5432 only"
is "$(jq -c .services.db.reaches <<<"$json")" '[]' "db reaches nobody"
is "$(jq -r .services.web.ports[0].published <<<"$json")" "8080" "published port"

# default file name, project name from the directory, .env, env_file, -p
cat >"$W/compose.yaml" <<'YAML'
services:
  api:
    image: "busybox:${TAG:-latest}"
    env_file: api.env
    environment:
      - MODE=${MODE}
    volumes:
      - ./data:/data:ro
  db:
    image: busybox
YAML
echo "TAG=from-dotenv" >"$W/.env"
echo "SECRET=s3" >"$W/api.env"
out=$(cd "$W" && MODE=dev "$MOAT_BIN" config --format json 2>&1)
ok "compose.yaml found in the current directory" jq -e . <<<"$out"
is "$(jq -r .project <<<"$out")" "my_project" "project: the directory name lowercased"
is "$(jq -r .services.api.image <<<"$out")" "busybox:from-dotenv" ".env next to the file"
is "$(jq -r .services.api.environment.SECRET <<<"$out")" "s3" "env_file relative to the file"
is "$(jq -r .services.api.environment.MODE <<<"$out")" "dev" "\${MODE} from the environment"
is "$(jq -r .services.api.volumes[0].source <<<"$out")" "$W/data" "bind source relative to the file"
is "$(jq -c .services.api.reaches <<<"$out")" '[]' "no depends_on, no allow: no reach"
out=$(cd "$W" && MODE=x "$MOAT_BIN" config -p other --format json 2>/dev/null)
is "$(jq -r .project <<<"$out")" "other" "-p sets the project"
is "$(jq -r '.networks.default.name' <<<"$out")" "other_default" "the default network is named after it"
text=$(cd "$W" && MODE=x "$MOAT_BIN" config 2>/dev/null)
like "$text" "^project: my_project" "text output starts with the project"
like "$text" "services:" "text output lists services"

# bad files: exit 1, one message naming file:line, service and key
cat >"$TEST_TMP/bad.yaml" <<'YAML'
services:
  api:
    image: busybox
    mem_limit: 12xb
YAML
out=$("$MOAT_BIN" config -f "$TEST_TMP/bad.yaml" 2>&1)
is "$?" "1" "a bad value exits 1"
like "$out" "bad.yaml:4: service 'api': 'mem_limit': '12xb' is not a size" "the message names line, service, key"
printf 'services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n' >"$TEST_TMP/cycle.yaml"
out=$("$MOAT_BIN" config -f "$TEST_TMP/cycle.yaml" 2>&1)
is "$?" "1" "a cycle exits 1"
like "$out" "cycle: a -> b -> a" "the cycle is named"
printf 'services:\n  a:\n    image: x\n    x-moat:\n      isolation: vm\n' >"$TEST_TMP/vm.yaml"
out=$("$MOAT_BIN" config -f "$TEST_TMP/vm.yaml" --format json 2>&1)
is "$(jq -r '.services.a.isolation' <<<"$out" 2>&1)" vm "isolation: vm is taken (the vm tier)"
out=$("$MOAT_BIN" config -f "$TEST_TMP/nonexistent.yaml" 2>&1)
is "$?" "1" "a missing file exits 1"
like "$out" "cannot open '.*nonexistent.yaml'" "and names it"
out=$(cd "$TEST_TMP" && mkdir -p empty && cd empty && "$MOAT_BIN" config 2>&1)
like "$out" "no compose.yaml" "no file here: says which names it looked for"
printf 'services:\n  a:\n    image: x\n    colour: red\n' >"$TEST_TMP/warn.yaml"
out=$("$MOAT_BIN" config -f "$TEST_TMP/warn.yaml" --format json 2>&1 >/dev/null)
like "$out" "warn.yaml:4: service 'a': unknown key 'colour'" "an unknown key warns with its line"
out=$("$MOAT_BIN" config -f "$TEST_TMP/warn.yaml" --format xml 2>&1)
like "$out" "unknown format 'xml'" "a bad --format is refused"

done_testing
