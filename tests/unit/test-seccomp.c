/* SPDX-License-Identifier: Apache-2.0 */
/* seccomp filters built from a struct moat_seccomp and loaded in forked
 * children: errno rules, argument filters, default actions, kill, notify,
 * listenerPath hand-off, unknown names. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/util.h"
#include "linux/seccomp.h"
#include "tap.h"

#define ERRNO_ACT SCMP_ACT_ERRNO(0)

static char *names_getppid[] = { "getppid", NULL };

/* Runs fn in a child after loading prog with no_new_privs; returns the wait status. */
static int run_filtered(struct moat_seccomp_prog *prog, int (*fn)(void *), void *arg)
{
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                        _exit(100);
                if (moat_seccomp_load(prog, NULL, NULL) < 0)
                        _exit(101);
                /* Raw exit_group: sanitizer _exit hooks would make syscalls the
                 * strict allow-list filters deny. */
                syscall(SYS_exit_group, fn(arg));
                _exit(102);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return st;
}

static int exit_code(int st)
{
        return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* ---- errno rules ---- */
static int child_errno(void *arg)
{
        errno = 0;
        if (syscall(SYS_getppid) != -1 || errno != EPERM)
                return 1;
        errno = 0;
        if (syscall(SYS_mkdir, "/nonexistent-moat/x", 0700) != -1 || errno != ENOTSUP)
                return 2;
        if (syscall(SYS_getpid) != getpid())
                return 3;
        return 0;
}

static void test_errno_rules(void)
{
        char *mk[] = { "mkdir", "mkdirat", NULL };
        struct moat_seccomp_rule rules[] = {
                { .names = names_getppid, .action = ERRNO_ACT },
                { .names = mk, .action = ERRNO_ACT, .has_errno_ret = true, .errno_ret = ENOTSUP },
        };
        struct moat_seccomp sc = { .default_action = SCMP_ACT_ALLOW, .syscalls = rules, .n_syscalls = 2 };
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *p = NULL;
        _cleanup_error_ struct moat_error *err = NULL;

        is_int(moat_seccomp_build(&sc, &p, &err), 0, "build: getppid EPERM, mkdir ENOTSUP");
        ok(p && moat_seccomp_prog_len(p) > 0, "program has %u instructions", moat_seccomp_prog_len(p));
        ok(!moat_seccomp_uses_notify(p), "no notify rule");
        if (p)
                is_int(exit_code(run_filtered(p, child_errno, NULL)), 0,
                       "getppid -> EPERM (default errno), mkdir -> ENOTSUP, getpid works");
}

/* ---- default errno action with an allow list and an argument filter ---- */
static int child_default_errno(void *arg)
{
        int want = *(int *)arg;
        long r = syscall(SYS_personality, 0xffffffffUL);
        if (r < 0)
                return 1;
        errno = 0;
        if (syscall(SYS_personality, 0x0008UL) != -1 || errno != want)
                return 2;
        errno = 0;
        if (syscall(SYS_getppid) != -1 || errno != want)
                return 3;
        if (syscall(SYS_getpid) <= 0)
                return 4;
        return 0;
}

static void test_default_errno(bool with_ret)
{
        char *allow[] = { "exit_group", "exit", "getpid", "rt_sigreturn", NULL };
        char *pers[] = { "personality", NULL };
        struct moat_seccomp_arg a = { .index = 0, .value = 0xffffffffUL, .op = SCMP_CMP_EQ };
        struct moat_seccomp_rule rules[] = {
                { .names = allow, .action = SCMP_ACT_ALLOW },
                { .names = pers, .action = SCMP_ACT_ALLOW, .args = &a, .n_args = 1 },
        };
        struct moat_seccomp sc = { .default_action = ERRNO_ACT, .has_default_errno_ret = with_ret,
                                   .default_errno_ret = ENOSYS, .syscalls = rules, .n_syscalls = 2 };
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *p = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        int want = with_ret ? ENOSYS : EPERM;

        is_int(moat_seccomp_build(&sc, &p, &err), 0, "build: default errno%s, personality(0xffffffff) allowed",
               with_ret ? " ENOSYS" : "");
        if (p)
                is_int(exit_code(run_filtered(p, child_default_errno, &want)), 0,
                       "default action returns %s; personality(0xffffffff) allowed, personality(8) denied",
                       with_ret ? "ENOSYS" : "EPERM");
}

/* ---- MASKED_EQ and several comparisons on one argument ---- */
static int child_masked(void *arg)
{
        errno = 0;
        if (syscall(SYS_personality, 0x0008UL) != -1 || errno != ENOMSG)
                return 1;
        errno = 0;
        if (syscall(SYS_personality, 0x40008UL) != -1 || errno != ENOMSG)
                return 2;
        if (syscall(SYS_personality, 0xffffffffUL) < 0)
                return 3;
        /* Two comparisons on one argument are OR'd (one rule each). */
        errno = 0;
        if (syscall(SYS_umask, 0) != -1 || errno != EIO)
                return 4;
        errno = 0;
        if (syscall(SYS_umask, 077) != -1 || errno != EIO)
                return 5;
        if (syscall(SYS_umask, 022) < 0)
                return 6;
        return 0;
}

static void test_masked(void)
{
        char *pers[] = { "personality", NULL };
        char *um[] = { "umask", NULL };
        struct moat_seccomp_arg masked = { .index = 0, .value = 0xffffUL, .value_two = 0x0008, .op = SCMP_CMP_MASKED_EQ };
        struct moat_seccomp_arg two[] = {
                { .index = 0, .value = 0, .op = SCMP_CMP_EQ },
                { .index = 0, .value = 077, .op = SCMP_CMP_EQ },
        };
        struct moat_seccomp_rule rules[] = {
                { .names = pers, .action = ERRNO_ACT, .has_errno_ret = true, .errno_ret = ENOMSG, .args = &masked,
                  .n_args = 1 },
                { .names = um, .action = ERRNO_ACT, .has_errno_ret = true, .errno_ret = EIO, .args = two, .n_args = 2 },
        };
        struct moat_seccomp sc = { .default_action = SCMP_ACT_ALLOW, .syscalls = rules, .n_syscalls = 2 };
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *p = NULL;
        _cleanup_error_ struct moat_error *err = NULL;

        is_int(moat_seccomp_build(&sc, &p, &err), 0, "build: MASKED_EQ and two comparisons on one argument");
        if (p)
                is_int(exit_code(run_filtered(p, child_masked, NULL)), 0,
                       "personality(x & 0xffff == 8) -> ENOMSG, 0xffffffff allowed; umask(0)/umask(077) -> EIO (OR), umask(022) allowed");
}

/* ---- KILL_PROCESS ---- */
static int child_kill(void *arg)
{
        syscall(SYS_getppid);
        return 0;
}

static void test_kill(void)
{
        struct moat_seccomp_rule rules[] = { { .names = names_getppid, .action = SCMP_ACT_KILL_PROCESS } };
        struct moat_seccomp sc = { .default_action = SCMP_ACT_ALLOW, .syscalls = rules, .n_syscalls = 1 };
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *p = NULL;
        _cleanup_error_ struct moat_error *err = NULL;

        is_int(moat_seccomp_build(&sc, &p, &err), 0, "build: getppid KILL_PROCESS");
        if (p) {
                int st = run_filtered(p, child_kill, NULL);
                ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "getppid kills the process with SIGSYS (status 0x%x)", st);
        }
}

