/* SPDX-License-Identifier: Apache-2.0 */
/* moat-runtime exec, update, events. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/util.h"
#include "oci/spec.h"

int cli_exec(struct cli_globals *g, int argc, char **argv, int idx);
int cli_update(struct cli_globals *g, int argc, char **argv, int idx);
int cli_events(struct cli_globals *g, int argc, char **argv, int idx);

static int fail_err(struct cli_globals *g, struct moat_error *err)
{
        cli_fail(g, err, NULL);
        moat_error_free(err);
        return 1;
}

static int fail_msg(struct cli_globals *g, char *msg)
{
        int r = cli_fail(g, NULL, msg ? msg : "bad arguments");
        free(msg);
        return r;
}

/* KEY=VALUE replaces an existing KEY. */
static int env_set(char ***env, const char *kv)
{
        const char *eq = strchr(kv, '=');
        size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
        for (size_t i = 0; *env && (*env)[i]; i++)
                if (strncmp((*env)[i], kv, klen) == 0 && (*env)[i][klen] == '=') {
                        char *c = strdup(kv);
                        if (!c)
                                return -ENOMEM;
                        free((*env)[i]);
                        (*env)[i] = c;
                        return 0;
                }
        return strv_push(env, kv);
}

static int parse_user(const char *s, uint32_t *uid, uint32_t *gid, bool *has_gid)
{
        _cleanup_free_ char *c = strdup(s);
        if (!c)
                return -ENOMEM;
        char *colon = strchr(c, ':');
        if (colon)
                *colon = '\0';
        uint64_t v;
        if (parse_u64(c, &v) < 0 || v > UINT32_MAX)
                return -EINVAL;
        *uid = (uint32_t)v;
        *has_gid = false;
        if (colon) {
                if (parse_u64(colon + 1, &v) < 0 || v > UINT32_MAX)
                        return -EINVAL;
                *gid = (uint32_t)v;
                *has_gid = true;
        }
        return 0;
}

