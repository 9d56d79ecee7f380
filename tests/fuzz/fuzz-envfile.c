/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the environment file parser (compose.yaml) and the planner:
 * any bytes must give a plan or an error, never a crash, a leak or a hang.
 * The environment and the directory are fixed (no .env, no env_file found)
 * so a run depends on the input alone. */
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "env/envfile.h"
#include "env/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static char *env[] = { "HOME=/root", "TAG=1", NULL };
        static int quiet;
        if (!quiet) {
                moat_log_setup(-1, MOAT_LOG_TEXT, MOAT_LOG_ERROR); /* no warnings on stderr */
                quiet = 1;
        }
        struct moat_envfile_options o = { .environ = env, .no_dotenv = true };
        struct moat_envfile *f = NULL;
        struct moat_error *err = NULL;
        if (moat_envfile_parse((const char *)data, size, "fuzz.yaml", "/nonexistent-moat-fuzz", &o, &f, &err) >= 0) {
                struct moat_plan *p = NULL;
                if (moat_plan_build(f, "fuzz", env, &p, &err) >= 0) {
                        for (size_t i = 0; i < p->file->n_services; i++)
                                for (size_t j = 0; j < p->file->n_services && j < 8; j++)
                                        (void)moat_plan_can_reach(p, i, j, 80);
                        moat_plan_free(p);
                }
        }
        moat_error_free(err);
        return 0;
}
