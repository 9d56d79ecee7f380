/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by cgroup.c, layout.c, v1.c, v2.c and ebpf.c. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/cgroup.h"
#include "core/error.h"
#include "oci/spec.h"

/* One mounted hierarchy, from /proc/self/mountinfo. */
struct cg_hier {
        char *mount;        /* "/sys/fs/cgroup/memory" */
        char *name;         /* basename of mount: "memory", "cpu,cpuacct", "unified" */
        char *options;      /* v1 superblock options minus rw/ro: "memory", "none,name=systemd"; NULL on v2 */
        char **controllers; /* v1: "cpu", "cpuacct", "name=systemd"; v2: NULL */
        char *root;         /* mountinfo root field ("/" normally) */
        char *self;         /* moat's own cgroup in this hierarchy (/proc/self/cgroup) */
        bool v2;
};

struct cg_layout {
        enum moat_cgroup_layout layout;
        struct cg_hier *h;
        size_t n;
};

/* Parsers (pure, for tests), then the cached process-wide layout. */
int cg_layout_parse(const char *mountinfo, const char *self_cgroup, struct cg_layout **out,
                    struct moat_error **err);
void cg_layout_free(struct cg_layout *l);
int cg_layout_get(const struct cg_layout **out, struct moat_error **err);
/* The v1 hierarchy holding controller `ctrl` ("memory"), or the v2 one for "" with v2=true. */
const struct cg_hier *cg_layout_find(const struct cg_layout *l, const char *ctrl);
const struct cg_hier *cg_layout_v2(const struct cg_layout *l);

/* Resolves cgroupsPath for one hierarchy: NULL -> "/moat/<id>", absolute as
 * is, relative joined to `self`.  Normalises "//" and "."; refuses "..". */
int cg_resolve_path(const char *path, const char *id, const char *self, char **out,
                    struct moat_error **err);

/* The container's directory in one hierarchy. */
struct cg_dir {
        const struct cg_hier *h;
        char *rel;       /* "/moat/id" inside the hierarchy */
        char *dir;       /* "/sys/fs/cgroup/memory/moat/id" */
        int fd;          /* O_DIRECTORY fd of dir, -EBADF when not open */
        char **created;  /* directories this process created, outermost first */
};

struct moat_cgroup {
        const struct cg_layout *layout;
        char *path;               /* what moat_cgroup_path() returns */
        struct cg_dir *dirs;
        size_t n_dirs;
        const struct cg_ops *ops;
};

struct cg_ops {
        int (*apply)(struct moat_cgroup *cg, const struct moat_resources *res, bool update,
                     struct moat_error **err);
        int (*freeze)(struct moat_cgroup *cg, bool frozen, struct moat_error **err);
        int (*is_frozen)(struct moat_cgroup *cg, bool *frozen);
        int (*stats)(struct moat_cgroup *cg, json_t *data, struct moat_error **err);
        int (*oom_kills)(struct moat_cgroup *cg, uint64_t *n);
        /* The dir fd whose cgroup.procs (recursively) lists every process. */
        int (*procs_dir)(struct moat_cgroup *cg);
};
extern const struct cg_ops cg_v1_ops, cg_v2_ops;

/* moat_cgroup_create/open against a given layout (they pass the cached one;
 * tests pass a parsed one, e.g. the hybrid host's cgroup2 alone as "v2"). */
int cg_create_in(const struct cg_layout *l, const char *path, const char *id, const struct moat_resources *res,
                 struct moat_cgroup **out, struct moat_error **err);
int cg_open_in(const struct cg_layout *l, const char *path, struct moat_cgroup **out, struct moat_error **err);

/* Lookups inside a cgroup. */
struct cg_dir *cg_dir_for(struct moat_cgroup *cg, const char *ctrl); /* v1 controller */
struct cg_dir *cg_dir_v2(struct moat_cgroup *cg);

/* File helpers: a write that fails names `field` and `value` in the error. */
int cg_write(int dirfd, const char *file, const char *value, const char *field, struct moat_error **err);
int cg_writef(int dirfd, const char *file, const char *field, struct moat_error **err, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
bool cg_has_file(int dirfd, const char *file);
int cg_read_u64(int dirfd, const char *file, uint64_t *out); /* "max" -> UINT64_MAX */
int cg_read_str(int dirfd, const char *file, char **out);    /* trailing newline stripped */
/* "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control). */
int cg_read_keyed(int dirfd, const char *file, const char *key, uint64_t *out);
/* Every pid in cgroup.procs of dirfd and below. */
int cg_read_procs_recursive(int dirfd, pid_t **pids, size_t *n);

/* Each hugepageLimits pageSize is a size the host kernel has (/sys/kernel/mm/hugepages). */
int cg_hugepages_check(const struct moat_resources *res, struct moat_error **err);
/* hugetlb.<size>.<suffix> for each hugepageLimits entry (suffix: limit_in_bytes on v1, max on v2). */
int cg_hugepages_write(int fd, const struct moat_resources *res, const char *suffix, struct moat_error **err);

/* stats.c */
int cg_v1_stats(struct moat_cgroup *cg, json_t *data, struct moat_error **err);
int cg_v2_stats(struct moat_cgroup *cg, json_t *data, struct moat_error **err);

/* v2 helpers used by v1.c in hybrid mode. */
int cg_v2_freeze_dir(int dirfd, bool frozen, struct moat_error **err);
int cg_v2_is_frozen_dir(int dirfd, bool *frozen);
int cg_unified_apply(struct moat_cgroup *cg, const struct moat_resources *res, struct moat_error **err);

/* eBPF device filter (v2).  Loads a BPF_PROG_TYPE_CGROUP_DEVICE program built
 * from the rules (later rules win, default deny) and attaches it to the cgroup
 * dir, replacing the programs it attached before. */
int cg_ebpf_devices_install(int dirfd, const struct moat_device_rule *rules, size_t n,
                            struct moat_error **err);
/* Builds the program only (tests). Returns the instruction count or -errno. */
int cg_ebpf_devices_build(const struct moat_device_rule *rules, size_t n, void **insns);

/* shares (v1, 2..262144) -> weight (v2, 1..10000), as runc does. */
uint64_t cg_shares_to_weight(uint64_t shares);
/* blkio weight (10..1000) -> io.weight (1..10000), as crun does. */
uint64_t cg_blkio_to_io_weight(uint64_t w);
/* memory.swap.max from OCI limit/swap (runc's ConvertMemorySwapToCgroupV2Value).
 * Returns 0 and sets *skip when nothing is to be written; -1 in *out = "max". */
int cg_swap_v2(int64_t limit, bool has_limit, int64_t swap, int64_t *out, bool *skip,
               struct moat_error **err);
