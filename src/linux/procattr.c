/* SPDX-License-Identifier: Apache-2.0 */
/* Per-process attributes: rlimits, oom_score_adj, ioprio, scheduler, CPU
 * affinity, personality, umask, AppArmor / SELinux exec labels. */
#include "linux/procattr.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"

#define CAP_SYS_RESOURCE_BIT 24

/* --- rlimits --------------------------------------------------------------- */

static const char *rlim_str(uint64_t v, char buf[static 24])
{
        if (v == (uint64_t)RLIM_INFINITY)
                return "unlimited";
        snprintf(buf, 24, "%" PRIu64, v);
        return buf;
}

/* Reads the hex mask of `key` ("CapBnd:") from /proc/self/status. */
static int status_capmask(const char *key, uint64_t *out)
{
        _cleanup_free_ char *s = NULL;
        size_t klen = strlen(key);
        int ret = read_file_at(AT_FDCWD, "/proc/self/status", &s, NULL);
        if (ret < 0)
                return ret;
        for (char *line = s; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                if (strncmp(line, key, klen) != 0)
                        continue;
                char *end;
                errno = 0;
                unsigned long long v = strtoull(line + klen, &end, 16);
                if (errno || end == line + klen)
                        return -EINVAL;
                *out = v;
                return 0;
        }
        return -ENOENT;
}

static int rlimit_error(const struct moat_rlimit *rl, const char *name, int errnum, struct moat_error **err)
{
        char sb[24], hb[24], cb[24];
        struct rlimit cur;
        uint64_t bnd = 0, eff = 0;

        if (errnum == EINVAL && rl->soft > rl->hard)
                return moat_error_input(err, -EINVAL, "cannot set %s to soft %s hard %s: the soft limit is above the hard limit",
                                        name, rlim_str(rl->soft, sb), rlim_str(rl->hard, hb));
        if (errnum != EPERM || getrlimit(rl->resource, &cur) < 0 || rl->hard <= (uint64_t)cur.rlim_max)
                return moat_error_set(err, errnum, "cannot set %s to soft %s hard %s", name, rlim_str(rl->soft, sb),
                                      rlim_str(rl->hard, hb));

        /* Raising the hard limit needs CAP_SYS_RESOURCE: say where it is missing. */
        char lower[32];
        const char *base = strncmp(name, "RLIMIT_", 7) == 0 ? name + 7 : name;
        size_t i;
        for (i = 0; base[i] && i < sizeof(lower) - 1; i++)
                lower[i] = (char)tolower((unsigned char)base[i]);
        lower[i] = '\0';
        const char *where;
        if (status_capmask("CapBnd:", &bnd) == 0 && !(bnd & (UINT64_C(1) << CAP_SYS_RESOURCE_BIT)))
                where = "which this host's capability bounding set lacks";
        else if (status_capmask("CapEff:", &eff) == 0 && !(eff & (UINT64_C(1) << CAP_SYS_RESOURCE_BIT)))
                where = "which this process does not have in its effective set";
        else
                where = "which was refused";
        return moat_error_input(err, -EPERM,
                                "cannot set %s to soft %s hard %s: the hard limit is %s and raising it needs "
                                "CAP_SYS_RESOURCE, %s; lower the limit (for podman: --ulimit %s=%s:%s)",
                                name, rlim_str(rl->soft, sb), rlim_str(rl->hard, hb), rlim_str(cur.rlim_max, cb),
                                where, lower, cb, cb);
}

int moat_rlimits_apply(const struct moat_process *p, struct moat_error **err)
{
        for (size_t i = 0; i < p->n_rlimits; i++) {
                const struct moat_rlimit *rl = &p->rlimits[i];
                struct rlimit r = { .rlim_cur = (rlim_t)rl->soft, .rlim_max = (rlim_t)rl->hard };
                char fallback[32];
                const char *name = rl->name;
                if (!name) {
                        snprintf(fallback, sizeof(fallback), "rlimit %d", rl->resource);
                        name = fallback;
                }
                if (setrlimit(rl->resource, &r) < 0)
                        return rlimit_error(rl, name, errno, err);
        }
        return 0;
}

