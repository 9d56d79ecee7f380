/* SPDX-License-Identifier: Apache-2.0 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"

static int log_fd = -1;
static enum moat_log_format log_format = MOAT_LOG_TEXT;
static enum moat_log_level log_max = MOAT_LOG_WARNING;

void moat_log_setup(int fd, enum moat_log_format fmt, enum moat_log_level max)
{
        log_fd = fd;
        log_format = fmt;
        log_max = max;
}

bool moat_log_enabled(enum moat_log_level level)
{
        return level <= log_max;
}

static const char *level_name(enum moat_log_level l)
{
        switch (l) {
        case MOAT_LOG_ERROR: return "error";
        case MOAT_LOG_WARNING: return "warning";
        case MOAT_LOG_INFO: return "info";
        default: return "debug";
        }
}

/* JSON string escaping for the one field we print. */
static void json_escape(const char *s, char *out, size_t cap)
{
        size_t o = 0;
        for (; *s && o + 7 < cap; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\') {
                        out[o++] = '\\';
                        out[o++] = (char)c;
                } else if (c < 0x20) {
                        o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
                } else {
                        out[o++] = (char)c;
                }
        }
        out[o] = '\0';
}

void moat_log(enum moat_log_level level, const char *fmt, ...)
{
        if (!moat_log_enabled(level))
                return;
        char msg[2048], line[4608];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        int fd = log_fd >= 0 ? log_fd : STDERR_FILENO;
        int n;
        if (log_format == MOAT_LOG_JSON) {
                char esc[4200];
                struct timespec ts;
                struct tm tm;
                char when[40];
                clock_gettime(CLOCK_REALTIME, &ts);
                gmtime_r(&ts.tv_sec, &tm);
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
                json_escape(msg, esc, sizeof(esc));
                n = snprintf(line, sizeof(line), "{\"level\":\"%s\",\"msg\":\"%s\",\"time\":\"%s.%09ldZ\"}\n",
                             level_name(level), esc, when, ts.tv_nsec);
        } else if (log_fd >= 0) {
                n = snprintf(line, sizeof(line), "%s: %s\n", level_name(level), msg);
        } else {
                n = snprintf(line, sizeof(line), "moat: %s%s%s\n",
                             level == MOAT_LOG_ERROR ? "" : level_name(level),
                             level == MOAT_LOG_ERROR ? "" : ": ", msg);
        }
        if (n > 0)
                (void)write_all(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
