/* SPDX-License-Identifier: Apache-2.0 */
/* Image references: the grammar (good and bad inputs), the defaults, the canonical form. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "tap.h"

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct {
        const char *in, *registry, *repository, *tag, *digest, *canon;
} good[] = {
        { "busybox", "docker.io", "library/busybox", "latest", NULL, "docker.io/library/busybox:latest" },
        { "postgres:16", "docker.io", "library/postgres", "16", NULL, "docker.io/library/postgres:16" },
        { "team/api", "docker.io", "team/api", "latest", NULL, "docker.io/team/api:latest" },
        { "docker.io/busybox:1.36", "docker.io", "library/busybox", "1.36", NULL, "docker.io/library/busybox:1.36" },
        { "index.docker.io/library/alpine", "docker.io", "library/alpine", "latest", NULL,
          "docker.io/library/alpine:latest" },
        { "localhost/x:1", "localhost", "x", "1", NULL, "localhost/x:1" },
        { "localhost:5000/x", "localhost:5000", "x", "latest", NULL, "localhost:5000/x:latest" },
        { "registry.local:5000/team/api@" D64, "registry.local:5000", "team/api", NULL, D64,
          "registry.local:5000/team/api@" D64 },
        { "registry.local:5000/team/api:v2@" D64, "registry.local:5000", "team/api", "v2", D64,
          "registry.local:5000/team/api:v2@" D64 },
        { "busybox@" D64, "docker.io", "library/busybox", NULL, D64, "docker.io/library/busybox@" D64 },
        { "127.0.0.1:5000/a/b/c:x_y.z-1", "127.0.0.1:5000", "a/b/c", "x_y.z-1", NULL, "127.0.0.1:5000/a/b/c:x_y.z-1" },
        { "[::1]:5000/img:1", "[::1]:5000", "img", "1", NULL, "[::1]:5000/img:1" },
        { "a__b/c-d/e.f_g--h", "docker.io", "a__b/c-d/e.f_g--h", "latest", NULL, "docker.io/a__b/c-d/e.f_g--h:latest" },
        { "Example.COM/x", "Example.COM", "x", "latest", NULL, "Example.COM/x:latest" },
        { "quay.io/podman/stable:LATEST_1", "quay.io", "podman/stable", "LATEST_1", NULL,
          "quay.io/podman/stable:LATEST_1" },
};

static const struct {
        const char *in, *why;
} bad[] = {
        { "", "empty" },
        { ":tag", "no name" },
        { "Busybox", "upper case" },
        { "docker.io/Library/busybox", "upper case path" },
        { "busybox:", "empty tag" },
        { "busybox:-x", "tag starting with -" },
        { "busybox:a/b", "slash in tag" },
        { "busybox@sha256:abc", "short digest" },
        { "busybox@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "upper hex digest" },
        { "busybox@md5:0123456789abcdef0123456789abcdef", "other algorithm" },
        { "a//b", "empty component" },
        { "a/b/", "trailing slash" },
        { "-a/b", "component starting with -" },
        { "a_/b", "component ending with _" },
        { "a...b", "three dots" },
        { "a___b", "three underscores" },
        { "reg.io:port/x", "port not a number" },
        { "reg.io:123456/x", "port too long" },
        { "-reg.io/x", "label starting with -" },
        { "reg..io/x", "empty label" },
        { "[zz]:5000/x", "bad ipv6" },
        { "busy box", "space" },
        { "busybox:1:2", "two colons" },
};

int main(void)
{
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                struct moat_ref r;
                struct moat_error *err = NULL;
                int ret = moat_ref_parse(good[i].in, &r, &err);
                if (!ok(ret == 0, "parses '%s'", good[i].in)) {
                        printf("#   %s\n", err ? err->msg : "?");
                        moat_error_free(err);
                        continue;
                }
                is_str(r.registry, good[i].registry, "'%s': registry", good[i].in);
                if (good[i].repository) {
                        is_str(r.repository, good[i].repository, "'%s': repository", good[i].in);
                        is_str(r.tag, good[i].tag, "'%s': tag", good[i].in);
                        is_str(r.digest, good[i].digest, "'%s': digest", good[i].in);
                        char *s = moat_ref_string(&r);
                        is_str(s, good[i].canon, "'%s': canonical", good[i].in);
                        /* The canonical form parses back to itself. */
                        struct moat_ref r2;
                        if (ok(moat_ref_parse(s, &r2, NULL) == 0, "'%s' parses again", s)) {
                                char *s2 = moat_ref_string(&r2);
                                is_str(s2, s, "round trip of '%s'", s);
                                free(s2);
                                moat_ref_clear(&r2);
                        }
                        free(s);
                }
                moat_ref_clear(&r);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct moat_ref r;
                struct moat_error *err = NULL;
                int ret = moat_ref_parse(bad[i].in, &r, &err);
                ok(ret == -EINVAL, "refuses '%s' (%s)", bad[i].in, bad[i].why);
                if (ret == 0) {
                        char *s = moat_ref_string(&r);
                        printf("#   parsed as '%s'\n", s ? s : "?");
                        free(s);
                        moat_ref_clear(&r);
                } else if (*bad[i].in) {
                        ok(err && err->msg && strstr(err->msg, bad[i].in), "the error names '%s': %s", bad[i].in,
                           err && err->msg ? err->msg : "(none)");
                }
                moat_error_free(err);
        }
        /* Long names */
        char longname[300];
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        struct moat_ref r;
        ok(moat_ref_parse(longname, &r, NULL) == -EINVAL, "refuses a name over 255 characters");
        char longtag[200] = "busybox:";
        memset(longtag + 8, 't', 129);
        longtag[8 + 129] = '\0';
        ok(moat_ref_parse(longtag, &r, NULL) == -EINVAL, "refuses a tag over 128 characters");
        longtag[8 + 128] = '\0';
        if (ok(moat_ref_parse(longtag, &r, NULL) == 0, "takes a tag of 128 characters"))
                moat_ref_clear(&r);

        /* digests */
        ok(moat_digest_validate(D64) == 0, "a good digest validates");
        ok(moat_digest_validate("sha256:") < 0, "empty hex is refused");
        ok(moat_digest_validate("sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") < 0, "sha512 is refused");
        ok(moat_digest_validate(NULL) < 0, "NULL is refused");
        struct moat_sha256 *h = moat_sha256_new();
        char out[72];
        moat_sha256_update(h, "ab", 2);
        moat_sha256_update(h, "c", 1);
        moat_sha256_final(h, out);
        is_str(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256 of 'abc', streamed");
        h = moat_sha256_new();
        moat_sha256_final(h, out);
        is_str(out, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256 of nothing");
        return done_testing();
}
