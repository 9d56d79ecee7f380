/* SPDX-License-Identifier: Apache-2.0 */
/* moat-runtime's verbs, as runc has them. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/log.h"
#include "core/util.h"
#include "oci/features.h"
#include "oci/spec.h"

void cli_runtime_usage(const char *prog)
{
        printf("Usage: %s [global options] COMMAND [options] ARGS\n\n"
               "Commands (as runc):\n"
               "  create    create a container            start     start a created container\n"
               "  run       create and start a container  state     print a container's state\n"
               "  kill      signal a container            delete    delete a container\n"
               "  list      list containers               ps        list a container's processes\n"
               "  exec      run a process in a container  pause     freeze a container\n"
               "  resume    thaw a container              update    change a container's resources\n"
               "  events    resource stats and OOM events features  what this runtime supports\n"
               "  spec      write a default config.json\n\n"
               "Global options: --root DIR  --log FILE  --log-format text|json  --debug\n",
               prog);
}

static const struct {
        const char *name;
        int sig;
} signals[] = {
        { "HUP", SIGHUP },   { "INT", SIGINT },     { "QUIT", SIGQUIT },     { "ILL", SIGILL },   { "TRAP", SIGTRAP },
        { "ABRT", SIGABRT }, { "IOT", SIGIOT },     { "BUS", SIGBUS },       { "FPE", SIGFPE },   { "KILL", SIGKILL },
        { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },   { "USR2", SIGUSR2 },     { "PIPE", SIGPIPE }, { "ALRM", SIGALRM },
        { "TERM", SIGTERM }, { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD },   { "CONT", SIGCONT }, { "STOP", SIGSTOP },
        { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },   { "TTOU", SIGTTOU },     { "URG", SIGURG },   { "XCPU", SIGXCPU },
        { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },   { "WINCH", SIGWINCH }, { "IO", SIGIO },
        { "POLL", SIGPOLL }, { "PWR", SIGPWR },     { "SYS", SIGSYS },
};

int cli_signal_parse(const char *s, int *sig)
{
        int n;
        if (parse_int(s, &n) == 0) {
                if (n <= 0 || n > SIGRTMAX)
                        return -EINVAL;
                *sig = n;
                return 0;
        }
        const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
        for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
                if (strcasecmp(name, signals[i].name) == 0) {
                        *sig = signals[i].sig;
                        return 0;
                }
        if (strncasecmp(name, "RTMIN", 5) == 0 || strncasecmp(name, "RTMAX", 5) == 0) {
                int base = strncasecmp(name, "RTMIN", 5) == 0 ? SIGRTMIN : SIGRTMAX;
                int off = 0;
                if (name[5] && (parse_int(name + 5, &off) < 0 || (name[5] != '+' && name[5] != '-')))
                        return -EINVAL;
                n = base + off;
                if (n < SIGRTMIN || n > SIGRTMAX)
                        return -EINVAL;
                *sig = n;
                return 0;
        }
        return -EINVAL;
}

int cli_size_parse(const char *s, int64_t *out)
{
        if (!s || !*s)
                return -EINVAL;
        char *end = NULL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s)
                return -EINVAL;
        int64_t mult = 1;
        if (*end) {
                switch (*end | 0x20) {
                case 'b': mult = 1; break;
                case 'k': mult = 1LL << 10; break;
                case 'm': mult = 1LL << 20; break;
                case 'g': mult = 1LL << 30; break;
                case 't': mult = 1LL << 40; break;
                default: return -EINVAL;
                }
                end++;
                if ((*end | 0x20) == 'b' || (*end | 0x20) == 'i')
                        end++;
                if ((*end | 0x20) == 'b')
                        end++;
                if (*end)
                        return -EINVAL;
        }
        if (v > 0 && v > INT64_MAX / mult)
                return -ERANGE;
        *out = v * mult;
        return 0;
}

static int need_id(struct cli_globals *g, int argc, char **argv, int idx, const char *verb)
{
        if (idx >= argc) {
                char msg[128];
                snprintf(msg, sizeof(msg), "%s: a container id is required", verb);
                return cli_fail(g, NULL, msg);
        }
        return 0;
}

static int bad_args(struct cli_globals *g, char *msg)
{
        int r = cli_fail(g, NULL, msg ? msg : "bad arguments");
        free(msg);
        return r;
}

static int print_json(json_t *j, bool pretty)
{
        char *s = json_dumps(j, pretty ? JSON_INDENT(2) : JSON_COMPACT);
        json_decref(j);
        if (!s)
                return 1;
        puts(s);
        free(s);
        return 0;
}

int (*cli_vm_create)(const struct moat_runtime *rt, const struct moat_create_opts *o, struct moat_error **err);

/* Whether the bundle's config.json asks for the vm tier (annotation moat.isolation=vm). */
static bool bundle_wants_vm(const char *bundle)
{
        char *path = NULL;
        if (asprintf(&path, "%s/config.json", bundle ? bundle : ".") < 0)
                return false;
        json_t *doc = json_load_file(path, 0, NULL);
        free(path);
        const char *v = json_string_value(json_object_get(json_object_get(doc, "annotations"), "moat.isolation"));
        bool vm = v && strcmp(v, "vm") == 0;
        json_decref(doc);
        return vm;
}

