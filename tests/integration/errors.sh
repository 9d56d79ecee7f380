#!/bin/bash
# Bad input gets a clear error naming the field, exit status 1, and leaves nothing
# behind: no state dir, cgroup, mount or process.
. "$(dirname "$0")/lib.sh"

# leftovers ID BUNDLE [CGROUP-NAME]: prints what a failed create/run left behind
leftovers() {
	local id=$1 b=$2 cg=${3:-$1} p r c d
	[ -e "$TEST_ROOT/$id" ] && echo "state:$TEST_ROOT/$id"
	d=$(find /sys/fs/cgroup -maxdepth 6 -type d -name "$cg" 2>/dev/null)
	[ -n "$d" ] && echo "cgroup:$d"
	d=$(_mounts_under "$b")
	[ -n "$d" ] && echo "mount:$d"
	# a process rooted or working in the bundle (one ls for all of /proc)
	ls -l /proc/[0-9]*/root /proc/[0-9]*/cwd 2>/dev/null | grep -F -- " -> $b" | sed 's/^/process: /'
	# a half-made init is still the runtime: its argv holds the id
	# (the pattern "m[t]-..." does not match grep's own argv)
	grep -lsa -- "${id:0:1}[${id:1:1}]${id:2}" /proc/[0-9]*/cmdline 2>/dev/null | sed 's/^/process: /'
}

# refused DESC ERE VERB ID BUNDLE [CGROUP-NAME]: VERB fails with exit 1, stderr
# matches ERE, nothing is left
refused() {
	local desc=$1 ere=$2 verb=$3 id=$4 b=$5 cg=${6:-$4} out rc
	# stderr to a file, not a pipe: a container wrongly left alive would hold a pipe open
	rt "$verb" --bundle "$b" "$id" </dev/null >/dev/null 2>"$TEST_TMP/refused.err"
	rc=$?
	out=$(cat "$TEST_TMP/refused.err")
	is "$rc" 1 "$verb, $desc: exit status 1"
	like "$out" "$ere" "$verb, $desc: the error names it"
	is "$(leftovers "$id" "$b" "$cg")" "" "$verb, $desc: nothing left behind"
}

# bad_config DESC JQ ERE [CGROUP-NAME]: through create and run
n_bad=0
bad_config() {
	local desc=$1 filter=$2 ere=$3 cg=${4:-} b verb id
	n_bad=$((n_bad + 1))
	b=$TEST_TMP/bad$n_bad
	mkbundle "$b" "$filter" || bail_out mkbundle
	for verb in create run; do
		newid_var id bad
		refused "$desc" "$ere" "$verb" "$id" "$b" "${cg:-$id}"
	done
}

bad_text() { # DESC TEXT ERE
	local desc=$1 text=$2 ere=$3 b verb id
	n_bad=$((n_bad + 1))
	b=$TEST_TMP/bad$n_bad
	mkbundle "$b" || bail_out mkbundle
	printf '%s' "$text" >"$b/config.json"
	for verb in create run; do
		newid_var id bad
		refused "$desc" "$ere" "$verb" "$id" "$b"
	done
}

long=$(head -c 100000 /dev/zero | tr '\0' a)

# --- malformed and truncated JSON
bad_text "malformed JSON" '{"ociVersion": "1.0.2", "process": {' "config\\.json.*(line|column)"
bad_text "truncated JSON" "$(head -c 300 "$_lib_dir/config.json.in")" "config\\.json.*(line|column)"
bad_text "not an object" '[1, 2, 3]' "config\\.json"
bad_text "empty file" '' "config\\.json"

# --- wrong types
bad_config "args not an array" '.process.args = 5' "'process\\.args'"
bad_config "uid a string" '.process.user.uid = "root"' "'process\\.user\\.uid'"
bad_config "hostname a number" '.hostname = 7' "'hostname'"
bad_config "env element a number" '.process.env = [1]' "'process\\.env\\[0\\]'"
bad_config "mount destination a number" '.mounts[0].destination = 5' "'mounts\\[0\\]\\.destination'"
bad_config "sysctl value a number" '.linux.sysctl = {"net.ipv4.ip_forward": 5}' "'linux\\.sysctl"
bad_config "empty args" '.process.args = []' "'process\\.args'"

