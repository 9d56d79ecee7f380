/* SPDX-License-Identifier: Apache-2.0 */
/* The environment file: every service key, good values and bad ones (the
 * message names the file:line, the service and the key). */
#include <errno.h>

#include "envfile-test-util.h"
#include "tap.h"

#define S(x) "services:\n  api:\n    image: busybox\n" x

static void test_image_command(void)
{
        _cleanup_envfile_ struct moat_envfile *f = parse(S("    command: sh -c 'echo \"hi there\"' x\\ y\n"
                                                           "    entrypoint: [\"/bin/init\", \"--\"]\n"));
        ok(f, "command string and entrypoint list parse");
        if (!f)
                return;
        const struct moat_env_service *s = moat_envfile_service(f, "api");
        is_str(s->image, "busybox", "image");
        is_int(strv_length(s->command), 4, "command split into 4 words");
        is_str(s->command[0], "sh", "word 0");
        is_str(s->command[2], "echo \"hi there\"", "single quotes keep the inside");
        is_str(s->command[3], "x y", "a backslash escapes a space");
        is_int(strv_length(s->entrypoint), 2, "entrypoint list");
        is_str(s->entrypoint[1], "--", "entrypoint word 1");

        _cleanup_envfile_ struct moat_envfile *g = parse(S("    entrypoint: \"\"\n"));
        ok(g && g->services[0].entrypoint && !g->services[0].entrypoint[0], "entrypoint '' clears the image's");
        _cleanup_envfile_ struct moat_envfile *h = parse(S(""));
        ok(h && !h->services[0].command && !h->services[0].entrypoint, "absent command: NULL (the image's)");

        _cleanup_free_ char *m = parse_error(S("    command: sh -c 'oops\n"));
        contains(m, "compose.yaml:4: service 'api': 'command':", "unbalanced quote: line, service, key");
        _cleanup_free_ char *m2 = parse_error("services:\n  api:\n    command: x\n");
        contains(m2, "service 'api': no 'image'", "a service needs an image");
        _cleanup_free_ char *m3 = parse_error(S("    command: {a: b}\n"));
        contains(m3, "'command': must be", "command as a mapping");
}

static void test_environment(void)
{
        write_test_file("api.env", "# comment\nFROM_FILE=1\nBOTH=file\nexport QUOTED=\"a b\\nc\"\nSINGLE='x $y'\n"
                                   "TRAIL=v # note\nHOME\n");
        _cleanup_envfile_ struct moat_envfile *f =
                parse(S("    env_file: api.env\n    environment:\n      BOTH: env\n      N: 5\n      TAGGED: "
                        "\"v${TAG}\"\n      UNSET:\n"));
        ok(f, "environment map + env_file");
        if (f) {
                const struct moat_env_service *s = &f->services[0];
                is_str(env_of(s, "FROM_FILE"), "1", "env_file value");
                is_str(env_of(s, "BOTH"), "env", "environment overrides env_file");
                is_str(env_of(s, "N"), "5", "a number as a string");
                is_str(env_of(s, "QUOTED"), "a b\nc", "double quotes with \\n in env_file");
                is_str(env_of(s, "SINGLE"), "x $y", "single quotes are literal");
                is_str(env_of(s, "TRAIL"), "v", "a trailing comment is dropped");
                is_str(env_of(s, "HOME"), "/home/t", "KEY alone takes our value");
                is_str(env_of(s, "TAGGED"), "v1.2", "interpolated value");
                ok(!env_of(s, "UNSET"), "a null value for an unset variable is omitted");
        }
        _cleanup_envfile_ struct moat_envfile *g = parse(S("    environment:\n      - A=1\n      - B=x=y\n      - PORT\n"));
        ok(g, "environment list");
        if (g) {
                is_str(env_of(&g->services[0], "A"), "1", "list A");
                is_str(env_of(&g->services[0], "B"), "x=y", "list value with '='");
                is_str(env_of(&g->services[0], "PORT"), "8080", "list KEY alone");
        }
        _cleanup_envfile_ struct moat_envfile *h =
                parse(S("    env_file:\n      - path: missing.env\n        required: false\n"));
        ok(h, "env_file required: false tolerates a missing file");
        _cleanup_free_ char *m = parse_error(S("    env_file: nope.env\n"));
        contains(m, "compose.yaml:4: service 'api': 'env_file': cannot read", "a missing env_file");
        write_test_file("bad.env", "OK=1\n=novalue\n");
        _cleanup_free_ char *m2 = parse_error(S("    env_file: [bad.env]\n"));
        contains(m2, "bad.env:2: not a KEY=VALUE line", "a bad env_file line is named");
        _cleanup_free_ char *m3 = parse_error(S("    environment:\n      - =x\n"));
        contains(m3, "'environment': '=x' is not KEY=VALUE", "a bad list entry");
        _cleanup_free_ char *m4 = parse_error(S("    environment: 5\n"));
        contains(m4, "'environment'", "environment as a scalar");
}

