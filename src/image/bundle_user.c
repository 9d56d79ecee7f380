/* SPDX-License-Identifier: Apache-2.0 */
/* --user / the image's User, resolved against the image's own /etc/passwd and
 * /etc/group.  The rootfs is untrusted content: the files are opened inside the
 * root (path_open_in_root: a symlink, absolute or "../..", resolves within it),
 * only regular files are read (never a fifo or a device node: the O_PATH fd is
 * checked before it is reopened for reading), and at most 16 MiB of each. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/cleanup.h"
#include "core/path.h"
#include "core/util.h"
#include "image/bundle.h"

#define DB_MAX ((size_t)16 << 20)

/* The file's text, or *out = NULL when it is not there (or not a regular file inside the root). */
static int read_db(int rootfd, const char *path, char **out, struct moat_error **err)
{
        *out = NULL;
        _cleanup_close_ int pfd = path_open_in_root(rootfd, path, O_PATH | O_CLOEXEC, 0);
        if (pfd == -ENOENT || pfd == -ENOTDIR || pfd == -ELOOP || pfd == -EXDEV)
                return 0;
        if (pfd < 0)
                return moat_error_set(err, pfd, "cannot open the image's '%s'", path);
        struct stat st;
        if (fstat(pfd, &st) < 0)
                return moat_error_set(err, errno, "cannot stat the image's '%s'", path);
        if (!S_ISREG(st.st_mode))
                return 0;
        if ((size_t)st.st_size > DB_MAX)
                return moat_error_input(err, -EFBIG, "the image's '%s' is too large (%lld bytes)", path,
                                        (long long)st.st_size);
        char buf[32];
        _cleanup_close_ int fd = open(fd_path(pfd, buf), O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot read the image's '%s'", path);
        size_t len = 0;
        int r = read_fd_all(fd, out, &len);
        if (r < 0)
                return moat_error_set(err, r, "cannot read the image's '%s'", path);
        if (len > DB_MAX) {
                free(*out);
                *out = NULL;
                return moat_error_input(err, -EFBIG, "the image's '%s' is too large", path);
        }
        return 0;
}

/* Splits a passwd/group line in place into at most n fields; returns the count. */
static size_t split_fields(char *line, char **f, size_t n)
{
        size_t i = 0;
        f[i++] = line;
        for (char *p = line; *p && i < n; p++)
                if (*p == ':') {
                        *p = '\0';
                        f[i++] = p + 1;
                }
        return i;
}

static bool is_number(const char *s)
{
        if (!*s)
                return false;
        for (const char *p = s; *p; p++)
                if (*p < '0' || *p > '9')
                        return false;
        return true;
}

static int parse_id(const char *s, uint32_t *out)
{
        uint64_t v;
        if (!is_number(s) || parse_u64(s, &v) < 0 || v >= UINT32_MAX)
                return -EINVAL;
        *out = (uint32_t)v;
        return 0;
}

struct pw {
        bool found;
        char *name;
        uint32_t uid, gid;
        char *home;
};

/* By name (name != NULL) or by uid. */
static int passwd_find(char *db, const char *name, uint32_t uid, struct pw *out)
{
        *out = (struct pw){ 0 };
        if (!db)
                return 0;
        char *save = NULL;
        for (char *line = strtok_r(db, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *f[7];
                size_t nf = line[0] == '#' ? 0 : split_fields(line, f, 7);
                if (nf < 4)
                        continue;
                uint32_t u, g;
                if (parse_id(f[2], &u) < 0 || parse_id(f[3], &g) < 0)
                        continue;
                if (name ? strcmp(f[0], name) != 0 : u != uid)
                        continue;
                out->found = true;
                out->name = strdup(f[0]);
                out->home = nf >= 6 && *f[5] ? strdup(f[5]) : NULL;
                out->uid = u;
                out->gid = g;
                if (!out->name)
                        return -ENOMEM;
                return 0;
        }
        return 0;
}

static bool member_of(char *members, const char *user)
{
        char *save = NULL;
        for (char *m = strtok_r(members, ",", &save); m; m = strtok_r(NULL, ",", &save))
                if (strcmp(m, user) == 0)
                        return true;
        return false;
}

/* group: the gid of group name (when name), and the groups listing user (when user). */
static int group_scan(const char *db0, const char *name, bool *found, uint32_t *gid, const char *user,
                      uint32_t primary, struct moat_run_user *u)
{
        if (found)
                *found = false;
        if (!db0)
                return 0;
        _cleanup_free_ char *db = strdup(db0);
        if (!db)
                return -ENOMEM;
        char *save = NULL;
        for (char *line = strtok_r(db, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *f[4];
                uint32_t g;
                size_t nf = line[0] == '#' ? 0 : split_fields(line, f, 4);
                if (nf < 3 || parse_id(f[2], &g) < 0)
                        continue;
                if (name && found && !*found && strcmp(f[0], name) == 0) {
                        *found = true;
                        *gid = g;
                }
                if (user && u && g != primary && nf >= 4 && member_of(f[3], user)) {
                        bool dup = false;
                        for (size_t i = 0; i < u->n_additional_gids; i++)
                                dup |= u->additional_gids[i] == g;
                        if (dup)
                                continue;
                        gid_t *v = reallocarray(u->additional_gids, u->n_additional_gids + 1, sizeof(gid_t));
                        if (!v)
                                return -ENOMEM;
                        v[u->n_additional_gids++] = g;
                        u->additional_gids = v;
                }
        }
        return 0;
}

void moat_run_user_clear(struct moat_run_user *u)
{
        free(u->additional_gids);
        free(u->home);
        *u = (struct moat_run_user){ 0 };
}

int moat_run_resolve_user(int rootfd, const char *user, struct moat_run_user *out, struct moat_error **err)
{
        *out = (struct moat_run_user){ 0 };
        const char *spec = user && *user ? user : "0";
        _cleanup_free_ char *uname = strdup(spec);
        if (!uname)
                return -ENOMEM;
        char *gname = strchr(uname, ':');
        if (gname)
                *gname++ = '\0';
        if (!*uname || (gname && !*gname) || (gname && strchr(gname, ':')))
                return moat_error_input(err, -EINVAL, "user '%s': expected name|uid[:group|gid]", spec);

        _cleanup_free_ char *passwd = NULL, *group = NULL;
        int r = read_db(rootfd, "/etc/passwd", &passwd, err);
        if (r < 0)
                return r;
        r = read_db(rootfd, "/etc/group", &group, err);
        if (r < 0)
                return r;

        struct pw pw = { 0 };
        uint32_t uid = 0;
        if (is_number(uname)) {
                if (parse_id(uname, &uid) < 0)
                        return moat_error_input(err, -EINVAL, "user '%s': uid '%s' is out of range", spec, uname);
                r = passwd_find(passwd, NULL, uid, &pw);
        } else {
                _cleanup_free_ char *copy = passwd ? strdup(passwd) : NULL;
                if (passwd && !copy)
                        return -ENOMEM;
                r = passwd_find(copy, uname, 0, &pw);
                if (r >= 0 && !pw.found)
                        return moat_error_input(err, -ENOENT, "user '%s' not found in the image's /etc/passwd%s",
                                                uname, passwd ? "" : " (the image has none)");
                uid = pw.uid;
        }
        if (r < 0) {
                free(pw.name);
                free(pw.home);
                return r;
        }
        out->uid = uid;
        out->gid = pw.found ? pw.gid : 0;
        out->home = TAKE_PTR(pw.home);
        if (gname) {
                uint32_t g = 0;
                if (is_number(gname)) {
                        if (parse_id(gname, &g) < 0) {
                                free(pw.name);
                                moat_run_user_clear(out);
                                return moat_error_input(err, -EINVAL, "user '%s': gid '%s' is out of range", spec,
                                                        gname);
                        }
                } else {
                        bool found = false;
                        r = group_scan(group, gname, &found, &g, NULL, 0, NULL);
                        if (r >= 0 && !found) {
                                free(pw.name);
                                moat_run_user_clear(out);
                                return moat_error_input(err, -ENOENT, "group '%s' not found in the image's /etc/group%s",
                                                        gname, group ? "" : " (the image has none)");
                        }
                }
                out->gid = g;
        }
        if (r >= 0 && pw.found)
                r = group_scan(group, NULL, NULL, NULL, pw.name, out->gid, out);
        free(pw.name);
        if (r < 0) {
                moat_run_user_clear(out);
                return moat_error_set(err, r, "resolving user '%s'", spec);
        }
        return 0;
}
