/* SPDX-License-Identifier: Apache-2.0 */
/* events: the JSON line form (round trip, stable order, strict parsing of
 * hostile lines), the bus with several sinks, on-violation, the epoll loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "events/bus.h"
#include "events/event.h"
#include "tap.h"

static void test_time(void)
{
        char buf[40];
        int64_t ns = 0;
        ok(moat_event_time_format(1795754046000000001LL, buf) == 0, "format a time");
        is_str(buf, "2026-11-27T04:34:06.000000001Z", "RFC 3339 with nanoseconds, UTC");
        ok(moat_event_time_parse(buf, &ns) == 0 && ns == 1795754046000000001LL, "parse it back exactly");
        ok(moat_event_time_parse("2026-11-27T05:34:06.5+01:00", &ns) == 0 && ns == 1795754046500000000LL,
           "offset and short fraction");
        ok(moat_event_time_parse("1970-01-01T00:00:00Z", &ns) == 0 && ns == 0, "the epoch");
        const char *bad[] = { "", "2026-11-27", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z",
                              "2026-11-27T24:00:00Z", "2026-11-27T04:34:06.Z", "2026-11-27T04:34:06.1234567890Z",
                              "2026-11-27T04:34:06", "2026-11-27T04:34:06Zjunk", "2026-11-27 04:34:06Z",
                              "+026-11-27T04:34:06Z", "2026-11-27T04:34:06+1:00" };
        int refused = 0;
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                if (moat_event_time_parse(bad[i], &ns) < 0)
                        refused++;
                else
                        printf("# accepted '%s'\n", bad[i]);
        is_int(refused, ARRAY_SIZE(bad), "malformed times refused");
}

static void test_roundtrip(void)
{
        _cleanup_event_ struct moat_event *ev = NULL;
        ok(moat_event_new("demo", "web", MOAT_EV_DENIED, &ev) == 0, "new event");
        if (!ev)
                return;
        ev->time_ns = 1795754046123456789LL;
        ok(moat_event_set_str(ev, "dst", "db") == 0 && moat_event_set_int(ev, "dport", 5432) == 0 &&
                   moat_event_set_str(ev, "proto", "tcp") == 0 && moat_event_set_bool(ev, "ipv6", false) == 0 &&
                   moat_event_set_str(ev, "src_addr", "10.89.0.2") == 0,
           "set fields");
        ok(moat_event_set_str(ev, "bad key", "x") == -EINVAL, "key with a space refused");
        ok(moat_event_set_str(ev, "", "x") == -EINVAL, "empty key refused");
        ok(moat_event_set_str(ev, "k", "\xff\xfe") == -EINVAL, "invalid UTF-8 value refused");
        _cleanup_free_ char *line = NULL;
        size_t len = 0;
        ok(moat_event_to_line(ev, &line, &len) == 0, "serialise");
        is_str(line,
               "{\"time\":\"2026-11-27T04:34:06.123456789Z\",\"env\":\"demo\",\"service\":\"web\",\"type\":\"denied\","
               "\"fields\":{\"dport\":5432,\"dst\":\"db\",\"ipv6\":false,\"proto\":\"tcp\",\"src_addr\":\"10.89.0.2\"}}\n",
               "one line, stable key order, fields sorted");
        is_int(len, strlen(line), "length returned");
        _cleanup_event_ struct moat_event *back = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        ok(moat_event_parse(line, len, &back, &err) == 0, "parse back%s%s", err ? ": " : "", err ? err->msg : "");
        if (back) {
                is_int(back->time_ns, ev->time_ns, "time survives");
                is_str(back->env, "demo", "env survives");
                is_str(back->service, "web", "service survives");
                is_int(back->type, MOAT_EV_DENIED, "type survives");
                int64_t port = 0;
                ok(moat_event_get_int(back, "dport", &port) == 0 && port == 5432, "int field survives");
                is_str(moat_event_get_str(back, "dst"), "db", "string field survives");
                _cleanup_free_ char *again = NULL;
                ok(moat_event_to_line(back, &again, NULL) == 0 && again && STREQ(again, line),
                   "re-serialised identically");
        }
        /* env-wide event, unicode, every type name */
        _cleanup_event_ struct moat_event *e2 = NULL;
        ok(moat_event_new("proj-ü", NULL, MOAT_EV_VIOLATION_ACTION, &e2) == 0, "env-wide event");
        if (e2) {
                moat_event_set_str(e2, "msg", "naïve \"quote\"\nnewline");
                _cleanup_free_ char *l2 = NULL;
                size_t n2 = 0;
                ok(moat_event_to_line(e2, &l2, &n2) == 0 && l2 && !memchr(l2, '\n', n2 - 1), "newline escaped");
                contains(l2, "\"service\":null", "null service");
                _cleanup_event_ struct moat_event *b2 = NULL;
                ok(moat_event_parse(l2, n2, &b2, NULL) == 0 && b2 && !b2->service && STREQ(b2->env, "proj-ü") &&
                           STREQ(moat_event_get_str(b2, "msg"), "naïve \"quote\"\nnewline"),
                   "unicode and escapes round-trip");
        }
        int names = 0;
        for (int t = 0; t < _MOAT_EV_MAX; t++) {
                enum moat_event_type back_t;
                if (moat_event_type_from_name(moat_event_type_name(t), &back_t) == 0 && (int)back_t == t)
                        names++;
        }
        is_int(names, _MOAT_EV_MAX, "every type name maps back");
        ok(moat_event_type_name(_MOAT_EV_MAX) == NULL, "out-of-range type has no name");
        _cleanup_event_ struct moat_event *e3 = NULL;
        ok(moat_event_new("", "x", MOAT_EV_START, &e3) == -EINVAL, "empty env refused");
        ok(moat_event_new("a\tb", "x", MOAT_EV_START, &e3) == -EINVAL, "control char in env refused");
        ok(moat_event_new("a", "x", (enum moat_event_type)99, &e3) == -EINVAL, "bad type refused");
        _cleanup_event_ struct moat_event *e4 = NULL;
        moat_event_new("a", "b", MOAT_EV_EXIT, &e4);
        int r = 0;
        char k[16];
        for (int i = 0; i < MOAT_EVENT_FIELDS_MAX && r == 0; i++) {
                snprintf(k, sizeof(k), "k%d", i);
                r = moat_event_set_int(e4, k, i);
        }
        ok(r == 0 && moat_event_set_int(e4, "one_more", 1) == -E2BIG && moat_event_set_int(e4, "k0", 7) == 0,
           "field cap (replacing still allowed)");
}

