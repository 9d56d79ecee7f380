/* SPDX-License-Identifier: Apache-2.0 */
/* config.json (OCI runtime-spec 1.2, Linux) as C.  The parser validates
 * everything it can without touching the system: names, ranges, id maps,
 * mount options; errors name the field ("'linux.namespaces[2].type'"). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

#define MOAT_OCI_VERSION "1.2.0"

struct moat_kv {
        char *key;
        char *value;
};

struct moat_idmap {
        uint32_t container_id, host_id, size;
};

enum moat_ns_type {
        MOAT_NS_PID, MOAT_NS_NET, MOAT_NS_MNT, MOAT_NS_IPC, MOAT_NS_UTS,
        MOAT_NS_USER, MOAT_NS_CGROUP, MOAT_NS_TIME, MOAT_NS__COUNT
};
const char *moat_ns_name(enum moat_ns_type t);     /* "pid", "network", "mount", ... */
int moat_ns_clone_flag(enum moat_ns_type t);       /* CLONE_NEWPID, ... */
const char *moat_ns_proc_name(enum moat_ns_type t); /* "pid", "net", "mnt", ... (/proc/PID/ns/) */

struct moat_namespace {
        enum moat_ns_type type;
        char *path; /* NULL: create a new one */
};

struct moat_mount {
        char *destination;
        char *type;
        char *source;
        char **options;      /* as given */
        struct moat_idmap *uid_mappings, *gid_mappings; /* idmapped mounts */
        size_t n_uid_mappings, n_gid_mappings;
        /* Parsed from options: */
        unsigned long flags;       /* MS_* to set (MS_RDONLY, MS_NOSUID, MS_BIND, MS_REC, ...) */
        unsigned long clear_flags; /* MS_* explicitly cleared ("rw", "suid", ...) */
        unsigned long propagation; /* MS_SHARED|MS_SLAVE|MS_PRIVATE|MS_UNBINDABLE (+MS_REC) or 0 */
        uint64_t attr_set, attr_clr; /* MOUNT_ATTR_* for recursive "r*" options (rro, rnosuid, ...) */
        char *data;               /* the options the filesystem gets ("mode=755,size=65536k") */
        bool bind;                /* bind or rbind */
        bool tmpcopyup;
        bool idmap, ridmap;
};

struct moat_device {
        char type;        /* 'c', 'b', 'u', 'p' */
        char *path;
        int64_t major, minor;
        uint32_t file_mode; bool has_file_mode;
        uint32_t uid; bool has_uid;
        uint32_t gid; bool has_gid;
};

struct moat_rlimit {
        int resource; /* RLIMIT_* */
        char *name;   /* "RLIMIT_NOFILE" as given */
        uint64_t soft, hard;
};

enum moat_cap_set { MOAT_CAP_BOUNDING, MOAT_CAP_EFFECTIVE, MOAT_CAP_INHERITABLE,
                    MOAT_CAP_PERMITTED, MOAT_CAP_AMBIENT, MOAT_CAP__COUNT };

struct moat_process {
        bool terminal;
        bool has_console_size;
        unsigned int console_height, console_width;
        uint32_t uid, gid;
        bool has_umask;
        uint32_t umask;
        uint32_t *additional_gids;
        size_t n_additional_gids;
        char **args;          /* may be empty for `create` until checked */
        char *command_line;   /* Windows only: rejected */
        char **env;
        char *cwd;
        bool has_caps;        /* "capabilities" present at all */
        uint64_t caps[MOAT_CAP__COUNT]; /* bit n = capability n */
        struct moat_rlimit *rlimits;
        size_t n_rlimits;
        bool no_new_privileges;
        char *apparmor_profile;
        char *selinux_label;
        bool has_oom_score_adj;
        int oom_score_adj;
        bool has_io_priority;
        int io_priority_class; /* IOPRIO_CLASS_* */
        int io_priority;
        bool has_scheduler;
        int sched_policy;      /* SCHED_* */
        int sched_nice, sched_priority;
        uint64_t sched_flags;  /* SCHED_FLAG_* */
        uint64_t sched_runtime, sched_deadline, sched_period;
        char *exec_cpu_affinity_initial, *exec_cpu_affinity_final; /* "0-3,7" */
};

struct moat_hook {
        char *path;
        char **args;
        char **env;
        int timeout; /* seconds, 0 = none */
};

enum moat_hook_kind { MOAT_HOOK_PRESTART, MOAT_HOOK_CREATE_RUNTIME, MOAT_HOOK_CREATE_CONTAINER,
                      MOAT_HOOK_START_CONTAINER, MOAT_HOOK_POSTSTART, MOAT_HOOK_POSTSTOP,
                      MOAT_HOOK__COUNT };
const char *moat_hook_kind_name(enum moat_hook_kind k); /* "prestart", "createRuntime", ... */

/* Optional numbers in resources: has_* tells whether the field was given. */
#define MOAT_OPT(type, name) bool has_##name; type name

struct moat_device_rule {
        bool allow;
        char type;        /* 'a', 'c', 'b' */
        int64_t major, minor; /* -1 = wildcard */
        char access[4];   /* subset of "rwm" */
};

struct moat_blkio_weight_device {
        int64_t major, minor;
        MOAT_OPT(uint16_t, weight);
        MOAT_OPT(uint16_t, leaf_weight);
};

struct moat_blkio_throttle {
        int64_t major, minor;
        uint64_t rate;
};

struct moat_hugepage_limit {
        char *page_size; /* "2MB", "1GB" */
        uint64_t limit;
};

struct moat_net_priority {
        char *name;
        uint32_t priority;
};

