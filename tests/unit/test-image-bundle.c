/* SPDX-License-Identifier: Apache-2.0 */
/* moat run's config.json: entrypoint/cmd, env merge, user resolution from a fake
 * rootfs (including /etc/passwd planted as a symlink out of the root or a fifo),
 * the flag parsers (--memory, --cpus, --pids-limit, --volume, --network). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/path.h"
#include "core/util.h"
#include "image/bundle.h"
#include "tap.h"

static char tmpdir[PATH_MAX];

static void put(const char *rel, const char *text)
{
        char p[PATH_MAX * 2];
        snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write_all(fd, text, strlen(text)) < 0)
                printf("# cannot write %s\n", p);
        if (fd >= 0)
                close(fd);
}

static void mk(const char *rel)
{
        char p[PATH_MAX * 2];
        snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
        mkdir_p(p, 0755);
}

static char *path_of(const char *rel)
{
        char *p = NULL;
        if (asprintf(&p, "%s/%s", tmpdir, rel) < 0)
                abort();
        return p;
}

/* args of a generated config as "a b c" */
static char *joined(json_t *doc, const char *field)
{
        json_t *a = json_object_get(json_object_get(doc, "process"), field);
        size_t i, n = 0;
        json_t *v;
        static char buf[4096];
        buf[0] = '\0';
        json_array_foreach (a, i, v)
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? " " : "", json_string_value(v));
        return buf;
}

static bool env_has(json_t *doc, const char *kv)
{
        json_t *a = json_object_get(json_object_get(doc, "process"), "env");
        size_t i;
        json_t *v;
        json_array_foreach (a, i, v)
                if (strcmp(json_string_value(v), kv) == 0)
                        return true;
        return false;
}

static bool env_has_key(json_t *doc, const char *key)
{
        json_t *a = json_object_get(json_object_get(doc, "process"), "env");
        size_t i, kl = strlen(key);
        json_t *v;
        json_array_foreach (a, i, v)
                if (strncmp(json_string_value(v), key, kl) == 0 && json_string_value(v)[kl] == '=')
                        return true;
        return false;
}

static json_int_t jint(json_t *doc, const char *a, const char *b, const char *c)
{
        json_t *v = json_object_get(doc, a);
        if (b)
                v = json_object_get(v, b);
        if (c)
                v = json_object_get(v, c);
        return json_is_integer(v) ? json_integer_value(v) : -12345;
}

static json_t *gen(const struct moat_image_config *ic, const char *rootfs, const struct moat_run_opts *o,
                   int *ret, char **msg)
{
        json_t *doc = NULL;
        struct moat_error *err = NULL;
        *ret = moat_bundle_config(ic, "test/image:1", rootfs, o, &doc, &err);
        if (msg)
                *msg = err && err->msg ? strdup(err->msg) : NULL;
        moat_error_free(err);
        return doc;
}

