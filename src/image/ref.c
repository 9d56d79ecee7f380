/* SPDX-License-Identifier: Apache-2.0 */
/* Image references in the docker/distribution grammar:
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ domain "/" ] path-component [ "/" path-component ]*
 *   domain     := host [ ":" port ]      host: dns labels or "[" ipv6 "]"
 *   path-comp. := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 * The first component is a domain when it has a "." or ":", is "localhost", or has
 * upper case; otherwise the domain is docker.io, where one-component names get "library/". */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "image/image.h"

#define NAME_MAX_TOTAL 255

static bool is_lower_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* One path component, [s, s+n). */
static bool path_component_ok(const char *s, size_t n)
{
        if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
                return false;
        for (size_t i = 0; i < n;) {
                if (is_lower_alnum(s[i])) {
                        i++;
                        continue;
                }
                size_t j = i;
                while (j < n && !is_lower_alnum(s[j]))
                        j++;
                size_t sep = j - i;
                bool ok = false;
                if (sep == 1 && (s[i] == '.' || s[i] == '_'))
                        ok = true;
                else if (sep == 2 && s[i] == '_' && s[i + 1] == '_')
                        ok = true;
                else {
                        ok = true;
                        for (size_t k = i; k < j; k++)
                                if (s[k] != '-')
                                        ok = false;
                }
                if (!ok)
                        return false;
                i = j;
        }
        return true;
}

static bool domain_ok(const char *s, size_t n)
{
        size_t host_end = n;
        const char *colon = NULL;
        if (n == 0)
                return false;
        if (s[0] == '[') {
                const char *close = memchr(s, ']', n);
                if (!close || close == s + 1)
                        return false;
                for (const char *p = s + 1; p < close; p++)
                        if (!isxdigit((unsigned char)*p) && *p != ':')
                                return false;
                host_end = (size_t)(close - s) + 1;
                if (host_end < n) {
                        if (s[host_end] != ':')
                                return false;
                        colon = s + host_end;
                }
        } else {
                colon = memchr(s, ':', n);
                if (colon)
                        host_end = (size_t)(colon - s);
                /* dns labels: [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])? separated by "." */
                size_t lab = 0;
                for (size_t i = 0; i <= host_end; i++) {
                        if (i == host_end || s[i] == '.') {
                                if (lab == 0 || !is_alnum(s[i - 1]) || !is_alnum(s[i - lab]))
                                        return false;
                                lab = 0;
                                continue;
                        }
                        if (!is_alnum(s[i]) && s[i] != '-')
                                return false;
                        lab++;
                }
        }
        if (colon) {
                size_t plen = n - (size_t)(colon - s) - 1;
                if (plen == 0 || plen > 5)
                        return false;
                for (size_t i = 1; i <= plen; i++)
                        if (!isdigit((unsigned char)colon[i]))
                                return false;
        }
        return true;
}

