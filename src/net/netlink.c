/* SPDX-License-Identifier: Apache-2.0 */
#include "net/netlink.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"

struct moat_nl {
        struct mnl_socket *sock;
        unsigned portid;
        unsigned seq;
        char buf[65536]; /* dumps send up to 32 KiB per datagram */
};

/* ---------------------------------------------------------------- netns hop */

struct netns_job {
        int netns_fd;
        int (*fn)(void *);
        void *data;
        int ret;
};

static void *netns_thread(void *p)
{
        struct netns_job *job = p;
        if (setns(job->netns_fd, CLONE_NEWNET) < 0) {
                job->ret = -errno;
                return NULL;
        }
        job->ret = job->fn(job->data);
        return NULL;
}

int moat_netns_run(int netns_fd, int (*fn)(void *data), void *data)
{
        if (netns_fd < 0)
                return fn(data);
        /* The thread dies after fn: its namespace change dies with it. */
        struct netns_job job = { .netns_fd = netns_fd, .fn = fn, .data = data, .ret = -EINVAL };
        pthread_t t;
        int r = pthread_create(&t, NULL, netns_thread, &job);
        if (r != 0)
                return -r;
        pthread_join(t, NULL);
        return job.ret;
}

static int open_route_socket(void *data)
{
        int *fd = data;
        *fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        return *fd < 0 ? -errno : 0;
}

/* ---------------------------------------------------------------- socket */

int moat_nl_open(int netns_fd, struct moat_nl **out, struct moat_error **err)
{
        _cleanup_close_ int fd = -EBADF;
        int r = moat_netns_run(netns_fd, open_route_socket, &fd);
        if (r < 0)
                return moat_error_set(err, r, netns_fd < 0 ? "cannot open a netlink socket"
                                                           : "cannot open a netlink socket in a network namespace");
        struct moat_nl *nl = calloc(1, sizeof(*nl));
        if (!nl)
                return moat_error_set(err, ENOMEM, "cannot open a netlink socket");
        int one = 1;
        /* Extended acks carry the kernel's message; capped acks keep them small.
         * Both are best effort (old kernels): errors then have no message. */
        (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
        (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
        nl->sock = mnl_socket_fdopen(fd);
        if (!nl->sock) {
                r = -errno;
                free(nl);
                return moat_error_set(err, r, "cannot open a netlink socket");
        }
        TAKE_FD(fd); /* owned by nl->sock now */
        if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
                r = -errno;
                moat_nl_free(nl);
                return moat_error_set(err, r, "cannot bind a netlink socket");
        }
        nl->portid = mnl_socket_get_portid(nl->sock);
        nl->seq = (unsigned)time(NULL);
        *out = nl;
        return 0;
}

void moat_nl_free(struct moat_nl *nl)
{
        if (!nl)
                return;
        if (nl->sock)
                mnl_socket_close(nl->sock);
        free(nl);
}

int moat_nl_or_open(struct moat_nl *nl, struct moat_nl **tmp, struct moat_nl **use, struct moat_error **err)
{
        if (nl) {
                *use = nl;
                return 0;
        }
        int r = moat_nl_open(-1, tmp, err);
        if (r < 0)
                return r;
        *use = *tmp;
        return 0;
}

struct nlmsghdr *moat_nl_msg(void *buf, unsigned type, unsigned flags, size_t hdrlen, void **hdr)
{
        memset(buf, 0, MOAT_NL_BUFSZ);
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = NLM_F_REQUEST | flags;
        void *h = mnl_nlmsg_put_extra_header(nlh, hdrlen);
        if (hdr)
                *hdr = h;
        return nlh;
}

/* ---------------------------------------------------------------- acks */

struct extack {
        const char *msg;
};

static int extack_attr(const struct nlattr *a, void *data)
{
        struct extack *e = data;
        if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
                e->msg = mnl_attr_get_str(a);
        return MNL_CB_OK;
}

/* errno of an NLMSG_ERROR (0 = ack) and its extack message (into msgbuf). */
static int parse_error(const struct nlmsghdr *nlh, char *msgbuf, size_t msgsz)
{
        if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct nlmsgerr)))
                return -EBADMSG;
        const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
        if (msgbuf && msgsz)
                msgbuf[0] = '\0';
        if (msgbuf && (nlh->nlmsg_flags & NLM_F_ACK_TLVS)) {
                size_t off = sizeof(*e);
                if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
                        off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
                struct extack x = { 0 };
                if (MNL_ALIGN(off) < mnl_nlmsg_get_payload_len(nlh))
                        (void)mnl_attr_parse(nlh, (unsigned)off, extack_attr, &x);
                if (x.msg)
                        snprintf(msgbuf, msgsz, "%s", x.msg);
        }
        return e->error > 0 ? -e->error : e->error;
}

