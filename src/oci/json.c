/* SPDX-License-Identifier: Apache-2.0 */
#include "oci/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/util.h"

void jctx_init(struct jctx *c, const char *origin, struct moat_error **err)
{
        memset(c, 0, sizeof(*c));
        c->origin = origin;
        c->err = err;
}

void jctx_fini(struct jctx *c)
{
        for (size_t i = 0; i < c->n_big; i++)
                free(c->big[i]);
        free(c->big);
        c->big = NULL;
        c->n_big = 0;
}

size_t jc_push(struct jctx *c, const char *key)
{
        size_t old = c->len;
        int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "%s%s", c->len ? "." : "", key);
        if (n > 0)
                c->len += (size_t)n;
        if (c->len >= sizeof(c->path))
                c->len = sizeof(c->path) - 1;
        return old;
}

size_t jc_pushi(struct jctx *c, size_t index)
{
        size_t old = c->len;
        int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "[%zu]", index);
        if (n > 0)
                c->len += (size_t)n;
        if (c->len >= sizeof(c->path))
                c->len = sizeof(c->path) - 1;
        return old;
}

void jc_pop(struct jctx *c, size_t old)
{
        c->len = old;
        c->path[old] = '\0';
}

static int jc_verr(struct jctx *c, const char *fmt, va_list ap)
{
        _cleanup_free_ char *msg = NULL;
        if (vasprintf(&msg, fmt, ap) < 0)
                return moat_error_set(c->err, ENOMEM, "out of memory");
        if (c->origin)
                return moat_error_input(c->err, EINVAL, "%s: '%s': %s", c->origin, c->path, msg);
        return moat_error_input(c->err, EINVAL, "'%s': %s", c->path, msg);
}

int jc_err(struct jctx *c, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = jc_verr(c, fmt, ap);
        va_end(ap);
        return r;
}

int jc_errk(struct jctx *c, const char *key, const char *fmt, ...)
{
        size_t o = jc_push(c, key);
        va_list ap;
        va_start(ap, fmt);
        int r = jc_verr(c, fmt, ap);
        va_end(ap);
        jc_pop(c, o);
        return r;
}

/* A big-integer placeholder: a string "\0<index>" (see jctx_load). */
static const char *big_text(struct jctx *c, json_t *v)
{
        if (!json_is_string(v) || c->n_big == 0)
                return NULL;
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len < 2 || s[0] != '\0')
                return NULL;
        size_t idx = 0;
        for (size_t i = 1; i < len; i++) {
                if (s[i] < '0' || s[i] > '9' || idx > c->n_big)
                        return NULL;
                idx = idx * 10 + (size_t)(s[i] - '0');
        }
        return idx < c->n_big ? c->big[idx] : NULL;
}

