/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "linux/terminal.h"
#include "tap.h"

/* Reads from fd until `want` shows up, EOF, or ~5 s pass. */
static size_t read_until(int fd, char *buf, size_t cap, const char *want)
{
        size_t n = 0;
        buf[0] = '\0';
        int64_t end = now_ns() + 5000000000LL;
        while (n + 1 < cap && now_ns() < end) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 200) <= 0)
                        continue;
                ssize_t r = read(fd, buf + n, cap - 1 - n);
                if (r <= 0)
                        break;
                n += (size_t)r;
                buf[n] = '\0';
                if (want && strstr(buf, want))
                        break;
        }
        return n;
}

static void test_open_and_size(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int m = -EBADF, s = -EBADF;
        _cleanup_free_ char *name = NULL;
        int r = moat_pty_open(&m, &s, &name, &err);
        if (!is_int(r, 0, "moat_pty_open: %s", err ? err->msg : "ok"))
                return;
        ok(isatty(m) && isatty(s), "master and slave are ttys");
        ok(name && strncmp(name, "/dev/pts/", 9) == 0, "slave name '%s'", name ? name : "");
        struct stat a, b;
        ok(stat(name, &a) == 0 && fstat(s, &b) == 0 && a.st_rdev == b.st_rdev, "slave fd is %s", name);
        ok((fcntl(m, F_GETFD) & FD_CLOEXEC) && (fcntl(s, F_GETFD) & FD_CLOEXEC), "both O_CLOEXEC");

        is_int(moat_pty_set_size(m, 33, 101, &err), 0, "set size 33x101");
        struct winsize ws = { 0 };
        ok(ioctl(s, TIOCGWINSZ, &ws) == 0, "TIOCGWINSZ");
        is_int(ws.ws_row, 33, "rows read back");
        is_int(ws.ws_col, 101, "cols read back");

        const char msg[] = "hello pty\n";
        ok(write(s, msg, sizeof(msg) - 1) == (ssize_t)sizeof(msg) - 1, "write to slave");
        char buf[256];
        read_until(m, buf, sizeof(buf), "hello pty");
        contains(buf, "hello pty", "master reads what the slave wrote");
}

