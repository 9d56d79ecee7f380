/* SPDX-License-Identifier: Apache-2.0 */
/* Internal to pull.c: the progress display (pull_progress.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pull_state { PULL_WAITING, PULL_DOWNLOADING, PULL_UNPACKING, PULL_DONE, PULL_PRESENT, PULL_FAILED };

struct pull_progress;
/* fd < 0: quiet (returns NULL; every call below accepts NULL).  A tty gets one bar per item,
 * rewritten in place; anything else gets one plain line per state change. */
struct pull_progress *pull_progress_new(int fd, size_t n);
void pull_progress_item(struct pull_progress *p, size_t i, const char *digest, int64_t total);
void pull_progress_set(struct pull_progress *p, size_t i, enum pull_state st, int64_t done);
void pull_progress_bytes(struct pull_progress *p, size_t i, int64_t done);
void pull_progress_render(struct pull_progress *p, bool force);
void pull_progress_free(struct pull_progress *p);
