/* SPDX-License-Identifier: Apache-2.0 */
/* moat image pull REF [--insecure] [--platform os/arch[/variant]] [--format json] [--quiet]
 *                      [--auth-file FILE] [--parallel N] */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/cleanup.h"
#include "image/image.h"

static void pull_usage(void)
{
        printf("Usage: moat image pull [OPTIONS] REF\n\n"
               "  --insecure                  plain http (loopback registries only)\n"
               "  --platform OS/ARCH[/VARIANT] the entry of a multi-platform image (default: this host)\n"
               "  --auth-file FILE            credentials (default $REGISTRY_AUTH_FILE,\n"
               "                              $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json)\n"
               "  --parallel N                layers downloaded at once (default 4)\n"
               "  --format json               print the pulled image as JSON\n"
               "  -q, --quiet                 no progress\n");
}

static int fail(struct moat_error *e, const char *msg)
{
        fprintf(stderr, "moat image pull: %s\n", e && e->msg ? e->msg : msg);
        return 1;
}

static json_t *image_json(const struct moat_image *img)
{
        json_t *layers = json_array();
        for (size_t i = 0; i < img->n_layers; i++)
                json_array_append_new(layers, json_string(img->layers[i]));
        json_t *j = json_pack("{s:s?, s:s?, s:s?, s:o, s:I}", "name", img->name, "manifest_digest",
                              img->manifest_digest, "config_digest", img->config_digest, "layers", layers, "size",
                              (json_int_t)img->size);
        if (j && img->created)
                json_object_set_new(j, "created", json_string(img->created));
        return j;
}

int cli_image_pull(struct moat_globals *g, int argc, char **argv, int idx)
{
        bool insecure = false, help = false, quiet = false;
        const char *platform = NULL, *format = NULL, *auth_file = NULL, *ref = NULL;
        int parallel = 4;
        const struct opt opts[] = {
                { "insecure", 0, OPT_BOOL, &insecure, NULL },
                { "platform", 0, OPT_STR, &platform, NULL },
                { "format", 0, OPT_STR, &format, NULL },
                { "auth-file", 0, OPT_STR, &auth_file, NULL },
                { "authfile", 0, OPT_STR, &auth_file, NULL },
                { "parallel", 0, OPT_INT, &parallel, NULL },
                { "quiet", 'q', OPT_BOOL, &quiet, NULL },
                { "help", 'h', OPT_BOOL, &help, NULL },
                { 0 },
        };
        char *msg = NULL;
        if (args_parse_operand(argc, argv, idx, opts, "pull", &ref, &msg) < 0) {
                fprintf(stderr, "moat image %s\n", msg ? msg : "pull: bad arguments");
                free(msg);
                return 1;
        }
        if (help) {
                pull_usage();
                return 0;
        }
        if (!ref) {
                fprintf(stderr, "moat image pull: which image? (moat image pull REF)\n");
                return 1;
        }
        if (format && strcmp(format, "json") != 0 && strcmp(format, "table") != 0 && strcmp(format, "text") != 0) {
                fprintf(stderr, "moat image pull: unknown format '%s' (json or table)\n", format);
                return 1;
        }
        bool json = format && strcmp(format, "json") == 0;
        if (parallel < 1 || parallel > 64) {
                fprintf(stderr, "moat image pull: '--parallel %d': between 1 and 64\n", parallel);
                return 1;
        }
        _cleanup_free_ char *plat = platform ? strdup(platform) : NULL;
        struct moat_pull_opts o = { .insecure = insecure, .auth_file = auth_file, .parallel = parallel,
                                    .progress_fd = quiet || json ? -1 : STDERR_FILENO };
        if (platform) {
                char *os = plat, *arch = plat ? strchr(plat, '/') : NULL, *variant = NULL;
                if (!plat || !arch || arch == os || !arch[1]) {
                        fprintf(stderr, "moat image pull: '--platform %s': expected os/arch[/variant]\n", platform);
                        return 1;
                }
                *arch++ = 0;
                variant = strchr(arch, '/');
                if (variant) {
                        *variant++ = 0;
                        if (!*variant || strchr(variant, '/')) {
                                fprintf(stderr, "moat image pull: '--platform %s': expected os/arch[/variant]\n",
                                        platform);
                                return 1;
                        }
                }
                o.os = os;
                o.arch = arch;
                o.variant = variant;
        }

        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_store *s = NULL;
        if (moat_store_open(g->store, &s, &err) < 0)
                return fail(err, "cannot open the image store");
        struct moat_image *img = NULL;
        int r = moat_image_pull(s, ref, &o, &img, &err);
        moat_store_close(s);
        if (r < 0)
                return fail(err, "pull failed");
        if (json) {
                json_t *j = image_json(img);
                char *txt = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
                if (txt)
                        printf("%s\n", txt);
                free(txt);
                json_decref(j);
        } else {
                printf("%s\n  manifest %s\n", img->name, img->manifest_digest);
        }
        moat_image_free(img);
        return 0;
}
