/* SPDX-License-Identifier: Apache-2.0 */
/* Minimal TAP for C unit tests: no hand-counted plans (done_testing prints
 * the plan at the end), 77 = skip with a reason, MOAT_MUST_WORK=1 turns a
 * skip into a failure. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline bool tap_ok(bool cond, const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
#include <stdarg.h>
static inline bool tap_ok(bool cond, const char *file, int line, const char *fmt, ...)
{
        va_list ap;
        tap_n++;
        printf("%sok %d - ", cond ? "" : "not ", tap_n);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        if (!cond) {
                tap_failed++;
                printf("#   failed at %s:%d\n", file, line);
        }
        fflush(stdout);
        return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)                                                                    \
        ({                                                                                        \
                long long _g = (long long)(got), _w = (long long)(want);                          \
                bool _r = ok(_g == _w, __VA_ARGS__);                                              \
                if (!_r)                                                                          \
                        printf("#   got %lld, want %lld\n", _g, _w);                              \
                _r;                                                                               \
        })
#define is_str(got, want, ...)                                                                    \
        ({                                                                                        \
                const char *_g = (got), *_w = (want);                                             \
                bool _r = ok(_g && _w ? strcmp(_g, _w) == 0 : _g == _w, __VA_ARGS__);            \
                if (!_r)                                                                          \
                        printf("#   got '%s', want '%s'\n", _g ? _g : "(null)", _w ? _w : "(null)"); \
                _r;                                                                               \
        })
#define contains(hay, needle, ...)                                                                \
        ({                                                                                        \
                const char *_h = (hay), *_n = (needle);                                           \
                bool _r = ok(_h && strstr(_h, _n), __VA_ARGS__);                                  \
                if (!_r)                                                                          \
                        printf("#   '%s' does not contain '%s'\n", _h ? _h : "(null)", _n);       \
                _r;                                                                               \
        })

static inline int done_testing(void)
{
        printf("1..%d\n", tap_n);
        if (tap_n == 0) {
                printf("# no test ran\n");
                return 1;
        }
        return tap_failed ? 1 : 0;
}

/* Whole-file skip: prints the reason; fails instead under MOAT_MUST_WORK=1. */
static inline int skip_all(const char *why)
{
        const char *must = getenv("MOAT_MUST_WORK");
        if (must && strcmp(must, "1") == 0) {
                printf("1..1\nnot ok 1 - skipped under MOAT_MUST_WORK=1: %s\n", why);
                return 1;
        }
        printf("1..0 # SKIP %s\n", why);
        return 77;
}
#define skip(why)                                                                                 \
        do {                                                                                      \
                const char *_m = getenv("MOAT_MUST_WORK");                                        \
                if (_m && strcmp(_m, "1") == 0)                                                   \
                        ok(0, "skipped under MOAT_MUST_WORK=1: %s", why);                         \
                else {                                                                            \
                        tap_n++;                                                                  \
                        printf("ok %d # SKIP %s\n", tap_n, why);                                  \
                }                                                                                 \
        } while (0)
