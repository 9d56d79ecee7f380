/* SPDX-License-Identifier: Apache-2.0 */
#include "linux/sysctl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"

bool moat_sysctl_key_valid(const char *key)
{
        if (!key || !*key || strchr(key, '/') || strstr(key, ".."))
                return false;
        if (key[0] == '.' || key[strlen(key) - 1] == '.')
                return false;
        return true;
}

static bool fd_on_procfs(int fd)
{
        struct statfs sf;
        return fstatfs(fd, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
}

/* Without openat2: one component at a time, never following a symlink.  The
 * key is already known to hold no "/" and no "..". */
static int open_beneath_walk(int dirfd, const char *rel)
{
        _cleanup_free_ char *copy = strdup(rel);
        if (!copy)
                return -ENOMEM;
        _cleanup_close_ int cur = -EBADF;
        char *save = NULL, *part = strtok_r(copy, "/", &save);
        while (part) {
                char *next = strtok_r(NULL, "/", &save);
                int base = cur >= 0 ? cur : dirfd;
                int fd = next ? openat(base, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                              : openat(base, part, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                closep(&cur);
                cur = fd;
                part = next;
        }
        return TAKE_FD(cur);
}

static int open_beneath(int dirfd, const char *rel)
{
        struct open_how how = {
                .flags = O_WRONLY | O_NOCTTY | O_CLOEXEC,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
        if (fd >= 0)
                return fd;
        if (errno != ENOSYS && errno != E2BIG)
                return -errno;
        return open_beneath_walk(dirfd, rel);
}

static int open_proc_sys(struct moat_error **err)
{
        int fd = open("/proc/sys", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot open '/proc/sys'");
        if (!fd_on_procfs(fd)) {
                close(fd);
                return moat_error_input(err, EXDEV, "'/proc/sys' is not on procfs: is /proc mounted?");
        }
        return fd;
}

int moat_sysctl_write(int proc_sys_fd, const char *key, const char *value, struct moat_error **err)
{
        if (!moat_sysctl_key_valid(key))
                return moat_error_input(err, EINVAL, "sysctl '%s': invalid key (want dotted names like 'net.ipv4.ip_forward')",
                                        key ? key : "");
        _cleanup_close_ int own = -EBADF;
        if (proc_sys_fd < 0) {
                own = open_proc_sys(err);
                if (own < 0)
                        return own;
                proc_sys_fd = own;
        } else if (!fd_on_procfs(proc_sys_fd)) {
                return moat_error_input(err, EXDEV, "sysctl '%s': the /proc/sys fd is not on procfs", key);
        }
        _cleanup_free_ char *rel = strdup(key);
        if (!rel)
                return moat_error_set(err, ENOMEM, "sysctl '%s'", key);
        for (char *p = rel; *p; p++)
                if (*p == '.')
                        *p = '/';
        _cleanup_close_ int fd = open_beneath(proc_sys_fd, rel);
        if (fd < 0)
                return moat_error_set(err, fd, "cannot set sysctl '%s' to '%s': cannot open '/proc/sys/%s'", key,
                                      value, rel);
        if (!fd_on_procfs(fd))
                return moat_error_input(err, EXDEV, "cannot set sysctl '%s' to '%s': '/proc/sys/%s' is not on procfs",
                                        key, value, rel);
        size_t len = strlen(value);
        ssize_t n;
        do
                n = write(fd, value, len);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return moat_error_set(err, errno, "cannot set sysctl '%s' to '%s'", key, value);
        if ((size_t)n != len)
                return moat_error_input(err, EIO, "cannot set sysctl '%s' to '%s': short write", key, value);
        moat_debug("sysctl %s = %s", key, value);
        return 0;
}

int moat_sysctl_apply(const struct moat_spec *s, struct moat_error **err)
{
        if (s->linux_.n_sysctl == 0)
                return 0;
        _cleanup_close_ int dir = open_proc_sys(err);
        if (dir < 0)
                return dir;
        for (size_t i = 0; i < s->linux_.n_sysctl; i++) {
                const struct moat_kv *kv = &s->linux_.sysctl[i];
                int r = moat_sysctl_write(dir, kv->key, kv->value ? kv->value : "", err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int moat_set_hostname(const struct moat_spec *s, struct moat_error **err)
{
        if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
                return moat_error_set(err, errno, "cannot set the hostname to '%s'", s->hostname);
        if (s->domainname && setdomainname(s->domainname, strlen(s->domainname)) < 0)
                return moat_error_set(err, errno, "cannot set the domainname to '%s'", s->domainname);
        return 0;
}
