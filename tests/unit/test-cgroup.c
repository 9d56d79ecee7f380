/* SPDX-License-Identifier: Apache-2.0 */
/* cgroup: layout parsing and path resolution (pure), then the real
 * hierarchies of this host under /moat-test-<pid>/ (removed at the end). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "cgroup/internal.h"
#include "core/cleanup.h"
#include "core/util.h"
#include "tap.h"

static const char *MI_HYBRID =
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
        "42 31 0:32 / /mnt/memory\\040again rw,relatime - cgroup cgroup rw,memory\n";
static const char *SELF_HYBRID = "9:name=systemd:/user.slice\n4:memory:/pa/x\n2:cpu,cpuacct:/\n0::/user.slice\n";
static const char *MI_V2 = "30 23 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
static const char *MI_V1 = "35 31 0:32 /sub /cg/memory rw - cgroup cgroup rw,memory\n";

static char base[64];

static void test_parse(void)
{
        struct cg_layout *l = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        ok(cg_layout_parse(MI_HYBRID, SELF_HYBRID, &l, &err) == 0, "parse hybrid mountinfo");
        if (!l)
                return;
        is_int(l->layout, MOAT_CG_HYBRID, "hybrid detected");
        is_int(l->n, 4, "duplicate memory mount dropped (4 hierarchies)");
        const struct cg_hier *cpu = cg_layout_find(l, "cpuacct"), *mem = cg_layout_find(l, "memory");
        const struct cg_hier *sd = cg_layout_find(l, "name=systemd"), *v2 = cg_layout_v2(l);
        ok(cpu && mem && sd && v2, "hierarchies found by controller");
        if (cpu && mem && sd && v2) {
                is_str(cpu->name, "cpu,cpuacct", "cpu,cpuacct name");
                is_str(cpu->options, "cpu,cpuacct", "cpu,cpuacct options");
                is_str(sd->options, "none,name=systemd", "systemd options");
                is_str(sd->self, "/user.slice", "own systemd cgroup");
                is_str(mem->self, "/pa/x", "own memory cgroup");
                is_str(v2->name, "unified", "v2 name");
                is_str(v2->self, "/user.slice", "own v2 cgroup");
                ok(v2->options == NULL, "no options for v2");
        }
        cg_layout_free(l);
        l = NULL;
        ok(cg_layout_parse(MI_V2, "0::/a\n", &l, &err) == 0 && l && l->layout == MOAT_CG_V2, "pure v2 detected");
        cg_layout_free(l);
        l = NULL;
        ok(cg_layout_parse(MI_V1, "4:memory:/sub/x\n", &l, &err) == 0 && l && l->layout == MOAT_CG_V1, "pure v1 detected");
        if (l)
                is_str(l->h[0].root, "/sub", "mount root kept");
        cg_layout_free(l);
        l = NULL;
        ok(cg_layout_parse("1 2 0:1 / / rw - ext4 /dev/sda rw\n", "", &l, &err) < 0 && err, "no cgroup mounted is an error");
}

static void test_resolve(void)
{
        char *p = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        ok(cg_resolve_path(NULL, "abc", "/x", &p, NULL) == 0, "default path");
        is_str(p, "/moat/abc", "NULL -> /moat/<id>");
        free(p);
        ok(cg_resolve_path("/a//b/./c/", "id", "/x", &p, NULL) == 0, "absolute path");
        is_str(p, "/a/b/c", "absolute normalised");
        free(p);
        ok(cg_resolve_path("r/s", "id", "/own/cg", &p, NULL) == 0, "relative path");
        is_str(p, "/own/cg/r/s", "relative joined to own cgroup");
        free(p);
        p = NULL;
        is_int(cg_resolve_path("/a/../b", "id", "/", &p, &err), -EINVAL, "'..' refused");
        contains(err ? err->msg : NULL, "'/a/../b'", "error names the cgroupsPath");
        ok(p == NULL, "nothing returned");
        moat_error_free(err);
        err = NULL;
        is_int(cg_resolve_path(NULL, "../x", "/", &p, &err), -EINVAL, "bad id refused");
        is_int(cg_shares_to_weight(1024), 39, "shares 1024 -> weight 39 (runc)");
        is_int(cg_shares_to_weight(2), 1, "shares 2 -> weight 1");
        is_int(cg_shares_to_weight(262144), 10000, "shares max -> weight 10000");
        is_int(cg_blkio_to_io_weight(500), 1 + 490 * 9999 / 990, "blkio 500 -> io.weight (crun)");
        int64_t sw;
        bool skip;
        ok(cg_swap_v2(100, true, 300, &sw, &skip, NULL) == 0 && sw == 200 && !skip, "v2 swap = swap - limit");
        ok(cg_swap_v2(100, true, -1, &sw, &skip, NULL) == 0 && sw == -1, "v2 swap -1 = max");
        ok(cg_swap_v2(300, true, 100, &sw, &skip, NULL) < 0, "v2 swap < limit refused");
        ok(cg_swap_v2(0, false, 100, &sw, &skip, NULL) < 0, "v2 swap without limit refused");
}

static char *host_file(struct moat_cgroup *cg, const char *hier, const char *file)
{
        struct moat_cgroup_hier *h = NULL;
        size_t n = 0;
        char *s = NULL, *path = NULL;
        if (moat_cgroup_hierarchies(cg, &h, &n) < 0)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (STREQ(h[i].name, hier) && asprintf(&path, "%s/%s", h[i].host_dir, file) >= 0)
                        break;
        moat_cgroup_hierarchies_free(h, n);
        if (path && read_file_at(AT_FDCWD, path, &s, NULL) >= 0) {
                size_t l = strlen(s);
                while (l && s[l - 1] == '\n')
                        s[--l] = '\0';
        }
        free(path);
        return s;
}

static bool dir_exists(const char *p)
{
        struct stat st;
        return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Every hierarchy of this host: does `rel` exist anywhere? */
