/* SPDX-License-Identifier: Apache-2.0 */
/* Events: violations and lifecycle changes of an environment's services, one
 * JSON object per line:
 *   {"time":"2026-11-27T04:34:06.123456789Z","env":"demo","service":"web",
 *    "type":"denied","fields":{"dst":"db","dport":5432,...}}
 * Keys in that order; "service" is null for environment-wide events; the
 * keys of "fields" sorted.  Parsing is strict (a line from a log someone may
 * have written into is untrusted): anything unexpected is refused with a
 * message, never a crash. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

enum moat_event_type {
        MOAT_EV_DENIED,           /* connection dropped by the policy (NFLOG) */
        MOAT_EV_OOM,              /* OOM kill (or OOM with the killer disabled) in the cgroup */
        MOAT_EV_PIDS_LIMIT,       /* fork refused by pids.max */
        MOAT_EV_EXIT,             /* a service's main process exited */
        MOAT_EV_RESTART,          /* restart policy restarted it */
        MOAT_EV_HEALTH,           /* health state changed */
        MOAT_EV_START,
        MOAT_EV_STOP,
        MOAT_EV_VIOLATION_ACTION, /* on-violation kill/stop applied */
        _MOAT_EV_MAX,
};

#define MOAT_EVENT_LINE_MAX (64 * 1024) /* longer lines are refused */
#define MOAT_EVENT_NAME_MAX 255         /* env, service */
#define MOAT_EVENT_FIELDS_MAX 64        /* keys in "fields" */
#define MOAT_EVENT_KEY_MAX 64
#define MOAT_EVENT_VALUE_MAX 4096       /* string values */

struct moat_event {
        int64_t time_ns;           /* CLOCK_REALTIME, ns since the epoch */
        char *env;                 /* never NULL */
        char *service;             /* NULL: the environment as a whole */
        enum moat_event_type type;
        json_t *fields;            /* object; values string, integer, boolean or null; never NULL */
};

const char *moat_event_type_name(enum moat_event_type t); /* "pids_limit"; NULL if out of range */
int moat_event_type_from_name(const char *s, enum moat_event_type *out); /* -EINVAL if unknown */

/* A new event stamped with the current time.  service may be NULL. */
int moat_event_new(const char *env, const char *service, enum moat_event_type type, struct moat_event **out);
struct moat_event *moat_event_dup(const struct moat_event *ev);
void moat_event_free(struct moat_event *ev);
static inline void moat_event_freep(struct moat_event **ev) { moat_event_free(*ev); }
#define _cleanup_event_ __attribute__((cleanup(moat_event_freep)))

/* Fields.  Keys: 1..64 chars of [A-Za-z0-9_.-]; string values up to 4096 bytes
 * of valid UTF-8 (no NUL).  -EINVAL for bad keys/values, -E2BIG past 64 fields. */
int moat_event_set_str(struct moat_event *ev, const char *key, const char *value);
int moat_event_set_int(struct moat_event *ev, const char *key, int64_t value);
int moat_event_set_bool(struct moat_event *ev, const char *key, bool value);
const char *moat_event_get_str(const struct moat_event *ev, const char *key); /* NULL if absent/not a string */
int moat_event_get_int(const struct moat_event *ev, const char *key, int64_t *out); /* -ENOENT */

/* RFC 3339 UTC with nanoseconds: "2026-11-27T04:34:06.000000001Z" (buf >= 40). */
int moat_event_time_format(int64_t ns, char buf[static 40]);
/* Accepts "YYYY-MM-DDTHH:MM:SS[.1-9 digits](Z|+hh:mm|-hh:mm)". */
int moat_event_time_parse(const char *s, int64_t *ns);

/* One line, '\n'-terminated, NUL-terminated (len excludes the NUL). */
int moat_event_to_line(const struct moat_event *ev, char **line, size_t *len);
/* Parses one line (trailing '\n' optional); err names what is wrong. */
int moat_event_parse(const char *line, size_t len, struct moat_event **out, struct moat_error **err);
