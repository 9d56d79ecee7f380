/* SPDX-License-Identifier: Apache-2.0 */
/* rlimits, oom_score_adj, ioprio, scheduler, CPU affinity, personality,
 * umask, LSM labels and the CPU list parser.  Everything that changes the
 * process runs in a forked child that reports back over a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "linux/caps.h"
#include "linux/procattr.h"
#include "tap.h"

/* Runs fn(fd) in a child; returns what it wrote to fd (malloc'd). */
static char *in_child(void (*fn)(FILE *f, void *arg), void *arg)
{
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return NULL;
        pid_t pid = fork();
        if (pid == 0) {
                close(pfd[0]);
                FILE *f = fdopen(pfd[1], "w");
                if (!f)
                        _exit(1);
                fn(f, arg);
                fclose(f);
                _exit(0);
        }
        close(pfd[1]);
        char *out = NULL;
        size_t len;
        if (read_fd_all(pfd[0], &out, &len) < 0)
                out = NULL;
        close(pfd[0]);
        waitpid(pid, NULL, 0);
        return out;
}

static void report(FILE *f, int ret, struct moat_error *err)
{
        fprintf(f, "ret=%d err=%s", ret, err ? err->msg : "");
        moat_error_free(err);
}

/* ---- cpulist parser ---- */
static void test_cpulist(void)
{
        static const struct {
                const char *s;
                int ret;
                int count;
                int first, last;
        } t[] = {
                { "0", 0, 1, 0, 0 },         { "0-3", 0, 4, 0, 3 },      { "0-3,7", 0, 5, 0, 7 },
                { "1,3,5", 0, 3, 1, 5 },     { "2-2", 0, 1, 2, 2 },      { "0-1,1-2", 0, 3, 0, 2 },
                { "1023", 0, 1, 1023, 1023 }, { "", -EINVAL, 0, 0, 0 },  { "1024", -EINVAL, 0, 0, 0 },
                { "3-1", -EINVAL, 0, 0, 0 }, { "0,", -EINVAL, 0, 0, 0 }, { ",0", -EINVAL, 0, 0, 0 },
                { "0,,1", -EINVAL, 0, 0, 0 }, { "0-", -EINVAL, 0, 0, 0 }, { "-1", -EINVAL, 0, 0, 0 },
                { " 0", -EINVAL, 0, 0, 0 },  { "0 ", -EINVAL, 0, 0, 0 }, { "0\t", -EINVAL, 0, 0, 0 },
                { "a", -EINVAL, 0, 0, 0 },   { "0x1", -EINVAL, 0, 0, 0 }, { "0-3:2", -EINVAL, 0, 0, 0 },
                { "+1", -EINVAL, 0, 0, 0 },  { "1--2", -EINVAL, 0, 0, 0 }, { "99999999999999999999", -EINVAL, 0, 0, 0 },
        };
        for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
                cpu_set_t set;
                int r = moat_cpulist_parse(t[i].s, &set);
                if (!is_int(r, t[i].ret, "cpulist '%s' -> %d", t[i].s, t[i].ret) || r < 0)
                        continue;
                int first = -1, last = -1;
                for (int c = 0; c < CPU_SETSIZE; c++)
                        if (CPU_ISSET(c, &set)) {
                                if (first < 0)
                                        first = c;
                                last = c;
                        }
                ok(CPU_COUNT(&set) == t[i].count && first == t[i].first && last == t[i].last,
                   "cpulist '%s': %d cpus, %d..%d", t[i].s, CPU_COUNT(&set), first, last);
        }
        ok(moat_cpulist_parse(NULL, &(cpu_set_t){ 0 }) == -EINVAL, "NULL is invalid");
}