static int count_dirs(const char *rel)
{
        const struct cg_layout *l;
        int c = 0;
        if (cg_layout_get(&l, NULL) < 0)
                return -1;
        for (size_t i = 0; i < l->n; i++) {
                char p[512];
                snprintf(p, sizeof(p), "%s%s", l->h[i].mount, rel);
                c += dir_exists(p);
        }
        return c;
}

/* A child that waits for a byte on a pipe, then runs `what`. */
enum { CH_PAUSE, CH_FORK, CH_OOM, CH_DEVNULL };
static pid_t spawn(int what, int *go)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                char c;
                close(p[1]);
                if (read(p[0], &c, 1) != 1)
                        _exit(3);
                if (what == CH_FORK) {
                        if (fork() == 0)
                                for (;;)
                                        pause();
                        for (;;)
                                pause();
                } else if (what == CH_OOM) {
                        size_t sz = 256u << 20;
                        char *m = malloc(sz);
                        for (size_t i = 0; m && i < sz; i += 4096)
                                m[i] = 1;
                        _exit(0);
                } else if (what == CH_DEVNULL) {
                        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                        int fz = open("/dev/zero", O_RDONLY | O_CLOEXEC);
                        int e = errno;
                        int ff = open("/dev/full", O_RDONLY | O_CLOEXEC);
                        _exit((fd < 0 && e == EPERM ? 0 : 1) | (fz >= 0 ? 0 : 2) | (ff < 0 ? 0 : 4));
                }
                for (;;)
                        pause();
        }
        close(p[0]);
        *go = p[1];
        return pid;
}

static void go_child(int *go)
{
        (void)!write(*go, "x", 1);
        close(*go);
        *go = -1;
}

static struct moat_resources res_basic(void)
{
        struct moat_resources r = { .present = true };
        r.memory.has_limit = true;
        r.memory.limit = 64 << 20;
        r.pids.has_limit = true;
        r.pids.limit = 50;
        r.cpu.has_shares = true;
        r.cpu.shares = 512;
        r.cpu.has_quota = true;
        r.cpu.quota = 50000;
        r.cpu.has_period = true;
        r.cpu.period = 100000;
        r.cpu.cpus = (char *)"0";
        r.cpu.mems = (char *)"0";
        return r;
}