static void test_parsers(void)
{
        struct moat_error *err = NULL;
        int64_t v = 0, q = 0;
        uint64_t period = 0;
        is_int(moat_run_parse_memory("100m", &v, &err), 0, "--memory 100m parses");
        is_int(v, 100LL << 20, "100m is 100 MiB");
        is_int(moat_run_parse_memory("1g", &v, &err), 0, "--memory 1g parses");
        is_int(v, 1LL << 30, "1g is 1 GiB");
        is_int(moat_run_parse_memory("512MiB", &v, &err), 0, "--memory 512MiB parses");
        is_int(v, 512LL << 20, "512MiB");
        const char *bad_mem[] = { "", "abc", "-1", "10x", "1.5g", "1gg", "99999999999999t", "1k" };
        for (size_t i = 0; i < sizeof(bad_mem) / sizeof(bad_mem[0]); i++) {
                ok(moat_run_parse_memory(bad_mem[i], &v, &err) < 0, "--memory '%s' refused", bad_mem[i]);
                ok(err && strstr(err->msg, bad_mem[i]), "the message names '%s': %s", bad_mem[i],
                   err ? err->msg : "(none)");
                moat_error_freep(&err);
        }

        is_int(moat_run_parse_cpus("1.5", &q, &period, &err), 0, "--cpus 1.5 parses");
        is_int(q, 150000, "1.5 CPUs: quota 150000");
        is_int(period, 100000, "period 100000");
        is_int(moat_run_parse_cpus("2", &q, &period, &err), 0, "--cpus 2");
        is_int(q, 200000, "2 CPUs: quota 200000");
        is_int(moat_run_parse_cpus("0.01", &q, &period, &err), 0, "--cpus 0.01");
        is_int(q, 1000, "0.01 CPUs: quota 1000");
        is_int(moat_run_parse_cpus(".25", &q, &period, &err), 0, "--cpus .25");
        is_int(q, 25000, ".25 CPUs: quota 25000");
        const char *bad_cpu[] = { "", "abc", "-1", "0", "0.001", "1.5.2", "1,5", "1e3", "100000", "." };
        for (size_t i = 0; i < sizeof(bad_cpu) / sizeof(bad_cpu[0]); i++) {
                ok(moat_run_parse_cpus(bad_cpu[i], &q, &period, &err) < 0, "--cpus '%s' refused", bad_cpu[i]);
                moat_error_freep(&err);
        }

        is_int(moat_run_parse_pids("100", &v, &err), 0, "--pids-limit 100");
        is_int(v, 100, "limit 100");
        is_int(moat_run_parse_pids("-1", &v, &err), 0, "--pids-limit -1");
        is_int(v, 0, "-1: no limit");
        ok(moat_run_parse_pids("x", &v, &err) < 0, "--pids-limit x refused");
        moat_error_freep(&err);
        ok(moat_run_parse_pids("-2", &v, &err) < 0, "--pids-limit -2 refused");
        moat_error_freep(&err);

        enum moat_run_network net;
        is_int(moat_run_parse_network(NULL, &net, &err), 0, "no --network");
        is_int(net, MOAT_RUN_NET_DEFAULT, "default network");
        is_int(moat_run_parse_network("host", &net, &err), 0, "--network host");
        is_int(net, MOAT_RUN_NET_HOST, "host network");
        is_int(moat_run_parse_network("none", &net, &err), 0, "--network none");
        is_int(net, MOAT_RUN_NET_NONE, "none network");
        ok(moat_run_parse_network("bogus", &net, &err) < 0, "--network bogus refused");
        contains(err ? err->msg : NULL, "'bogus'", "the message names it");
        moat_error_freep(&err);
}

static void test_volumes(void)
{
        struct moat_error *err = NULL;
        struct moat_volume vol;
        _cleanup_free_ char *src = path_of("vol");
        mk("vol");
        char spec[PATH_MAX * 2];
        snprintf(spec, sizeof(spec), "%s:/data", src);
        is_int(moat_run_parse_volume(spec, &vol, &err), 0, "--volume SRC:/data");
        is_str(vol.source, src, "source resolved");
        is_str(vol.destination, "/data", "destination");
        ok(!vol.readonly, "rw by default");
        moat_volume_clear(&vol);
        snprintf(spec, sizeof(spec), "%s:/data:ro", src);
        is_int(moat_run_parse_volume(spec, &vol, &err), 0, "--volume SRC:/data:ro");
        ok(vol.readonly, ":ro is read-only");
        moat_volume_clear(&vol);

        snprintf(spec, sizeof(spec), "%s/missing-dir:/data", tmpdir);
        is_int(moat_run_parse_volume(spec, &vol, &err), -ENOENT, "a missing source is refused");
        contains(err ? err->msg : NULL, "does not exist", "the message says so");
        moat_error_freep(&err);
        const char *bad[] = { "relative-dst", "rel:dst", "/", "/x:", ":/data" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ok(moat_run_parse_volume(bad[i], &vol, &err) < 0, "--volume '%s' refused", bad[i]);
                moat_error_freep(&err);
        }
        const char *bad_dst[] = { "data", "/", "//", "/a/../b", "/..", "/data:rx" };
        for (size_t i = 0; i < sizeof(bad_dst) / sizeof(bad_dst[0]); i++) {
                snprintf(spec, sizeof(spec), "%s:%s", src, bad_dst[i]);
                ok(moat_run_parse_volume(spec, &vol, &err) < 0, "--volume SRC:%s refused", bad_dst[i]);
                contains(err ? err->msg : NULL, spec, "the message names the flag");
                moat_error_freep(&err);
        }
}