/* --- oom, ioprio, scheduler ------------------------------------------------ */

int moat_oom_score_adj_apply(int adj, struct moat_error **err)
{
        char buf[16];
        snprintf(buf, sizeof(buf), "%d", adj);
        int ret = write_string_at(AT_FDCWD, "/proc/self/oom_score_adj", buf);
        if (ret < 0)
                return moat_error_set(err, ret, "cannot set 'process.oomScoreAdj' to %d%s", adj,
                                      ret == -EACCES || ret == -EPERM ? " (lowering it needs CAP_SYS_RESOURCE)" : "");
        return 0;
}

#define MOAT_IOPRIO_CLASS_SHIFT 13
#define MOAT_IOPRIO_WHO_PROCESS 1

int moat_ioprio_apply(int klass, int prio, struct moat_error **err)
{
        int v = (klass << MOAT_IOPRIO_CLASS_SHIFT) | prio;
        if (klass < 0 || klass > 7 || prio < 0 || prio >= (1 << MOAT_IOPRIO_CLASS_SHIFT))
                return moat_error_input(err, -EINVAL, "'process.ioPriority': class %d priority %d out of range", klass,
                                        prio);
        if (syscall(SYS_ioprio_set, MOAT_IOPRIO_WHO_PROCESS, 0, v) < 0)
                return moat_error_set(err, errno, "cannot set 'process.ioPriority' (class %d, priority %d)", klass,
                                      prio);
        return 0;
}

/* The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER1), defined here so we
 * need not mix <linux/sched/types.h> with glibc's <sched.h>. */
struct moat_sched_attr {
        uint32_t size;
        uint32_t sched_policy;
        uint64_t sched_flags;
        int32_t sched_nice;
        uint32_t sched_priority;
        uint64_t sched_runtime;
        uint64_t sched_deadline;
        uint64_t sched_period;
        uint32_t sched_util_min;
        uint32_t sched_util_max;
};

int moat_scheduler_apply(const struct moat_process *p, struct moat_error **err)
{
        struct moat_sched_attr a = {
                .size = sizeof(a),
                .sched_policy = (uint32_t)p->sched_policy,
                .sched_flags = p->sched_flags,
                .sched_nice = p->sched_nice,
                .sched_priority = (uint32_t)p->sched_priority,
                .sched_runtime = p->sched_runtime,
                .sched_deadline = p->sched_deadline,
                .sched_period = p->sched_period,
        };
        if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
                return moat_error_set(err, errno,
                                      "cannot apply 'process.scheduler' (policy %d, nice %d, priority %d, flags 0x%" PRIx64
                                      ")",
                                      p->sched_policy, p->sched_nice, p->sched_priority, p->sched_flags);
        return 0;
}

/* --- CPU affinity ---------------------------------------------------------- */

static int parse_cpu(const char **s, unsigned long *out)
{
        const char *q = *s;
        unsigned long v = 0;
        if (!isdigit((unsigned char)*q))
                return -EINVAL;
        while (isdigit((unsigned char)*q)) {
                v = v * 10 + (unsigned long)(*q - '0');
                if (v >= CPU_SETSIZE)
                        return -EINVAL;
                q++;
        }
        *s = q;
        *out = v;
        return 0;
}

int moat_cpulist_parse(const char *s, cpu_set_t *set)
{
        CPU_ZERO(set);
        if (!s || !*s)
                return -EINVAL;
        for (;;) {
                unsigned long lo, hi;
                if (parse_cpu(&s, &lo) < 0)
                        return -EINVAL;
                hi = lo;
                if (*s == '-') {
                        s++;
                        if (parse_cpu(&s, &hi) < 0 || hi < lo)
                                return -EINVAL;
                }
                for (unsigned long c = lo; c <= hi; c++)
                        CPU_SET(c, set);
                if (*s == '\0')
                        return 0;
                if (*s != ',')
                        return -EINVAL;
                s++;
        }
}