/* Receives until the answer to seq is complete: an ack/error, or NLMSG_DONE
 * of a dump.  Dump messages go to cb. */
static int nl_recv(struct moat_nl *nl, unsigned seq, mnl_cb_t cb, void *data, char *msgbuf, size_t msgsz)
{
        for (;;) {
                ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof(nl->buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->buf;
                int len = (int)n;
                int cbret = 0;
                for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
                        if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != nl->portid)
                                continue; /* a stale answer */
                        if (nlh->nlmsg_type == NLMSG_ERROR)
                                return cbret < 0 ? cbret : parse_error(nlh, msgbuf, msgsz);
                        if (nlh->nlmsg_type == NLMSG_DONE)
                                return cbret;
                        if (nlh->nlmsg_type == NLMSG_NOOP || nlh->nlmsg_type == NLMSG_OVERRUN)
                                continue;
                        if (cb && cbret == 0) {
                                errno = 0;
                                if (cb(nlh, data) < MNL_CB_OK)
                                        cbret = errno > 0 ? -errno : -EIO;
                        }
                }
                if (!cb)
                        continue; /* acks only: keep reading */
        }
}

static int nl_send(struct moat_nl *nl, struct nlmsghdr *nlh, unsigned *seq)
{
        nlh->nlmsg_seq = *seq = ++nl->seq;
        nlh->nlmsg_pid = 0;
        if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
                return -errno;
        return 0;
}

static int request(struct moat_nl *nl, struct nlmsghdr *nlh, char *msgbuf, size_t msgsz)
{
        unsigned seq;
        nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
        int r = nl_send(nl, nlh, &seq);
        if (r < 0)
                return r;
        return nl_recv(nl, seq, NULL, NULL, msgbuf, msgsz);
}

int moat_nl_request_quiet(struct moat_nl *nl, struct nlmsghdr *nlh)
{
        return request(nl, nlh, NULL, 0);
}

static int fail_with(struct moat_error **err, int r, const char *ext, const char *fmt, va_list ap)
        __attribute__((format(printf, 4, 0)));
static int fail_with(struct moat_error **err, int r, const char *ext, const char *fmt, va_list ap)
{
        _cleanup_free_ char *what = NULL;
        if (vasprintf(&what, fmt, ap) < 0)
                what = NULL;
        if (ext && *ext)
                return moat_error_set(err, r, "%s: %s", what ? what : "netlink request", ext);
        return moat_error_set(err, r, "%s", what ? what : "netlink request");
}

int moat_nl_request(struct moat_nl *nl, struct nlmsghdr *nlh, struct moat_error **err, const char *fmt, ...)
{
        char ext[256];
        int r = request(nl, nlh, ext, sizeof(ext));
        if (r >= 0)
                return 0;
        va_list ap;
        va_start(ap, fmt);
        r = fail_with(err, r, ext, fmt, ap);
        va_end(ap);
        return r;
}

int moat_nl_request_ignore(struct moat_nl *nl, struct nlmsghdr *nlh, int ignore, struct moat_error **err,
                           const char *fmt, ...)
{
        char ext[256];
        int r = request(nl, nlh, ext, sizeof(ext));
        if (r >= 0 || r == -ignore)
                return r < 0 ? r : 0;
        va_list ap;
        va_start(ap, fmt);
        r = fail_with(err, r, ext, fmt, ap);
        va_end(ap);
        return r;
}

int moat_nl_get(struct moat_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
        unsigned seq;
        nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
        int r = nl_send(nl, nlh, &seq);
        if (r < 0)
                return r;
        return nl_recv(nl, seq, cb, data, NULL, 0);
}

int moat_nl_dump(struct moat_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data, struct moat_error **err,
                 const char *what)
{
        unsigned seq;
        char ext[256] = "";
        nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_DUMP;
        int r = nl_send(nl, nlh, &seq);
        if (r >= 0)
                r = nl_recv(nl, seq, cb, data, ext, sizeof(ext));
        if (r < 0) {
                if (*ext)
                        return moat_error_set(err, r, "%s: %s", what, ext);
                return moat_error_set(err, r, "%s", what);
        }
        return 0;
}
