/* SPDX-License-Identifier: Apache-2.0 */
/* The client of exec into a VM (vm/exec.h): connects to the monitor's exec.sock, sends the
 * process, relays stdio and signals, returns the exit status.  Only libc, proto.c and the
 * seccomp compiler: the lean moat-runtime links it.  With a terminal (process.terminal) the
 * guest makes the process's pty; ours is a transport: the slave of --console-socket (its
 * master sent there, as runc does) or our own terminal, raw; its size goes with the EXEC
 * (WINSIZE) and its changes (SIGWINCH) as EXEC_RESIZE. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "vm/config.h"
#include "vm/exec.h"
#include "vm/proto.h"
#include "vm/rtface.h"

int moat_vm_exec_tlv(const struct moat_spec *spec, const struct moat_process *p, int tty, uint8_t **out,
                     size_t *len, struct moat_error **err)
{
        if (!p || !p->args || !p->args[0])
                return moat_error_input(err, -EINVAL, "the process's args are empty: nothing to run");
        struct moat_vm_tlv_writer w = { 0 };
        /* as runc: an exec'd process gets the container's seccomp profile */
        int r = moat_vm_process_tlv(&w, p, spec ? spec->linux_.seccomp : NULL, err);
        if (r < 0) {
                moat_vm_tlv_free(&w);
                return r;
        }
        if (p->terminal && tty >= 0)
                moat_vm_tlv_put_winsize(&w, tty);
        /* room for the session id the monitor puts in front */
        if (!w.err && w.len > MOAT_VM_MAX_FRAME - 1 - 4)
                w.err = -EMSGSIZE;
        if (w.err) {
                int e = w.err;
                moat_vm_tlv_free(&w);
                return moat_error_set(err, -e, "the process is too big for the VM's channel");
        }
        *out = w.buf;
        *len = w.len;
        return 0;
}

struct client {
        const struct moat_vm_exec_opts *o;
        int sock, sigfd;
        int in, out, err;       /* the stdio relayed: o's, or the terminal's slave */
        int tty;                /* the terminal the process's pty follows in size; -1 none */
        bool own_tty;           /* tty is our slave of --console-socket */
        bool poll_size;         /* no SIGWINCH from tty: its size is checked every second */
        uint8_t size[4];        /* its size as last sent */
        struct moat_vm_reader rd;
        bool started, exited, stdin_open;
        uint32_t pending_sig;
        int status;
        char error[1025];
};

static int connect_to(const char *state_dir, const char *id, struct moat_error **err)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/" MOAT_VM_EXEC_SOCK, state_dir) >=
            sizeof sa.sun_path)
                return moat_error_input(err, -ENAMETOOLONG, "'%s' is too long for a socket path", state_dir);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return moat_error_set(err, errno, "socket");
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                int e = errno;
                close(fd);
                if (e == ENOENT || e == ECONNREFUSED)
                        return moat_error_input(err, -ESRCH, "container '%s' is not running (its VM takes no exec)",
                                                id);
                return moat_error_set(err, e, "cannot reach the VM of '%s'", id);
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
                (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        return fd;
}