/* ---- rlimits ---- */
static void child_rlimit_lower(FILE *f, void *arg)
{
        struct moat_rlimit rl = { .resource = RLIMIT_NOFILE, .name = "RLIMIT_NOFILE", .soft = 100, .hard = 200 };
        struct moat_process p = { .rlimits = &rl, .n_rlimits = 1 };
        struct moat_error *err = NULL;
        int ret = moat_rlimits_apply(&p, &err);
        struct rlimit r;
        getrlimit(RLIMIT_NOFILE, &r);
        fprintf(f, "%llu %llu ", (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
        report(f, ret, err);
}

/* Drops CAP_SYS_RESOURCE from bounding, effective and permitted, then raises
 * the hard limit above the current one. */
static void child_rlimit_raise(FILE *f, void *arg)
{
        struct rlimit cur;
        getrlimit(RLIMIT_NOFILE, &cur);
        moat_caps_drop_bounding(~(UINT64_C(1) << CAP_SYS_RESOURCE), NULL);
        cap_t c = cap_get_proc();
        cap_value_t v = CAP_SYS_RESOURCE;
        cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_CLEAR);
        cap_set_flag(c, CAP_PERMITTED, 1, &v, CAP_CLEAR);
        cap_set_proc(c);
        cap_free(c);
        struct moat_rlimit rl = { .resource = RLIMIT_NOFILE, .name = "RLIMIT_NOFILE", .soft = cur.rlim_max + 1,
                                  .hard = cur.rlim_max + 1 };
        struct moat_process p = { .rlimits = &rl, .n_rlimits = 1 };
        struct moat_error *err = NULL;
        fprintf(f, "hard=%llu ", (unsigned long long)cur.rlim_max);
        int ret = moat_rlimits_apply(&p, &err);
        report(f, ret, err);
}

static void child_rlimit_inverted(FILE *f, void *arg)
{
        struct moat_rlimit rl = { .resource = RLIMIT_NOFILE, .name = "RLIMIT_NOFILE", .soft = 300, .hard = 200 };
        struct moat_process p = { .rlimits = &rl, .n_rlimits = 1 };
        struct moat_error *err = NULL;
        int ret = moat_rlimits_apply(&p, &err);
        report(f, ret, err);
}

static void test_rlimits(void)
{
        _cleanup_free_ char *a = in_child(child_rlimit_lower, NULL);
        is_str(a, "100 200 ret=0 err=", "RLIMIT_NOFILE lowered to 100/200 and read back");

        _cleanup_free_ char *b = in_child(child_rlimit_raise, NULL);
        contains(b, "ret=-1 ", "raising the hard limit without CAP_SYS_RESOURCE fails with EPERM");
        contains(b, "cannot set RLIMIT_NOFILE to soft", "message names RLIMIT_NOFILE");
        contains(b, "CAP_SYS_RESOURCE", "message names CAP_SYS_RESOURCE");
        contains(b, "bounding set lacks", "message says the bounding set lacks it");
        contains(b, "--ulimit nofile=", "message suggests a podman --ulimit");
        printf("# %s\n", b ? b : "(null)");

        _cleanup_free_ char *c = in_child(child_rlimit_inverted, NULL);
        contains(c, "ret=-22 ", "soft above hard is EINVAL");
        contains(c, "soft limit is above the hard limit", "and says so");
}

/* ---- oom, ioprio, scheduler, affinity, personality, umask ---- */
static void child_attrs(FILE *f, void *arg)
{
        struct moat_process p = {
                .has_umask = true, .umask = 027,
                .has_oom_score_adj = true, .oom_score_adj = 500,
                .has_io_priority = true, .io_priority_class = 2 /* BE */, .io_priority = 6,
                .has_scheduler = true, .sched_policy = SCHED_BATCH, .sched_nice = 5,
                .exec_cpu_affinity_final = "0",
        };
        struct moat_error *err = NULL;
        int ret = moat_procattr_apply(&p, &err);
        _cleanup_free_ char *oom = NULL;
        read_file_at(AT_FDCWD, "/proc/self/oom_score_adj", &oom, NULL);
        long io = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
        cpu_set_t set;
        sched_getaffinity(0, sizeof(set), &set);
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, 0);
        mode_t um = umask(0);
        fprintf(f, "oom=%d io=%ld/%ld sched=%d nice=%d cpus=%d cpu0=%d umask=%03o ", oom ? atoi(oom) : -1000, io >> 13,
                io & 0x1fff, sched_getscheduler(0), nice, CPU_COUNT(&set), CPU_ISSET(0, &set), (unsigned)um);
        report(f, ret, err);
}

static void child_default_umask(FILE *f, void *arg)
{
        struct moat_process p = { 0 };
        umask(0777);
        int ret = moat_procattr_apply(&p, NULL);
        fprintf(f, "umask=%03o ret=%d", (unsigned)umask(0), ret);
}

