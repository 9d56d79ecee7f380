/* SPDX-License-Identifier: Apache-2.0 */
/* Flags as runc (urfave/cli) takes them: --name value, --name=value,
 * -name value (Go style), -n value; options stop at the first operand or "--". */
#pragma once

#include <stdbool.h>

enum opt_kind { OPT_BOOL, OPT_STR, OPT_INT, OPT_MULTI };

struct opt {
        const char *name;  /* long name */
        char short_name;   /* 0: none */
        enum opt_kind kind;
        void *dest;        /* bool*, const char**, int*, char*** (strv) */
        bool *seen;        /* optional: set when given */
};

/* Parses argv[*idx...] against opts; on return *idx is the first operand.
 * Errors print "moat-runtime VERB: ..." through the caller's err string. */
int args_parse(int argc, char **argv, int *idx, const struct opt *opts, const char *verb, char **errmsg);

/* Options before and after exactly one operand ("moat image pull REF --insecure").
 * *operand stays NULL when none is given; a second operand is an error. */
int args_parse_operand(int argc, char **argv, int idx, const struct opt *opts, const char *verb,
                       const char **operand, char **errmsg);
