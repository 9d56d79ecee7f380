/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for test-rootfs*.c and test-mounts*.c: a throwaway rootfs, a child
 * in its own mount (and pid) namespace that reports TAP results over a pipe. */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util.h"
#include "linux/mounts.h"
#include "oci/spec.h"
#include "tap.h"

static int report_fd = -1;

/* In the child: one result line to the parent. */
__attribute__((format(printf, 2, 3))) static bool report(bool cond, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        for (char *p = msg; *p; p++)
                if (*p == '\n')
                        *p = ' ';
        dprintf(report_fd, "%c%s\n", cond ? 'P' : 'F', msg);
        return cond;
}
#define report_int(got, want, fmt, ...)                                                           \
        ({                                                                                         \
                long long _g = (long long)(got), _w = (long long)(want);                           \
                report(_g == _w, fmt " (got %lld, want %lld)", ##__VA_ARGS__, _g, _w);             \
        })

#define report_has(hay, needle, fmt, ...)                                                           \
        ({                                                                                         \
                const char *_h = (hay), *_n = (needle);                                            \
                report(_h && strstr(_h, _n), fmt " ('%s' ~ '%s')", ##__VA_ARGS__, _h ? _h : "(null)", _n); \
        })

/* Host mount points, to compare before/after a run. */
static __attribute__((unused)) char **host_mounts(void)
{
        char **v = NULL;
        moat_mountinfo_below("/", true, &v);
        return v;
}

/* Mount points that appeared on the host since `before` and are ours: under
 * /tmp/moat-* or on one of the paths a container touches.  Other helpers may
 * mount things concurrently; those are only listed. */
static __attribute__((unused)) int host_leaks(char **before)
{
        static const char *const watched[] = { "/", "/etc", "/proc", "/sys", "/dev", "/dev/pts", "/dev/null",
                                               "/dev/console", "/sys/fs/cgroup", "/proc/sys" };
        char **after = host_mounts();
        int leaks = 0;
        for (size_t i = 0; after && after[i]; i++) {
                if (strv_contains(before, after[i]))
                        continue;
                bool ours = strncmp(after[i], "/tmp/moat-", 10) == 0;
                for (size_t j = 0; j < ARRAY_SIZE(watched); j++)
                        ours |= strcmp(after[i], watched[j]) == 0;
                printf("# new host mount point %s%s\n", after[i], ours ? " (LEAK)" : " (not ours)");
                leaks += ours;
        }
        strv_free(after);
        return leaks;
}

static __attribute__((unused)) int run_child(const char *name, bool newpid, void (*fn)(void *), void *arg)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                report_fd = p[1];
                if (unshare(CLONE_NEWNS | (newpid ? CLONE_NEWPID : 0)) < 0) {
                        report(false, "%s: unshare: %s", name, strerror(errno));
                        _exit(1);
                }
                /* Nothing we do may reach the host: private from here on. */
                if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
                        report(false, "%s: rslave: %s", name, strerror(errno));
                        _exit(1);
                }
                if (newpid) {
                        pid_t c = fork();
                        if (c < 0)
                                _exit(1);
                        if (c == 0) {
                                fn(arg);
                                _exit(0);
                        }
                        int st;
                        while (waitpid(c, &st, 0) < 0 && errno == EINTR)
                                ;
                        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
                }
                fn(arg);
                _exit(0);
        }
        close(p[1]);
        if (pid < 0) {
                close(p[0]);
                return -1;
        }
        FILE *f = fdopen(p[0], "r");
        char line[1024];
        while (f && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                if (line[0] == '#')
                        printf("#   %s\n", line + 1);
                else
                        ok(line[0] == 'P', "%s: %s", name, line + 1);
        }
        if (f)
                fclose(f);
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        is_int(code, 0, "%s: child exited cleanly", name);
        return code;
}

static __attribute__((unused)) void put_file(const char *dir, const char *name, const char *content)
{
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
                write_all(fd, content, strlen(content));
                close(fd);
        }
}

static __attribute__((unused)) void put_dir(const char *dir, const char *name)
{
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        mkdir_p(p, 0755);
}

static __attribute__((unused)) void put_link(const char *dir, const char *name, const char *target)
{
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        symlink(target, p);
}

static __attribute__((unused)) char *read_str(const char *path)
{
        char *s = NULL;
        size_t n;
        if (read_file_at(AT_FDCWD, path, &s, &n) < 0)
                return NULL;
        return s;
}

/* A small rootfs: /bin/busybox, the usual dirs, a marker.  NULL (and a reason) if busybox is missing. */
static __attribute__((unused)) char *make_rootfs(const char **why)
{
        if (access("/bin/busybox", X_OK) < 0) {
                *why = "no /bin/busybox (install busybox-static)";
                return NULL;
        }
        char tmpl[] = "/tmp/moat-rootfs-XXXXXX";
        if (!mkdtemp(tmpl)) {
                *why = "mkdtemp failed";
                return NULL;
        }
        char *root = strdup(tmpl);
        const char *dirs[] = { "bin", "proc", "sys", "dev", "etc", "tmp", "run", "mnt", "data/sub" };
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
                put_dir(root, dirs[i]);
        char cmd[4096];
        snprintf(cmd, sizeof(cmd), "cp /bin/busybox %s/bin/busybox && ln -s busybox %s/bin/sh", root, root);
        if (system(cmd) != 0) {
                *why = "cannot copy busybox";
                return NULL;
        }
        put_file(root, ".moat-marker", "rootfs-marker");
        put_file(root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
        put_file(root, "data/keep", "kept");
        put_file(root, "data/sub/deep", "deep");
        put_link(root, "data/link", "keep");
        return root;
}

static __attribute__((unused)) void rm_tree(const char *path)
{
        if (!path || strncmp(path, "/tmp/moat-", 10) != 0)
                return;
        rm_rf_at(AT_FDCWD, path);
}

static __attribute__((unused)) char *xstrdup(const char *s)
{
        return s ? strdup(s) : NULL;
}

static __attribute__((unused)) char **strv_new(const char *const *in)
{
        char **v = NULL;
        for (size_t i = 0; in && in[i]; i++)
                strv_push(&v, in[i]);
        return v;
}

static __attribute__((unused)) struct moat_mount mnt(const char *dest, const char *type, const char *source, unsigned long flags,
                             const char *data)
{
        struct moat_mount m = { .destination = xstrdup(dest), .type = xstrdup(type), .source = xstrdup(source),
                                .flags = flags, .data = xstrdup(data) };
        m.bind = (flags & MS_BIND) != 0;
        return m;
}

static __attribute__((unused)) bool is_fs(const char *path, unsigned long magic)
{
        struct statfs sf;
        return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == magic;
}
