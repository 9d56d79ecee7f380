/* SPDX-License-Identifier: Apache-2.0 */
/* The environment file: value syntaxes (sizes, durations, command words,
 * ${VAR} interpolation, .env files, port and egress strings). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "env/envfile-internal.h"

extern char **environ;

/* ------------------------------------------------------------ numbers */

static int parse_decimal(const char **p, double *out)
{
        const char *s = *p;
        if (!isdigit((unsigned char)*s) && !(*s == '.' && isdigit((unsigned char)s[1])))
                return -EINVAL;
        double v = 0;
        while (isdigit((unsigned char)*s))
                v = v * 10 + (*s++ - '0');
        if (*s == '.') {
                s++;
                double f = 0.1;
                while (isdigit((unsigned char)*s)) {
                        v += (*s++ - '0') * f;
                        f /= 10;
                }
        }
        if (v > 1e18)
                return -ERANGE;
        *p = s;
        *out = v;
        return 0;
}

int moat_env_parse_size(const char *s, int64_t *out)
{
        if (!s)
                return -EINVAL;
        while (isspace((unsigned char)*s))
                s++;
        double v;
        if (parse_decimal(&s, &v) < 0)
                return -EINVAL;
        static const struct { const char *u; double mul; } units[] = {
                { "", 1 }, { "b", 1 }, { "k", 1024.0 }, { "kb", 1024.0 }, { "kib", 1024.0 },
                { "m", 1048576.0 }, { "mb", 1048576.0 }, { "mib", 1048576.0 },
                { "g", 1073741824.0 }, { "gb", 1073741824.0 }, { "gib", 1073741824.0 },
                { "t", 1099511627776.0 }, { "tb", 1099511627776.0 }, { "tib", 1099511627776.0 },
        };
        for (size_t i = 0; i < ARRAY_SIZE(units); i++)
                if (!strcasecmp(s, units[i].u)) {
                        double b = v * units[i].mul;
                        if (b >= 9.2e18)
                                return -ERANGE;
                        *out = (int64_t)b;
                        return 0;
                }
        return -EINVAL;
}

int moat_env_parse_duration(const char *s, int64_t *out_ns)
{
        if (!s || !*s)
                return -EINVAL;
        if (STREQ(s, "0")) {
                *out_ns = 0;
                return 0;
        }
        double total = 0;
        while (*s) {
                double v;
                if (parse_decimal(&s, &v) < 0)
                        return -EINVAL;
                static const struct { const char *u; double ns; } units[] = {
                        { "ns", 1 }, { "us", 1e3 }, { "µs", 1e3 }, { "ms", 1e6 },
                        { "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 },
                };
                size_t best = SIZE_MAX, best_len = 0;
                for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                        size_t l = strlen(units[i].u);
                        if (!strncmp(s, units[i].u, l) && l > best_len) {
                                best = i;
                                best_len = l;
                        }
                }
                if (best == SIZE_MAX)
                        return -EINVAL;
                s += best_len;
                total += v * units[best].ns;
                if (total > 9e18)
                        return -ERANGE;
        }
        *out_ns = (int64_t)total;
        return 0;
}

/* ------------------------------------------------------------ shlex */

int moat_env_split_command(const char *s, char ***out)
{
        _cleanup_strv_ char **v = calloc(1, sizeof(char *));
        size_t cap = strlen(s) + 1;
        _cleanup_free_ char *w = malloc(cap);
        if (!v || !w)
                return -ENOMEM;
        const char *p = s;
        for (;;) {
                while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                        p++;
                if (!*p)
                        break;
                size_t n = 0;
                while (*p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
                        if (*p == '\'') {
                                const char *e = strchr(p + 1, '\'');
                                if (!e)
                                        return -EINVAL;
                                memcpy(w + n, p + 1, e - p - 1);
                                n += e - p - 1;
                                p = e + 1;
                        } else if (*p == '"') {
                                p++;
                                while (*p && *p != '"') {
                                        if (*p == '\\' && p[1] && strchr("\\\"$`\n", p[1]))
                                                p++;
                                        w[n++] = *p++;
                                }
                                if (*p != '"')
                                        return -EINVAL;
                                p++;
                        } else if (*p == '\\') {
                                if (!p[1])
                                        return -EINVAL;
                                if (p[1] != '\n')
                                        w[n++] = p[1];
                                p += 2;
                        } else {
                                w[n++] = *p++;
                        }
                }
                w[n] = '\0';
                if (strv_push(&v, w) < 0)
                        return -ENOMEM;
        }
        *out = TAKE_PTR(v);
        return 0;
}