static int vm_create(struct cli_globals *g, const struct moat_runtime *rt, const struct moat_create_opts *o,
                     bool run, char **argv)
{
        if (run) {
                fprintf(stderr, "%s: run: a bundle with moat.isolation=vm goes through create and start\n", g->prog);
                return 1;
        }
        if (!cli_vm_create) { /* the lean binary: the full one has the vm tier */
                const char *full = getenv("MOAT_FULL_BIN");
                if (!full || !*full) {
                        fprintf(stderr, "%s: create: moat.isolation=vm needs the moat binary next to moat-runtime\n",
                                g->prog);
                        return 1;
                }
                execv(full, argv);
                fprintf(stderr, "%s: create: cannot run '%s': %s\n", g->prog, full, strerror(errno));
                return 1;
        }
        struct moat_error *err = NULL;
        if (cli_vm_create(rt, o, &err) < 0) {
                cli_fail(g, err, NULL);
                moat_error_free(err);
                return 1;
        }
        return 0;
}

static int cmd_create_run(struct cli_globals *g, int argc, char **argv, int idx, bool run)
{
        struct moat_create_opts o = { 0 };
        bool detach = false, keep = false, no_subreaper = false;
        const char *pidfd_socket = NULL;
        const struct opt opts[] = {
                { "bundle", 'b', OPT_STR, &o.bundle, NULL },
                { "console-socket", 0, OPT_STR, &o.console_socket, NULL },
                { "pid-file", 0, OPT_STR, &o.pid_file, NULL },
                { "no-pivot", 0, OPT_BOOL, &o.no_pivot, NULL },
                { "no-new-keyring", 0, OPT_BOOL, &o.no_new_keyring, NULL },
                { "preserve-fds", 0, OPT_INT, &o.preserve_fds, NULL },
                { "pidfd-socket", 0, OPT_STR, &pidfd_socket, NULL },
                { "detach", 'd', OPT_BOOL, &detach, NULL },
                { "keep", 0, OPT_BOOL, &keep, NULL },
                { "no-subreaper", 0, OPT_BOOL, &no_subreaper, NULL },
                { 0 },
        };
        const char *verb = run ? "run" : "create";
        char *msg = NULL;
        if (args_parse(argc, argv, &idx, opts, verb, &msg) < 0)
                return bad_args(g, msg);
        if (need_id(g, argc, argv, idx, verb))
                return 1;
        o.id = argv[idx];
        o.detach = detach;
        o.keep = keep;
        struct moat_error *err = NULL;
        struct moat_runtime rt = { .root = g->root };
        if (bundle_wants_vm(o.bundle))
                return vm_create(g, &rt, &o, run, argv);
        int r, status = 0;
        if (run)
                r = moat_container_run(&rt, &o, &status, &err);
        else
                r = moat_container_create(&rt, &o, &err);
        if (r < 0) {
                cli_fail(g, err, NULL);
                moat_error_free(err);
                return 1;
        }
        return run ? status : 0;
}

