/* SPDX-License-Identifier: Apache-2.0 */
/* Manifests (OCI, Docker v2 schema 2), indexes and manifest lists, platform selection,
 * image configs, and bad documents whose errors name the field. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "tap.h"

#define DA "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DB "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DC "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static const char oci_manifest[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MOAT_MT_OCI_MANIFEST "\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" DA "\",\"size\":123},"
        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" DB "\",\"size\":1000},"
        "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" DC "\",\"size\":2000}],"
        "\"annotations\":{\"x\":\"y\"}}";
static const char docker_manifest[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MOAT_MT_DOCKER_MANIFEST "\","
        "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"" DA "\",\"size\":7},"
        "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" DB "\",\"size\":5}]}";

static const char index_doc[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MOAT_MT_OCI_INDEX "\",\"manifests\":["
        "{\"mediaType\":\"" MOAT_MT_OCI_MANIFEST "\",\"digest\":\"" DA "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}},"
        "{\"mediaType\":\"" MOAT_MT_OCI_MANIFEST "\",\"digest\":\"" DB "\",\"size\":2,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
        "{\"mediaType\":\"" MOAT_MT_OCI_MANIFEST "\",\"digest\":\"" DC "\",\"size\":3,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
        "{\"mediaType\":\"" MOAT_MT_OCI_MANIFEST "\",\"digest\":\"" DC "\",\"size\":4,\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}}]}";
static const char docker_list[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MOAT_MT_DOCKER_LIST "\",\"manifests\":["
        "{\"mediaType\":\"" MOAT_MT_DOCKER_MANIFEST "\",\"digest\":\"" DA "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
        "{\"mediaType\":\"" MOAT_MT_DOCKER_MANIFEST "\",\"digest\":\"" DB "\",\"size\":2,\"platform\":{\"os\":\"windows\",\"architecture\":\"amd64\"}}]}";
static const char layout_index[] = /* an OCI layout's index.json: no platform */
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MOAT_MT_OCI_MANIFEST "\",\"digest\":\"" DA "\",\"size\":9,"
        "\"annotations\":{\"org.opencontainers.image.ref.name\":\"1\"}}]}";

static const char config_doc[] =
        "{\"created\":\"2024-01-02T03:04:05Z\",\"architecture\":\"amd64\",\"os\":\"linux\","
        "\"config\":{\"Env\":[\"PATH=/bin\",\"A=b\"],\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":null,"
        "\"User\":\"1000:1000\",\"WorkingDir\":\"/srv\"},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DB "\",\"" DC "\"]},\"history\":[]}";

struct bad {
        int kind; /* 0 manifest, 1 index, 2 config */
        const char *doc, *field;
};

