/* SPDX-License-Identifier: Apache-2.0 */
/* Statistics in runc's `events --stats` "data" format, from v1 or v2 files.
 * Only what the host provides is filled in. */
#include "cgroup/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"

static json_t *ju(uint64_t v) { return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v); }

static void set_u(json_t *o, const char *k, uint64_t v) { json_object_set_new(o, k, ju(v)); }

static json_t *child(json_t *o, const char *k)
{
        json_t *c = json_object_get(o, k);
        if (!c) {
                c = json_object();
                json_object_set_new(o, k, c);
        }
        return c;
}

/* Reads a single number file into o[k] when it exists. */
static void file_u(json_t *o, const char *k, int fd, const char *file)
{
        uint64_t v;
        if (cg_read_u64(fd, file, &v) >= 0)
                set_u(o, k, v);
}

static void keyed_u(json_t *o, const char *k, int fd, const char *file, const char *key, uint64_t mul)
{
        uint64_t v;
        if (cg_read_keyed(fd, file, key, &v) >= 0)
                set_u(o, k, v * mul);
}

/* "key value" lines into an object (memory.stat -> raw). */
static json_t *keyed_object(int fd, const char *file)
{
        _cleanup_free_ char *s = NULL;
        if (read_file_at(fd, file, &s, NULL) < 0)
                return NULL;
        json_t *o = json_object();
        char *save = NULL;
        for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *sp = strchr(line, ' ');
                uint64_t v;
                if (!sp)
                        continue;
                *sp = '\0';
                if (parse_u64(sp + 1, &v) >= 0)
                        set_u(o, line, v);
        }
        return o;
}

static json_t *space_list(int fd, const char *file)
{
        _cleanup_free_ char *s = NULL;
        if (cg_read_str(fd, file, &s) < 0)
                return NULL;
        json_t *a = json_array();
        char *save = NULL;
        for (char *t = strtok_r(s, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
                uint64_t v;
                if (parse_u64(t, &v) >= 0)
                        json_array_append_new(a, ju(v));
        }
        return a;
}

static json_t *blk_entry(uint64_t major, uint64_t minor, const char *op, uint64_t v)
{
        json_t *e = json_object();
        set_u(e, "major", major);
        set_u(e, "minor", minor);
        json_object_set_new(e, "op", json_string(op));
        set_u(e, "value", v);
        return e;
}

/* v1 blkio: "8:0 Read 123" lines (and a "Total N" line we skip). */
static json_t *blkio_v1_list(int fd, const char *file)
{
        _cleanup_free_ char *s = NULL;
        if (read_file_at(fd, file, &s, NULL) < 0)
                return NULL;
        json_t *a = json_array();
        char *save = NULL;
        for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                unsigned long long ma, mi, v;
                char op[32];
                if (sscanf(line, "%llu:%llu %31s %llu", &ma, &mi, op, &v) == 4)
                        json_array_append_new(a, blk_entry(ma, mi, op, v));
        }
        return a;
}

static void hugetlb_sizes(int fd, const char *suffix, json_t *data, bool v2)
{
        /* hugetlb.<size>.<suffix> files name the sizes. */
        int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return;
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return;
        }
        json_t *h = child(data, "hugetlb");
        struct dirent *de;
        size_t sl = strlen(suffix);
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);
                if (strncmp(de->d_name, "hugetlb.", 8) != 0 || n <= 8 + sl ||
                    !STREQ(de->d_name + n - sl, suffix))
                        continue;
                _cleanup_free_ char *size = strndup(de->d_name + 8, n - 8 - sl);
                char f[128];
                if (!size || strchr(size, '.'))
                        continue;
                json_t *e = child(h, size);
                if (v2) {
                        snprintf(f, sizeof(f), "hugetlb.%s.current", size);
                        file_u(e, "usage", fd, f);
                        snprintf(f, sizeof(f), "hugetlb.%s.events", size);
                        keyed_u(e, "failcnt", fd, f, "max", 1);
                } else {
                        snprintf(f, sizeof(f), "hugetlb.%s.usage_in_bytes", size);
                        file_u(e, "usage", fd, f);
                        snprintf(f, sizeof(f), "hugetlb.%s.max_usage_in_bytes", size);
                        file_u(e, "max", fd, f);
                        snprintf(f, sizeof(f), "hugetlb.%s.failcnt", size);
                        file_u(e, "failcnt", fd, f);
                }
        }
}

