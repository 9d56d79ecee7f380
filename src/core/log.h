/* SPDX-License-Identifier: Apache-2.0 */
/* Logging.  The library logs at debug only, plus warnings about input it
 * accepted but could not fully apply (an LSM label on a kernel without the
 * LSM); the CLI decides where those go (stderr, --log file, text or json). */
#pragma once

#include <stdbool.h>

enum moat_log_level { MOAT_LOG_ERROR, MOAT_LOG_WARNING, MOAT_LOG_INFO, MOAT_LOG_DEBUG };
enum moat_log_format { MOAT_LOG_TEXT, MOAT_LOG_JSON };

/* fd < 0: stderr.  The fd is kept (the CLI owns it). */
void moat_log_setup(int fd, enum moat_log_format fmt, enum moat_log_level max);
bool moat_log_enabled(enum moat_log_level level);
void moat_log(enum moat_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define moat_debug(...) do { if (moat_log_enabled(MOAT_LOG_DEBUG)) moat_log(MOAT_LOG_DEBUG, __VA_ARGS__); } while (0)
#define moat_warn(...) moat_log(MOAT_LOG_WARNING, __VA_ARGS__)
