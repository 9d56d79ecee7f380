/* SPDX-License-Identifier: Apache-2.0 */
#include "linux/mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/path.h"
#include "core/util.h"

static bool force_legacy;
static int new_api_state; /* 0 unknown, 1 works, -1 missing */

void moat_mount_force_legacy(bool on)
{
        force_legacy = on;
}

bool moat_mount_new_api(void)
{
        return !force_legacy && new_api_state >= 0;
}

/* Marks the new API missing on ENOSYS; returns true when the caller should fall back. */
static bool new_api_missing(int e)
{
        if (e == ENOSYS) {
                new_api_state = -1;
                return true;
        }
        return false;
}

static uint64_t ms_to_attr(unsigned long ms)
{
        uint64_t a = 0;
        if (ms & MS_RDONLY)
                a |= MOUNT_ATTR_RDONLY;
        if (ms & MS_NOSUID)
                a |= MOUNT_ATTR_NOSUID;
        if (ms & MS_NODEV)
                a |= MOUNT_ATTR_NODEV;
        if (ms & MS_NOEXEC)
                a |= MOUNT_ATTR_NOEXEC;
        if (ms & MS_NODIRATIME)
                a |= MOUNT_ATTR_NODIRATIME;
        if (ms & MS_NOSYMFOLLOW)
                a |= MOUNT_ATTR_NOSYMFOLLOW;
        if (ms & MS_NOATIME)
                a |= MOUNT_ATTR_NOATIME;
        else if (ms & MS_STRICTATIME)
                a |= MOUNT_ATTR_STRICTATIME;
        /* MS_RELATIME is MOUNT_ATTR_RELATIME == 0 within the atime field. */
        return a;
}

static unsigned long attr_to_ms(uint64_t a)
{
        unsigned long ms = 0;
        if (a & MOUNT_ATTR_RDONLY)
                ms |= MS_RDONLY;
        if (a & MOUNT_ATTR_NOSUID)
                ms |= MS_NOSUID;
        if (a & MOUNT_ATTR_NODEV)
                ms |= MS_NODEV;
        if (a & MOUNT_ATTR_NOEXEC)
                ms |= MS_NOEXEC;
        if (a & MOUNT_ATTR_NODIRATIME)
                ms |= MS_NODIRATIME;
        if (a & MOUNT_ATTR_NOSYMFOLLOW)
                ms |= MS_NOSYMFOLLOW;
        if ((a & MOUNT_ATTR__ATIME) == MOUNT_ATTR_NOATIME)
                ms |= MS_NOATIME;
        else if ((a & MOUNT_ATTR__ATIME) == MOUNT_ATTR_STRICTATIME)
                ms |= MS_STRICTATIME;
        return ms;
}

#define MS_ATIME_MASK (MS_NOATIME | MS_STRICTATIME | MS_RELATIME)

/* After a legacy mount(2) on t->fd, an fd of the new mount's root. */
static int reopen_target(const struct moat_mnt_target *t)
{
        if (t->path)
                return path_open_in_root(t->rootfd, t->path, O_PATH, 0);
        return -EINVAL;
}

/* Feeds "a=b,c,context=\"x,y\"" to fsconfig, one key at a time. */
static int fsconfig_data(int fsfd, const char *data)
{
        if (!data || !*data)
                return 0;
        _cleanup_free_ char *buf = strdup(data);
        if (!buf)
                return -ENOMEM;
        char *p = buf;
        while (*p) {
                char *start = p;
                bool quoted = false;
                for (; *p; p++) {
                        if (*p == '"')
                                quoted = !quoted;
                        else if (*p == ',' && !quoted)
                                break;
                }
                if (*p)
                        *p++ = '\0';
                if (!*start)
                        continue;
                char *eq = strchr(start, '=');
                int r;
                if (eq) {
                        *eq = '\0';
                        r = fsconfig(fsfd, FSCONFIG_SET_STRING, start, eq + 1, 0);
                } else {
                        r = fsconfig(fsfd, FSCONFIG_SET_FLAG, start, NULL, 0);
                }
                if (r < 0)
                        return -errno;
        }
        return 0;
}

/* The fs_context log, for debug output when fsconfig fails. */
static void log_fs_context(int fsfd, const char *type)
{
        char buf[512];
        ssize_t n;
        while ((n = read(fsfd, buf, sizeof(buf) - 1)) > 0) {
                buf[n] = '\0';
                moat_debug("fs_context %s: %s", type, buf);
        }
}

