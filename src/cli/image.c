/* SPDX-License-Identifier: Apache-2.0 */
/* moat image ls|inspect|tag|rm|prune (pull and import live in image_pull.c / image_import.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "image/image.h"

static int img_fail(const char *verb, struct moat_error *err, const char *msg)
{
        fprintf(stderr, "moat image %s: %s\n", verb, err && err->msg ? err->msg : msg ? msg : "failed");
        return 1;
}

static int parse_opts(const char *verb, int argc, char **argv, int *idx, const struct opt *opts)
{
        char *msg = NULL;
        char full[64];
        snprintf(full, sizeof(full), "moat image %s", verb);
        if (args_parse(argc, argv, idx, opts, full, &msg) < 0) {
                fprintf(stderr, "%s\n", msg ? msg : "bad arguments");
                free(msg);
                return -EINVAL;
        }
        return 0;
}

static int check_format(const char *verb, const char *format, bool *json)
{
        *json = false;
        if (!format || STREQ(format, "table"))
                return 0;
        if (STREQ(format, "json")) {
                *json = true;
                return 0;
        }
        fprintf(stderr, "moat image %s: --format '%s': expected table or json\n", verb, format);
        return -EINVAL;
}

static int open_store(struct moat_globals *g, const char *verb, struct moat_store **s)
{
        _cleanup_error_ struct moat_error *err = NULL;
        if (moat_store_open(g->store, s, &err) < 0)
                return img_fail(verb, err, NULL), -1;
        return 0;
}

static void print_json(json_t *j)
{
        char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (s)
                printf("%s\n", s);
        free(s);
        json_decref(j);
}

static void human_size(int64_t n, char *buf, size_t len)
{
        static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
        double v = (double)n;
        size_t u = 0;
        while (v >= 1000 && u + 1 < ARRAY_SIZE(units)) {
                v /= 1000;
                u++;
        }
        if (u == 0)
                snprintf(buf, len, "%lld B", (long long)n);
        else
                snprintf(buf, len, "%.*f %s", v < 10 ? 1 : 0, v, units[u]);
}

/* "2024-05-01T12:00:00.123Z" -> "3 days ago" */
static void human_created(const char *created, char *buf, size_t len)
{
        struct tm tm = { 0 };
        const char *end = created ? strptime(created, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
        if (!end) {
                snprintf(buf, len, "-");
                return;
        }
        time_t t = timegm(&tm);
        long long d = (long long)(time(NULL) - t);
        if (d < 0)
                d = 0;
        static const struct {
                long long secs;
                const char *unit;
        } steps[] = { { 365LL * 86400, "year" }, { 30LL * 86400, "month" }, { 7LL * 86400, "week" },
                      { 86400, "day" },          { 3600, "hour" },          { 60, "minute" } };
        for (size_t i = 0; i < ARRAY_SIZE(steps); i++)
                if (d >= steps[i].secs) {
                        long long n = d / steps[i].secs;
                        snprintf(buf, len, "%lld %s%s ago", n, steps[i].unit, n == 1 ? "" : "s");
                        return;
                }
        snprintf(buf, len, "less than a minute ago");
}

/* "docker.io/library/busybox:latest" -> name "docker.io/library/busybox", tag "latest" */
static void split_name(const char *full, char **name, char **tag)
{
        struct moat_ref r;
        *name = *tag = NULL;
        if (full && moat_ref_parse(full, &r, NULL) >= 0) {
                if (asprintf(name, "%s/%s", r.registry, r.repository) < 0)
                        *name = NULL;
                *tag = strdup(r.tag ? r.tag : "<none>");
                moat_ref_clear(&r);
        }
        if (!*name)
                *name = strdup(full ? full : "<none>");
        if (!*tag)
                *tag = strdup("<none>");
}

static json_t *image_json(const struct moat_image *img, bool with_split)
{
        json_t *layers = json_array();
        for (size_t i = 0; i < img->n_layers; i++)
                json_array_append_new(layers, json_string(img->layers[i]));
        json_t *o = json_object();
        json_object_set_new(o, "name", img->name ? json_string(img->name) : json_null());
        if (with_split) {
                _cleanup_free_ char *name = NULL, *tag = NULL;
                split_name(img->name, &name, &tag);
                json_object_set_new(o, "repository", json_string(name ? name : ""));
                json_object_set_new(o, "tag", json_string(tag ? tag : ""));
        }
        json_object_set_new(o, "id", json_string(img->config_digest + 7));
        json_object_set_new(o, "manifest", json_string(img->manifest_digest));
        json_object_set_new(o, "config", json_string(img->config_digest));
        json_object_set_new(o, "created", img->created ? json_string(img->created) : json_null());
        json_object_set_new(o, "size", json_integer(img->size));
        json_object_set_new(o, "layers", layers);
        return o;
}

static int image_ls(struct moat_globals *g, int argc, char **argv, int idx)
{
        const char *format = NULL;
        bool json, quiet = false;
        const struct opt opts[] = {
                { "format", 0, OPT_STR, &format, NULL },
                { "quiet", 'q', OPT_BOOL, &quiet, NULL },
                { 0 },
        };
        if (parse_opts("ls", argc, argv, &idx, opts) < 0 || check_format("ls", format, &json) < 0)
                return 1;
        if (idx < argc)
                return img_fail("ls", NULL, "takes no arguments");
        struct moat_store *s = NULL;
        if (open_store(g, "ls", &s) < 0)
                return 1;
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_image **v = NULL;
        size_t n = 0;
        int r = moat_store_list(s, &v, &n, &err);
        moat_store_close(s);
        if (r < 0)
                return img_fail("ls", err, NULL);
        if (json) {
                json_t *a = json_array();
                for (size_t i = 0; i < n; i++)
                        json_array_append_new(a, image_json(v[i], true));
                print_json(a);
        } else if (quiet) {
                for (size_t i = 0; i < n; i++)
                        printf("%.12s\n", v[i]->config_digest + 7);
        } else {
                char **names = calloc(n + 1, sizeof(char *)), **tags = calloc(n + 1, sizeof(char *));
                int wn = 4, wt = 3;
                for (size_t i = 0; names && tags && i < n; i++) {
                        split_name(v[i]->name, &names[i], &tags[i]);
                        if (names[i] && (int)strlen(names[i]) > wn)
                                wn = (int)strlen(names[i]);
                        if (tags[i] && (int)strlen(tags[i]) > wt)
                                wt = (int)strlen(tags[i]);
                }
                printf("%-*s  %-*s  %-12s  %-20s  %s\n", wn, "NAME", wt, "TAG", "ID", "CREATED", "SIZE");
                for (size_t i = 0; names && tags && i < n; i++) {
                        char created[64], size[32];
                        human_created(v[i]->created, created, sizeof(created));
                        human_size(v[i]->size, size, sizeof(size));
                        printf("%-*s  %-*s  %.12s  %-20s  %s\n", wn, names[i] ? names[i] : "?", wt,
                               tags[i] ? tags[i] : "?", v[i]->config_digest + 7, created, size);
                }
                strv_free(names);
                strv_free(tags);
        }
        moat_images_free(v, n);
        return 0;
}

static int image_inspect(struct moat_globals *g, int argc, char **argv, int idx)
{
        const char *format = NULL;
        bool json;
        const struct opt opts[] = { { "format", 0, OPT_STR, &format, NULL }, { 0 } };
        if (parse_opts("inspect", argc, argv, &idx, opts) < 0 || check_format("inspect", format, &json) < 0)
                return 1;
        if (idx >= argc)
                return img_fail("inspect", NULL, "needs an image name (moat image inspect IMAGE...)");
        struct moat_store *s = NULL;
        if (open_store(g, "inspect", &s) < 0)
                return 1;
        json_t *out = json_array();
        int rc = 0;
        for (int i = idx; i < argc; i++) {
                _cleanup_error_ struct moat_error *err = NULL;
                struct moat_image *img = NULL;
                if (moat_store_lookup(s, argv[i], &img, &err) < 0) {
                        rc = img_fail("inspect", err, NULL);
                        continue;
                }
                _cleanup_free_ char *buf = NULL;
                size_t len = 0;
                struct moat_image_config c = { 0 };
                json_t *o = image_json(img, false);
                if (moat_store_blob_read(s, img->config_digest, &buf, &len, &err) < 0 ||
                    moat_image_config_parse(buf, len, &c, &err) < 0) {
                        rc = img_fail("inspect", err, NULL);
                        json_decref(o);
                        moat_image_free(img);
                        continue;
                }
                json_object_set(o, "image_config", c.raw);
                json_array_append_new(out, o);
                moat_image_config_clear(&c);
                moat_image_free(img);
        }
        moat_store_close(s);
        print_json(out);
        return rc;
}

static int image_tag(struct moat_globals *g, int argc, char **argv, int idx)
{
        const char *format = NULL;
        bool json;
        const struct opt opts[] = { { "format", 0, OPT_STR, &format, NULL }, { 0 } };
        if (parse_opts("tag", argc, argv, &idx, opts) < 0 || check_format("tag", format, &json) < 0)
                return 1;
        if (argc - idx != 2)
                return img_fail("tag", NULL, "needs two arguments (moat image tag IMAGE NEW-NAME)");
        struct moat_store *s = NULL;
        if (open_store(g, "tag", &s) < 0)
                return 1;
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_image *img = NULL;
        int r = moat_store_lookup(s, argv[idx], &img, &err);
        if (r >= 0)
                r = moat_store_tag(s, argv[idx + 1], img->manifest_digest, &err);
        struct moat_ref ref;
        char *canon = NULL;
        if (r >= 0 && moat_ref_parse(argv[idx + 1], &ref, NULL) >= 0) {
                canon = moat_ref_string(&ref);
                moat_ref_clear(&ref);
        }
        moat_store_close(s);
        if (r < 0) {
                moat_image_free(img);
                return img_fail("tag", err, NULL);
        }
        if (json)
                print_json(json_pack("{s:s, s:s}", "name", canon ? canon : argv[idx + 1], "manifest",
                                     img->manifest_digest));
        free(canon);
        moat_image_free(img);
        return 0;
}

static int image_rm(struct moat_globals *g, int argc, char **argv, int idx)
{
        const char *format = NULL;
        bool json;
        const struct opt opts[] = { { "format", 0, OPT_STR, &format, NULL }, { 0 } };
        if (parse_opts("rm", argc, argv, &idx, opts) < 0 || check_format("rm", format, &json) < 0)
                return 1;
        if (idx >= argc)
                return img_fail("rm", NULL, "needs an image name (moat image rm IMAGE...)");
        struct moat_store *s = NULL;
        if (open_store(g, "rm", &s) < 0)
                return 1;
        int rc = 0;
        json_t *done = json_array();
        for (int i = idx; i < argc; i++) {
                _cleanup_error_ struct moat_error *err = NULL;
                if (moat_store_untag(s, argv[i], &err) < 0) {
                        rc = img_fail("rm", err, NULL);
                        continue;
                }
                json_array_append_new(done, json_string(argv[i]));
                if (!json)
                        printf("Untagged: %s\n", argv[i]);
        }
        moat_store_close(s);
        if (json)
                print_json(done);
        else
                json_decref(done);
        return rc;
}

static int image_prune(struct moat_globals *g, int argc, char **argv, int idx)
{
        const char *format = NULL;
        bool json;
        const struct opt opts[] = { { "format", 0, OPT_STR, &format, NULL }, { 0 } };
        if (parse_opts("prune", argc, argv, &idx, opts) < 0 || check_format("prune", format, &json) < 0)
                return 1;
        if (idx < argc)
                return img_fail("prune", NULL, "takes no arguments");
        struct moat_store *s = NULL;
        if (open_store(g, "prune", &s) < 0)
                return 1;
        _cleanup_error_ struct moat_error *err = NULL;
        uint64_t bytes = 0;
        size_t items = 0;
        int r = moat_store_prune(s, &bytes, &items, &err);
        moat_store_close(s);
        if (r < 0)
                return img_fail("prune", err, NULL);
        if (json) {
                print_json(json_pack("{s:I, s:I}", "items", (json_int_t)items, "bytes", (json_int_t)bytes));
        } else {
                char size[32];
                human_size((int64_t)bytes, size, sizeof(size));
                printf("Removed %zu unreferenced item%s, freed %s\n", items, items == 1 ? "" : "s", size);
        }
        return 0;
}

static void image_usage(FILE *f)
{
        fprintf(f, "Usage: moat image COMMAND ...\n\n"
                   "  pull [--insecure] REF                 fetch an image from a registry\n"
                   "  import PATH [--name REF]              an OCI layout (dir or tar) or a docker-archive tar\n"
                   "  ls [--format json] [-q]               the images in the store\n"
                   "  inspect IMAGE...                      the image record and its config, as JSON\n"
                   "  tag IMAGE NEW-NAME                    another name for an image\n"
                   "  rm IMAGE...                           remove names (blobs stay until prune)\n"
                   "  prune                                 remove blobs and layers no image uses\n"
                   "\nEvery command takes --format json.\n");
}

int cli_moat_image(struct moat_globals *g, int argc, char **argv, int idx)
{
        if (idx >= argc) {
                image_usage(stderr);
                return 1;
        }
        const char *verb = argv[idx++];
        if (STREQ(verb, "pull"))
                return cli_image_pull(g, argc, argv, idx);
        if (STREQ(verb, "import"))
                return cli_image_import(g, argc, argv, idx);
        if (STREQ(verb, "ls") || STREQ(verb, "list"))
                return image_ls(g, argc, argv, idx);
        if (STREQ(verb, "inspect"))
                return image_inspect(g, argc, argv, idx);
        if (STREQ(verb, "tag"))
                return image_tag(g, argc, argv, idx);
        if (STREQ(verb, "rm") || STREQ(verb, "remove"))
                return image_rm(g, argc, argv, idx);
        if (STREQ(verb, "prune"))
                return image_prune(g, argc, argv, idx);
        if (STREQ(verb, "help") || STREQ(verb, "--help") || STREQ(verb, "-h")) {
                image_usage(stdout);
                return 0;
        }
        fprintf(stderr, "moat image: unknown command '%s' (see moat image help)\n", verb);
        return 1;
}
