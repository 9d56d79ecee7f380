/* SPDX-License-Identifier: Apache-2.0 */
/* Per-process attributes set before execve: rlimits, oom_score_adj, I/O
 * priority, scheduler, CPU affinity, personality, umask, LSM exec labels. */
#pragma once

#include <sched.h>
#include <stdbool.h>

#include "core/error.h"
#include "oci/spec.h"

/* setrlimit each process.rlimits entry.  Raising a hard limit without
 * CAP_SYS_RESOURCE fails with a message that says which limit, the values,
 * why, and what to do.  Call while still privileged (before
 * moat_process_finalize). */
int moat_rlimits_apply(const struct moat_process *p, struct moat_error **err);

/* In this order: umask (0022 when not given, as runc), oom_score_adj,
 * ioPriority, scheduler, execCPUAffinity.final, AppArmor profile, SELinux
 * label.  An LSM label for an LSM this kernel does not run is a warning.
 * execCPUAffinity.initial is for the process code (before it joins the
 * container's cgroup): see moat_cpu_affinity_apply. */
int moat_procattr_apply(const struct moat_process *p, struct moat_error **err);

int moat_oom_score_adj_apply(int adj, struct moat_error **err);
int moat_ioprio_apply(int klass, int prio, struct moat_error **err);
int moat_scheduler_apply(const struct moat_process *p, struct moat_error **err);
/* sched_setaffinity(pid (0 = self), cpus); field names the input in errors
 * ("process.execCPUAffinity.initial"). */
int moat_cpu_affinity_apply(pid_t pid, const char *cpus, const char *field, struct moat_error **err);
int moat_apparmor_apply(const char *profile, struct moat_error **err);
int moat_selinux_apply(const char *label, struct moat_error **err);
bool moat_lsm_apparmor_enabled(void);
bool moat_lsm_selinux_enabled(void);

int moat_personality_apply(unsigned long persona, struct moat_error **err);

/* "0-3,7" -> set.  Strict: decimal numbers, ranges lo-hi with lo <= hi, commas
 * between items, no spaces/empty items/signs, every cpu < CPU_SETSIZE.  An
 * empty string is invalid.  Returns 0 or -EINVAL (set then undefined). */
int moat_cpulist_parse(const char *s, cpu_set_t *set);