static void test_controlling(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int m = -EBADF, s = -EBADF;
        _cleanup_free_ char *name = NULL;
        if (moat_pty_open(&m, &s, &name, &err) < 0) {
                ok(0, "pty open: %s", err->msg);
                return;
        }
        pid_t pid = fork();
        if (pid == 0) {
                struct moat_error *e = NULL;
                if (moat_pty_make_controlling(s, &e) < 0)
                        _exit(10);
                int bad = 0;
                for (int i = 0; i <= 2; i++)
                        if (!isatty(i))
                                bad |= 1 << i;
                char *tn = ttyname(0);
                if (!tn || strcmp(tn, name) != 0)
                        bad |= 8;
                int tty = open("/dev/tty", O_RDWR | O_NOCTTY); /* works only with a controlling tty */
                if (tty < 0)
                        bad |= 16;
                if (tcgetpgrp(0) != getpgrp())
                        bad |= 32;
                if (getsid(0) != getpid())
                        bad |= 64;
                _exit(bad);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        ok(WIFEXITED(st), "child exited normally");
        is_int(WEXITSTATUS(st), 0, "child: setsid, controlling tty %s on 0,1,2, /dev/tty opens (bits of failures)",
               name);
}

static void test_console_socket(void)
{
        char dir[] = "/tmp/moat-test-term-XXXXXX";
        if (!mkdtemp(dir)) {
                ok(0, "mkdtemp");
                return;
        }
        char path[108];
        snprintf(path, sizeof(path), "%s/console.sock", dir);
        _cleanup_close_ int lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, path);
        ok(lsock >= 0 && bind(lsock, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lsock, 1) == 0,
           "listening on %s", path);

        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int m = -EBADF, s = -EBADF;
        if (moat_pty_open(&m, &s, NULL, &err) < 0) {
                ok(0, "pty open: %s", err->msg);
                goto out;
        }
        /* The send side runs in a child, as the container init would. */
        pid_t pid = fork();
        if (pid == 0) {
                struct moat_error *e = NULL;
                _exit(moat_console_socket_send(path, m, &e) < 0 ? 1 : 0);
        }
        closep(&m);
        _cleanup_close_ int got = -EBADF;
        int r = moat_console_socket_recv(lsock, &got, &err);
        is_int(r, 0, "console_socket_recv: %s", err ? err->msg : "ok");
        int st = 0;
        waitpid(pid, &st, 0);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "console_socket_send succeeded in the child");
        ok(got >= 0 && isatty(got), "received fd is a tty");
        if (got >= 0) {
                ok(write(s, "ping\n", 5) == 5, "write to slave");
                char buf[128];
                read_until(got, buf, sizeof(buf), "ping");
                contains(buf, "ping", "received master reads what the slave wrote");
                ok(write(got, "pong\n", 5) == 5, "write to received master");
                read_until(s, buf, sizeof(buf), "pong");
                contains(buf, "pong", "slave reads what the received master wrote");
        }

        /* The payload runc sends: the file name. */
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0) {
                is_int(moat_console_fd_send(sp[0], s, &err), 0, "console_fd_send over a socketpair");
                int fd = -EBADF;
                char name[64] = { 0 };
                int n = recv_fd(sp[1], &fd, name, sizeof(name) - 1);
                is_str(n > 0 ? name : NULL, "/dev/ptmx", "payload is the file name, as runc's SendFile");
                if (fd >= 0)
                        close(fd);
                /* recv on a connected (non-listening) socket */
                moat_console_fd_send(sp[0], s, NULL);
                _cleanup_close_ int fd2 = -EBADF;
                is_int(moat_console_socket_recv(sp[1], &fd2, NULL), 0, "recv on a connected socket");
                /* a non-tty is refused */
                _cleanup_close_ int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
                moat_console_fd_send(sp[0], devnull, NULL);
                struct moat_error *e2 = NULL;
                _cleanup_close_ int fd3 = -EBADF;
                is_int(moat_console_socket_recv(sp[1], &fd3, &e2), -ENOTTY, "a non-tty fd is refused");
                moat_error_free(e2);
                close(sp[0]);
                close(sp[1]);
        }

        char missing[160];
        snprintf(missing, sizeof(missing), "%s/nope.sock", dir);
        struct moat_error *e3 = NULL;
        is_int(moat_console_socket_send(missing, s, &e3), -ENOENT, "send to a missing socket fails");
        contains(e3 ? e3->msg : NULL, "nope.sock", "the error names the socket path");
        moat_error_free(e3);
out:
        unlink(path);
        rmdir(dir);
}

/* run --tty in the foreground: our stdin/stdout are pipes here. */
static void test_relay(void)
{
        int in[2], out[2];
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
                ok(0, "pipes");
                return;
        }
        pid_t runner = fork();
        if (runner == 0) {
                dup2(in[0], 0);
                dup2(out[1], 1);
                struct moat_error *e = NULL;
                int m = -EBADF, s = -EBADF;
                if (moat_pty_open(&m, &s, NULL, &e) < 0)
                        _exit(100);
                pid_t c = fork();
                if (c == 0) {
                        if (moat_pty_make_controlling(s, &e) < 0)
                                _exit(101);
                        execl("/bin/sh", "sh", "-c", "read x; echo \"got:$x\"; exit 7", (char *)NULL);
                        _exit(102);
                }
                close(s);
                int ws = 0;
                if (moat_pty_relay(m, c, &ws, &e) < 0)
                        _exit(103);
                _exit(WIFEXITED(ws) ? WEXITSTATUS(ws) : 104);
        }
        close(in[0]);
        close(out[1]);
        ok(write(in[1], "hello\n", 6) == 6, "feed the relay's stdin");
        close(in[1]);
        char buf[1024];
        read_until(out[0], buf, sizeof(buf), NULL);
        close(out[0]);
        int st = 0;
        waitpid(runner, &st, 0);
        contains(buf, "got:hello", "the shell behind the pty read our stdin and its output reached our stdout");
        ok(WIFEXITED(st), "relay runner exited");
        is_int(WEXITSTATUS(st), 7, "relay returned the child's exit status 7");
}

