/* SPDX-License-Identifier: Apache-2.0 */
#include "runtime/sync.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/util.h"

int moat_sync_pair(int fds[2])
{
        return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0 ? -errno : 0;
}

int moat_sync_send(int sock, uint32_t type, int32_t value, int fd, const char *text)
{
        char buf[sizeof(struct moat_sync_msg) + MOAT_SYNC_TEXT_MAX];
        struct moat_sync_msg m = { .type = type, .value = value };
        size_t len = sizeof(m);
        memcpy(buf, &m, sizeof(m));
        if (text) {
                size_t t = strnlen(text, MOAT_SYNC_TEXT_MAX + 1);
                if (t > MOAT_SYNC_TEXT_MAX)
                        return -EMSGSIZE; /* never a truncated state document */
                memcpy(buf + len, text, t);
                len += t;
        }
        return send_fd(sock, fd, buf, len);
}

int moat_sync_recv(int sock, struct moat_sync_msg *m, int *fd, char **text)
{
        char buf[sizeof(struct moat_sync_msg) + MOAT_SYNC_TEXT_MAX + 1];
        int got = -EBADF;
        int n = recv_fd(sock, &got, buf, sizeof(buf) - 1);
        if (n < 0)
                return n;
        if ((size_t)n < sizeof(*m)) {
                if (got >= 0)
                        close(got);
                return -EPROTO;
        }
        memcpy(m, buf, sizeof(*m));
        if (fd)
                *fd = got;
        else if (got >= 0)
                close(got);
        if (text) {
                *text = NULL;
                size_t tl = (size_t)n - sizeof(*m);
                if (tl > 0) {
                        buf[n] = '\0';
                        *text = strndup(buf + sizeof(*m), tl);
                }
        }
        return 0;
}

int moat_sync_expect(int sock, uint32_t type, struct moat_sync_msg *m, int *fd, struct moat_error **err)
{
        _cleanup_free_ char *text = NULL;
        struct moat_sync_msg local;
        if (!m)
                m = &local;
        int r = moat_sync_recv(sock, m, fd, &text);
        if (r == -ECONNRESET)
                return moat_error_input(err, ECHILD, "container init exited during setup");
        if (r < 0)
                return moat_error_set(err, r, "reading from container init");
        if (m->type == SYNC_ERROR) {
                if (fd && *fd >= 0)
                        closep(fd);
                return moat_error_input(err, m->value ? m->value : EIO, "%s", text ? text : "container init failed");
        }
        if (m->type != type) {
                if (fd && *fd >= 0)
                        closep(fd);
                return moat_error_input(err, EPROTO, "container init sent message %u, expected %u", m->type, type);
        }
        return 0;
}

void moat_sync_send_error(int sock, const struct moat_error *e, int errnum, const char *fallback)
{
        int code = e ? e->code : (errnum < 0 ? -errnum : errnum);
        const char *msg = e && e->msg ? e->msg : fallback;
        if (msg && strlen(msg) > MOAT_SYNC_TEXT_MAX) {
                /* an error message may be cut (a state document may not) */
                char *cut = strndup(msg, MOAT_SYNC_TEXT_MAX);
                (void)moat_sync_send(sock, SYNC_ERROR, code, -1, cut ? cut : fallback);
                free(cut);
                return;
        }
        (void)moat_sync_send(sock, SYNC_ERROR, code, -1, msg);
}
