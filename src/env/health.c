/* SPDX-License-Identifier: Apache-2.0 */
/* Health checks: the Docker/Compose state machine and the probe runner.
 *
 * A probe forks a helper H (its own session and process group) that calls
 * moat_container_exec(detach) with stdin /dev/null and stdout/stderr on a
 * pipe, then waits for the exec'd process E (its child: a pidfd of it is safe
 * from pid reuse) while draining that pipe into a 4 KiB ring, so E never
 * blocks on output however late the caller reads.  When E ends, H writes
 * {status, output} on a report pipe (always less than a pipe's capacity) and
 * exits.  The caller polls a pidfd of H.
 *
 * Killing: the caller writes to (or closes) a control socket; H SIGKILLs E
 * through its pidfd, reaps it and reports 137.  If the caller dies, the
 * control socket hangs up and H does the same.  Before reaping H the caller
 * SIGKILLs H's process group, which E and anything E forked (a shell's
 * children) inherited: while H is unreaped its pid, and so the group id,
 * cannot be reused.  If H does not answer within a grace period it is killed
 * with its group. */
#include "env/health.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "oci/spec.h"
#include "runtime/container.h"

/* ---- the state machine ---- */

const char *moat_health_status_name(enum moat_health_status s)
{
        switch (s) {
        case MOAT_HEALTH_STARTING:
                return "starting";
        case MOAT_HEALTH_HEALTHY:
                return "healthy";
        case MOAT_HEALTH_UNHEALTHY:
                return "unhealthy";
        case MOAT_HEALTH_NONE:
        default:
                return "";
        }
}

static int64_t or_default(int64_t v, int64_t d)
{
        return v > 0 ? v : d;
}