static int attach(int mfd, int target_fd)
{
        if (move_mount(mfd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return -errno;
        return 0;
}

static int fs_new_api(const char *type, const char *source, unsigned long msflags, const char *data,
                      int target_fd)
{
        _cleanup_close_ int fsfd = fsopen(type, FSOPEN_CLOEXEC);
        if (fsfd < 0)
                return -errno;
        if (source && fsconfig(fsfd, FSCONFIG_SET_STRING, "source", source, 0) < 0)
                return -errno;
        static const struct {
                unsigned long ms;
                const char *key;
        } sb_flags[] = { { MS_SYNCHRONOUS, "sync" }, { MS_DIRSYNC, "dirsync" }, { MS_LAZYTIME, "lazytime" },
                         { MS_MANDLOCK, "mand" } };
        for (size_t i = 0; i < ARRAY_SIZE(sb_flags); i++)
                if ((msflags & sb_flags[i].ms) && fsconfig(fsfd, FSCONFIG_SET_FLAG, sb_flags[i].key, NULL, 0) < 0)
                        return -errno;
        int r = fsconfig_data(fsfd, data);
        if (r < 0) {
                log_fs_context(fsfd, type);
                return r;
        }
        if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
                r = -errno;
                log_fs_context(fsfd, type);
                return r;
        }
        _cleanup_close_ int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, (unsigned int)ms_to_attr(msflags));
        if (mfd < 0)
                return -errno;
        r = attach(mfd, target_fd);
        if (r < 0)
                return r;
        return TAKE_FD(mfd);
}

int moat_mnt_fs(const char *type, const char *source, unsigned long msflags, const char *data,
                const struct moat_mnt_target *t)
{
        if (moat_mount_new_api()) {
                int r = fs_new_api(type, source, msflags, data, t->fd);
                if (r >= 0) {
                        new_api_state = 1;
                        return r;
                }
                if (!new_api_missing(-r))
                        return r;
        }
        char p[32];
        unsigned long f = msflags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NODIRATIME | MS_ATIME_MASK | MS_NOSYMFOLLOW |
                                     MS_SYNCHRONOUS | MS_DIRSYNC | MS_LAZYTIME | MS_MANDLOCK);
        if (mount(source ? source : type, fd_path(t->fd, p), type, f, data) < 0)
                return -errno;
        return reopen_target(t);
}

int moat_mnt_bind(int srcfd, bool recursive, const struct moat_mnt_target *t)
{
        if (moat_mount_new_api()) {
                int mfd = open_tree(srcfd, "",
                                    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
                if (mfd >= 0) {
                        new_api_state = 1;
                        int r = attach(mfd, t->fd);
                        if (r < 0) {
                                close(mfd);
                                return r;
                        }
                        return mfd;
                }
                if (!new_api_missing(errno))
                        return -errno;
        }
        char s[32], p[32];
        if (mount(fd_path(srcfd, s), fd_path(t->fd, p), NULL, MS_BIND | (recursive ? MS_REC : 0), NULL) < 0)
                return -errno;
        return reopen_target(t);
}

static int remount_one(const char *path, unsigned long set, unsigned long clr)
{
        struct statvfs sv;
        if (statvfs(path, &sv) < 0)
                return -errno;
        unsigned long cur = 0;
        if (sv.f_flag & ST_RDONLY)
                cur |= MS_RDONLY;
        if (sv.f_flag & ST_NOSUID)
                cur |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV)
                cur |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC)
                cur |= MS_NOEXEC;
        if (sv.f_flag & ST_NODIRATIME)
                cur |= MS_NODIRATIME;
        if (sv.f_flag & 0x2000) /* ST_NOSYMFOLLOW */
                cur |= MS_NOSYMFOLLOW;
        if (sv.f_flag & ST_NOATIME)
                cur |= MS_NOATIME;
        else if (sv.f_flag & ST_RELATIME)
                cur |= MS_RELATIME;
        else
                cur |= MS_STRICTATIME;
        if (set & MS_ATIME_MASK)
                cur &= ~(unsigned long)MS_ATIME_MASK;
        unsigned long f = (cur & ~clr) | set;
        if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | f, NULL) < 0)
                return -errno;
        return 0;
}