/* ---- unknown names, flags, arch, default-action rules ---- */
static void test_names(void)
{
        char *mixed[] = { "no_such_syscall_moat", "getppid", "another_bogus_one", NULL };
        char *arches[] = { "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", NULL };
        char *flags[] = { "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", NULL };
        struct moat_seccomp_rule rules[] = {
                { .names = mixed, .action = ERRNO_ACT },
                { .names = names_getppid, .action = SCMP_ACT_ALLOW }, /* same as default: skipped */
        };
        struct moat_seccomp sc = { .default_action = SCMP_ACT_ALLOW, .architectures = arches, .flags = flags,
                                   .syscalls = rules, .n_syscalls = 2 };
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *p = NULL;
        _cleanup_error_ struct moat_error *err = NULL;

        is_int(moat_seccomp_build(&sc, &p, &err), 0, "unknown syscall names are skipped, x86 arches added: %s",
               err ? err->msg : "ok");
        is_int(moat_seccomp_prog_flags(p), SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW,
               "flags LOG|SPEC_ALLOW kept for the load");
        if (p) {
                int st = run_filtered(p, child_errno, NULL);
                /* child_errno returns 2 when mkdir is not ENOTSUP: getppid passed. */
                is_int(exit_code(st), 2, "getppid denied despite the unknown names around it");
        }

        char *bad_arch[] = { "SCMP_ARCH_X86_64", "SCMP_ARCH_BOGUS", NULL };
        struct moat_seccomp sc2 = { .default_action = SCMP_ACT_ALLOW, .architectures = bad_arch };
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *p2 = NULL;
        _cleanup_error_ struct moat_error *err2 = NULL;
        is_int(moat_seccomp_build(&sc2, &p2, &err2), -EINVAL, "unknown architecture is an error");
        contains(err2 ? err2->msg : NULL, "'SCMP_ARCH_BOGUS'", "error names the architecture");
        contains(err2 ? err2->msg : NULL, "architectures[1]", "error names the field");

        char *bad_flag[] = { "SECCOMP_FILTER_FLAG_NOPE", NULL };
        struct moat_seccomp sc3 = { .default_action = SCMP_ACT_ALLOW, .flags = bad_flag };
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *p3 = NULL;
        _cleanup_error_ struct moat_error *err3 = NULL;
        is_int(moat_seccomp_build(&sc3, &p3, &err3), -EINVAL, "unknown flag is an error");
        contains(err3 ? err3->msg : NULL, "'SECCOMP_FILTER_FLAG_NOPE'", "error names the flag");

        struct moat_seccomp sc4 = { .default_action = SCMP_ACT_NOTIFY };
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *p4 = NULL;
        _cleanup_error_ struct moat_error *err4 = NULL;
        is_int(moat_seccomp_build(&sc4, &p4, &err4), -EINVAL, "SCMP_ACT_NOTIFY as default action is refused");
}

