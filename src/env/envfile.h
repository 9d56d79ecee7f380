/* SPDX-License-Identifier: Apache-2.0 */
/* The environment file: a Compose file (compose.yaml) parsed with libyaml into
 * plain C structs.  Values are validated and normalized here (sizes in bytes,
 * durations in ns, command strings split as Compose splits them, env_file and
 * ${VAR} interpolation applied); cross-service checks (unknown services in
 * depends_on, cycles, undefined networks) are the planner's (env/plan.h).
 *
 * Errors name the file, line, service and key:
 *   "compose.yaml:14: service 'api': 'mem_limit': '12xb' is not a size"
 * Unknown keys are a moat_warn naming the key and line, and are ignored. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MOAT_ENVFILE_MAX_SIZE (4u << 20) /* files over 4 MiB are refused */
#define MOAT_ENVFILE_MAX_SERVICES 1000

enum moat_env_restart { MOAT_RESTART_NO, MOAT_RESTART_ALWAYS, MOAT_RESTART_ON_FAILURE, MOAT_RESTART_UNLESS_STOPPED };
enum moat_env_condition { MOAT_DEP_STARTED, MOAT_DEP_HEALTHY, MOAT_DEP_COMPLETED };
enum moat_env_isolation { MOAT_ISOLATION_CONTAINER, MOAT_ISOLATION_VM };
enum moat_env_violation { MOAT_VIOLATION_LOG, MOAT_VIOLATION_KILL, MOAT_VIOLATION_STOP };
enum moat_env_policy { MOAT_POLICY_DEFAULT, MOAT_POLICY_OPEN };
enum moat_env_mount_type { MOAT_MOUNT_BIND, MOAT_MOUNT_VOLUME, MOAT_MOUNT_TMPFS };

struct moat_env_port {
        char *host_ip;              /* NULL: every address */
        uint16_t host_port;         /* 0: an ephemeral port ("80" alone, "127.0.0.1::80") */
        uint16_t host_port_end;     /* == host_port unless a range */
        uint16_t container_port;
        uint16_t container_port_end;
        char protocol[4];           /* "tcp" | "udp" */
};

struct moat_env_mount {
        enum moat_env_mount_type type;
        char *source;               /* bind: absolute host path; volume: name (NULL: anonymous); tmpfs: NULL */
        char *target;               /* absolute path in the container */
        bool read_only;
        uint64_t tmpfs_size;        /* bytes, 0: default */
        int line;
};

struct moat_env_svc_network {
        char *name;
        char **aliases;
        char *ipv4_address;         /* NULL: from IPAM */
};

struct moat_env_dep {
        char *service;
        enum moat_env_condition condition;
        bool restart;
        bool required;              /* default true */
        int line;
};

struct moat_env_healthcheck {
        bool present;               /* a healthcheck key was given */
        bool disable;               /* test: ["NONE"] or disable: true */
        char **test;                /* argv; CMD-SHELL / string form: {"/bin/sh", "-c", STR} */
        int64_t interval_ns;        /* defaults as Compose: 30s 30s 3 0s 5s */
        int64_t timeout_ns;
        int64_t start_period_ns;
        int64_t start_interval_ns;
        int retries;
};

struct moat_env_allow {
        char *service;
        uint16_t port;              /* 0: any */
        int line;
};

struct moat_env_egress {
        char *host;                 /* hostname, address or CIDR ("10.0.0.0/8", "2001:db8::/32") */
        bool is_cidr;               /* an address or CIDR (false: a hostname to resolve) */
        uint16_t port;              /* 0: any */
};

struct moat_env_service {
        char *name;
        int line;
        char *image;
        char **command;             /* NULL: the image's; an empty vector: none */
        char **entrypoint;          /* NULL: the image's; an empty vector: none */
        char **environment;         /* "KEY=VALUE", env_file first, environment overriding */
        struct moat_env_port *ports;
        size_t n_ports;
        struct moat_env_mount *mounts;  /* volumes + tmpfs */
        size_t n_mounts;
        struct moat_env_svc_network *networks; /* empty: the "default" network */
        size_t n_networks;
        struct moat_env_dep *depends_on;
        size_t n_depends_on;
        struct moat_env_healthcheck healthcheck;
        enum moat_env_restart restart;
        int restart_max;            /* on-failure:N, 0: unlimited */
        char *user;
        char *working_dir;
        bool read_only;
        char **cap_add;             /* "CAP_NET_ADMIN" form, or "ALL" */
        char **cap_drop;
        int64_t memory;             /* bytes; 0: no limit (mem_limit or deploy.resources.limits.memory) */
        double cpus;                /* 0: no limit */
        int64_t pids;               /* 0: no limit */
        int64_t log_max;            /* logging.options.max-size in bytes; 0: moat's default */
        int log_files;              /* logging.options.max-file; 0: moat's default */
        /* x-moat */
        enum moat_env_isolation isolation;
        struct moat_env_allow *allow;
        size_t n_allow;
        struct moat_env_egress *egress;
        size_t n_egress;
        enum moat_env_violation on_violation;
};

struct moat_env_network {
        char *name;                 /* the key in the file */
        int line;
        bool internal;
        bool external;
};

struct moat_env_volume {
        char *name;
        int line;
        bool external;
};

struct moat_envfile {
        char *path;                 /* as given */
        char *dir;                  /* absolute directory of the file */
        char *name;                 /* top-level name: (NULL if absent) */
        struct moat_env_service *services;
        size_t n_services;
        struct moat_env_network *networks;
        size_t n_networks;
        struct moat_env_volume *volumes;
        size_t n_volumes;
        enum moat_env_policy policy;  /* top-level x-moat.policy */
};

struct moat_envfile_options {
        /* Variables for ${VAR}: NULL: the process environment.  A ".env" next
         * to the file fills in what is not set here (as Compose). */
        char *const *environ;
        bool no_dotenv;             /* do not read DIR/.env */
};

/* Parses the file at path.  opts may be NULL.  The file's directory is the base
 * for relative bind mounts and env_file. */
int moat_envfile_load(const char *path, const struct moat_envfile_options *opts,
                      struct moat_envfile **out, struct moat_error **err);
/* Parses a buffer; name is used in messages, dir for relative paths (NULL: "."). */
int moat_envfile_parse(const char *data, size_t len, const char *name, const char *dir,
                       const struct moat_envfile_options *opts, struct moat_envfile **out,
                       struct moat_error **err);
void moat_envfile_free(struct moat_envfile *f);
static inline void moat_envfile_freep(struct moat_envfile **f) { moat_envfile_free(*f); }
#define _cleanup_envfile_ __attribute__((cleanup(moat_envfile_freep)))

const struct moat_env_service *moat_envfile_service(const struct moat_envfile *f, const char *name);

/* Value parsers, exported for tests and the CLI. */
int moat_env_parse_size(const char *s, int64_t *out);         /* "512m", "1g", "1024", "1.5g" */
int moat_env_parse_duration(const char *s, int64_t *out_ns);  /* "1m30s", "10s", "500ms", "1h" */
int moat_env_split_command(const char *s, char ***out);       /* shell-like words (shlex) */
const char *moat_env_restart_name(enum moat_env_restart r);
const char *moat_env_condition_name(enum moat_env_condition c);
const char *moat_env_violation_name(enum moat_env_violation v);
