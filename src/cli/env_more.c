/* SPDX-License-Identifier: Apache-2.0 */
/* moat events / logs / exec on an environment that is up (env/up.h, env/supervisor.h).
 *   moat events [-p NAME] [--follow] [--format json]
 *   moat logs [-p NAME] [-f] [SERVICE]
 *   moat exec [-p NAME] SERVICE [--] CMD... */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/cleanup.h"
#include "core/util.h"
#include "env/plan.h"
#include "env/up.h"
#include "events/log.h"
#include "oci/spec.h"
#include "runtime/container.h"

/* The environment's dir and record; 1 (printed) when it is not up. */
static int env_open(struct moat_globals *g, const char *verb, const char *project, char **dir, json_t **state)
{
        _cleanup_free_ char *name = NULL;
        if (cli_env_project(verb, NULL, project, false, &name) != 0)
                return 1;
        struct moat_env_opts o = { .root = g->root };
        *dir = moat_env_dir(&o, name);
        if (!*dir)
                return cli_env_fail(verb, NULL, -ENOMEM);
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_env_state_load(*dir, state, &err);
        if (r == -ENOENT) {
                fprintf(stderr, "moat %s: environment '%s' is not up\n", verb, name);
                return 1;
        }
        return r < 0 ? cli_env_fail(verb, err, r) : 0;
}

/* ---------------------------------------------------------------- events */

struct ev_out {
        bool json;
};

static int print_event(const struct moat_event *ev, const char *line, size_t len, void *userdata)
{
        const struct ev_out *o = userdata;
        if (o->json) {
                fwrite(line, 1, len, stdout);
        } else {
                char t[40];
                moat_event_time_format(ev->time_ns, t);
                _cleanup_free_ char *fields = json_dumps(ev->fields, JSON_COMPACT | JSON_SORT_KEYS);
                printf("%s %-12s %-16s %s\n", t, ev->service ? ev->service : "-", moat_event_type_name(ev->type),
                       fields ? fields : "{}");
        }
        return fflush(stdout) == 0 ? 0 : -EPIPE;
}

int cli_env_events(struct moat_globals *g, int argc, char **argv, int idx)
{
        const char *project = NULL, *format = NULL;
        bool follow = false, help = false;
        const struct opt opts[] = {
                { "project-name", 'p', OPT_STR, &project, NULL },
                { "follow", 0, OPT_BOOL, &follow, NULL },
                { "format", 0, OPT_STR, &format, NULL },
                { "help", 'h', OPT_BOOL, &help, NULL },
                { 0 },
        };
        if (cli_env_parse("events", argc, argv, &idx, opts, true) != 0)
                return 1;
        if (help) {
                printf("Usage: moat events [-p NAME] [--follow] [--format json]\n\n"
                       "The environment's recorded events (TIME SERVICE TYPE details, or JSON lines), then\n"
                       "with --follow the new ones as they come, until interrupted.\n");
                return 0;
        }
        if (idx < argc) {
                fprintf(stderr, "moat events: unexpected argument '%s'\n", argv[idx]);
                return 1;
        }
        if (format && !STREQ(format, "json") && !STREQ(format, "text")) {
                fprintf(stderr, "moat events: unknown format '%s' (json or text)\n", format);
                return 1;
        }
        struct ev_out o = { .json = format && STREQ(format, "json") };
        _cleanup_free_ char *dir = NULL;
        json_t *state = NULL;
        if (env_open(g, "events", project, &dir, &state) != 0)
                return 1;
        json_decref(state);
        _cleanup_error_ struct moat_error *err = NULL;
        if (!follow) {
                int r = moat_event_log_read(dir, print_event, &o, &err);
                return r < 0 && r != -ENOENT ? cli_env_fail("events", err, r) : 0;
        }
        struct moat_event_follow *f = NULL;
        int r = moat_event_follow_open(dir, true, &f, &err);
        if (r < 0)
                return cli_env_fail("events", err, r);
        r = moat_event_follow_process(f, print_event, &o);
        while (r >= 0) {
                r = moat_event_follow_wait(f, 1000, print_event, &o);
                if (r >= 0 && access(dir, F_OK) < 0)
                        break; /* the environment was taken down */
        }
        moat_event_follow_free(f);
        return r < 0 && r != -EPIPE ? cli_env_fail("events", NULL, r) : 0;
}

/* ---------------------------------------------------------------- logs */

struct log_src {
        const char *name;
        int fd;
        char *partial; /* an incomplete last line, kept until its '\n' comes */
        size_t n_partial;
};