static int cmd_simple(struct cli_globals *g, int argc, char **argv, int idx, const char *verb)
{
        char *msg = NULL;
        const struct opt none[] = { { 0 } };
        if (args_parse(argc, argv, &idx, none, verb, &msg) < 0)
                return bad_args(g, msg);
        if (need_id(g, argc, argv, idx, verb))
                return 1;
        const char *id = argv[idx];
        struct moat_runtime rt = { .root = g->root };
        struct moat_error *err = NULL;
        int r;
        if (strcmp(verb, "start") == 0) {
                r = moat_container_start(&rt, id, &err);
        } else if (strcmp(verb, "pause") == 0 || strcmp(verb, "resume") == 0) {
                r = moat_container_pause(&rt, id, strcmp(verb, "pause") == 0, &err);
        } else { /* state */
                json_t *j = NULL;
                r = moat_container_state(&rt, id, &j, &err);
                if (r >= 0)
                        return print_json(j, true);
        }
        if (r < 0) {
                cli_fail(g, err, NULL);
                moat_error_free(err);
                return 1;
        }
        return 0;
}

static int cmd_kill(struct cli_globals *g, int argc, char **argv, int idx)
{
        bool all = false;
        const struct opt opts[] = { { "all", 'a', OPT_BOOL, &all, NULL }, { 0 } };
        char *msg = NULL;
        if (args_parse(argc, argv, &idx, opts, "kill", &msg) < 0)
                return bad_args(g, msg);
        if (need_id(g, argc, argv, idx, "kill"))
                return 1;
        int sig = SIGTERM;
        if (idx + 1 < argc && cli_signal_parse(argv[idx + 1], &sig) < 0) {
                char m[160];
                snprintf(m, sizeof(m), "kill: unknown signal '%s'", argv[idx + 1]);
                return cli_fail(g, NULL, m);
        }
        struct moat_runtime rt = { .root = g->root };
        struct moat_error *err = NULL;
        if (moat_container_kill(&rt, argv[idx], sig, all, &err) < 0) {
                cli_fail(g, err, NULL);
                moat_error_free(err);
                return 1;
        }
        return 0;
}

static int cmd_delete(struct cli_globals *g, int argc, char **argv, int idx)
{
        bool force = false;
        const struct opt opts[] = { { "force", 'f', OPT_BOOL, &force, NULL }, { 0 } };
        char *msg = NULL;
        if (args_parse(argc, argv, &idx, opts, "delete", &msg) < 0)
                return bad_args(g, msg);
        if (need_id(g, argc, argv, idx, "delete"))
                return 1;
        struct moat_runtime rt = { .root = g->root };
        int ret = 0;
        for (; idx < argc; idx++) {
                struct moat_error *err = NULL;
                if (moat_container_delete(&rt, argv[idx], force, &err) < 0) {
                        cli_fail(g, err, NULL);
                        moat_error_free(err);
                        ret = 1;
                }
        }
        return ret;
}

