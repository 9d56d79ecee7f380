/* SPDX-License-Identifier: Apache-2.0 */
/* moat down and moat ps.  down trusts the record for what only it knows (the IPAM state dir)
 * and looks at the environment's own places for the rest, so a record written just before a
 * crash, or none at all, still leads to everything: every container under its runtime root
 * (SIGTERM to all, then a wait, then delete --force), every bundle (rootfs unmounted), the nft
 * tables, every moat-<tag> link, the IPAM addresses, the directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "env/supervisor.h"
#include "env/up.h"
#include "env/volumes.h"
#include "image/bundle.h"
#include "net/ipam.h"
#include "net/link.h"
#include "net/policy.h"
#include "runtime/container.h"

#define DEFAULT_IPAM_DIR "/var/lib/moat/ipam"
#define STOP_WAIT_MS (MOAT_ENV_STOP_GRACE_MS + 1000)

/* Keeps the first error, carries on. */
static void keep_err(int *ret, struct moat_error **err, int r, struct moat_error *e)
{
        if (r < 0 && *ret >= 0) {
                *ret = r;
                if (err && !*err)
                        *err = e, e = NULL;
        } else if (r < 0) {
                moat_warn("%s", e && e->msg ? e->msg : strerror(-r));
        }
        moat_error_free(e);
}

static char *state_of(const struct moat_runtime *rt, const char *id, pid_t *pid)
{
        json_t *st = NULL;
        struct moat_error *e = NULL;
        int r = moat_container_state(rt, id, &st, &e);
        moat_error_free(e);
        if (r < 0)
                return NULL;
        char *s = strdup(json_string_value(json_object_get(st, "status")) ?: "unknown");
        if (pid)
                *pid = (pid_t)json_integer_value(json_object_get(st, "pid"));
        json_decref(st);
        return s;
}

/* The ids of the containers under the runtime root. */
static int runtime_ids(const struct moat_runtime *rt, char ***ids)
{
        _cleanup_closedir_ DIR *d = opendir(rt->root);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && de->d_type == DT_DIR && strv_push(ids, de->d_name) < 0)
                        return -ENOMEM;
        return 0;
}

static void sleep_ms(long ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static int stop_containers(const struct moat_runtime *rt, char **ids, int *ret, struct moat_error **err)
{
        /* all at once: SIGTERM to every one (moat-init passes it on, and SIGKILLs after its grace) */
        for (char **id = ids; id && *id; id++) {
                _cleanup_free_ char *st = state_of(rt, *id, NULL);
                if (st && strcmp(st, "running") == 0) {
                        struct moat_error *e = NULL;
                        moat_container_kill(rt, *id, SIGTERM, false, &e);
                        moat_error_free(e);
                }
        }
        int64_t deadline = now_ns() + (int64_t)STOP_WAIT_MS * 1000000;
        for (;;) {
                bool running = false;
                for (char **id = ids; id && *id && !running; id++) {
                        _cleanup_free_ char *st = state_of(rt, *id, NULL);
                        running = st && strcmp(st, "running") == 0;
                }
                if (!running || now_ns() > deadline)
                        break;
                sleep_ms(10);
        }
        for (char **id = ids; id && *id; id++) {
                struct moat_error *e = NULL;
                int r = moat_container_delete(rt, *id, true, &e);
                if (r == -ENOENT)
                        r = 0;
                keep_err(ret, err, r, e);
        }
        return 0;
}

static void remove_bundles(const char *dir, int *ret, struct moat_error **err)
{
        _cleanup_free_ char *bdir = NULL;
        if (asprintf(&bdir, "%s/bundles", dir) < 0)
                return;
        _cleanup_closedir_ DIR *d = opendir(bdir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *b = NULL;
                if (asprintf(&b, "%s/%s", bdir, de->d_name) < 0)
                        return;
                struct moat_error *e = NULL;
                int r = moat_bundle_remove(b, &e);
                keep_err(ret, err, r, e);
        }
}

/* Nothing may be mounted under dir when it is removed (rm_rf_at does not cross mounts, and a
 * mount left there would be a leak): say which. */
static int mounted_under(const char *dir, char **which)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return -errno;
        size_t n = strlen(dir);
        char line[4096];
        while (fgets(line, sizeof line, f)) {
                char mp[4096];
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strncmp(mp, dir, n) == 0 && mp[n] == '/') {
                        *which = strdup(mp);
                        return 1;
                }
        }
        return 0;
}

