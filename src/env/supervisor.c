/* SPDX-License-Identifier: Apache-2.0 */
/* The environment supervisor v0 (env/supervisor.h): a daemon with one epoll loop over the NFLOG
 * receiver, a cgroup watch per service, a pidfd per service init and a signalfd, feeding an
 * event bus whose sinks are the environment's event log and the on-violation sink. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "env/supervisor.h"
#include "env/up.h"
#include "events/bus.h"
#include "events/cgroup_watch.h"
#include "events/log.h"
#include "net/nflog.h"
#include "runtime/container.h"
#include "runtime/state.h"

#define STOP_TERM_MS 2000
#define STOP_KILL_MS 2000
#define NFLOG_RETRY_MS 500

struct sup_svc {
        const char *name, *id; /* borrowed from the state */
        struct in_addr addr;
        bool has_addr;
        enum moat_on_violation ov;
        int pidfd;
        pid_t pid;
        struct moat_cgroup *cg;
        struct moat_cgroup_watch *w;
        struct sup *s;
};

struct sup {
        const char *dir;
        const char *project;
        json_t *state;
        char *rtroot;
        struct moat_runtime rt;
        struct sup_svc *svc;
        size_t n;
        struct moat_events_loop *loop;
        struct moat_event_bus *bus;
        struct moat_event_log *log;
        struct moat_nflog *nfl;
        struct moat_violation_sink vs;
        int sigfd, retryfd;
        bool quit;
};

static int pidfd_open_(pid_t pid)
{
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        return fd < 0 ? -errno : fd;
}

static struct sup_svc *svc_by_name(struct sup *s, const char *name)
{
        for (size_t i = 0; name && i < s->n; i++)
                if (strcmp(s->svc[i].name, name) == 0)
                        return &s->svc[i];
        return NULL;
}

static struct sup_svc *svc_by_addr(struct sup *s, struct in_addr a)
{
        for (size_t i = 0; i < s->n; i++)
                if (s->svc[i].has_addr && s->svc[i].addr.s_addr == a.s_addr)
                        return &s->svc[i];
        return NULL;
}

static void emit(struct sup *s, struct moat_event *ev)
{
        int r = moat_event_bus_emit(s->bus, ev);
        if (r < 0)
                moat_warn("event '%s': a sink failed: %s", moat_event_type_name(ev->type), strerror(-r));
}

/* ---------------------------------------------------------------- sources */

static void on_nflog(const struct moat_nflog_record *rec, void *userdata)
{
        struct sup *s = userdata;
        struct sup_svc *src = svc_by_addr(s, rec->src), *dst = svc_by_addr(s, rec->dst);
        if (!src && !dst)
                return; /* another environment's packet (the group is shared) */
        _cleanup_event_ struct moat_event *ev = NULL;
        if (moat_event_new(s->project, src ? src->name : NULL, MOAT_EV_DENIED, &ev) < 0)
                return;
        char sa[INET_ADDRSTRLEN], da[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &rec->src, sa, sizeof sa);
        inet_ntop(AF_INET, &rec->dst, da, sizeof da);
        moat_event_set_str(ev, "src", src ? src->name : sa);
        moat_event_set_str(ev, "dst", dst ? dst->name : da);
        moat_event_set_str(ev, "src_addr", sa);
        moat_event_set_str(ev, "dst_addr", da);
        moat_event_set_str(ev, "proto", rec->proto == IPPROTO_TCP   ? "tcp"
                                        : rec->proto == IPPROTO_UDP ? "udp"
                                        : rec->proto == IPPROTO_ICMP ? "icmp"
                                                                     : "other");
        if (rec->dport)
                moat_event_set_int(ev, "dport", rec->dport);
        emit(s, ev);
}

static int nflog_ready(int fd, uint32_t revents, void *userdata)
{
        (void)fd;
        (void)revents;
        struct sup *s = userdata;
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_nflog_receive(s->nfl, on_nflog, s, &err);
        if (r < 0)
                moat_warn("nflog: %s", err && err->msg ? err->msg : strerror(-r));
        return 0;
}

