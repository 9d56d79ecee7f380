/* SPDX-License-Identifier: Apache-2.0 */
/* The monitor's side of exec (vm/exec.h): clients on <state>/exec.sock, each one session on
 * the guest's channel.  Clients are root's (SO_PEERCRED); the guest is not trusted: a frame
 * for a session the host did not open, a second EXEC_STARTED, a status over 255 break the
 * protocol.  A client that stops reading for EXEC_SEND_MS is dropped, never the VM.  The
 * client stands for the process (as the monitor for the VM): when it goes, the process is
 * SIGKILLed. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "vm/exec.h"
#include "vm/proto.h"

#define EXEC_SEND_MS 2000

struct hsession {
        bool used;
        uint32_t id;
        int fd;                 /* the client; -1 once it left */
        struct moat_vm_reader rd;
        bool requested;         /* EXEC went to the guest */
        bool started;
        bool stdin_closed;
        bool killed;            /* the client left: SIGKILL went to the process */
};

struct moat_vm_exec_host {
        char *path;
        int lfd;
        uint32_t next_id;
        struct hsession s[MOAT_VM_MAX_EXECS];
};

int moat_vm_exec_host_open(const char *state_dir, struct moat_vm_exec_host **out, struct moat_error **err)
{
        struct moat_vm_exec_host *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        h->lfd = -EBADF;
        h->next_id = 1;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int r;
        if (asprintf(&h->path, "%s/" MOAT_VM_EXEC_SOCK, state_dir) < 0) {
                h->path = NULL;
                r = -ENOMEM;
                goto fail;
        }
        if (strlen(h->path) >= sizeof sa.sun_path) {
                r = moat_error_input(err, -ENAMETOOLONG, "'%s' is too long for a socket path", h->path);
                goto fail;
        }
        strcpy(sa.sun_path, h->path);
        unlink(h->path);
        h->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (h->lfd < 0 || bind(h->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(h->path, 0600) < 0 ||
            listen(h->lfd, 16) < 0) {
                r = moat_error_set(err, errno, "cannot listen on '%s'", h->path);
                goto fail;
        }
        *out = h;
        return 0;
fail:
        moat_vm_exec_host_free(h);
        return r;
}

static void drop_client(struct hsession *s)
{
        closep(&s->fd);
        s->fd = -1;
        moat_vm_reader_free(&s->rd);
}

static void release(struct hsession *s)
{
        drop_client(s);
        *s = (struct hsession){ .fd = -1 };
}

void moat_vm_exec_host_free(struct moat_vm_exec_host *h)
{
        if (!h)
                return;
        for (size_t i = 0; i < MOAT_VM_MAX_EXECS; i++)
                if (h->s[i].used)
                        release(&h->s[i]);
        closep(&h->lfd);
        if (h->path)
                unlink(h->path);
        free(h->path);
        free(h);
}

/* One frame to a client, within EXEC_SEND_MS; a client that does not read is dropped. */
static void client_send(struct hsession *s, uint8_t type, const void *p, size_t len)
{
        if (s->fd < 0)
                return;
        uint8_t hdr[5];
        moat_vm_put_u32(hdr, (uint32_t)(len + 1));
        hdr[4] = type;
        struct iovec iov[2] = { { hdr, sizeof hdr }, { (void *)p, len } };
        size_t left = sizeof hdr + len;
        while (left > 0) {
                struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
                ssize_t n = sendmsg(s->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        struct pollfd pf = { .fd = s->fd, .events = POLLOUT };
                        if (poll(&pf, 1, EXEC_SEND_MS) > 0)
                                continue;
                }
                if (n <= 0) {
                        moat_debug("exec session %u: the client does not read: dropped", s->id);
                        drop_client(s);
                        return;
                }
                left -= (size_t)n;
                for (int i = 0; i < 2 && n > 0; i++) {
                        size_t take = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;
                        iov[i].iov_base = (uint8_t *)iov[i].iov_base + take;
                        iov[i].iov_len -= take;
                        n -= (ssize_t)take;
                }
        }
}

static void client_error(struct hsession *s, const char *msg, uint32_t code)
{
        uint8_t b[4];
        moat_vm_put_u32(b, code);
        client_send(s, MOAT_VM_EXEC_ERROR, msg, strlen(msg));
        client_send(s, MOAT_VM_EXEC_EXIT, b, 4);
}

/* A frame to the guest: u32 id, then data. */
static int guest_send(int chan, uint8_t type, uint32_t id, const uint8_t *p, size_t len)
{
        if (len > MOAT_VM_MAX_FRAME - 1 - 4)
                return -EMSGSIZE;
        _cleanup_free_ uint8_t *b = malloc(4 + len);
        if (!b)
                return -ENOMEM;
        moat_vm_put_u32(b, id);
        if (len)
                memcpy(b + 4, p, len);
        return moat_vm_send(chan, type, b, 4 + len);
}

static bool peer_ok(int fd)
{
        struct ucred uc;
        socklen_t l = sizeof uc;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) < 0)
                return false;
        return uc.uid == 0 || uc.uid == geteuid();
}