/* Our side is a terminal: its size reaches the container's pty, also after a
 * SIGWINCH, and its mode is restored when the relay returns. */
static void test_relay_winch(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int om = -EBADF, os = -EBADF;
        if (moat_pty_open(&om, &os, NULL, &err) < 0) {
                ok(0, "outer pty: %s", err->msg);
                return;
        }
        moat_pty_set_size(om, 24, 80, NULL);
        pid_t runner = fork();
        if (runner == 0) {
                struct moat_error *e = NULL;
                close(om);
                if (moat_pty_make_controlling(os, &e) < 0)
                        _exit(100);
                struct termios before;
                tcgetattr(0, &before);
                int m = -EBADF, s = -EBADF;
                if (moat_pty_open(&m, &s, NULL, &e) < 0)
                        _exit(101);
                pid_t c = fork();
                if (c == 0) {
                        close(m);
                        if (moat_pty_make_controlling(s, &e) < 0)
                                _exit(102);
                        execl("/bin/sh", "sh", "-c", "echo first=$(stty size); sleep 1; echo second=$(stty size)",
                              (char *)NULL);
                        _exit(103);
                }
                close(s);
                int ws = 0;
                if (moat_pty_relay(m, c, &ws, &e) < 0)
                        _exit(104);
                struct termios after;
                tcgetattr(0, &after);
                bool restored = after.c_lflag == before.c_lflag && after.c_iflag == before.c_iflag;
                dprintf(1, "%s\n", restored ? "mode-restored" : "mode-NOT-restored");
                _exit(0);
        }
        closep(&os);
        char buf[2048];
        read_until(om, buf, sizeof(buf), "first=");
        usleep(300 * 1000);
        moat_pty_set_size(om, 40, 120, NULL); /* SIGWINCH to the runner */
        size_t n = strlen(buf);
        read_until(om, buf + n, sizeof(buf) - n, "mode-");
        n = strlen(buf);
        read_until(om, buf + n, sizeof(buf) - n, "restored");
        int st = 0;
        waitpid(runner, &st, 0);
        contains(buf, "first=24 80", "the container pty starts with our terminal's size");
        contains(buf, "second=40 120", "a SIGWINCH brings the new size to the container pty");
        contains(buf, "mode-restored", "our terminal's mode is restored after the relay");
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "runner exited 0 (status %d)", st);
}

/* As in a container: a new devpts instance at /dev/pts, /dev/ptmx bound to pts/ptmx,
 * in a new mount namespace.  The pty must come from that instance. */
static void test_new_devpts(void)
{
        pid_t pid = fork();
        if (pid == 0) {
                if (unshare(CLONE_NEWNS) < 0)
                        _exit(77);
                if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                        _exit(77);
                if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                          "newinstance,ptmxmode=0666,mode=0620") < 0)
                        _exit(77);
                if (mount("/dev/pts/ptmx", "/dev/ptmx", NULL, MS_BIND, NULL) < 0)
                        _exit(77);
                struct moat_error *e = NULL;
                int m = -EBADF, s = -EBADF;
                char *name = NULL;
                if (moat_pty_open(&m, &s, &name, &e) < 0)
                        _exit(1);
                struct stat pts, sl;
                if (stat("/dev/pts", &pts) < 0 || fstat(s, &sl) < 0)
                        _exit(2);
                if (major(sl.st_rdev) != 136 || sl.st_dev != pts.st_dev)
                        _exit(3); /* the slave inode lives in the new devpts */
                if (strcmp(name, "/dev/pts/0") != 0)
                        _exit(4); /* a fresh instance starts at 0 */
                _exit(0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
                skip("cannot mount a new devpts instance here");
                return;
        }
        is_int(WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st), 0,
               "pty from a new devpts instance in a new mount namespace (0 = ok)");
}

int main(void)
{
        if (access("/dev/ptmx", R_OK | W_OK) < 0)
                return skip_all("no usable /dev/ptmx");
        test_open_and_size();
        test_controlling();
        test_console_socket();
        test_relay();
        test_relay_winch();
        test_new_devpts();
        return done_testing();
}