static void test_args_env_cwd(const char *rootfs)
{
        char *ep[] = { "/bin/ep", "-x", NULL }, *icmd[] = { "icmd", "1", NULL }, *ucmd[] = { "ucmd", "2", NULL };
        char *ienv[] = { "PATH=/custom/bin", "FOO=image", "BAR=image", "BROKEN", NULL };
        struct moat_image_config ic = { .entrypoint = ep, .cmd = icmd, .env = ienv, .workdir = "/srv" };
        struct moat_run_opts o = { .terminal = 0, .hostname = "h0st" };
        int r;
        json_t *doc = gen(&ic, rootfs, &o, &r, NULL);
        is_int(r, 0, "config from entrypoint + cmd");
        is_str(joined(doc, "args"), "/bin/ep -x icmd 1", "entrypoint + image cmd");
        is_str(json_string_value(json_object_get(json_object_get(doc, "process"), "cwd")), "/srv", "image WorkingDir");
        ok(env_has(doc, "PATH=/custom/bin"), "the image's PATH replaces the default");
        ok(env_has(doc, "FOO=image") && env_has(doc, "BAR=image"), "image env");
        ok(!env_has_key(doc, "BROKEN"), "an image env entry without '=' is dropped");
        ok(env_has(doc, "HOSTNAME=h0st"), "HOSTNAME");
        ok(env_has(doc, "HOME=/root"), "HOME of root");
        ok(!env_has_key(doc, "TERM"), "no TERM without a terminal");
        ok(json_is_false(json_object_get(json_object_get(doc, "process"), "terminal")), "terminal false");
        is_str(json_string_value(json_object_get(doc, "hostname")), "h0st", "hostname");
        ok(json_is_false(json_object_get(json_object_get(doc, "root"), "readonly")), "root is writable");
        is_str(json_string_value(json_object_get(json_object_get(doc, "root"), "path")), "rootfs", "root path");
        json_decref(doc);

        o.cmd = ucmd;
        setenv("MOAT_TEST_COPIED", "from-us", 1);
        unsetenv("MOAT_TEST_UNSET");
        char *cenv[] = { "FOO=cli", "MOAT_TEST_COPIED", "MOAT_TEST_UNSET", "EMPTY=", NULL };
        o.env = cenv;
        o.workdir = "/work dir";
        o.terminal = 1;
        doc = gen(&ic, rootfs, &o, &r, NULL);
        is_int(r, 0, "config with CMD and --env");
        is_str(joined(doc, "args"), "/bin/ep -x ucmd 2", "entrypoint + given CMD (image cmd dropped)");
        ok(env_has(doc, "FOO=cli"), "--env overrides the image's");
        ok(env_has(doc, "BAR=image"), "other image env kept");
        ok(env_has(doc, "MOAT_TEST_COPIED=from-us"), "--env KEY copies our value");
        ok(!env_has_key(doc, "MOAT_TEST_UNSET"), "--env KEY we do not have is left out");
        ok(env_has(doc, "EMPTY="), "--env KEY= sets an empty value");
        ok(env_has(doc, "TERM=xterm"), "TERM with a terminal");
        ok(json_is_true(json_object_get(json_object_get(doc, "process"), "terminal")), "terminal true");
        is_str(json_string_value(json_object_get(json_object_get(doc, "process"), "cwd")), "/work dir", "--workdir");
        json_decref(doc);

        ic.entrypoint = NULL;
        o.cmd = NULL;
        o.env = NULL;
        o.workdir = NULL;
        o.terminal = 0;
        doc = gen(&ic, rootfs, &o, &r, NULL);
        is_str(joined(doc, "args"), "icmd 1", "no entrypoint: image cmd");
        json_decref(doc);
        o.cmd = ucmd;
        doc = gen(&ic, rootfs, &o, &r, NULL);
        is_str(joined(doc, "args"), "ucmd 2", "no entrypoint: given CMD");
        json_decref(doc);
        ic.cmd = NULL;
        o.cmd = NULL;
        char *msg = NULL;
        doc = gen(&ic, rootfs, &o, &r, &msg);
        is_int(r, -EINVAL, "neither entrypoint nor cmd nor CMD: refused");
        contains(msg, "test/image:1", "the message names the image");
        free(msg);
        json_decref(doc);

        o.cmd = ucmd;
        doc = gen(NULL, rootfs, &o, &r, NULL);
        is_int(r, 0, "no image config at all");
        is_str(json_string_value(json_object_get(json_object_get(doc, "process"), "cwd")), "/", "cwd defaults to /");
        ok(env_has(doc, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), "default PATH");
        json_decref(doc);

        o.workdir = "relative";
        doc = gen(NULL, rootfs, &o, &r, &msg);
        is_int(r, -EINVAL, "a relative --workdir is refused");
        contains(msg, "'relative'", "the message names it");
        free(msg);
        json_decref(doc);
        o.workdir = NULL;
        char *bad_env[] = { "=x", NULL };
        o.env = bad_env;
        doc = gen(NULL, rootfs, &o, &r, NULL);
        is_int(r, -EINVAL, "--env '=x' refused");
        json_decref(doc);
}

