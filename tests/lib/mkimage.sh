#!/bin/bash
# mkimage.sh: test images and a loopback registry for the image tests (nothing from the internet).
#
#   mkimage.sh layout DIR [--tag TAG] [--rootfs ROOTFS] [--big MB] [--multi] [--marker TEXT]
#       Writes an OCI image layout in DIR (created or added to) with one image tagged TAG (default
#       "latest"), built with tar + gzip + sha256sum + jq from ROOTFS (default $MOAT_ROOTFS, else a
#       minimal busybox-static tree).  Layers: 1 = the rootfs without etc/ (gzip), 2 = etc/ (gzip),
#       3 = /hello.txt containing "hello from moat-test" (or TEXT) (gzip), 4 (--big MB) = /big.bin of MB
#       MiB of random data (plain tar, no compression).  --multi: TAG names an image index of two
#       manifests with the same layers, linux/amd64 and linux/arm64/v8 (their configs differ only in
#       architecture; the arm64 one has /etc/arch = "arm64" in an extra layer so a test can tell them
#       apart).  Prints the manifest (or index) digest.
#   mkimage.sh registry-start DIR [--htpasswd USER:PASS]
#       Starts /usr/bin/docker-registry on 127.0.0.1:<free port> with its storage under DIR/storage
#       and its log in DIR/registry.log; writes DIR/port and DIR/pid; prints "127.0.0.1:PORT".
#       --htpasswd: basic auth (bcrypt htpasswd file DIR/htpasswd).
#   mkimage.sh registry-stop DIR        kills the registry by its pid (DIR/pid)
#   mkimage.sh push LAYOUT TAG HOSTPORT/REPO:TAG [--creds USER:PASS]
#       (--preserve-digests: the digests in the registry are those of the layout)
#       skopeo copy --all of oci:LAYOUT:TAG to docker://HOSTPORT/REPO:TAG (plain http).
#   mkimage.sh blob-path DIR DIGEST     the file of a blob in the registry's storage
#   mkimage.sh throttle-start DIR HOST:PORT BYTES_PER_SEC
#       A TCP relay on 127.0.0.1:<free port> to HOST:PORT (loopback only) that passes at most
#       BYTES_PER_SEC per connection downstream (to slow a download down for a kill mid-way);
#       writes DIR/throttle.pid; prints "127.0.0.1:PORT".  throttle-stop DIR kills it.
#   mkimage.sh token-start DIR HOST:PORT [--creds USER:PASS] [--redirect-blobs]
#       A front for the registry at HOST:PORT (loopback) that wants Bearer tokens, as Docker Hub
#       does: /v2/ requests without "Bearer <token>" get 401 + WWW-Authenticate: Bearer realm=
#       ".../token",service="moat-test",scope="repository:REPO:pull"; GET /token answers
#       {"token": ...} (only with Basic USER:PASS when --creds).  Requests are logged in
#       DIR/token.log; writes DIR/token.pid; prints "127.0.0.1:PORT".  token-stop DIR kills it.
#       --redirect-blobs: blob GETs get a 307 to the registry itself (as registries on S3 do).
# Other tests may use it; the owner is the pull work (tests/integration/image-pull.sh).
set -euo pipefail

die() { echo "mkimage.sh: $*" >&2; exit 1; }

sha() { sha256sum "$1" | cut -d' ' -f1; }

# add_blob LAYOUT FILE -> prints "sha256:<hex> <size>" and moves FILE into blobs/
add_blob() {
	local h s
	h=$(sha "$2")
	s=$(stat -c %s "$2")
	mv -f "$2" "$1/blobs/sha256/$h"
	echo "sha256:$h $s"
}

# tar_dir SRC OUT: a reproducible tar of SRC's contents
tar_dir() {
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$1" -cf "$2" .
}

minimal_rootfs() {
	local d=$1 bb=${MOAT_BUSYBOX:-/bin/busybox}
	[ -x "$bb" ] || die "'$bb' not found (apt-get install busybox-static)"
	mkdir -p "$d"/{bin,etc,tmp,proc,sys,dev}
	cp "$bb" "$d/bin/busybox"
	for a in sh ls cat echo true false env id; do ln -sf busybox "$d/bin/$a"; done
	echo "root:x:0:0:root:/root:/bin/sh" >"$d/etc/passwd"
	echo "root:x:0:" >"$d/etc/group"
}

