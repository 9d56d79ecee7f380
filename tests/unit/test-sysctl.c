/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "linux/sysctl.h"
#include "tap.h"

/* The checks that need new namespaces run in a child; it reports each one as
 * a line "<0|1> <description>" on a pipe and the parent turns them into TAP. */
static FILE *report;

static void child_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void child_ok(int cond, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(report, "%d ", cond ? 1 : 0);
        vfprintf(report, fmt, ap);
        fputc('\n', report);
        fflush(report);
        va_end(ap);
}

static char *read_sysctl(const char *path)
{
        char *s = NULL;
        if (read_file_at(AT_FDCWD, path, &s, NULL) < 0)
                return NULL;
        s[strcspn(s, "\n")] = '\0';
        return s;
}

static void in_child(void)
{
        if (unshare(CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC) < 0) {
                fprintf(report, "skip cannot unshare net+uts+ipc: %s\n", strerror(errno));
                return;
        }
        struct moat_kv kv[] = {
                { "net.ipv4.ip_forward", "1" },
                { "kernel.shm_rmid_forced", "1" },
        };
        struct moat_spec s;
        memset(&s, 0, sizeof(s));
        s.linux_.sysctl = kv;
        s.linux_.n_sysctl = 2;
        s.hostname = "moat-test-host";
        s.domainname = "moat.example";

        struct moat_error *err = NULL;
        /* Both directions, so the read-back proves the write took effect. */
        int r = moat_sysctl_write(-1, "net.ipv4.ip_forward", "0", &err);
        _cleanup_free_ char *zero = read_sysctl("/proc/sys/net/ipv4/ip_forward");
        child_ok(r == 0 && zero && strcmp(zero, "0") == 0, "net.ipv4.ip_forward=0 reads back 0 (got %s)",
                 zero ? zero : "nothing");
        moat_error_free(err);
        err = NULL;
        r = moat_sysctl_apply(&s, &err);
        child_ok(r == 0, "moat_sysctl_apply: %s", err ? err->msg : "ok");
        moat_error_free(err);
        err = NULL;
        _cleanup_free_ char *fwd = read_sysctl("/proc/sys/net/ipv4/ip_forward");
        child_ok(fwd && strcmp(fwd, "1") == 0, "net.ipv4.ip_forward reads back 1 in the new netns (got %s)",
                 fwd ? fwd : "nothing");
        _cleanup_free_ char *shm = read_sysctl("/proc/sys/kernel/shm_rmid_forced");
        child_ok(shm && strcmp(shm, "1") == 0, "kernel.shm_rmid_forced reads back 1 in the new ipc ns (got %s)",
                 shm ? shm : "nothing");

        r = moat_set_hostname(&s, &err);
        child_ok(r == 0, "moat_set_hostname: %s", err ? err->msg : "ok");
        moat_error_free(err);
        err = NULL;
        struct utsname u;
        uname(&u);
        child_ok(strcmp(u.nodename, "moat-test-host") == 0, "hostname is '%s'", u.nodename);
        child_ok(strcmp(u.domainname, "moat.example") == 0, "domainname is '%s'", u.domainname);

        r = moat_sysctl_write(-1, "net.ipv4.moat_no_such_key", "5", &err);
        child_ok(r == -ENOENT, "an unknown key gives -ENOENT (%d)", r);
        child_ok(err && strstr(err->msg, "'net.ipv4.moat_no_such_key'") && strstr(err->msg, "'5'"),
                 "the error names the key and the value: %s", err ? err->msg : "(none)");
        moat_error_free(err);
        err = NULL;

        r = moat_sysctl_write(-1, "net.ipv4.ip_forward", "banana", &err);
        child_ok(r < 0 && err && strstr(err->msg, "'banana'"), "a bad value is refused by the kernel: %s",
                 err ? err->msg : "(none)");
        moat_error_free(err);
        err = NULL;

        int tmp = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = moat_sysctl_write(tmp, "net.ipv4.ip_forward", "1", &err);
        child_ok(r == -EXDEV, "a /proc/sys fd that is not procfs is refused (%d)", r);
        moat_error_free(err);
        close(tmp);
}

int main(void)
{
        /* Key validation needs no privilege. */
        const char *bad[] = { "../x", "net/ipv4", "a..b", "", ".net", "net.", "net/../../etc/passwd", ".." };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct moat_error *err = NULL;
                int r = moat_sysctl_write(-1, bad[i], "1", &err);
                is_int(r, -EINVAL, "key '%s' refused", bad[i]);
                if (*bad[i])
                        contains(err ? err->msg : NULL, bad[i], "the message names '%s'", bad[i]);
                moat_error_free(err);
        }
        ok(moat_sysctl_key_valid("net.ipv4.ip_forward") && moat_sysctl_key_valid("kernel.shm_rmid_forced") &&
           moat_sysctl_key_valid("fs.mqueue.msg_max"), "good keys are valid");

        struct moat_spec empty;
        memset(&empty, 0, sizeof(empty));
        is_int(moat_sysctl_apply(&empty, NULL), 0, "no sysctls: nothing to do");

        if (geteuid() != 0) {
                skip("not root: cannot unshare net+uts+ipc");
                return done_testing();
        }
        _cleanup_free_ char *host_before = read_sysctl("/proc/sys/net/ipv4/ip_forward");
        char host_name[256];
        gethostname(host_name, sizeof(host_name));

        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return skip_all("pipe");
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                report = fdopen(p[1], "w");
                in_child();
                fclose(report);
                _exit(0);
        }
        close(p[1]);
        FILE *in = fdopen(p[0], "r");
        char line[1024];
        int n = 0;
        while (in && fgets(line, sizeof(line), in)) {
                line[strcspn(line, "\n")] = '\0';
                if (strncmp(line, "skip ", 5) == 0) {
                        skip(line + 5);
                        n++;
                        continue;
                }
                ok(line[0] == '1', "%s", line + 2);
                n++;
        }
        if (in)
                fclose(in);
        int st = 0;
        waitpid(pid, &st, 0);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && n > 0, "namespace child ran and reported %d checks", n);

        _cleanup_free_ char *host_after = read_sysctl("/proc/sys/net/ipv4/ip_forward");
        is_str(host_after, host_before, "the host's net.ipv4.ip_forward is untouched");
        char host_now[256];
        gethostname(host_now, sizeof(host_now));
        is_str(host_now, host_name, "the host's hostname is untouched");
        return done_testing();
}
