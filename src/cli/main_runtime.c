/* SPDX-License-Identifier: Apache-2.0 */
/* moat-runtime: runc's verbs.  Only the runtime code is linked in (with
 * --as-needed, so only jansson, libseccomp and libcap are loaded): every
 * container operation starts this binary, often twice. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
        return cli_runtime_face("moat-runtime", argc, argv, 1);
}