static void test_ports(void)
{
        _cleanup_envfile_ struct moat_envfile *f =
                parse(S("    ports:\n      - \"8080:80\"\n      - 127.0.0.1:8443:443/tcp\n      - \"53:53/udp\"\n"
                        "      - 3000\n      - \"[::1]:9000:90\"\n      - 127.0.0.1::5000\n      - 7000-7002:8000-8002\n"
                        "      - target: 81\n        published: \"8081\"\n        host_ip: 0.0.0.0\n"
                        "        protocol: udp\n        mode: host\n"));
        ok(f, "port forms parse");
        if (!f)
                return;
        const struct moat_env_service *s = &f->services[0];
        is_int(s->n_ports, 8, "8 ports");
        is_int(s->ports[0].host_port, 8080, "8080:80 host");
        is_int(s->ports[0].container_port, 80, "8080:80 container");
        is_str(s->ports[0].protocol, "tcp", "default tcp");
        is_str(s->ports[1].host_ip, "127.0.0.1", "host ip");
        is_int(s->ports[1].host_port, 8443, "ip form host port");
        is_str(s->ports[2].protocol, "udp", "/udp");
        is_int(s->ports[3].host_port, 0, "a bare port: ephemeral host port");
        is_int(s->ports[3].container_port, 3000, "a bare port: container port");
        is_str(s->ports[4].host_ip, "::1", "IPv6 host ip in brackets");
        is_int(s->ports[5].host_port, 0, "IP::PORT: ephemeral");
        is_int(s->ports[6].container_port_end, 8002, "a range");
        is_int(s->ports[7].host_port, 8081, "long form published");
        is_int(s->ports[7].container_port, 81, "long form target");
        is_str(s->ports[7].protocol, "udp", "long form protocol");

        static const char *const bad[] = { "\"99999:80\"", "\"80:0\"", "abc", "\"1.2.3:80:80\"", "\"80/sctp\"",
                                           "\"7000-7001:8000-8002\"", "\"1:2:3:4\"" };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                char y[256];
                snprintf(y, sizeof(y), S("    ports:\n      - %s\n"), bad[i]);
                _cleanup_free_ char *m = parse_error(y);
                contains(m, "compose.yaml:5: service 'api': 'ports':", "bad port %s", bad[i]);
        }
        _cleanup_free_ char *m = parse_error(S("    ports:\n      - published: 80\n"));
        contains(m, "needs 'target'", "long form without target");
        _cleanup_free_ char *m2 = parse_error(S("    ports:\n      - target: 70000\n"));
        contains(m2, "'ports.target': '70000' is not a port", "long form bad target");
}