/* ---- NOTIFY over a socketpair ---- */
static int answer_one(int lfd, long *nr_out, uint32_t *pid_out)
{
        struct seccomp_notif req;
        struct seccomp_notif_resp resp;
        memset(&req, 0, sizeof(req));
        if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
                return -errno;
        *nr_out = req.data.nr;
        *pid_out = req.pid;
        memset(&resp, 0, sizeof(resp));
        resp.id = req.id;
        resp.val = 4242;
        if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0)
                return -errno;
        return 0;
}

static void test_notify(void)
{
        struct moat_seccomp_rule rules[] = { { .names = names_getppid, .action = SCMP_ACT_NOTIFY } };
        struct moat_seccomp sc = { .default_action = SCMP_ACT_ALLOW, .syscalls = rules, .n_syscalls = 1 };
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *p = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        int sv[2];

        is_int(moat_seccomp_build(&sc, &p, &err), 0, "build: getppid NOTIFY");
        ok(moat_seccomp_uses_notify(p), "filter records that it uses notify");
        if (!p || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return;
        pid_t pid = fork();
        if (pid == 0) {
                int nfd = -EBADF;
                close(sv[0]);
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || moat_seccomp_load(p, &nfd, NULL) < 0)
                        _exit(1);
                if (nfd < 0 || send_fd(sv[1], nfd, "x", 1) < 0)
                        _exit(2);
                close(nfd);
                _exit(syscall(SYS_getppid) == 4242 ? 0 : 3);
        }
        close(sv[1]);
        int lfd = -EBADF;
        char c;
        int r = recv_fd(sv[0], &lfd, &c, 1);
        ok(r >= 0 && lfd >= 0, "parent received the listener fd over the socketpair");
        long nr = -1;
        uint32_t npid = 0;
        if (lfd >= 0) {
                is_int(answer_one(lfd, &nr, &npid), 0, "SECCOMP_IOCTL_NOTIF_RECV/SEND");
                is_int(nr, SYS_getppid, "notification is for getppid");
                is_int(npid, pid, "notification comes from the child");
                close(lfd);
        }
        int st;
        waitpid(pid, &st, 0);
        is_int(exit_code(st), 0, "child's getppid returned the parent's answer 4242");
        close(sv[0]);
}