static void test_lifecycle(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_cgroup *cg = NULL;
        struct moat_resources res = res_basic();
        char path[128], *s;
        int go = -1;
        snprintf(path, sizeof(path), "%s/c1", base);

        ok(moat_cgroup_create(path, "c1", &res, &cg, &err) == 0, "create %s with resources%s%s", path,
           err ? ": " : "", err ? err->msg : "");
        if (!cg)
                return;
        is_str(moat_cgroup_path(cg), path, "path is the absolute one");
        is_int(count_dirs(path), (int)cg->n_dirs, "directory exists in every hierarchy");
        is_str(s = host_file(cg, "memory", "memory.limit_in_bytes"), "67108864", "memory limit");
        free(s);
        is_str(s = host_file(cg, "pids", "pids.max"), "50", "pids max");
        free(s);
        is_str(s = host_file(cg, "cpu", "cpu.shares"), "512", "cpu shares");
        free(s);
        is_str(s = host_file(cg, "cpu", "cpu.cfs_quota_us"), "50000", "cpu quota");
        free(s);
        is_str(s = host_file(cg, "cpuset", "cpuset.cpus"), "0", "cpuset cpus");
        free(s);
        is_str(s = host_file(cg, "cpuset", "cpuset.mems"), "0", "cpuset mems");
        free(s);
        {
                char pp[256];
                _cleanup_free_ char *pc = NULL;
                snprintf(pp, sizeof(pp), "/sys/fs/cgroup/cpuset%s/cpuset.cpus", base);
                ok(read_file_at(AT_FDCWD, pp, &pc, NULL) == 0 && pc[0] && pc[0] != '\n',
                   "cpuset.cpus copied into the created parent");
        }

        /* v1 devices, blkio throttle, and fields this host cannot apply (warnings only). */
        {
                struct moat_device_rule dr[] = {
                        { .allow = false, .type = 'a', .major = -1, .minor = -1, .access = "rwm" },
                        { .allow = true, .type = 'c', .major = 1, .minor = 3, .access = "rwm" },
                        { .allow = true, .type = 'c', .major = 136, .minor = -1, .access = "rw" },
                };
                struct moat_blkio_throttle thr = { .major = 7, .minor = 0, .rate = 1048576 };
                struct moat_resources r2 = { .present = true, .devices = dr, .n_devices = 3 };
                r2.blkio.throttle[MOAT_THROTTLE_READ_BPS] = &thr;
                r2.blkio.n_throttle[MOAT_THROTTLE_READ_BPS] = 1;
                r2.memory.has_kernel = true;
                r2.memory.kernel = 1 << 30;
                r2.network.has_class_id = true;
                r2.network.class_id = 0x100001;
                r2.memory.has_swappiness = true;
                r2.memory.swappiness = 10;
                ok(moat_cgroup_update(cg, &r2, &err) == 0, "update devices/blkio/kernel/classID%s%s", err ? ": " : "",
                   err ? err->msg : "");
                is_str(s = host_file(cg, "devices", "devices.list"), "c 1:3 rwm\nc 136:* rw", "v1 devices.list");
                free(s);
                contains(s = host_file(cg, "blkio", "blkio.throttle.read_bps_device"), "7:0 1048576", "blkio throttle");
                free(s);
                is_str(s = host_file(cg, "memory", "memory.swappiness"), "10", "swappiness");
                free(s);
                struct moat_resources rb = { .present = true };
                rb.blkio.has_weight = true;
                rb.blkio.weight = 500;
                const char *wf = NULL;
                if ((s = host_file(cg, "blkio", "blkio.weight")))
                        wf = "blkio.weight";
                else if ((s = host_file(cg, "blkio", "blkio.bfq.weight")))
                        wf = "blkio.bfq.weight";
                free(s);
                if (wf) {
                        ok(moat_cgroup_update(cg, &rb, &err) == 0, "blkio weight (%s)", wf);
                        contains(s = host_file(cg, "blkio", wf), "500", "%s read back", wf);
                        free(s);
                } else {
                        ok(moat_cgroup_update(cg, &rb, &err) < 0, "blkio weight refused: no blkio.weight here");
                        contains(err ? err->msg : NULL, "'blkio.weight'", "error names the field");
                        moat_error_free(err);
                        err = NULL;
                }
                struct moat_resources rs = { .present = true };
                rs.memory.has_swappiness = true;
                rs.memory.swappiness = 101;
                ok(moat_cgroup_update(cg, &rs, &err) < 0, "swappiness 101 refused");
                contains(err ? err->msg : NULL, "101", "error names the value");
                moat_error_free(err);
                err = NULL;
        }

        /* update: raise memory+swap (memsw first), then lower both (limit first). */
        struct moat_resources up = { .present = true };
        up.memory.has_limit = up.memory.has_swap = true;
        up.memory.limit = 128 << 20;
        up.memory.swap = 256 << 20;
        up.pids.has_limit = true;
        up.pids.limit = 0;
        bool memsw = (s = host_file(cg, "memory", "memory.memsw.limit_in_bytes")) != NULL;
        free(s);
        ok(moat_cgroup_update(cg, &up, &err) == 0, "update raise%s%s", err ? ": " : "", err ? err->msg : "");
        is_str(s = host_file(cg, "memory", "memory.limit_in_bytes"), "134217728", "limit raised");
        free(s);
        if (memsw) {
                is_str(s = host_file(cg, "memory", "memory.memsw.limit_in_bytes"), "268435456", "memsw raised");
                free(s);
        }
        is_str(s = host_file(cg, "pids", "pids.max"), "max", "pids limit 0 -> max");
        free(s);
        up.memory.limit = 32 << 20;
        up.memory.swap = 48 << 20;
        up.pids.has_limit = false;
        ok(moat_cgroup_update(cg, &up, &err) == 0, "update lower%s%s", err ? ": " : "", err ? err->msg : "");
        is_str(s = host_file(cg, "memory", "memory.limit_in_bytes"), "33554432", "limit lowered");
        free(s);
        if (memsw) {
                is_str(s = host_file(cg, "memory", "memory.memsw.limit_in_bytes"), "50331648", "memsw lowered");
                free(s);
        }
        struct moat_resources bad = { .present = true };
        bad.cpu.cpus = (char *)"97";
        ok(moat_cgroup_update(cg, &bad, &err) < 0, "kernel refuses cpuset 97");
        contains(err ? err->msg : NULL, "'cpu.cpus' to '97'", "error names the field and value");
        moat_error_free(err);
        err = NULL;

        /* add_pid */
        pid_t child = spawn(CH_PAUSE, &go);
        char pidstr[16];
        snprintf(pidstr, sizeof(pidstr), "%d", child);
        ok(moat_cgroup_add_pid(cg, child, &err) == 0, "add pid");
        struct moat_cgroup_hier *h = NULL;
        size_t nh = 0, in_all = 0;
        if (moat_cgroup_hierarchies(cg, &h, &nh) == 0) {
                for (size_t i = 0; i < nh; i++) {
                        _cleanup_free_ char *f = NULL, *procs = NULL;
                        if (asprintf(&f, "%s/cgroup.procs", h[i].host_dir) >= 0 &&
                            read_file_at(AT_FDCWD, f, &procs, NULL) == 0 && strstr(procs, pidstr))
                                in_all++;
                }
                bool has_unified = false, has_sd = false;
                for (size_t i = 0; i < nh; i++) {
                        has_unified |= h[i].v2 && STREQ(h[i].name, "unified") && !h[i].options;
                        has_sd |= STREQ(h[i].name, "systemd") && h[i].options && STREQ(h[i].options, "none,name=systemd");
                }
                ok(has_unified, "hierarchies(): unified (v2)");
                ok(has_sd, "hierarchies(): systemd with none,name=systemd");
                is_str(h[0].rel_path, path, "hierarchies(): rel_path");
        }
        is_int(in_all, nh, "child in cgroup.procs of every hierarchy (%zu)", nh);
        moat_cgroup_hierarchies_free(h, nh);

        /* freeze / thaw */
        bool fr = false;
        ok(moat_cgroup_freeze(cg, true, &err) == 0, "freeze%s%s", err ? ": " : "", err ? err->msg : "");
        ok(moat_cgroup_is_frozen(cg, &fr) == 0 && fr, "is_frozen after freeze");
        is_str(s = host_file(cg, "freezer", "freezer.state"), "FROZEN", "freezer.state FROZEN");
        free(s);
        ok(moat_cgroup_freeze(cg, false, &err) == 0, "thaw");
        ok(moat_cgroup_is_frozen(cg, &fr) == 0 && !fr, "is_frozen after thaw");

        /* pids */
        pid_t *pids = NULL;
        size_t np = 0;
        ok(moat_cgroup_pids(cg, &pids, &np) == 0 && np == 1 && pids[0] == child, "pids lists the child");
        free(pids);

        /* stats */
        json_t *st = NULL;
        ok(moat_cgroup_stats(cg, &st, &err) == 0 && st, "stats");
        ok(json_object_get(st, "cpu") && json_object_get(json_object_get(st, "cpu"), "usage"), "stats.cpu.usage");
        json_t *lim = json_object_get(json_object_get(json_object_get(st, "memory"), "usage"), "limit");
        is_int(json_integer_value(lim), 32 << 20, "stats.memory.usage.limit");
        is_int(json_integer_value(json_object_get(json_object_get(st, "pids"), "current")), 1, "stats.pids.current");
        ok(json_object_get(json_object_get(st, "memory"), "raw") != NULL, "stats.memory.raw");
        json_decref(st);

        /* kill_all: the child forks first; both must go. */
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = spawn(CH_FORK, &go);
        moat_cgroup_add_pid(cg, child, NULL);
        go_child(&go);
        for (int i = 0; i < 200; i++) {
                np = 0;
                pids = NULL;
                moat_cgroup_pids(cg, &pids, &np);
                free(pids);
                if (np >= 2)
                        break;
                usleep(5000);
        }
        is_int(np, 2, "child and grandchild in the cgroup");
        int n = moat_cgroup_kill_all(cg, SIGKILL);
        is_int(n, 2, "kill_all signalled 2");
        int status = 0;
        waitpid(child, &status, 0);
        ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child killed");
        for (int i = 0; i < 200; i++) {
                np = 0;
                pids = NULL;
                moat_cgroup_pids(cg, &pids, &np);
                free(pids);
                if (np == 0)
                        break;
                usleep(5000);
        }
        is_int(np, 0, "cgroup empty after kill_all");

        /* A child cgroup made inside (as a container would) goes on destroy. */
        {
                char sub[256];
                snprintf(sub, sizeof(sub), "/sys/fs/cgroup/memory%s/inner", path);
                ok(mkdir(sub, 0755) == 0, "inner cgroup made");
        }
        /* reopen from the path string */
        struct moat_cgroup *again = NULL;
        ok(moat_cgroup_open(moat_cgroup_path(cg), &again, &err) == 0, "open");
        moat_cgroup_free(again);

        /* An existing cgroup with a process is refused and left alone. */
        child = spawn(CH_PAUSE, &go);
        moat_cgroup_add_pid(cg, child, NULL);
        struct moat_cgroup *dup = NULL;
        ok(moat_cgroup_create(path, "c1", NULL, &dup, &err) < 0, "existing busy cgroup refused");
        contains(err ? err->msg : NULL, "holds", "error says it holds processes");
        moat_error_free(err);
        err = NULL;
        is_int(count_dirs(path), (int)cg->n_dirs, "busy cgroup left in place");

        ok(moat_cgroup_destroy(cg, &err) == 0, "destroy with a live process%s%s", err ? ": " : "", err ? err->msg : "");
        status = 0;
        waitpid(child, &status, 0);
        ok(WIFSIGNALED(status), "process killed by destroy");
        is_int(count_dirs(path), 0, "no directory left in any hierarchy");
        ok(moat_cgroup_destroy(cg, &err) == 0, "second destroy succeeds");
        moat_cgroup_free(cg);
        cg = NULL;
        is_int(moat_cgroup_open(path, &cg, NULL), -ENOENT, "open of a destroyed cgroup: ENOENT");
        is_int(count_dirs(base), 0, "created parent %s removed too", base);
        (void)go;
}