static const struct bad bads[] = {
        { 0, "[]", "not a JSON object" },
        { 0, "{", "invalid JSON" },
        { 0, "{\"schemaVersion\":1}", "'schemaVersion'" },
        { 0, "{\"schemaVersion\":2}", "'config' is missing" },
        { 0, "{\"schemaVersion\":2,\"mediaType\":\"" MOAT_MT_OCI_INDEX "\"}", "'mediaType'" },
        { 0, "{\"schemaVersion\":2,\"mediaType\":\"text/plain\"}", "'mediaType'" },
        { 0, "{\"schemaVersion\":2,\"manifests\":[]}", "'manifests'" },
        { 0, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:12\",\"size\":1},\"layers\":[]}",
          "'config.digest'" },
        { 0, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/x\",\"digest\":\"" DA "\",\"size\":1},\"layers\":[]}",
          "'config.mediaType'" },
        { 0, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" DA "\",\"size\":-1},\"layers\":[]}",
          "'config.size'" },
        { 0, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" DA "\"},\"layers\":[]}",
          "'config.size' is missing" },
        { 0, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" DA "\",\"size\":1}}",
          "'layers' is missing" },
        { 0, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" DA "\",\"size\":1},\"layers\":{}}",
          "'layers' must be an array" },
        { 0, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" DA "\",\"size\":1},"
             "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" DB "\",\"size\":1},"
             "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" DB "x\",\"size\":1}]}",
          "'layers[1].digest'" },
        { 0, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" DA "\",\"size\":1},"
             "\"layers\":[{\"mediaType\":\"application/octet-stream\",\"digest\":\"" DB "\",\"size\":1}]}",
          "'layers[0].mediaType'" },
        { 0, "{\"schemaVersion\":2,\"schemaVersion\":2}", "duplicate" },
        { 1, "{\"schemaVersion\":2}", "'manifests' is missing" },
        { 1, "{\"schemaVersion\":2,\"mediaType\":\"" MOAT_MT_OCI_MANIFEST "\",\"manifests\":[]}", "'mediaType'" },
        { 1, "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MOAT_MT_OCI_MANIFEST "\",\"digest\":\"" DA "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}]}",
          "'manifests[0].platform.architecture'" },
        { 1, "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MOAT_MT_OCI_MANIFEST "\",\"digest\":\"" DA "\",\"size\":1,\"platform\":\"linux\"}]}",
          "'manifests[0].platform'" },
        { 1, "{\"schemaVersion\":2,\"manifests\":[1]}", "'manifests[0]'" },
        { 2, "{\"os\":\"linux\"}", "'architecture'" },
        { 2, "{\"os\":\"linux\",\"architecture\":\"amd64\"}", "'rootfs' is missing" },
        { 2, "{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"x\",\"diff_ids\":[]}}", "'rootfs.type'" },
        { 2, "{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:1\"]}}",
          "'rootfs.diff_ids[0]'" },
        { 2, "{\"os\":\"linux\",\"architecture\":\"amd64\",\"config\":{\"Env\":[\"A\",3]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
          "'config.Env[1]'" },
        { 2, "{\"os\":\"linux\",\"architecture\":\"amd64\",\"config\":{\"Cmd\":\"sh\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
          "'config.Cmd'" },
        { 2, "{\"os\":\"linux\",\"architecture\":\"amd64\",\"config\":{\"User\":5},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
          "'config.User'" },
        { 2, "{\"os\":\"linux\",\"architecture\":\"amd64\",\"config\":{\"Env\":[\"A\\u0000B\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
          "NUL" },
};

