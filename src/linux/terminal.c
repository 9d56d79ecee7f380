/* SPDX-License-Identifier: Apache-2.0 */
#include "linux/terminal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

/* What runc's console.NewPty names the master, and so what utils.SendFile sends. */
#define CONSOLE_FILE_NAME "/dev/ptmx"
#define CONSOLE_NAME_MAX 4096

int moat_pty_open(int *master, int *slave, char **slave_name, struct moat_error **err)
{
        _cleanup_close_ int ptm = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (ptm < 0)
                return moat_error_set(err, errno, "cannot open '/dev/ptmx'");
        int unlock = 0;
        if (ioctl(ptm, TIOCSPTLCK, &unlock) < 0)
                return moat_error_set(err, errno, "cannot unlock the pty master");
        unsigned int n = 0;
        if (ioctl(ptm, TIOCGPTN, &n) < 0)
                return moat_error_set(err, errno, "cannot get the pty number");
        char name[64];
        snprintf(name, sizeof(name), "/dev/pts/%u", n);

        _cleanup_close_ int pts = ioctl(ptm, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (pts < 0) {
                if (errno != EINVAL && errno != ENOTTY)
                        return moat_error_set(err, errno, "cannot open the pty slave (TIOCGPTPEER)");
                pts = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
                if (pts < 0)
                        return moat_error_set(err, errno, "cannot open the pty slave '%s'", name);
        }
        if (slave_name) {
                *slave_name = strdup(name);
                if (!*slave_name)
                        return moat_error_set(err, ENOMEM, "cannot allocate the pty name");
        }
        *master = TAKE_FD(ptm);
        *slave = TAKE_FD(pts);
        return 0;
}

int moat_pty_set_size(int fd, unsigned rows, unsigned cols, struct moat_error **err)
{
        if (rows > 0xffff || cols > 0xffff)
                return moat_error_input(err, EINVAL, "console size %ux%u is out of range", rows, cols);
        struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
        if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
                return moat_error_set(err, errno, "cannot set the console size to %ux%u", rows, cols);
        return 0;
}

int moat_pty_make_controlling(int slave, struct moat_error **err)
{
        if (setsid() < 0 && !(errno == EPERM && getsid(0) == getpid()))
                return moat_error_set(err, errno, "cannot start a new session");
        if (ioctl(slave, TIOCSCTTY, 0) < 0)
                return moat_error_set(err, errno, "cannot make the pty the controlling terminal");
        for (int i = 0; i <= 2; i++)
                if (slave != i && dup2(slave, i) < 0)
                        return moat_error_set(err, errno, "cannot dup the pty onto fd %d", i);
        /* slave may itself be 0..2: dup2 did not clear its close-on-exec flag then. */
        if (slave <= 2 && fd_cloexec(slave, false) < 0)
                return moat_error_set(err, errno, "cannot clear close-on-exec on fd %d", slave);
        return 0;
}

int moat_console_fd_send(int sock, int master, struct moat_error **err)
{
        int r = send_fd(sock, master, CONSOLE_FILE_NAME, strlen(CONSOLE_FILE_NAME));
        if (r < 0)
                return moat_error_set(err, r, "cannot send the console master");
        return 0;
}

int moat_console_socket_send(const char *socket_path, int master, struct moat_error **err)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (!socket_path || !*socket_path || strlen(socket_path) >= sizeof(sa.sun_path))
                return moat_error_input(err, EINVAL, "console socket '%s': path empty or too long (max %zu)",
                                        socket_path ? socket_path : "", sizeof(sa.sun_path) - 1);
        memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
        _cleanup_close_ int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return moat_error_set(err, errno, "cannot create a unix socket");
        int r;
        do
                r = connect(sock, (struct sockaddr *)&sa, sizeof(sa));
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return moat_error_set(err, errno, "cannot connect to console socket '%s'", socket_path);
        r = send_fd(sock, master, CONSOLE_FILE_NAME, strlen(CONSOLE_FILE_NAME));
        if (r < 0)
                return moat_error_set(err, r, "cannot send the console to '%s'", socket_path);
        return 0;
}

