/* SPDX-License-Identifier: Apache-2.0 */
/* What the environment commands share (cli/cli.h): errors, option parsing, finding the file
 * and the project name as Compose does. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/cleanup.h"
#include "core/util.h"
#include "env/plan.h"

static const char *const default_files[] = {
        "compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml",
};

int cli_env_fail(const char *verb, struct moat_error *err, int r)
{
        fprintf(stderr, "moat %s: %s\n", verb, err && err->msg ? err->msg : strerror(-r));
        return 1;
}

int cli_env_parse(const char *verb, int argc, char **argv, int *idx, const struct opt *opts, bool operands)
{
        char *msg = NULL;
        _cleanup_free_ char *name = NULL;
        if (asprintf(&name, "moat %s", verb) < 0)
                return 1;
        if (args_parse(argc, argv, idx, opts, name, &msg) < 0) {
                fprintf(stderr, "moat %s: %s\n", verb, msg ? msg : "bad arguments");
                free(msg);
                return 1;
        }
        if (!operands && *idx < argc) {
                fprintf(stderr, "moat %s: unexpected argument '%s' (see moat %s --help)\n", verb, argv[*idx], verb);
                return 1;
        }
        return 0;
}

static const char *find_file(const char *file)
{
        for (size_t i = 0; i < ARRAY_SIZE(default_files) && !file; i++)
                if (access(default_files[i], F_OK) == 0)
                        file = default_files[i];
        return file;
}

int cli_env_load_plan(const char *verb, const char *file, const char *project, struct moat_plan **plan)
{
        file = find_file(file);
        if (!file) {
                fprintf(stderr, "moat %s: no compose.yaml, compose.yml, docker-compose.yml or docker-compose.yaml "
                                "here; give one with -f FILE\n", verb);
                return 1;
        }
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_envfile *f = NULL;
        int r = moat_envfile_load(file, NULL, &f, &err);
        if (r >= 0)
                r = moat_plan_build(f, project, NULL, plan, &err);
        return r < 0 ? cli_env_fail(verb, err, r) : 0;
}

int cli_env_project(const char *verb, const char *file, const char *project, bool from_file, char **out)
{
        _cleanup_error_ struct moat_error *err = NULL;
        int r;
        if (project) {
                r = moat_project_name(project, true, out, &err);
                return r < 0 ? cli_env_fail(verb, err, r) : 0;
        }
        if (from_file && find_file(file)) {
                _cleanup_plan_ struct moat_plan *plan = NULL;
                if (cli_env_load_plan(verb, file, NULL, &plan) != 0)
                        return 1;
                *out = strdup(plan->project);
                return *out ? 0 : cli_env_fail(verb, NULL, -ENOMEM);
        }
        const char *env = getenv("COMPOSE_PROJECT_NAME");
        char cwd[PATH_MAX];
        if (env && *env)
                r = moat_project_name(env, true, out, &err);
        else if (getcwd(cwd, sizeof cwd))
                r = moat_project_name(basename(cwd), false, out, &err);
        else
                r = -errno;
        return r < 0 ? cli_env_fail(verb, err, r) : 0;
}