/* ---- listenerPath ---- */
static void test_send_listener(void)
{
        struct moat_seccomp_rule rules[] = { { .names = names_getppid, .action = SCMP_ACT_NOTIFY } };
        struct moat_seccomp sc = { .default_action = SCMP_ACT_ALLOW, .syscalls = rules, .n_syscalls = 1 };
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *p = NULL;
        char dir[] = "/tmp/moat-test-seccomp-XXXXXX";
        char path[128];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (moat_seccomp_build(&sc, &p, NULL) < 0 || !mkdtemp(dir)) {
                ok(0, "setup for listenerPath");
                return;
        }
        snprintf(path, sizeof(path), "%s/listener.sock", dir);
        strcpy(sa.sun_path, path);
        int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ok(ls >= 0 && bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(ls, 1) == 0, "listening on %s", path);

        _cleanup_free_ char *state = moat_seccomp_process_state_json(
                "MKNOD=/dev/null", getpid(), "{\"ociVersion\":\"1.2.0\",\"id\":\"c1\",\"status\":\"creating\","
                                             "\"pid\":1,\"bundle\":\"/b\"}");
        ok(state != NULL, "process state JSON built");
        pid_t pid = fork();
        if (pid == 0) {
                int nfd = -EBADF;
                struct moat_error *e = NULL;
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || moat_seccomp_load(p, &nfd, NULL) < 0)
                        _exit(1);
                if (moat_seccomp_send_listener(path, nfd, state, &e) < 0)
                        _exit(2);
                close(nfd);
                _exit(syscall(SYS_getppid) == 4242 ? 0 : 3);
        }
        int cs = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        ok(cs >= 0, "accepted the runtime's connection");
        char buf[4096] = { 0 };
        int lfd = -EBADF;
        int r = cs >= 0 ? recv_fd(cs, &lfd, buf, sizeof(buf) - 1) : -1;
        ok(r >= 0 && lfd >= 0, "got the JSON and an fd in one message");
        json_t *j = json_loads(buf, 0, NULL);
        ok(j != NULL, "payload is JSON: %s", buf);
        is_str(json_string_value(json_object_get(j, "ociVersion")), "1.2.0", "ociVersion");
        is_str(json_string_value(json_array_get(json_object_get(j, "fds"), 0)), "seccompFd", "fds[0] = seccompFd");
        is_int(json_integer_value(json_object_get(j, "pid")), getpid(), "pid");
        is_str(json_string_value(json_object_get(j, "metadata")), "MKNOD=/dev/null", "metadata");
        is_str(json_string_value(json_object_get(json_object_get(j, "state"), "id")), "c1", "state.id");
        json_decref(j);
        long nr = -1;
        uint32_t npid = 0;
        if (lfd >= 0) {
                is_int(answer_one(lfd, &nr, &npid), 0, "the received fd is a working listener");
                close(lfd);
        }
        int st;
        waitpid(pid, &st, 0);
        is_int(exit_code(st), 0, "child got the answer through the listenerPath fd");
        if (cs >= 0)
                close(cs);
        close(ls);
        unlink(path);
        rmdir(dir);

        _cleanup_error_ struct moat_error *err = NULL;
        is_int(moat_seccomp_send_listener("/nonexistent/moat.sock", 0, "{}", &err), -ENOENT,
               "connecting to a missing socket fails");
        contains(err ? err->msg : NULL, "'/nonexistent/moat.sock'", "error names the listener path");
        ok(moat_seccomp_process_state_json(NULL, 1, "not json") == NULL, "bad state JSON -> NULL");
}

/* ---- load without NNP and without CAP_SYS_ADMIN ---- */
static void test_load_eacces(void)
{
        struct moat_seccomp_rule rules[] = { { .names = names_getppid, .action = ERRNO_ACT } };
        struct moat_seccomp sc = { .default_action = SCMP_ACT_ALLOW, .syscalls = rules, .n_syscalls = 1 };
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *p = NULL;
        int pfd[2];

        if (moat_seccomp_build(&sc, &p, NULL) < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
                ok(0, "setup for the EACCES test");
                return;
        }
        pid_t pid = fork();
        if (pid == 0) {
                struct moat_error *e = NULL;
                cap_t c = cap_get_proc();
                cap_value_t v = CAP_SYS_ADMIN;
                cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_CLEAR);
                cap_set_proc(c);
                int r = moat_seccomp_load(p, NULL, &e);
                dprintf(pfd[1], "%d %s", r, e ? e->msg : "");
                _exit(0);
        }
        close(pfd[1]);
        char buf[512] = { 0 };
        ssize_t n = read(pfd[0], buf, sizeof(buf) - 1);
        (void)n;
        close(pfd[0]);
        waitpid(pid, NULL, 0);
        ok(strncmp(buf, "-13 ", 4) == 0, "load without NNP and CAP_SYS_ADMIN fails with EACCES");
        contains(buf, "CAP_SYS_ADMIN", "error explains CAP_SYS_ADMIN / noNewPrivileges");
}

int main(void)
{
        if (geteuid() != 0)
                return skip_all("needs root (seccomp notify, fork tests)");
        test_errno_rules();
        test_default_errno(false);
        test_default_errno(true);
        test_masked();
        test_kill();
        test_names();
        test_notify();
        test_send_listener();
        test_load_eacces();
        return done_testing();
}
