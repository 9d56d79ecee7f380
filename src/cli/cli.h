/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>

#include "core/error.h"
#include "runtime/container.h"

struct cli_globals {
        const char *root;
        const char *log;
        const char *log_format;
        bool debug;
        bool systemd_cgroup;
        const char *rootless;
        const char *criu;
        bool help, version;
        const char *prog; /* "moat-runtime" */
};

/* The whole moat-runtime face from argv[idx] on (global flags, then a verb). */
int cli_runtime_face(const char *prog, int argc, char **argv, int idx);
/* Runs one runtime verb; returns the process exit status. */
int cli_runtime_verb(struct cli_globals *g, int argc, char **argv, int idx);
/* Prints err (or msg) once, on stderr and into --log, and returns 1. */
int cli_fail(struct cli_globals *g, struct moat_error *err, const char *msg);
int cli_signal_parse(const char *s, int *sig);
int cli_size_parse(const char *s, int64_t *out); /* "100m", "1g", "-1" */
void cli_runtime_usage(const char *prog);

/* The `moat` face. */
struct moat_globals {
        const char *store;   /* image store: --store, $MOAT_STORE, /var/lib/moat */
        const char *root;    /* container state: --root, /run/moat */
        bool debug;
};
int cli_moat_image(struct moat_globals *g, int argc, char **argv, int idx); /* cli/image.c: ls inspect tag rm prune */
int cli_image_import(struct moat_globals *g, int argc, char **argv, int idx); /* cli/image_import.c */
int cli_image_pull(struct moat_globals *g, int argc, char **argv, int idx);   /* cli/image_pull.c */
int cli_moat_run(struct moat_globals *g, int argc, char **argv, int idx);     /* cli/run.c */
int cli_env_config(struct moat_globals *g, int argc, char **argv, int idx);    /* cli/env_config.c */
int cli_env_up(struct moat_globals *g, int argc, char **argv, int idx);        /* cli/env_up.c */
int cli_env_ps(struct moat_globals *g, int argc, char **argv, int idx);        /* cli/env_up.c */
int cli_env_down(struct moat_globals *g, int argc, char **argv, int idx);      /* cli/env_up.c */
int cli_env_events(struct moat_globals *g, int argc, char **argv, int idx);      /* cli/env_more.c */
int cli_env_logs(struct moat_globals *g, int argc, char **argv, int idx);        /* cli/env_more.c */
int cli_env_exec(struct moat_globals *g, int argc, char **argv, int idx);        /* cli/env_more.c */
/* The vm tier's create (moat-runtime create of a bundle with the annotation moat.isolation=vm):
 * set by the full `moat` binary (vm/vm.h: moat_vm_create); NULL in the lean moat-runtime, which
 * then runs `moat` ($MOAT_FULL_BIN) in its place for that create.  cli/runtime.c */
extern int (*cli_vm_create)(const struct moat_runtime *rt, const struct moat_create_opts *o, struct moat_error **err);
/* The environment commands' common pieces (cli/env_cli.c).  Each prints its error as
 * "moat VERB: ..." and returns 1 (0 when fine). */
struct opt;
struct moat_plan;
int cli_env_fail(const char *verb, struct moat_error *err, int r);
/* Options; operands: whether arguments may follow them (else an error names the first). */
int cli_env_parse(const char *verb, int argc, char **argv, int *idx, const struct opt *opts, bool operands);
/* The file (-f, else compose.yaml ... here) loaded and planned. */
int cli_env_load_plan(const char *verb, const char *file, const char *project, struct moat_plan **plan);
/* The project: -p; else, from_file, the plan's name when there is a file; else
 * $COMPOSE_PROJECT_NAME or this directory's name (as Compose does). */
int cli_env_project(const char *verb, const char *file, const char *project, bool from_file, char **out);
int cli_env_restart(struct moat_globals *g, int argc, char **argv, int idx);     /* cli/env_up.c */
/* Prints the services' logs (SERVICE | line) from dir's logs/, older rotated parts first;
 * with follow, until the environment is gone or keep_going says false (cli/env_more.c). */
int cli_env_print_logs(const char *dir, json_t *state, const char *service, bool follow,
                       bool (*keep_going)(void *userdata), void *userdata);