int moat_mnt_setattr(int mntfd, bool recursive, unsigned long set, unsigned long clr)
{
        if (moat_mount_new_api()) {
                struct mount_attr a = { .attr_set = ms_to_attr(set), .attr_clr = ms_to_attr(clr) };
                if (set & MS_ATIME_MASK)
                        a.attr_clr |= MOUNT_ATTR__ATIME;
                int r = mount_setattr(mntfd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof(a));
                if (r == 0) {
                        new_api_state = 1;
                        return 0;
                }
                if (!new_api_missing(errno))
                        return -errno;
        }
        char p[32];
        int r = remount_one(fd_path(mntfd, p), set, clr);
        if (r < 0 || !recursive)
                return r;
        _cleanup_free_ char *self = moat_fd_host_path(mntfd);
        if (!self)
                return -errno ? -errno : -ENOMEM;
        _cleanup_strv_ char **below = NULL;
        r = moat_mountinfo_below(self, false, &below);
        if (r < 0)
                return r;
        for (size_t i = 0; below && below[i]; i++) {
                _cleanup_close_ int fd = open(below[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        continue; /* overmounted or gone */
                r = remount_one(fd_path(fd, p), set, clr);
                if (r < 0)
                        return r;
        }
        return 0;
}

int moat_mnt_setattr_raw(int mntfd, bool recursive, uint64_t attr_set, uint64_t attr_clr)
{
        if (!attr_set && !attr_clr)
                return 0;
        if (moat_mount_new_api()) {
                struct mount_attr a = { .attr_set = attr_set, .attr_clr = attr_clr };
                if (mount_setattr(mntfd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof(a)) == 0)
                        return 0;
                if (!new_api_missing(errno))
                        return -errno;
        }
        if (attr_set & MOUNT_ATTR_IDMAP)
                return -EOPNOTSUPP;
        return moat_mnt_setattr(mntfd, recursive, attr_to_ms(attr_set), attr_to_ms(attr_clr));
}

int moat_mnt_propagation(int mntfd, unsigned long prop)
{
        if (!prop)
                return 0;
        if (moat_mount_new_api()) {
                struct mount_attr a = { .propagation = prop & (MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE) };
                if (mount_setattr(mntfd, "", AT_EMPTY_PATH | ((prop & MS_REC) ? AT_RECURSIVE : 0), &a, sizeof(a)) == 0)
                        return 0;
                if (!new_api_missing(errno))
                        return -errno;
        }
        char p[32];
        if (mount(NULL, fd_path(mntfd, p), NULL, prop, NULL) < 0)
                return -errno;
        return 0;
}

char *moat_fd_host_path(int fd)
{
        char p[32], buf[PATH_MAX];
        ssize_t n = readlink(fd_path(fd, p), buf, sizeof(buf) - 1);
        if (n < 0)
                return NULL;
        buf[n] = '\0';
        return strdup(buf);
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
        char *w = s;
        for (char *r = s; *r; r++) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
                    r[3] <= '7') {
                        *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
                        r += 3;
                } else {
                        *w++ = *r;
                }
        }
        *w = '\0';
}

int moat_mountinfo_below(const char *path, bool include_self, char ***out)
{
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = read_file_at(AT_FDCWD, "/proc/self/mountinfo", &data, &len);
        if (r < 0)
                return r;
        size_t plen = strlen(path);
        while (plen > 1 && path[plen - 1] == '/')
                plen--;
        bool root = plen == 1 && path[0] == '/';
        _cleanup_strv_ char **v = calloc(1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        char *save = NULL;
        for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                /* id parent maj:min root mountpoint ... */
                char *f = line;
                for (int i = 0; i < 4 && f; i++) {
                        f = strchr(f, ' ');
                        if (f)
                                f++;
                }
                if (!f)
                        continue;
                char *end = strchr(f, ' ');
                if (end)
                        *end = '\0';
                unescape(f);
                bool match;
                if (root)
                        match = include_self || strcmp(f, "/") != 0;
                else
                        match = strncmp(f, path, plen) == 0 &&
                                (f[plen] == '/' ? f[plen + 1] != '\0' : (f[plen] == '\0' && include_self));
                if (match && (r = strv_push(&v, f)) < 0)
                        return r;
        }
        *out = TAKE_PTR(v);
        return 0;
}
