/* SPDX-License-Identifier: Apache-2.0 */
/* moat image import PATH [--name REF] [--format json]: an OCI image layout (directory
 * or tar) or a docker-archive tar; prints the names imported. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "image/image.h"

static void import_usage(void)
{
        printf("Usage: moat image import [OPTIONS] PATH\n\n"
               "  PATH             an OCI image layout (a directory or a tar of one), or a docker-archive tar\n"
               "                   (docker save, podman save, skopeo copy ... docker-archive:)\n"
               "  --name REF       the name to give (needed when the archive names none)\n"
               "  --format json    print the imported names as JSON\n");
}

static int fail(struct moat_error *e, const char *msg)
{
        fprintf(stderr, "moat image import: %s\n", e && e->msg ? e->msg : msg);
        return 1;
}

int cli_image_import(struct moat_globals *g, int argc, char **argv, int idx)
{
        bool help = false;
        const char *name = NULL, *format = NULL, *path = NULL;
        const struct opt opts[] = {
                { "name", 0, OPT_STR, &name, NULL },
                { "format", 0, OPT_STR, &format, NULL },
                { "help", 'h', OPT_BOOL, &help, NULL },
                { 0 },
        };
        char *msg = NULL;
        if (args_parse_operand(argc, argv, idx, opts, "import", &path, &msg) < 0) {
                fprintf(stderr, "moat image %s\n", msg ? msg : "import: bad arguments");
                free(msg);
                return 1;
        }
        if (help) {
                import_usage();
                return 0;
        }
        if (!path) {
                fprintf(stderr, "moat image import: what to import? (moat image import PATH [--name REF])\n");
                return 1;
        }
        if (format && strcmp(format, "json") != 0 && strcmp(format, "table") != 0 && strcmp(format, "text") != 0) {
                fprintf(stderr, "moat image import: unknown format '%s' (json or table)\n", format);
                return 1;
        }
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_store *s = NULL;
        if (moat_store_open(g->store, &s, &err) < 0)
                return fail(err, "cannot open the image store");
        _cleanup_strv_ char **names = NULL;
        int r = moat_image_import(s, path, name, &names, &err);
        moat_store_close(s);
        if (r < 0)
                return fail(err, "import failed");
        if (format && strcmp(format, "json") == 0) {
                json_t *a = json_array();
                for (size_t i = 0; names && names[i]; i++)
                        json_array_append_new(a, json_string(names[i]));
                json_t *o = json_pack("{s:o}", "imported", a);
                char *out = o ? json_dumps(o, JSON_COMPACT) : NULL;
                if (out)
                        printf("%s\n", out);
                free(out);
                json_decref(o);
        } else {
                for (size_t i = 0; names && names[i]; i++)
                        printf("%s\n", names[i]);
        }
        return 0;
}
