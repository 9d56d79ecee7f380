/* SPDX-License-Identifier: Apache-2.0 */
/* Registry client: base URL, auth (anonymous, Bearer token, Basic from auth files), small GETs. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "image/registry.h"

/* ---------------------------------------------------------------- WWW-Authenticate */

void moat_auth_challenge_clear(struct moat_auth_challenge *c)
{
        free(c->scheme);
        free(c->realm);
        free(c->service);
        free(c->scope);
        *c = (struct moat_auth_challenge){ 0 };
}

static bool is_tchar(char c)
{
        return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~/:", c));
}

int moat_www_authenticate_parse(const char *v, struct moat_auth_challenge *out)
{
        struct moat_auth_challenge c = { 0 };
        const char *p = v;

        *out = c;
        while (*p == ' ' || *p == '\t')
                p++;
        const char *s = p;
        while (isalnum((unsigned char)*p) || *p == '-' || *p == '_')
                p++;
        if (p == s)
                return -EINVAL;
        c.scheme = strndup(s, p - s);
        if (!c.scheme)
                return -ENOMEM;
        for (char *q = c.scheme; *q; q++)
                *q = tolower((unsigned char)*q);

        for (;;) {
                while (*p == ' ' || *p == '\t' || *p == ',')
                        p++;
                if (!*p)
                        break;
                const char *k = p;
                while (is_tchar(*p) && *p != '=')
                        p++;
                size_t klen = p - k;
                while (*p == ' ')
                        p++;
                if (klen == 0 || *p != '=') {
                        /* token68 or the next challenge ("Basic realm=x, Bearer ..."): stop here */
                        break;
                }
                p++;
                while (*p == ' ')
                        p++;
                _cleanup_free_ char *val = NULL;
                if (*p == '"') {
                        p++;
                        size_t cap = strlen(p) + 1, n = 0;
                        val = malloc(cap);
                        if (!val) {
                                moat_auth_challenge_clear(&c);
                                return -ENOMEM;
                        }
                        while (*p && *p != '"') {
                                if (*p == '\\' && p[1])
                                        p++;
                                val[n++] = *p++;
                        }
                        val[n] = 0;
                        if (*p != '"') {
                                moat_auth_challenge_clear(&c);
                                return -EINVAL;
                        }
                        p++;
                } else {
                        const char *vs = p;
                        while (*p && *p != ',' && *p != ' ')
                                p++;
                        val = strndup(vs, p - vs);
                        if (!val) {
                                moat_auth_challenge_clear(&c);
                                return -ENOMEM;
                        }
                }
                char **slot = NULL;
                if (klen == 5 && strncasecmp(k, "realm", 5) == 0)
                        slot = &c.realm;
                else if (klen == 7 && strncasecmp(k, "service", 7) == 0)
                        slot = &c.service;
                else if (klen == 5 && strncasecmp(k, "scope", 5) == 0)
                        slot = &c.scope;
                if (slot) {
                        free(*slot);
                        *slot = TAKE_PTR(val);
                }
        }
        *out = c;
        return 0;
}

/* ---------------------------------------------------------------- base64 */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *moat_base64_encode(const void *data, size_t len)
{
        const unsigned char *d = data;
        char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                unsigned v = d[i] << 16 | (i + 1 < len ? d[i + 1] << 8 : 0) | (i + 2 < len ? d[i + 2] : 0);
                *o++ = b64[v >> 18 & 63];
                *o++ = b64[v >> 12 & 63];
                *o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
                *o++ = i + 2 < len ? b64[v & 63] : '=';
        }
        *o = 0;
        return out;
}

int moat_base64_decode(const char *in, char **out, size_t *len)
{
        size_t n = strlen(in), o = 0;
        unsigned acc = 0;
        int bits = 0;
        _cleanup_free_ char *buf = malloc(n / 4 * 3 + 4);
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char c = in[i];
                if (c == '=')
                        break;
                if (c == '\n' || c == '\r' || c == ' ')
                        continue;
                const char *pos = c ? strchr(b64, c) : NULL;
                if (!pos)
                        return -EINVAL;
                acc = acc << 6 | (unsigned)(pos - b64);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        buf[o++] = (char)(acc >> bits & 0xff);
                }
        }
        buf[o] = 0;
        *out = TAKE_PTR(buf);
        if (len)
                *len = o;
        return 0;
}

