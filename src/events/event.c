/* SPDX-License-Identifier: Apache-2.0 */
/* Event values, their JSON line form and its strict parser. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cleanup.h"
#include "events/event.h"

static const char *const type_names[_MOAT_EV_MAX] = {
        [MOAT_EV_DENIED] = "denied",
        [MOAT_EV_OOM] = "oom",
        [MOAT_EV_PIDS_LIMIT] = "pids_limit",
        [MOAT_EV_EXIT] = "exit",
        [MOAT_EV_RESTART] = "restart",
        [MOAT_EV_HEALTH] = "health",
        [MOAT_EV_START] = "start",
        [MOAT_EV_STOP] = "stop",
        [MOAT_EV_VIOLATION_ACTION] = "violation_action",
};

const char *moat_event_type_name(enum moat_event_type t)
{
        if ((unsigned)t >= _MOAT_EV_MAX)
                return NULL;
        return type_names[t];
}

int moat_event_type_from_name(const char *s, enum moat_event_type *out)
{
        for (size_t i = 0; s && i < _MOAT_EV_MAX; i++)
                if (STREQ(s, type_names[i])) {
                        *out = (enum moat_event_type)i;
                        return 0;
                }
        return -EINVAL;
}

/* env / service names: 1..255 bytes, printable, no '/' surprises needed here
 * (they are only data), but no control characters. */
static bool name_ok(const char *s)
{
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > MOAT_EVENT_NAME_MAX)
                return false;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

