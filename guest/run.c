/* SPDX-License-Identifier: Apache-2.0 */
/* Starts the process and relays: its stdout/stderr (pipes, or a pty) -> STDOUT/STDERR frames;
 * STDIN frames -> its stdin (empty: close); SIGNAL -> kill; RESIZE -> TIOCSWINSZ.  Reaps every
 * child (PID 1 inherits all orphans).  SIGCHLD is taken through a signalfd. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "vminit.h"

#define STDIN_BACKLOG (8u << 20)        /* stop reading the channel while this much is unwritten */
#define DRAIN_MS 500

struct relay {
        int chan;
        struct moat_vm_reader *rd;
        pid_t pid;
        int out, err;           /* read ends (-1 when done); with a pty out = master, err = -1 */
        struct vm_stdin in;     /* with a pty: the master again, not owned */
        bool pty;
        int master;             /* the pty master (owned), or -1 */
        int status;             /* -1 while running */
        bool broken;            /* an exec session could not write to the channel */
};

static void reap(struct relay *r)
{
        for (;;) {
                int st;
                pid_t p = waitpid(-1, &st, WNOHANG);

                if (p <= 0)
                        return;
                if (p == r->pid && (WIFEXITED(st) || WIFSIGNALED(st)))
                        r->status = vm_status_code(st);
                else if (vm_exec_reaped(p, st) < 0)
                        r->broken = true;
        }
}

/* Sends what one output fd has: 0 go on, 1 that fd is done (EOF/EIO), -1 the channel broke. */
static int pump_out(struct relay *r, int *fd, uint8_t type)
{
        static uint8_t buf[MOAT_VM_MAX_DATA];

        for (;;) {
                ssize_t n = read(*fd, buf, sizeof buf);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n <= 0) {   /* EOF, or EIO on a pty master once the slave is gone */
                        if (*fd != r->master)
                                close(*fd);
                        *fd = -1;
                        return 1;
                }
                if (moat_vm_send(r->chan, type, buf, (size_t)n) < 0)
                        return -1;
                if ((size_t)n < sizeof buf)
                        return 0;
        }
}

/* Frames from the host: 0 go on, -1 the channel broke (bad frame, EOF, error). */
static int pump_chan(struct relay *r, bool fill)
{
        if (fill) {
                ssize_t n = moat_vm_reader_fill(r->rd, r->chan);

                if (n == 0 || (n < 0 && n != -EAGAIN))
                        return -1;
        }
        for (;;) {
                uint8_t type;
                const uint8_t *p;
                size_t len;
                int k = moat_vm_reader_next(r->rd, &type, &p, &len);

                if (k < 0)
                        return -1;
                if (k == 0)
                        return 0;
                switch (type) {
                case MOAT_VM_STDIN:
                        if (vm_stdin_push(&r->in, p, len) < 0)
                                return -1;
                        break;
                case MOAT_VM_SIGNAL:
                        if (len == 4) {
                                uint32_t sig = moat_vm_get_u32(p);
                                if (sig >= 1 && sig < (uint32_t)NSIG && r->status < 0)
                                        (void)kill(r->pid, (int)sig);
                        }
                        break;
                case MOAT_VM_RESIZE:
                        if (len == 4 && r->pty) {
                                struct winsize ws = { .ws_row = moat_vm_get_u16(p), .ws_col = moat_vm_get_u16(p + 2) };
                                (void)ioctl(r->master, TIOCSWINSZ, &ws);
                        }
                        break;
                default:
                        if (vm_exec_frame(type, p, len) < 0)
                                return -1;
                        break;  /* a second CONFIG, or a type from a newer host: ignored */
                }
        }
}

static int send_error(int chan, const char *text, size_t len)
{
        return moat_vm_send(chan, MOAT_VM_ERROR, text, len);
}

/* Starts the process: 0 and r->pid, or an exit code (> 0) after ERROR was sent, or -1. */
static int start(struct relay *r, const struct vm_config *c, bool test_mode)
{
        struct vm_proc p;
        char why[1100];
        int code = vm_spawn(c, test_mode, &p, why, sizeof why);

        if (code > 0)
                return send_error(r->chan, why, strlen(why)) < 0 ? -1 : code;
        r->pid = p.pid;
        r->pty = p.master >= 0;
        r->master = p.master;
        r->in = (struct vm_stdin){ .fd = p.in, .pty = r->pty };
        r->out = p.out;
        r->err = p.err;
        return 0;
}