cmd_layout() {
	local dir=$1 tag=latest rootfs=${MOAT_ROOTFS:-} big=0 multi=0 marker="hello from moat-test"
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--tag) tag=$2; shift 2 ;;
		--rootfs) rootfs=$2; shift 2 ;;
		--big) big=$2; shift 2 ;;
		--multi) multi=1; shift ;;
		--marker) marker=$2; shift 2 ;;
		*) die "layout: unknown option '$1'" ;;
		esac
	done
	mkdir -p "$dir/blobs/sha256"
	[ -f "$dir/oci-layout" ] || echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
	[ -f "$dir/index.json" ] || echo '{"schemaVersion":2,"manifests":[]}' >"$dir/index.json"
	local work
	work=$(mktemp -d "${TMPDIR:-/tmp}/mkimage.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	if [ -z "$rootfs" ] || [ ! -d "$rootfs" ]; then
		rootfs=$work/minimal
		minimal_rootfs "$rootfs"
	fi
	mkdir -p "$work/l1" "$work/l2/etc" "$work/l3" "$work/l5/etc"
	(cd "$rootfs" && tar --exclude=./etc -cf - .) | tar -C "$work/l1" -xf -
	cp -a "$rootfs/etc/." "$work/l2/etc/" 2>/dev/null || true
	printf '%s\n' "$marker" >"$work/l3/hello.txt"
	echo arm64 >"$work/l5/etc/arch"
	local layers=() diffids=() n
	local names=(l1 l2 l3)
	if [ "$big" -gt 0 ]; then
		mkdir -p "$work/l4"
		head -c "$((big * 1024 * 1024))" /dev/urandom >"$work/l4/big.bin"
		names+=(l4)
	fi
	for n in "${names[@]}"; do
		tar_dir "$work/$n" "$work/$n.tar"
		diffids+=("sha256:$(sha "$work/$n.tar")")
		local d s mt
		if [ "$n" = l4 ]; then
			mt=application/vnd.oci.image.layer.v1.tar
			read -r d s < <(add_blob "$dir" "$work/$n.tar")
		else
			mt=application/vnd.oci.image.layer.v1.tar+gzip
			gzip -n -c "$work/$n.tar" >"$work/$n.tgz"
			read -r d s < <(add_blob "$dir" "$work/$n.tgz")
		fi
		layers+=("$(jq -nc --arg mt "$mt" --arg d "$d" --argjson s "$s" '{mediaType:$mt,digest:$d,size:$s}')")
	done

	# manifest_for ARCH VARIANT EXTRA_LAYER_JSON EXTRA_DIFFID -> "digest size"
	manifest_for() {
		local arch=$1 variant=$2 extra=$3 extra_diff=$4 cd cs
		local ls_json ds_json
		ls_json=$(printf '%s\n' "${layers[@]}" ${extra:+"$extra"} | jq -sc .)
		ds_json=$(printf '%s\n' "${diffids[@]}" ${extra_diff:+"$extra_diff"} | jq -Rsc 'split("\n")|map(select(.!=""))')
		jq -nc --arg arch "$arch" --arg variant "$variant" --argjson diffs "$ds_json" '{
			created: "2024-01-01T00:00:00Z", architecture: $arch, os: "linux",
			config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
			         Cmd: ["/bin/sh"], WorkingDir: "/"},
			rootfs: {type: "layers", diff_ids: $diffs}} + (if $variant != "" then {variant: $variant} else {} end)' \
			>"$work/config.json"
		read -r cd cs < <(add_blob "$dir" "$work/config.json")
		jq -nc --arg cd "$cd" --argjson cs "$cs" --argjson ls "$ls_json" '{schemaVersion: 2,
			mediaType: "application/vnd.oci.image.manifest.v1+json",
			config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
			layers: $ls}' >"$work/manifest.json"
		add_blob "$dir" "$work/manifest.json"
	}

	local md ms mt=application/vnd.oci.image.manifest.v1+json
	read -r md ms < <(manifest_for amd64 "" "" "")
	if [ "$multi" = 1 ]; then
		tar_dir "$work/l5" "$work/l5.tar"
		local d5 s5 a5 as
		d5="sha256:$(sha "$work/l5.tar")"
		gzip -n -c "$work/l5.tar" >"$work/l5.tgz"
		read -r a5 s5 < <(add_blob "$dir" "$work/l5.tgz")
		local ad
		read -r ad as < <(manifest_for arm64 v8 \
			"$(jq -nc --arg d "$a5" --argjson s "$s5" '{mediaType:"application/vnd.oci.image.layer.v1.tar+gzip",digest:$d,size:$s}')" "$d5")
		jq -nc --arg md "$md" --argjson ms "$ms" --arg ad "$ad" --argjson asz "$as" '{schemaVersion: 2,
			mediaType: "application/vnd.oci.image.index.v1+json",
			manifests: [
			 {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $ad, size: $asz,
			  platform: {architecture: "arm64", os: "linux", variant: "v8"}},
			 {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md, size: $ms,
			  platform: {architecture: "amd64", os: "linux"}}]}' >"$work/index.json"
		read -r md ms < <(add_blob "$dir" "$work/index.json")
		mt=application/vnd.oci.image.index.v1+json
	fi
	jq --arg mt "$mt" --arg d "$md" --argjson s "$ms" --arg tag "$tag" '
		.manifests |= (map(select(.annotations["org.opencontainers.image.ref.name"] != $tag)) +
		[{mediaType: $mt, digest: $d, size: $s, annotations: {"org.opencontainers.image.ref.name": $tag}}])' \
		"$dir/index.json" >"$work/top.json"
	mv "$work/top.json" "$dir/index.json"
	echo "$md"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cmd_registry_start() {
	local dir=$1 creds=""
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--htpasswd) creds=$2; shift 2 ;;
		*) die "registry-start: unknown option '$1'" ;;
		esac
	done
	[ -x /usr/bin/docker-registry ] || die "/usr/bin/docker-registry not found (apt-get install docker-registry)"
	mkdir -p "$dir/storage"
	local port auth=""
	port=$(free_port)
	if [ -n "$creds" ]; then
		htpasswd -Bbn "${creds%%:*}" "${creds#*:}" >"$dir/htpasswd" 2>/dev/null
		auth=$(printf 'auth:\n  htpasswd:\n    realm: moat-test\n    path: %s\n' "$dir/htpasswd")
	fi
	cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: ""