static bool key_ok(const char *k)
{
        size_t n = k ? strlen(k) : 0;
        if (n == 0 || n > MOAT_EVENT_KEY_MAX)
                return false;
        for (const char *p = k; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_' || *p == '.' || *p == '-'))
                        return false;
        return true;
}

static bool value_ok(json_t *v)
{
        switch (json_typeof(v)) {
        case JSON_STRING:
                return json_string_length(v) <= MOAT_EVENT_VALUE_MAX && strlen(json_string_value(v)) == json_string_length(v);
        case JSON_INTEGER:
        case JSON_TRUE:
        case JSON_FALSE:
        case JSON_NULL:
                return true;
        default:
                return false;
        }
}

int moat_event_new(const char *env, const char *service, enum moat_event_type type, struct moat_event **out)
{
        if (!name_ok(env) || (service && !name_ok(service)) || !moat_event_type_name(type))
                return -EINVAL;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        _cleanup_event_ struct moat_event *ev = calloc(1, sizeof(*ev));
        if (!ev)
                return -ENOMEM;
        ev->time_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        ev->type = type;
        ev->env = strdup(env);
        ev->service = service ? strdup(service) : NULL;
        ev->fields = json_object();
        if (!ev->env || (service && !ev->service) || !ev->fields)
                return -ENOMEM;
        *out = TAKE_PTR(ev);
        return 0;
}

struct moat_event *moat_event_dup(const struct moat_event *ev)
{
        struct moat_event *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->time_ns = ev->time_ns;
        c->type = ev->type;
        c->env = strdup(ev->env);
        c->service = ev->service ? strdup(ev->service) : NULL;
        c->fields = json_deep_copy(ev->fields);
        if (!c->env || (ev->service && !c->service) || !c->fields) {
                moat_event_free(c);
                return NULL;
        }
        return c;
}

void moat_event_free(struct moat_event *ev)
{
        if (!ev)
                return;
        free(ev->env);
        free(ev->service);
        json_decref(ev->fields);
        free(ev);
}

static int set_field(struct moat_event *ev, const char *key, json_t *v)
{
        if (!v)
                return -ENOMEM;
        if (!key_ok(key) || !value_ok(v)) {
                json_decref(v);
                return -EINVAL;
        }
        if (!json_object_get(ev->fields, key) && json_object_size(ev->fields) >= MOAT_EVENT_FIELDS_MAX) {
                json_decref(v);
                return -E2BIG;
        }
        return json_object_set_new(ev->fields, key, v) < 0 ? -ENOMEM : 0;
}

int moat_event_set_str(struct moat_event *ev, const char *key, const char *value)
{
        if (!value)
                return -EINVAL;
        /* json_string() returns NULL for invalid UTF-8 as well as ENOMEM. */
        json_t *v = json_string(value);
        return v ? set_field(ev, key, v) : -EINVAL;
}

int moat_event_set_int(struct moat_event *ev, const char *key, int64_t value)
{
        return set_field(ev, key, json_integer((json_int_t)value));
}

int moat_event_set_bool(struct moat_event *ev, const char *key, bool value)
{
        return set_field(ev, key, json_boolean(value));
}

const char *moat_event_get_str(const struct moat_event *ev, const char *key)
{
        return json_string_value(json_object_get(ev->fields, key));
}

int moat_event_get_int(const struct moat_event *ev, const char *key, int64_t *out)
{
        json_t *v = json_object_get(ev->fields, key);
        if (!json_is_integer(v))
                return -ENOENT;
        *out = json_integer_value(v);
        return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        unsigned yoe = (unsigned)(y - era * 400);
        unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

int moat_event_time_format(int64_t ns, char buf[static 40])
{
        int64_t sec = ns / 1000000000LL, frac = ns % 1000000000LL;
        if (frac < 0) {
                frac += 1000000000LL;
                sec--;
        }
        time_t t = (time_t)sec;
        struct tm tm;
        if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
                return -ERANGE;
        /* The fields are range-checked above; the length check keeps gcc's -O0
         * truncation analysis (which cannot see that) honest. */
        int n = snprintf(buf, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", (tm.tm_year + 1900) % 10000,
                         (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
                         tm.tm_sec % 100, (int)frac);
        return n > 0 && n < 40 ? 0 : -ERANGE;
}

static bool digits(const char *s, int n, int *out)
{
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return true;
}

int moat_event_time_parse(const char *s, int64_t *ns)
{
        static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        int y, mo, d, h, mi, se;
        if (!s || strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
            !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) || s[13] != ':' ||
            !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
                return -EINVAL;
        if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
                return -EINVAL;
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        if (mo == 2 && d == 29 && !leap)
                return -EINVAL;
        const char *p = s + 19;
        int64_t frac = 0;
        if (*p == '.') {
                int n = 0;
                for (p++; *p >= '0' && *p <= '9'; p++, n++) {
                        if (n >= 9)
                                return -EINVAL;
                        frac = frac * 10 + (*p - '0');
                }
                if (n == 0)
                        return -EINVAL;
                for (; n < 9; n++)
                        frac *= 10;
        }
        int64_t off = 0;
        if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
                off = 0;
        } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
                int oh, om;
                if (!digits(p + 1, 2, &oh) || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
                        return -EINVAL;
                off = (oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
        } else {
                return -EINVAL;
        }
        if (se == 60)
                se = 59; /* a leap second folds into the one before */
        int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off;
        *ns = secs * 1000000000LL + frac;
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int moat_event_to_line(const struct moat_event *ev, char **line, size_t *len)
{
        char ts[40];
        const char *tname = moat_event_type_name(ev->type);
        if (!tname || !ev->env || !json_is_object(ev->fields) || moat_event_time_format(ev->time_ns, ts) < 0)
                return -EINVAL;
        /* A copy of fields with the keys inserted in sorted order, dumped with
         * JSON_PRESERVE_ORDER, keeps the outer key order and sorts the inner. */
        size_t nf = json_object_size(ev->fields);
        _cleanup_free_ const char **keys = calloc(nf ? nf : 1, sizeof(*keys));
        json_t *root = json_object();
        json_t *fields = json_object();
        int r = -ENOMEM;
        if (!keys || !root || !fields)
                goto out;
        size_t i = 0;
        const char *k;
        json_t *v;
        json_object_foreach(ev->fields, k, v) keys[i++] = k;
        qsort(keys, nf, sizeof(*keys), cmp_str);
        for (i = 0; i < nf; i++)
                if (json_object_set(fields, keys[i], json_object_get(ev->fields, keys[i])) < 0)
                        goto out;
        if (json_object_set_new(root, "time", json_string(ts)) < 0 ||
            json_object_set_new(root, "env", json_string(ev->env)) < 0 ||
            json_object_set_new(root, "service", ev->service ? json_string(ev->service) : json_null()) < 0 ||
            json_object_set_new(root, "type", json_string(tname)) < 0 ||
            json_object_set(root, "fields", fields) < 0)
                goto out;
        char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        if (!s)
                goto out;
        size_t n = strlen(s);
        if (n + 1 > MOAT_EVENT_LINE_MAX) {
                free(s);
                r = -E2BIG;
                goto out;
        }
        char *t = realloc(s, n + 2);
        if (!t) {
                free(s);
                goto out;
        }
        t[n] = '\n';
        t[n + 1] = '\0';
        *line = t;
        if (len)
                *len = n + 1;
        r = 0;
out:
        json_decref(fields);
        json_decref(root);
        return r;
}

int moat_event_parse(const char *line, size_t len, struct moat_event **out, struct moat_error **err)
{
        if (len > 0 && line[len - 1] == '\n')
                len--;
        if (len == 0)
                return moat_error_input(err, EINVAL, "empty event line");
        if (len >= MOAT_EVENT_LINE_MAX)
                return moat_error_input(err, E2BIG, "event line of %zu bytes is over the limit of %d", len,
                                        MOAT_EVENT_LINE_MAX);
        if (memchr(line, '\n', len))
                return moat_error_input(err, EINVAL, "event line holds a newline");
        json_error_t je;
        json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
        _cleanup_event_ struct moat_event *ev = NULL;
        int r;
        if (!root)
                return moat_error_input(err, EINVAL, "event line is not valid JSON: %s (column %d)", je.text,
                                        je.column);
        if (!json_is_object(root)) {
                r = moat_error_input(err, EINVAL, "event line is not a JSON object");
                goto out;
        }
        const char *k;
        json_t *v;
        json_object_foreach(root, k, v)
                if (!STREQ(k, "time") && !STREQ(k, "env") && !STREQ(k, "service") && !STREQ(k, "type") &&
                    !STREQ(k, "fields")) {
                        r = moat_error_input(err, EINVAL, "event has an unknown key '%.64s'", k);
                        goto out;
                }
        json_t *jt = json_object_get(root, "time"), *je2 = json_object_get(root, "env"),
               *js = json_object_get(root, "service"), *jty = json_object_get(root, "type"),
               *jf = json_object_get(root, "fields");
        ev = calloc(1, sizeof(*ev));
        if (!ev) {
                r = -ENOMEM;
                goto out;
        }
        if (!json_is_string(jt) || moat_event_time_parse(json_string_value(jt), &ev->time_ns) < 0) {
                r = moat_error_input(err, EINVAL, "event 'time' is missing or not an RFC 3339 time");
                goto out;
        }
        if (!json_is_string(je2) || strlen(json_string_value(je2)) != json_string_length(je2) ||
            !name_ok(json_string_value(je2))) {
                r = moat_error_input(err, EINVAL, "event 'env' is missing or not a valid name");
                goto out;
        }
        if (js && !json_is_null(js) &&
            (!json_is_string(js) || strlen(json_string_value(js)) != json_string_length(js) ||
             !name_ok(json_string_value(js)))) {
                r = moat_error_input(err, EINVAL, "event 'service' is not a valid name");
                goto out;
        }
        if (!json_is_string(jty) || moat_event_type_from_name(json_string_value(jty), &ev->type) < 0) {
                r = moat_error_input(err, EINVAL, "event 'type' is missing or unknown");
                goto out;
        }
        if (jf && !json_is_object(jf)) {
                r = moat_error_input(err, EINVAL, "event 'fields' is not an object");
                goto out;
        }
        if (jf && json_object_size(jf) > MOAT_EVENT_FIELDS_MAX) {
                r = moat_error_input(err, E2BIG, "event has more than %d fields", MOAT_EVENT_FIELDS_MAX);
                goto out;
        }
        if (jf)
                json_object_foreach(jf, k, v)
                        if (!key_ok(k) || !value_ok(v)) {
                                r = moat_error_input(err, EINVAL, "event field '%.64s' is not a valid key or value", k);
                                goto out;
                        }
        ev->env = strdup(json_string_value(je2));
        ev->service = json_is_string(js) ? strdup(json_string_value(js)) : NULL;
        ev->fields = jf ? json_incref(jf) : json_object();
        if (!ev->env || (json_is_string(js) && !ev->service) || !ev->fields) {
                r = -ENOMEM;
                goto out;
        }
        *out = TAKE_PTR(ev);
        r = 0;
out:
        json_decref(root);
        return r;
}