int vm_run(int chan, struct moat_vm_reader *rd, const struct vm_config *c, bool test_mode)
{
        struct relay r = { .chan = chan, .rd = rd, .pid = -1, .out = -1, .err = -1, .in = { .fd = -1 }, .master = -1,
                           .status = -1 };
        sigset_t chld;
        int ret = -1;

        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, NULL);
        int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0) {
                const char m[] = "signalfd failed";
                return send_error(chan, m, sizeof m - 1) < 0 ? -1 : 1;
        }

        int k = start(&r, c, test_mode);
        if (k != 0) {
                close(sfd);
                return k;
        }
        vm_exec_init(chan, test_mode);
        uint8_t pidb[4];
        moat_vm_put_u32(pidb, (uint32_t)r.pid);
        if (moat_vm_send(chan, MOAT_VM_STARTED, pidb, sizeof pidb) < 0)
                goto broken;

        /* frames already buffered behind CONFIG (an early STDIN, a SIGNAL) */
        if (pump_chan(&r, false) < 0)
                goto broken;

        while (r.status < 0) {
                struct pollfd p[5 + VM_EXEC_MAX_POLL];
                int n = 0, i_sig, i_chan = -1, i_out = -1, i_err = -1, i_in = -1;

                p[i_sig = n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
                if (vm_stdin_pending(&r.in) < STDIN_BACKLOG && !vm_exec_stdin_full())
                        p[i_chan = n++] = (struct pollfd){ .fd = chan, .events = POLLIN };
                if (r.in.fd >= 0 && vm_stdin_pending(&r.in))
                        p[i_in = n++] = (struct pollfd){ .fd = r.in.fd, .events = POLLOUT };
                if (r.out >= 0)
                        p[i_out = n++] = (struct pollfd){ .fd = r.out, .events = POLLIN };
                if (r.err >= 0)
                        p[i_err = n++] = (struct pollfd){ .fd = r.err, .events = POLLIN };
                int i_exec = n;
                n += (int)vm_exec_poll_add(p + n, VM_EXEC_MAX_POLL);
                if (poll(p, (nfds_t)n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        goto broken;
                }
                if (p[i_sig].revents) {
                        struct signalfd_siginfo si;
                        while (read(sfd, &si, sizeof si) > 0)
                                ;
                        reap(&r);
                }
                if (i_out >= 0 && p[i_out].revents && pump_out(&r, &r.out, MOAT_VM_STDOUT) < 0)
                        goto broken;
                if (i_err >= 0 && p[i_err].revents && pump_out(&r, &r.err, MOAT_VM_STDERR) < 0)
                        goto broken;
                if (i_in >= 0 && p[i_in].revents)
                        vm_stdin_pump(&r.in);
                if (vm_exec_poll_done(p + i_exec, (size_t)(n - i_exec)) < 0 || r.broken)
                        goto broken;
                if (i_chan >= 0 && p[i_chan].revents && pump_chan(&r, true) < 0)
                        goto broken;
        }
        vm_exec_end(true);
        /* The process is gone: send what its output still holds, until EOF (EIO on a pty)
         * or DRAIN_MS, so a background child keeping the pipes open cannot keep the VM up
         * (a pty's last output may reach the master a little after the exit). */
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (r.out >= 0 || r.err >= 0) {
                struct pollfd p[2];
                int n = 0, i_out = -1, i_err = -1;
                struct timespec t1;

                clock_gettime(CLOCK_MONOTONIC, &t1);
                long left = DRAIN_MS - ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
                if (left <= 0)
                        break;
                if (r.out >= 0)
                        p[i_out = n++] = (struct pollfd){ .fd = r.out, .events = POLLIN };
                if (r.err >= 0)
                        p[i_err = n++] = (struct pollfd){ .fd = r.err, .events = POLLIN };
                int pr = poll(p, (nfds_t)n, (int)left);
                if (pr < 0 && errno == EINTR)
                        continue;
                if (pr <= 0)
                        break;
                if (i_out >= 0 && p[i_out].revents && pump_out(&r, &r.out, MOAT_VM_STDOUT) < 0)
                        goto broken;
                if (i_err >= 0 && p[i_err].revents && pump_out(&r, &r.err, MOAT_VM_STDERR) < 0)
                        goto broken;
        }
        ret = r.status;
        goto out;
broken:
        /* the host is gone or broke the protocol: no EXIT can be sent */
        if (r.pid > 0 && r.status < 0) {
                (void)kill(r.pid, SIGKILL);
                int st;
                while (waitpid(r.pid, &st, 0) < 0 && errno == EINTR)
                        ;
        }
        ret = -1;
        vm_exec_end(false);
out:
        if (r.pid > 0)
                (void)kill(-r.pid, SIGKILL);    /* what is left of its session */
        vm_stdin_free(&r.in);
        if (r.out != r.master)
                vm_close_fd(&r.out);
        vm_close_fd(&r.err);
        vm_close_fd(&r.master);
        close(sfd);
        return ret;
}