struct moat_resources {
        struct moat_device_rule *devices;
        size_t n_devices;
        struct {
                MOAT_OPT(int64_t, limit);
                MOAT_OPT(int64_t, reservation);
                MOAT_OPT(int64_t, swap);
                MOAT_OPT(int64_t, kernel);
                MOAT_OPT(int64_t, kernel_tcp);
                MOAT_OPT(uint64_t, swappiness);
                MOAT_OPT(bool, disable_oom_killer);
                MOAT_OPT(bool, use_hierarchy);
                MOAT_OPT(bool, check_before_update);
        } memory;
        struct {
                MOAT_OPT(uint64_t, shares);
                MOAT_OPT(int64_t, quota);
                MOAT_OPT(uint64_t, burst);
                MOAT_OPT(uint64_t, period);
                MOAT_OPT(int64_t, realtime_runtime);
                MOAT_OPT(uint64_t, realtime_period);
                char *cpus;
                char *mems;
                MOAT_OPT(int64_t, idle);
        } cpu;
        struct {
                MOAT_OPT(int64_t, limit);
        } pids;
        struct {
                MOAT_OPT(uint16_t, weight);
                MOAT_OPT(uint16_t, leaf_weight);
                struct moat_blkio_weight_device *weight_device;
                size_t n_weight_device;
                struct moat_blkio_throttle *throttle[4]; /* read_bps, write_bps, read_iops, write_iops */
                size_t n_throttle[4];
        } blkio;
        struct moat_hugepage_limit *hugepages;
        size_t n_hugepages;
        struct {
                MOAT_OPT(uint32_t, class_id);
                struct moat_net_priority *priorities;
                size_t n_priorities;
        } network;
        struct moat_kv *unified;
        size_t n_unified;
        bool present; /* "resources" given at all */
};
enum { MOAT_THROTTLE_READ_BPS, MOAT_THROTTLE_WRITE_BPS, MOAT_THROTTLE_READ_IOPS, MOAT_THROTTLE_WRITE_IOPS };

struct moat_seccomp_arg {
        unsigned int index;
        uint64_t value, value_two;
        int op; /* enum scmp_compare */
};

struct moat_seccomp_rule {
        char **names;
        uint32_t action;   /* SCMP_ACT_* without the errno/trace data */
        MOAT_OPT(uint32_t, errno_ret);
        struct moat_seccomp_arg *args;
        size_t n_args;
};

struct moat_seccomp {
        uint32_t default_action;
        MOAT_OPT(uint32_t, default_errno_ret);
        char **architectures;   /* "SCMP_ARCH_X86_64", ... */
        char **flags;           /* "SECCOMP_FILTER_FLAG_LOG", ... */
        char *listener_path;
        char *listener_metadata;
        struct moat_seccomp_rule *syscalls;
        size_t n_syscalls;
};

struct moat_time_offset {
        int64_t secs;
        uint32_t nanosecs;
};

struct moat_linux {
        struct moat_namespace *namespaces;
        size_t n_namespaces;
        struct moat_idmap *uid_mappings, *gid_mappings;
        size_t n_uid_mappings, n_gid_mappings;
        bool has_time_offsets;
        struct moat_time_offset time_monotonic, time_boottime;
        struct moat_device *devices;
        size_t n_devices;
        char *cgroups_path;
        struct moat_resources resources;
        unsigned long rootfs_propagation; /* MS_* or 0 */
        char **masked_paths;
        char **readonly_paths;
        bool has_masked_paths, has_readonly_paths;
        char *mount_label;
        struct moat_kv *sysctl;
        size_t n_sysctl;
        struct moat_seccomp *seccomp; /* NULL: none */
        bool has_personality;
        unsigned long personality; /* PER_LINUX / PER_LINUX32 | flags */
        bool has_intel_rdt;
};

struct moat_spec {
        char *oci_version;
        struct {
                char *path;      /* as given; absolute after moat_spec_resolve() */
                bool readonly;
        } root;
        struct moat_process *process; /* NULL when absent */
        char *hostname;
        char *domainname;
        struct moat_mount *mounts;
        size_t n_mounts;
        struct moat_hook *hooks[MOAT_HOOK__COUNT];
        size_t n_hooks[MOAT_HOOK__COUNT];
        struct moat_kv *annotations;
        size_t n_annotations;
        struct moat_linux linux_;
};

/* Parses config.json text.  `origin` names it in messages ("config.json"). */
int moat_spec_parse(const char *json, size_t len, const char *origin, struct moat_spec **out,
                    struct moat_error **err);
/* Reads <bundle>/config.json, parses it, and makes root.path absolute against the bundle. */
int moat_spec_load_bundle(const char *bundle, struct moat_spec **out, struct moat_error **err);
/* A process alone (`exec -p process.json`). */
int moat_process_parse(const char *json, size_t len, const char *origin, struct moat_process **out,
                       struct moat_error **err);
void moat_spec_free(struct moat_spec *s);
void moat_process_free(struct moat_process *p);

/* Lookups. */
const struct moat_namespace *moat_spec_ns(const struct moat_spec *s, enum moat_ns_type t);
const char *moat_spec_annotation(const struct moat_spec *s, const char *key);

/* The default config.json `spec` writes (runc's, with a busybox-friendly sh). */
char *moat_spec_default_json(bool rootless);

/* Capability names <-> numbers ("CAP_SYS_ADMIN"); -EINVAL for unknown. */
int moat_cap_from_name(const char *name);
const char *moat_cap_name(int cap);
int moat_cap_last(void); /* highest capability the kernel knows */
/* rlimit names ("RLIMIT_NOFILE") <-> RLIMIT_*. */
int moat_rlimit_from_name(const char *name);
const char *moat_rlimit_name(int resource);
/* Parses one mount option list into m (flags, data, ...).  Unknown options go to data. */
int moat_mount_parse_options(struct moat_mount *m, const char *field, struct moat_error **err);