int moat_cpu_affinity_apply(pid_t pid, const char *cpus, const char *field, struct moat_error **err)
{
        cpu_set_t set;
        if (moat_cpulist_parse(cpus, &set) < 0)
                return moat_error_input(err, -EINVAL, "'%s': '%s' is not a CPU list like '0-3,7'", field, cpus);
        if (sched_setaffinity(pid, sizeof(set), &set) < 0)
                return moat_error_set(err, errno, "cannot set '%s' to '%s'", field, cpus);
        return 0;
}

/* --- LSM labels ------------------------------------------------------------ */

static bool file_starts_with(const char *path, const char *prefix)
{
        _cleanup_free_ char *s = NULL;
        if (read_file_at(AT_FDCWD, path, &s, NULL) < 0)
                return false;
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool moat_lsm_apparmor_enabled(void)
{
        return file_starts_with("/sys/module/apparmor/parameters/enabled", "Y");
}

bool moat_lsm_selinux_enabled(void)
{
        _cleanup_free_ char *fs = NULL;
        if (access("/sys/fs/selinux/enforce", F_OK) == 0)
                return true;
        /* selinuxfs registers only when SELinux is enabled; this also works
         * inside a container where /sys/fs/selinux is not mounted. */
        if (read_file_at(AT_FDCWD, "/proc/filesystems", &fs, NULL) < 0)
                return false;
        return strstr(fs, "\tselinuxfs\n") != NULL;
}

int moat_apparmor_apply(const char *profile, struct moat_error **err)
{
        _cleanup_free_ char *cmd = NULL;
        int ret;

        if (!profile || !*profile)
                return 0;
        if (!moat_lsm_apparmor_enabled()) {
                moat_warn("AppArmor profile '%s' requested but AppArmor is not enabled on this kernel; ignoring",
                          profile);
                return 0;
        }
        if (asprintf(&cmd, "exec %s", profile) < 0)
                return moat_error_set(err, ENOMEM, "cannot apply AppArmor profile '%s'", profile);
        ret = write_string_at(AT_FDCWD, "/proc/self/attr/apparmor/exec", cmd);
        if (ret == -ENOENT)
                ret = write_string_at(AT_FDCWD, "/proc/self/attr/exec", cmd);
        if (ret < 0)
                return moat_error_set(err, ret, "cannot apply 'process.apparmorProfile' '%s'%s", profile,
                                      ret == -ENOENT ? " (is the profile loaded?)" : "");
        return 0;
}

int moat_selinux_apply(const char *label, struct moat_error **err)
{
        int ret;

        if (!label || !*label)
                return 0;
        if (!moat_lsm_selinux_enabled()) {
                moat_warn("SELinux label '%s' requested but SELinux is not enabled on this kernel; ignoring", label);
                return 0;
        }
        ret = write_string_at(AT_FDCWD, "/proc/self/attr/exec", label);
        if (ret < 0)
                return moat_error_set(err, ret, "cannot apply 'process.selinuxLabel' '%s'", label);
        return 0;
}

/* --- all of them ----------------------------------------------------------- */

int moat_procattr_apply(const struct moat_process *p, struct moat_error **err)
{
        int ret;

        umask(p->has_umask ? (mode_t)p->umask : 0022);
        if (p->has_oom_score_adj && (ret = moat_oom_score_adj_apply(p->oom_score_adj, err)) < 0)
                return ret;
        if (p->has_io_priority && (ret = moat_ioprio_apply(p->io_priority_class, p->io_priority, err)) < 0)
                return ret;
        if (p->has_scheduler && (ret = moat_scheduler_apply(p, err)) < 0)
                return ret;
        if (p->exec_cpu_affinity_final &&
            (ret = moat_cpu_affinity_apply(0, p->exec_cpu_affinity_final, "process.execCPUAffinity.final", err)) < 0)
                return ret;
        if ((ret = moat_apparmor_apply(p->apparmor_profile, err)) < 0)
                return ret;
        return moat_selinux_apply(p->selinux_label, err);
}

int moat_personality_apply(unsigned long persona, struct moat_error **err)
{
        if (personality(persona) < 0)
                return moat_error_set(err, errno, "cannot set 'linux.personality' to 0x%lx", persona);
        return 0;
}