/* ---------------------------------------------------------------- auth files */

/* "https://host:5000/v1/" -> "host:5000" (in place on a copy) */
static char *auth_key_host(const char *key)
{
        const char *p = strstr(key, "://");
        p = p ? p + 3 : key;
        size_t n = strcspn(p, "/");
        return strndup(p, n);
}

static bool host_matches(const char *key, const char *host)
{
        _cleanup_free_ char *k = auth_key_host(key);
        if (!k)
                return false;
        if (strcasecmp(k, host) == 0)
                return true;
        /* docker.io is spelled many ways */
        static const char *const dockerio[] = { "docker.io", "index.docker.io", "registry-1.docker.io" };
        bool a = false, b = false;
        for (size_t i = 0; i < ARRAY_SIZE(dockerio); i++) {
                a |= strcasecmp(k, dockerio[i]) == 0;
                b |= strcasecmp(host, dockerio[i]) == 0;
        }
        return a && b;
}

int moat_auth_json_lookup(const char *json, size_t len, const char *host, char **user, char **pass,
                          struct moat_error **err)
{
        json_error_t jerr;
        json_t *root = json_loadb(json, len, 0, &jerr);
        if (!root)
                return moat_error_input(err, EINVAL, "not JSON: %s (line %d)", jerr.text, jerr.line);
        json_t *auths = json_object_get(root, "auths");
        int r = -ENOENT;
        const char *key;
        json_t *ent;
        if (auths && !json_is_object(auths)) {
                json_decref(root);
                return moat_error_input(err, EINVAL, "'auths' is not an object");
        }
        json_object_foreach(auths, key, ent) {
                if (!host_matches(key, host) || !json_is_object(ent))
                        continue;
                const char *a = json_string_value(json_object_get(ent, "auth"));
                const char *u = json_string_value(json_object_get(ent, "username"));
                const char *p = json_string_value(json_object_get(ent, "password"));
                if (a && *a) {
                        _cleanup_free_ char *dec = NULL;
                        if (moat_base64_decode(a, &dec, NULL) < 0 || !strchr(dec, ':')) {
                                r = moat_error_input(err, EINVAL, "'auths.%s.auth' is not base64 of 'user:password'",
                                                     key);
                                break;
                        }
                        char *colon = strchr(dec, ':');
                        *colon = 0;
                        *user = strdup(dec);
                        *pass = strdup(colon + 1);
                } else if (u && p) {
                        *user = strdup(u);
                        *pass = strdup(p);
                } else {
                        continue;
                }
                r = *user && *pass ? 0 : -ENOMEM;
                if (r < 0) {
                        free(*user);
                        free(*pass);
                        *user = *pass = NULL;
                }
                break;
        }
        json_decref(root);
        return r;
}

int moat_auth_find(const char *auth_file, const char *host, char **user, char **pass, char **source,
                   struct moat_error **err)
{
        char *files[3] = { 0 };
        size_t n = 0;
        int r = -ENOENT;

        if (auth_file && *auth_file) {
                files[n++] = strdup(auth_file);
        } else {
                const char *e = getenv("REGISTRY_AUTH_FILE");
                if (e && *e)
                        files[n++] = strdup(e);
                e = getenv("XDG_RUNTIME_DIR");
                if (e && *e && asprintf(&files[n], "%s/containers/auth.json", e) >= 0)
                        n++;
                e = getenv("HOME");
                if (e && *e && asprintf(&files[n], "%s/.docker/config.json", e) >= 0)
                        n++;
        }
        for (size_t i = 0; i < n && r == -ENOENT; i++) {
                _cleanup_free_ char *data = NULL;
                size_t len = 0;
                if (!files[i])
                        continue;
                int q = read_file_at(-100 /* AT_FDCWD */, files[i], &data, &len);
                if (q == -ENOENT && !(auth_file && *auth_file))
                        continue;
                if (q < 0) {
                        r = moat_error_set(err, q, "cannot read the auth file '%s'", files[i]);
                        if (r == -ENOENT) /* -ENOENT means "no entry" to callers */
                                r = -EINVAL;
                        break;
                }
                r = moat_auth_json_lookup(data, len, host, user, pass, err);
                if (r < 0 && r != -ENOENT)
                        moat_error_prefix(err, r, "auth file '%s'", files[i]);
                if (r == 0 && source)
                        *source = strdup(files[i]);
        }
        for (size_t i = 0; i < n; i++)
                free(files[i]);
        return r;
}