/* Prints what is new in one log; returns bytes read or -errno. */
static ssize_t log_pump(struct log_src *l, bool prefix)
{
        char buf[65536];
        ssize_t total = 0, n;
        while ((n = read(l->fd, buf, sizeof buf)) > 0) {
                total += n;
                if (!prefix) {
                        fwrite(buf, 1, (size_t)n, stdout);
                        continue;
                }
                char *p = buf, *end = buf + n;
                while (p < end) {
                        char *nl = memchr(p, '\n', (size_t)(end - p));
                        size_t len = (size_t)((nl ? nl + 1 : end) - p);
                        if (!nl) {
                                char *np = realloc(l->partial, l->n_partial + len);
                                if (!np)
                                        return -ENOMEM;
                                memcpy(np + l->n_partial, p, len);
                                l->partial = np;
                                l->n_partial += len;
                                break;
                        }
                        printf("%s | ", l->name);
                        if (l->n_partial)
                                fwrite(l->partial, 1, l->n_partial, stdout);
                        l->n_partial = 0;
                        fwrite(p, 1, len, stdout);
                        p += len;
                }
        }
        if (n < 0)
                return -errno;
        return fflush(stdout) == 0 ? total : -EPIPE;
}

/* A log capped by the supervisor was truncated under us: read it again from its start. */
static void log_rewind_if_truncated(struct log_src *l)
{
        struct stat st;
        off_t pos = lseek(l->fd, 0, SEEK_CUR);
        if (fstat(l->fd, &st) == 0 && pos > st.st_size)
                (void)lseek(l->fd, 0, SEEK_SET);
}

/* The older copies the cap kept (S.log.N ... S.log.1), oldest first. */
static int print_rotated(const char *path, const char *name, bool prefix)
{
        for (int k = 100; k >= 1; k--) {
                _cleanup_free_ char *old = NULL;
                if (asprintf(&old, "%s.%d", path, k) < 0)
                        return -ENOMEM;
                int fd = open(old, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0)
                        continue;
                struct log_src l = { .name = name, .fd = fd };
                ssize_t r = log_pump(&l, prefix);
                if (l.n_partial)
                        printf("%s%s%.*s\n", prefix ? name : "", prefix ? " | " : "", (int)l.n_partial, l.partial);
                free(l.partial);
                close(fd);
                if (r < 0)
                        return (int)r;
        }
        return 0;
}

int cli_env_print_logs(const char *dir, json_t *state, const char *service, bool follow,
                       bool (*keep_going)(void *userdata), void *userdata)
{
        json_t *svcs = json_object_get(state, "services");
        size_t n = json_array_size(svcs), m = 0, i;
        struct log_src *ls = calloc(n + 1, sizeof(*ls));
        int ret = 0;
        json_t *e;
        if (!ls)
                return -ENOMEM;
        json_array_foreach(svcs, i, e) {
                const char *name = json_string_value(json_object_get(e, "name"));
                if (!name || (service && !STREQ(service, name)))
                        continue;
                ls[m++] = (struct log_src){ .name = name, .fd = -EBADF };
        }
        bool prefix = m > 1 || !service;
        for (size_t k = 0; k < m; k++) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/logs/%s.log", dir, ls[k].name) < 0) {
                        ret = -ENOMEM;
                        goto out;
                }
                if (!follow && (ret = print_rotated(path, ls[k].name, prefix)) < 0)
                        goto out;
                ls[k].fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (ls[k].fd < 0 && errno != ENOENT) {
                        ret = -errno;
                        fprintf(stderr, "moat logs: cannot open '%s': %s\n", path, strerror(errno));
                        goto out;
                }
        }
        for (;;) {
                for (size_t k = 0; k < m; k++) {
                        if (ls[k].fd < 0)
                                continue;
                        log_rewind_if_truncated(&ls[k]);
                        ssize_t r = log_pump(&ls[k], prefix);
                        if (r < 0) {
                                ret = (int)r;
                                goto out;
                        }
                }
                if (!follow || access(dir, F_OK) < 0 || (keep_going && !keep_going(userdata)))
                        break;
                struct timespec ts = { 0, 200 * 1000000L };
                nanosleep(&ts, NULL);
        }
        for (size_t k = 0; k < m; k++)
                if (ls[k].n_partial) /* a last line without '\n' */
                        printf("%s%s%.*s\n", prefix ? ls[k].name : "", prefix ? " | " : "", (int)ls[k].n_partial,
                               ls[k].partial);
out:
        for (size_t k = 0; k < m; k++) {
                if (ls[k].fd >= 0)
                        close(ls[k].fd);
                free(ls[k].partial);
        }
        free(ls);
        return fflush(stdout) == 0 ? ret : -EPIPE;
}