static void test_hostile(void)
{
        const char *good = "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\",\"service\":\"s\",\"type\":\"oom\",\"fields\":{}}";
        _cleanup_event_ struct moat_event *ev = NULL;
        ok(moat_event_parse(good, strlen(good), &ev, NULL) == 0, "minimal valid line");
        const char *bad[] = {
                "",
                "\n",
                "not json",
                "[1,2]",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\",\"type\":\"oom\"",
                "{\"env\":\"e\",\"type\":\"oom\"}",
                "{\"time\":\"yesterday\",\"env\":\"e\",\"type\":\"oom\"}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"type\":\"oom\"}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"\",\"type\":\"oom\"}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":5,\"type\":\"oom\"}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\",\"type\":\"reboot\"}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\",\"type\":\"oom\",\"extra\":1}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\",\"type\":\"oom\",\"fields\":[]}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\",\"type\":\"oom\",\"fields\":{\"a\":{\"b\":1}}}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\",\"type\":\"oom\",\"fields\":{\"a b\":1}}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\",\"type\":\"oom\",\"fields\":{\"a\":1.5}}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\",\"env\":\"f\",\"type\":\"oom\"}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\\u0000x\",\"type\":\"oom\"}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\\u001b[31m\",\"type\":\"oom\"}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\",\"service\":7,\"type\":\"oom\"}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\",\"type\":\"oom\"}\n{\"x\":1}",
                "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\",\"type\":\"oom\"} trailing",
                "\xff\xfe{}",
        };
        int refused = 0;
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_event_ struct moat_event *e = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                if (moat_event_parse(bad[i], strlen(bad[i]), &e, &err) < 0 && err && !e)
                        refused++;
                else
                        printf("# accepted: %s\n", bad[i]);
        }
        is_int(refused, ARRAY_SIZE(bad), "every hostile line refused with a message");
        /* deep nesting and huge lines must not crash */
        size_t big = 2 * MOAT_EVENT_LINE_MAX;
        char *s = malloc(big);
        if (s) {
                memset(s, '[', big);
                _cleanup_event_ struct moat_event *e = NULL;
                ok(moat_event_parse(s, big, &e, NULL) < 0, "over-long line refused");
                ok(moat_event_parse(s, 20000, &e, NULL) < 0, "deeply nested arrays refused");
                free(s);
        }
        /* too many fields */
        _cleanup_free_ char *many = malloc(MOAT_EVENT_LINE_MAX);
        if (many) {
                int o = snprintf(many, 200, "{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"e\",\"type\":\"oom\",\"fields\":{");
                for (int i = 0; i <= MOAT_EVENT_FIELDS_MAX; i++)
                        o += snprintf(many + o, 32, "%s\"k%d\":1", i ? "," : "", i);
                snprintf(many + o, 8, "}}");
                _cleanup_event_ struct moat_event *e = NULL;
                ok(moat_event_parse(many, strlen(many), &e, NULL) < 0, "%d fields refused", MOAT_EVENT_FIELDS_MAX + 1);
        }
}

