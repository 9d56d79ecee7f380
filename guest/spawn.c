/* SPDX-License-Identifier: Apache-2.0 */
/* Starting a process of the guest (the container's, or an exec'd one): a pty or three pipes,
 * the fork, and the child's verdict on a CLOEXEC pipe (EOF: execve worked; else {u32 code,
 * text} from vm_child_exec). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "vminit.h"

void vm_close_fd(int *fd)
{
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

void vm_set_nonblock(int fd)
{
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
                (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int open_pty(int *master, int *slave)
{
        int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m < 0)
                return -errno;
        if (grantpt(m) < 0 || unlockpt(m) < 0) {
                int e = errno;
                close(m);
                return -e;
        }
        int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s < 0) {
                char name[128];
                if (ptsname_r(m, name, sizeof name) == 0)
                        s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        }
        if (s < 0) {
                int e = errno;
                close(m);
                return -e;
        }
        *master = m;
        *slave = s;
        return 0;
}

/* The child's verdict: 0 when it exec'd, else its exit code with its text in why. */
static int verdict(int ep, pid_t pid, char *why, size_t whylen)
{
        uint8_t buf[4 + 1024];
        size_t got = 0;
        for (;;) {
                ssize_t n = read(ep, buf + got, sizeof buf - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t)n;
                if (got == sizeof buf)
                        break;
        }
        if (got == 0)
                return 0;
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        int code = got >= 4 ? (int)(moat_vm_get_u32(buf) & 0xff) : 1;
        if (got >= 4)
                snprintf(why, whylen, "%.*s", (int)(got - 4), (const char *)buf + 4);
        else
                snprintf(why, whylen, "setup failed");
        return code ? code : 1;
}

int vm_spawn(const struct vm_config *c, bool test_mode, struct vm_proc *p, char *why, size_t whylen)
{
        int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, ep[2] = { -1, -1 };
        int master = -1, slave = -1;

        *p = (struct vm_proc){ .pid = -1, .in = -1, .out = -1, .err = -1, .master = -1 };
        if (c->terminal) {
                int e = open_pty(&master, &slave);
                if (e < 0) {
                        snprintf(why, whylen, "cannot allocate a terminal: %s", strerror(-e));
                        goto fail;
                }
                if (c->rows || c->cols) { /* WINSIZE: the host's terminal's size */
                        struct winsize ws = { .ws_row = c->rows, .ws_col = c->cols };
                        (void)ioctl(master, TIOCSWINSZ, &ws);
                }
        } else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
                snprintf(why, whylen, "pipe: %s", strerror(errno));
                goto fail;
        }
        if (pipe2(ep, O_CLOEXEC) < 0) {
                snprintf(why, whylen, "pipe: %s", strerror(errno));
                goto fail;
        }
        pid_t pid = fork();
        if (pid < 0) {
                snprintf(why, whylen, "fork: %s", strerror(errno));
                goto fail;
        }
        if (pid == 0) {
                struct vm_child_io io = { .in = in[0], .out = out[1], .err = err[1], .pty_slave = slave,
                                          .errfd = ep[1], .test_mode = test_mode };
                close(ep[0]);
                vm_child_exec(c, &io);
        }
        vm_close_fd(&ep[1]);
        vm_close_fd(&in[0]);
        vm_close_fd(&out[1]);
        vm_close_fd(&err[1]);
        vm_close_fd(&slave);
        int code = verdict(ep[0], pid, why, whylen);
        vm_close_fd(&ep[0]);
        if (code > 0) {
                vm_close_fd(&in[1]);
                vm_close_fd(&out[0]);
                vm_close_fd(&err[0]);
                vm_close_fd(&master);
                return code;
        }
        p->pid = pid;
        if (master >= 0) {
                p->master = p->in = p->out = master;
        } else {
                p->in = in[1];
                p->out = out[0];
                p->err = err[0];
                vm_set_nonblock(p->err);
        }
        vm_set_nonblock(p->in);
        vm_set_nonblock(p->out);
        return 0;
fail:
        for (int i = 0; i < 2; i++) {
                vm_close_fd(&in[i]);
                vm_close_fd(&out[i]);
                vm_close_fd(&err[i]);
                vm_close_fd(&ep[i]);
        }
        vm_close_fd(&master);
        vm_close_fd(&slave);
        return 1;
}

int vm_status_code(int st)
{
        if (WIFEXITED(st))
                return WEXITSTATUS(st);
        if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
        return 255;
}

void vm_stdin_close(struct vm_stdin *q)
{
        if (q->pty)
                q->fd = -1;     /* the master: its owner closes it */
        else
                vm_close_fd(&q->fd);
}

/* Once the host's empty STDIN came and the queue is written: close, or on a terminal the EOF
 * character, as a user would type it. */
static void finish(struct vm_stdin *q)
{
        if (q->off < q->len || !q->close || q->fd < 0)
                return;
        if (q->pty) {
                struct termios t;
                uint8_t eof = tcgetattr(q->fd, &t) == 0 ? t.c_cc[VEOF] : 4;
                (void)!write(q->fd, &eof, 1);
        }
        vm_stdin_close(q);
        q->close = false;
}

void vm_stdin_pump(struct vm_stdin *q)
{
        while (q->fd >= 0 && q->off < q->len) {
                ssize_t n = write(q->fd, q->buf + q->off, q->len - q->off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {   /* EPIPE: the process closed its stdin; drop the rest */
                        vm_stdin_close(q);
                        q->off = q->len = 0;
                        return;
                }
                q->off += (size_t)n;
        }
        if (q->off == q->len)
                q->off = q->len = 0;
        finish(q);
}

int vm_stdin_push(struct vm_stdin *q, const uint8_t *p, size_t len)
{
        if (len == 0) {
                q->close = true;
                finish(q);
                return 0;
        }
        if (q->fd < 0)
                return 0;       /* already closed: dropped */
        if (q->off > 0) {
                memmove(q->buf, q->buf + q->off, q->len - q->off);
                q->len -= q->off;
                q->off = 0;
        }
        uint8_t *n = realloc(q->buf, q->len + len);
        if (!n)
                return -1;
        memcpy(n + q->len, p, len);
        q->buf = n;
        q->len += len;
        vm_stdin_pump(q);
        return 0;
}

void vm_stdin_free(struct vm_stdin *q)
{
        vm_stdin_close(q);
        free(q->buf);
        *q = (struct vm_stdin){ .fd = -1 };
}
