/* SPDX-License-Identifier: Apache-2.0 */
/* The event log of one environment: <state_dir>/events.jsonl, append-only,
 * capped: a line that would take it over max_bytes first renames it to
 * events.jsonl.1 (replacing the older one), so at most about 2 * max_bytes
 * are kept.  Every line goes out in one write() on an O_APPEND fd under a
 * shared flock of <state_dir>/events.lock (rotation takes it exclusive), so
 * writers in several processes never interleave or lose lines. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "events/event.h"

#define MOAT_EVENT_LOG_NAME "events.jsonl"
#define MOAT_EVENT_LOG_ROTATED "events.jsonl.1"
#define MOAT_EVENT_LOG_DEFAULT_MAX (8u << 20)

struct moat_event_log;

/* Creates state_dir (mode 0700) if missing.  max_bytes 0: the default. */
int moat_event_log_open(const char *state_dir, uint64_t max_bytes, struct moat_event_log **out,
                        struct moat_error **err);
void moat_event_log_free(struct moat_event_log *l);
int moat_event_log_append(struct moat_event_log *l, const struct moat_event *ev, struct moat_error **err);
/* A preformatted line (must end in '\n', hold no other '\n', < MOAT_EVENT_LINE_MAX). */
int moat_event_log_append_line(struct moat_event_log *l, const char *line, size_t len, struct moat_error **err);

/* Called for each valid line; ev is only borrowed, line includes the '\n'.
 * Return < 0 to stop reading (the value is returned by the reader). */
typedef int (*moat_event_line_fn)(const struct moat_event *ev, const char *line, size_t len, void *userdata);

/* Follows the log: moat_event_follow_process() hands every complete line
 * written since the last call (from the start of events.jsonl.1 then
 * events.jsonl when from_start, else from the current end), and keeps going
 * across rotations.  Corrupt or over-long lines are skipped with a warning
 * and counted.  The fd (inotify on the state dir) becomes readable when
 * there may be more: put it in an epoll loop, or use moat_event_follow_wait(). */
struct moat_event_follow;
int moat_event_follow_open(const char *state_dir, bool from_start, struct moat_event_follow **out,
                           struct moat_error **err);
void moat_event_follow_free(struct moat_event_follow *f);
int moat_event_follow_fd(const struct moat_event_follow *f);
/* Returns the number of lines handed, or the callback's negative value, or -errno. */
int moat_event_follow_process(struct moat_event_follow *f, moat_event_line_fn fn, void *userdata);
/* Waits up to timeout_ms (-1: forever) for the fd, then processes. */
int moat_event_follow_wait(struct moat_event_follow *f, int timeout_ms, moat_event_line_fn fn, void *userdata);
uint64_t moat_event_follow_skipped(const struct moat_event_follow *f);

/* `moat events` without --follow: everything recorded (rotated part first). */
int moat_event_log_read(const char *state_dir, moat_event_line_fn fn, void *userdata, struct moat_error **err);