/* ---------------------------------------------------------------- the registry */

struct moat_registry {
        char *host;     /* as in the reference: "127.0.0.1:5000" */
        char *base;     /* "https://registry-1.docker.io" */
        char *repo;
        char *auth_file;
        char *authz;    /* "Authorization: ..." header or NULL (anonymous) */
        pthread_mutex_t lock;
};

static bool host_is_loopback(const char *hostport)
{
        _cleanup_free_ char *h = NULL;
        if (hostport[0] == '[') {
                const char *e = strchr(hostport, ']');
                if (!e)
                        return false;
                h = strndup(hostport + 1, e - hostport - 1);
        } else {
                h = strndup(hostport, strcspn(hostport, ":"));
        }
        if (!h)
                return false;
        if (strcasecmp(h, "localhost") == 0)
                return true;
        struct in_addr a4;
        struct in6_addr a6;
        if (inet_pton(AF_INET, h, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (inet_pton(AF_INET6, h, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return false;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int moat_registry_new(const struct moat_ref *ref, bool insecure, const char *auth_file, struct moat_registry **out,
                      struct moat_error **err)
{
        pthread_once(&curl_once, curl_init_once);
        if (insecure && !host_is_loopback(ref->registry))
                return moat_error_input(err, EPERM,
                                        "'--insecure' (plain http) is only allowed for a loopback registry, not '%s'",
                                        ref->registry);
        struct moat_registry *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        const char *api_host = strcmp(ref->registry, "docker.io") == 0 ? "registry-1.docker.io" : ref->registry;
        r->host = strdup(ref->registry);
        r->repo = strdup(ref->repository);
        r->auth_file = auth_file ? strdup(auth_file) : NULL;
        pthread_mutex_init(&r->lock, NULL);
        if (asprintf(&r->base, "%s://%s", insecure ? "http" : "https", api_host) < 0)
                r->base = NULL;
        if (!r->host || !r->repo || !r->base || (auth_file && !r->auth_file)) {
                moat_registry_free(r);
                return -ENOMEM;
        }
        *out = r;
        return 0;
}

void moat_registry_free(struct moat_registry *r)
{
        if (!r)
                return;
        free(r->host);
        free(r->base);
        free(r->repo);
        free(r->auth_file);
        free(r->authz);
        pthread_mutex_destroy(&r->lock);
        free(r);
}

const char *moat_registry_host(const struct moat_registry *r) { return r->host; }

char *moat_registry_url(const struct moat_registry *r, const char *kind, const char *ref)
{
        char *u;
        return asprintf(&u, "%s/v2/%s/%s/%s", r->base, r->repo, kind, ref) < 0 ? NULL : u;
}

void moat_http_reply_clear(struct moat_http_reply *rep)
{
        free(rep->body);
        free(rep->content_type);
        free(rep->docker_digest);
        *rep = (struct moat_http_reply){ 0 };
}

int moat_registry_setup(struct moat_registry *r, CURL *h, const char *url, const char *accept,
                        struct curl_slist **headers)
{
        struct curl_slist *l = NULL;
        char buf[512];
        if (accept) {
                snprintf(buf, sizeof(buf), "Accept: %s", accept);
                l = curl_slist_append(l, buf);
        }
        pthread_mutex_lock(&r->lock);
        if (r->authz)
                l = curl_slist_append(l, r->authz);
        pthread_mutex_unlock(&r->lock);
        l = curl_slist_append(l, "User-Agent: moat/" "0.1");
        *headers = l;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
        /* a stalled transfer (under 1 byte/s for 60 s) fails instead of hanging */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "identity");
        if (moat_log_enabled(MOAT_LOG_DEBUG) && getenv("MOAT_CURL_VERBOSE"))
                curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
        return 0;
}

struct getbuf {
        struct moat_http_reply *rep;
        size_t max;
        bool too_big;
        char **challenges;
};

static size_t get_write(char *p, size_t sz, size_t n, void *ud)
{
        struct getbuf *g = ud;
        size_t len = sz * n;
        if (g->rep->len + len > g->max) {
                g->too_big = true;
                return 0;
        }
        char *nb = realloc(g->rep->body, g->rep->len + len + 1);
        if (!nb)
                return 0;
        memcpy(nb + g->rep->len, p, len);
        g->rep->len += len;
        nb[g->rep->len] = 0;
        g->rep->body = nb;
        return len;
}

static char *header_value(const char *line, size_t len, const char *name)
{
        size_t nl = strlen(name);
        if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
                return NULL;
        const char *v = line + nl + 1, *e = line + len;
        while (v < e && (*v == ' ' || *v == '\t'))
                v++;
        while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
                e--;
        return strndup(v, e - v);
}

static size_t get_header(char *p, size_t sz, size_t n, void *ud)
{
        struct getbuf *g = ud;
        size_t len = sz * n;
        char *v;
        if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
                /* a new response (after a redirect): forget the previous one's headers */
                free(g->rep->content_type);
                free(g->rep->docker_digest);
                g->rep->content_type = g->rep->docker_digest = NULL;
                strv_free(g->challenges);
                g->challenges = NULL;
                return len;
        }
        if ((v = header_value(p, len, "Content-Type"))) {
                free(g->rep->content_type);
                g->rep->content_type = v;
        } else if ((v = header_value(p, len, "Docker-Content-Digest"))) {
                free(g->rep->docker_digest);
                g->rep->docker_digest = v;
        } else if ((v = header_value(p, len, "WWW-Authenticate"))) {
                strv_push(&g->challenges, v);
                free(v);
        }
        return len;
}

/* One GET; fills rep (status, body, headers) and *challenges.  Transport errors are errors here. */
static int do_get(struct moat_registry *r, const char *url, const char *accept, size_t max, const char *authz,
                  bool use_authz_from_registry, struct moat_http_reply *rep, char ***challenges,
                  struct moat_error **err)
{
        CURL *h = curl_easy_init();
        if (!h)
                return moat_error_set(err, ENOMEM, "cannot start a transfer for '%s'", url);
        struct curl_slist *headers = NULL;
        struct getbuf g = { .rep = rep, .max = max };
        char errbuf[CURL_ERROR_SIZE] = "";
        moat_http_reply_clear(rep);
        if (use_authz_from_registry) {
                moat_registry_setup(r, h, url, accept, &headers);
        } else {
                /* the token endpoint: no registry Authorization, maybe Basic credentials */
                moat_registry_setup(r, h, url, accept, &headers);
                curl_slist_free_all(headers);
                headers = curl_slist_append(NULL, "User-Agent: moat/0.1");
                if (authz)
                        headers = curl_slist_append(headers, authz);
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        }
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, get_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &g);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, get_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &g);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        CURLcode c = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rep->status);
        curl_easy_cleanup(h);
        curl_slist_free_all(headers);
        int ret = 0;
        if (g.too_big)
                ret = moat_error_input(err, EFBIG, "'%s': the answer is larger than %zu bytes", url, max);
        else if (c != CURLE_OK)
                ret = moat_error_input(err, EIO, "cannot GET '%s': %s (HTTP status %ld)%s", url,
                                       errbuf[0] ? errbuf : curl_easy_strerror(c), rep->status,
                                       c == CURLE_SSL_CONNECT_ERROR && strncmp(url, "https:", 6) == 0 &&
                                                       host_is_loopback(r->host)
                                               ? " (a plain-http registry? use --insecure)"
                                               : "");
        if (ret < 0 || !challenges)
                strv_free(g.challenges);
        else
                *challenges = g.challenges;
        return ret;
}

