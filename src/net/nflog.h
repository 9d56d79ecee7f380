/* SPDX-License-Identifier: Apache-2.0 */
/* Denied-packet records from an NFLOG group (nfnetlink_log over libmnl).  The policy logs every
 * dropped packet to its environment's group with prefix "moat-deny"; this hands each record to a
 * callback as addresses and ports.  Mapping addresses to service names is the caller's. */
#pragma once

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct moat_nflog_record {
        uint16_t group;
        uint8_t family;  /* nfgen family of the hook: NFPROTO_INET/IPV4 (2) or NFPROTO_BRIDGE (7) */
        uint8_t proto;   /* IPPROTO_*; 0 when the payload was not IPv4 */
        struct in_addr src, dst;
        uint16_t sport, dport; /* host order; 0 unless tcp/udp (first fragment) */
        char prefix[64];       /* "moat-deny" */
};

typedef void (*moat_nflog_cb)(const struct moat_nflog_record *rec, void *userdata);

struct moat_nflog;

/* Binds NFLOG group `group` (copying the first 128 bytes of each packet, delivered at once)
 * on a non-blocking, close-on-exec netlink socket.  -EBUSY: another listener has the group. */
int moat_nflog_open(uint16_t group, struct moat_nflog **out, struct moat_error **err);
/* For poll(): readable when records are pending. */
int moat_nflog_fd(const struct moat_nflog *l);
/* Reads everything pending and calls cb for each IPv4 record.  Returns the number of records
 * (0: nothing pending), or -errno.  A socket overrun (records lost) is logged at debug and
 * not an error. */
int moat_nflog_receive(struct moat_nflog *l, moat_nflog_cb cb, void *userdata, struct moat_error **err);
void moat_nflog_close(struct moat_nflog *l);
void moat_nflog_closep(struct moat_nflog **l);
#define _cleanup_nflog_ __attribute__((cleanup(moat_nflog_closep)))

/* Parses a buffer of netlink messages as received from the socket (also used by the tests and
 * the fuzz target).  Returns the number of records handed to cb, or -EINVAL if the buffer is
 * not well-formed netlink. */
int moat_nflog_parse(const void *buf, size_t len, moat_nflog_cb cb, void *userdata);