/* ------------------------------------------------------------ variables */

static const char *strv_env_get(char *const *v, const char *name)
{
        size_t l = strlen(name);
        for (; v && *v; v++)
                if (!strncmp(*v, name, l) && (*v)[l] == '=')
                        return *v + l + 1;
        return NULL;
}

const char *ef_lookup_var(struct ef_ctx *c, const char *name)
{
        const char *v = strv_env_get(c->environ ? c->environ : environ, name);
        if (v)
                return v;
        return strv_env_get(c->dotenv, name);
}

static bool name_start(char ch)
{
        return isalpha((unsigned char)ch) || ch == '_';
}

static bool name_char(char ch)
{
        return isalnum((unsigned char)ch) || ch == '_';
}

struct buf {
        char *p;
        size_t n, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
        if (b->n + n + 1 > b->cap) {
                size_t cap = (b->n + n + 1) * 2;
                if (cap > (64u << 20))
                        return -E2BIG;
                char *p = realloc(b->p, cap);
                if (!p)
                        return -ENOMEM;
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n] = '\0';
        return 0;
}

static int interp(struct ef_ctx *c, const yaml_node_t *node, const char *key, const char *in, size_t len,
                  struct buf *b, int depth)
{
        if (depth > 8)
                return ef_fail(c, node, key, "variables nest too deep in '%s'", in);
        size_t i = 0;
        while (i < len) {
                const char *dollar = memchr(in + i, '$', len - i);
                size_t lit = dollar ? (size_t)(dollar - (in + i)) : len - i;
                int r = buf_add(b, in + i, lit);
                if (r < 0)
                        return r;
                i += lit;
                if (!dollar)
                        break;
                i++; /* past '$' */
                if (i < len && in[i] == '$') {
                        r = buf_add(b, "$", 1);
                        if (r < 0)
                                return r;
                        i++;
                        continue;
                }
                if (i < len && name_start(in[i])) {
                        size_t s = i;
                        while (i < len && name_char(in[i]))
                                i++;
                        _cleanup_free_ char *name = strndup(in + s, i - s);
                        if (!name)
                                return -ENOMEM;
                        const char *v = ef_lookup_var(c, name);
                        if (!v)
                                moat_warn("%s:%d: variable '%s' is not set; using an empty string", c->name,
                                          ef_line(node), name);
                        r = buf_add(b, v ? v : "", v ? strlen(v) : 0);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (i >= len || in[i] != '{') {
                        r = buf_add(b, "$", 1);
                        if (r < 0)
                                return r;
                        continue;
                }
                /* ${...}: find the matching brace */
                size_t s = ++i, lvl = 1;
                for (; i < len; i++) {
                        if (in[i] == '{' && i > 0 && in[i - 1] == '$')
                                lvl++;
                        else if (in[i] == '}' && --lvl == 0)
                                break;
                }
                if (i >= len)
                        return ef_fail(c, node, key, "'%s': unterminated '${'", in);
                const char *body = in + s;
                size_t blen = i - s;
                i++; /* past '}' */
                size_t nl = 0;
                while (nl < blen && name_char(body[nl]))
                        nl++;
                if (nl == 0 || !name_start(body[0]))
                        return ef_fail(c, node, key, "'%s': invalid variable name in '${%.*s}'", in, (int)blen, body);
                _cleanup_free_ char *name = strndup(body, nl);
                if (!name)
                        return -ENOMEM;
                const char *v = ef_lookup_var(c, name);
                const char *op = body + nl;
                size_t oplen = blen - nl;
                bool colon = oplen > 0 && op[0] == ':';
                char kind = oplen > (size_t)colon ? op[colon] : '\0';
                const char *arg = op + colon + 1;
                size_t arglen = oplen > (size_t)colon ? oplen - colon - 1 : 0;
                bool set = v && (!colon || *v);
                if (oplen == 0) {
                        if (!v)
                                moat_warn("%s:%d: variable '%s' is not set; using an empty string", c->name,
                                          ef_line(node), name);
                        r = buf_add(b, v ? v : "", v ? strlen(v) : 0);
                } else if (kind == '-') {
                        r = set ? buf_add(b, v, strlen(v)) : interp(c, node, key, arg, arglen, b, depth + 1);
                } else if (kind == '+') {
                        r = set ? interp(c, node, key, arg, arglen, b, depth + 1) : 0;
                } else if (kind == '?') {
                        if (!set)
                                return ef_fail(c, node, key, "variable '%s' is required: %.*s", name, (int)arglen,
                                               arg);
                        r = buf_add(b, v, strlen(v));
                } else {
                        return ef_fail(c, node, key, "'%s': invalid interpolation '${%.*s}'", in, (int)blen, body);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int ef_interpolate(struct ef_ctx *c, const yaml_node_t *n, const char *key, const char *in, char **out)
{
        struct buf b = { 0 };
        int r = buf_add(&b, "", 0);
        if (r >= 0)
                r = interp(c, n, key, in, strlen(in), &b, 0);
        if (r < 0) {
                free(b.p);
                if (r == -E2BIG)
                        return ef_fail(c, n, key, "the value expands to more than 64 MiB");
                return r;
        }
        *out = b.p;
        return 0;
}

/* ------------------------------------------------------------ .env / env_file */

int ef_parse_dotenv(const char *data, char ***out, int *bad_line)
{
        int line = 0;
        const char *p = data;
        while (*p) {
                if (++line > 4 * EF_MAX_LIST || strv_length(*out) >= EF_MAX_LIST) {
                        *bad_line = line;
                        return -E2BIG;
                }
                const char *e = strchr(p, '\n');
                size_t l = e ? (size_t)(e - p) : strlen(p);
                _cleanup_free_ char *ln = strndup(p, l);
                if (!ln)
                        return -ENOMEM;
                p += l + (e ? 1 : 0);
                char *s = ln;
                while (isspace((unsigned char)*s))
                        s++;
                size_t sl = strlen(s);
                while (sl && isspace((unsigned char)s[sl - 1]))
                        s[--sl] = '\0';
                if (!*s || *s == '#')
                        continue;
                if (!strncmp(s, "export ", 7))
                        for (s += 7; *s == ' '; s++)
                                ;
                char *eq = strchr(s, '=');
                char *kend = eq ? eq : s + strlen(s);
                while (kend > s && isspace((unsigned char)kend[-1]))
                        kend--;
                if (kend == s) {
                        *bad_line = line;
                        return -EINVAL;
                }
                for (char *k = s; k < kend; k++)
                        if (!name_char(*k) && *k != '.' && *k != '-') {
                                *bad_line = line;
                                return -EINVAL;
                        }
                _cleanup_free_ char *key = strndup(s, kend - s), *val = NULL, *entry = NULL;
                if (!key)
                        return -ENOMEM;
                if (!eq) {
                        /* "KEY" alone: the value comes from the environment (env_file) */
                        if (strv_push(out, key) < 0)
                                return -ENOMEM;
                        continue;
                }
                char *v = eq + 1;
                while (*v == ' ' || *v == '\t')
                        v++;
                if (*v == '\'' || *v == '"') {
                        char q = *v++;
                        char *end = strrchr(v, q);
                        if (!end) {
                                *bad_line = line;
                                return -EINVAL;
                        }
                        *end = '\0';
                        if (!(val = strdup(v)))
                                return -ENOMEM;
                        if (q == '"') { /* \n and \" escapes */
                                char *w = val;
                                for (char *r = val; *r; r++) {
                                        if (*r == '\\' && r[1] == 'n') {
                                                *w++ = '\n';
                                                r++;
                                        } else if (*r == '\\' && (r[1] == '"' || r[1] == '\\')) {
                                                *w++ = *++r;
                                        } else {
                                                *w++ = *r;
                                        }
                                }
                                *w = '\0';
                        }
                } else {
                        char *hash = strstr(v, " #");
                        if (hash)
                                *hash = '\0';
                        size_t vl = strlen(v);
                        while (vl && isspace((unsigned char)v[vl - 1]))
                                v[--vl] = '\0';
                        if (!(val = strdup(v)))
                                return -ENOMEM;
                }
                if (asprintf(&entry, "%s=%s", key, val) < 0)
                        return -ENOMEM;
                if (strv_push(out, entry) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* ------------------------------------------------------------ ports, egress, names */

int ef_parse_port_range(const char *s, uint16_t *lo, uint16_t *hi)
{
        const char *dash = strchr(s, '-');
        _cleanup_free_ char *a = dash ? strndup(s, dash - s) : strdup(s);
        if (!a)
                return -ENOMEM;
        int64_t x, y;
        if (parse_i64(a, &x) < 0 || x < 1 || x > 65535)
                return -EINVAL;
        y = x;
        if (dash && (parse_i64(dash + 1, &y) < 0 || y < x || y > 65535))
                return -EINVAL;
        *lo = (uint16_t)x;
        *hi = (uint16_t)y;
        return 0;
}

int ef_parse_port_string(const char *str, struct moat_env_port *p)
{
        _cleanup_free_ char *s = strdup(str);
        if (!s)
                return -ENOMEM;
        memset(p, 0, sizeof(*p));
        strcpy(p->protocol, "tcp");
        char *slash = strrchr(s, '/');
        if (slash) {
                *slash = '\0';
                if (STREQ(slash + 1, "udp") || STREQ(slash + 1, "tcp"))
                        strcpy(p->protocol, slash + 1);
                else
                        return -EINVAL;
        }
        char *ip = NULL, *rest = s;
        if (*s == '[') {
                char *rb = strchr(s, ']');
                if (!rb || rb[1] != ':')
                        return -EINVAL;
                *rb = '\0';
                ip = s + 1;
                rest = rb + 2;
                struct in6_addr a6;
                if (inet_pton(AF_INET6, ip, &a6) != 1)
                        return -EINVAL;
        }
        char *parts[3];
        int n = 0;
        for (char *q = rest;;) {
                if (n == 3)
                        return -EINVAL;
                parts[n++] = q;
                char *colon = strchr(q, ':');
                if (!colon)
                        break;
                *colon = '\0';
                q = colon + 1;
        }
        const char *host = NULL, *cont = parts[n - 1];
        if (ip) {
                if (n != 2)
                        return -EINVAL;
                host = parts[0];
        } else if (n == 3) {
                ip = parts[0];
                host = parts[1];
                struct in_addr a4;
                if (inet_pton(AF_INET, ip, &a4) != 1)
                        return -EINVAL;
        } else if (n == 2) {
                host = parts[0];
        }
        if (ef_parse_port_range(cont, &p->container_port, &p->container_port_end) < 0)
                return -EINVAL;
        if (host && *host) {
                if (ef_parse_port_range(host, &p->host_port, &p->host_port_end) < 0)
                        return -EINVAL;
                if (p->host_port_end - p->host_port != p->container_port_end - p->container_port)
                        return -EINVAL;
        }
        if (ip && !(p->host_ip = strdup(ip)))
                return -ENOMEM;
        return 0;
}

static bool valid_hostname(const char *s)
{
        size_t l = strlen(s);
        if (!l || l > 253)
                return false;
        size_t lab = 0;
        for (const char *p = s; *p; p++) {
                if (*p == '.') {
                        if (!lab || p[-1] == '-')
                                return false;
                        lab = 0;
                } else if (isalnum((unsigned char)*p) || (*p == '-' && lab > 0) || (*p == '_' && lab > 0)) {
                        if (++lab > 63)
                                return false;
                } else {
                        return false;
                }
        }
        return lab > 0;
}

static bool valid_addr_or_cidr(const char *s)
{
        _cleanup_free_ char *a = strdup(s);
        if (!a)
                return false;
        char *slash = strchr(a, '/');
        if (slash)
                *slash++ = '\0';
        unsigned char buf[16];
        int maxp;
        if (inet_pton(AF_INET, a, buf) == 1)
                maxp = 32;
        else if (inet_pton(AF_INET6, a, buf) == 1)
                maxp = 128;
        else
                return false;
        if (slash) {
                int pl;
                if (parse_int(slash, &pl) < 0 || pl < 0 || pl > maxp)
                        return false;
        }
        return true;
}

static bool looks_numeric_host(const char *s)
{
        for (; *s; s++)
                if (!isdigit((unsigned char)*s) && *s != '.' && *s != '/')
                        return false;
        return true;
}

int ef_parse_egress(const char *str, struct moat_env_egress *e)
{
        _cleanup_free_ char *s = strdup(str);
        if (!s)
                return -ENOMEM;
        memset(e, 0, sizeof(*e));
        char *host = s, *port = NULL;
        if (*s == '[') {
                char *rb = strchr(s, ']');
                if (!rb || (rb[1] && rb[1] != ':'))
                        return -EINVAL;
                *rb = '\0';
                host = s + 1;
                if (rb[1])
                        port = rb + 2;
        } else {
                char *c1 = strchr(s, ':');
                if (c1 && !strchr(c1 + 1, ':')) {
                        *c1 = '\0';
                        port = c1 + 1;
                }
        }
        if (port) {
                int pv;
                if (parse_int(port, &pv) < 0 || pv < 1 || pv > 65535)
                        return -EINVAL;
                e->port = (uint16_t)pv;
        }
        if (valid_addr_or_cidr(host))
                e->is_cidr = true;
        else if (looks_numeric_host(host) || !valid_hostname(host))
                return -EINVAL;
        if (!(e->host = strdup(host)))
                return -ENOMEM;
        return 0;
}

bool ef_valid_name(const char *s)
{
        if (!isalnum((unsigned char)*s))
                return false;
        size_t l = 0;
        for (; *s; s++, l++)
                if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
                        return false;
        return l <= 128;
}

const char *moat_env_restart_name(enum moat_env_restart r)
{
        switch (r) {
        case MOAT_RESTART_NO: return "no";
        case MOAT_RESTART_ALWAYS: return "always";
        case MOAT_RESTART_ON_FAILURE: return "on-failure";
        case MOAT_RESTART_UNLESS_STOPPED: return "unless-stopped";
        }
        return "?";
}

const char *moat_env_condition_name(enum moat_env_condition c)
{
        switch (c) {
        case MOAT_DEP_STARTED: return "service_started";
        case MOAT_DEP_HEALTHY: return "service_healthy";
        case MOAT_DEP_COMPLETED: return "service_completed_successfully";
        }
        return "?";
}

const char *moat_env_violation_name(enum moat_env_violation v)
{
        switch (v) {
        case MOAT_VIOLATION_LOG: return "log";
        case MOAT_VIOLATION_KILL: return "kill";
        case MOAT_VIOLATION_STOP: return "stop";
        }
        return "?";
}