static void accept_one(struct moat_vm_exec_host *h)
{
        int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return;
        if (!peer_ok(fd)) {
                close(fd);
                return;
        }
        struct hsession *s = NULL;
        for (size_t i = 0; i < MOAT_VM_MAX_EXECS && !s; i++)
                if (!h->s[i].used)
                        s = &h->s[i];
        if (!s) {
                struct hsession tmp = { .fd = fd };
                client_error(&tmp, "too many exec sessions in this VM (at most 64)", 1);
                closep(&tmp.fd);
                return;
        }
        bool live;
        do { /* an id no live session has (0 is never used) */
                live = false;
                if (++h->next_id == 0)
                        h->next_id = 1;
                for (size_t i = 0; i < MOAT_VM_MAX_EXECS; i++)
                        live |= h->s[i].used && h->s[i].id == h->next_id;
        } while (live);
        *s = (struct hsession){ .used = true, .id = h->next_id, .fd = fd };
        /* the request fits one frame to the guest with the id in front */
        moat_vm_reader_init(&s->rd, MOAT_VM_MAX_FRAME - 4);
}

/* What a client sent: its frames go to the guest with the session id. */
static void client_ready(struct hsession *s, int chan, bool running)
{
        ssize_t n = moat_vm_reader_fill(&s->rd, s->fd);
        if (n == -EAGAIN)
                return;
        if (n <= 0) {   /* the client left: its process goes too (kill_orphans) */
                drop_client(s);
                if (!s->requested)
                        release(s);
                return;
        }
        uint8_t type;
        const uint8_t *p;
        size_t len;
        int k;
        while (s->fd >= 0 && (k = moat_vm_reader_next(&s->rd, &type, &p, &len)) > 0) {
                if (!s->requested) {
                        if (type != MOAT_VM_EXEC) {
                                client_error(s, "the first message must be EXEC", 1);
                                release(s);
                                return;
                        }
                        if (!running || chan < 0) {
                                client_error(s, "the container's process is not running", 1);
                                release(s);
                                return;
                        }
                        if (guest_send(chan, MOAT_VM_EXEC, s->id, p, len) < 0) {
                                client_error(s, "cannot reach the guest", 1);
                                release(s);
                                return;
                        }
                        s->requested = true;
                        continue;
                }
                if (!running || chan < 0)
                        continue;
                switch (type) {
                case MOAT_VM_EXEC_STDIN:
                        if (s->stdin_closed)
                                break;
                        s->stdin_closed = len == 0;
                        (void)guest_send(chan, type, s->id, p, len > MOAT_VM_MAX_DATA ? MOAT_VM_MAX_DATA : len);
                        break;
                case MOAT_VM_EXEC_SIGNAL:
                case MOAT_VM_EXEC_RESIZE:
                        if (len == 4)
                                (void)guest_send(chan, type, s->id, p, len);
                        break;
                default:
                        break;
                }
        }
        if (s->fd >= 0 && k < 0) {
                client_error(s, "a bad frame on the exec socket", 1);
                drop_client(s);
                if (!s->requested)
                        release(s);
        }
}