static int cmd_list(struct cli_globals *g, int argc, char **argv, int idx)
{
        const char *format = "table";
        bool quiet = false;
        const struct opt opts[] = { { "format", 'f', OPT_STR, &format, NULL },
                                    { "quiet", 'q', OPT_BOOL, &quiet, NULL }, { 0 } };
        char *msg = NULL;
        if (args_parse(argc, argv, &idx, opts, "list", &msg) < 0)
                return bad_args(g, msg);
        struct moat_runtime rt = { .root = g->root };
        struct moat_error *err = NULL;
        json_t *arr = NULL;
        if (moat_container_list(&rt, &arr, &err) < 0) {
                cli_fail(g, err, NULL);
                moat_error_free(err);
                return 1;
        }
        if (strcmp(format, "json") == 0)
                return print_json(arr, false);
        if (strcmp(format, "table") != 0) {
                json_decref(arr);
                return cli_fail(g, NULL, "list: --format must be table or json");
        }
        size_t i;
        json_t *c;
        if (!quiet)
                printf("%-20s %-8s %-10s %-40s %-31s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
        json_array_foreach(arr, i, c) {
                if (quiet)
                        printf("%s\n", json_string_value(json_object_get(c, "id")));
                else
                        printf("%-20s %-8lld %-10s %-40s %-31s %s\n", json_string_value(json_object_get(c, "id")),
                               (long long)json_integer_value(json_object_get(c, "pid")),
                               json_string_value(json_object_get(c, "status")),
                               json_string_value(json_object_get(c, "bundle")),
                               json_string_value(json_object_get(c, "created")),
                               json_string_value(json_object_get(c, "owner")));
        }
        json_decref(arr);
        return 0;
}

static int cmd_ps(struct cli_globals *g, int argc, char **argv, int idx)
{
        const char *format = "table";
        const struct opt opts[] = { { "format", 'f', OPT_STR, &format, NULL }, { 0 } };
        char *msg = NULL;
        if (args_parse(argc, argv, &idx, opts, "ps", &msg) < 0)
                return bad_args(g, msg);
        if (need_id(g, argc, argv, idx, "ps"))
                return 1;
        struct moat_runtime rt = { .root = g->root };
        struct moat_error *err = NULL;
        pid_t *pids = NULL;
        size_t n = 0;
        if (moat_container_pids(&rt, argv[idx], &pids, &n, &err) < 0) {
                cli_fail(g, err, NULL);
                moat_error_free(err);
                return 1;
        }
        if (strcmp(format, "json") == 0) {
                json_t *a = json_array();
                for (size_t i = 0; i < n; i++)
                        json_array_append_new(a, json_integer(pids[i]));
                free(pids);
                return print_json(a, false);
        }
        if (strcmp(format, "table") != 0) {
                free(pids);
                return cli_fail(g, NULL, "ps: --format must be table or json");
        }
        /* As runc: run ps(1) with the given options (default -ef) and keep our rows. */
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                free(pids);
                return cli_fail(g, NULL, "ps: cannot create a pipe");
        }
        pid_t child = fork();
        if (child == 0) {
                dup2(pfd[1], 1);
                int extra = argc - idx - 1;
                char **av = calloc((size_t)extra + 3, sizeof(char *));
                if (!av)
                        _exit(127);
                av[0] = "ps";
                if (extra == 0)
                        av[1] = "-ef";
                for (int i = 0; i < extra; i++)
                        av[1 + i] = argv[idx + 1 + i];
                execvp("ps", av);
                _exit(127);
        }
        close(pfd[1]);
        char *out = NULL;
        (void)read_fd_all(pfd[0], &out, NULL);
        close(pfd[0]);
        int status = 0;
        if (child > 0)
                while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                        ;
        if (!out || child < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                free(out);
                free(pids);
                return cli_fail(g, NULL, "ps: running ps(1) failed");
        }
        char *save = NULL;
        int pid_col = -1, line_no = 0;
        for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), line_no++) {
                if (line_no == 0) {
                        char *copy = strdup(line), *s2 = NULL;
                        int col = 0;
                        for (char *f = strtok_r(copy, " \t", &s2); f; f = strtok_r(NULL, " \t", &s2), col++)
                                if (strcmp(f, "PID") == 0)
                                        pid_col = col;
                        free(copy);
                        puts(line);
                        continue;
                }
                char *copy = strdup(line), *s2 = NULL;
                int col = 0, pid = -1;
                for (char *f = strtok_r(copy, " \t", &s2); f; f = strtok_r(NULL, " \t", &s2), col++)
                        if (col == pid_col) {
                                (void)parse_int(f, &pid);
                                break;
                        }
                free(copy);
                for (size_t i = 0; i < n; i++)
                        if (pids[i] == pid) {
                                puts(line);
                                break;
                        }
        }
        free(out);
        free(pids);
        return pid_col < 0 ? cli_fail(g, NULL, "ps: no PID column in ps(1) output") : 0;
}

