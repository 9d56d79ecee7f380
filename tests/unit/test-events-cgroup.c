/* SPDX-License-Identifier: Apache-2.0 */
/* events: cgroup sources.  A real OOM kill and a real pids-limit hit in a
 * cgroup of our own (/moat-test-events-<pid> in every hierarchy, removed at
 * the end), seen through the watch's fds in an events loop and delivered
 * by the bus. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "core/cleanup.h"
#include "events/bus.h"
#include "events/cgroup_watch.h"
#include "tap.h"

struct got {
        int oom, pids;
        int64_t oom_new, pids_new, pids_limit;
        bool killed;
        char service[32];
};

static int sink(void *ud, const struct moat_event *ev)
{
        struct got *g = ud;
        snprintf(g->service, sizeof(g->service), "%s", ev->service ? ev->service : "");
        if (ev->type == MOAT_EV_OOM) {
                g->oom++;
                moat_event_get_int(ev, "new", &g->oom_new);
                g->killed = json_is_true(json_object_get(ev->fields, "killed"));
        } else if (ev->type == MOAT_EV_PIDS_LIMIT) {
                g->pids++;
                moat_event_get_int(ev, "new", &g->pids_new);
                moat_event_get_int(ev, "limit", &g->pids_limit);
        }
        return 0;
}

/* Forks a child that waits until it is in the cgroup, then runs fn. */
static pid_t spawn_in(struct moat_cgroup *cg, void (*fn)(void))
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                char c;
                close(p[1]);
                if (read(p[0], &c, 1) != 1)
                        _exit(10);
                fn();
                _exit(0);
        }
        close(p[0]);
        if (pid > 0) {
                _cleanup_error_ struct moat_error *err = NULL;
                if (moat_cgroup_add_pid(cg, pid, &err) < 0) {
                        printf("# add pid: %s\n", err ? err->msg : "?");
                        kill(pid, SIGKILL);
                }
                (void)!write(p[1], "x", 1);
        }
        close(p[1]);
        return pid;
}

static void hog(void)
{
        /* 512 MiB against a 32 MiB limit, no swap on the way. */
        size_t sz = 512u << 20;
        char *m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
                _exit(11);
        for (size_t i = 0; i < sz; i += 4096)
                m[i] = 1;
        _exit(12); /* survived: no OOM */
}

static void forker(void)
{
        pid_t kids[64];
        int n = 0, failed = 0;
        for (int i = 0; i < 64; i++) {
                pid_t k = fork();
                if (k == 0) {
                        pause();
                        _exit(0);
                }
                if (k < 0) {
                        failed = errno == EAGAIN;
                        break;
                }
                kids[n++] = k;
        }
        for (int i = 0; i < n; i++) {
                kill(kids[i], SIGKILL);
                waitpid(kids[i], NULL, 0);
        }
        _exit(failed ? 0 : 13);
}

/* Runs the loop until the sink saw what we want or 5 s pass; returns rounds that dispatched. */
static int pump(struct moat_events_loop *loop, int *counter, int want)
{
        int dispatched = 0;
        for (int i = 0; i < 50 && *counter < want; i++)
                if (moat_events_loop_run_once(loop, 100) > 0)
                        dispatched++;
        return dispatched;
}

int main(void)
{
        if (geteuid() != 0)
                return skip_all("needs root to create cgroups");
        char path[64];
        snprintf(path, sizeof(path), "/moat-test-events-%d", (int)getpid());
        struct moat_resources res = { .present = true };
        res.memory.has_limit = true;
        res.memory.limit = 32 << 20;
        res.pids.has_limit = true;
        res.pids.limit = 8;
        struct moat_cgroup *cg = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        if (moat_cgroup_create(path, "events", &res, &cg, &err) < 0) {
                printf("# %s\n", err ? err->msg : "?");
                return skip_all("cannot create a cgroup with memory and pids limits here");
        }
        struct moat_events_loop *loop = NULL;
        struct moat_event_bus *bus = NULL;
        struct moat_cgroup_watch *w = NULL;
        struct got g = { 0 };
        ok(moat_events_loop_new(&loop) == 0 && moat_event_bus_new(&bus) == 0, "loop and bus");
        struct got g2 = { 0 };
        moat_event_bus_add_sink(bus, sink, &g);
        moat_event_bus_add_sink(bus, sink, &g2);
        ok(moat_cgroup_watch_new(cg, "cgtest", "api", moat_event_bus_emit_cb, bus, &w, &err) == 0,
           "watch the cgroup%s%s", err ? ": " : "", err ? err->msg : "");
        if (!w)
                goto out;
        printf("# sources: %s\n", moat_cgroup_watch_describe(w));
        ok(moat_cgroup_watch_attach(w, loop) == 0, "attach to the loop");
        is_int(moat_cgroup_watch_process(w), 0, "no event before anything happened");

        /* OOM */
        pid_t pid = spawn_in(cg, hog);
        int st = 0;
        ok(pid > 0 && waitpid(pid, &st, 0) == pid, "memory hog ran");
        ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "hog was OOM-killed (status 0x%x)", st);
        int d = pump(loop, &g.oom, 1);
        ok(d > 0, "the OOM woke the loop through the watch's fd");
        is_int(g.oom, 1, "one oom event");
        ok(g.oom_new >= 1 && g.killed, "oom event counts the kill");
        is_str(g.service, "api", "for the watched service");
        is_int(g2.oom, 1, "second sink got it too");

        /* pids limit */
        pid = spawn_in(cg, forker);
        st = 0;
        ok(pid > 0 && waitpid(pid, &st, 0) == pid, "forker ran");
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork hit EAGAIN at the limit (status 0x%x)", st);
        d = pump(loop, &g.pids, 1);
        ok(d > 0, "the pids hit woke the loop (inotify on v2, the watch's poll timer on v1)");
        is_int(g.pids, 1, "one pids_limit event");
        ok(g.pids_new >= 1, "it counts the refused forks (%lld)", (long long)g.pids_new);
        is_int(g.pids_limit, 8, "it names the limit");
        is_int(g.oom, 1, "no spurious oom event");
        is_int(moat_cgroup_watch_process(w), 0, "nothing more once reported");

        moat_cgroup_watch_detach(w, loop);
out:
        moat_cgroup_watch_free(w);
        moat_event_bus_free(bus);
        moat_events_loop_free(loop);
        moat_cgroup_kill_all(cg, SIGKILL);
        _cleanup_error_ struct moat_error *e2 = NULL;
        ok(moat_cgroup_destroy(cg, &e2) == 0, "cgroup removed%s%s", e2 ? ": " : "", e2 ? e2->msg : "");
        char p[128];
        snprintf(p, sizeof(p), "/sys/fs/cgroup/memory%s", path);
        ok(access(p, F_OK) < 0, "%s is gone", p);
        moat_cgroup_free(cg);
        return done_testing();
}