const char *jc_describe(struct jctx *c, json_t *v, char buf[static 64])
{
        const char *big = big_text(c, v);
        if (big) {
                snprintf(buf, 64, "%s", big);
                return buf;
        }
        switch (json_typeof(v)) {
        case JSON_OBJECT: return "an object";
        case JSON_ARRAY: return "an array";
        case JSON_STRING: return "a string";
        case JSON_TRUE: return "true";
        case JSON_FALSE: return "false";
        case JSON_NULL: return "null";
        case JSON_INTEGER:
                snprintf(buf, 64, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                return buf;
        case JSON_REAL:
                snprintf(buf, 64, "%.17g", json_real_value(v));
                return buf;
        }
        return "something else";
}

json_t *jc_get(json_t *obj, const char *key)
{
        json_t *v = json_object_get(obj, key);
        return json_is_null(v) ? NULL : v;
}

int jv_obj(struct jctx *c, json_t *v)
{
        char b[64];
        if (!json_is_object(v))
                return jc_err(c, "expected an object, got %s", jc_describe(c, v, b));
        return 0;
}

int jv_arr(struct jctx *c, json_t *v)
{
        char b[64];
        if (!json_is_array(v))
                return jc_err(c, "expected an array, got %s", jc_describe(c, v, b));
        return 0;
}

int jv_strref(struct jctx *c, json_t *v, const char **out)
{
        char b[64];
        if (!json_is_string(v) || big_text(c, v))
                return jc_err(c, "expected a string, got %s", jc_describe(c, v, b));
        const char *s = json_string_value(v);
        if (strlen(s) != json_string_length(v))
                return jc_err(c, "contains a NUL byte");
        *out = s;
        return 0;
}

int jv_str(struct jctx *c, json_t *v, char **out)
{
        const char *s;
        int r = jv_strref(c, v, &s);
        if (r < 0)
                return r;
        char *d = strdup(s);
        if (!d)
                return moat_error_set(c->err, ENOMEM, "out of memory");
        free(*out);
        *out = d;
        return 0;
}

int jv_bool(struct jctx *c, json_t *v, bool *out)
{
        char b[64];
        if (!json_is_boolean(v))
                return jc_err(c, "expected true or false, got %s", jc_describe(c, v, b));
        *out = json_is_true(v);
        return 0;
}

/* Reads an integer as sign + magnitude.  -EDOM: not an integer at all. */
static int jv_number(struct jctx *c, json_t *v, bool *neg, uint64_t *mag)
{
        if (json_is_integer(v)) {
                json_int_t i = json_integer_value(v);
                *neg = i < 0;
                *mag = i < 0 ? (uint64_t)(-(i + 1)) + 1 : (uint64_t)i;
                return 0;
        }
        const char *big = big_text(c, v);
        if (big) {
                if (big[0] == '-') {
                        *neg = true;
                        *mag = UINT64_MAX;
                        return 0;
                }
                *neg = false;
                uint64_t u;
                if (parse_u64(big, &u) < 0)
                        return -ERANGE;
                *mag = u;
                return 0;
        }
        return -EDOM;
}

static int jv_range(struct jctx *c, json_t *v, const char *what, int64_t min, uint64_t max, bool *neg,
                    uint64_t *mag)
{
        char b[64];
        int r = jv_number(c, v, neg, mag);
        if (r < 0 || (*neg && (min >= 0 || *mag > (uint64_t)(-(min + 1)) + 1)) || (!*neg && *mag > max))
                return jc_err(c, "expected %s, got %s", what, jc_describe(c, v, b));
        return 0;
}

int jv_u64(struct jctx *c, json_t *v, uint64_t *out)
{
        bool neg;
        uint64_t m;
        int r = jv_range(c, v, "an unsigned 64-bit integer", 0, UINT64_MAX, &neg, &m);
        if (r >= 0)
                *out = m;
        return r;
}

int jv_i64(struct jctx *c, json_t *v, int64_t *out)
{
        bool neg;
        uint64_t m;
        int r = jv_range(c, v, "a 64-bit integer", INT64_MIN, INT64_MAX, &neg, &m);
        if (r >= 0)
                *out = neg ? (m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m) : (int64_t)m;
        return r;
}

int jv_u32(struct jctx *c, json_t *v, uint32_t *out)
{
        bool neg;
        uint64_t m;
        int r = jv_range(c, v, "an unsigned 32-bit integer", 0, UINT32_MAX, &neg, &m);
        if (r >= 0)
                *out = (uint32_t)m;
        return r;
}

int jv_uint(struct jctx *c, json_t *v, unsigned int *out)
{
        uint32_t u;
        int r = jv_u32(c, v, &u);
        if (r >= 0)
                *out = u;
        return r;
}

int jv_u16(struct jctx *c, json_t *v, uint16_t *out)
{
        bool neg;
        uint64_t m;
        int r = jv_range(c, v, "an unsigned 16-bit integer", 0, UINT16_MAX, &neg, &m);
        if (r >= 0)
                *out = (uint16_t)m;
        return r;
}

int jv_int(struct jctx *c, json_t *v, int *out)
{
        bool neg;
        uint64_t m;
        int r = jv_range(c, v, "a 32-bit integer", INT32_MIN, INT32_MAX, &neg, &m);
        if (r >= 0)
                *out = neg ? (int)(-(int64_t)m) : (int)m;
        return r;
}

int jv_strv(struct jctx *c, json_t *v, char ***out)
{
        int r = jv_arr(c, v);
        if (r < 0)
                return r;
        size_t n = json_array_size(v);
        char **l = calloc(n + 1, sizeof(char *));
        if (!l)
                return moat_error_set(c->err, ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                size_t o = jc_pushi(c, i);
                r = jv_str(c, json_array_get(v, i), &l[i]);
                jc_pop(c, o);
                if (r < 0) {
                        strv_free(l);
                        return r;
                }
        }
        strv_free(*out);
        *out = l;
        return 0;
}

int jc_obj(struct jctx *c, json_t *obj, const char *key, json_t **out)
{
        json_t *v = jc_get(obj, key);
        if (!v)
                return 0;
        size_t o = jc_push(c, key);
        int r = jv_obj(c, v);
        jc_pop(c, o);
        if (r < 0)
                return r;
        *out = v;
        return 1;
}

int jc_arr(struct jctx *c, json_t *obj, const char *key, json_t **out)
{
        json_t *v = jc_get(obj, key);
        if (!v)
                return 0;
        size_t o = jc_push(c, key);
        int r = jv_arr(c, v);
        jc_pop(c, o);
        if (r < 0)
                return r;
        *out = v;
        return 1;
}

#define JC_KEYED(name, type)                                                                      \
        int jc_##name(struct jctx *c, json_t *obj, const char *key, type *out)                    \
        {                                                                                         \
                json_t *v = jc_get(obj, key);                                                     \
                if (!v)                                                                           \
                        return 0;                                                                 \
                size_t o = jc_push(c, key);                                                       \
                int r = jv_##name(c, v, out);                                                     \
                jc_pop(c, o);                                                                     \
                return r < 0 ? r : 1;                                                             \
        }
JC_KEYED(str, char *)
JC_KEYED(bool, bool)
JC_KEYED(u64, uint64_t)
JC_KEYED(i64, int64_t)
JC_KEYED(u32, uint32_t)
JC_KEYED(u16, uint16_t)
JC_KEYED(int, int)
JC_KEYED(uint, unsigned int)
JC_KEYED(strv, char **)

/* jansson refuses integers outside json_int_t.  uint64 fields (rlimits,
 * seccomp argument values, ...) legitimately hold such values, so each
 * integer literal that overflows is replaced by a placeholder string
 * "\u0000<n>" padded with blanks to the same length (line and column of
 * later errors stay right); the literal's text goes into c->big[n]. */
static int rewrite_big_ints(struct jctx *c, const char *in, size_t len, char **out)
{
        _cleanup_free_ char *buf = malloc(len + 1);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, in, len);
        buf[len] = '\0';
        bool in_str = false;
        for (size_t i = 0; i < len; i++) {
                char ch = in[i];
                if (in_str) {
                        if (ch == '\\') {
                                /* A \u0000 of the user's would be taken for a placeholder. */
                                if (i + 5 < len && in[i + 1] == 'u' && in[i + 2] == '0' && in[i + 3] == '0' &&
                                    in[i + 4] == '0' && in[i + 5] == '0')
                                        return -EINVAL;
                                i++;
                        } else if (ch == '"')
                                in_str = false;
                        continue;
                }
                if (ch == '"') {
                        in_str = true;
                        continue;
                }
                if (ch != '-' && (ch < '1' || ch > '9'))
                        continue;
                size_t s = i, e = i + (ch == '-');
                if (e >= len || in[e] < '1' || in[e] > '9') {
                        i = e - 1; /* look at in[e] again */
                        continue;
                }
                while (e < len && in[e] >= '0' && in[e] <= '9')
                        e++;
                if (e < len && (in[e] == '.' || in[e] == 'e' || in[e] == 'E')) {
                        while (e < len && strchr("0123456789.eE+-", in[e]))
                                e++;
                        i = e - 1;
                        continue;
                }
                i = e - 1;
                if (e - s < 19)
                        continue;
                char tmp[32];
                if (e - s >= sizeof(tmp)) {
                        /* Far too long for any type: keep a readable prefix. */
                        memcpy(tmp, in + s, 20);
                        memcpy(tmp + 20, "...", 4);
                } else {
                        memcpy(tmp, in + s, e - s);
                        tmp[e - s] = '\0';
                        errno = 0;
                        (void)strtoll(tmp, NULL, 10);
                        if (errno != ERANGE)
                                continue;
                }
                char marker[32];
                int mlen = snprintf(marker, sizeof(marker), "\"\\u0000%zu\"", c->n_big);
                if (mlen < 0 || (size_t)mlen > e - s)
                        return -EINVAL;
                char **nb = realloc(c->big, (c->n_big + 1) * sizeof(char *));
                if (!nb)
                        return -ENOMEM;
                c->big = nb;
                if (!(c->big[c->n_big] = strdup(tmp)))
                        return -ENOMEM;
                c->n_big++;
                memcpy(buf + s, marker, (size_t)mlen);
                memset(buf + s + mlen, ' ', e - s - (size_t)mlen);
        }
        *out = TAKE_PTR(buf);
        return 0;
}

int jctx_load(struct jctx *c, const char *text, size_t len, json_t **out)
{
        const char *origin = c->origin ? c->origin : "JSON";
        if (len > JCTX_MAX_INPUT)
                return moat_error_input(c->err, EINVAL, "%s: too large (%zu bytes, at most 4 MiB)", origin, len);
        json_error_t jerr;
        json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root && json_error_code(&jerr) == json_error_numeric_overflow) {
                _cleanup_free_ char *copy = NULL;
                int r = rewrite_big_ints(c, text, len, &copy);
                if (r == -ENOMEM)
                        return moat_error_set(c->err, ENOMEM, "out of memory");
                if (r >= 0)
                        root = json_loadb(copy, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        }
        if (!root)
                return moat_error_input(c->err, EINVAL, "%s: line %d, column %d: %s", origin, jerr.line,
                                        jerr.column, jerr.text);
        if (!json_is_object(root)) {
                json_decref(root);
                return moat_error_input(c->err, EINVAL, "%s: expected a JSON object at the top level", origin);
        }
        *out = root;
        return 0;
}