static void test_volumes(void)
{
        _cleanup_envfile_ struct moat_envfile *f =
                parse(S("    volumes:\n      - ./data:/data:ro\n      - dbdata:/var/lib/x\n      - /abs:/abs\n"
                        "      - /anon\n      - ~/cache:/c:rw,z\n      - type: bind\n        source: ./conf\n"
                        "        target: /etc/conf\n        read_only: true\n      - type: tmpfs\n        target: /t\n"
                        "        tmpfs:\n          size: 1m\n    tmpfs:\n      - /run\n      - /tmp:size=64m,mode=1777\n"
                        "volumes:\n  dbdata:\n"));
        ok(f, "volume forms parse");
        if (!f)
                return;
        const struct moat_env_service *s = &f->services[0];
        is_int(s->n_mounts, 9, "7 volumes + 2 tmpfs");
        char want[600];
        snprintf(want, sizeof(want), "%s/data", test_dir);
        is_int(s->mounts[0].type, MOAT_MOUNT_BIND, "./data is a bind");
        is_str(s->mounts[0].source, want, "./data relative to the file's dir");
        ok(s->mounts[0].read_only, ":ro");
        is_int(s->mounts[1].type, MOAT_MOUNT_VOLUME, "dbdata is a named volume");
        is_str(s->mounts[1].source, "dbdata", "volume name");
        is_str(s->mounts[2].source, "/abs", "absolute bind");
        ok(s->mounts[3].type == MOAT_MOUNT_VOLUME && !s->mounts[3].source, "anonymous volume");
        is_str(s->mounts[4].source, "/home/t/cache", "~ is $HOME");
        ok(!s->mounts[4].read_only, "rw,z");
        ok(s->mounts[5].type == MOAT_MOUNT_BIND && s->mounts[5].read_only, "long bind read_only");
        ok(s->mounts[6].type == MOAT_MOUNT_TMPFS && s->mounts[6].tmpfs_size == 1048576, "long tmpfs size");
        ok(s->mounts[7].type == MOAT_MOUNT_TMPFS && !strcmp(s->mounts[7].target, "/run"), "tmpfs /run");
        is_int(s->mounts[8].tmpfs_size, 64 << 20, "tmpfs size=64m");
        is_int(f->n_volumes, 1, "top-level volume");

        _cleanup_free_ char *m = parse_error(S("    volumes:\n      - ./x:rel\n"));
        contains(m, "compose.yaml:5: service 'api': 'volumes': the target 'rel' is not an absolute path",
                 "relative target");
        _cleanup_free_ char *m2 = parse_error(S("    volumes:\n      - ./x:/x:rx\n"));
        contains(m2, "unknown mode 'rx'", "bad mode");
        _cleanup_free_ char *m3 = parse_error(S("    volumes:\n      - type: nfs\n        target: /x\n"));
        contains(m3, "'volumes.type': 'nfs' is not a mount type", "bad type");
        _cleanup_free_ char *m4 = parse_error(S("    tmpfs: /x:size=lots\n"));
        contains(m4, "'tmpfs': 'lots' is not a size", "bad tmpfs size");
        _cleanup_free_ char *m5 = parse_error(S("    tmpfs: relative\n"));
        contains(m5, "'tmpfs': 'relative' is not an absolute path", "relative tmpfs");
        _cleanup_free_ char *m6 = parse_error(S("    volumes:\n      - a:b:c:d\n"));
        contains(m6, "is not SOURCE:TARGET[:MODE]", "too many colons");
}

