/* SPDX-License-Identifier: Apache-2.0 */
#include "linux/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"

#define HOOK_TAIL 4096

struct tail {
        char buf[HOOK_TAIL + 1];
        size_t len;
};

static void tail_add(struct tail *t, const char *d, size_t n)
{
        if (n >= HOOK_TAIL) {
                memcpy(t->buf, d + n - HOOK_TAIL, HOOK_TAIL);
                t->len = HOOK_TAIL;
                return;
        }
        if (t->len + n > HOOK_TAIL) {
                size_t drop = t->len + n - HOOK_TAIL;
                memmove(t->buf, t->buf + drop, t->len - drop);
                t->len -= drop;
        }
        memcpy(t->buf + t->len, d, n);
        t->len += n;
}

/* NUL-terminated, trailing whitespace trimmed. */
static const char *tail_str(struct tail *t)
{
        while (t->len > 0 && strchr(" \t\r\n", t->buf[t->len - 1]))
                t->len--;
        t->buf[t->len] = '\0';
        return t->buf;
}

static const char *const hook_kind_names[MOAT_HOOK__COUNT] = {
        [MOAT_HOOK_PRESTART] = "prestart",
        [MOAT_HOOK_CREATE_RUNTIME] = "createRuntime",
        [MOAT_HOOK_CREATE_CONTAINER] = "createContainer",
        [MOAT_HOOK_START_CONTAINER] = "startContainer",
        [MOAT_HOOK_POSTSTART] = "poststart",
        [MOAT_HOOK_POSTSTOP] = "poststop",
};

extern char **environ;

/* In the forked child: async-signal-safe calls only. */
static _Noreturn void hook_child(const char *path, char *const *argv, char *const *envp, int in_r, int out_w,
                                 int err_w, int errpipe_w)
{
        int fds[4] = { in_r, out_w, err_w, errpipe_w };
        int e;
        /* Move everything out of the way first: any of them may be 0..3. */
        for (int i = 0; i < 4; i++) {
                fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
                if (fds[i] < 0)
                        goto fail;
        }
        for (int i = 0; i < 3; i++)
                if (dup2(fds[i], i) < 0)
                        goto fail;
        if (dup3(fds[3], 3, O_CLOEXEC) < 0)
                goto fail;
        errpipe_w = 3;
        if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0) {
                for (int fd = 4; fd < 1024; fd++)
                        close(fd);
        }

        moat_signals_reset();

        execve(path, argv, envp);
fail:
        e = errno;
        if (write(errpipe_w, &e, sizeof(e)) < 0) {
                /* nothing left to report through */
        }
        _exit(127);
}

struct hook_io {
        int in_w, out_r, err_r;
        const char *data;
        size_t len, off;
        struct tail out, err;
};

static void io_read(int *fd, struct tail *t)
{
        char buf[4096];
        for (;;) {
                ssize_t n = read(*fd, buf, sizeof(buf));
                if (n > 0) {
                        tail_add(t, buf, (size_t)n);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n == 0 || errno != EAGAIN)
                        closep(fd);
                return;
        }
}

