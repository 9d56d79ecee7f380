/* SPDX-License-Identifier: Apache-2.0 */
/* The registry client's parsers: WWW-Authenticate challenges, base64, auth files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "image/registry.h"
#include "tap.h"

static void test_challenges(void)
{
        struct moat_auth_challenge c;

        is_int(moat_www_authenticate_parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                                           "scope=\"repository:library/busybox:pull\"",
                                           &c),
               0, "bearer challenge parses");
        is_str(c.scheme, "bearer", "scheme lowercased");
        is_str(c.realm, "https://auth.docker.io/token", "realm");
        is_str(c.service, "registry.docker.io", "service");
        is_str(c.scope, "repository:library/busybox:pull", "scope");
        moat_auth_challenge_clear(&c);

        is_int(moat_www_authenticate_parse("Basic realm=\"moat-test\"", &c), 0, "basic challenge parses");
        is_str(c.scheme, "basic", "basic scheme");
        is_str(c.realm, "moat-test", "basic realm");
        ok(c.service == NULL && c.scope == NULL, "basic: no service or scope");
        moat_auth_challenge_clear(&c);

        is_int(moat_www_authenticate_parse("  BEARER  realm = \"https://h/t?a=1\" , service=reg.io, scope=\"repo:a:pull,push\"",
                                           &c),
               0, "spaces, a token value, a comma inside quotes");
        is_str(c.realm, "https://h/t?a=1", "realm with query");
        is_str(c.service, "reg.io", "unquoted service");
        is_str(c.scope, "repo:a:pull,push", "comma kept inside the quoted scope");
        moat_auth_challenge_clear(&c);

        is_int(moat_www_authenticate_parse("Bearer realm=\"a\\\"b\"", &c), 0, "escaped quote");
        is_str(c.realm, "a\"b", "backslash escape undone");
        moat_auth_challenge_clear(&c);

        is_int(moat_www_authenticate_parse("Bearer realm=\"unterminated", &c), -EINVAL, "unterminated quote refused");
        is_int(moat_www_authenticate_parse("", &c), -EINVAL, "empty header refused");
        is_int(moat_www_authenticate_parse("=x", &c), -EINVAL, "no scheme refused");
}

static void test_base64(void)
{
        char *s = moat_base64_encode("user:pass", 9);
        is_str(s, "dXNlcjpwYXNz", "encode");
        free(s);
        s = moat_base64_encode("ab", 2);
        is_str(s, "YWI=", "encode with padding");
        free(s);
        char *d = NULL;
        size_t n = 0;
        is_int(moat_base64_decode("dXNlcjpwYXNz", &d, &n), 0, "decode");
        is_str(d, "user:pass", "decoded");
        is_int(n, 9, "decoded length");
        free(d);
        d = NULL;
        is_int(moat_base64_decode("YWI=", &d, &n), 0, "decode with padding");
        is_str(d, "ab", "decoded with padding");
        free(d);
        d = NULL;
        is_int(moat_base64_decode("a*b", &d, &n), -EINVAL, "bad character refused");
}

static void test_auth_json(void)
{
        const char *j = "{\"auths\": {"
                        "\"127.0.0.1:5000\": {\"auth\": \"dXNlcjpwYXNz\"},"
                        "\"https://index.docker.io/v1/\": {\"auth\": \"ZDpwOnc=\"},"
                        "\"http://reg.example:8080/v2/\": {\"username\": \"u2\", \"password\": \"p2\"},"
                        "\"bad.example\": {\"auth\": \"bm9jb2xvbg==\"}}}";
        char *u = NULL, *p = NULL;
        _cleanup_error_ struct moat_error *err = NULL;

        is_int(moat_auth_json_lookup(j, strlen(j), "127.0.0.1:5000", &u, &p, &err), 0, "host:port entry");
        is_str(u, "user", "user");
        is_str(p, "pass", "password");
        free(u), free(p), u = p = NULL;

        is_int(moat_auth_json_lookup(j, strlen(j), "docker.io", &u, &p, &err), 0, "docker.io finds index.docker.io");
        is_str(u, "d", "docker.io user");
        is_str(p, "p:w", "a colon in the password is kept");
        free(u), free(p), u = p = NULL;

        is_int(moat_auth_json_lookup(j, strlen(j), "reg.example:8080", &u, &p, &err), 0, "scheme and path stripped");
        is_str(u, "u2", "username field");
        is_str(p, "p2", "password field");
        free(u), free(p), u = p = NULL;

        is_int(moat_auth_json_lookup(j, strlen(j), "127.0.0.1:5001", &u, &p, &err), -ENOENT, "other port: no entry");
        ok(u == NULL && err == NULL, "nothing set for a missing entry");

        is_int(moat_auth_json_lookup(j, strlen(j), "bad.example", &u, &p, &err), -EINVAL, "auth without a colon refused");
        contains(err ? err->msg : NULL, "bad.example", "the error names the entry");
        moat_error_free(err);
        err = NULL;

        is_int(moat_auth_json_lookup("{", 1, "x", &u, &p, &err), -EINVAL, "not JSON refused");
        moat_error_free(err);
        err = NULL;
        is_int(moat_auth_json_lookup("{}", 2, "x", &u, &p, &err), -ENOENT, "no auths: no entry");
}

static void put(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");
        ok(f && fputs(text, f) >= 0 && fclose(f) == 0, "wrote '%s'", path);
}

static void test_auth_files(void)
{
        char dir[] = "/tmp/moat-test-auth.XXXXXX";
        if (!mkdtemp(dir)) {
                ok(0, "mkdtemp");
                return;
        }
        char f1[256], f2[256], xdg[256], home[256];
        snprintf(f1, sizeof(f1), "%s/a.json", dir);
        snprintf(xdg, sizeof(xdg), "%s/xdg", dir);
        snprintf(home, sizeof(home), "%s/home", dir);
        snprintf(f2, sizeof(f2), "%s/xdg/containers", dir);
        mkdir_p(f2, 0700);
        snprintf(f2, sizeof(f2), "%s/xdg/containers/auth.json", dir);
        char hd[256];
        snprintf(hd, sizeof(hd), "%s/home/.docker", dir);
        mkdir_p(hd, 0700);
        char f3[300];
        snprintf(f3, sizeof(f3), "%s/config.json", hd);
        put(f1, "{\"auths\":{\"h1\":{\"auth\":\"YTox\"}}}");           /* a:1 */
        put(f2, "{\"auths\":{\"h1\":{\"auth\":\"Yjoy\"},\"h2\":{\"auth\":\"Yjoy\"}}}"); /* b:2 */
        put(f3, "{\"auths\":{\"h3\":{\"auth\":\"Yzoz\"}}}");           /* c:3 */
        setenv("REGISTRY_AUTH_FILE", f1, 1);
        setenv("XDG_RUNTIME_DIR", xdg, 1);
        setenv("HOME", home, 1);

        char *u = NULL, *p = NULL, *src = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        is_int(moat_auth_find(NULL, "h1", &u, &p, &src, &err), 0, "h1 found");
        is_str(u, "a", "$REGISTRY_AUTH_FILE wins over the XDG file");
        is_str(src, f1, "source names the file");
        free(u), free(p), free(src), u = p = src = NULL;
        is_int(moat_auth_find(NULL, "h2", &u, &p, &src, &err), 0, "h2 found");
        is_str(u, "b", "then ${XDG_RUNTIME_DIR}/containers/auth.json");
        free(u), free(p), free(src), u = p = src = NULL;
        is_int(moat_auth_find(NULL, "h3", &u, &p, &src, &err), 0, "h3 found");
        is_str(u, "c", "then ~/.docker/config.json");
        free(u), free(p), free(src), u = p = src = NULL;
        is_int(moat_auth_find(NULL, "h4", &u, &p, &src, &err), -ENOENT, "h4 nowhere");
        is_int(moat_auth_find(f3, "h1", &u, &p, &src, &err), -ENOENT, "an explicit file is the only one read");
        moat_error_free(err);
        err = NULL;
        char missing[300];
        snprintf(missing, sizeof(missing), "%s/missing.json", dir);
        is_int(moat_auth_find(missing, "h1", &u, &p, &src, &err), -EINVAL, "an explicit missing file is an error");
        contains(err ? err->msg : NULL, "missing.json", "naming the file");
        rm_rf_at(AT_FDCWD, dir);
}

int main(void)
{
        test_challenges();
        test_base64();
        test_auth_json();
        test_auth_files();
        return done_testing();
}