static void test_user(const char *rootfs)
{
        char *cmd[] = { "true", NULL };
        struct moat_image_config ic = { .user = "user" };
        struct moat_run_opts o = { .cmd = cmd, .terminal = 0, .hostname = "h" };
        int r;
        json_t *doc = gen(&ic, rootfs, &o, &r, NULL);
        is_int(r, 0, "image user 'user'");
        is_int(jint(doc, "process", "user", "uid"), 1000, "uid from /etc/passwd");
        is_int(jint(doc, "process", "user", "gid"), 1000, "gid from /etc/passwd");
        json_t *ag = json_object_get(json_object_get(json_object_get(doc, "process"), "user"), "additionalGids");
        is_int(json_array_size(ag), 1, "one additional group");
        is_int(json_integer_value(json_array_get(ag, 0)), 10, "wheel (10) from /etc/group");
        ok(env_has(doc, "HOME=/home/user"), "HOME from /etc/passwd");
        json_decref(doc);

        struct {
                const char *user;
                int ret;
                long long uid, gid;
        } cases[] = {
                { "1000", 0, 1000, 1000 },     { "4242", 0, 4242, 0 },       { "4242:77", 0, 4242, 77 },
                { "user:wheel", 0, 1000, 10 }, { "root", 0, 0, 0 },          { "0:wheel", 0, 0, 10 },
                { "nosuch", -ENOENT, 0, 0 },   { "user:nogrp", -ENOENT, 0, 0 }, { "user:", -EINVAL, 0, 0 },
                { ":1", -EINVAL, 0, 0 },       { "1:2:3", -EINVAL, 0, 0 },   { "4294967295", -EINVAL, 0, 0 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                o.user = cases[i].user;
                char *msg = NULL;
                doc = gen(&ic, rootfs, &o, &r, &msg);
                is_int(r, cases[i].ret, "--user '%s': %s", cases[i].user, msg ? msg : "ok");
                if (cases[i].ret == 0) {
                        is_int(jint(doc, "process", "user", "uid"), cases[i].uid, "--user '%s': uid", cases[i].user);
                        is_int(jint(doc, "process", "user", "gid"), cases[i].gid, "--user '%s': gid", cases[i].user);
                } else if (cases[i].ret == -ENOENT) {
                        ok(msg && strstr(msg, "not found"), "--user '%s': the message says not found", cases[i].user);
                }
                free(msg);
                json_decref(doc);
        }
        o.user = "4242";
        doc = gen(&ic, rootfs, &o, &r, NULL);
        ok(env_has(doc, "HOME=/"), "a uid without an entry: HOME=/");
        json_decref(doc);
}

/* /etc/passwd planted as a symlink out of the root, a fifo, a dir symlinked out. */
static void test_user_hostile(void)
{
        mk("outside");
        put("outside/passwd", "evil:x:777:777:evil:/evil:/bin/sh\n");
        put("outside/group", "evilg:x:778:evil\n");
        _cleanup_free_ char *outside = path_of("outside/passwd"), *outside_g = path_of("outside/group");
        char *cmd[] = { "true", NULL };
        struct moat_run_opts o = { .cmd = cmd, .terminal = 0, .hostname = "h" };

        for (int fallback = 0; fallback < 2; fallback++) {
                path_force_fallback(fallback);
                const char *how = fallback ? "component walk" : "openat2";
                /* absolute symlink */
                mk("evil1/etc");
                _cleanup_free_ char *p1 = path_of("evil1/etc/passwd"), *g1 = path_of("evil1/etc/group"),
                                    *r1 = path_of("evil1");
                unlink(p1);
                unlink(g1);
                ok(symlink(outside, p1) == 0 && symlink(outside_g, g1) == 0, "plant absolute symlinks (%s)", how);
                o.user = "evil";
                int r;
                char *msg = NULL;
                json_t *doc = gen(NULL, r1, &o, &r, &msg);
                is_int(r, -ENOENT, "absolute /etc/passwd symlink: the host's user is not seen (%s): %s", how,
                       msg ? msg : "accepted");
                free(msg);
                json_decref(doc);
                o.user = "0:evilg";
                doc = gen(NULL, r1, &o, &r, NULL);
                is_int(r, -ENOENT, "absolute /etc/group symlink: the host's group is not seen (%s)", how);
                json_decref(doc);
                o.user = "777";
                doc = gen(NULL, r1, &o, &r, NULL);
                is_int(r, 0, "numeric uid still works (%s)", how);
                is_int(jint(doc, "process", "user", "gid"), 0, "gid not taken from the host's file (%s)", how);
                ok(env_has(doc, "HOME=/"), "HOME not taken from the host's file (%s)", how);
                json_decref(doc);

                /* relative symlink with enough ".." to reach the host's / */
                mk("evil2/etc");
                _cleanup_free_ char *p2 = path_of("evil2/etc/passwd"), *r2 = path_of("evil2"), *rel = NULL;
                if (asprintf(&rel, "../../../../../../../../../../..%s", outside) < 0)
                        abort();
                unlink(p2);
                ok(symlink(rel, p2) == 0, "plant a ../.. symlink (%s)", how);
                o.user = "evil";
                doc = gen(NULL, r2, &o, &r, NULL);
                is_int(r, -ENOENT, "../.. /etc/passwd symlink: the host's user is not seen (%s)", how);
                json_decref(doc);

                /* /etc itself a symlink to the outside dir */
                _cleanup_free_ char *r3 = path_of("evil3"), *e3 = path_of("evil3/etc"), *od = path_of("outside");
                mk("evil3");
                unlink(e3);
                ok(symlink(od, e3) == 0, "plant /etc -> outside (%s)", how);
                doc = gen(NULL, r3, &o, &r, NULL);
                is_int(r, -ENOENT, "/etc symlinked out: the host's user is not seen (%s)", how);
                json_decref(doc);
        }
        path_force_fallback(false);

        /* a fifo (would block a reader) and a directory are not read */
        mk("evil4/etc");
        _cleanup_free_ char *p4 = path_of("evil4/etc/passwd"), *r4 = path_of("evil4");
        ok(mkfifo(p4, 0644) == 0, "plant a fifo as /etc/passwd");
        o.user = "1000";
        int r;
        json_t *doc = gen(NULL, r4, &o, &r, NULL);
        is_int(r, 0, "a fifo /etc/passwd is ignored (no hang) for a numeric user");
        json_decref(doc);
        o.user = "user";
        doc = gen(NULL, r4, &o, &r, NULL);
        is_int(r, -ENOENT, "a fifo /etc/passwd: names are not found");
        json_decref(doc);
}

static bool has_ns(json_t *doc, const char *type)
{
        json_t *ns = json_object_get(json_object_get(doc, "linux"), "namespaces");
        size_t i;
        json_t *v;
        json_array_foreach (ns, i, v)
                if (strcmp(json_string_value(json_object_get(v, "type")), type) == 0)
                        return true;
        return false;
}

static void test_linux(const char *rootfs)
{
        char *cmd[] = { "true", NULL };
        _cleanup_free_ char *src = path_of("vol"), *vol_ro = NULL, *vol_rw = NULL;
        if (asprintf(&vol_ro, "%s:/ro:ro", src) < 0 || asprintf(&vol_rw, "%s:/rw", src) < 0)
                abort();
        char *vols[] = { vol_ro, vol_rw, NULL };
        struct moat_run_opts o = { .cmd = cmd, .terminal = 0, .hostname = "h", .memory = "100m", .cpus = "1.5",
                                   .pids_limit = "64", .network = "none", .volumes = vols };
        int r;
        json_t *doc = gen(NULL, rootfs, &o, &r, NULL);
        is_int(r, 0, "config with limits, volumes, --network none");
        json_t *res = json_object_get(json_object_get(doc, "linux"), "resources");
        is_int(jint(res, "memory", "limit", NULL), 100LL << 20, "memory.limit");
        is_int(jint(res, "cpu", "quota", NULL), 150000, "cpu.quota");
        is_int(jint(res, "cpu", "period", NULL), 100000, "cpu.period");
        is_int(jint(res, "pids", "limit", NULL), 64, "pids.limit");
        ok(has_ns(doc, "network"), "--network none: a network namespace");
        ok(has_ns(doc, "pid") && has_ns(doc, "mount") && has_ns(doc, "ipc") && has_ns(doc, "uts"),
           "pid, mount, ipc, uts namespaces");
        json_t *mounts = json_object_get(doc, "mounts");
        size_t i;
        json_t *m;
        int seen_ro = 0, seen_rw = 0;
        json_array_foreach (mounts, i, m) {
                const char *dst = json_string_value(json_object_get(m, "destination"));
                char *opts = json_dumps(json_object_get(m, "options"), JSON_COMPACT);
                if (strcmp(dst, "/ro") == 0 && strstr(opts, "\"ro\"") && strstr(opts, "rbind"))
                        seen_ro++;
                if (strcmp(dst, "/rw") == 0 && !strstr(opts, "\"ro\"") && strstr(opts, "rbind") &&
                    strcmp(json_string_value(json_object_get(m, "source")), src) == 0)
                        seen_rw++;
                free(opts);
        }
        is_int(seen_ro, 1, "the :ro volume is a read-only bind mount");
        is_int(seen_rw, 1, "the rw volume is a bind mount of the resolved source");
        json_t *caps = json_object_get(json_object_get(doc, "process"), "capabilities");
        is_int(json_array_size(json_object_get(caps, "bounding")), 14, "14 capabilities (Docker's set)");
        _cleanup_free_ char *cs = json_dumps(caps, JSON_COMPACT);
        contains(cs, "CAP_NET_RAW", "CAP_NET_RAW");
        contains(cs, "CAP_SYS_CHROOT", "CAP_SYS_CHROOT");
        ok(!strstr(cs, "CAP_SYS_ADMIN"), "no CAP_SYS_ADMIN");
        is_int(json_array_size(json_object_get(caps, "permitted")), 14, "permitted: the same set");
        json_t *rl = json_array_get(json_object_get(json_object_get(doc, "process"), "rlimits"), 0);
        is_str(json_string_value(json_object_get(rl, "type")), "RLIMIT_NOFILE", "RLIMIT_NOFILE");
        ok(json_integer_value(json_object_get(rl, "hard")) <= 1024 && json_integer_value(json_object_get(rl, "hard")) > 0,
           "RLIMIT_NOFILE hard <= 1024");
        json_decref(doc);

        o.network = "host";
        o.memory = o.cpus = o.pids_limit = NULL;
        o.volumes = NULL;
        doc = gen(NULL, rootfs, &o, &r, NULL);
        is_int(r, 0, "--network host");
        ok(!has_ns(doc, "network"), "--network host: no network namespace");
        ok(has_ns(doc, "pid"), "--network host: still a pid namespace");
        res = json_object_get(json_object_get(doc, "linux"), "resources");
        ok(!json_object_get(res, "memory") && !json_object_get(res, "cpu") && !json_object_get(res, "pids"),
           "no limits unless asked");
        json_decref(doc);
        o.network = NULL;
        doc = gen(NULL, rootfs, &o, &r, NULL);
        ok(has_ns(doc, "network"), "--network default: a network namespace (as none, for now)");
        json_decref(doc);

        const char *bad[][2] = { { "memory", "lots" }, { "cpus", "many" }, { "pids", "x" }, { "network", "wifi" } };
        for (size_t k = 0; k < 4; k++) {
                struct moat_run_opts b = o;
                if (strcmp(bad[k][0], "memory") == 0)
                        b.memory = bad[k][1];
                else if (strcmp(bad[k][0], "cpus") == 0)
                        b.cpus = bad[k][1];
                else if (strcmp(bad[k][0], "pids") == 0)
                        b.pids_limit = bad[k][1];
                else
                        b.network = bad[k][1];
                char *msg = NULL;
                doc = gen(NULL, rootfs, &b, &r, &msg);
                ok(r < 0 && !doc, "bad --%s '%s' refused", bad[k][0], bad[k][1]);
                contains(msg, bad[k][1], "the message names '%s'", bad[k][1]);
                free(msg);
                json_decref(doc);
        }
        char *bad_vol[] = { "/nonexistent-moat-src:/x", NULL };
        o.volumes = bad_vol;
        doc = gen(NULL, rootfs, &o, &r, NULL);
        is_int(r, -ENOENT, "a missing volume source fails the config");
        json_decref(doc);
}

int main(void)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/moat-test-bundle.XXXXXX");
        if (!mkdtemp(tmpdir))
                return skip_all("cannot make a temp dir");
        mk("rootfs/etc");
        put("rootfs/etc/passwd", "# comment\nroot:x:0:0:root:/root:/bin/sh\n"
                                 "user:x:1000:1000:test user:/home/user:/bin/sh\nshort:x:5\n"
                                 "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
        put("rootfs/etc/group", "root:x:0:\nwheel:x:10:other,user\nuser:x:1000:user\nbroken\n");
        _cleanup_free_ char *rootfs = path_of("rootfs");

        test_parsers();
        test_volumes();
        test_args_env_cwd(rootfs);
        test_user(rootfs);
        test_user_hostile();
        test_linux(rootfs);

        rm_rf_at(AT_FDCWD, tmpdir);
        return done_testing();
}