static void test_oom(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_cgroup *cg = NULL;
        struct moat_resources res = { .present = true };
        char path[128];
        int go = -1, status = 0;
        uint64_t n = 99;
        snprintf(path, sizeof(path), "%s/oom", base);
        res.memory.has_limit = res.memory.has_swap = true;
        res.memory.limit = res.memory.swap = 16 << 20;
        ok(moat_cgroup_create(path, "oom", &res, &cg, &err) == 0, "create oom cgroup%s%s", err ? ": " : "",
           err ? err->msg : "");
        if (!cg)
                return;
        ok(moat_cgroup_oom_kills(cg, &n) == 0 && n == 0, "no oom kill yet");
        pid_t child = spawn(CH_OOM, &go);
        moat_cgroup_add_pid(cg, child, NULL);
        go_child(&go);
        waitpid(child, &status, 0);
        ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "allocating child OOM-killed");
        ok(moat_cgroup_oom_kills(cg, &n) == 0, "oom_kills");
        is_int(n, 1, "one oom kill counted");
        ok(moat_cgroup_destroy(cg, &err) == 0, "destroy oom cgroup");
        moat_cgroup_free(cg);
}

static void test_errors(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_cgroup *cg = NULL;
        char path[128];
        snprintf(path, sizeof(path), "%s/bad/deeper", base);

        struct moat_resources r = { .present = true };
        r.cpu.cpus = (char *)"99";
        ok(moat_cgroup_create(path, "x", &r, &cg, &err) < 0 && !cg, "bad cpuset refused at create");
        contains(err ? err->msg : NULL, "'99'", "error names the value");
        is_int(count_dirs(base), 0, "nothing left after a failed create");
        moat_error_free(err);
        err = NULL;

        snprintf(path, sizeof(path), "%s/../x", base);
        ok(moat_cgroup_create(path, "x", NULL, &cg, &err) < 0, "'..' refused at create");
        contains(err ? err->msg : NULL, path, "error names cgroupsPath");
        is_int(count_dirs(base), 0, "nothing created for '..'");
        moat_error_free(err);
        err = NULL;

        ok(moat_cgroup_create("/", "x", NULL, &cg, &err) < 0 && !cg, "the hierarchy root is refused");
        contains(err ? err->msg : NULL, "root", "error says root");
        moat_error_free(err);
        err = NULL;
        ok(moat_cgroup_open("/", &cg, &err) < 0 && !cg, "opening the root is refused");
        moat_error_free(err);
        err = NULL;

        snprintf(path, sizeof(path), "%s/huge", base);
        struct moat_hugepage_limit hl = { .page_size = (char *)"2MB", .limit = 1 << 21 };
        struct moat_resources rh = { .present = true, .hugepages = &hl, .n_hugepages = 1 };
        ok(moat_cgroup_create(path, "x", &rh, &cg, &err) < 0, "hugepageLimits without hugetlb refused");
        contains(err ? err->msg : NULL, "hugepageLimits", "error names hugepageLimits");
        is_int(count_dirs(base), 0, "nothing left");
        moat_error_free(err);
        err = NULL;

        struct moat_kv kv = { .key = (char *)"memory.high", .value = (char *)"1000000" };
        struct moat_resources ru = { .present = true, .unified = &kv, .n_unified = 1 };
        ok(moat_cgroup_create(path, "x", &ru, &cg, &err) < 0, "unified memory.high refused on hybrid");
        contains(err ? err->msg : NULL, "memory.high", "error names the key");
        is_int(count_dirs(base), 0, "nothing left");
        moat_error_free(err);
        err = NULL;
        kv.key = (char *)"../cgroup.procs";
        ok(moat_cgroup_create(path, "x", &ru, &cg, &err) < 0, "unified key with '..' refused");
        contains(err ? err->msg : NULL, "../cgroup.procs", "error names the key");
        moat_error_free(err);
        err = NULL;
        is_int(count_dirs(base), 0, "nothing left");
}

