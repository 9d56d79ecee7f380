/* SPDX-License-Identifier: Apache-2.0 */
/* NFLOG receiver: libmnl + nfnetlink_log (see nflog.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <netinet/ip.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "net/nflog.h"

struct moat_nflog {
        struct mnl_socket *nl;
        uint16_t group;
        uint32_t portid;
        char *buf;
        size_t buf_size;
};

static int send_config(struct moat_nflog *l, uint16_t type, const void *data, size_t len, struct moat_error **err)
{
        char buf[8192];
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        struct nfgenmsg *nfg;
        uint32_t seq = (uint32_t)time(NULL) ^ type;
        int n;

        nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        nlh->nlmsg_seq = seq;
        nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
        nfg->nfgen_family = AF_UNSPEC;
        nfg->version = NFNETLINK_V0;
        nfg->res_id = htons(l->group);
        mnl_attr_put(nlh, type, len, data);

        if (mnl_socket_sendto(l->nl, nlh, nlh->nlmsg_len) < 0)
                return moat_error_set(err, errno, "cannot configure NFLOG group %u", l->group);
        /* the socket is non-blocking: the ack is queued synchronously by the kernel */
        n = (int)mnl_socket_recvfrom(l->nl, buf, sizeof(buf));
        if (n < 0)
                return moat_error_set(err, errno, "cannot configure NFLOG group %u", l->group);
        if (mnl_cb_run(buf, (size_t)n, seq, l->portid, NULL, NULL) < 0)
                return moat_error_set(err, errno, "cannot configure NFLOG group %u", l->group);
        return 0;
}

int moat_nflog_open(uint16_t group, struct moat_nflog **out, struct moat_error **err)
{
        _cleanup_nflog_ struct moat_nflog *l = NULL;
        struct nfulnl_msg_config_cmd cmd = { .command = NFULNL_CFG_CMD_BIND };
        struct nfulnl_msg_config_mode mode = { .copy_range = htonl(128), .copy_mode = NFULNL_COPY_PACKET };
        uint32_t qthresh = htonl(1), timeout = htonl(1);
        int r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return moat_error_set(err, ENOMEM, "NFLOG group %u", group);
        l->group = group;
        l->buf_size = 1 << 16;
        l->buf = malloc(l->buf_size);
        if (!l->buf)
                return moat_error_set(err, ENOMEM, "NFLOG group %u", group);
        l->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (!l->nl)
                return moat_error_set(err, errno, "cannot open a netfilter netlink socket for NFLOG group %u", group);
        if (mnl_socket_bind(l->nl, 0, MNL_SOCKET_AUTOPID) < 0)
                return moat_error_set(err, errno, "cannot bind a netfilter netlink socket");
        l->portid = mnl_socket_get_portid(l->nl);

        r = send_config(l, NFULA_CFG_CMD, &cmd, sizeof(cmd), err);
        if (r < 0)
                return moat_error_prefix(err, r, "binding NFLOG group %u", group);
        r = send_config(l, NFULA_CFG_MODE, &mode, sizeof(mode), err);
        if (r >= 0)
                r = send_config(l, NFULA_CFG_QTHRESH, &qthresh, sizeof(qthresh), err);
        if (r >= 0)
                r = send_config(l, NFULA_CFG_TIMEOUT, &timeout, sizeof(timeout), err);
        if (r < 0)
                return r;
        *out = TAKE_PTR(l);
        return 0;
}

int moat_nflog_fd(const struct moat_nflog *l)
{
        return l ? mnl_socket_get_fd(l->nl) : -EBADF;
}

void moat_nflog_close(struct moat_nflog *l)
{
        if (!l)
                return;
        if (l->nl)
                mnl_socket_close(l->nl); /* the kernel unbinds the group with the socket */
        free(l->buf);
        free(l);
}

void moat_nflog_closep(struct moat_nflog **l)
{
        moat_nflog_close(*l);
        *l = NULL;
}

struct parse_ctx {
        moat_nflog_cb cb;
        void *userdata;
        int n;
};

static int attr_cb(const struct nlattr *a, void *data)
{
        const struct nlattr **tb = data;
        uint16_t type = mnl_attr_get_type(a);

        if (mnl_attr_type_valid(a, NFULA_MAX) < 0)
                return MNL_CB_OK; /* newer attribute: ignore */
        tb[type] = a;
        return MNL_CB_OK;
}