static int cmd_features(struct cli_globals *g, int argc, char **argv, int idx)
{
        char *s = moat_features_json();
        if (!s)
                return cli_fail(g, NULL, "features: out of memory");
        puts(s);
        free(s);
        return 0;
}

static int cmd_spec(struct cli_globals *g, int argc, char **argv, int idx)
{
        const char *bundle = ".";
        bool rootless = false;
        const struct opt opts[] = { { "bundle", 'b', OPT_STR, &bundle, NULL },
                                    { "rootless", 0, OPT_BOOL, &rootless, NULL }, { 0 } };
        char *msg = NULL;
        if (args_parse(argc, argv, &idx, opts, "spec", &msg) < 0)
                return bad_args(g, msg);
        _cleanup_free_ char *text = moat_spec_default_json(rootless);
        if (!text)
                return cli_fail(g, NULL, "spec: out of memory");
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/config.json", bundle) < 0)
                return 1;
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
                char m[512];
                snprintf(m, sizeof(m), "spec: cannot write '%s': %s%s", path, strerror(errno),
                         errno == EEXIST ? " (remove it first)" : "");
                return cli_fail(g, NULL, m);
        }
        int r = (int)write_all(fd, text, strlen(text));
        if (r >= 0)
                r = (int)write_all(fd, "\n", 1);
        close(fd);
        return r < 0 ? cli_fail(g, NULL, "spec: write failed") : 0;
}

int cli_exec(struct cli_globals *g, int argc, char **argv, int idx);
int cli_update(struct cli_globals *g, int argc, char **argv, int idx);
int cli_events(struct cli_globals *g, int argc, char **argv, int idx);

int cli_runtime_verb(struct cli_globals *g, int argc, char **argv, int idx)
{
        const char *verb = argv[idx++];
        /* Verbs that put a process into a container run from a sealed copy of us. */
        if (strcmp(verb, "create") == 0 || strcmp(verb, "run") == 0 || strcmp(verb, "exec") == 0) {
                struct moat_error *err = NULL;
                if (moat_selfexe_ensure_sealed(argv, &err) < 0) {
                        cli_fail(g, err, NULL);
                        moat_error_free(err);
                        return 1;
                }
        }
        if (strcmp(verb, "create") == 0)
                return cmd_create_run(g, argc, argv, idx, false);
        if (strcmp(verb, "run") == 0)
                return cmd_create_run(g, argc, argv, idx, true);
        if (strcmp(verb, "start") == 0 || strcmp(verb, "state") == 0 || strcmp(verb, "pause") == 0 ||
            strcmp(verb, "resume") == 0)
                return cmd_simple(g, argc, argv, idx, verb);
        if (strcmp(verb, "kill") == 0)
                return cmd_kill(g, argc, argv, idx);
        if (strcmp(verb, "delete") == 0 || strcmp(verb, "rm") == 0)
                return cmd_delete(g, argc, argv, idx);
        if (strcmp(verb, "list") == 0 || strcmp(verb, "ls") == 0)
                return cmd_list(g, argc, argv, idx);
        if (strcmp(verb, "ps") == 0)
                return cmd_ps(g, argc, argv, idx);
        if (strcmp(verb, "exec") == 0)
                return cli_exec(g, argc, argv, idx);
        if (strcmp(verb, "update") == 0)
                return cli_update(g, argc, argv, idx);
        if (strcmp(verb, "events") == 0)
                return cli_events(g, argc, argv, idx);
        if (strcmp(verb, "features") == 0)
                return cmd_features(g, argc, argv, idx);
        if (strcmp(verb, "spec") == 0)
                return cmd_spec(g, argc, argv, idx);
        if (strcmp(verb, "help") == 0) {
                cli_runtime_usage(g->prog);
                return 0;
        }
        char m[160];
        snprintf(m, sizeof(m), "unknown command '%s' (see --help)", verb);
        return cli_fail(g, NULL, m);
}