int cli_exec(struct cli_globals *g, int argc, char **argv, int idx)
{
        const char *console_socket = NULL, *cwd = NULL, *user = NULL, *process_file = NULL, *pid_file = NULL,
                   *label = NULL, *apparmor = NULL, *cgroup = NULL;
        _cleanup_strv_ char **env = NULL, **gids = NULL, **caps = NULL;
        bool tty = false, detach = false, nnp = false, ignore_paused = false, tty_seen = false;
        int preserve = 0;
        const struct opt opts[] = {
                { "console-socket", 0, OPT_STR, &console_socket, NULL },
                { "cwd", 0, OPT_STR, &cwd, NULL },
                { "env", 'e', OPT_MULTI, &env, NULL },
                { "tty", 't', OPT_BOOL, &tty, &tty_seen },
                { "user", 'u', OPT_STR, &user, NULL },
                { "additional-gids", 'g', OPT_MULTI, &gids, NULL },
                { "process", 'p', OPT_STR, &process_file, NULL },
                { "detach", 'd', OPT_BOOL, &detach, NULL },
                { "pid-file", 0, OPT_STR, &pid_file, NULL },
                { "process-label", 0, OPT_STR, &label, NULL },
                { "apparmor", 0, OPT_STR, &apparmor, NULL },
                { "no-new-privs", 0, OPT_BOOL, &nnp, NULL },
                { "cap", 'c', OPT_MULTI, &caps, NULL },
                { "preserve-fds", 0, OPT_INT, &preserve, NULL },
                { "cgroup", 0, OPT_STR, &cgroup, NULL },
                { "ignore-paused", 0, OPT_BOOL, &ignore_paused, NULL },
                { 0 },
        };
        char *msg = NULL;
        if (args_parse(argc, argv, &idx, opts, "exec", &msg) < 0)
                return fail_msg(g, msg);
        if (idx >= argc)
                return cli_fail(g, NULL, "exec: a container id is required");
        const char *id = argv[idx++];
        struct moat_runtime rt = { .root = g->root };
        struct moat_error *err = NULL;
        struct moat_process *p = NULL;
        if (process_file) {
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                int r = strcmp(process_file, "-") == 0 ? read_fd_all(0, &text, &len)
                                                        : read_file_at(AT_FDCWD, process_file, &text, &len);
                if (r < 0) {
                        if (asprintf(&msg, "exec: cannot read '%s': %s", process_file, strerror(-r)) < 0)
                                msg = NULL;
                        return fail_msg(g, msg);
                }
                if (moat_process_parse(text, len, process_file, &p, &err) < 0)
                        return fail_err(g, err);
        } else {
                if (idx >= argc)
                        return cli_fail(g, NULL, "exec: a command is required (or --process FILE)");
                if (moat_container_process(&rt, id, &p, &err) < 0)
                        return fail_err(g, err);
                strv_free(p->args);
                p->args = strv_dup(argv + idx);
                p->terminal = false;
        }
        if (tty_seen)
                p->terminal = tty;
        if (cwd) {
                free(p->cwd);
                p->cwd = strdup(cwd);
        }
        for (size_t i = 0; env && env[i]; i++)
                if (env_set(&p->env, env[i]) < 0)
                        return cli_fail(g, NULL, "exec: out of memory");
        if (user) {
                bool has_gid = false;
                if (parse_user(user, &p->uid, &p->gid, &has_gid) < 0) {
                        moat_process_free(p);
                        if (asprintf(&msg, "exec: --user '%s': expected UID[:GID] as numbers", user) < 0)
                                msg = NULL;
                        return fail_msg(g, msg);
                }
                if (!has_gid)
                        p->gid = 0;
        }
        for (size_t i = 0; gids && gids[i]; i++) {
                uint64_t v;
                if (parse_u64(gids[i], &v) < 0 || v > UINT32_MAX) {
                        moat_process_free(p);
                        if (asprintf(&msg, "exec: --additional-gids '%s' is not a group id", gids[i]) < 0)
                                msg = NULL;
                        return fail_msg(g, msg);
                }
                uint32_t *ng = realloc(p->additional_gids, (p->n_additional_gids + 1) * sizeof(uint32_t));
                if (!ng)
                        return cli_fail(g, NULL, "exec: out of memory");
                p->additional_gids = ng;
                p->additional_gids[p->n_additional_gids++] = (uint32_t)v;
        }
        for (size_t i = 0; caps && caps[i]; i++) {
                int c = moat_cap_from_name(caps[i]);
                if (c < 0) {
                        moat_process_free(p);
                        if (asprintf(&msg, "exec: --cap '%s' is not a capability", caps[i]) < 0)
                                msg = NULL;
                        return fail_msg(g, msg);
                }
                uint64_t bit = 1ULL << c;
                p->has_caps = true;
                p->caps[MOAT_CAP_BOUNDING] |= bit;
                p->caps[MOAT_CAP_EFFECTIVE] |= bit;
                p->caps[MOAT_CAP_PERMITTED] |= bit;
                if (p->caps[MOAT_CAP_INHERITABLE])
                        p->caps[MOAT_CAP_AMBIENT] |= bit;
        }
        if (nnp)
                p->no_new_privileges = true;
        if (label) {
                free(p->selinux_label);
                p->selinux_label = strdup(label);
        }
        if (apparmor) {
                free(p->apparmor_profile);
                p->apparmor_profile = strdup(apparmor);
        }
        if (p->terminal && detach && !console_socket) {
                moat_process_free(p);
                return cli_fail(g, NULL, "exec: --tty with --detach needs --console-socket");
        }
        struct moat_exec_opts o = { .id = id, .process = p, .pid_file = pid_file, .console_socket = console_socket,
                                    .preserve_fds = preserve, .detach = detach };
        int status = 0;
        int r = moat_container_exec(&rt, &o, &status, &err);
        moat_process_free(p);
        if (r < 0)
                return fail_err(g, err);
        return status;
}

/* update -r FILE: the file is a linux.resources object. */
static int load_resources(const char *file, struct moat_spec **spec, struct moat_error **err)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = strcmp(file, "-") == 0 ? read_fd_all(0, &text, &len) : read_file_at(AT_FDCWD, file, &text, &len);
        if (r < 0)
                return moat_error_set(err, r, "cannot read resources '%s'", file);
        json_error_t je;
        json_t *res = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        if (!res || !json_is_object(res)) {
                json_decref(res);
                return moat_error_input(err, EINVAL, "%s:%d:%d: %s", file, je.line, je.column,
                                        res ? "expected a JSON object" : je.text);
        }
        json_t *doc = json_pack("{s:s, s:{s:s}, s:{s:o}}", "ociVersion", MOAT_OCI_VERSION, "root", "path", "/",
                                "linux", "resources", res);
        _cleanup_free_ char *wrapped = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (!wrapped)
                return moat_error_set(err, ENOMEM, "resources");
        return moat_spec_parse(wrapped, strlen(wrapped), file, spec, err);
}

