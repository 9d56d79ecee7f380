/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static const struct opt *find(const struct opt *opts, const char *name, size_t len)
{
        for (const struct opt *o = opts; o->name; o++) {
                if (len == 1 && o->short_name == name[0])
                        return o;
                if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                        return o;
        }
        return NULL;
}

int args_parse(int argc, char **argv, int *idx, const struct opt *opts, const char *verb, char **errmsg)
{
        int i = *idx;
        *errmsg = NULL;
        while (i < argc) {
                const char *a = argv[i];
                if (strcmp(a, "--") == 0) {
                        i++;
                        break;
                }
                if (a[0] != '-' || a[1] == '\0')
                        break;
                const char *name = a + (a[1] == '-' ? 2 : 1);
                const char *eq = strchr(name, '=');
                size_t len = eq ? (size_t)(eq - name) : strlen(name);
                const struct opt *o = find(opts, name, len);
                if (!o) {
                        if (asprintf(errmsg, "%s: unknown flag '%s'", verb, a) < 0)
                                *errmsg = NULL;
                        return -EINVAL;
                }
                if (o->seen)
                        *o->seen = true;
                const char *val = eq ? eq + 1 : NULL;
                if (o->kind == OPT_BOOL) {
                        bool v = true;
                        if (val) {
                                if (strcmp(val, "true") == 0 || strcmp(val, "1") == 0)
                                        v = true;
                                else if (strcmp(val, "false") == 0 || strcmp(val, "0") == 0)
                                        v = false;
                                else {
                                        if (asprintf(errmsg, "%s: flag '--%s' takes true or false, not '%s'", verb,
                                                     o->name, val) < 0)
                                                *errmsg = NULL;
                                        return -EINVAL;
                                }
                        }
                        *(bool *)o->dest = v;
                        i++;
                        continue;
                }
                if (!val) {
                        if (i + 1 >= argc) {
                                if (asprintf(errmsg, "%s: flag '--%s' needs a value", verb, o->name) < 0)
                                        *errmsg = NULL;
                                return -EINVAL;
                        }
                        val = argv[++i];
                }
                i++;
                switch (o->kind) {
                case OPT_STR:
                        *(const char **)o->dest = val;
                        break;
                case OPT_INT:
                        if (parse_int(val, (int *)o->dest) < 0) {
                                if (asprintf(errmsg, "%s: flag '--%s' takes a number, not '%s'", verb, o->name, val) <
                                    0)
                                        *errmsg = NULL;
                                return -EINVAL;
                        }
                        break;
                case OPT_MULTI:
                        if (strv_push((char ***)o->dest, val) < 0)
                                return -ENOMEM;
                        break;
                default:
                        break;
                }
        }
        *idx = i;
        return 0;
}

int args_parse_operand(int argc, char **argv, int idx, const struct opt *opts, const char *verb,
                       const char **operand, char **errmsg)
{
        *operand = NULL;
        while (idx < argc) {
                int r = args_parse(argc, argv, &idx, opts, verb, errmsg);
                if (r < 0)
                        return r;
                if (idx >= argc)
                        break;
                if (strcmp(argv[idx], "--") == 0) {
                        idx++;
                        continue;
                }
                if (*operand) {
                        if (asprintf(errmsg, "%s: one at a time ('%s' and '%s')", verb, *operand, argv[idx]) < 0)
                                *errmsg = NULL;
                        return -EINVAL;
                }
                *operand = argv[idx++];
        }
        return 0;
}