size_t moat_vm_exec_host_poll_add(struct moat_vm_exec_host *h, struct pollfd *p, size_t max, bool hold)
{
        size_t n = 0;
        if (!h)
                return 0;
        if (n < max)
                p[n++] = (struct pollfd){ .fd = h->lfd, .events = POLLIN };
        for (size_t i = 0; i < MOAT_VM_MAX_EXECS && n < max; i++)
                if (h->s[i].used && h->s[i].fd >= 0 && (h->s[i].requested || !hold))
                        p[n++] = (struct pollfd){ .fd = h->s[i].fd, .events = POLLIN };
        return n;
}

/* The client stood for the process (as the monitor for the VM): a session whose client is gone,
 * however it went (it hung up, it stopped reading, it died while output flowed), has its
 * process SIGKILLed; the session ends with its EXEC_EXIT. */
static void kill_orphans(struct moat_vm_exec_host *h, int chan, bool running)
{
        if (chan < 0 || !running)
                return;
        for (size_t i = 0; i < MOAT_VM_MAX_EXECS; i++) {
                struct hsession *s = &h->s[i];
                if (!s->used || !s->requested || s->fd >= 0 || s->killed)
                        continue;
                uint8_t b[4];
                moat_vm_put_u32(b, SIGKILL);
                (void)guest_send(chan, MOAT_VM_EXEC_SIGNAL, s->id, b, 4);
                s->killed = true;
        }
}

void moat_vm_exec_host_poll_done(struct moat_vm_exec_host *h, const struct pollfd *p, size_t n, int chan,
                                 bool running)
{
        if (!h)
                return;
        for (size_t k = 0; k < n; k++) {
                if (!p[k].revents)
                        continue;
                if (p[k].fd == h->lfd) {
                        accept_one(h);
                        continue;
                }
                for (size_t i = 0; i < MOAT_VM_MAX_EXECS; i++)
                        if (h->s[i].used && h->s[i].fd == p[k].fd) {
                                client_ready(&h->s[i], chan, running);
                                break;
                        }
        }
        kill_orphans(h, chan, running);
}

int moat_vm_exec_host_frame(struct moat_vm_exec_host *h, uint8_t type, const uint8_t *p, size_t len,
                            const char **what)
{
        if (type < MOAT_VM_EXEC_STARTED || type > MOAT_VM_EXEC_ERROR)
                return 1;
        *what = "an exec frame";
        struct hsession *s = NULL;
        if (h && len >= 4)
                for (size_t i = 0; i < MOAT_VM_MAX_EXECS && !s; i++)
                        if (h->s[i].used && h->s[i].requested && h->s[i].id == moat_vm_get_u32(p))
                                s = &h->s[i];
        if (!s) {
                *what = "an exec frame for no session";
                return -EPROTO;
        }
        p += 4;
        len -= 4;
        switch (type) {
        case MOAT_VM_EXEC_STARTED:
                if (len != 4 || s->started) {
                        *what = "EXEC_STARTED";
                        return -EPROTO;
                }
                s->started = true;
                client_send(s, type, p, len);
                return 0;
        case MOAT_VM_EXEC_STDOUT:
        case MOAT_VM_EXEC_STDERR:
        case MOAT_VM_EXEC_ERROR:
                client_send(s, type, p, type == MOAT_VM_EXEC_ERROR && len > 1024 ? 1024 : len);
                return 0;
        case MOAT_VM_EXEC_EXIT:
                if (len != 4 || moat_vm_get_u32(p) > 255) {
                        *what = "EXEC_EXIT";
                        return -EPROTO;
                }
                client_send(s, type, p, len);
                release(s);
                return 0;
        default:
                return -EPROTO;
        }
}
