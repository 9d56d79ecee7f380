/* SPDX-License-Identifier: Apache-2.0 */
/* Capabilities and credentials, applied in forked children and read back
 * from /proc/self/status. */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/util.h"
#include "linux/caps.h"
#include "linux/seccomp.h"
#include "tap.h"

#define BIT(c) (UINT64_C(1) << (c))
#define NET_BIND 10 /* CAP_NET_BIND_SERVICE */
#define CHOWN 0
#define KILL 5

enum what { DO_FINALIZE, DO_APPLY_ONLY, DO_DROP_BOUNDING };

struct job {
        enum what what;
        const struct moat_process *p;
        struct moat_seccomp_prog *prog;
        uint64_t keep;
};

/* Child: does the job, then writes the interesting /proc/self/status lines,
 * "RET: n", "ERR: msg" and "PPID: getppid()" to fd. */
static void child(int fd, const struct job *j)
{
        struct moat_error *err = NULL;
        int ret = 0;
        switch (j->what) {
        case DO_FINALIZE:
                ret = moat_process_finalize(j->p, j->prog, NULL, &err);
                break;
        case DO_APPLY_ONLY:
                ret = moat_creds_switch(j->p, &err);
                if (ret >= 0)
                        ret = moat_caps_apply(j->p, &err);
                break;
        case DO_DROP_BOUNDING:
                ret = moat_caps_drop_bounding(j->keep, &err);
                break;
        }
        char *status = NULL;
        FILE *f = fdopen(fd, "w");
        if (!f)
                _exit(1);
        if (read_file_at(AT_FDCWD, "/proc/self/status", &status, NULL) >= 0) {
                for (char *l = strtok(status, "\n"); l; l = strtok(NULL, "\n"))
                        if (!strncmp(l, "Cap", 3) || !strncmp(l, "Uid:", 4) || !strncmp(l, "Gid:", 4) ||
                            !strncmp(l, "Groups:", 7) || !strncmp(l, "NoNewPrivs:", 11))
                                fprintf(f, "%s\n", l);
        }
        errno = 0;
        long pp = syscall(SYS_getppid);
        fprintf(f, "PPID: %ld %d\nRET: %d\nERR: %s\n", pp, pp < 0 ? errno : 0, ret, err ? err->msg : "");
        fclose(f);
        _exit(0);
}

