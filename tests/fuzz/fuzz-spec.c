/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: config.json and process.json parsing, plus the mount
 * option table on whatever parsed.  Every error path must free everything. */
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/log.h"
#include "oci/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        moat_log_setup(-1, MOAT_LOG_TEXT, MOAT_LOG_ERROR);
        struct moat_spec *s = NULL;
        struct moat_error *err = NULL;
        if (moat_spec_parse((const char *)data, size, "fuzz.json", &s, &err) >= 0) {
                /* Exercise the lookups on what came out. */
                for (int t = 0; t < MOAT_NS__COUNT; t++)
                        (void)moat_spec_ns(s, (enum moat_ns_type)t);
                (void)moat_spec_annotation(s, "moat.isolation");
                for (size_t i = 0; i < s->n_mounts; i++)
                        (void)moat_mount_parse_options(&s->mounts[i], "mounts", &err);
                moat_spec_free(s);
        }
        moat_error_free(err);
        err = NULL;

        struct moat_process *p = NULL;
        if (moat_process_parse((const char *)data, size, "fuzz.json", &p, &err) >= 0)
                moat_process_free(p);
        moat_error_free(err);
        return 0;
}