static void on_frame(struct client *c, uint8_t type, const uint8_t *p, size_t len)
{
        switch (type) {
        case MOAT_VM_EXEC_STARTED:
                c->started = len == 4;
                break;
        case MOAT_VM_EXEC_STDOUT:
        case MOAT_VM_EXEC_STDERR: {
                int fd = type == MOAT_VM_EXEC_STDOUT ? c->out : c->err;
                if (fd >= 0 && len && write_all(fd, p, len) < 0 && errno != EPIPE)
                        moat_debug("exec in '%s': output lost: %s", c->o->id, strerror(errno));
                break;
        }
        case MOAT_VM_EXEC_ERROR: {
                size_t n = len > sizeof c->error - 1 ? sizeof c->error - 1 : len;
                for (size_t i = 0; i < n; i++)
                        c->error[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
                c->error[n] = '\0';
                break;
        }
        case MOAT_VM_EXEC_EXIT:
                if (len == 4 && moat_vm_get_u32(p) <= 255) {
                        c->exited = true;
                        c->status = (int)moat_vm_get_u32(p);
                }
                break;
        default:
                break;
        }
}

/* 0 go on, 1 the socket is done (EOF), < 0 error. */
static int sock_ready(struct client *c)
{
        ssize_t n = moat_vm_reader_fill(&c->rd, c->sock);
        if (n == -EAGAIN)
                return 0;
        if (n <= 0)
                return n == 0 || n == -ECONNRESET ? 1 : (int)n;
        uint8_t type;
        const uint8_t *p;
        size_t len;
        int k;
        while ((k = moat_vm_reader_next(&c->rd, &type, &p, &len)) > 0)
                on_frame(c, type, p, len);
        return k < 0 ? -EBADMSG : 0;
}

static void send_u32(struct client *c, uint8_t type, uint32_t v)
{
        uint8_t b[4];
        moat_vm_put_u32(b, v);
        (void)moat_vm_send(c->sock, type, b, sizeof b);
}

static void stdin_ready(struct client *c)
{
        char buf[MOAT_VM_MAX_DATA];
        ssize_t n = read(c->in, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n <= 0) {
                c->stdin_open = false;
                (void)moat_vm_send(c->sock, MOAT_VM_EXEC_STDIN, NULL, 0);
                return;
        }
        (void)moat_vm_send(c->sock, MOAT_VM_EXEC_STDIN, buf, (size_t)n);
}

/* The terminal's size to the process's pty, when it changed. */
static void send_size(struct client *c)
{
        uint8_t b[4];
        if (c->tty < 0 || moat_vm_tty_size(c->tty, b) < 0 || memcmp(b, c->size, sizeof b) == 0)
                return;
        memcpy(c->size, b, sizeof b);
        (void)moat_vm_send(c->sock, MOAT_VM_EXEC_RESIZE, b, sizeof b);
}

/* Our slave of --console-socket as our controlling terminal, so that a resize of its master
 * (TIOCSWINSZ) comes as SIGWINCH; when we cannot (a process group leader cannot setsid), its
 * size is polled. */
static void follow_tty(struct client *c)
{
        if (c->own_tty)
                c->poll_size = !(setsid() >= 0 && ioctl(c->tty, TIOCSCTTY, 0) == 0);
        send_size(c);
}

static void signal_ready(struct client *c)
{
        struct signalfd_siginfo si;
        while (read(c->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGWINCH && c->o->process->terminal)
                        send_size(c); /* a resize of the terminal, not a signal for the process */
                else if (c->started)
                        send_u32(c, MOAT_VM_EXEC_SIGNAL, si.ssi_signo);
                else
                        c->pending_sig = si.ssi_signo;
        }
}

/* Relays until EXIT (1), or until STARTED when until_started (0); < 0 error. */
static int relay(struct client *c, bool until_started, struct moat_error **err)
{
        for (;;) {
                if (c->exited)
                        return 1;
                if (until_started && c->started)
                        return 0;
                struct pollfd p[3] = {
                        { .fd = c->sock, .events = POLLIN },
                        { .fd = c->sigfd, .events = POLLIN },
                        { .fd = c->stdin_open && c->started ? c->in : -1, .events = POLLIN },
                };
                if (poll(p, 3, c->poll_size ? 1000 : -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return moat_error_set(err, errno, "poll");
                }
                if (c->poll_size)
                        send_size(c);
                if (p[1].revents)
                        signal_ready(c);
                if (p[2].revents)
                        stdin_ready(c);
                if (p[0].revents) {
                        bool was = c->started;
                        int r = sock_ready(c);
                        if (r < 0)
                                return moat_error_set(err, -r, "the exec socket of '%s'", c->o->id);
                        if (!was && c->started && c->pending_sig) {
                                send_u32(c, MOAT_VM_EXEC_SIGNAL, c->pending_sig);
                                c->pending_sig = 0;
                        }
                        if (r == 1 && !c->exited)
                                return moat_error_input(err, -ECHILD, "the VM of '%s' ended before the process's "
                                                        "exit status came", c->o->id);
                }
        }
}

static int not_started(struct client *c, struct moat_error **err)
{
        /* the guest's codes: 127 not found, 126 not executable, else a setup failure */
        int e = c->status == 127 ? -ENOENT : c->status == 126 ? -EACCES : -EIO;
        return moat_error_input(err, e, "%s", c->error[0] ? c->error : "the process did not start");
}

int moat_vm_exec(const struct moat_vm_exec_opts *o, int *status, struct moat_error **err)
{
        if (!o->process)
                return moat_error_input(err, -EINVAL, "no process to run");
        struct client c = { .o = o, .sock = -EBADF, .sigfd = -EBADF, .in = o->in, .out = o->out, .err = o->err,
                            .tty = -1 };
        _cleanup_close_ int slave = -EBADF;
        struct termios saved;
        bool restore = false;
        int r;
        if (o->process->terminal && o->console_socket) {
                /* as runc: the master goes to the socket, our stdio is the slave (raw: the
                 * guest's pty is the process's terminal) */
                r = moat_vm_pty_open(o->process, o->console_socket, &slave, err);
                if (r < 0)
                        return r;
                c.in = c.out = c.err = c.tty = slave;
                c.own_tty = true;
        } else if (o->process->terminal && o->in >= 0 && isatty(o->in) && tcgetattr(o->in, &saved) == 0) {
                /* our own terminal, raw while the process has it */
                struct termios t = saved;
                cfmakeraw(&t);
                restore = tcsetattr(o->in, TCSANOW, &t) == 0;
                c.tty = o->in;
        }
        c.stdin_open = c.in >= 0;
        if (c.tty >= 0)
                (void)moat_vm_tty_size(c.tty, c.size);
        _cleanup_free_ uint8_t *tlv = NULL;
        size_t tlv_len = 0;
        r = moat_vm_exec_tlv(o->spec, o->process, c.tty, &tlv, &tlv_len, err);
        if (r < 0)
                goto restore;
        moat_vm_reader_init(&c.rd, MOAT_VM_MAX_FRAME);
        sigset_t mask, old;
        sigfillset(&mask);
        static const int keep[] = { SIGCHLD, SIGPIPE, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS,
                                    SIGTTIN, SIGTTOU, SIGTSTP };
        for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
                sigdelset(&mask, keep[i]);
        sigprocmask(SIG_BLOCK, &mask, &old);
        c.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (c.sigfd < 0) {
                r = moat_error_set(err, errno, "signalfd");
                goto out;
        }
        c.sock = connect_to(o->state_dir, o->id, err);
        if (c.sock < 0) {
                r = c.sock;
                goto out;
        }
        r = moat_vm_send(c.sock, MOAT_VM_EXEC, tlv, tlv_len);
        if (r < 0) {
                r = moat_error_set(err, -r, "cannot send the process to the VM of '%s'", o->id);
                goto out;
        }
        r = relay(&c, true, err);
        if (r < 0)
                goto out;
        if (!c.started) {
                r = not_started(&c, err);
                goto out;
        }
        pid_t self = getpid();
        if (o->detach) {
                fflush(stdout);
                fflush(stderr);
                pid_t pid = fork();
                if (pid < 0) {
                        r = moat_error_set(err, errno, "fork");
                        goto out;
                }
                if (pid == 0) {
                        /* the stand-in: relays on and exits with the process's status */
                        follow_tty(&c);
                        struct moat_error *e2 = NULL;
                        int k = relay(&c, false, &e2);
                        if (k < 0 && e2 && e2->msg && o->err >= 0)
                                dprintf(o->err, "moat: exec in '%s': %s\n", o->id, e2->msg);
                        _exit(k < 0 ? 255 : c.status);
                }
                self = pid;
        }
        if (o->started) {
                r = o->started(self, o->userdata, err);
                if (r < 0) {
                        if (o->detach)
                                kill(self, SIGKILL);
                        else
                                send_u32(&c, MOAT_VM_EXEC_SIGNAL, SIGKILL);
                        goto out;
                }
        }
        if (o->detach) {
                *status = 0;
                r = 0;
                goto out;
        }
        follow_tty(&c);
        r = relay(&c, false, err);
        if (r >= 0) {
                r = 0;
                *status = c.status;
        }
out:
        closep(&c.sock);
        closep(&c.sigfd);
        sigprocmask(SIG_SETMASK, &old, NULL);
        moat_vm_reader_free(&c.rd);
restore:
        if (restore)
                (void)tcsetattr(o->in, TCSAFLUSH, &saved);
        return r;
}