static bool parse_ipv4(const uint8_t *p, size_t len, struct moat_nflog_record *rec)
{
        const struct iphdr *ip = (const struct iphdr *)p;
        size_t ihl;

        if (len < sizeof(struct iphdr) || ip->version != 4)
                return false;
        ihl = (size_t)ip->ihl * 4;
        if (ihl < sizeof(struct iphdr) || ihl > len)
                return false;
        rec->proto = ip->protocol;
        memcpy(&rec->src, &ip->saddr, 4);
        memcpy(&rec->dst, &ip->daddr, 4);
        if ((ntohs(ip->frag_off) & 0x1fff) != 0)
                return true; /* not the first fragment: no ports */
        if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) && len >= ihl + 4) {
                uint16_t sp, dp;
                memcpy(&sp, p + ihl, 2);
                memcpy(&dp, p + ihl + 2, 2);
                rec->sport = ntohs(sp);
                rec->dport = ntohs(dp);
        }
        return true;
}

static int msg_cb(const struct nlmsghdr *nlh, void *data)
{
        struct parse_ctx *ctx = data;
        const struct nlattr *tb[NFULA_MAX + 1] = {};
        struct moat_nflog_record rec = {};
        const struct nfgenmsg *nfg;

        if (nlh->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET))
                return MNL_CB_OK;
        if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(*nfg)))
                return MNL_CB_OK;
        nfg = mnl_nlmsg_get_payload(nlh);
        if (mnl_attr_parse(nlh, sizeof(*nfg), attr_cb, tb) < 0)
                return MNL_CB_OK; /* a malformed record: skip it, not the rest */
        rec.group = ntohs(nfg->res_id);
        rec.family = nfg->nfgen_family;
        if (tb[NFULA_PREFIX]) {
                const char *s = mnl_attr_get_payload(tb[NFULA_PREFIX]);
                size_t n = mnl_attr_get_payload_len(tb[NFULA_PREFIX]);
                n = strnlen(s, n);
                if (n >= sizeof(rec.prefix))
                        n = sizeof(rec.prefix) - 1;
                memcpy(rec.prefix, s, n);
        }
        if (!tb[NFULA_PAYLOAD])
                return MNL_CB_OK;
        if (!parse_ipv4(mnl_attr_get_payload(tb[NFULA_PAYLOAD]), mnl_attr_get_payload_len(tb[NFULA_PAYLOAD]), &rec))
                return MNL_CB_OK; /* not IPv4 */
        ctx->n++;
        if (ctx->cb)
                ctx->cb(&rec, ctx->userdata);
        return MNL_CB_OK;
}

int moat_nflog_parse(const void *buf, size_t len, moat_nflog_cb cb, void *userdata)
{
        struct parse_ctx ctx = { .cb = cb, .userdata = userdata };
        const struct nlmsghdr *nlh = buf;
        size_t left = len;

        /* walk by hand rather than mnl_cb_run: an NLMSG_ERROR/DONE in a log batch must not stop us */
        while (mnl_nlmsg_ok(nlh, (int)left)) {
                msg_cb(nlh, &ctx);
                int l = (int)left;
                nlh = mnl_nlmsg_next(nlh, &l);
                left = (size_t)l;
        }
        if (left != 0 && ctx.n == 0 && len != 0)
                return -EINVAL;
        return ctx.n;
}

int moat_nflog_receive(struct moat_nflog *l, moat_nflog_cb cb, void *userdata, struct moat_error **err)
{
        int total = 0;

        for (;;) {
                ssize_t n = mnl_socket_recvfrom(l->nl, l->buf, l->buf_size);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return total;
                        if (errno == EINTR)
                                continue;
                        if (errno == ENOBUFS) {
                                moat_debug("NFLOG group %u: receive buffer overrun, records lost", l->group);
                                continue;
                        }
                        return moat_error_set(err, errno, "reading NFLOG group %u", l->group);
                }
                int r = moat_nflog_parse(l->buf, (size_t)n, cb, userdata);
                if (r > 0)
                        total += r;
        }
}