int cli_env_logs(struct moat_globals *g, int argc, char **argv, int idx)
{
        const char *project = NULL, *service = NULL;
        bool follow = false, help = false;
        const struct opt opts[] = {
                { "project-name", 'p', OPT_STR, &project, NULL },
                { "follow", 'f', OPT_BOOL, &follow, NULL },
                { "help", 'h', OPT_BOOL, &help, NULL },
                { 0 },
        };
        char *msg = NULL;
        if (args_parse_operand(argc, argv, idx, opts, "moat logs", &service, &msg) < 0) {
                fprintf(stderr, "moat logs: %s\n", msg ? msg : "bad arguments");
                free(msg);
                return 1;
        }
        if (help) {
                printf("Usage: moat logs [-p NAME] [-f] [SERVICE]\n\n"
                       "The output of a service, or of every service (each line prefixed 'SERVICE | '),\n"
                       "older rotated parts first (the log is capped: logging.options.max-size/max-file).\n"
                       "  -f, --follow   keep printing what comes, until interrupted\n");
                return 0;
        }
        _cleanup_free_ char *dir = NULL;
        json_t *state = NULL;
        if (env_open(g, "logs", project, &dir, &state) != 0)
                return 1;
        int ret = 0;
        if (service && !moat_env_state_service(state, service)) {
                fprintf(stderr, "moat logs: no service '%s' in the environment\n", service);
                ret = 1;
        } else {
                int r = cli_env_print_logs(dir, state, service, follow, NULL, NULL);
                ret = r < 0 && r != -EPIPE ? cli_env_fail("logs", NULL, r) : 0;
        }
        json_decref(state);
        return ret;
}

/* ---------------------------------------------------------------- exec */

int cli_env_exec(struct moat_globals *g, int argc, char **argv, int idx)
{
        const char *project = NULL;
        bool help = false;
        const struct opt opts[] = {
                { "project-name", 'p', OPT_STR, &project, NULL },
                { "help", 'h', OPT_BOOL, &help, NULL },
                { 0 },
        };
        if (cli_env_parse("exec", argc, argv, &idx, opts, true) != 0)
                return 1;
        if (help) {
                printf("Usage: moat exec [-p NAME] SERVICE [--] CMD...\n\n"
                       "Runs CMD in the service's container; exits with CMD's status.\n");
                return 0;
        }
        if (idx >= argc) {
                fprintf(stderr, "moat exec: a service is required (moat exec SERVICE -- CMD...)\n");
                return 1;
        }
        const char *service = argv[idx++];
        if (idx < argc && STREQ(argv[idx], "--"))
                idx++;
        if (idx >= argc) {
                fprintf(stderr, "moat exec: a command is required (moat exec %s -- CMD...)\n", service);
                return 1;
        }
        _cleanup_error_ struct moat_error *err = NULL;
        /* a process goes into a container: run from a sealed copy of us (CVE-2019-5736) */
        int r = moat_selfexe_ensure_sealed(argv, &err);
        if (r < 0)
                return cli_env_fail("exec", err, r);
        _cleanup_free_ char *dir = NULL, *rtroot = NULL;
        json_t *state = NULL;
        if (env_open(g, "exec", project, &dir, &state) != 0)
                return 1;
        json_t *e = moat_env_state_service(state, service);
        const char *id = json_string_value(json_object_get(e, "id"));
        const char *rtr = json_string_value(json_object_get(state, "runtime_root"));
        if (!id) {
                fprintf(stderr, "moat exec: no service '%s' in the environment\n", service);
                json_decref(state);
                return 1;
        }
        _cleanup_free_ char *cid = strdup(id);
        rtroot = rtr ? strdup(rtr) : NULL;
        json_decref(state);
        if (!cid || (!rtroot && asprintf(&rtroot, "%s/runtime", dir) < 0))
                return cli_env_fail("exec", NULL, -ENOMEM);
        struct moat_runtime rt = { .root = rtroot };
        struct moat_process *p = NULL;
        r = moat_container_process(&rt, cid, &p, &err);
        if (r < 0)
                return cli_env_fail("exec", err, r);
        strv_free(p->args);
        p->args = strv_dup(argv + idx);
        p->terminal = false;
        if (!p->args) {
                moat_process_free(p);
                return cli_env_fail("exec", NULL, -ENOMEM);
        }
        struct moat_exec_opts o = { .id = cid, .process = p };
        int status = 0;
        r = moat_container_exec(&rt, &o, &status, &err);
        moat_process_free(p);
        if (r < 0)
                return cli_env_fail("exec", err, r);
        return status;
}
