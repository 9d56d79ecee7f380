/* SPDX-License-Identifier: Apache-2.0 */
/* Process creation: clone3 (with CLONE_INTO_CGROUP and a pidfd when the
 * kernel has them), falling back to clone(2) where clone3 is missing. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Like fork(): returns 0 in the child, the pid in the parent, -errno on failure.
 * flags: CLONE_NEW* namespace flags.  cgroup_fd >= 0: start the child in that
 * (v2) cgroup.  pidfd (may be NULL): receives a pidfd of the child, or -EBADF. */
pid_t moat_spawn(uint64_t flags, int cgroup_fd, int *pidfd);
/* Tests: make moat_spawn behave as on a kernel without clone3. */
void moat_spawn_force_legacy(bool on);

/* setns()/unshare() of pid and time namespaces change only what our children
 * get.  The runtime saves its own first and restores them once the child
 * exists, so nothing it forks later (a hook, LeakSanitizer's tracer) lands in
 * a container's namespaces. */
struct moat_ns_children {
        int pid, time;
};
int moat_ns_children_save(struct moat_ns_children *s);
void moat_ns_children_restore(struct moat_ns_children *s);
