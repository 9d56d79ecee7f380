/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "moat-config.h"

int main(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        printf("moat %s\n", MOAT_VERSION);
        return 0;
}
