/* SPDX-License-Identifier: Apache-2.0 */
/* moat up / ps / down / restart: an environment's services as containers (env/up.h).
 *   moat up [-d] [--wait] [-f FILE] [-p NAME]
 *   moat ps [-f FILE] [-p NAME] [--format json]
 *   moat down [-f FILE] [-p NAME] [-v]
 *   moat restart [-f FILE] [-p NAME] [SERVICE...] */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/cleanup.h"
#include "core/util.h"
#include "env/control.h"
#include "env/plan.h"
#include "env/up.h"

/* moat-init sits next to moat.  Found before moat re-executes itself from a sealed copy
 * (then /proc/self/exe is no longer the file on disk) and passed on in $MOAT_INIT. */
static const char *init_path(void)
{
        const char *e = getenv("MOAT_INIT");
        if (e && *e)
                return e;
        static const char *const names[] = { "moat-init", NULL };
        char *real = moat_self_sibling(names);
        if (!real)
                return NULL;
        setenv("MOAT_INIT", real, 1);
        free(real);
        return getenv("MOAT_INIT");
}

static struct moat_env_opts env_opts(struct moat_globals *g)
{
        const char *ipam = getenv("MOAT_IPAM_DIR"), *vol = getenv("MOAT_VOLUMES_DIR");
        return (struct moat_env_opts){
                .root = g->root,
                .store = g->store,
                .ipam_dir = ipam && *ipam ? ipam : NULL,
                .volumes = vol && *vol ? vol : NULL,
                .init_path = getenv("MOAT_INIT"),
        };
}

static void up_usage(void)
{
        printf("Usage: moat up [-d] [--wait] [-f FILE] [-p NAME]\n\n"
               "Starts every service of the environment file as a container, in dependency order\n"
               "(depends_on conditions: started, healthy, completed successfully), on the environment's\n"
               "own bridge behind its policy: a service reaches only the services it lists in\n"
               "depends_on or x-moat.allow.  A supervisor keeps them: health checks, restart policies,\n"
               "capped logs, events (moat events).\n\n"
               "Without -d, the services' output follows; Ctrl-C (or every service ending) takes the\n"
               "environment down.  With -d, moat up returns once every service has started.\n\n"
               "  -d, --detach          return once every service is started; stop with moat down\n"
               "      --wait            also wait until every health check has passed\n"
               "  -f, --file FILE       the file (default: compose.yaml ... here)\n"
               "  -p, --project-name N  the project name (default: the directory's name)\n");
}

static void print_progress(const char *line, void *userdata)
{
        (void)userdata;
        printf("%s\n", line);
        fflush(stdout);
}

static volatile sig_atomic_t up_interrupted;
static void on_up_signal(int sig)
{
        (void)sig;
        up_interrupted = 1;
}

struct fg {
        const char *dir;
        int64_t next_check;
};

/* Foreground: carry on while not interrupted and some service runs or will run again. */
static bool fg_keep_going(void *userdata)
{
        struct fg *f = userdata;
        if (up_interrupted)
                return false;
        if (++f->next_check % 5) /* the state every second (the logs poll every 200 ms) */
                return true;
        json_t *st = NULL;
        struct moat_error *err = NULL;
        if (moat_env_state_load(f->dir, &st, &err) < 0) {
                moat_error_free(err);
                return false;
        }
        bool live = false;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(st, "services"), i, e) {
                const char *s = json_string_value(json_object_get(e, "state"));
                live = live || !s || (!STREQ(s, "exited") && !STREQ(s, "failed") && !STREQ(s, "stopped"));
        }
        json_decref(st);
        return live;
}

static int foreground(struct moat_env_opts *o, const char *project)
{
        struct sigaction sa = { .sa_handler = on_up_signal };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        _cleanup_free_ char *dir = moat_env_dir(o, project);
        json_t *st = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        int r = dir ? moat_env_state_load(dir, &st, &err) : -ENOMEM;
        if (r >= 0) {
                printf("attached to '%s': Ctrl-C takes it down\n", project);
                struct fg f = { .dir = dir };
                r = cli_env_print_logs(dir, st, NULL, true, fg_keep_going, &f);
                json_decref(st);
        }
        printf("%s: taking '%s' down\n", up_interrupted ? "interrupted" : "every service ended", project);
        fflush(stdout);
        bool found = false;
        moat_error_free(TAKE_PTR(err));
        int d = moat_env_down(o, project, false, &found, &err);
        if (d < 0)
                return cli_env_fail("up", err, d);
        printf("environment '%s' is down\n", project);
        return r < 0 && r != -EPIPE ? 1 : 0;
}

