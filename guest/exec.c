/* SPDX-License-Identifier: Apache-2.0 */
/* Exec sessions (src/vm/proto.h): more processes in the running guest, each started like the
 * main one (vm_child_exec: user, groups, caps, no_new_privs, seccomp, cwd, env) in the
 * container's root (the init already switched to it), stdio relayed as EXEC_* frames tagged
 * with the host's session id.  At most MOAT_VM_MAX_EXECS at once; every field is checked
 * (vm_config_parse).  Hooks from run.c's loop: vm_exec_frame, vm_exec_poll_add,
 * vm_exec_poll_done, vm_exec_reaped, vm_exec_end. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "vminit.h"

#define SESSION_BACKLOG (4u << 20)      /* unwritten stdin of a session: past it, the channel waits */

struct session {
        bool used;
        uint32_t id;
        pid_t pid;              /* > 0 once started */
        struct vm_stdin in;     /* with a pty: the master */
        int out, err;           /* -1 when closed; with a pty out = master, err = -1 */
        int master;
        int status;             /* -1 while running */
};

static struct session sessions[MOAT_VM_MAX_EXECS];
static int chan_fd = -1;
static bool test_mode_;

void vm_exec_init(int chan, bool test_mode)
{
        chan_fd = chan;
        test_mode_ = test_mode;
}

/* One frame: u32 id, then data. */
static int send_id(uint8_t type, uint32_t id, const void *data, size_t len)
{
        uint8_t small[4 + 256];
        if (len <= 256) {
                moat_vm_put_u32(small, id);
                if (len)
                        memcpy(small + 4, data, len);
                return moat_vm_send(chan_fd, type, small, 4 + len);
        }
        uint8_t *b = malloc(4 + len);
        if (!b)
                return -ENOMEM;
        moat_vm_put_u32(b, id);
        memcpy(b + 4, data, len);
        int r = moat_vm_send(chan_fd, type, b, 4 + len);
        free(b);
        return r;
}

static int send_u32(uint8_t type, uint32_t id, uint32_t v)
{
        uint8_t b[4];
        moat_vm_put_u32(b, v);
        return send_id(type, id, b, 4);
}

static struct session *find(uint32_t id)
{
        for (size_t i = 0; i < MOAT_VM_MAX_EXECS; i++)
                if (sessions[i].used && sessions[i].id == id)
                        return &sessions[i];
        return NULL;
}

static void release(struct session *s)
{
        vm_stdin_free(&s->in);
        if (s->out != s->master)
                vm_close_fd(&s->out);
        vm_close_fd(&s->err);
        vm_close_fd(&s->master);
        memset(s, 0, sizeof *s);
        s->in.fd = s->out = s->err = s->master = -1;
}

/* The session is over once its process is reaped and its output is drained. */
static int maybe_done(struct session *s)
{
        if (s->status < 0 || s->out >= 0 || s->err >= 0)
                return 0;
        int r = send_u32(MOAT_VM_EXEC_EXIT, s->id, (uint32_t)s->status);
        release(s);
        return r < 0 ? -1 : 0;
}

static int refuse(uint32_t id, int code, const char *msg)
{
        if (send_id(MOAT_VM_EXEC_ERROR, id, msg, strlen(msg)) < 0 || send_u32(MOAT_VM_EXEC_EXIT, id, (uint32_t)code) < 0)
                return -1;
        return 0;
}

static int start(uint32_t id, const uint8_t *p, size_t len)
{
        if (find(id)) { /* a host bug: an answer would look like the live session's */
                vm_log("exec: session id %u is in use: the request is ignored", id);
                return 0;
        }
        struct session *s = NULL;
        for (size_t i = 0; i < MOAT_VM_MAX_EXECS && !s; i++)
                if (!sessions[i].used)
                        s = &sessions[i];
        if (!s)
                return refuse(id, 1, "exec: too many exec sessions in this VM (at most 64)");
        struct vm_config c;
        const char *why = NULL;
        if (vm_config_parse(&c, p, len, &why) < 0) {
                char m[160];
                snprintf(m, sizeof m, "exec: a bad process from the host (%s)", why ? why : "out of memory");
                return refuse(id, 1, m);
        }
        struct vm_proc pr;
        char reason[1100];
        int code = vm_spawn(&c, test_mode_, &pr, reason, sizeof reason);
        vm_config_free(&c);
        if (code > 0)
                return refuse(id, code, reason);
        *s = (struct session){ .used = true, .id = id, .pid = pr.pid, .status = -1, .master = pr.master,
                               .in = { .fd = pr.in, .pty = pr.master >= 0 }, .out = pr.out, .err = pr.err };
        return send_u32(MOAT_VM_EXEC_STARTED, id, (uint32_t)pr.pid) < 0 ? -1 : 0;
}