int moat_registry_http_error(struct moat_error **err, long status, const char *url, const char *body, size_t len)
{
        _cleanup_free_ char *detail = NULL;
        json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
        json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
        const char *code = json_string_value(json_object_get(e0, "code"));
        const char *msg = json_string_value(json_object_get(e0, "message"));
        if (code || msg)
                if (asprintf(&detail, ": %s%s%s", code ? code : "", code && msg ? " " : "", msg ? msg : "") < 0)
                        detail = NULL;
        json_decref(j);
        int e = status == 404 ? ENOENT : status == 401 || status == 403 ? EACCES : EIO;
        return moat_error_input(err, e, "registry answered HTTP %ld for '%s'%s", status, url, detail ? detail : "");
}

static char *url_escape(const char *s)
{
        char *e = curl_easy_escape(NULL, s, 0), *r = e ? strdup(e) : NULL;
        curl_free(e);
        return r;
}

static int fetch_token(struct moat_registry *r, const struct moat_auth_challenge *ch, const char *user,
                       const char *pass, struct moat_error **err)
{
        _cleanup_free_ char *url = NULL, *svc = NULL, *scope = NULL, *basic = NULL, *creds = NULL;
        _cleanup_free_ char *dflt_scope = NULL;
        if (!ch->realm)
                return moat_error_input(err, EPROTO, "registry '%s' sent a Bearer challenge without a realm", r->host);
        if (strncmp(ch->realm, "https://", 8) != 0 && strncmp(ch->realm, "http://", 7) != 0)
                return moat_error_input(err, EPROTO, "registry '%s' sent a token realm '%s' that is not http(s)",
                                        r->host, ch->realm);
        if (asprintf(&dflt_scope, "repository:%s:pull", r->repo) < 0)
                return -ENOMEM;
        svc = ch->service ? url_escape(ch->service) : NULL;
        scope = url_escape(ch->scope ? ch->scope : dflt_scope);
        if (!scope || (ch->service && !svc))
                return -ENOMEM;
        if (asprintf(&url, "%s%sscope=%s%s%s", ch->realm, strchr(ch->realm, '?') ? "&" : "?", scope,
                     svc ? "&service=" : "", svc ? svc : "") < 0)
                return -ENOMEM;
        if (user) {
                if (asprintf(&creds, "%s:%s", user, pass) < 0)
                        return -ENOMEM;
                _cleanup_free_ char *b = moat_base64_encode(creds, strlen(creds));
                if (!b || asprintf(&basic, "Authorization: Basic %s", b) < 0)
                        return -ENOMEM;
        }
        struct moat_http_reply rep = { 0 };
        int ret = do_get(r, url, "application/json", 1 << 20, basic, false, &rep, NULL, err);
        if (ret < 0) {
                moat_http_reply_clear(&rep);
                return ret;
        }
        if (rep.status != 200) {
                ret = rep.status == 401 || rep.status == 403
                              ? moat_error_input(err, EACCES,
                                                 "authentication to registry '%s' failed: the token service '%s' "
                                                 "answered HTTP %ld%s",
                                                 r->host, ch->realm, rep.status,
                                                 user ? " (check the user and password in the auth file)"
                                                      : " (no credentials for it in the auth files)")
                              : moat_registry_http_error(err, rep.status, url, rep.body, rep.len);
                moat_http_reply_clear(&rep);
                return ret;
        }
        json_t *j = json_loadb(rep.body ? rep.body : "", rep.len, 0, NULL);
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (!tok || !*tok)
                tok = json_string_value(json_object_get(j, "access_token"));
        if (!tok || !*tok) {
                json_decref(j);
                moat_http_reply_clear(&rep);
                return moat_error_input(err, EPROTO, "the token service '%s' answered without a token", ch->realm);
        }
        pthread_mutex_lock(&r->lock);
        free(r->authz);
        if (asprintf(&r->authz, "Authorization: Bearer %s", tok) < 0)
                r->authz = NULL;
        pthread_mutex_unlock(&r->lock);
        json_decref(j);
        moat_http_reply_clear(&rep);
        return r->authz ? 0 : -ENOMEM;
}