/* ---- bus ---- */

struct rec {
        int n;
        enum moat_event_type last;
        int fail;
};

static int rec_sink(void *ud, const struct moat_event *ev)
{
        struct rec *r = ud;
        r->n++;
        r->last = ev->type;
        return r->fail;
}

struct pol {
        int acted;
        char service[32];
};

static enum moat_on_violation policy(void *ud, const char *env, const char *service)
{
        return service && STREQ(service, "web") ? MOAT_ON_VIOLATION_KILL : MOAT_ON_VIOLATION_LOG;
}

static int act(void *ud, const char *env, const char *service, enum moat_on_violation a)
{
        struct pol *p = ud;
        p->acted++;
        snprintf(p->service, sizeof(p->service), "%s", service);
        return 0;
}

static void test_bus(void)
{
        struct moat_event_bus *bus = NULL;
        ok(moat_event_bus_new(&bus) == 0, "bus");
        if (!bus)
                return;
        struct rec a = { 0 }, b = { .fail = -EIO }, c = { 0 };
        int ia = moat_event_bus_add_sink(bus, rec_sink, &a);
        int ib = moat_event_bus_add_sink(bus, rec_sink, &b);
        moat_event_bus_add_sink(bus, rec_sink, &c);
        int sp[2];
        ok(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0, "socketpair for a stream client");
        struct moat_event_stream *stream = NULL;
        moat_event_stream_new(&stream);
        moat_event_stream_add_client(stream, sp[0]);
        moat_event_bus_add_sink(bus, moat_event_sink_stream, stream);
        struct pol p = { 0 };
        struct moat_violation_sink vs = { .bus = bus, .policy = policy, .act = act, .userdata = &p };
        moat_event_bus_add_sink(bus, moat_event_sink_violation, &vs);

        _cleanup_event_ struct moat_event *ev = NULL;
        moat_event_new("demo", "api", MOAT_EV_START, &ev);
        is_int(moat_event_bus_emit(bus, ev), -EIO, "a failing sink's error is returned");
        ok(a.n == 1 && b.n == 1 && c.n == 1, "every sink got the event, also after a failing one");
        char buf[8192];
        ssize_t n = read(sp[1], buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = '\0';
        contains(buf, "\"type\":\"start\"", "stream client got the line");
        ok(n > 0 && buf[n - 1] == '\n', "whole line to the client");

        moat_event_bus_remove_sink(bus, ib);
        _cleanup_event_ struct moat_event *den = NULL;
        moat_event_new("demo", "web", MOAT_EV_DENIED, &den);
        moat_event_set_str(den, "dst", "db");
        is_int(moat_event_bus_emit(bus, den), 0, "emit a violation");
        is_int(p.acted, 1, "on-violation action ran once");
        is_str(p.service, "web", "for the violating service");
        is_int(a.n, 3, "sinks got the violation and then the violation_action event");
        is_int(a.last, MOAT_EV_VIOLATION_ACTION, "violation_action delivered after the violation");
        is_int(b.n, 1, "a removed sink gets nothing more");
        n = read(sp[1], buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = '\0';
        contains(buf, "\"action\":\"kill\",\"cause\":\"denied\",\"result\":\"ok\"", "action event on the stream");

        _cleanup_event_ struct moat_event *d2 = NULL;
        moat_event_new("demo", "api", MOAT_EV_OOM, &d2);
        moat_event_bus_emit(bus, d2);
        is_int(p.acted, 1, "policy log: no action");

        close(sp[1]);
        moat_event_bus_emit(bus, ev);
        is_int(moat_event_stream_clients(stream), 0, "a gone client is dropped");
        moat_event_bus_remove_sink(bus, ia);
        is_int(moat_event_bus_remove_sink(bus, ia), -ENOENT, "removing twice");
        enum moat_on_violation ov;
        ok(moat_on_violation_from_name("stop", &ov) == 0 && ov == MOAT_ON_VIOLATION_STOP &&
                   moat_on_violation_from_name("explode", &ov) == -EINVAL,
           "on-violation names");
        moat_event_stream_free(stream);
        moat_event_bus_free(bus);
}

struct loopctx {
        struct moat_events_loop *loop;
        int hits;
        int other_fd;
};

static int on_read(int fd, uint32_t revents, void *ud)
{
        struct loopctx *c = ud;
        char b[16];
        (void)!read(fd, b, sizeof(b));
        c->hits++;
        /* removing another ready fd in the same round must not run it */
        if (c->other_fd >= 0)
                moat_events_loop_remove_fd(c->loop, c->other_fd);
        return 0;
}

static void test_loop(void)
{
        struct moat_events_loop *loop = NULL;
        ok(moat_events_loop_new(&loop) == 0 && moat_events_loop_fd(loop) >= 0, "loop");
        if (!loop)
                return;
        int p1[2], p2[2];
        if (pipe2(p1, O_CLOEXEC) < 0 || pipe2(p2, O_CLOEXEC) < 0)
                return;
        struct loopctx c = { .loop = loop, .other_fd = -1 };
        ok(moat_events_loop_add_fd(loop, p1[0], EPOLLIN, on_read, &c) == 0, "add fd");
        is_int(moat_events_loop_add_fd(loop, p1[0], EPOLLIN, on_read, &c), -EEXIST, "add twice refused");
        is_int(moat_events_loop_run_once(loop, 0), 0, "nothing ready: timeout");
        (void)!write(p1[1], "x", 1);
        is_int(moat_events_loop_run_once(loop, 1000), 1, "one callback ran");
        is_int(c.hits, 1, "callback saw it");
        moat_events_loop_add_fd(loop, p2[0], EPOLLIN, on_read, &c);
        (void)!write(p1[1], "x", 1);
        (void)!write(p2[1], "x", 1);
        c.other_fd = p2[0];
        /* whichever runs first removes p2's registration; p2 must then not run (or it ran first) */
        int ran = moat_events_loop_run_once(loop, 1000);
        ok(ran >= 1 && ran <= 2, "ran %d callbacks with a removal in between", ran);
        ok(moat_events_loop_remove_fd(loop, p2[0]) == -ENOENT, "p2 gone");
        moat_events_loop_free(loop);
        close(p1[0]);
        close(p1[1]);
        close(p2[0]);
        close(p2[1]);
}

int main(void)
{
        test_time();
        test_roundtrip();
        test_hostile();
        test_bus();
        test_loop();
        return done_testing();
}