int cg_v1_stats(struct moat_cgroup *cg, json_t *data, struct moat_error **err)
{
        struct cg_dir *d;
        json_t *cpu = child(data, "cpu"), *mem = child(data, "memory"), *pids = child(data, "pids");
        if ((d = cg_dir_for(cg, "cpuacct"))) {
                json_t *u = child(cpu, "usage"), *a;
                long hz = sysconf(_SC_CLK_TCK);
                file_u(u, "total", d->fd, "cpuacct.usage");
                if ((a = space_list(d->fd, "cpuacct.usage_percpu")))
                        json_object_set_new(u, "percpu", a);
                if ((a = space_list(d->fd, "cpuacct.usage_percpu_sys")))
                        json_object_set_new(u, "percpu_kernel", a);
                if ((a = space_list(d->fd, "cpuacct.usage_percpu_user")))
                        json_object_set_new(u, "percpu_user", a);
                uint64_t mul = hz > 0 ? 1000000000ULL / (uint64_t)hz : 10000000ULL;
                keyed_u(u, "kernel", d->fd, "cpuacct.stat", "system", mul);
                keyed_u(u, "user", d->fd, "cpuacct.stat", "user", mul);
        }
        if ((d = cg_dir_for(cg, "cpu"))) {
                json_t *t = child(cpu, "throttling");
                keyed_u(t, "periods", d->fd, "cpu.stat", "nr_periods", 1);
                keyed_u(t, "throttledPeriods", d->fd, "cpu.stat", "nr_throttled", 1);
                keyed_u(t, "throttledTime", d->fd, "cpu.stat", "throttled_time", 1);
        }
        if ((d = cg_dir_for(cg, "memory"))) {
                static const char *const kinds[][2] = { { "usage", "memory." },
                                                        { "swap", "memory.memsw." },
                                                        { "kernel", "memory.kmem." },
                                                        { "kernelTCP", "memory.kmem.tcp." } };
                for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
                        char f[96];
                        snprintf(f, sizeof(f), "%susage_in_bytes", kinds[i][1]);
                        if (!cg_has_file(d->fd, f))
                                continue;
                        json_t *e = child(mem, kinds[i][0]);
                        file_u(e, "usage", d->fd, f);
                        snprintf(f, sizeof(f), "%slimit_in_bytes", kinds[i][1]);
                        file_u(e, "limit", d->fd, f);
                        snprintf(f, sizeof(f), "%smax_usage_in_bytes", kinds[i][1]);
                        file_u(e, "max", d->fd, f);
                        snprintf(f, sizeof(f), "%sfailcnt", kinds[i][1]);
                        file_u(e, "failcnt", d->fd, f);
                }
                json_t *raw = keyed_object(d->fd, "memory.stat");
                if (raw) {
                        json_t *c = json_object_get(raw, "total_cache");
                        if (c)
                                json_object_set(mem, "cache", c);
                        json_object_set_new(mem, "raw", raw);
                }
        }
        if ((d = cg_dir_for(cg, "pids"))) {
                uint64_t lim;
                file_u(pids, "current", d->fd, "pids.current");
                if (cg_read_u64(d->fd, "pids.max", &lim) >= 0)
                        set_u(pids, "limit", lim == UINT64_MAX ? 0 : lim);
        }
        if ((d = cg_dir_for(cg, "blkio"))) {
                json_t *b = child(data, "blkio"), *a;
                const char *bytes = cg_has_file(d->fd, "blkio.io_service_bytes_recursive")
                                            ? "blkio.io_service_bytes_recursive"
                                            : "blkio.throttle.io_service_bytes_recursive";
                const char *ios = cg_has_file(d->fd, "blkio.io_serviced_recursive")
                                          ? "blkio.io_serviced_recursive"
                                          : "blkio.throttle.io_serviced_recursive";
                if ((a = blkio_v1_list(d->fd, bytes)))
                        json_object_set_new(b, "ioServiceBytesRecursive", a);
                if ((a = blkio_v1_list(d->fd, ios)))
                        json_object_set_new(b, "ioServicedRecursive", a);
        }
        if ((d = cg_dir_for(cg, "hugetlb")))
                hugetlb_sizes(d->fd, ".limit_in_bytes", data, false);
        (void)err;
        return 0;
}