static void test_networks_depends(void)
{
        _cleanup_envfile_ struct moat_envfile *f =
                parse("services:\n  a:\n    image: x\n    networks: [front, back]\n    depends_on: [b, c]\n"
                      "  b:\n    image: x\n    networks:\n      back:\n        aliases: [bee]\n"
                      "    depends_on:\n      c:\n        condition: service_healthy\n        restart: true\n"
                      "      d:\n        condition: service_completed_successfully\n        required: false\n"
                      "  c:\n    image: x\n  d:\n    image: x\nnetworks:\n  front:\n  back:\n    internal: true\n");
        ok(f, "networks and depends_on forms parse");
        if (!f)
                return;
        const struct moat_env_service *a = &f->services[0], *b = &f->services[1];
        is_int(a->n_networks, 2, "list networks");
        is_str(a->networks[1].name, "back", "second network");
        is_int(b->n_networks, 1, "map networks");
        is_str(b->networks[0].aliases[0], "bee", "alias");
        is_int(a->n_depends_on, 2, "list depends_on");
        is_int(a->depends_on[0].condition, MOAT_DEP_STARTED, "list: service_started");
        is_int(b->depends_on[0].condition, MOAT_DEP_HEALTHY, "service_healthy");
        ok(b->depends_on[0].restart, "restart: true");
        is_int(b->depends_on[1].condition, MOAT_DEP_COMPLETED, "service_completed_successfully");
        ok(!b->depends_on[1].required, "required: false");
        ok(f->networks[1].internal && !f->networks[0].internal, "internal: true");

        _cleanup_free_ char *m = parse_error(S("    depends_on:\n      db:\n        condition: service_ready\n"));
        contains(m, "compose.yaml:6: service 'api': 'depends_on.condition': 'service_ready' is not a condition",
                 "bad condition");
        _cleanup_free_ char *m2 = parse_error(S("    depends_on: db\n"));
        contains(m2, "'depends_on': must be a list", "depends_on as a string");
        _cleanup_free_ char *m3 = parse_error("services:\n  a:\n    image: x\nnetworks:\n  n:\n    internal: maybe\n");
        contains(m3, "compose.yaml:6: 'networks.n.internal': 'maybe' is not a boolean", "bad internal");
        _cleanup_free_ char *m4 = parse_error("services:\n  a:\n    image: x\nnetworks:\n  n:\n    driver: overlay\n");
        contains(m4, "'networks.n.driver': driver 'overlay' is not supported", "overlay driver");
}

static void test_healthcheck(void)
{
        _cleanup_envfile_ struct moat_envfile *f =
                parse("services:\n  a:\n    image: x\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n"
                      "      interval: 1m30s\n      timeout: 500ms\n      retries: 5\n      start_period: 1h\n"
                      "  b:\n    image: x\n    healthcheck:\n      test: curl -f http://x || exit 1\n"
                      "  c:\n    image: x\n    healthcheck:\n      test: [\"CMD-SHELL\", \"true\"]\n"
                      "  d:\n    image: x\n    healthcheck:\n      test: [\"NONE\"]\n"
                      "  e:\n    image: x\n    healthcheck:\n      disable: true\n");
        ok(f, "healthcheck forms parse");
        if (!f)
                return;
        const struct moat_env_healthcheck *a = &f->services[0].healthcheck;
        ok(a->present && !a->disable, "present");
        is_str(a->test[0], "true", "CMD list: the argv");
        is_int(a->interval_ns, 90000000000LL, "1m30s");
        is_int(a->timeout_ns, 500000000LL, "500ms");
        is_int(a->retries, 5, "retries");
        is_int(a->start_period_ns, 3600000000000LL, "1h");
        const struct moat_env_healthcheck *b = &f->services[1].healthcheck;
        ok(b->test && !strcmp(b->test[0], "/bin/sh") && !strcmp(b->test[2], "curl -f http://x || exit 1"),
           "string test: sh -c");
        is_int(b->interval_ns, 30000000000LL, "default interval 30s");
        is_int(b->retries, 3, "default retries 3");
        is_str(f->services[2].healthcheck.test[1], "-c", "CMD-SHELL");
        ok(f->services[3].healthcheck.disable, "NONE disables");
        ok(f->services[4].healthcheck.disable, "disable: true");

        _cleanup_free_ char *m = parse_error(S("    healthcheck:\n      test: [\"CMD\", \"x\"]\n      interval: 5x\n"));
        contains(m, "compose.yaml:6: service 'api': 'healthcheck.interval': '5x' is not a duration", "bad interval");
        _cleanup_free_ char *m2 = parse_error(S("    healthcheck:\n      test: [\"RUN\", \"x\"]\n"));
        contains(m2, "'healthcheck.test': a list must start with CMD", "bad test list");
        _cleanup_free_ char *m3 = parse_error(S("    healthcheck:\n      test: x\n      retries: -1\n"));
        contains(m3, "'healthcheck.retries': -1 is out of range", "negative retries");
        _cleanup_free_ char *m4 = parse_error(S("    healthcheck:\n      interval: 1s\n"));
        contains(m4, "'healthcheck': needs 'test'", "no test");
}

