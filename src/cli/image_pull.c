/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder until the images work lands: says so and fails. */
#include <stdio.h>

#include "cli/cli.h"

int cli_image_pull(struct moat_globals *g, int argc, char **argv, int idx)
{
        fprintf(stderr, "moat: '%s' is not available yet\n", idx > 0 ? argv[idx - 1] : "?");
        return 1;
}