/* After a 401: pick the challenge, find credentials, set r->authz. */
static int authenticate(struct moat_registry *r, char **challenges, const char *url, struct moat_error **err)
{
        struct moat_auth_challenge ch = { 0 }, tmp;
        for (size_t i = 0; challenges && challenges[i]; i++) {
                if (moat_www_authenticate_parse(challenges[i], &tmp) < 0)
                        continue;
                if (!ch.scheme || (strcmp(tmp.scheme, "bearer") == 0 && strcmp(ch.scheme, "bearer") != 0)) {
                        moat_auth_challenge_clear(&ch);
                        ch = tmp;
                } else {
                        moat_auth_challenge_clear(&tmp);
                }
        }
        if (!ch.scheme)
                return moat_error_input(err, EACCES, "registry answered HTTP 401 for '%s' without a usable "
                                        "WWW-Authenticate challenge", url);
        _cleanup_free_ char *user = NULL, *pass = NULL, *source = NULL;
        int ret = moat_auth_find(r->auth_file, r->host, &user, &pass, &source, err);
        if (ret < 0 && ret != -ENOENT) {
                moat_auth_challenge_clear(&ch);
                return ret;
        }
        if (source)
                moat_debug("registry '%s': credentials from '%s'", r->host, source);
        if (strcmp(ch.scheme, "bearer") == 0) {
                ret = fetch_token(r, &ch, user, pass, err);
        } else if (strcmp(ch.scheme, "basic") == 0) {
                if (!user) {
                        ret = moat_error_input(err, EACCES,
                                               "registry '%s' requires a login (HTTP 401 for '%s'): no credentials "
                                               "for '%s' in the auth file%s",
                                               r->host, url, r->host,
                                               r->auth_file ? "" : "s ($REGISTRY_AUTH_FILE, "
                                                                   "$XDG_RUNTIME_DIR/containers/auth.json, "
                                                                   "~/.docker/config.json)");
                } else {
                        _cleanup_free_ char *creds = NULL, *b = NULL;
                        if (asprintf(&creds, "%s:%s", user, pass) < 0 || !(b = moat_base64_encode(creds, strlen(creds))))
                                ret = -ENOMEM;
                        else {
                                pthread_mutex_lock(&r->lock);
                                free(r->authz);
                                if (asprintf(&r->authz, "Authorization: Basic %s", b) < 0)
                                        r->authz = NULL;
                                ret = r->authz ? 0 : -ENOMEM;
                                pthread_mutex_unlock(&r->lock);
                        }
                }
        } else {
                ret = moat_error_input(err, EACCES, "registry '%s' asks for '%s' authentication, which moat does not "
                                       "speak (HTTP 401 for '%s')", r->host, ch.scheme, url);
        }
        moat_auth_challenge_clear(&ch);
        return ret;
}

int moat_registry_get(struct moat_registry *r, const char *url, const char *accept, size_t max,
                      struct moat_http_reply *rep, struct moat_error **err)
{
        char **challenges = NULL;
        int ret = do_get(r, url, accept, max, NULL, true, rep, &challenges, err);
        if (ret < 0)
                return ret;
        if (rep->status == 401) {
                bool had_auth = r->authz != NULL;
                ret = authenticate(r, challenges, url, err);
                strv_free(challenges);
                challenges = NULL;
                if (ret < 0)
                        return ret;
                ret = do_get(r, url, accept, max, NULL, true, rep, NULL, err);
                if (ret < 0)
                        return ret;
                if (rep->status == 401 || rep->status == 403) {
                        bool basic = r->authz && strncmp(r->authz, "Authorization: Basic", 20) == 0;
                        return moat_error_input(err, EACCES,
                                                "authentication to registry '%s' failed: HTTP %ld for '%s'%s",
                                                r->host, rep->status, url,
                                                basic ? " (wrong user or password in the auth file?)"
                                                      : had_auth ? " (the token expired?)" : "");
                }
        }
        strv_free(challenges);
        if (rep->status != 200)
                return moat_registry_http_error(err, rep->status, url, rep->body, rep->len);
        return 0;
}