int cli_env_up(struct moat_globals *g, int argc, char **argv, int idx)
{
        const char *file = NULL, *project = NULL;
        bool detach = false, wait = false, help = false;
        const struct opt opts[] = {
                { "file", 'f', OPT_STR, &file, NULL },
                { "project-name", 'p', OPT_STR, &project, NULL },
                { "detach", 'd', OPT_BOOL, &detach, NULL },
                { "wait", 0, OPT_BOOL, &wait, NULL },
                { "help", 'h', OPT_BOOL, &help, NULL },
                { 0 },
        };
        if (cli_env_parse("up", argc, argv, &idx, opts, false) != 0)
                return 1;
        if (help) {
                up_usage();
                return 0;
        }
        if (!init_path()) {
                fprintf(stderr, "moat up: moat-init not found next to moat (set MOAT_INIT to its path)\n");
                return 1;
        }
        _cleanup_error_ struct moat_error *err = NULL;
        /* Processes go into containers: run from a sealed copy of us (CVE-2019-5736). */
        int r = moat_selfexe_ensure_sealed(argv, &err);
        if (r < 0)
                return cli_env_fail("up", err, r);
        _cleanup_plan_ struct moat_plan *plan = NULL;
        if (cli_env_load_plan("up", file, project, &plan) != 0)
                return 1;
        struct moat_env_opts o = env_opts(g);
        o.wait_healthy = wait;
        o.progress = print_progress;
        r = moat_env_up(plan, &o, &err);
        if (r < 0) {
                cli_env_fail("up", err, r);
                if (r != -EEXIST)
                        fprintf(stderr, "moat up: what was made is recorded; remove it with: moat down -p %s\n",
                                plan->project);
                return 1;
        }
        if (!detach)
                return foreground(&o, plan->project);
        printf("environment '%s' is up (moat ps -p %s; moat down -p %s)\n", plan->project, plan->project,
               plan->project);
        return fflush(stdout) == 0 ? 0 : 1;
}

static void ps_usage(void)
{
        printf("Usage: moat ps [-f FILE] [-p NAME] [--format json]\n\n"
               "A line per service of the environment: NAME STATE HEALTH ADDRESS PORTS.\n");
}

int cli_env_ps(struct moat_globals *g, int argc, char **argv, int idx)
{
        const char *file = NULL, *project = NULL, *format = NULL;
        bool help = false;
        const struct opt opts[] = {
                { "file", 'f', OPT_STR, &file, NULL },
                { "project-name", 'p', OPT_STR, &project, NULL },
                { "format", 0, OPT_STR, &format, NULL },
                { "help", 'h', OPT_BOOL, &help, NULL },
                { 0 },
        };
        if (cli_env_parse("ps", argc, argv, &idx, opts, false) != 0)
                return 1;
        if (help) {
                ps_usage();
                return 0;
        }
        if (format && !STREQ(format, "json") && !STREQ(format, "table")) {
                fprintf(stderr, "moat ps: unknown format '%s' (json or table)\n", format);
                return 1;
        }
        _cleanup_free_ char *name = NULL;
        if (cli_env_project("ps", file, project, true, &name) != 0)
                return 1;
        struct moat_env_opts o = env_opts(g);
        _cleanup_error_ struct moat_error *err = NULL;
        json_t *a = NULL;
        int r = moat_env_ps(&o, name, &a, &err);
        if (r < 0)
                return cli_env_fail("ps", err, r);
        if (format && STREQ(format, "json")) {
                _cleanup_free_ char *d = json_dumps(a, JSON_INDENT(2));
                if (d)
                        puts(d);
        } else {
                printf("%-20s %-12s %-10s %-16s %s\n", "NAME", "STATE", "HEALTH", "ADDRESS", "PORTS");
                size_t i;
                json_t *e;
                json_array_foreach(a, i, e) {
                        char state[32];
                        json_t *xs = json_object_get(e, "exit_status");
                        const char *st = json_string_value(json_object_get(e, "state"));
                        if (xs && st && (STREQ(st, "exited") || STREQ(st, "stopped")))
                                snprintf(state, sizeof state, "%s (%d)", st, (int)json_integer_value(xs));
                        else
                                snprintf(state, sizeof state, "%s", st ? st : "?");
                        const char *h = json_string_value(json_object_get(e, "health"));
                        printf("%-20s %-12s %-10s %-16s ", json_string_value(json_object_get(e, "name")), state,
                               h && *h ? h : "-", json_string_value(json_object_get(e, "address")));
                        size_t k;
                        json_t *p;
                        json_array_foreach(json_object_get(e, "ports"), k, p)
                                printf("%s%s", k ? ", " : "", json_string_value(p));
                        putchar('\n');
                }
        }
        json_decref(a);
        return fflush(stdout) == 0 ? 0 : 1;
}

