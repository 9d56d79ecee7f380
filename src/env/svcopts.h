/* SPDX-License-Identifier: Apache-2.0 */
/* Service options applied to a service's config.json or policy by `moat up`:
 * cap_add / cap_drop, and x-moat egress host names resolved to addresses. */
#pragma once

#include <jansson.h>

#include "core/error.h"
#include "env/envfile.h"

/* Applies cap_add / cap_drop of s to an OCI process object (its "capabilities"):
 * bounding, effective and permitted each start from what is there and become, as
 * Docker's TweakCapabilities:
 *   - "ALL" in cap_add: every capability libcap and the kernel know, minus cap_drop;
 *   - else "ALL" in cap_drop: exactly cap_add;
 *   - else: what is there minus cap_drop, plus cap_add (a capability in both is kept).
 * inheritable and ambient, when present, are only ever narrowed: they keep what they
 * had that is still in the new bounding set (nothing is added to them: a cap_add does
 * not make file capabilities inheritable, as Docker since 20.10.14).
 * Names are taken with or without "CAP_", in any case; an unknown one is an input
 * error naming the service and the capability.  The lists come out in capability
 * number order.  Neither cap_add nor cap_drop: process is left as it is. */
int moat_env_caps_apply(const struct moat_env_service *s, json_t *process, struct moat_error **err);

/* Whether host is a valid host name: RFC 1123 labels (1-63 of [A-Za-z0-9-], not
 * starting or ending with '-'), at most 253 characters (one trailing '.' allowed),
 * the last label not all digits (so an address never passes as a name). */
bool moat_env_hostname_ok(const char *host);

/* Resolves an egress entry that is a host name (x->is_cidr false) into IPv4 addresses
 * "A.B.C.D/32" (*out: malloc'ed NULL-terminated vector, sorted, unique) with
 * getaddrinfo(AF_INET).  A bad name is an input error (-EINVAL) without any lookup; a
 * name that does not resolve is an error naming the service and the host (-ENOENT,
 * or -EAGAIN when the resolver failed temporarily).  IPv6 results are ignored. */
int moat_env_egress_resolve(const struct moat_env_service *s, const struct moat_env_egress *x, char ***out,
                            struct moat_error **err);