static int64_t add_sat(int64_t a, int64_t b)
{
        return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static bool in_start_period(const struct moat_health *h, int64_t t)
{
        return h->status == MOAT_HEALTH_STARTING && h->hc->start_period_ns > 0 &&
               t - h->started_ns < h->hc->start_period_ns;
}

static void schedule(struct moat_health *h, int64_t now_ns)
{
        int64_t iv = in_start_period(h, now_ns)
                             ? or_default(h->hc->start_interval_ns, MOAT_HEALTH_DEFAULT_START_INTERVAL_NS)
                             : or_default(h->hc->interval_ns, MOAT_HEALTH_DEFAULT_INTERVAL_NS);
        h->next_ns = add_sat(now_ns, iv);
}

void moat_health_init(struct moat_health *h, const struct moat_env_healthcheck *hc, int64_t now_ns)
{
        *h = (struct moat_health){ .hc = hc, .started_ns = now_ns, .next_ns = INT64_MAX };
        if (!hc || !hc->present || hc->disable || !hc->test || !hc->test[0]) {
                h->status = MOAT_HEALTH_NONE;
                return;
        }
        h->status = MOAT_HEALTH_STARTING;
        schedule(h, now_ns);
}

bool moat_health_due(const struct moat_health *h, int64_t now_ns)
{
        return h->status != MOAT_HEALTH_NONE && h->next_ns != INT64_MAX && now_ns >= h->next_ns;
}

void moat_health_probe_began(struct moat_health *h, int64_t now_ns)
{
        h->probe_started_ns = now_ns;
}

int64_t moat_health_timeout_ns(const struct moat_health *h)
{
        return or_default(h->hc ? h->hc->timeout_ns : 0, MOAT_HEALTH_DEFAULT_TIMEOUT_NS);
}

bool moat_health_record(struct moat_health *h, int64_t now_ns, bool ok)
{
        if (h->status == MOAT_HEALTH_NONE || !h->hc)
                return false;
        enum moat_health_status before = h->status;
        int64_t began = h->probe_started_ns > 0 && h->probe_started_ns <= now_ns ? h->probe_started_ns : now_ns;
        h->probe_started_ns = 0;
        if (ok) {
                h->failures = 0;
                h->status = MOAT_HEALTH_HEALTHY;
        } else if (!in_start_period(h, began)) {
                if (h->failures < INT_MAX)
                        h->failures++;
                int retries = h->hc->retries > 0 ? h->hc->retries : MOAT_HEALTH_DEFAULT_RETRIES;
                if (h->failures >= retries)
                        h->status = MOAT_HEALTH_UNHEALTHY;
        }
        schedule(h, now_ns);
        return h->status != before;
}

/* ---- the probe runner ---- */

#define KILL_GRACE_MS 3000
#define ERR_MAX 1024
#define LOST "moat: lost the probe process\n"

struct moat_health_probe {
        pid_t pid;   /* the helper; 0 once reaped */
        int pidfd;   /* pidfd of the helper, or -EBADF (then res is polled) */
        int ctl;     /* our end of the control socket */
        int res;     /* read end of the report pipe */
        bool done;   /* report collected and helper reaped */
        int status;
        char *output;
};

struct report_hdr {
        int32_t status;
        uint32_t len;
};

static int sys_pidfd_open(pid_t pid)
{
        long r = syscall(SYS_pidfd_open, pid, 0);
        return r < 0 ? -errno : (int)r;
}

static int sys_pidfd_send_signal(int pidfd, int sig)
{
        return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

static int shell_status(int ws)
{
        if (WIFEXITED(ws))
                return WEXITSTATUS(ws);
        if (WIFSIGNALED(ws))
                return 128 + WTERMSIG(ws);
        return 255;
}

/* The last MOAT_HEALTH_OUTPUT_MAX bytes written. */
struct ring {
        char buf[MOAT_HEALTH_OUTPUT_MAX];
        size_t total;
};

static void ring_add(struct ring *r, const char *p, size_t n)
{
        if (n >= sizeof(r->buf)) {
                p += n - sizeof(r->buf);
                r->total += n - sizeof(r->buf);
                n = sizeof(r->buf);
        }
        while (n > 0) {
                size_t at = r->total % sizeof(r->buf);
                size_t k = sizeof(r->buf) - at < n ? sizeof(r->buf) - at : n;
                memcpy(r->buf + at, p, k);
                r->total += k;
                p += k;
                n -= k;
        }
}

/* Linearizes into out (MOAT_HEALTH_OUTPUT_MAX bytes); returns the length. */
static size_t ring_take(const struct ring *r, char *out)
{
        if (r->total <= sizeof(r->buf)) {
                memcpy(out, r->buf, r->total);
                return r->total;
        }
        size_t at = r->total % sizeof(r->buf);
        memcpy(out, r->buf + at, sizeof(r->buf) - at);
        memcpy(out + sizeof(r->buf) - at, r->buf, at);
        return sizeof(r->buf);
}

/* Reads what is there now (fd non-blocking); false on EOF or error. */
static bool drain(int fd, struct ring *r, size_t limit)
{
        char tmp[4096];
        size_t got = 0;
        while (got < limit) {
                ssize_t n = read(fd, tmp, sizeof(tmp));
                if (n > 0) {
                        ring_add(r, tmp, (size_t)n);
                        got += (size_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                return n < 0 && errno == EAGAIN;
        }
        return true;
}

static _Noreturn void helper_report(int res, int status, const char *text, size_t len)
{
        struct report_hdr h = { .status = status, .len = (uint32_t)len };
        (void)write_all(res, &h, sizeof(h));
        if (len > 0)
                (void)write_all(res, text, len);
        _exit(0);
}

/* The only child of the helper: the exec'd process. */
static pid_t helper_find_child(void)
{
        char path[64], buf[64];
        snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return n < 0 ? -errno : -ESRCH;
        buf[n] = '\0';
        char *sp = strchr(buf, ' ');
        if (sp)
                *sp = '\0';
        int pid = 0;
        if (parse_int(buf, &pid) < 0 || pid <= 0)
                return -ESRCH;
        return (pid_t)pid;
}

struct helper_args {
        const struct moat_runtime *rt;
        const char *id;
        struct moat_process *process;
        int ctl, res, out_r, out_w, devnull;
};

static _Noreturn void helper_main(struct helper_args *a)
{
        /* A clean slate: our own process group (E and its children inherit it), default
         * signal handling and mask (the caller may block signals for a signalfd; E would
         * inherit both), only our own fds. */
        (void)setsid();
        moat_signals_reset();
        if (dup2(a->devnull, 0) < 0 || dup2(a->out_w, 1) < 0 || dup2(a->out_w, 2) < 0)
                _exit(126);
        int keep[] = { a->ctl, a->res, a->out_r };
        if (close_fds_from(3, keep, ARRAY_SIZE(keep)) < 0)
                _exit(126);

        struct moat_error *err = NULL;
        struct moat_exec_opts o = { .id = a->id, .process = a->process, .detach = true };
        int st = 0;
        int r = moat_container_exec(a->rt, &o, &st, &err);
        /* Our copies of the output pipe: only E (and what it forks) keep it open. */
        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nul >= 0) {
                (void)dup2(nul, 1);
                (void)dup2(nul, 2);
                close(nul);
        }
        if (r < 0) {
                char msg[ERR_MAX];
                int n = snprintf(msg, sizeof(msg), "moat: %s\n", err && err->msg ? err->msg : strerror(-r));
                if (n < 0)
                        n = 0;
                size_t len = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
                helper_report(a->res, r == -ENOENT ? 127 : 126, msg, len);
        }

        static struct ring ring; /* static: the helper is a process of its own */
        (void)fcntl(a->out_r, F_SETFL, O_NONBLOCK);
        pid_t e = helper_find_child();
        int epfd = e > 0 ? sys_pidfd_open(e) : -EBADF;
        int ws = 0;
        if (epfd < 0) {
                /* No way to poll for it: wait for the one child we have.  (Kills then
                 * come from the caller's group kill.) */
                while (waitpid(-1, &ws, 0) < 0)
                        if (errno != EINTR)
                                helper_report(a->res, 126, LOST, sizeof(LOST) - 1);
        } else {
                int outfd = a->out_r, ctlfd = a->ctl;
                for (;;) {
                        struct pollfd p[3] = {
                                { .fd = epfd, .events = POLLIN },
                                { .fd = outfd, .events = POLLIN },
                                { .fd = ctlfd, .events = POLLIN },
                        };
                        if (poll(p, 3, -1) < 0) {
                                if (errno == EINTR)
                                        continue;
                                (void)sys_pidfd_send_signal(epfd, SIGKILL);
                                break;
                        }
                        if (p[1].revents && !drain(outfd, &ring, 1 << 20))
                                outfd = -1; /* EOF: poll ignores negative fds */
                        if (p[2].revents) {
                                /* a kill request, or the caller went away */
                                (void)sys_pidfd_send_signal(epfd, SIGKILL);
                                ctlfd = -1;
                        }
                        if (p[0].revents)
                                break;
                }
                while (waitpid(e, &ws, 0) < 0)
                        if (errno != EINTR)
                                helper_report(a->res, 126, LOST, sizeof(LOST) - 1);
        }
        /* What E wrote just before it ended; bounded, as something E forked may keep writing. */
        drain(a->out_r, &ring, 1 << 20);
        static char text[MOAT_HEALTH_OUTPUT_MAX];
        size_t len = ring_take(&ring, text);
        helper_report(a->res, shell_status(ws), text, len);
}

/* Keeps fds off 0..2 so the helper's dup2 onto stdio cannot clobber them. */
static int fd_above_stdio(int fd)
{
        if (fd < 0 || fd > 2)
                return fd;
        int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        int e = errno;
        close(fd);
        return n < 0 ? -e : n;
}

/* A pipe, or for the control channel a socket pair: a late kill request to a
 * helper that has gone then gets EPIPE from send(MSG_NOSIGNAL), never SIGPIPE. */
static int pair_above_stdio(int p[2], bool sock)
{
        if ((sock ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) : pipe2(p, O_CLOEXEC)) < 0)
                return -errno;
        p[0] = fd_above_stdio(p[0]);
        p[1] = fd_above_stdio(p[1]);
        if (p[0] < 0 || p[1] < 0) {
                int r = p[0] < 0 ? p[0] : p[1];
                closep(&p[0]);
                closep(&p[1]);
                return r;
        }
        return 0;
}

int moat_health_probe_start(const struct moat_runtime *rt, const char *id, char *const *test,
                            struct moat_health_probe **out, struct moat_error **err)
{
        int ctl[2] = { -EBADF, -EBADF }, res[2] = { -EBADF, -EBADF }, outp[2] = { -EBADF, -EBADF };
        _cleanup_close_ int devnull = -EBADF;
        struct moat_process *proc = NULL;
        struct moat_health_probe *p = NULL;
        int r;

        *out = NULL;
        if (!id)
                return moat_error_input(err, EINVAL, "health check: no container id");
        if (!test || !test[0] || !test[0][0]) {
                r = moat_error_input(err, EINVAL, "health check of '%s': the test is empty", id ? id : "");
                goto out;
        }
        r = moat_container_process(rt, id, &proc, err);
        if (r < 0)
                goto out;
        strv_free(proc->args);
        proc->args = strv_dup(test);
        proc->terminal = false;
        p = calloc(1, sizeof(*p));
        if (!proc->args || !p) {
                r = moat_error_set(err, ENOMEM, "health check of '%s'", id);
                goto out;
        }
        p->pidfd = p->ctl = p->res = -EBADF;
        if ((r = pair_above_stdio(ctl, true)) < 0 || (r = pair_above_stdio(res, false)) < 0 ||
            (r = pair_above_stdio(outp, false)) < 0) {
                r = moat_error_set(err, r, "health check of '%s': pipe", id);
                goto out;
        }
        devnull = fd_above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC));
        if (devnull < 0) {
                r = moat_error_set(err, devnull == -1 ? errno : devnull, "cannot open '/dev/null'");
                goto out;
        }
        pid_t pid = fork();
        if (pid < 0) {
                r = moat_error_set(err, errno, "health check of '%s': cannot fork", id);
                goto out;
        }
        if (pid == 0) {
                struct helper_args a = { .rt = rt, .id = id, .process = proc, .ctl = ctl[0], .res = res[1],
                                         .out_r = outp[0], .out_w = outp[1], .devnull = devnull };
                helper_main(&a);
        }
        p->pid = pid;
        /* An unreaped child: its pid cannot be reused under us. */
        int pfd = sys_pidfd_open(pid);
        p->pidfd = pfd >= 0 ? pfd : -EBADF;
        p->ctl = TAKE_FD(ctl[1]);
        p->res = TAKE_FD(res[0]);
        *out = TAKE_PTR(p);
        r = 0;
out:
        closep(&ctl[0]);
        closep(&ctl[1]);
        closep(&res[0]);
        closep(&res[1]);
        closep(&outp[0]);
        closep(&outp[1]);
        moat_process_free(proc);
        free(p);
        return r;
}

