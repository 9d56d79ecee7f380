/* SPDX-License-Identifier: Apache-2.0 */
#include "core/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int error_vset(struct moat_error **err, int errnum, int with_strerror, const char *fmt, va_list ap)
{
        int code = errnum < 0 ? -errnum : errnum;
        if (code == 0)
                code = EINVAL;
        if (!err || *err)
                return -code;
        struct moat_error *e = calloc(1, sizeof(*e));
        if (!e)
                return -code;
        char *msg = NULL;
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        if (msg && with_strerror && errnum != 0) {
                char *full = NULL;
                if (asprintf(&full, "%s: %s", msg, strerror(code)) >= 0) {
                        free(msg);
                        msg = full;
                }
        }
        e->code = code;
        e->msg = msg ? msg : strdup("out of memory");
        *err = e;
        return -code;
}

int moat_error_set(struct moat_error **err, int errnum, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = error_vset(err, errnum, 1, fmt, ap);
        va_end(ap);
        return r;
}

int moat_error_input(struct moat_error **err, int errnum, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = error_vset(err, errnum, 0, fmt, ap);
        va_end(ap);
        return r;
}

int moat_error_prefix(struct moat_error **err, int ret, const char *fmt, ...)
{
        int code = ret < 0 ? ret : -(ret ? ret : EINVAL);
        if (!err || !*err)
                return code;
        char *prefix = NULL, *full = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&prefix, fmt, ap);
        va_end(ap);
        if (n >= 0 && asprintf(&full, "%s: %s", prefix, (*err)->msg) >= 0) {
                free((*err)->msg);
                (*err)->msg = full;
        }
        if (n >= 0)
                free(prefix);
        return code;
}

void moat_error_free(struct moat_error *e)
{
        if (!e)
                return;
        free(e->msg);
        free(e);
}

void moat_error_freep(struct moat_error **e)
{
        moat_error_free(*e);
        *e = NULL;
}