# --- namespaces and id maps
bad_config "unknown namespace" '.linux.namespaces += [{"type": "bogus"}]' "'linux\\.namespaces\\[[0-9]+\\]\\.type'.*\"bogus\""
bad_config "duplicate namespace" '.linux.namespaces += [{"type": "pid"}]' "'linux\\.namespaces\\[[0-9]+\\]\\.type'.*\"pid\""
bad_config "overlapping uid maps" \
	'.linux.namespaces += [{"type": "user"}] | .linux.uidMappings = [{"containerID": 0, "hostID": 100000, "size": 10}, {"containerID": 5, "hostID": 200000, "size": 10}] | .linux.gidMappings = [{"containerID": 0, "hostID": 100000, "size": 10}]' \
	"'linux\\.uidMappings\\[1\\]'.*overlap"

# --- cgroupsPath
cgn="moat-errx-$$-$RANDOM"
track_cgroup "$cgn"
bad_config "cgroupsPath ../../x" ".linux.cgroupsPath = \"../../$cgn\"" "'linux\\.cgroupsPath'.*\"\\.\\./\\.\\./$cgn\"" "$cgn"
bad_config "cgroupsPath /a/../../x" ".linux.cgroupsPath = \"/a/../../$cgn\"" "'linux\\.cgroupsPath'" "$cgn"

# --- huge values
bad_config "memory limit 1e30" '.linux.resources.memory = {"limit": 1e30}' "'linux\\.resources\\.memory\\.limit'"
bad_config "pids limit 1e23" '.linux.resources.pids = {"limit": 99999999999999999999999}' "'linux\\.resources\\.pids\\.limit'"
bad_config "uid 2^32" '.process.user.uid = 4294967296' "'process\\.user\\.uid'"
bad_config "rlimit 1e40" '.process.rlimits[0].hard = 1e40' "'process\\.rlimits\\[0\\]\\.hard'"
bad_config "additionalGids huge" '.process.user.additionalGids = [99999999999]' "'process\\.user\\.additionalGids\\[0\\]'"
bad_config "100 kB hostname" ".hostname = \"$long\"" "'hostname'"
bad_config "unknown rlimit" '.process.rlimits[0].type = "RLIMIT_BOGUS"' "'process\\.rlimits\\[0\\]\\.type'.*RLIMIT_BOGUS"

# --- bad ids
b=$TEST_TMP/b-ids
mkbundle "$b" || bail_out mkbundle
for bad in "a/b" ".." "../x" "_x" "$long"; do
	for verb in create run; do
		out=$(rt "$verb" --bundle "$b" "$bad" </dev/null 2>&1 >/dev/null)
		is "$?" 1 "$verb, id '${bad:0:12}': exit status 1"
		like "$out" "container id '${bad:0:12}" "$verb, id '${bad:0:12}': the error names it"
	done
done
is "$(find "$TEST_ROOT" -mindepth 1 | head -3)" "" "bad ids: nothing under --root"
is "$(find "$TEST_TMP" -maxdepth 2 -name b -newer "$b/config.json" | head -3)" "" "bad ids: nothing made beside the bundle"

# --- bundle, config.json, rootfs, args[0]
for verb in create run; do
	newid_var id nob
	refused "missing bundle" "bundle '$TEST_TMP/no-such-bundle'" "$verb" "$id" "$TEST_TMP/no-such-bundle"
	mkdir -p "$TEST_TMP/empty-bundle"
	newid_var id nocfg
	refused "missing config.json" "'$TEST_TMP/empty-bundle/config\\.json'" "$verb" "$id" "$TEST_TMP/empty-bundle"
done
bad_config "missing rootfs" '.root.path = "no-such-rootfs"' "'root\\.path'.*no-such-rootfs"
bad_config "args[0] not in PATH" '.process.args = ["no-such-program"]' "'no-such-program'"
bad_config "absolute args[0] missing" '.process.args = ["/no/such/program"]' "'/no/such/program'"

# (no global mount count here: other tests run in parallel; each case checks its bundle and test dir)
is "$(awk -v p="$TEST_TMP/" 'index($5, p) == 1' /proc/self/mountinfo)" "" "no mount left under the test directory"

