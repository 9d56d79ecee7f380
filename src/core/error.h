/* SPDX-License-Identifier: Apache-2.0 */
/* Errors: functions return int, >= 0 success, -errno failure.  Where a caller
 * needs a message it passes struct moat_error **err; moat_error_set() fills it
 * and returns -errnum so a call site can `return moat_error_set(err, ...)`. */
#pragma once

#include <stdarg.h>

struct moat_error {
        int code;   /* positive errno */
        char *msg;  /* "cannot mount 'proc' on '/proc': Permission denied" */
};

/* Sets *err (if err and no error is set yet) to fmt plus ": strerror(errnum)"
 * when errnum > 0.  errnum may be given positive or negative.  Returns
 * -abs(errnum), or -EINVAL when errnum is 0. */
int moat_error_set(struct moat_error **err, int errnum, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Same, without appending strerror: for bad input ("'linux.namespaces[2].type': unknown namespace 'foo'"). */
int moat_error_input(struct moat_error **err, int errnum, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Prefixes an existing error message: "creating container 'x': <old>". */
int moat_error_prefix(struct moat_error **err, int ret, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void moat_error_free(struct moat_error *e);
void moat_error_freep(struct moat_error **e);
#define _cleanup_error_ __attribute__((cleanup(moat_error_freep)))