static void test_misc_keys(void)
{
        _cleanup_envfile_ struct moat_envfile *f =
                parse(S("    restart: on-failure:5\n    user: \"1000:1000\"\n    working_dir: /app\n    read_only: true\n"
                        "    cap_add: [NET_ADMIN, cap_sys_time]\n    cap_drop: [ALL]\n    mem_limit: 512m\n    cpus: 1.5\n"
                        "    pids_limit: 100\n"));
        ok(f, "misc keys parse");
        if (f) {
                const struct moat_env_service *s = &f->services[0];
                is_int(s->restart, MOAT_RESTART_ON_FAILURE, "on-failure");
                is_int(s->restart_max, 5, "on-failure:5");
                is_str(s->user, "1000:1000", "user");
                is_str(s->working_dir, "/app", "working_dir");
                ok(s->read_only, "read_only");
                is_str(s->cap_add[0], "CAP_NET_ADMIN", "cap normalized");
                is_str(s->cap_add[1], "CAP_SYS_TIME", "cap_ prefix and case");
                is_str(s->cap_drop[0], "ALL", "ALL");
                is_int(s->memory, 512LL << 20, "512m");
                ok(s->cpus == 1.5, "cpus 1.5");
                is_int(s->pids, 100, "pids_limit");
        }
        static const struct { const char *v; int r; } restarts[] = {
                { "\"no\"", MOAT_RESTART_NO }, { "always", MOAT_RESTART_ALWAYS },
                { "unless-stopped", MOAT_RESTART_UNLESS_STOPPED }, { "on-failure", MOAT_RESTART_ON_FAILURE },
        };
        for (size_t i = 0; i < ARRAY_SIZE(restarts); i++) {
                char y[200];
                snprintf(y, sizeof(y), S("    restart: %s\n"), restarts[i].v);
                _cleanup_envfile_ struct moat_envfile *g = parse(y);
                ok(g && (int)g->services[0].restart == restarts[i].r, "restart: %s", restarts[i].v);
        }
        _cleanup_envfile_ struct moat_envfile *d =
                parse(S("    deploy:\n      resources:\n        limits:\n          memory: 1g\n          cpus: '0.25'\n"
                        "          pids: 64\n"));
        ok(d && d->services[0].memory == 1LL << 30 && d->services[0].cpus == 0.25 && d->services[0].pids == 64,
           "deploy.resources.limits");

        static const struct { const char *yaml, *want; } bad[] = {
                { "    mem_limit: 12xb\n", "compose.yaml:4: service 'api': 'mem_limit': '12xb' is not a size" },
                { "    mem_limit: 1k\n", "'mem_limit': '1k' is below the 6 MiB minimum" },
                { "    cpus: lots\n", "compose.yaml:4: service 'api': 'cpus': 'lots' is not a CPU count" },
                { "    cpus: -1\n", "'cpus': '-1' is not a CPU count" },
                { "    pids_limit: many\n", "'pids_limit': 'many' is not an integer" },
                { "    restart: sometimes\n", "'restart': 'sometimes' is not a restart policy" },
                { "    restart: on-failure:x\n", "'restart': 'on-failure:x': the retry count" },
                { "    read_only: 2\n", "'read_only': '2' is not a boolean" },
                { "    working_dir: app\n", "'working_dir': 'app' is not an absolute path" },
                { "    cap_add: [NET_FLY]\n", "'cap_add': 'NET_FLY' is not a capability" },
                { "    cap_drop: ALL\n", "'cap_drop': must be a list" },
                { "    user: [a]\n", "'user': must be a string" },
                { "    mem_limit: 64m\n    deploy:\n      resources:\n        limits:\n          memory: 128m\n",
                  "'mem_limit': differs from deploy.resources.limits.memory" },
                { "    deploy:\n      resources:\n        limits:\n          memory: 1q\n",
                  "compose.yaml:7: service 'api': 'deploy.resources.limits.memory': '1q' is not a size" },
                { "    image: again\n", "compose.yaml:4: service 'api': duplicate key 'image'" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_free_ char *y = NULL;
                if (asprintf(&y, S("%s"), bad[i].yaml) < 0)
                        return;
                _cleanup_free_ char *m = parse_error(y);
                contains(m, bad[i].want, "bad: %s", bad[i].want);
        }
}

static void test_xmoat(void)
{
        _cleanup_envfile_ struct moat_envfile *f =
                parse("x-moat:\n  policy: open\nservices:\n  a:\n    image: x\n    x-moat:\n      isolation: container\n"
                      "      allow: [b, \"c:5432\"]\n      egress: [10.0.0.0/8, \"example.com:443\", \"[2001:db8::1]:53\", "
                      "\"2001:db8::/32\", 1.1.1.1]\n      on-violation: kill\n");
        ok(f, "x-moat parses");
        if (f) {
                const struct moat_env_service *a = &f->services[0];
                is_int(f->policy, MOAT_POLICY_OPEN, "policy: open");
                is_int(a->n_allow, 2, "two allows");
                is_str(a->allow[1].service, "c", "allow service");
                is_int(a->allow[1].port, 5432, "allow port");
                is_int(a->n_egress, 5, "five egress");
                ok(a->egress[0].is_cidr && !strcmp(a->egress[0].host, "10.0.0.0/8"), "CIDR");
                ok(!a->egress[1].is_cidr && a->egress[1].port == 443, "host:port");
                ok(a->egress[2].is_cidr && a->egress[2].port == 53 && !strcmp(a->egress[2].host, "2001:db8::1"),
                   "[v6]:port");
                ok(a->egress[3].is_cidr && !a->egress[3].port, "v6 CIDR");
                is_int(a->on_violation, MOAT_VIOLATION_KILL, "on-violation: kill");
        }
        _cleanup_envfile_ struct moat_envfile *v = parse("services:\n  a:\n    image: x\n    x-moat:\n      isolation: vm\n");
        ok(v && v->services[0].isolation == MOAT_ISOLATION_VM, "isolation: vm");
        static const struct { const char *yaml, *want; } bad[] = {
                { "    x-moat:\n      isolation: jail\n", "'x-moat.isolation': 'jail' is not an isolation" },
                { "    x-moat:\n      allow: [\"db:http\"]\n", "'x-moat.allow': 'db:http': 'http' is not a port" },
                { "    x-moat:\n      allow: [\"/db\"]\n", "'x-moat.allow': '/db' is not SERVICE[:PORT]" },
                { "    x-moat:\n      egress: [\"10.0.0.0/33\"]\n", "'x-moat.egress': '10.0.0.0/33' is not" },
                { "    x-moat:\n      egress: [\"bad host\"]\n", "'x-moat.egress': 'bad host' is not" },
                { "    x-moat:\n      egress: [\"h:99999\"]\n", "'x-moat.egress': 'h:99999' is not" },
                { "    x-moat:\n      on-violation: panic\n", "'x-moat.on-violation': 'panic' is not log, kill or stop" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_free_ char *y = NULL;
                if (asprintf(&y, S("%s"), bad[i].yaml) < 0)
                        return;
                _cleanup_free_ char *m = parse_error(y);
                contains(m, bad[i].want, "bad: %s", bad[i].want);
        }
        _cleanup_free_ char *m = parse_error("x-moat:\n  policy: closed\nservices:\n  a:\n    image: x\n");
        contains(m, "compose.yaml:2: 'x-moat.policy': 'closed' is not a policy", "bad policy");
}

static void test_unknown_keys(void)
{
        free(warnings());
        _cleanup_envfile_ struct moat_envfile *f =
                parse("version: '3'\nfoo: 1\nx-common: &c\n  image: x\nservices:\n  a:\n    <<: *c\n    colour: red\n"
                      "    build: .\n    x-note: fine\n    healthcheck:\n      test: x\n      flavour: 1\n"
                      "    x-moat:\n      mood: calm\n");
        ok(f, "unknown keys do not fail the file");
        ok(f && f->services[0].image && !strcmp(f->services[0].image, "x"), "'<<' merge supplies image");
        _cleanup_free_ char *w = warnings();
        contains(w, "compose.yaml:2: unknown key 'foo'", "top-level unknown key: line and key");
        contains(w, "compose.yaml:8: service 'a': unknown key 'colour'", "service unknown key");
        contains(w, "compose.yaml:9: service 'a': 'build' is not supported", "unsupported key");
        contains(w, "unknown key 'healthcheck.flavour'", "nested unknown key");
        contains(w, "compose.yaml:15: service 'a': x-moat: unknown key 'mood'", "unknown x-moat key");
        ok(!strstr(w, "x-note") && !strstr(w, "version") && !strstr(w, "x-common"), "x- and version: silent");
}

static void test_file_level(void)
{
        static const struct { const char *yaml, *want; } bad[] = {
                { "", "the file is empty" },
                { "services: [a]\n", "compose.yaml:1: 'services': must be a mapping" },
                { "- a\n", "the top level must be a mapping" },
                { "services:\n  a: {image: x\n", "compose.yaml:" },
                { "services:\n  a:\n    image: x\n---\nservices: {}\n", "more than one YAML document" },
                { "networks: {}\n", "no services" },
                { "services:\n  \"bad name\":\n    image: x\n", "'bad name' is not a valid service name" },
                { "services:\n  a:\n", "compose.yaml:2: service 'a': the service is empty" },
                { "services:\n  a: 5\n", "service 'a': must be a mapping" },
                { "services:\n  a:\n    image: x\n    <<: 5\n", "'<<' needs a mapping" },
                { "services:\n  a:\n    image: x\nservices: {}\n", "duplicate key 'services'" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_free_ char *m = parse_error(bad[i].yaml);
                contains(m, bad[i].want, "file: %s", bad[i].want);
        }
        /* too big */
        size_t n = MOAT_ENVFILE_MAX_SIZE + 10;
        char *big = malloc(n + 1);
        memset(big, '#', n);
        big[n] = '\0';
        struct moat_envfile *f = NULL;
        struct moat_error *err = NULL;
        int r = moat_envfile_parse(big, n, "big.yaml", test_dir, NULL, &f, &err);
        is_int(r, -EFBIG, "a file over 4 MiB is refused");
        contains(err ? err->msg : NULL, "over 4 MiB", "the message says why");
        moat_error_free(err);
        free(big);
        /* load from a path: the dir is the file's */
        write_test_file("compose.yaml", "services:\n  a:\n    image: x\n    volumes: [./d:/d]\n");
        char p[512];
        snprintf(p, sizeof(p), "%s/compose.yaml", test_dir);
        err = NULL;
        r = moat_envfile_load(p, NULL, &f, &err);
        is_int(r, 0, "moat_envfile_load");
        if (r >= 0) {
                char want[600];
                snprintf(want, sizeof(want), "%s/d", test_dir);
                is_str(f->services[0].mounts[0].source, want, "bind source relative to the file");
                moat_envfile_free(f);
        }
        moat_error_free(err);
        err = NULL;
        r = moat_envfile_load("/nonexistent/compose.yaml", NULL, &f, &err);
        ok(r == -ENOENT && err && strstr(err->msg, "'/nonexistent/compose.yaml'"), "a missing file");
        moat_error_free(err);
}

int main(void)
{
        envtest_setup();
        test_image_command();
        test_environment();
        test_ports();
        test_volumes();
        test_networks_depends();
        test_healthcheck();
        test_misc_keys();
        test_xmoat();
        test_unknown_keys();
        test_file_level();
        envtest_cleanup();
        return done_testing();
}
