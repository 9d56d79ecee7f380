/* SPDX-License-Identifier: Apache-2.0 */
/* cgroup file helpers and the v1 <-> v2 value conversions. */
#include "cgroup/internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"

int cg_write(int dirfd, const char *file, const char *value, const char *field, struct moat_error **err)
{
        int r = write_string_at(dirfd, file, value);
        if (r < 0)
                return moat_error_set(err, r, "cannot set '%s' to '%s' (%s)", field, value, file);
        return 0;
}

int cg_writef(int dirfd, const char *file, const char *field, struct moat_error **err, const char *fmt, ...)
{
        _cleanup_free_ char *v = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&v, fmt, ap);
        va_end(ap);
        if (n < 0)
                return moat_error_set(err, ENOMEM, "setting '%s'", field);
        return cg_write(dirfd, file, v, field, err);
}

bool cg_has_file(int dirfd, const char *file)
{
        return faccessat(dirfd, file, F_OK, 0) == 0;
}

int cg_read_str(int dirfd, const char *file, char **out)
{
        char *s = NULL;
        size_t len = 0;
        int r = read_file_at(dirfd, file, &s, &len);
        if (r < 0)
                return r;
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
                s[--len] = '\0';
        *out = s;
        return 0;
}

int cg_read_u64(int dirfd, const char *file, uint64_t *out)
{
        _cleanup_free_ char *s = NULL;
        int r = cg_read_str(dirfd, file, &s);
        if (r < 0)
                return r;
        if (STREQ(s, "max")) {
                *out = UINT64_MAX;
                return 0;
        }
        return parse_u64(s, out);
}

int cg_read_keyed(int dirfd, const char *file, const char *key, uint64_t *out)
{
        _cleanup_free_ char *s = NULL;
        size_t kl = strlen(key);
        int r = read_file_at(dirfd, file, &s, NULL);
        if (r < 0)
                return r;
        for (char *line = s; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
                        if (STREQ(line + kl + 1, "max")) {
                                *out = UINT64_MAX;
                                return 0;
                        }
                        return parse_u64(line + kl + 1, out);
                }
                line = nl ? nl + 1 : NULL;
        }
        return -ENOENT;
}

static int push_pid(pid_t **pids, size_t *n, pid_t p)
{
        for (size_t i = 0; i < *n; i++)
                if ((*pids)[i] == p)
                        return 0;
        pid_t *np = realloc(*pids, (*n + 1) * sizeof(pid_t));
        if (!np)
                return -ENOMEM;
        np[(*n)++] = p;
        *pids = np;
        return 0;
}

static int procs_rec(int dirfd, pid_t **pids, size_t *n, int depth)
{
        _cleanup_free_ char *s = NULL;
        int r;
        if (depth > 64)
                return -ELOOP;
        r = read_file_at(dirfd, "cgroup.procs", &s, NULL);
        if (r < 0)
                return r;
        for (char *line = s; line && *line;) {
                char *nl = strchr(line, '\n');
                int p;
                if (nl)
                        *nl = '\0';
                if (parse_int(line, &p) == 0 && p > 0 && (r = push_pid(pids, n, p)) < 0)
                        return r;
                line = nl ? nl + 1 : NULL;
        }
        int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return -errno;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_type != DT_DIR || STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
                        continue;
                _cleanup_close_ int cfd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (cfd < 0)
                        continue; /* removed meanwhile */
                r = procs_rec(cfd, pids, n, depth + 1);
                if (r < 0 && r != -ENOENT && r != -ENODEV)
                        return r;
        }
        return 0;
}

int cg_read_procs_recursive(int dirfd, pid_t **pids, size_t *n)
{
        pid_t *p = NULL;
        size_t cnt = 0;
        int r = procs_rec(dirfd, &p, &cnt, 0);
        if (r < 0) {
                free(p);
                return r;
        }
        *pids = p;
        *n = cnt;
        return 0;
}

uint64_t cg_shares_to_weight(uint64_t shares)
{
        if (shares == 0)
                return 0;
        if (shares < 2)
                shares = 2;
        if (shares > 262144)
                shares = 262144;
        return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t cg_blkio_to_io_weight(uint64_t w)
{
        if (w == 0)
                return 0;
        if (w < 10)
                w = 10;
        if (w > 1000)
                w = 1000;
        return 1 + (w - 10) * 9999 / 990;
}

int cg_swap_v2(int64_t limit, bool has_limit, int64_t swap, int64_t *out, bool *skip,
               struct moat_error **err)
{
        *skip = false;
        if (swap == -1) {
                *out = -1;
                return 0;
        }
        if (swap == 0) {
                *skip = true;
                return 0;
        }
        if (!has_limit || limit == 0 || limit == -1)
                return moat_error_input(err, EINVAL,
                                        "'memory.swap' %lld: a swap limit needs a memory limit on cgroup v2",
                                        (long long)swap);
        if (limit > swap)
                return moat_error_input(err, EINVAL,
                                        "'memory.swap' %lld must be >= 'memory.limit' %lld (swap counts memory plus swap)",
                                        (long long)swap, (long long)limit);
        *out = swap - limit;
        return 0;
}

/* "2MB" -> 2048 (kB), as the cgroup file names spell the sizes. */
static bool page_size_kb(const char *s, unsigned long long *kb)
{
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || !isdigit((unsigned char)*s))
                return false;
        if (STREQ(end, "KB"))
                *kb = v;
        else if (STREQ(end, "MB"))
                *kb = v << 10;
        else if (STREQ(end, "GB"))
                *kb = v << 20;
        else
                return false;
        return true;
}

int cg_hugepages_check(const struct moat_resources *res, struct moat_error **err)
{
        for (size_t i = 0; i < res->n_hugepages; i++) {
                const char *ps = res->hugepages[i].page_size;
                unsigned long long kb;
                char p[96];
                if (!ps || !page_size_kb(ps, &kb))
                        return moat_error_input(err, EINVAL,
                                                "'hugepageLimits[%zu].pageSize' '%s' is not a size like 2MB or 1GB", i,
                                                ps ? ps : "");
                snprintf(p, sizeof(p), "/sys/kernel/mm/hugepages/hugepages-%llukB", kb);
                if (access(p, F_OK) < 0)
                        return moat_error_input(err, EINVAL,
                                                "'hugepageLimits[%zu]': page size '%s' is not supported by this host "
                                                "(no %s)", i, ps, p);
        }
        return 0;
}

int cg_hugepages_write(int fd, const struct moat_resources *res, const char *suffix, struct moat_error **err)
{
        for (size_t i = 0; i < res->n_hugepages; i++) {
                const struct moat_hugepage_limit *h = &res->hugepages[i];
                char file[96];
                if (!h->page_size || strchr(h->page_size, '/') || strlen(h->page_size) > 32)
                        return moat_error_input(err, EINVAL, "'hugepageLimits[%zu].pageSize' is not valid", i);
                snprintf(file, sizeof(file), "hugetlb.%s.%s", h->page_size, suffix);
                if (!cg_has_file(fd, file))
                        return moat_error_input(err, EINVAL, "'hugepageLimits[%zu]': page size '%s' is not supported",
                                                i, h->page_size);
                int r = cg_writef(fd, file, "hugepageLimits.limit", err, "%" PRIu64, h->limit);
                if (r < 0)
                        return r;
        }
        return 0;
}