# --- unknown flags and verbs
out=$(rt no-such-verb 2>&1); is "$?" 1 "unknown verb: exit 1"; like "$out" "'no-such-verb'" "unknown verb: named"
out=$(rt --no-such-flag list 2>&1); is "$?" 1 "unknown global flag: exit 1"; like "$out" "'--no-such-flag'" "unknown global flag: named"
out=$(rt create --no-such-flag x 2>&1); is "$?" 1 "unknown create flag: exit 1"; like "$out" "'--no-such-flag'" "unknown create flag: named"
out=$(rt kill --bogus x 2>&1); is "$?" 1 "unknown kill flag: exit 1"
out=$(rt create 2>&1); is "$?" 1 "create without an id: exit 1"
out=$(rt --systemd-cgroup create --bundle "$b" x 2>&1); is "$?" 1 "--systemd-cgroup: exit 1"
like "$out" "systemd-cgroup.*not supported.*cgroupfs" "--systemd-cgroup is refused with a clear message"

# --- verbs on a running container
b=$TEST_TMP/b-run
mkbundle "$b" ".process.args = $(jargs /bin/moat-helper sleep 60)" || bail_out mkbundle
newid_var id live
ok "run -d" rt run -d --bundle "$b" "$id"
out=$(rt start "$id" 2>&1); is "$?" 1 "start of a running container: exit 1"
like "$out" "'$id'.*running" "start of a running container: says it is running"
out=$(rt delete "$id" 2>&1); is "$?" 1 "delete of a running container without --force: exit 1"
like "$out" "'$id'.*running.*--force" "delete without --force: says why"
is "$(status_of "$id")" running "still running after the refused delete"
out=$(rt kill "$id" NOSUCHSIG 2>&1); is "$?" 1 "kill with a bad signal name: exit 1"
like "$out" "'NOSUCHSIG'" "kill with a bad signal name: names it"
out=$(rt kill "$id" 99999 2>&1); is "$?" 1 "kill with signal 99999: exit 1"
is "$(status_of "$id")" running "still running after the bad kills"
ok "delete --force" rt delete --force "$id"

# --- missing ids
newid_var id gone
for verb in state kill delete start; do
	out=$(rt "$verb" "$id" 2>&1); is "$?" 1 "$verb of a missing id: exit 1"
	like "$out" "'$id' does not exist" "$verb of a missing id: says so"
done

# --- --log FILE --log-format json
log=$TEST_TMP/log.json
out=$(rt --log "$log" --log-format json state "$id" 2>&1)
is "$?" 1 "--log json: exit 1"
last=$(tail -n 1 "$log")
is "$(jq -r .level <<<"$last" 2>&1)" error "--log json: the line has \"level\":\"error\""
like "$(jq -r .msg <<<"$last" 2>&1)" "'$id' does not exist" "--log json: \"msg\" holds the error"
like "$out" "'$id' does not exist" "--log json: stderr still has the error"
n_bad=$((n_bad + 1)); b=$TEST_TMP/bad$n_bad
mkbundle "$b" '.process.args = 5' || bail_out mkbundle
newid_var id logc
rt --log "$log" --log-format json create --bundle "$b" "$id" >/dev/null 2>&1
is "$?" 1 "--log json create: exit 1"
ok "--log json: every line is JSON" jq -e . "$log"
like "$(tail -n 1 "$log" | jq -r .msg)" "'process\\.args'" "--log json create: msg names the field"

# --- features, spec
ok "features prints valid JSON" bash -c "'$MOAT_RUNTIME' features | jq -e .ociVersionMin"
sb=$TEST_TMP/b-spec
mkdir -p "$sb" && cp -a "$MOAT_ROOTFS" "$sb/rootfs"
ok "spec writes config.json" rt spec --bundle "$sb"
ok "spec's config.json is JSON" jq -e .ociVersion "$sb/config.json"
_bundles+=("$sb")
cp "$sb/config.json" "$sb/orig.json"
out=$(rt spec --bundle "$sb" 2>&1); is "$?" 1 "spec refuses to overwrite config.json"
like "$out" "config\\.json" "spec: the refusal names the file"
ok "spec left config.json alone" cmp "$sb/config.json" "$sb/orig.json"
jq '.root.path = "rootfs" | .process.terminal = false | .process.args = ["/bin/moat-helper", "exit", "0"]' "$sb/orig.json" >"$sb/config.json"
newid_var id spec
ok "create accepts spec's config.json" rt create --bundle "$sb" "$id"
ok "start (spec)" rt start "$id"
ok "stopped (spec)" wait_status "$id" stopped 10
ok "delete (spec)" rt delete "$id"

done_testing
