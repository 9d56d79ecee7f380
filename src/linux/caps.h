/* SPDX-License-Identifier: Apache-2.0 */
/* Capabilities and credentials of the container process: the last steps
 * before execve, in the container's init and in `exec`'d processes. */
#pragma once

#include <stdint.h>

#include "core/error.h"
#include "oci/spec.h"

struct moat_seccomp_prog;

/* Highest capability number the running kernel knows (probed with
 * PR_CAPBSET_READ, so it works without /proc). */
int moat_caps_last_cap(void);
/* "CAP_NET_BIND_SERVICE" into buf (or "capability 42"). */
const char *moat_caps_name(int cap, char buf[static 48]);

/* PR_CAPBSET_DROP for every capability not in keep, up to the last cap.
 * Capabilities already out of the bounding set are left alone (so this does
 * not need CAP_SETPCAP when there is nothing to drop). */
int moat_caps_drop_bounding(uint64_t keep, struct moat_error **err);

/* setgroups(additionalGids) (skipped when /proc/self/setgroups says "deny"
 * and no additional gid was asked for), setresgid, setresuid, with
 * PR_SET_KEEPCAPS around the switch so the permitted set survives. */
int moat_creds_switch(const struct moat_process *p, struct moat_error **err);

/* capset effective/permitted/inheritable from p->caps (bits above the last
 * cap ignored), then clear the ambient set and raise each requested ambient
 * cap.  No "capabilities" object (has_caps false) = every set empty, as runc.
 * Inheritable and ambient are empty unless asked for (CVE-2022-29162). */
int moat_caps_apply(const struct moat_process *p, struct moat_error **err);

/* The ordered sequence right before execve:
 *   drop bounding; switch creds (keepcaps);
 *   noNewPrivileges: PR_SET_NO_NEW_PRIVS, apply caps, load seccomp (last);
 *   otherwise:       effective = permitted, load seccomp (needs CAP_SYS_ADMIN),
 *                    apply caps (the filter must allow capset and prctl).
 * prog may be NULL (no filter).  *notify_fd (may be NULL) gets the listener fd
 * or -EBADF.  rlimits, scheduler, LSM labels etc. (procattr.h) go before this. */
int moat_process_finalize(const struct moat_process *p, struct moat_seccomp_prog *prog, int *notify_fd,
                          struct moat_error **err);