int moat_env_down(const struct moat_env_opts *o, const char *project, bool volumes, bool *found,
                  struct moat_error **err)
{
        _cleanup_free_ char *dir = moat_env_dir(o, project), *rtroot = NULL;
        if (!dir || asprintf(&rtroot, "%s/runtime", dir) < 0)
                return -ENOMEM;
        (void)moat_env_supervisor_stop(dir); /* first: it would report (or act on) what down does */
        json_t *state = NULL;
        struct moat_error *lerr = NULL;
        int r = moat_env_state_load(dir, &state, &lerr);
        if (r < 0 && r != -ENOENT)
                moat_warn("%s: carrying on without it", lerr && lerr->msg ? lerr->msg : "bad record");
        moat_error_free(lerr);
        *found = state || access(dir, F_OK) == 0;
        int ret = 0;
        struct moat_runtime rt = { .root = rtroot };
        _cleanup_strv_ char **ids = NULL;
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(state, "services"), i, s) {
                const char *id = json_string_value(json_object_get(s, "id"));
                if (id && !strv_contains(ids, id) && strv_push(&ids, id) < 0) {
                        json_decref(state);
                        return -ENOMEM;
                }
        }
        _cleanup_strv_ char **found_ids = NULL;
        r = runtime_ids(&rt, &found_ids);
        if (r < 0) {
                r = moat_error_set(&lerr, -r, "cannot list '%s'", rtroot);
                keep_err(&ret, err, r, TAKE_PTR(lerr));
        }
        for (char **id = found_ids; id && *id; id++)
                if (!strv_contains(ids, *id) && strv_push(&ids, *id) < 0) {
                        json_decref(state);
                        return -ENOMEM;
                }
        stop_containers(&rt, ids, &ret, err);
        remove_bundles(dir, &ret, err);
        struct moat_error *e = NULL;
        r = moat_policy_remove(project, &e);
        keep_err(&ret, err, r, TAKE_PTR(e));
        r = moat_net_delete_env_links(NULL, project, &e);
        keep_err(&ret, err, r < 0 ? r : 0, TAKE_PTR(e));
        *found = *found || r > 0;
        const char *ipam = json_string_value(json_object_get(state, "ipam_dir"));
        if (!ipam)
                ipam = o->ipam_dir ? o->ipam_dir : DEFAULT_IPAM_DIR;
        if (access(ipam, F_OK) == 0) {
                struct moat_ipam_opts io = { .state_dir = ipam, .routes_given = true };
                r = moat_ipam_release(&io, project, NULL, &e);
                keep_err(&ret, err, r, TAKE_PTR(e));
        }
        json_decref(state);
        state = NULL;
        if (volumes) {
                r = moat_env_volumes_remove(o->volumes ? o->volumes : MOAT_VOLUMES_DIR, project, &e);
                keep_err(&ret, err, r, TAKE_PTR(e));
        }
        if (ret < 0)
                return ret; /* the record stays: down again once the cause is fixed */
        _cleanup_free_ char *m = NULL;
        if (mounted_under(dir, &m) > 0)
                return moat_error_input(err, -EBUSY, "'%s' is still mounted: not removing '%s'", m, dir);
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
                close(dfd);
                _cleanup_free_ char *parent = strdup(dir);
                if (!parent)
                        return -ENOMEM;
                char *slash = strrchr(parent, '/');
                *slash = '\0';
                _cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                r = pfd < 0 ? -errno : rm_rf_at(pfd, slash + 1);
                if (r < 0 && r != -ENOENT)
                        return moat_error_set(err, -r, "cannot remove '%s'", dir);
        }
        return 0;
}

int moat_env_ps(const struct moat_env_opts *o, const char *project, json_t **out, struct moat_error **err)
{
        _cleanup_free_ char *dir = moat_env_dir(o, project), *rtroot = NULL;
        if (!dir || asprintf(&rtroot, "%s/runtime", dir) < 0)
                return -ENOMEM;
        json_t *state = NULL;
        int r = moat_env_state_load(dir, &state, err);
        if (r == -ENOENT)
                return moat_error_input(err, r, "environment '%s' is not up", project);
        if (r < 0)
                return r;
        struct moat_runtime rt = { .root = rtroot };
        json_t *a = json_array();
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(state, "services"), i, s) {
                const char *id = json_string_value(json_object_get(s, "id"));
                pid_t pid = 0;
                _cleanup_free_ char *st = id ? state_of(&rt, id, &pid) : NULL;
                json_t *e = json_object();
                json_object_set(e, "name", json_object_get(s, "name"));
                if (id)
                        json_object_set_new(e, "id", json_string(id));
                /* the supervisor's word (running, exited, restarting, failed, stopped), unless the
                 * container says otherwise (a supervisor killed cannot record an exit) */
                const char *rec = json_string_value(json_object_get(s, "state"));
                if (rec && STREQ(rec, "running") && (!st || !STREQ(st, "running")))
                        rec = "exited";
                json_object_set_new(e, "state", json_string(rec ? rec : st ? st : "absent"));
                static const char *const keys[] = { "health", "restarts", "exit_status", "error" };
                for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
                        json_t *x = json_object_get(s, keys[k]);
                        if (x)
                                json_object_set(e, keys[k], x);
                }
                json_t *addr = json_object_get(s, "address");
                json_object_set_new(e, "address", addr ? json_incref(addr) : json_string(""));
                if (pid > 0)
                        json_object_set_new(e, "pid", json_integer(pid));
                json_t *ports = json_object_get(s, "ports");
                json_object_set_new(e, "ports", ports ? json_incref(ports) : json_array());
                json_array_append_new(a, e);
        }
        json_decref(state);
        *out = a;
        return 0;
}
