/* SPDX-License-Identifier: Apache-2.0 */
/* rtnetlink over libmnl: one socket per network namespace, requests that
 * always ask for an ack (NLM_F_ACK) and turn the kernel's extended ack
 * message ("Unknown device type", "Invalid prefix length") into the error. */
#pragma once

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

struct moat_nl;

/* Opens a NETLINK_ROUTE socket in the caller's netns (netns_fd < 0) or in the
 * netns of netns_fd (the socket is opened in a helper thread after setns, so
 * the calling thread never changes namespace; the socket stays in that netns). */
int moat_nl_open(int netns_fd, struct moat_nl **out, struct moat_error **err);
void moat_nl_free(struct moat_nl *nl);
static inline void moat_nl_freep(struct moat_nl **nl) { moat_nl_free(*nl); }
#define _cleanup_nl_ __attribute__((cleanup(moat_nl_freep)))

/* Size of a request buffer (MNL_SOCKET_BUFFER_SIZE is 8 KiB, plenty for rtnetlink). */
#define MOAT_NL_BUFSZ 8192

/* Starts a message in buf (MOAT_NL_BUFSZ bytes, zeroed header): type, flags
 * (NLM_F_REQUEST is always added), and a zeroed family header of hdrlen bytes
 * which is returned in *hdr. */
struct nlmsghdr *moat_nl_msg(void *buf, unsigned type, unsigned flags, size_t hdrlen, void **hdr);

/* Sends nlh with NLM_F_ACK and waits for the ack.  On failure *err reads
 * "<what>: <kernel's extack message>: <strerror>" (what formatted from fmt). */
int moat_nl_request(struct moat_nl *nl, struct nlmsghdr *nlh, struct moat_error **err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Same, but the error `ignore` (positive errno) is returned as -ignore without a message. */
int moat_nl_request_ignore(struct moat_nl *nl, struct nlmsghdr *nlh, int ignore, struct moat_error **err,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Sends a GET (not a dump) with NLM_F_ACK: cb sees the answer; returns 0 or -errno, no message. */
int moat_nl_get(struct moat_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data);
/* Same without a message: returns 0 or -errno. */
int moat_nl_request_quiet(struct moat_nl *nl, struct nlmsghdr *nlh);

/* Sends a dump request (NLM_F_DUMP is added) and calls cb for every answer
 * (cb returns MNL_CB_OK to go on, MNL_CB_ERROR to stop with an error). */
int moat_nl_dump(struct moat_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data, struct moat_error **err,
                 const char *what);

/* Runs fn(data) in a helper thread that has joined the netns of netns_fd
 * (netns_fd < 0: directly in the calling thread).  Returns fn's result, or
 * -errno if the thread could not join the netns. */
int moat_netns_run(int netns_fd, int (*fn)(void *data), void *data);

/* The request helpers need a socket; functions taking `struct moat_nl *nl`
 * accept NULL and then open one in the caller's netns for that call.  This is
 * the helper they use: *tmp is set (and must be freed) when nl is NULL. */
int moat_nl_or_open(struct moat_nl *nl, struct moat_nl **tmp, struct moat_nl **use, struct moat_error **err);
