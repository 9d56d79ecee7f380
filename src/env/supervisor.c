/* SPDX-License-Identifier: Apache-2.0 */
/* The environment supervisor (env/supervisor.h): a daemon with one epoll loop over the NFLOG
 * receiver, the services (sup_run.c: a pidfd and a cgroup watch each, health probes, one
 * timer), the control socket and a signalfd, feeding an event bus whose sinks are the
 * environment's event log and the on-violation sink. */
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
#include "env/sup.h"
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

static int pidfd_open_(pid_t pid)
{
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        return fd < 0 ? -errno : fd;
}

struct sup_svc *sup_svc_by_name(struct sup *s, const char *name)
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

int sup_save(struct sup *s)
{
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_env_state_save(s->dir, s->state, &err);
        if (r < 0)
                moat_warn("%s", err && err->msg ? err->msg : strerror(-r));
        return r;
}

void sup_emit(struct sup *s, struct moat_event *ev)
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
        sup_emit(s, ev);
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
        struct sup_svc *v = sup_svc_by_name(userdata, service);
        return v ? v->ov : MOAT_ON_VIOLATION_LOG;
}

static int ov_act(void *userdata, const char *env, const char *service, enum moat_on_violation action)
{
        (void)env;
        struct sup *s = userdata;
        struct sup_svc *v = sup_svc_by_name(s, service);
        if (!v)
                return -ESRCH;
        return sup_service_stop(v, action == MOAT_ON_VIOLATION_KILL);
}

/* ---------------------------------------------------------------- setup */

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
        if ((r = moat_events_loop_new(&s->loop)) < 0 || (r = moat_event_bus_new(&s->bus)) < 0)
                return r;
        r = moat_event_log_open(s->dir, 0, &s->log, err);
        if (r < 0)
                return r;
        s->vs = (struct moat_violation_sink){ .bus = s->bus, .policy = ov_policy, .act = ov_act, .userdata = s };
        if ((r = moat_event_bus_add_sink(s->bus, moat_event_sink_log, s->log)) < 0 ||
            (r = moat_event_bus_add_sink(s->bus, moat_event_sink_violation, &s->vs)) < 0)
                return r;
        const char *subnet = json_string_value(json_object_get(s->state, "subnet"));
        const char *gw = json_string_value(json_object_get(s->state, "gateway"));
        char sn[INET_ADDRSTRLEN] = "";
        unsigned len = 0;
        if (!subnet || !gw || sscanf(subnet, "%15[0-9.]/%u", sn, &len) != 2 || len > 32 ||
            inet_pton(AF_INET, sn, &s->net.subnet) != 1 || inet_pton(AF_INET, gw, &s->net.gateway) != 1)
                return moat_error_input(err, -EBADMSG, "the record in '%s' has no subnet/gateway", s->dir);
        s->net.prefixlen = len;
        r = sup_services_load(s, err);
        if (r < 0)
                return r;
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
        s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (s->timerfd < 0)
                return moat_error_set(err, errno, "timerfd");
        r = moat_events_loop_add_fd(s->loop, s->timerfd, EPOLLIN, sup_timer_ready, s);
        if (r < 0)
                return r;
        s->log_check_ns = sup_now_ns() + (int64_t)SUP_LOG_CHECK_MS * 1000000;
        r = sup_ctl_listen(s, err);
        if (r < 0)
                return r;
        sup_services_adopt(s);
        return 0;
}

static void teardown(struct sup *s)
{
        sup_ctl_free(s);
        sup_services_free(s);
        if (s->nfl)
                moat_nflog_close(s->nfl);
        if (s->sigfd >= 0)
                close(s->sigfd);
        if (s->retryfd >= 0)
                close(s->retryfd);
        if (s->timerfd >= 0)
                close(s->timerfd);
        if (s->ready >= 0)
                close(s->ready);
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
static _Noreturn void daemon_main(const char *dir, int ready, bool wait_healthy)
{
        struct sup s = { .dir = dir, .sigfd = -EBADF, .retryfd = -EBADF, .timerfd = -EBADF, .ready = -EBADF,
                         .wait_healthy = wait_healthy };
        struct moat_error *err = NULL;
        prctl(PR_SET_NAME, MOAT_ENV_SUPERVISOR_COMM);
        /* the services' inits are our children; with a user namespace, grandchildren */
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
        int r = setup(&s, &err);
        if (r >= 0)
                r = write_pid_file(dir, &err);
        if (r < 0) {
                _cleanup_free_ char *m = NULL;
                if (asprintf(&m, "E %s\n", err && err->msg ? err->msg : strerror(-r)) >= 0)
                        (void)write_all(ready, m, strlen(m));
                moat_error_free(err);
                teardown(&s);
                _exit(1);
        }
        s.ready = ready;
        moat_debug("supervisor of '%s' running (%zu services)", s.project, s.n);
        sup_schedule(&s);
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

/* Reads the daemon's answer: "P text" lines (progress), then "K" or "E message". */
static int read_answer(int fd, const struct moat_env_sup_opts *o, const char *logpath, struct moat_error **err)
{
        _cleanup_fclose_ FILE *f = fdopen(fd, "r");
        if (!f) {
                close(fd);
                return -ENOMEM;
        }
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, f)) > 0) {
                if (line[n - 1] == '\n')
                        line[--n] = '\0';
                if (line[0] == 'P' && line[1] == ' ') {
                        if (o && o->progress)
                                o->progress(line + 2, o->userdata);
                } else if (line[0] == 'K') {
                        return 0;
                } else if (line[0] == 'E' && line[1] == ' ') {
                        return moat_error_input(err, -EIO, "%s", line + 2);
                }
        }
        return moat_error_input(err, -ECHILD, "the supervisor ended before the environment was up (see '%s')",
                                logpath);
}

int moat_env_supervisor_start(const char *dir, const struct moat_env_sup_opts *o, struct moat_error **err)
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
                daemon_main(dir, 3, o && o->wait_healthy);
        }
        close(pfd[1]);
        int st = 0;
        while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
                ;
        return read_answer(pfd[0], o, logpath, err);
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