http:
  addr: 127.0.0.1:$port
$auth
EOF
	/usr/bin/docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
	echo $! >"$dir/pid"
	echo "$port" >"$dir/port"
	for _ in $(seq 1 100); do
		if curl -s -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then
			echo "127.0.0.1:$port"
			return 0
		fi
		kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
		sleep 0.05
	done
	cat "$dir/registry.log" >&2
	die "the registry did not start (log above)"
}

cmd_registry_stop() {
	local pid
	pid=$(cat "$1/pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$1/pid"
}

cmd_push() {
	local layout=$1 tag=$2 dest=$3 creds=()
	shift 3
	while [ $# -gt 0 ]; do
		case $1 in
		--creds) creds=(--dest-creds "$2"); shift 2 ;;
		*) die "push: unknown option '$1'" ;;
		esac
	done
	skopeo --insecure-policy copy -q --all --preserve-digests --dest-tls-verify=false "${creds[@]}" \
		"oci:$layout:$tag" "docker://$dest" >&2
}

cmd_blob_path() {
	local h=${2#sha256:}
	echo "$1/storage/docker/registry/v2/blobs/sha256/${h:0:2}/$h/data"
}

cmd_throttle_start() {
	local dir=$1 target=$2 rate=$3 port
	case $target in 127.* | localhost:*) ;; *) die "throttle: loopback targets only, not '$target'" ;; esac
	mkdir -p "$dir"
	port=$(free_port)
	python3 -u - "$port" "${target%:*}" "${target##*:}" "$rate" >"$dir/throttle.log" 2>&1 </dev/null <<'PY' &
