/* SPDX-License-Identifier: Apache-2.0 */
/* Cgroups for one container, on v1, v2 and hybrid hosts.  cgroup.c
 * dispatches through an ops table to v1.c and v2.c. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"
#include "oci/spec.h"

enum moat_cgroup_layout { MOAT_CG_V1, MOAT_CG_V2, MOAT_CG_HYBRID };

/* What /proc/self/mountinfo says (cached for the process). */
int moat_cgroup_layout_detect(enum moat_cgroup_layout *out, struct moat_error **err);

struct moat_cgroup; /* opaque */

/* `path` is linux.cgroupsPath: absolute ones are relative to each hierarchy's
 * root; relative ones relative to moat's own cgroup in each hierarchy; NULL
 * means "/moat/<id>".  ".." components are refused.  Creates the directories
 * (every mounted v1 controller, and the v2 dir), applies `res` (may be NULL).
 * An existing cgroup is accepted if it holds no process.  On error nothing
 * it created is left. */
int moat_cgroup_create(const char *path, const char *id, const struct moat_resources *res,
                       struct moat_cgroup **out, struct moat_error **err);
/* The same in two steps, so a caller can record moat_cgroup_path() before any
 * directory exists (a crash in between then leaves a record, not a stray
 * cgroup): plan resolves the directories, realize creates them and applies res. */
int moat_cgroup_plan(const char *path, const char *id, struct moat_cgroup **out, struct moat_error **err);
int moat_cgroup_realize(struct moat_cgroup *cg, const struct moat_resources *res, struct moat_error **err);
/* Reopens a cgroup created earlier, from the string moat_cgroup_path() gave. */
int moat_cgroup_open(const char *path, struct moat_cgroup **out, struct moat_error **err);
const char *moat_cgroup_path(const struct moat_cgroup *cg); /* resolved, absolute within hierarchies */
void moat_cgroup_free(struct moat_cgroup *cg);

/* A dir fd for clone3(CLONE_INTO_CGROUP) when the host is pure v2, else -EOPNOTSUPP. */
int moat_cgroup_v2_dirfd(const struct moat_cgroup *cg);
/* The v2 directory (pure v2, or the unified one of a hybrid host) for
 * clone3(CLONE_INTO_CGROUP); -EOPNOTSUPP on pure v1.  Owned by cg. */
int moat_cgroup_clone_fd(const struct moat_cgroup *cg);
/* Moves the calling single-threaded process into the cgroup.  v1: writes "0"
 * to each hierarchy's "tasks": a thread that moves itself skips the kernel's
 * global threadgroup lock, whose RCU grace period costs ~10 ms per container
 * through cgroup.procs.  v2 directories: cgroup.procs, unless in_v2 says
 * clone3(CLONE_INTO_CGROUP) already put us there. */
int moat_cgroup_enter_self(const struct moat_cgroup *cg, bool in_v2, struct moat_error **err);
int moat_cgroup_add_pid(struct moat_cgroup *cg, pid_t pid, struct moat_error **err);
int moat_cgroup_update(struct moat_cgroup *cg, const struct moat_resources *res, struct moat_error **err);
int moat_cgroup_freeze(struct moat_cgroup *cg, bool frozen, struct moat_error **err);
int moat_cgroup_is_frozen(struct moat_cgroup *cg, bool *frozen);
/* Every process in the cgroup and below. */
int moat_cgroup_pids(struct moat_cgroup *cg, pid_t **pids, size_t *n);
/* Signals every process; for SIGKILL freezes first (or cgroup.kill on v2) so
 * nothing forks away.  Returns the number signalled. */
int moat_cgroup_kill_all(struct moat_cgroup *cg, int sig);
/* runc's `events --stats` "data" object: cpu, memory, pids, blkio, hugetlb. */
int moat_cgroup_stats(struct moat_cgroup *cg, json_t **out, struct moat_error **err);
/* OOM kills recorded so far (memory.oom_control / memory.events). */
int moat_cgroup_oom_kills(struct moat_cgroup *cg, uint64_t *n);
/* Kills what is left, waits for it to go, removes every directory.  Idempotent. */
int moat_cgroup_destroy(struct moat_cgroup *cg, struct moat_error **err);

/* For mounting cgroups inside the container (type "cgroup" mounts). */
struct moat_cgroup_hier {
        char *name;      /* directory under /sys/fs/cgroup: "memory", "cpu,cpuacct", "systemd", "unified" */
        char *options;   /* v1 mount options: "memory", "cpu,cpuacct", "none,name=systemd"; NULL for cgroup2 */
        bool v2;
        char *host_dir;  /* the container's cgroup directory on the host */
        char *rel_path;  /* the container's path inside the hierarchy ("/moat/ID") */
};
int moat_cgroup_hierarchies(const struct moat_cgroup *cg, struct moat_cgroup_hier **out, size_t *n);
void moat_cgroup_hierarchies_free(struct moat_cgroup_hier *h, size_t n);
