/* SPDX-License-Identifier: Apache-2.0 */
/* OOM and pids-limit events from cgroup v1 and v2 files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "events/cgroup_watch.h"

struct moat_cgroup_watch {
        char *env, *service;
        moat_event_sink_fn fn;
        void *userdata;
        int mem_dirfd, pids_dirfd;
        bool mem_v1;
        int efd;     /* v1 OOM eventfd */
        int oomfd;   /* v1 memory.oom_control, kept open for the registration */
        int inofd;   /* memory.events (v2), pids.events (v2) */
        int tfd;     /* timerfd for sources without notification (v1 pids.events) */
        bool efd_ok, ino_mem, ino_pids;
        uint64_t oom_kills, pids_max;
        char desc[128];
};

/* "key N" in a flat keyed file. */
static int read_keyed(int dirfd, const char *file, const char *key, uint64_t *out)
{
        _cleanup_free_ char *s = NULL;
        int r = read_file_at(dirfd, file, &s, NULL);
        if (r < 0)
                return r;
        size_t kl = strlen(key);
        for (char *line = s; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                if (strncmp(line, key, kl) == 0 && line[kl] == ' ')
                        return parse_u64(line + kl + 1, out);
                line = nl ? nl + 1 : NULL;
        }
        return -ENOENT;
}

static bool has_controller(const char *name, const char *ctrl)
{
        _cleanup_free_ char *copy = strdup(name ? name : "");
        char *save = NULL;
        if (!copy)
                return false;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (STREQ(t, ctrl))
                        return true;
        return false;
}

static int open_dir(const char *path)
{
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static int watch_file(struct moat_cgroup_watch *w, const char *dir, const char *file)
{
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        if (w->inofd < 0) {
                w->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
                if (w->inofd < 0)
                        return -errno;
        }
        return inotify_add_watch(w->inofd, p, IN_MODIFY) < 0 ? -errno : 0;
}

static int setup_v1_oom(struct moat_cgroup_watch *w)
{
        w->oomfd = openat(w->mem_dirfd, "memory.oom_control", O_RDONLY | O_CLOEXEC);
        if (w->oomfd < 0)
                return -errno;
        w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->efd < 0)
                return -errno;
        char buf[64];
        snprintf(buf, sizeof(buf), "%d %d", w->efd, w->oomfd);
        return write_string_at(w->mem_dirfd, "cgroup.event_control", buf);
}