int moat_console_socket_recv(int listen_fd, int *master, struct moat_error **err)
{
        int listening = 0;
        socklen_t len = sizeof(listening);
        if (getsockopt(listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
                return moat_error_set(err, errno, "console socket fd %d", listen_fd);
        _cleanup_close_ int conn = -EBADF;
        int sock = listen_fd;
        if (listening) {
                do
                        conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                while (conn < 0 && errno == EINTR);
                if (conn < 0)
                        return moat_error_set(err, errno, "cannot accept on the console socket");
                sock = conn;
        }
        _cleanup_free_ char *name = calloc(1, CONSOLE_NAME_MAX + 1);
        if (!name)
                return moat_error_set(err, ENOMEM, "cannot receive the console");
        _cleanup_close_ int fd = -EBADF;
        int r = recv_fd(sock, &fd, name, CONSOLE_NAME_MAX);
        if (r < 0)
                return moat_error_set(err, r, "cannot receive the console master");
        if (fd < 0)
                return moat_error_input(err, EBADMSG, "the console socket message carried no file descriptor");
        if (!isatty(fd))
                return moat_error_input(err, ENOTTY, "the received console '%s' is not a terminal", name);
        moat_debug("received console master '%s' as fd %d", name, fd);
        *master = TAKE_FD(fd);
        return 0;
}

/* ---- relay ---- */

struct relay {
        int master;
        int master_flags;
        bool master_flags_saved;
        bool raw;
        struct termios saved_tio;
        bool mask_saved;
        sigset_t saved_mask;
};

static void relay_restore(struct relay *r)
{
        if (r->raw)
                tcsetattr(STDIN_FILENO, TCSADRAIN, &r->saved_tio);
        if (r->master_flags_saved)
                fcntl(r->master, F_SETFL, r->master_flags);
        if (r->mask_saved)
                pthread_sigmask(SIG_SETMASK, &r->saved_mask, NULL);
}

static void relay_copy_winsize(int master)
{
        struct winsize ws;
        if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
                ioctl(master, TIOCSWINSZ, &ws);
}

static int relay_loop(struct relay *rl, int sigfd, int pidfd, pid_t child, int *wstatus,
                      struct moat_error **err)
{
        char in[4096], out[8192];
        size_t in_len = 0, in_off = 0;
        bool stdin_done = fcntl(STDIN_FILENO, F_GETFD) < 0, master_done = false, child_done = false;

        while (!child_done || !master_done) {
                struct pollfd p[4];
                int np = 0, i_in = -1, i_m = -1, i_sig = -1, i_pid = -1;
                if (!stdin_done && in_len == 0) {
                        i_in = np;
                        p[np++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
                }
                if (!master_done) {
                        i_m = np;
                        p[np++] = (struct pollfd){ .fd = rl->master, .events = POLLIN | (in_len ? POLLOUT : 0) };
                }
                if (sigfd >= 0) {
                        i_sig = np;
                        p[np++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
                }
                if (!child_done) {
                        i_pid = np;
                        p[np++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
                }
                int r = poll(p, (nfds_t)np, child_done ? 200 : -1);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return moat_error_set(err, errno, "console relay: poll");
                }
                if (r == 0) {
                        moat_debug("console relay: the container exited but the pty stays open; leaving it");
                        break;
                }
                if (i_sig >= 0 && (p[i_sig].revents & POLLIN)) {
                        struct signalfd_siginfo si;
                        while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                                ;
                        relay_copy_winsize(rl->master);
                }
                if (i_in >= 0 && (p[i_in].revents & (POLLIN | POLLHUP | POLLERR))) {
                        ssize_t n = read(STDIN_FILENO, in, sizeof(in));
                        if (n > 0) {
                                in_len = (size_t)n;
                                in_off = 0;
                        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                                stdin_done = true;
                        }
                }
                if (i_m >= 0 && (p[i_m].revents & POLLOUT) && in_len) {
                        ssize_t n = write(rl->master, in + in_off, in_len);
                        if (n > 0) {
                                in_off += (size_t)n;
                                in_len -= (size_t)n;
                        } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
                                in_len = 0;
                                stdin_done = true;
                        }
                }
                if (i_m >= 0 && (p[i_m].revents & (POLLIN | POLLHUP | POLLERR))) {
                        ssize_t n = read(rl->master, out, sizeof(out));
                        if (n > 0) {
                                ssize_t w = write_all(STDOUT_FILENO, out, (size_t)n);
                                if (w < 0)
                                        moat_debug("console relay: cannot write to stdout: %s", strerror((int)-w));
                        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                                /* EIO: every slave fd is closed. */
                                master_done = true;
                                in_len = 0;
                        }
                }
                if (i_pid >= 0 && (p[i_pid].revents & POLLIN)) {
                        child_done = true;
                        if (wstatus) {
                                pid_t w;
                                do
                                        w = waitpid(child, wstatus, 0);
                                while (w < 0 && errno == EINTR);
                                if (w < 0)
                                        return moat_error_set(err, errno, "cannot wait for process %d", (int)child);
                        }
                }
        }
        return 0;
}

int moat_pty_relay(int master, pid_t child, int *wstatus, struct moat_error **err)
{
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
        if (pidfd < 0)
                return moat_error_set(err, errno, "cannot open a pidfd for process %d", (int)child);
        fd_cloexec(pidfd, true);

        struct relay rl = { .master = master };
        rl.master_flags = fcntl(master, F_GETFL);
        if (rl.master_flags < 0)
                return moat_error_set(err, errno, "console relay: bad master fd %d", master);
        if (fcntl(master, F_SETFL, rl.master_flags | O_NONBLOCK) < 0)
                return moat_error_set(err, errno, "console relay: cannot make the master non-blocking");
        rl.master_flags_saved = true;

        sigset_t winch;
        sigemptyset(&winch);
        sigaddset(&winch, SIGWINCH);
        _cleanup_close_ int sigfd = -EBADF;
        if (pthread_sigmask(SIG_BLOCK, &winch, &rl.saved_mask) == 0) {
                rl.mask_saved = true;
                sigfd = signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK);
        }

        if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &rl.saved_tio) == 0) {
                struct termios raw = rl.saved_tio;
                /* As runc: fully raw, output included (the container's pty already did ONLCR). */
                cfmakeraw(&raw);
                if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0)
                        rl.raw = true;
        }
        relay_copy_winsize(master);

        int r = relay_loop(&rl, sigfd, pidfd, child, wstatus, err);
        relay_restore(&rl);
        return r;
}
