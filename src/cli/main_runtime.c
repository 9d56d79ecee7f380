/* SPDX-License-Identifier: Apache-2.0 */
/* moat-runtime: runc's verbs.  Only the runtime code is linked in (with
 * --as-needed, so only jansson, libseccomp and libcap are loaded): every
 * container operation starts this binary, often twice. */
#include <stdlib.h>

#include "cli/cli.h"
#include "core/util.h"

int main(int argc, char **argv)
{
        /* the full moat binary next to us runs what this lean one lacks (the vm tier); found
         * before a verb re-executes us from a sealed copy */
        if (!getenv("MOAT_FULL_BIN")) {
                static const char *const names[] = { "moat", NULL };
                char *full = moat_self_sibling(names);
                if (full)
                        setenv("MOAT_FULL_BIN", full, 0);
                free(full);
        }
        return cli_runtime_face("moat-runtime", argc, argv, 1);
}