int moat_cgroup_watch_new(const struct moat_cgroup *cg, const char *env, const char *service,
                          moat_event_sink_fn fn, void *userdata, struct moat_cgroup_watch **out,
                          struct moat_error **err)
{
        struct moat_cgroup_hier *h = NULL;
        size_t nh = 0;
        int r = moat_cgroup_hierarchies(cg, &h, &nh);
        if (r < 0)
                return moat_error_set(err, r, "listing the hierarchies of cgroup '%s'", moat_cgroup_path(cg));
        struct moat_cgroup_watch *w = calloc(1, sizeof(*w));
        if (!w) {
                moat_cgroup_hierarchies_free(h, nh);
                return moat_error_set(err, ENOMEM, "watching cgroup '%s'", moat_cgroup_path(cg));
        }
        w->mem_dirfd = w->pids_dirfd = w->efd = w->oomfd = w->inofd = w->tfd = -EBADF;
        w->fn = fn;
        w->userdata = userdata;
        w->env = strdup(env);
        w->service = service ? strdup(service) : NULL;
        const char *mem_dir = NULL, *pids_dir = NULL;
        bool pids_v1 = false, need_timer = false;
        if (!w->env || (service && !w->service)) {
                r = moat_error_set(err, ENOMEM, "watching cgroup '%s'", moat_cgroup_path(cg));
                goto fail;
        }
        /* v1 controllers first (hybrid hosts keep them there), then a v2 dir
         * that actually has the controller's files. */
        for (size_t i = 0; i < nh; i++) {
                if (h[i].v2)
                        continue;
                if (!mem_dir && has_controller(h[i].name, "memory")) {
                        mem_dir = h[i].host_dir;
                        w->mem_v1 = true;
                }
                if (!pids_dir && has_controller(h[i].name, "pids")) {
                        pids_dir = h[i].host_dir;
                        pids_v1 = true;
                }
        }
        for (size_t i = 0; i < nh; i++) {
                if (!h[i].v2)
                        continue;
                int fd = open_dir(h[i].host_dir);
                if (fd < 0)
                        continue;
                if (!mem_dir && faccessat(fd, "memory.events", R_OK, 0) == 0)
                        mem_dir = h[i].host_dir;
                if (!pids_dir && faccessat(fd, "pids.events", R_OK, 0) == 0)
                        pids_dir = h[i].host_dir;
                close(fd);
        }
        if (!mem_dir && !pids_dir) {
                r = moat_error_input(err, ENOENT, "cgroup '%s' has neither a memory nor a pids controller",
                                     moat_cgroup_path(cg));
                goto fail;
        }
        if (mem_dir) {
                if ((w->mem_dirfd = open_dir(mem_dir)) < 0) {
                        r = moat_error_set(err, w->mem_dirfd, "cannot open '%s'", mem_dir);
                        goto fail;
                }
                if (w->mem_v1) {
                        (void)read_keyed(w->mem_dirfd, "memory.oom_control", "oom_kill", &w->oom_kills);
                        r = setup_v1_oom(w);
                        w->efd_ok = r >= 0;
                        if (r < 0) {
                                moat_debug("no OOM eventfd for '%s' (%s): polling", mem_dir, strerror(-r));
                                need_timer = true;
                        }
                } else {
                        (void)read_keyed(w->mem_dirfd, "memory.events", "oom_kill", &w->oom_kills);
                        w->ino_mem = watch_file(w, mem_dir, "memory.events") >= 0;
                        need_timer |= !w->ino_mem;
                }
        }
        if (pids_dir) {
                if ((w->pids_dirfd = open_dir(pids_dir)) < 0) {
                        r = moat_error_set(err, w->pids_dirfd, "cannot open '%s'", pids_dir);
                        goto fail;
                }
                (void)read_keyed(w->pids_dirfd, "pids.events", "max", &w->pids_max);
                /* v1 pids.events is not notified (the kernel notifies the
                 * v1-less "events.local" file), so it is polled. */
                w->ino_pids = !pids_v1 && watch_file(w, pids_dir, "pids.events") >= 0;
                need_timer |= !w->ino_pids;
        }
        if (need_timer) {
                struct itimerspec its = {
                        .it_interval = { .tv_sec = MOAT_CGROUP_WATCH_POLL_MS / 1000,
                                         .tv_nsec = (MOAT_CGROUP_WATCH_POLL_MS % 1000) * 1000000L },
                };
                its.it_value = its.it_interval;
                w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
                if (w->tfd < 0 || timerfd_settime(w->tfd, 0, &its, NULL) < 0) {
                        r = moat_error_set(err, errno, "timerfd");
                        goto fail;
                }
        }
        snprintf(w->desc, sizeof(w->desc), "memory:%s pids:%s",
                 !mem_dir ? "none" : w->mem_v1 ? (w->efd_ok ? "v1-eventfd" : "v1-poll") : (w->ino_mem ? "v2-inotify" : "v2-poll"),
                 !pids_dir ? "none" : w->ino_pids ? "v2-inotify" : pids_v1 ? "v1-poll" : "v2-poll");
        moat_cgroup_hierarchies_free(h, nh);
        *out = w;
        return 0;
fail:
        moat_cgroup_hierarchies_free(h, nh);
        moat_cgroup_watch_free(w);
        return r;
}

void moat_cgroup_watch_free(struct moat_cgroup_watch *w)
{
        if (!w)
                return;
        closep(&w->mem_dirfd);
        closep(&w->pids_dirfd);
        closep(&w->efd);
        closep(&w->oomfd);
        closep(&w->inofd);
        closep(&w->tfd);
        free(w->env);
        free(w->service);
        free(w);
}

const char *moat_cgroup_watch_describe(const struct moat_cgroup_watch *w)
{
        return w->desc;
}