int main(void)
{
        struct moat_error *err = NULL;
        struct moat_manifest m;
        if (ok(moat_manifest_parse(oci_manifest, strlen(oci_manifest), &m, &err) == 0, "OCI manifest parses")) {
                is_str(m.config.digest, DA, "config digest");
                is_int(m.config.size, 123, "config size");
                is_int(m.n_layers, 2, "two layers");
                is_str(m.layers[1].media_type, "application/vnd.oci.image.layer.v1.tar+zstd", "zstd layer type");
                is_int(m.layers[1].size, 2000, "layer size");
                moat_manifest_clear(&m);
        }
        if (ok(moat_manifest_parse(docker_manifest, strlen(docker_manifest), &m, &err) == 0, "Docker v2s2 manifest parses")) {
                is_str(m.layers[0].digest, DB, "docker layer digest");
                moat_manifest_clear(&m);
        }
        ok(moat_media_is_index(MOAT_MT_OCI_INDEX) && moat_media_is_index(MOAT_MT_DOCKER_LIST) &&
                   !moat_media_is_index(MOAT_MT_OCI_MANIFEST) && !moat_media_is_index(NULL),
           "moat_media_is_index");

        struct moat_index ix;
        const struct moat_descriptor *d = NULL;
        if (ok(moat_index_parse(index_doc, strlen(index_doc), &ix, &err) == 0, "OCI index parses")) {
                is_int(ix.n_manifests, 4, "four entries");
                is_str(ix.manifests[0].variant, "v7", "variant kept");
                ok(moat_index_select(&ix, "linux", "amd64", NULL, &d, &err) == 0 && d == &ix.manifests[2], "linux/amd64");
                ok(moat_index_select(&ix, "linux", "arm64", NULL, &d, &err) == 0 && d == &ix.manifests[1],
                   "linux/arm64 picks v8 when no variant is asked");
                ok(moat_index_select(&ix, "linux", "arm", "v7", &d, &err) == 0 && d == &ix.manifests[0], "linux/arm/v7");
                ok(moat_index_select(&ix, NULL, NULL, NULL, &d, &err) == 0, "the host's platform (this host is in the index)");
                int r = moat_index_select(&ix, "linux", "arm", "v6", &d, &err);
                is_int(r, -ENOENT, "linux/arm/v6 is not there");
                contains(err ? err->msg : NULL, "linux/arm/v6", "the error names what was asked");
                contains(err ? err->msg : NULL, "linux/arm64/v8", "the error names what is there");
                moat_error_free(err);
                err = NULL;
                r = moat_index_select(&ix, "linux", "s390x", NULL, &d, &err);
                is_int(r, -ENOENT, "linux/s390x is not there");
                moat_error_free(err);
                err = NULL;
                moat_index_clear(&ix);
        }
        if (ok(moat_index_parse(docker_list, strlen(docker_list), &ix, &err) == 0, "Docker manifest list parses")) {
                ok(moat_index_select(&ix, "windows", "amd64", NULL, &d, &err) == 0 && d == &ix.manifests[1], "windows/amd64");
                ok(moat_index_select(&ix, "linux", "amd64", NULL, &d, &err) == 0 && d == &ix.manifests[0], "linux/amd64");
                moat_index_clear(&ix);
        }
        if (ok(moat_index_parse(layout_index, strlen(layout_index), &ix, &err) == 0, "OCI layout index.json parses")) {
                ok(moat_index_select(&ix, "linux", "amd64", NULL, &d, &err) == 0 && d == &ix.manifests[0],
                   "a single entry without a platform is taken");
                moat_index_clear(&ix);
        }
        ok(moat_index_parse(oci_manifest, strlen(oci_manifest), &ix, &err) < 0, "a manifest is not an index");
        moat_error_free(err);
        err = NULL;

        struct moat_image_config c;
        if (ok(moat_image_config_parse(config_doc, strlen(config_doc), &c, &err) == 0, "image config parses")) {
                is_str(c.os, "linux", "os");
                is_str(c.arch, "amd64", "architecture");
                is_str(c.env[1], "A=b", "Env");
                ok(c.env[2] == NULL, "Env is NULL-terminated");
                is_str(c.entrypoint[0], "/bin/sh", "Entrypoint");
                ok(c.cmd == NULL, "Cmd null stays NULL");
                is_str(c.user, "1000:1000", "User");
                is_str(c.workdir, "/srv", "WorkingDir");
                is_int(c.n_diff_ids, 2, "two diff ids");
                is_str(c.diff_ids[1], DC, "diff id");
                is_str(c.created, "2024-01-02T03:04:05Z", "created");
                ok(c.raw && json_is_array(json_object_get(c.raw, "history")), "raw keeps the whole document");
                moat_image_config_clear(&c);
        }

        for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
                const struct bad *b = &bads[i];
                int r;
                err = NULL;
                if (b->kind == 0) {
                        r = moat_manifest_parse(b->doc, strlen(b->doc), &m, &err);
                        if (r == 0)
                                moat_manifest_clear(&m);
                } else if (b->kind == 1) {
                        r = moat_index_parse(b->doc, strlen(b->doc), &ix, &err);
                        if (r == 0)
                                moat_index_clear(&ix);
                } else {
                        r = moat_image_config_parse(b->doc, strlen(b->doc), &c, &err);
                        if (r == 0)
                                moat_image_config_clear(&c);
                }
                ok(r < 0, "bad document %zu refused", i);
                contains(err ? err->msg : NULL, b->field, "bad document %zu: error names %s", i, b->field);
                moat_error_free(err);
        }

        /* Size limit: a document over 4 MiB is refused before parsing. */
        size_t big = (4u << 20) + 16;
        char *doc = malloc(big + 1);
        memset(doc, ' ', big);
        doc[0] = '{';
        doc[big - 1] = '}';
        doc[big] = '\0';
        err = NULL;
        is_int(moat_manifest_parse(doc, big, &m, &err), -E2BIG, "a manifest over 4 MiB is refused");
        contains(err ? err->msg : NULL, "limit", "the error says why");
        moat_error_free(err);
        free(doc);
        return done_testing();
}