static bool tag_ok(const char *t)
{
        size_t n = strlen(t);
        if (n == 0 || n > 128)
                return false;
        if (!is_alnum(t[0]) && t[0] != '_')
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_alnum(t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
                        return false;
        return true;
}

void moat_ref_clear(struct moat_ref *r)
{
        if (!r)
                return;
        free(r->registry);
        free(r->repository);
        free(r->tag);
        free(r->digest);
        *r = (struct moat_ref){ 0 };
}

int moat_ref_parse(const char *s, struct moat_ref *out, struct moat_error **err)
{
        *out = (struct moat_ref){ 0 };
        if (!s || !*s)
                return moat_error_input(err, -EINVAL, "empty image reference");
        _cleanup_free_ char *buf = strdup(s);
        if (!buf)
                return -ENOMEM;
        struct moat_ref r = { 0 };
        int ret = -EINVAL;

        char *at = strchr(buf, '@');
        if (at) {
                *at = '\0';
                const char *d = at + 1;
                if (strncmp(d, "sha256:", 7) != 0 && strchr(d, ':')) {
                        moat_error_input(err, -EINVAL, "image reference '%s': unsupported digest algorithm in '%s'", s, d);
                        goto fail;
                }
                if (moat_digest_validate(d) < 0) {
                        moat_error_input(err, -EINVAL,
                                         "image reference '%s': '%s' is not a digest (sha256: and 64 lowercase hex)", s, d);
                        goto fail;
                }
                if (!(r.digest = strdup(d)))
                        goto nomem;
        }
        char *slash = strrchr(buf, '/');
        char *colon = strrchr(slash ? slash : buf, ':');
        if (colon) {
                *colon = '\0';
                if (!tag_ok(colon + 1)) {
                        moat_error_input(err, -EINVAL,
                                         "image reference '%s': '%s' is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128)",
                                         s, colon + 1);
                        goto fail;
                }
                if (!(r.tag = strdup(colon + 1)))
                        goto nomem;
        }
        if (!*buf) {
                moat_error_input(err, -EINVAL, "image reference '%s' has no name", s);
                goto fail;
        }
        if (strlen(buf) > NAME_MAX_TOTAL) {
                moat_error_input(err, -EINVAL, "image reference '%s': the name is longer than %d characters", s,
                                 NAME_MAX_TOTAL);
                goto fail;
        }
        const char *path = buf;
        char *first = strchr(buf, '/');
        if (first) {
                size_t dl = (size_t)(first - buf);
                bool upper = false;
                for (size_t i = 0; i < dl; i++)
                        if (isupper((unsigned char)buf[i]))
                                upper = true;
                if (memchr(buf, '.', dl) || memchr(buf, ':', dl) || (dl == 9 && !strncmp(buf, "localhost", 9)) ||
                    upper || buf[0] == '[') {
                        if (!domain_ok(buf, dl)) {
                                moat_error_input(err, -EINVAL, "image reference '%s': '%.*s' is not a valid registry host",
                                                 s, (int)dl, buf);
                                goto fail;
                        }
                        if (!(r.registry = strndup(buf, dl)))
                                goto nomem;
                        path = first + 1;
                }
        }
        if (!r.registry && !(r.registry = strdup("docker.io")))
                goto nomem;
        if (STREQ(r.registry, "index.docker.io")) {
                free(r.registry);
                if (!(r.registry = strdup("docker.io")))
                        goto nomem;
        }
        for (const char *p = path;;) {
                const char *e = strchr(p, '/');
                size_t n = e ? (size_t)(e - p) : strlen(p);
                if (!path_component_ok(p, n)) {
                        bool upper = false;
                        for (size_t i = 0; i < n; i++)
                                if (isupper((unsigned char)p[i]))
                                        upper = true;
                        moat_error_input(err, -EINVAL, "image reference '%s': %s '%.*s' in the repository name", s,
                                         upper ? "upper case in" : n == 0 ? "an empty component" : "invalid component",
                                         (int)n, p);
                        goto fail;
                }
                if (!e)
                        break;
                p = e + 1;
        }
        if (STREQ(r.registry, "docker.io") && !strchr(path, '/')) {
                if (asprintf(&r.repository, "library/%s", path) < 0) {
                        r.repository = NULL;
                        goto nomem;
                }
        } else if (!(r.repository = strdup(path)))
                goto nomem;
        if (!r.tag && !r.digest && !(r.tag = strdup("latest")))
                goto nomem;
        *out = r;
        return 0;
nomem:
        ret = -ENOMEM;
fail:
        moat_ref_clear(&r);
        return ret;
}

char *moat_ref_string(const struct moat_ref *r)
{
        char *s = NULL;
        if (!r || !r->registry || !r->repository)
                return NULL;
        if (asprintf(&s, "%s/%s%s%s%s%s", r->registry, r->repository, r->tag ? ":" : "", r->tag ? r->tag : "",
                     r->digest ? "@" : "", r->digest ? r->digest : "") < 0)
                return NULL;
        return s;
}