/* The unified (cgroup2) part on this hybrid host: freeze, and an eBPF device filter. */
static void test_unified(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_cgroup *cg = NULL;
        char path[128];
        int go = -1, status = 0;
        snprintf(path, sizeof(path), "%s/u", base);
        ok(moat_cgroup_create(path, "u", NULL, &cg, &err) == 0, "create for unified tests");
        if (!cg)
                return;
        struct cg_dir *d = cg_dir_v2(cg);
        ok(d != NULL, "unified dir present");
        if (!d)
                goto out;
        pid_t child = spawn(CH_PAUSE, &go);
        moat_cgroup_add_pid(cg, child, NULL);
        bool fr = false;
        ok(cg_v2_freeze_dir(d->fd, true, &err) == 0, "v2 freeze of the unified dir%s%s", err ? ": " : "",
           err ? err->msg : "");
        ok(cg_v2_is_frozen_dir(d->fd, &fr) == 0 && fr, "cgroup.events frozen 1");
        ok(cg_v2_freeze_dir(d->fd, false, &err) == 0 && cg_v2_is_frozen_dir(d->fd, &fr) == 0 && !fr, "v2 thaw");
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);

        /* deny all, allow c 1:5 (zero) rw: /dev/null must fail with EPERM. */
        struct moat_device_rule rules[] = {
                { .allow = false, .type = 'a', .major = -1, .minor = -1, .access = "rwm" },
                { .allow = true, .type = 'c', .major = 1, .minor = 5, .access = "rw" },
                { .allow = true, .type = 'c', .major = 1, .minor = 3, .access = "rwm" },
                { .allow = false, .type = 'c', .major = 1, .minor = 3, .access = "r" },
        };
        void *prog = NULL;
        int ni = cg_ebpf_devices_build(rules, ARRAY_SIZE(rules), &prog);
        ok(ni > 8, "eBPF program built (%d insns)", ni);
        free(prog);
        int r = cg_ebpf_devices_install(d->fd, rules, ARRAY_SIZE(rules), &err);
        ok(r == 0, "eBPF device program loaded and attached%s%s", err ? ": " : "", err ? err->msg : "");
        r = cg_ebpf_devices_install(d->fd, rules, ARRAY_SIZE(rules), &err);
        ok(r == 0, "replaced by a second install");
        child = spawn(CH_DEVNULL, &go);
        moat_cgroup_add_pid(cg, child, NULL);
        go_child(&go);
        waitpid(child, &status, 0);
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "in the cgroup: /dev/null read denied (EPERM), /dev/zero allowed, /dev/full denied (exit %d)", WEXITSTATUS(status));
out:
        ok(moat_cgroup_destroy(cg, &err) == 0, "destroy");
        moat_cgroup_free(cg);
}

