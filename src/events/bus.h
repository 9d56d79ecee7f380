/* SPDX-License-Identifier: Apache-2.0 */
/* The in-process event bus of a supervisor, and the epoll loop that drives
 * its sources.  Single-threaded: sources (cgroup watches, nflog, exits) call
 * moat_event_bus_emit() from their fd callbacks, and every sink sees every
 * event, in the order the sinks were added. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "events/event.h"
#include "events/log.h"

/* ---- the loop ---- */
struct moat_events_loop;
/* revents: EPOLLIN etc.  A negative return is reported by run_once (the
 * other ready fds are still dispatched). */
typedef int (*moat_loop_fd_fn)(int fd, uint32_t revents, void *userdata);

int moat_events_loop_new(struct moat_events_loop **out);
void moat_events_loop_free(struct moat_events_loop *loop);
/* The epoll fd: a supervisor with a loop of its own can add it there and
 * call run_once(loop, 0) when it is readable. */
int moat_events_loop_fd(const struct moat_events_loop *loop);
/* events: EPOLLIN / EPOLLOUT / ...; the fd stays owned by the caller.  -EEXIST if already added. */
int moat_events_loop_add_fd(struct moat_events_loop *loop, int fd, uint32_t events, moat_loop_fd_fn fn,
                            void *userdata);
int moat_events_loop_remove_fd(struct moat_events_loop *loop, int fd);
/* Waits up to timeout_ms (-1 forever, 0 poll) and dispatches what is ready.
 * Returns the number of callbacks run, or the first callback error, or -errno. */
int moat_events_loop_run_once(struct moat_events_loop *loop, int timeout_ms);

/* ---- the bus ---- */
struct moat_event_bus;
typedef int (*moat_event_sink_fn)(void *userdata, const struct moat_event *ev);

int moat_event_bus_new(struct moat_event_bus **out);
void moat_event_bus_free(struct moat_event_bus *bus);
/* Returns a sink id >= 0. */
int moat_event_bus_add_sink(struct moat_event_bus *bus, moat_event_sink_fn fn, void *userdata);
int moat_event_bus_remove_sink(struct moat_event_bus *bus, int id);
/* Delivers ev (borrowed) to every sink; a failing sink does not stop the
 * others.  A sink may emit in turn (a violation action): those events are
 * queued and delivered after the current one.  Returns the first sink error. */
int moat_event_bus_emit(struct moat_event_bus *bus, const struct moat_event *ev);
/* Same signature as a source callback: userdata is the bus. */
int moat_event_bus_emit_cb(void *bus, const struct moat_event *ev);

/* ---- sinks ---- */
/* userdata: struct moat_event_log *. */
int moat_event_sink_log(void *log, const struct moat_event *ev);

/* Clients of the supervisor's socket that asked for `events --follow`:
 * each line is written without blocking; a client that is gone or too slow
 * to take a whole line (its socket buffer full) is dropped and its fd closed. */
struct moat_event_stream;
int moat_event_stream_new(struct moat_event_stream **out);
void moat_event_stream_free(struct moat_event_stream *s); /* closes the clients */
/* Takes ownership of fd (set non-blocking here). */
int moat_event_stream_add_client(struct moat_event_stream *s, int fd);
size_t moat_event_stream_clients(const struct moat_event_stream *s);
int moat_event_sink_stream(void *stream, const struct moat_event *ev);

/* on-violation: denied, oom and pids_limit are violations; for a service
 * whose policy is kill or stop the action callback runs, and the bus gets a
 * violation_action event (fields: action, cause, result) afterwards. */
enum moat_on_violation { MOAT_ON_VIOLATION_LOG, MOAT_ON_VIOLATION_KILL, MOAT_ON_VIOLATION_STOP };
bool moat_event_is_violation(const struct moat_event *ev);
int moat_on_violation_from_name(const char *s, enum moat_on_violation *out); /* "log" | "kill" | "stop" */
const char *moat_on_violation_name(enum moat_on_violation a);
struct moat_violation_sink {
        struct moat_event_bus *bus; /* where violation_action events go (may be NULL) */
        /* The policy of a service (service may be NULL for env-wide events). */
        enum moat_on_violation (*policy)(void *userdata, const char *env, const char *service);
        /* Applies kill or stop; returns >= 0 or -errno (recorded in the event). */
        int (*act)(void *userdata, const char *env, const char *service, enum moat_on_violation action);
        void *userdata;
};
int moat_event_sink_violation(void *violation_sink, const struct moat_event *ev);