static char *run(const struct job *j)
{
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return NULL;
        pid_t pid = fork();
        if (pid == 0) {
                close(pfd[0]);
                child(pfd[1], j);
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

/* Value of "Key:" in the child's output, whitespace-normalised; one of 4 rotating static buffers. */
static const char *field(const char *out, const char *key)
{
        static char bufs[4][512];
        static int bi;
        char *buf = bufs[bi = (bi + 1) % 4];
        size_t klen = strlen(key);
        for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                if (strncmp(l, key, klen) != 0)
                        continue;
                const char *v = l + klen;
                size_t n = 0;
                bool space = false;
                while (*v == ' ' || *v == '\t')
                        v++;
                for (; *v && *v != '\n' && n < sizeof(bufs[0]) - 1; v++) {
                        if (*v == ' ' || *v == '\t') {
                                space = true;
                                continue;
                        }
                        if (space && n)
                                buf[n++] = ' ';
                        space = false;
                        buf[n++] = *v;
                }
                buf[n] = '\0';
                return buf;
        }
        return NULL;
}

static const char *hex(uint64_t v)
{
        static char b[4][20];
        static int i;
        i = (i + 1) % 4;
        snprintf(b[i], sizeof(b[i]), "%016llx", (unsigned long long)v);
        return b[i];
}

static void set_all(struct moat_process *p, uint64_t m)
{
        p->has_caps = true;
        for (int i = 0; i < MOAT_CAP__COUNT; i++)
                p->caps[i] = m;
}

static void test_net_bind_uid1000(void)
{
        uint32_t gids[] = { 1001, 1002 };
        struct moat_process p = { .uid = 1000, .gid = 1000, .additional_gids = gids, .n_additional_gids = 2,
                                  .no_new_privileges = true };
        set_all(&p, BIT(NET_BIND));
        struct job j = { .what = DO_FINALIZE, .p = &p };
        _cleanup_free_ char *out = run(&j);

        ok(out != NULL, "child ran");
        is_str(field(out, "RET:"), "0", "finalize succeeded: %s", field(out, "ERR:"));
        is_str(field(out, "CapInh:"), hex(BIT(NET_BIND)), "CapInh = CAP_NET_BIND_SERVICE (asked for)");
        is_str(field(out, "CapPrm:"), hex(BIT(NET_BIND)), "CapPrm = CAP_NET_BIND_SERVICE");
        is_str(field(out, "CapEff:"), hex(BIT(NET_BIND)), "CapEff = CAP_NET_BIND_SERVICE");
        is_str(field(out, "CapBnd:"), hex(BIT(NET_BIND)), "CapBnd = CAP_NET_BIND_SERVICE");
        is_str(field(out, "CapAmb:"), hex(BIT(NET_BIND)), "CapAmb = CAP_NET_BIND_SERVICE (ambient asked for)");
        is_str(field(out, "Uid:"), "1000 1000 1000 1000", "uid 1000 everywhere");
        is_str(field(out, "Gid:"), "1000 1000 1000 1000", "gid 1000 everywhere");
        is_str(field(out, "Groups:"), "1001 1002", "additional gids");
        is_str(field(out, "NoNewPrivs:"), "1", "no_new_privs set");
}

static void test_no_inh_amb(void)
{
        struct moat_process p = { .uid = 1000, .gid = 1000, .no_new_privileges = true };
        set_all(&p, BIT(NET_BIND));
        p.caps[MOAT_CAP_INHERITABLE] = 0;
        p.caps[MOAT_CAP_AMBIENT] = 0;
        struct job j = { .what = DO_FINALIZE, .p = &p };
        _cleanup_free_ char *out = run(&j);

        is_str(field(out, "RET:"), "0", "finalize without inheritable/ambient: %s", field(out, "ERR:"));
        is_str(field(out, "CapInh:"), hex(0), "CapInh empty when not asked for");
        is_str(field(out, "CapAmb:"), hex(0), "CapAmb empty when not asked for");
        is_str(field(out, "CapPrm:"), hex(BIT(NET_BIND)), "CapPrm kept");
        is_str(field(out, "Groups:"), "", "no supplementary groups");
}

static void test_no_caps_object(uint32_t uid)
{
        struct moat_process p = { .uid = uid, .gid = uid, .no_new_privileges = false };
        struct job j = { .what = DO_FINALIZE, .p = &p };
        _cleanup_free_ char *out = run(&j);

        is_str(field(out, "RET:"), "0", "uid %u, no capabilities object: %s", uid, field(out, "ERR:"));
        is_str(field(out, "CapInh:"), hex(0), "uid %u: CapInh 0", uid);
        is_str(field(out, "CapPrm:"), hex(0), "uid %u: CapPrm 0", uid);
        is_str(field(out, "CapEff:"), hex(0), "uid %u: CapEff 0", uid);
        is_str(field(out, "CapBnd:"), hex(0), "uid %u: CapBnd 0", uid);
        is_str(field(out, "CapAmb:"), hex(0), "uid %u: CapAmb 0", uid);
        is_str(field(out, "NoNewPrivs:"), "0", "uid %u: no_new_privs not set", uid);
}

static void test_ambient_not_inheritable(void)
{
        struct moat_process p = { .uid = 1000, .gid = 1000, .no_new_privileges = true };
        set_all(&p, BIT(NET_BIND));
        p.caps[MOAT_CAP_INHERITABLE] = 0;
        struct job j = { .what = DO_APPLY_ONLY, .p = &p };
        _cleanup_free_ char *out = run(&j);

        /* As runc: a warning, and the ambient set stays empty. */
        is_str(field(out, "RET:"), "0", "ambient without inheritable is only a warning");
        is_str(field(out, "CapAmb:"), hex(0), "ambient without inheritable stays empty");
}

static void test_bounding(void)
{
        struct job j = { .what = DO_DROP_BOUNDING, .keep = BIT(CHOWN) | BIT(KILL) | BIT(63) };
        _cleanup_free_ char *out = run(&j);

        is_str(field(out, "RET:"), "0", "drop bounding: %s", field(out, "ERR:"));
        is_str(field(out, "CapBnd:"), hex(BIT(CHOWN) | BIT(KILL)), "CapBnd = CHOWN|KILL (bit 63 ignored)");
        ok(field(out, "CapEff:") && strcmp(field(out, "CapEff:"), hex(0)) != 0,
           "effective untouched by the bounding drop");
}

static struct moat_seccomp_prog *build_filter(const char *syscall_name)
{
        char *names[] = { (char *)syscall_name, NULL };
        struct moat_seccomp_rule r = { .names = names, .action = SCMP_ACT_ERRNO(0) };
        struct moat_seccomp sc = { .default_action = SCMP_ACT_ALLOW, .syscalls = &r, .n_syscalls = 1 };
        struct moat_seccomp_prog *prog = NULL;
        if (moat_seccomp_build(&sc, &prog, NULL) < 0)
                return NULL;
        return prog;
}

static void test_finalize_seccomp(bool nnp)
{
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *prog = build_filter("getppid");
        struct moat_process p = { .uid = 1000, .gid = 1000, .no_new_privileges = nnp };
        set_all(&p, BIT(NET_BIND) | BIT(CHOWN));
        p.caps[MOAT_CAP_INHERITABLE] = p.caps[MOAT_CAP_AMBIENT] = 0;
        p.caps[MOAT_CAP_EFFECTIVE] = BIT(CHOWN);
        struct job j = { .what = DO_FINALIZE, .p = &p, .prog = prog };
        _cleanup_free_ char *out = run(&j);

        ok(prog != NULL, "filter built");
        is_str(field(out, "RET:"), "0", "finalize %s NNP with a filter: %s", nnp ? "with" : "without",
               field(out, "ERR:"));
        is_str(field(out, "NoNewPrivs:"), nnp ? "1" : "0", "NoNewPrivs %d", nnp);
        is_str(field(out, "PPID:"), "-1 1", "filter loaded: getppid -> EPERM");
        is_str(field(out, "CapEff:"), hex(BIT(CHOWN)), "CapEff exact after the load");
        is_str(field(out, "CapPrm:"), hex(BIT(NET_BIND) | BIT(CHOWN)), "CapPrm exact");
        is_str(field(out, "CapBnd:"), hex(BIT(NET_BIND) | BIT(CHOWN)), "CapBnd exact");
        is_str(field(out, "CapInh:"), hex(0), "CapInh empty");
}

static void test_finalize_blocked_capset(void)
{
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *prog = build_filter("capset");
        struct moat_process p = { .uid = 1000, .gid = 1000, .no_new_privileges = false };
        set_all(&p, BIT(NET_BIND));
        struct job j = { .what = DO_FINALIZE, .p = &p, .prog = prog };
        _cleanup_free_ char *out = run(&j);

        ok(strcmp(field(out, "RET:") ?: "0", "0") != 0, "without NNP, a filter that blocks capset fails finalize");
        contains(field(out, "ERR:"), "capset", "error says the filter must allow capset");
        printf("# %s\n", field(out, "ERR:"));
}

int main(void)
{
        if (geteuid() != 0)
                return skip_all("needs root (uid switch, capability sets)");
        test_net_bind_uid1000();
        test_no_inh_amb();
        test_no_caps_object(1000);
        test_no_caps_object(0);
        test_ambient_not_inheritable();
        test_bounding();
        test_finalize_seccomp(true);
        test_finalize_seccomp(false);
        test_finalize_blocked_capset();
        char b[48];
        is_str(moat_caps_name(NET_BIND, b), "CAP_NET_BIND_SERVICE", "capability name");
        _cleanup_free_ char *lc = NULL;
        if (read_file_at(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", &lc, NULL) >= 0)
                is_int(moat_caps_last_cap(), atoi(lc), "last cap probed with PR_CAPBSET_READ = cap_last_cap");
        return done_testing();
}