int cg_v2_stats(struct moat_cgroup *cg, json_t *data, struct moat_error **err)
{
        struct cg_dir *d = cg_dir_v2(cg);
        if (!d)
                return moat_error_set(err, ENOENT, "cgroup '%s' is gone", cg->path);
        int fd = d->fd;
        json_t *cpu = child(data, "cpu"), *mem = child(data, "memory"), *pids = child(data, "pids");
        json_t *u = child(cpu, "usage"), *t = child(cpu, "throttling");
        keyed_u(u, "total", fd, "cpu.stat", "usage_usec", 1000);
        keyed_u(u, "user", fd, "cpu.stat", "user_usec", 1000);
        keyed_u(u, "kernel", fd, "cpu.stat", "system_usec", 1000);
        keyed_u(t, "periods", fd, "cpu.stat", "nr_periods", 1);
        keyed_u(t, "throttledPeriods", fd, "cpu.stat", "nr_throttled", 1);
        keyed_u(t, "throttledTime", fd, "cpu.stat", "throttled_usec", 1000);
        if (cg_has_file(fd, "memory.current")) {
                json_t *e = child(mem, "usage");
                uint64_t cur = 0, max = UINT64_MAX, sw = 0, swmax = UINT64_MAX;
                (void)cg_read_u64(fd, "memory.current", &cur);
                (void)cg_read_u64(fd, "memory.max", &max);
                set_u(e, "usage", cur);
                set_u(e, "limit", max);
                file_u(e, "max", fd, "memory.peak");
                keyed_u(e, "failcnt", fd, "memory.events", "max", 1);
                if (cg_read_u64(fd, "memory.swap.current", &sw) >= 0) {
                        json_t *s = child(mem, "swap");
                        (void)cg_read_u64(fd, "memory.swap.max", &swmax);
                        /* runc reports memory+swap here, as v1's memsw does. */
                        set_u(s, "usage", sw + cur);
                        set_u(s, "limit", swmax == UINT64_MAX || max == UINT64_MAX ? UINT64_MAX : swmax + max);
                        keyed_u(s, "failcnt", fd, "memory.swap.events", "max", 1);
                }
                json_t *raw = keyed_object(fd, "memory.stat");
                if (raw) {
                        json_t *c = json_object_get(raw, "file");
                        if (c)
                                json_object_set(mem, "cache", c);
                        json_object_set_new(mem, "raw", raw);
                }
        }
        if (cg_has_file(fd, "pids.current")) {
                uint64_t lim;
                file_u(pids, "current", fd, "pids.current");
                if (cg_read_u64(fd, "pids.max", &lim) >= 0)
                        set_u(pids, "limit", lim == UINT64_MAX ? 0 : lim);
        }
        _cleanup_free_ char *io = NULL;
        if (read_file_at(fd, "io.stat", &io, NULL) >= 0) {
                json_t *b = child(data, "blkio"), *bytes = json_array(), *ios = json_array();
                char *save = NULL;
                for (char *line = strtok_r(io, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                        unsigned long long ma, mi;
                        int off = 0;
                        if (sscanf(line, "%llu:%llu%n", &ma, &mi, &off) != 2)
                                continue;
                        char *s2 = NULL;
                        for (char *kv = strtok_r(line + off, " ", &s2); kv; kv = strtok_r(NULL, " ", &s2)) {
                                char *eq = strchr(kv, '=');
                                uint64_t v;
                                if (!eq || parse_u64(eq + 1, &v) < 0)
                                        continue;
                                *eq = '\0';
                                if (STREQ(kv, "rbytes"))
                                        json_array_append_new(bytes, blk_entry(ma, mi, "Read", v));
                                else if (STREQ(kv, "wbytes"))
                                        json_array_append_new(bytes, blk_entry(ma, mi, "Write", v));
                                else if (STREQ(kv, "rios"))
                                        json_array_append_new(ios, blk_entry(ma, mi, "Read", v));
                                else if (STREQ(kv, "wios"))
                                        json_array_append_new(ios, blk_entry(ma, mi, "Write", v));
                        }
                }
                json_object_set_new(b, "ioServiceBytesRecursive", bytes);
                json_object_set_new(b, "ioServicedRecursive", ios);
        }
        hugetlb_sizes(fd, ".max", data, true);
        return 0;
}