/* Binds the group and adds it to the loop; -EBUSY while another listener holds it. */
static int nflog_try(struct sup *s)
{
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_nflog_open(moat_env_nflog_group(s->project), &s->nfl, &err);
        if (r < 0)
                return r;
        r = moat_events_loop_add_fd(s->loop, moat_nflog_fd(s->nfl), EPOLLIN, nflog_ready, s);
        if (r < 0) {
                moat_nflog_close(s->nfl);
                s->nfl = NULL;
        }
        return r;
}

static int nflog_retry(int fd, uint32_t revents, void *userdata)
{
        (void)revents;
        struct sup *s = userdata;
        uint64_t ticks;
        if (read(fd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
                return -errno;
        int r = nflog_try(s);
        if (r == -EBUSY || r == -EPERM)
                return 0;
        moat_events_loop_remove_fd(s->loop, fd);
        close(s->retryfd);
        s->retryfd = -EBADF;
        if (r < 0)
                moat_warn("NFLOG group %d: %s: no denied events", moat_env_nflog_group(s->project), strerror(-r));
        else
                moat_warn("NFLOG group %d bound", moat_env_nflog_group(s->project));
        return 0;
}

static int exit_ready(int fd, uint32_t revents, void *userdata)
{
        (void)revents;
        struct sup_svc *v = userdata;
        struct sup *s = v->s;
        if (v->w)
                moat_cgroup_watch_process(v->w); /* an OOM kill just before the exit comes first */
        moat_events_loop_remove_fd(s->loop, fd);
        _cleanup_event_ struct moat_event *ev = NULL;
        if (moat_event_new(s->project, v->name, MOAT_EV_EXIT, &ev) >= 0) {
                moat_event_set_int(ev, "pid", v->pid);
                siginfo_t si = { 0 };
                /* only a child's status can be collected; ours are not (the runtime made them) */
                if (waitid((idtype_t)3 /* P_PIDFD */, (id_t)fd, &si, WEXITED | WNOHANG) == 0 && si.si_pid > 0)
                        moat_event_set_int(ev, "status", si.si_code == CLD_EXITED ? si.si_status
                                                                                  : 128 + si.si_status);
                emit(s, ev);
        }
        close(v->pidfd);
        v->pidfd = -EBADF;
        return 0;
}

static int signal_ready(int fd, uint32_t revents, void *userdata)
{
        (void)revents;
        struct sup *s = userdata;
        struct signalfd_siginfo si;
        while (read(fd, &si, sizeof si) == (ssize_t)sizeof si)
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                        s->quit = true;
        return 0;
}

/* ---------------------------------------------------------------- on-violation */

static enum moat_on_violation ov_policy(void *userdata, const char *env, const char *service)
{
        (void)env;
        struct sup_svc *v = svc_by_name(userdata, service);
        return v ? v->ov : MOAT_ON_VIOLATION_LOG;
}

static int ov_act(void *userdata, const char *env, const char *service, enum moat_on_violation action)
{
        (void)env;
        struct sup *s = userdata;
        struct sup_svc *v = svc_by_name(s, service);
        if (!v)
                return -ESRCH;
        _cleanup_error_ struct moat_error *err = NULL;
        int r = action == MOAT_ON_VIOLATION_KILL ? moat_container_kill(&s->rt, v->id, SIGKILL, true, &err)
                                                 : moat_container_kill(&s->rt, v->id, SIGTERM, false, &err);
        if (r < 0)
                moat_warn("on-violation %s of '%s': %s", moat_on_violation_name(action), service,
                          err && err->msg ? err->msg : strerror(-r));
        return r;
}

/* ---------------------------------------------------------------- setup */

static int setup_service(struct sup *s, struct sup_svc *v, int rootfd)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int dirfd = -EBADF;
        struct moat_state *st = NULL;
        int r = moat_state_dir_open(rootfd, v->id, true, &dirfd, &err);
        if (r >= 0)
                r = moat_state_read(dirfd, v->id, &st, &err);
        if (r < 0) {
                moat_warn("service '%s': no container state: %s", v->name, err && err->msg ? err->msg : "");
                return 0;
        }
        v->pid = st->pid;
        v->pidfd = moat_state_pidfd(st);
        if (v->pidfd >= 0) {
                r = moat_events_loop_add_fd(s->loop, v->pidfd, EPOLLIN, exit_ready, v);
                if (r < 0)
                        goto out;
        }
        if (st->cgroup_path && moat_cgroup_open(st->cgroup_path, &v->cg, &err) >= 0) {
                r = moat_cgroup_watch_new(v->cg, s->project, v->name, moat_event_bus_emit_cb, s->bus, &v->w, &err);
                if (r >= 0)
                        r = moat_cgroup_watch_attach(v->w, s->loop);
                if (r < 0)
                        moat_warn("service '%s': no cgroup events: %s", v->name,
                                  err && err->msg ? err->msg : strerror(-r));
        }
        r = 0;
out:
        moat_state_free(st);
        return r;
}

static int setup(struct sup *s, struct moat_error **err)
{
        int r = moat_env_state_load(s->dir, &s->state, err);
        if (r == -ENOENT)
                return moat_error_input(err, r, "no environment record '%s/state.json'", s->dir);
        if (r < 0)
                return r;
        s->project = json_string_value(json_object_get(s->state, "project"));
        const char *rt = json_string_value(json_object_get(s->state, "runtime_root"));
        if (!s->project)
                return moat_error_input(err, -EBADMSG, "the record in '%s' names no project", s->dir);
        if (rt)
                s->rtroot = strdup(rt);
        else if (asprintf(&s->rtroot, "%s/runtime", s->dir) < 0)
                s->rtroot = NULL;
        if (!s->rtroot)
                return -ENOMEM;
        s->rt.root = s->rtroot;
        json_t *svcs = json_object_get(s->state, "services");
        s->svc = calloc(json_array_size(svcs) + 1, sizeof(*s->svc));
        if (!s->svc)
                return -ENOMEM;
        if ((r = moat_events_loop_new(&s->loop)) < 0 || (r = moat_event_bus_new(&s->bus)) < 0)
                return r;
        r = moat_event_log_open(s->dir, 0, &s->log, err);
        if (r < 0)
                return r;
        s->vs = (struct moat_violation_sink){ .bus = s->bus, .policy = ov_policy, .act = ov_act, .userdata = s };
        if ((r = moat_event_bus_add_sink(s->bus, moat_event_sink_log, s->log)) < 0 ||
            (r = moat_event_bus_add_sink(s->bus, moat_event_sink_violation, &s->vs)) < 0)
                return r;
        size_t i;
        json_t *e;
        json_array_foreach(svcs, i, e) {
                struct sup_svc *v = &s->svc[s->n];
                v->s = s;
                v->pidfd = -EBADF;
                v->name = json_string_value(json_object_get(e, "name"));
                v->id = json_string_value(json_object_get(e, "id"));
                if (!v->name || !v->id)
                        continue;
                const char *a = json_string_value(json_object_get(e, "address"));
                v->has_addr = a && inet_pton(AF_INET, a, &v->addr) == 1;
                const char *ov = json_string_value(json_object_get(e, "on_violation"));
                if (!ov || moat_on_violation_from_name(ov, &v->ov) < 0)
                        v->ov = MOAT_ON_VIOLATION_LOG;
                s->n++;
        }
        r = nflog_try(s);
        if (r == -EBUSY || r == -EPERM) { /* nfnetlink_log says EPERM when another socket has the group */
                moat_warn("NFLOG group %d is held by another listener (another environment's supervisor?): "
                          "retrying every %d ms", moat_env_nflog_group(s->project), NFLOG_RETRY_MS);
                s->retryfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
                struct itimerspec its = { .it_interval = { 0, NFLOG_RETRY_MS * 1000000L },
                                          .it_value = { 0, NFLOG_RETRY_MS * 1000000L } };
                if (s->retryfd < 0 || timerfd_settime(s->retryfd, 0, &its, NULL) < 0)
                        return moat_error_set(err, errno, "timerfd");
                r = moat_events_loop_add_fd(s->loop, s->retryfd, EPOLLIN, nflog_retry, s);
        }
        if (r < 0)
                return moat_error_set(err, -r, "cannot receive the policy's denials (NFLOG group %d)",
                                      moat_env_nflog_group(s->project));
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (s->sigfd < 0)
                return moat_error_set(err, errno, "signalfd");
        r = moat_events_loop_add_fd(s->loop, s->sigfd, EPOLLIN, signal_ready, s);
        if (r < 0)
                return r;
        _cleanup_close_ int rootfd = moat_root_open(s->rtroot, false, err);
        if (rootfd < 0)
                return rootfd;
        for (size_t k = 0; k < s->n; k++) {
                r = setup_service(s, &s->svc[k], rootfd);
                if (r < 0)
                        return moat_error_set(err, -r, "service '%s'", s->svc[k].name);
        }
        return 0;
}

static void teardown(struct sup *s)
{
        for (size_t k = 0; s->svc && k < s->n; k++) {
                struct sup_svc *v = &s->svc[k];
                if (v->w) {
                        moat_cgroup_watch_detach(v->w, s->loop);
                        moat_cgroup_watch_free(v->w);
                }
                moat_cgroup_free(v->cg);
                if (v->pidfd >= 0)
                        close(v->pidfd);
        }
        free(s->svc);
        if (s->nfl)
                moat_nflog_close(s->nfl);
        if (s->sigfd >= 0)
                close(s->sigfd);
        if (s->retryfd >= 0)
                close(s->retryfd);
        moat_event_bus_free(s->bus);
        moat_event_log_free(s->log);
        moat_events_loop_free(s->loop);
        free(s->rtroot);
        json_decref(s->state);
}

static int write_pid_file(const char *dir, struct moat_error **err)
{
        uint64_t start = 0;
        int r = moat_pid_start_time(getpid(), &start);
        if (r < 0)
                return moat_error_set(err, -r, "cannot read our own start time");
        _cleanup_free_ char *path = NULL, *tmp = NULL, *text = NULL;
        if (asprintf(&path, "%s/" MOAT_ENV_SUPERVISOR_PID, dir) < 0 ||
            asprintf(&tmp, "%s/." MOAT_ENV_SUPERVISOR_PID ".tmp", dir) < 0 ||
            asprintf(&text, "%d %llu\n", (int)getpid(), (unsigned long long)start) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot write '%s'", tmp);
        size_t len = strlen(text);
        if (write_all(fd, text, len) != (ssize_t)len || fsync(fd) < 0 || rename(tmp, path) < 0) {
                int e = errno ? errno : EIO;
                unlink(tmp);
                return moat_error_set(err, e, "cannot write '%s'", path);
        }
        return 0;
}

/* The daemon itself: never returns. */
static _Noreturn void daemon_main(const char *dir, int ready)
{
        struct sup s = { .dir = dir, .sigfd = -EBADF, .retryfd = -EBADF };
        struct moat_error *err = NULL;
        prctl(PR_SET_NAME, MOAT_ENV_SUPERVISOR_COMM);
        int r = setup(&s, &err);
        if (r >= 0)
                r = write_pid_file(dir, &err);
        if (r < 0) {
                const char *m = err && err->msg ? err->msg : strerror(-r);
                (void)write_all(ready, m, strlen(m));
                moat_error_free(err);
                teardown(&s);
                _exit(1);
        }
        (void)write_all(ready, "", 1);
        close(ready);
        moat_debug("supervisor of '%s' running (%zu services)", s.project, s.n);
        while (!s.quit) {
                r = moat_events_loop_run_once(s.loop, -1);
                if (r < 0 && r != -EINTR)
                        moat_warn("supervisor loop: %s", strerror(-r));
        }
        _cleanup_free_ char *pidf = NULL;
        if (asprintf(&pidf, "%s/" MOAT_ENV_SUPERVISOR_PID, dir) >= 0)
                unlink(pidf);
        teardown(&s);
        _exit(0);
}

int moat_env_supervisor_start(const char *dir, struct moat_error **err)
{
        _cleanup_free_ char *logpath = NULL;
        if (asprintf(&logpath, "%s/" MOAT_ENV_SUPERVISOR_LOG, dir) < 0)
                return -ENOMEM;
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return moat_error_set(err, errno, "pipe");
        fflush(stdout);
        fflush(stderr);
        pid_t mid = fork();
        if (mid < 0) {
                int e = errno;
                close(pfd[0]);
                close(pfd[1]);
                return moat_error_set(err, e, "cannot fork the supervisor");
        }
        if (mid == 0) {
                close(pfd[0]);
                if (setsid() < 0)
                        _exit(1);
                pid_t d = fork();
                if (d != 0)
                        _exit(d < 0 ? 1 : 0);
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                int lfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (null < 0 || lfd < 0 || dup2(null, 0) < 0 || dup2(lfd, 1) < 0 || dup2(lfd, 2) < 0)
                        _exit(1);
                if (dup3(pfd[1], 3, O_CLOEXEC) < 0)
                        _exit(1);
                syscall(SYS_close_range, 4U, ~0U, 0U);
                if (chdir("/") < 0)
                        _exit(1);
                umask(077);
                signal(SIGPIPE, SIG_IGN);
                moat_log_setup(2, MOAT_LOG_TEXT, MOAT_LOG_WARNING);
                daemon_main(dir, 3);
        }
        close(pfd[1]);
        int st = 0;
        while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
                ;
        char msg[1024];
        ssize_t n, got = 0;
        while (got < (ssize_t)sizeof msg - 1 && (n = read(pfd[0], msg + got, sizeof msg - 1 - (size_t)got)) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        break;
                got += n;
                if (msg[got - 1] == '\0')
                        break;
        }
        close(pfd[0]);
        msg[got] = '\0';
        if (got > 0 && msg[got - 1] == '\0' && got == 1)
                return 0;
        if (got == 0)
                return moat_error_input(err, -ECHILD, "the supervisor did not start (see '%s')", logpath);
        return moat_error_input(err, -EIO, "the supervisor did not start: %s", msg);
}

/* ---------------------------------------------------------------- stop */

static bool is_ours(pid_t pid, uint64_t start)
{
        uint64_t now = 0;
        if (moat_pid_start_time(pid, &now) < 0 || now != start)
                return false;
        char path[64], comm[64] = "";
        snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, comm, sizeof comm - 1);
        if (n <= 0)
                return false;
        comm[n] = '\0';
        comm[strcspn(comm, "\n")] = '\0';
        return strcmp(comm, MOAT_ENV_SUPERVISOR_COMM) == 0;
}

static bool wait_gone(int pidfd, int ms)
{
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        int r;
        while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
                ;
        return r > 0;
}

int moat_env_supervisor_stop(const char *dir)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len = 0;
        if (asprintf(&path, "%s/" MOAT_ENV_SUPERVISOR_PID, dir) < 0)
                return -ENOMEM;
        if (read_file_at(AT_FDCWD, path, &text, &len) < 0)
                return 0;
        int pid = 0;
        unsigned long long start = 0;
        if (sscanf(text, "%d %llu", &pid, &start) != 2 || pid <= 1) {
                unlink(path);
                return 0;
        }
        _cleanup_close_ int pidfd = pidfd_open_(pid);
        /* checked after the pidfd is held: the pid cannot be reused under us from here on */
        if (pidfd < 0 || !is_ours(pid, start)) {
                unlink(path);
                return 0;
        }
        syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0);
        if (!wait_gone(pidfd, STOP_TERM_MS)) {
                moat_warn("the supervisor (pid %d) did not stop on SIGTERM: killing it", pid);
                syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
                wait_gone(pidfd, STOP_KILL_MS);
        }
        unlink(path);
        return 1;
}