import socket, sys, threading, time
port, thost, tport, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def pump(a, b, limit):
    try:
        while True:
            d = a.recv(16384 if limit else 65536)
            if not d:
                break
            b.sendall(d)
            if limit:
                time.sleep(len(d) / rate)
    except OSError:
        pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
def serve(c):
    u = socket.create_connection((thost, tport))
    threading.Thread(target=pump, args=(c, u, False), daemon=True).start()
    pump(u, c, True)
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port)); l.listen(16)
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
	echo $! >"$dir/throttle.pid"
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "127.0.0.1:$port"
			return 0
		fi
		sleep 0.05
	done
	die "the throttle relay did not start: $(cat "$dir/throttle.log")"
}

cmd_throttle_stop() {
	local pid
	pid=$(cat "$1/throttle.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || true
	rm -f "$1/throttle.pid"
}

cmd_token_start() {
	local dir=$1 target=$2 tcreds="" redirect=0 port
	shift 2
	while [ $# -gt 0 ]; do
		case $1 in
		--creds) tcreds=$2; shift 2 ;;
		--redirect-blobs) redirect=1; shift ;;
		*) die "token-start: unknown option '$1'" ;;
		esac
	done
	case $target in 127.* | localhost:*) ;; *) die "token: loopback targets only, not '$target'" ;; esac
	mkdir -p "$dir"
	port=$(free_port)
	python3 -u - "$port" "$target" "$tcreds" "$redirect" >"$dir/token.log" 2>&1 </dev/null <<'PY' &
import base64, http.client, http.server, json, re, sys
port, target, creds, redirect = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
TOKEN = "moat-test-token-42"
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, fmt, *a):
        print("%s auth=%s range=%s" % (self.requestline, (self.headers.get("Authorization") or "-")[:12],
                                       self.headers.get("Range") or "-"), flush=True)
    def reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers: self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        a = self.headers.get("Authorization") or ""
        if self.path.startswith("/token"):
            if creds and a != "Basic " + base64.b64encode(creds.encode()).decode():
                return self.reply(401, b'{"details":"bad credentials"}')
            return self.reply(200, json.dumps({"token": TOKEN, "expires_in": 300}).encode(),
                              [("Content-Type", "application/json")])
        if a != "Bearer " + TOKEN:
            m = re.match(r"/v2/(.+)/(manifests|blobs)/", self.path)
            scope = 'scope="repository:%s:pull"' % m.group(1) if m else ""
            ch = 'Bearer realm="http://127.0.0.1:%d/token",service="moat-test"%s' % (port, "," + scope if scope else "")
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                              [("WWW-Authenticate", ch), ("Content-Type", "application/json")])
        if redirect and "/blobs/" in self.path:
            return self.reply(307, b"", [("Location", "http://%s%s" % (target, self.path))])
        c = http.client.HTTPConnection(target)
        h = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range")}
        c.request("GET", self.path, headers=h)
        r = c.getresponse()
        body = r.read()
        self.reply(r.status, body, [(k, v) for k, v in r.getheaders()
                                    if k.lower() in ("content-type", "docker-content-digest", "content-range")])
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
	echo $! >"$dir/token.pid"
	for _ in $(seq 1 100); do
		if curl -s -o /dev/null "http://127.0.0.1:$port/token" 2>/dev/null; then
			echo "127.0.0.1:$port"
			return 0
		fi
		sleep 0.05
	done
	die "the token front did not start: $(cat "$dir/token.log")"
}

cmd_token_stop() {
	local pid
	pid=$(cat "$1/token.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || true
	rm -f "$1/token.pid"
}

[ $# -ge 1 ] || die "usage: mkimage.sh layout|registry-start|registry-stop|push|blob-path ..."
c=$1
shift
case $c in
layout) cmd_layout "$@" ;;
registry-start) cmd_registry_start "$@" ;;
registry-stop) cmd_registry_stop "$@" ;;
push) cmd_push "$@" ;;
blob-path) cmd_blob_path "$@" ;;
throttle-start) cmd_throttle_start "$@" ;;
throttle-stop) cmd_throttle_stop "$@" ;;
token-start) cmd_token_start "$@" ;;
token-stop) cmd_token_stop "$@" ;;
*) die "unknown command '$c'" ;;
esac