static void down_usage(void)
{
        printf("Usage: moat down [-f FILE] [-p NAME] [-v]\n\n"
               "Stops and removes every container of the environment (all at once), its bundles, its\n"
               "bridge and links, its policy and its addresses.  Works after a crash of moat up, and\n"
               "when the environment is not up (then it does nothing).\n\n"
               "  -v, --volumes         also the environment's named volumes\n");
}

int cli_env_down(struct moat_globals *g, int argc, char **argv, int idx)
{
        const char *file = NULL, *project = NULL;
        bool volumes = false, help = false;
        const struct opt opts[] = {
                { "file", 'f', OPT_STR, &file, NULL },
                { "project-name", 'p', OPT_STR, &project, NULL },
                { "volumes", 'v', OPT_BOOL, &volumes, NULL },
                { "help", 'h', OPT_BOOL, &help, NULL },
                { 0 },
        };
        if (cli_env_parse("down", argc, argv, &idx, opts, false) != 0)
                return 1;
        if (help) {
                down_usage();
                return 0;
        }
        _cleanup_free_ char *name = NULL;
        if (cli_env_project("down", file, project, true, &name) != 0)
                return 1;
        struct moat_env_opts o = env_opts(g);
        _cleanup_error_ struct moat_error *err = NULL;
        bool found = false;
        int r = moat_env_down(&o, name, volumes, &found, &err);
        if (r < 0)
                return cli_env_fail("down", err, r);
        if (found)
                printf("environment '%s' is down\n", name);
        else
                printf("environment '%s' was not up: nothing to do\n", name);
        return fflush(stdout) == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------- restart */

int cli_env_restart(struct moat_globals *g, int argc, char **argv, int idx)
{
        const char *file = NULL, *project = NULL;
        bool help = false;
        const struct opt opts[] = {
                { "file", 'f', OPT_STR, &file, NULL },
                { "project-name", 'p', OPT_STR, &project, NULL },
                { "help", 'h', OPT_BOOL, &help, NULL },
                { 0 },
        };
        if (cli_env_parse("restart", argc, argv, &idx, opts, true) != 0)
                return 1;
        if (help) {
                printf("Usage: moat restart [-f FILE] [-p NAME] [SERVICE...]\n\n"
                       "Stops the services (all when none are named) and starts them again, in place: same\n"
                       "address, same policy.  Returns once each runs again (or failed to).\n");
                return 0;
        }
        _cleanup_free_ char *name = NULL;
        if (cli_env_project("restart", file, project, true, &name) != 0)
                return 1;
        struct moat_env_opts o = env_opts(g);
        _cleanup_free_ char *dir = moat_env_dir(&o, name);
        json_t *req = json_pack("{s:s, s:[]}", "op", "restart", "services");
        if (!dir || !req)
                return cli_env_fail("restart", NULL, -ENOMEM);
        for (int i = idx; i < argc; i++)
                json_array_append_new(json_object_get(req, "services"), json_string(argv[i]));
        _cleanup_error_ struct moat_error *err = NULL;
        json_t *resp = NULL;
        int r = moat_control_call(dir, req, 120000, &resp, &err);
        json_decref(req);
        if (r < 0) {
                if (r == -ENOENT || r == -ECONNREFUSED)
                        fprintf(stderr, "moat restart: environment '%s' has no running supervisor (is it up? moat "
                                        "down -p %s && moat up -p %s starts it again)\n", name, name, name);
                else
                        cli_env_fail("restart", err, r);
                return 1;
        }
        int ret = 0;
        const char *e = json_string_value(json_object_get(resp, "error"));
        if (e) {
                fprintf(stderr, "moat restart: %s\n", e);
                ret = 1;
        }
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(resp, "services"), i, s) {
                const char *st = json_string_value(json_object_get(s, "state"));
                const char *er = json_string_value(json_object_get(s, "error"));
                printf("%s %s%s%s\n", json_string_value(json_object_get(s, "name")), st && STREQ(st, "running") ? "restarted" : st ? st : "?",
                       er ? ": " : "", er ? er : "");
                if (!st || !STREQ(st, "running"))
                        ret = 1;
        }
        json_decref(resp);
        return fflush(stdout) == 0 ? ret : 1;
}