static void io_write(struct hook_io *io)
{
        while (io->off < io->len) {
                ssize_t n = write(io->in_w, io->data + io->off, io->len - io->off);
                if (n > 0) {
                        io->off += (size_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                break; /* EPIPE: the hook does not read its stdin */
        }
        closep(&io->in_w);
}

/* Waits for the hook, feeding stdin and collecting output.  Returns 1 when
 * it exited (*status set), 0 on timeout (it was killed and reaped). */
static int hook_wait(pid_t pid, int pidfd, int timeout, struct hook_io *io, int *status)
{
        int64_t deadline = timeout > 0 ? now_ns() + (int64_t)timeout * 1000000000LL : INT64_MAX;
        for (;;) {
                pid_t w = waitpid(pid, status, WNOHANG);
                if (w == pid)
                        return 1;
                if (w < 0 && errno != EINTR) {
                        *status = 0;
                        return 1;
                }
                int64_t now = now_ns();
                if (now >= deadline) {
                        if (pidfd >= 0)
                                syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
                        else
                                kill(pid, SIGKILL);
                        while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                                ;
                        return 0;
                }
                int ms = -1;
                if (deadline != INT64_MAX)
                        ms = (int)((deadline - now + 999999) / 1000000);
                if (pidfd < 0 && (ms < 0 || ms > 50))
                        ms = 50;
                struct pollfd p[4];
                int np = 0, i_in = -1, i_out = -1, i_err = -1;
                if (io->in_w >= 0) {
                        i_in = np;
                        p[np++] = (struct pollfd){ .fd = io->in_w, .events = POLLOUT };
                }
                if (io->out_r >= 0) {
                        i_out = np;
                        p[np++] = (struct pollfd){ .fd = io->out_r, .events = POLLIN };
                }
                if (io->err_r >= 0) {
                        i_err = np;
                        p[np++] = (struct pollfd){ .fd = io->err_r, .events = POLLIN };
                }
                if (pidfd >= 0)
                        p[np++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
                if (poll(p, (nfds_t)np, ms) < 0 && errno != EINTR)
                        ms = 0; /* should not happen; fall back to the waitpid check */
                if (i_in >= 0 && p[i_in].revents)
                        io_write(io);
                if (i_out >= 0 && p[i_out].revents)
                        io_read(&io->out_r, &io->out);
                if (i_err >= 0 && p[i_err].revents)
                        io_read(&io->err_r, &io->err);
        }
}

static int pipe_pair(int p[2])
{
        return pipe2(p, O_CLOEXEC) < 0 ? -errno : 0;
}

int moat_hook_run(const struct moat_hook *h, const char *state_json, const char *kind_name,
                  struct moat_error **err)
{
        const char *kind = kind_name ? kind_name : "hook";
        if (!h || !h->path || h->path[0] != '/')
                return moat_error_input(err, EINVAL, "%s hook '%s': the path must be absolute", kind,
                                        h && h->path ? h->path : "");
        char *default_argv[2] = { h->path, NULL };
        char *const *argv = h->args && h->args[0] ? h->args : default_argv;
        /* As runc (Go's exec.Cmd with a nil Env): a hook without "env" inherits ours. */
        char *const *envp = h->env ? h->env : environ;

        _cleanup_close_ int in_r = -EBADF, in_w = -EBADF, out_r = -EBADF, out_w = -EBADF;
        _cleanup_close_ int err_r = -EBADF, err_w = -EBADF, ep_r = -EBADF, ep_w = -EBADF;
        int p[2], r;
        if ((r = pipe_pair(p)) < 0)
                return moat_error_set(err, r, "%s hook '%s': cannot create a pipe", kind, h->path);
        in_r = p[0], in_w = p[1];
        if ((r = pipe_pair(p)) < 0)
                return moat_error_set(err, r, "%s hook '%s': cannot create a pipe", kind, h->path);
        out_r = p[0], out_w = p[1];
        if ((r = pipe_pair(p)) < 0)
                return moat_error_set(err, r, "%s hook '%s': cannot create a pipe", kind, h->path);
        err_r = p[0], err_w = p[1];
        if ((r = pipe_pair(p)) < 0)
                return moat_error_set(err, r, "%s hook '%s': cannot create a pipe", kind, h->path);
        ep_r = p[0], ep_w = p[1];

        /* Writing to a hook that exited or does not read must give EPIPE, not kill us. */
        sigset_t pipe_set, old_mask, pending;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        sigemptyset(&pending);
        pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
        sigpending(&pending);
        bool pipe_was_pending = sigismember(&pending, SIGPIPE);

        moat_debug("running %s hook '%s'", kind, h->path);
        pid_t pid = fork();
        if (pid < 0) {
                r = moat_error_set(err, errno, "%s hook '%s': cannot fork", kind, h->path);
                pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
                return r;
        }
        if (pid == 0)
                hook_child(h->path, argv, envp, in_r, out_w, err_w, ep_w);

        closep(&in_r);
        closep(&out_w);
        closep(&err_w);
        closep(&ep_w);
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd >= 0)
                fd_cloexec(pidfd, true);

        struct hook_io *io = calloc(1, sizeof(*io));
        if (!io) {
                kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
                return moat_error_set(err, ENOMEM, "%s hook '%s'", kind, h->path);
        }
        _cleanup_free_ struct hook_io *io_owner = io;
        io->in_w = TAKE_FD(in_w);
        io->out_r = TAKE_FD(out_r);
        io->err_r = TAKE_FD(err_r);
        io->data = state_json ? state_json : "";
        io->len = strlen(io->data);
        fcntl(io->in_w, F_SETFL, O_NONBLOCK);
        fcntl(io->out_r, F_SETFL, O_NONBLOCK);
        fcntl(io->err_r, F_SETFL, O_NONBLOCK);
        if (io->len == 0)
                closep(&io->in_w);

        int status = 0;
        bool exited = hook_wait(pid, pidfd, h->timeout, io, &status) == 1;
        /* Whatever is already in the pipes; a grandchild holding them open does not make us wait. */
        if (io->out_r >= 0)
                io_read(&io->out_r, &io->out);
        if (io->err_r >= 0)
                io_read(&io->err_r, &io->err);
        closep(&io->in_w);
        closep(&io->out_r);
        closep(&io->err_r);

        if (!pipe_was_pending) {
                struct timespec zero = { 0, 0 };
                while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
                        ;
        }
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);

        int exec_errno = 0;
        if (read(ep_r, &exec_errno, sizeof(exec_errno)) == (ssize_t)sizeof(exec_errno) && exec_errno > 0)
                return moat_error_set(err, exec_errno, "%s hook '%s'", kind, h->path);

        if (!exited)
                return moat_error_input(err, ETIMEDOUT, "%s hook '%s' timed out after %d s", kind, h->path,
                                        h->timeout);
        const char *text = tail_str(&io->err);
        if (!*text)
                text = tail_str(&io->out);
        if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
                return moat_error_input(err, EIO, "%s hook '%s' exited with status %d%s%s", kind, h->path,
                                        WEXITSTATUS(status), *text ? ": " : "", text);
        if (WIFSIGNALED(status))
                return moat_error_input(err, EIO, "%s hook '%s' was killed by signal %d (%s)%s%s", kind,
                                        h->path, WTERMSIG(status), strsignal(WTERMSIG(status)),
                                        *text ? ": " : "", text);
        moat_debug("%s hook '%s' done", kind, h->path);
        return 0;
}

int moat_hooks_run(const struct moat_spec *s, enum moat_hook_kind k, const char *state_json,
                   struct moat_error **err)
{
        if ((unsigned)k >= MOAT_HOOK__COUNT)
                return moat_error_input(err, EINVAL, "unknown hook kind %d", (int)k);
        const char *name = hook_kind_names[k];
        for (size_t i = 0; i < s->n_hooks[k]; i++) {
                if (k == MOAT_HOOK_POSTSTOP) {
                        struct moat_error *e = NULL;
                        if (moat_hook_run(&s->hooks[k][i], state_json, name, &e) < 0)
                                moat_warn("%s", e && e->msg ? e->msg : "poststop hook failed");
                        moat_error_free(e);
                        continue;
                }
                int r = moat_hook_run(&s->hooks[k][i], state_json, name, err);
                if (r < 0)
                        return r;
        }
        return 0;
}