static int emit(struct moat_cgroup_watch *w, enum moat_event_type type, uint64_t delta, uint64_t total,
                const char *extra_key, int64_t extra, bool has_extra, const char *bool_key, bool b)
{
        _cleanup_event_ struct moat_event *ev = NULL;
        int r = moat_event_new(w->env, w->service, type, &ev);
        if (r < 0)
                return r;
        if ((r = moat_event_set_int(ev, "new", (int64_t)delta)) < 0 ||
            (r = moat_event_set_int(ev, "total", (int64_t)total)) < 0 ||
            (has_extra && (r = moat_event_set_int(ev, extra_key, extra)) < 0) ||
            (bool_key && (r = moat_event_set_bool(ev, bool_key, b)) < 0))
                return r;
        return w->fn ? w->fn(w->userdata, ev) : 0;
}

int moat_cgroup_watch_process(struct moat_cgroup_watch *w)
{
        int n = 0;
        bool oom_signalled = false;
        if (w->efd >= 0) {
                uint64_t v;
                if (read(w->efd, &v, sizeof(v)) == (ssize_t)sizeof(v) && v > 0)
                        oom_signalled = true;
        }
        if (w->tfd >= 0) {
                uint64_t ticks;
                (void)!read(w->tfd, &ticks, sizeof(ticks));
        }
        if (w->inofd >= 0) {
                char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                while (read(w->inofd, buf, sizeof(buf)) > 0)
                        ;
        }
        if (w->mem_dirfd >= 0) {
                uint64_t k = 0;
                int r = read_keyed(w->mem_dirfd, w->mem_v1 ? "memory.oom_control" : "memory.events", "oom_kill", &k);
                if (r >= 0 && k > w->oom_kills) {
                        if (emit(w, MOAT_EV_OOM, k - w->oom_kills, k, NULL, 0, false, "killed", true) >= 0)
                                n++;
                        w->oom_kills = k;
                } else if (oom_signalled) {
                        /* Under OOM with the killer disabled: the tasks wait. */
                        if (emit(w, MOAT_EV_OOM, 0, w->oom_kills, NULL, 0, false, "killed", false) >= 0)
                                n++;
                }
        }
        if (w->pids_dirfd >= 0) {
                uint64_t m = 0;
                if (read_keyed(w->pids_dirfd, "pids.events", "max", &m) >= 0 && m > w->pids_max) {
                        uint64_t lim = 0;
                        _cleanup_free_ char *s = NULL;
                        bool has_lim = read_file_at(w->pids_dirfd, "pids.max", &s, NULL) >= 0 &&
                                       (s[strcspn(s, "\n")] = '\0', parse_u64(s, &lim) >= 0);
                        if (emit(w, MOAT_EV_PIDS_LIMIT, m - w->pids_max, m, "limit", (int64_t)lim, has_lim, NULL,
                                 false) >= 0)
                                n++;
                        w->pids_max = m;
                }
        }
        return n;
}

static int on_fd(int fd, uint32_t revents, void *userdata)
{
        int r = moat_cgroup_watch_process(userdata);
        return r < 0 ? r : 0;
}

int moat_cgroup_watch_attach(struct moat_cgroup_watch *w, struct moat_events_loop *loop)
{
        int r;
        if (w->efd >= 0 && (r = moat_events_loop_add_fd(loop, w->efd, EPOLLIN, on_fd, w)) < 0)
                return r;
        if ((w->inofd >= 0 && (r = moat_events_loop_add_fd(loop, w->inofd, EPOLLIN, on_fd, w)) < 0) ||
            (w->tfd >= 0 && (r = moat_events_loop_add_fd(loop, w->tfd, EPOLLIN, on_fd, w)) < 0)) {
                moat_cgroup_watch_detach(w, loop);
                return r;
        }
        return 0;
}

void moat_cgroup_watch_detach(struct moat_cgroup_watch *w, struct moat_events_loop *loop)
{
        if (w->efd >= 0)
                moat_events_loop_remove_fd(loop, w->efd);
        if (w->inofd >= 0)
                moat_events_loop_remove_fd(loop, w->inofd);
        if (w->tfd >= 0)
                moat_events_loop_remove_fd(loop, w->tfd);
}