int moat_health_probe_fd(const struct moat_health_probe *p)
{
        return p->pidfd >= 0 ? p->pidfd : p->res;
}

/* Reads the helper's report (blocks until it has written it or ended), kills
 * what is left of its process group, reaps it. */
static void collect(struct moat_health_probe *p)
{
        if (p->done)
                return;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        bool have = false;
        struct report_hdr h;
        if (p->res >= 0 && read_fd_all(p->res, &text, &len) >= 0 && len >= sizeof(h)) {
                memcpy(&h, text, sizeof(h));
                if (h.len <= len - sizeof(h) && h.len <= MOAT_HEALTH_OUTPUT_MAX + ERR_MAX)
                        have = true;
        }
        closep(&p->res);
        if (p->pid > 0) {
                /* Still unreaped: the group id is still ours. */
                (void)kill(-p->pid, SIGKILL);
                int ws = 0;
                while (waitpid(p->pid, &ws, 0) < 0 && errno == EINTR)
                        ;
                p->pid = 0;
                if (!have)
                        p->status = shell_status(ws) == 0 ? 126 : shell_status(ws);
        }
        if (have) {
                p->status = h.status;
                if (h.len > 0) {
                        p->output = malloc(h.len + 1);
                        if (p->output) {
                                memcpy(p->output, text + sizeof(h), h.len);
                                p->output[h.len] = '\0';
                        }
                }
        }
        closep(&p->pidfd);
        closep(&p->ctl);
        p->done = true;
}