int vm_exec_frame(uint8_t type, const uint8_t *p, size_t len)
{
        if (type != MOAT_VM_EXEC && type != MOAT_VM_EXEC_STDIN && type != MOAT_VM_EXEC_SIGNAL &&
            type != MOAT_VM_EXEC_RESIZE)
                return 1;
        if (len < 4)
                return 0;       /* malformed: ignored, as unknown frames are */
        uint32_t id = moat_vm_get_u32(p);
        p += 4;
        len -= 4;
        if (type == MOAT_VM_EXEC)
                return start(id, p, len);
        struct session *s = find(id);
        if (!s)
                return 0;       /* a session that just ended */
        switch (type) {
        case MOAT_VM_EXEC_STDIN:
                return vm_stdin_push(&s->in, p, len);
        case MOAT_VM_EXEC_SIGNAL:
                if (len == 4) {
                        uint32_t sig = moat_vm_get_u32(p);
                        if (sig >= 1 && sig < (uint32_t)NSIG && s->status < 0)
                                (void)kill(s->pid, (int)sig);
                }
                return 0;
        case MOAT_VM_EXEC_RESIZE:
                if (len == 4 && s->master >= 0) {
                        struct winsize ws = { .ws_row = moat_vm_get_u16(p), .ws_col = moat_vm_get_u16(p + 2) };
                        (void)ioctl(s->master, TIOCSWINSZ, &ws);
                }
                return 0;
        }
        return 0;
}

bool vm_exec_stdin_full(void)
{
        for (size_t i = 0; i < MOAT_VM_MAX_EXECS; i++)
                if (sessions[i].used && vm_stdin_pending(&sessions[i].in) >= SESSION_BACKLOG)
                        return true;
        return false;
}

size_t vm_exec_poll_add(struct pollfd *p, size_t max)
{
        size_t n = 0;
        for (size_t i = 0; i < MOAT_VM_MAX_EXECS; i++) {
                struct session *s = &sessions[i];
                if (!s->used)
                        continue;
                if (s->out >= 0 && n < max)
                        p[n++] = (struct pollfd){ .fd = s->out, .events = POLLIN };
                if (s->err >= 0 && n < max)
                        p[n++] = (struct pollfd){ .fd = s->err, .events = POLLIN };
                if (s->in.fd >= 0 && vm_stdin_pending(&s->in) && n < max)
                        p[n++] = (struct pollfd){ .fd = s->in.fd, .events = POLLOUT };
        }
        return n;
}

/* What one output fd has: 0 go on, -1 the channel broke. */
static int pump_out(struct session *s, int *fd, uint8_t type)
{
        static uint8_t buf[4 + MOAT_VM_MAX_DATA];
        for (;;) {
                ssize_t n = read(*fd, buf + 4, MOAT_VM_MAX_DATA);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n <= 0) {
                        if (*fd == s->master) {
                                vm_stdin_close(&s->in);
                        } else {
                                close(*fd);
                        }
                        *fd = -1;
                        return maybe_done(s);
                }
                moat_vm_put_u32(buf, s->id);
                if (moat_vm_send(chan_fd, type, buf, 4 + (size_t)n) < 0)
                        return -1;
                if ((size_t)n < MOAT_VM_MAX_DATA)
                        return 0;
        }
}

int vm_exec_poll_done(const struct pollfd *p, size_t n)
{
        for (size_t k = 0; k < n; k++) {
                if (!p[k].revents)
                        continue;
                for (size_t i = 0; i < MOAT_VM_MAX_EXECS; i++) {
                        struct session *s = &sessions[i];
                        if (!s->used)
                                continue;
                        int r = 0;
                        if (p[k].fd == s->out && (p[k].events & POLLIN))
                                r = pump_out(s, &s->out, MOAT_VM_EXEC_STDOUT);
                        else if (p[k].fd == s->err && (p[k].events & POLLIN))
                                r = pump_out(s, &s->err, MOAT_VM_EXEC_STDERR);
                        else if (p[k].fd == s->in.fd && (p[k].events & POLLOUT))
                                vm_stdin_pump(&s->in);
                        else
                                continue;
                        if (r < 0)
                                return -1;
                        break;
                }
        }
        return 0;
}

int vm_exec_reaped(pid_t pid, int st)
{
        for (size_t i = 0; i < MOAT_VM_MAX_EXECS; i++) {
                struct session *s = &sessions[i];
                if (s->used && s->pid == pid && s->status < 0 && (WIFEXITED(st) || WIFSIGNALED(st))) {
                        s->status = vm_status_code(st);
                        (void)kill(-pid, SIGKILL);      /* what is left of its session */
                        vm_stdin_close(&s->in);
                        /* output a background child still holds open is not waited for */
                        int r = 0;
                        if (s->out >= 0)
                                r = pump_out(s, &s->out, MOAT_VM_EXEC_STDOUT);
                        if (r >= 0 && s->used && s->err >= 0)
                                r = pump_out(s, &s->err, MOAT_VM_EXEC_STDERR);
                        if (r >= 0 && s->used) {
                                if (s->master >= 0 && s->out == s->master)
                                        s->out = -1;
                                vm_close_fd(&s->out);
                                vm_close_fd(&s->err);
                                r = maybe_done(s);
                        }
                        return r;
                }
        }
        return 0;
}

void vm_exec_end(bool send)
{
        for (size_t i = 0; i < MOAT_VM_MAX_EXECS; i++) {
                struct session *s = &sessions[i];
                if (!s->used)
                        continue;
                int st = 0;
                if (s->status < 0) {
                        (void)kill(-s->pid, SIGKILL);
                        (void)kill(s->pid, SIGKILL);
                        while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
                                ;
                        s->status = vm_status_code(st);
                }
                if (send)
                        (void)send_u32(MOAT_VM_EXEC_EXIT, s->id, (uint32_t)s->status);
                release(s);
        }
}