static void child_bad_sched(FILE *f, void *arg)
{
        struct moat_process p = { .has_scheduler = true, .sched_policy = 42 };
        struct moat_error *err = NULL;
        int ret = moat_procattr_apply(&p, &err);
        report(f, ret, err);
}

static void child_bad_affinity(FILE *f, void *arg)
{
        struct moat_process p = { .exec_cpu_affinity_final = "0-1,x" };
        struct moat_error *err = NULL;
        int ret = moat_procattr_apply(&p, &err);
        report(f, ret, err);
}

static void child_personality(FILE *f, void *arg)
{
        struct moat_error *err = NULL;
        int ret = moat_personality_apply(PER_LINUX32, &err);
        fprintf(f, "persona=0x%x ", (unsigned)personality(0xffffffff));
        report(f, ret, err);
}

static void test_attrs(void)
{
        _cleanup_free_ char *a = in_child(child_attrs, NULL);
        char want[128];
        snprintf(want, sizeof(want), "oom=500 io=2/6 sched=%d nice=5 cpus=1 cpu0=1 umask=027 ret=0 err=", SCHED_BATCH);
        is_str(a, want, "oom_score_adj, ioprio (BE/6), SCHED_BATCH nice 5, affinity '0', umask 027 read back");

        _cleanup_free_ char *b = in_child(child_default_umask, NULL);
        is_str(b, "umask=022 ret=0", "umask defaults to 022 (as runc)");

        _cleanup_free_ char *c = in_child(child_bad_sched, NULL);
        contains(c, "ret=-22 ", "unknown scheduler policy fails with EINVAL");
        contains(c, "'process.scheduler'", "error names 'process.scheduler'");

        _cleanup_free_ char *d = in_child(child_bad_affinity, NULL);
        contains(d, "ret=-22 ", "bad CPU list fails");
        contains(d, "'process.execCPUAffinity.final': '0-1,x'", "error names the field and the input");

        _cleanup_free_ char *e = in_child(child_personality, NULL);
        is_str(e, "persona=0x8 ret=0 err=", "personality PER_LINUX32 read back");
}

/* ---- LSM labels ---- */
static void child_lsm(FILE *f, void *arg)
{
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return;
        moat_log_setup(pfd[1], MOAT_LOG_TEXT, MOAT_LOG_DEBUG);
        struct moat_process p = { .apparmor_profile = "moat-test-no-such-profile",
                                  .selinux_label = "system_u:system_r:moat_no_such_t:s0" };
        struct moat_error *err = NULL;
        int ret = moat_procattr_apply(&p, &err);
        close(pfd[1]);
        char buf[2048] = { 0 };
        ssize_t n = read(pfd[0], buf, sizeof(buf) - 1);
        (void)n;
        fprintf(f, "log=[%s] ", buf);
        report(f, ret, err);
}

static void test_lsm(void)
{
        _cleanup_free_ char *out = in_child(child_lsm, NULL);
        if (!moat_lsm_apparmor_enabled()) {
                contains(out, "AppArmor profile 'moat-test-no-such-profile' requested but AppArmor is not enabled",
                         "AppArmor off: warning names the profile");
        } else {
                contains(out, "'process.apparmorProfile' 'moat-test-no-such-profile'",
                         "AppArmor on: a profile that is not loaded is an error naming it");
        }
        if (!moat_lsm_apparmor_enabled() && !moat_lsm_selinux_enabled()) {
                contains(out, "SELinux label 'system_u:system_r:moat_no_such_t:s0' requested but SELinux is not enabled",
                         "SELinux off: warning names the label");
                contains(out, "ret=0 ", "labels for absent LSMs are warnings, not errors");
        }
        /* diagnostics: every line a TAP comment */
        for (const char *l = out ? out : "(null)"; *l;) {
                const char *nl = strchr(l, '\n');
                int n = nl ? (int)(nl - l) : (int)strlen(l);
                printf("# %.*s\n", n, l);
                l += n + (nl ? 1 : 0);
        }
}

int main(void)
{
        if (geteuid() != 0)
                return skip_all("needs root (ioprio, scheduler, capability drop)");
        test_cpulist();
        test_rlimits();
        test_attrs();
        test_lsm();
        return done_testing();
}