int moat_health_probe_finish(struct moat_health_probe *p, int *status, char **output)
{
        collect(p);
        *status = p->status;
        if (output)
                *output = TAKE_PTR(p->output);
        return 0;
}

void moat_health_probe_kill(struct moat_health_probe *p)
{
        if (!p || p->done)
                return;
        if (p->ctl >= 0) {
                (void)send(p->ctl, "k", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                closep(&p->ctl);
        }
        struct pollfd pf = { .fd = moat_health_probe_fd(p), .events = POLLIN };
        int64_t deadline = now_ns() + KILL_GRACE_MS * 1000000LL;
        for (;;) {
                int64_t left = (deadline - now_ns()) / 1000000LL;
                if (left <= 0)
                        break;
                int n = poll(&pf, 1, (int)left);
                if (n > 0)
                        break;
                if (n < 0 && errno != EINTR)
                        break;
        }
        if (pf.fd < 0 || poll(&pf, 1, 0) <= 0) {
                moat_debug("health probe helper %d did not end: killing its process group", (int)p->pid);
                (void)kill(-p->pid, SIGKILL);
        }
        collect(p);
}

void moat_health_probe_free(struct moat_health_probe *p)
{
        if (!p)
                return;
        moat_health_probe_kill(p);
        free(p->output);
        free(p);
}