/* The v2 code paths, run against this hybrid host's cgroup2 hierarchy alone
 * (a layout parsed from its mountinfo line only).  It has no controllers, so
 * only core files work: cgroup.procs, cgroup.freeze, cgroup.kill, cpu.stat,
 * cgroup.* unified keys, and the eBPF device program. */
static void test_v2_paths(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *mi = NULL, *self = NULL, *line = NULL, *depth = NULL;
        struct cg_layout *l = NULL;
        struct moat_cgroup *cg = NULL;
        char path[128];
        int go = -1, status = 0;
        if (read_file_at(AT_FDCWD, "/proc/self/mountinfo", &mi, NULL) < 0 ||
            read_file_at(AT_FDCWD, "/proc/self/cgroup", &self, NULL) < 0)
                return;
        for (char *p = strtok(mi, "\n"); p; p = strtok(NULL, "\n"))
                if (strstr(p, " - cgroup2 ")) {
                        line = strdup(p);
                        break;
                }
        if (!line) {
                printf("# no cgroup2 mount: v2 paths not tested\n");
                return;
        }
        ok(cg_layout_parse(line, self, &l, &err) == 0 && l->layout == MOAT_CG_V2, "cgroup2 alone parses as v2");
        if (!l)
                return;
        snprintf(path, sizeof(path), "%s/v2", base);

        struct moat_resources rp = { .present = true };
        rp.pids.has_limit = true;
        rp.pids.limit = 10;
        ok(cg_create_in(l, path, "v2", &rp, &cg, &err) < 0 && !cg, "v2: pids.max without the pids controller fails");
        contains(err ? err->msg : NULL, "'pids.limit' to '10'", "error names field and value");
        is_int(count_dirs(base), 0, "v2: nothing left");
        moat_error_free(err);
        err = NULL;

        struct moat_kv kv = { .key = (char *)"cgroup.max.depth", .value = (char *)"3" };
        struct moat_device_rule dr[] = {
                { .allow = false, .type = 'a', .major = -1, .minor = -1, .access = "rwm" },
                { .allow = true, .type = 'c', .major = 1, .minor = 5, .access = "rwm" },
        };
        struct moat_resources r = { .present = true, .unified = &kv, .n_unified = 1, .devices = dr, .n_devices = 2 };
        ok(cg_create_in(l, path, "v2", &r, &cg, &err) == 0, "v2: create with unified key and devices%s%s",
           err ? ": " : "", err ? err->msg : "");
        if (!cg)
                goto out;
        ok(moat_cgroup_v2_dirfd(cg) >= 0, "v2: dir fd for CLONE_INTO_CGROUP");
        struct cg_dir *d = cg_dir_v2(cg);
        ok(d && cg_read_str(d->fd, "cgroup.max.depth", &depth) == 0 && STREQ(depth, "3"), "v2: unified key written");
        struct moat_cgroup_hier *h = NULL;
        size_t nh = 0;
        ok(moat_cgroup_hierarchies(cg, &h, &nh) == 0 && nh == 1 && h[0].v2 && STREQ(h[0].name, ""),
           "v2: one hierarchy named \"\"");
        moat_cgroup_hierarchies_free(h, nh);

        pid_t child = spawn(CH_PAUSE, &go);
        ok(moat_cgroup_add_pid(cg, child, &err) == 0, "v2: add pid");
        bool fr = false;
        ok(moat_cgroup_freeze(cg, true, &err) == 0 && moat_cgroup_is_frozen(cg, &fr) == 0 && fr, "v2: frozen");
        ok(moat_cgroup_freeze(cg, false, &err) == 0 && moat_cgroup_is_frozen(cg, &fr) == 0 && !fr, "v2: thawed");
        pid_t *pids = NULL;
        size_t np = 0;
        ok(moat_cgroup_pids(cg, &pids, &np) == 0 && np == 1 && pids[0] == child, "v2: pids");
        free(pids);
        json_t *st = NULL;
        ok(moat_cgroup_stats(cg, &st, &err) == 0 &&
           json_object_get(json_object_get(json_object_get(st, "cpu"), "usage"), "total"),
           "v2: stats cpu.usage.total from cpu.stat");
        json_decref(st);
        uint64_t oom = 9;
        ok(moat_cgroup_oom_kills(cg, &oom) == 0 && oom == 0, "v2: no oom kills");
        is_int(moat_cgroup_kill_all(cg, SIGTERM), 1, "v2: SIGTERM to 1 (freeze, signal, thaw)");
        waitpid(child, &status, 0);
        ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "v2: child got SIGTERM");
        child = spawn(CH_PAUSE, &go);
        moat_cgroup_add_pid(cg, child, NULL);
        is_int(moat_cgroup_kill_all(cg, SIGKILL), 1, "v2: cgroup.kill");
        waitpid(child, &status, 0);
        ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "v2: child got SIGKILL");
        ok(moat_cgroup_destroy(cg, &err) == 0, "v2: destroy");
        is_int(count_dirs(path), 0, "v2: gone");
        moat_cgroup_free(cg);