int cli_update(struct cli_globals *g, int argc, char **argv, int idx)
{
        const char *file = NULL, *blkio = NULL, *period = NULL, *quota = NULL, *burst = NULL, *shares = NULL,
                   *rt_period = NULL, *rt_runtime = NULL, *cpus = NULL, *mems = NULL, *mem = NULL, *mem_res = NULL,
                   *swap = NULL, *kmem = NULL, *kmem_tcp = NULL, *pids = NULL, *l3 = NULL, *mbw = NULL;
        const struct opt opts[] = {
                { "resources", 'r', OPT_STR, &file, NULL },     { "blkio-weight", 0, OPT_STR, &blkio, NULL },
                { "cpu-period", 0, OPT_STR, &period, NULL },    { "cpu-quota", 0, OPT_STR, &quota, NULL },
                { "cpu-burst", 0, OPT_STR, &burst, NULL },      { "cpu-share", 0, OPT_STR, &shares, NULL },
                { "cpu-rt-period", 0, OPT_STR, &rt_period, NULL }, { "cpu-rt-runtime", 0, OPT_STR, &rt_runtime, NULL },
                { "cpuset-cpus", 0, OPT_STR, &cpus, NULL },     { "cpuset-mems", 0, OPT_STR, &mems, NULL },
                { "memory", 0, OPT_STR, &mem, NULL },           { "memory-reservation", 0, OPT_STR, &mem_res, NULL },
                { "memory-swap", 0, OPT_STR, &swap, NULL },     { "kernel-memory", 0, OPT_STR, &kmem, NULL },
                { "kernel-memory-tcp", 0, OPT_STR, &kmem_tcp, NULL }, { "pids-limit", 0, OPT_STR, &pids, NULL },
                { "l3-cache-schema", 0, OPT_STR, &l3, NULL },   { "mem-bw-schema", 0, OPT_STR, &mbw, NULL },
                { 0 },
        };
        char *msg = NULL;
        if (args_parse(argc, argv, &idx, opts, "update", &msg) < 0)
                return fail_msg(g, msg);
        if (idx >= argc)
                return cli_fail(g, NULL, "update: a container id is required");
        if (l3 || mbw)
                return cli_fail(g, NULL, "update: Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported");
        struct moat_error *err = NULL;
        struct moat_spec *spec = NULL;
        struct moat_resources empty = { 0 };
        struct moat_resources *res = &empty;
        if (file) {
                if (load_resources(file, &spec, &err) < 0)
                        return fail_err(g, err);
                res = &spec->linux_.resources;
        }
        struct {
                const char *flag, *val;
                bool *has;
                int64_t *dst;
                bool size;
        } nums[] = {
                { "memory", mem, &res->memory.has_limit, &res->memory.limit, true },
                { "memory-reservation", mem_res, &res->memory.has_reservation, &res->memory.reservation, true },
                { "memory-swap", swap, &res->memory.has_swap, &res->memory.swap, true },
                { "kernel-memory", kmem, &res->memory.has_kernel, &res->memory.kernel, true },
                { "kernel-memory-tcp", kmem_tcp, &res->memory.has_kernel_tcp, &res->memory.kernel_tcp, true },
                { "cpu-quota", quota, &res->cpu.has_quota, &res->cpu.quota, false },
                { "cpu-rt-runtime", rt_runtime, &res->cpu.has_realtime_runtime, &res->cpu.realtime_runtime, false },
                { "pids-limit", pids, &res->pids.has_limit, &res->pids.limit, false },
        };
        for (size_t i = 0; i < ARRAY_SIZE(nums); i++) {
                if (!nums[i].val)
                        continue;
                int64_t v;
                int r = nums[i].size ? cli_size_parse(nums[i].val, &v) : parse_i64(nums[i].val, &v);
                if (r < 0) {
                        moat_spec_free(spec);
                        if (asprintf(&msg, "update: --%s '%s' is not a valid %s", nums[i].flag, nums[i].val,
                                     nums[i].size ? "size" : "number") < 0)
                                msg = NULL;
                        return fail_msg(g, msg);
                }
                *nums[i].has = true;
                *nums[i].dst = v;
        }
        struct {
                const char *flag, *val;
                bool *has;
                uint64_t *dst;
        } unums[] = {
                { "cpu-period", period, &res->cpu.has_period, &res->cpu.period },
                { "cpu-burst", burst, &res->cpu.has_burst, &res->cpu.burst },
                { "cpu-share", shares, &res->cpu.has_shares, &res->cpu.shares },
                { "cpu-rt-period", rt_period, &res->cpu.has_realtime_period, &res->cpu.realtime_period },
        };
        for (size_t i = 0; i < ARRAY_SIZE(unums); i++) {
                if (!unums[i].val)
                        continue;
                if (parse_u64(unums[i].val, unums[i].dst) < 0) {
                        moat_spec_free(spec);
                        if (asprintf(&msg, "update: --%s '%s' is not a valid number", unums[i].flag, unums[i].val) < 0)
                                msg = NULL;
                        return fail_msg(g, msg);
                }
                *unums[i].has = true;
        }
        if (blkio) {
                uint64_t v;
                if (parse_u64(blkio, &v) < 0 || v > 1000) {
                        moat_spec_free(spec);
                        return cli_fail(g, NULL, "update: --blkio-weight takes 10 to 1000");
                }
                res->blkio.has_weight = true;
                res->blkio.weight = (uint16_t)v;
        }
        /* Flags win over the file; the file's strings are put back before freeing. */
        char *file_cpus = res->cpu.cpus, *file_mems = res->cpu.mems;
        if (cpus)
                res->cpu.cpus = (char *)cpus;
        if (mems)
                res->cpu.mems = (char *)mems;
        res->present = true;
        struct moat_runtime rt = { .root = g->root };
        int r = moat_container_update(&rt, argv[idx], res, &err);
        res->cpu.cpus = file_cpus;
        res->cpu.mems = file_mems;
        moat_spec_free(spec);
        if (r < 0)
                return fail_err(g, err);
        return 0;
}

