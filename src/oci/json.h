/* SPDX-License-Identifier: Apache-2.0 */
/* Typed JSON getters (jansson) that name the field path in their errors:
 * "config.json: 'process.user.uid': expected an unsigned 32-bit integer, got -1".
 * A struct jctx carries the origin, the current path and the error slot. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define JCTX_PATH_MAX 512
#define JCTX_MAX_INPUT ((size_t)4 << 20)

struct jctx {
        const char *origin;        /* "config.json"; may be NULL */
        struct moat_error **err;
        char path[JCTX_PATH_MAX];  /* "linux.namespaces[2]" */
        size_t len;
        char **big;                /* text of integers too large for json_int_t */
        size_t n_big;
};

void jctx_init(struct jctx *c, const char *origin, struct moat_error **err);
void jctx_fini(struct jctx *c);

/* Parses text (at most 4 MiB) into a JSON object.  Integers beyond int64 are
 * kept (as their text) so that uint64 fields can take them. */
int jctx_load(struct jctx *c, const char *text, size_t len, json_t **out);

/* Path handling: push returns the old length to give to pop. */
size_t jc_push(struct jctx *c, const char *key);
size_t jc_pushi(struct jctx *c, size_t index);
void jc_pop(struct jctx *c, size_t old);

/* Parses the object (getter jc_obj) or array (jc_arr) at v[key], if present, with `call`
 * under the path ".key"; returns from the caller on error.  Needs `c`, `v`, `sub` and an
 * int `r` in scope. */
#define JC_SUB(getter, key, call)                                                                 \
        do {                                                                                      \
                if ((r = getter(c, v, key, &sub)) < 0)                                            \
                        return r;                                                                 \
                if (r > 0) {                                                                      \
                        size_t jc_sub_o_ = jc_push(c, key);                                       \
                        r = (call);                                                               \
                        jc_pop(c, jc_sub_o_);                                                     \
                        if (r < 0)                                                                \
                                return r;                                                         \
                }                                                                                 \
        } while (0)


/* "origin: 'path': <message>", -EINVAL. */
int jc_err(struct jctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, for the field `key` below the current path. */
int jc_errk(struct jctx *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Short description of a value for "got ...": "a string", "-1", "an object". */
const char *jc_describe(struct jctx *c, json_t *v, char buf[static 64]);

/* Value checks at the current path. */
int jv_obj(struct jctx *c, json_t *v);
int jv_arr(struct jctx *c, json_t *v);
int jv_str(struct jctx *c, json_t *v, char **out);     /* strdup, no embedded NUL */
int jv_strref(struct jctx *c, json_t *v, const char **out);
int jv_bool(struct jctx *c, json_t *v, bool *out);
int jv_u64(struct jctx *c, json_t *v, uint64_t *out);
int jv_i64(struct jctx *c, json_t *v, int64_t *out);
int jv_u32(struct jctx *c, json_t *v, uint32_t *out);
int jv_u16(struct jctx *c, json_t *v, uint16_t *out);
int jv_int(struct jctx *c, json_t *v, int *out);       /* 32-bit signed */
int jv_uint(struct jctx *c, json_t *v, unsigned int *out);
int jv_strv(struct jctx *c, json_t *v, char ***out);   /* array of strings, NULL-terminated */

/* The member `key` of obj (JSON null counts as absent). */
json_t *jc_get(json_t *obj, const char *key);

/* Keyed getters: 0 absent (out untouched), 1 set, < 0 error. */
int jc_obj(struct jctx *c, json_t *obj, const char *key, json_t **out);
int jc_arr(struct jctx *c, json_t *obj, const char *key, json_t **out);
int jc_str(struct jctx *c, json_t *obj, const char *key, char **out);
int jc_bool(struct jctx *c, json_t *obj, const char *key, bool *out);
int jc_u64(struct jctx *c, json_t *obj, const char *key, uint64_t *out);
int jc_i64(struct jctx *c, json_t *obj, const char *key, int64_t *out);
int jc_u32(struct jctx *c, json_t *obj, const char *key, uint32_t *out);
int jc_u16(struct jctx *c, json_t *obj, const char *key, uint16_t *out);
int jc_int(struct jctx *c, json_t *obj, const char *key, int *out);
int jc_uint(struct jctx *c, json_t *obj, const char *key, unsigned int *out);
int jc_strv(struct jctx *c, json_t *obj, const char *key, char ***out);

static inline void jc_decrefp(json_t **j) { if (*j) json_decref(*j); }
#define _cleanup_json_ __attribute__((cleanup(jc_decrefp)))
