/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the same bytes go to the manifest, index and image config parsers
 * (and platform selection on any index that parsed).  Every error path must free everything. */
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/log.h"
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        moat_log_setup(-1, MOAT_LOG_TEXT, MOAT_LOG_ERROR);
        const char *json = (const char *)data;
        struct moat_error *err = NULL;

        struct moat_manifest m;
        if (moat_manifest_parse(json, size, &m, &err) >= 0)
                moat_manifest_clear(&m);
        moat_error_free(err);
        err = NULL;

        struct moat_index ix;
        if (moat_index_parse(json, size, &ix, &err) >= 0) {
                const struct moat_descriptor *d = NULL;
                (void)moat_index_select(&ix, "linux", "amd64", NULL, &d, NULL);
                (void)moat_index_select(&ix, "linux", "arm", "v7", &d, &err);
                moat_index_clear(&ix);
        }
        moat_error_free(err);
        err = NULL;

        struct moat_image_config c;
        if (moat_image_config_parse(json, size, &c, &err) >= 0)
                moat_image_config_clear(&c);
        moat_error_free(err);
        return 0;
}