static int parse_duration_ms(const char *s, int *ms)
{
        char *end = NULL;
        double v = strtod(s, &end);
        if (end == s || v < 0)
                return -EINVAL;
        double mult = 1000;
        if (strcmp(end, "ms") == 0)
                mult = 1;
        else if (strcmp(end, "s") == 0 || *end == '\0')
                mult = 1000;
        else if (strcmp(end, "m") == 0)
                mult = 60000;
        else
                return -EINVAL;
        double total = v * mult;
        if (total < 1 || total > 86400000)
                return -ERANGE;
        *ms = (int)total;
        return 0;
}

int cli_events(struct cli_globals *g, int argc, char **argv, int idx)
{
        bool stats = false;
        const char *interval = "5s";
        const struct opt opts[] = { { "stats", 0, OPT_BOOL, &stats, NULL },
                                    { "interval", 0, OPT_STR, &interval, NULL }, { 0 } };
        char *msg = NULL;
        if (args_parse(argc, argv, &idx, opts, "events", &msg) < 0)
                return fail_msg(g, msg);
        if (idx >= argc)
                return cli_fail(g, NULL, "events: a container id is required");
        const char *id = argv[idx];
        int ms;
        if (parse_duration_ms(interval, &ms) < 0) {
                if (asprintf(&msg, "events: --interval '%s': expected a duration like 5s or 500ms", interval) < 0)
                        msg = NULL;
                return fail_msg(g, msg);
        }
        struct moat_runtime rt = { .root = g->root };
        struct moat_error *err = NULL;
        json_t *j = NULL;
        if (stats) {
                if (moat_container_stats(&rt, id, &j, &err) < 0)
                        return fail_err(g, err);
                char *s = json_dumps(j, JSON_COMPACT);
                json_decref(j);
                if (s)
                        puts(s);
                free(s);
                return 0;
        }
        uint64_t ooms_seen = 0;
        bool alive = true;
        if (moat_container_oom_count(&rt, id, &ooms_seen, &alive, &err) < 0)
                return fail_err(g, err);
        setvbuf(stdout, NULL, _IOLBF, 0);
        for (;;) {
                if (moat_container_stats(&rt, id, &j, &err) < 0) {
                        moat_error_free(err);
                        return 0; /* the container is gone: the stream ends */
                }
                char *s = json_dumps(j, JSON_COMPACT);
                json_decref(j);
                if (s)
                        puts(s);
                free(s);
                /* OOM events are checked ten times per interval. */
                for (int t = 0; t < 10; t++) {
                        struct timespec ts = { .tv_sec = ms / 10000, .tv_nsec = (long)(ms % 10000) * 100000L };
                        nanosleep(&ts, NULL);
                        uint64_t n = 0;
                        if (moat_container_oom_count(&rt, id, &n, &alive, &err) < 0) {
                                moat_error_free(err);
                                return 0;
                        }
                        if (n > ooms_seen) {
                                printf("{\"type\":\"oom\",\"id\":\"%s\"}\n", id);
                                ooms_seen = n;
                        }
                        if (!alive)
                                return 0;
                }
        }
}