out:
        cg_layout_free(l);
        (void)go;
}

static void test_relative(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_cgroup *cg = NULL, *o = NULL;
        char rel[64];
        snprintf(rel, sizeof(rel), "moat-test-rel-%d", (int)getpid());
        ok(moat_cgroup_create(rel, "r", NULL, &cg, &err) == 0, "create relative%s%s", err ? ": " : "",
           err ? err->msg : "");
        if (!cg)
                return;
        struct moat_cgroup_hier *h = NULL;
        size_t n = 0;
        moat_cgroup_hierarchies(cg, &h, &n);
        const struct cg_layout *l;
        cg_layout_get(&l, NULL);
        const struct cg_hier *mem = cg_layout_find(l, "memory");
        for (size_t i = 0; i < n; i++)
                if (mem && STREQ(h[i].name, mem->name)) {
                        char want[512];
                        snprintf(want, sizeof(want), "%s/%s", STREQ(mem->self, "/") ? "" : mem->self, rel);
                        is_str(h[i].rel_path, want, "relative to own memory cgroup");
                }
        moat_cgroup_hierarchies_free(h, n);
        ok(moat_cgroup_open(moat_cgroup_path(cg), &o, &err) == 0 && o && o->n_dirs == cg->n_dirs,
           "reopen from path string");
        if (o)
                ok(moat_cgroup_destroy(o, &err) == 0, "destroy through the reopened handle");
        moat_cgroup_free(o);
        int left = 0;
        for (size_t i = 0; i < cg->n_dirs; i++)
                left += dir_exists(cg->dirs[i].dir);
        is_int(left, 0, "relative cgroup removed everywhere");
        moat_cgroup_free(cg);
}

int main(void)
{
        test_parse();
        test_resolve();
        if (geteuid() != 0) {
                printf("# not root: skipping the real-hierarchy tests\n");
                return done_testing();
        }
        enum moat_cgroup_layout lay;
        _cleanup_error_ struct moat_error *err = NULL;
        ok(moat_cgroup_layout_detect(&lay, &err) == 0, "layout detected");
        if (lay == MOAT_CG_V2) {
                printf("# pure cgroup v2 host: the v1/hybrid tests below do not apply\n");
                return done_testing();
        }
        is_int(lay, access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK) == 0 ? MOAT_CG_HYBRID : MOAT_CG_V1,
               "layout matches the host");
        snprintf(base, sizeof(base), "/moat-test-%d", (int)getpid());
        test_lifecycle();
        test_oom();
        test_errors();
        if (lay == MOAT_CG_HYBRID)
                test_unified();
        if (lay == MOAT_CG_HYBRID)
                test_v2_paths();
        test_relative();
        is_int(count_dirs(base), 0, "%s gone from every hierarchy", base);
        return done_testing();
}
