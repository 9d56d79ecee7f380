/* SPDX-License-Identifier: Apache-2.0 */
/* Events from a service's cgroup: OOM kills and pids-limit hits.
 *   memory, v1: an eventfd registered through cgroup.event_control for
 *               memory.oom_control, plus its oom_kill counter;
 *   memory, v2: inotify on memory.events (oom_kill counter);
 *   pids, v2: inotify on pids.events ("max N" counter);
 *   pids, v1: pids.events polled every MOAT_CGROUP_WATCH_POLL_MS by a
 *             timerfd of the watch (the kernel does not notify that file).
 * Counters are read when a watch is created; each increase becomes one
 * event ("oom": fields new, total, killed; "pids_limit": new, total, limit).
 * Attaching the watch to a loop is all a supervisor needs; calling
 * moat_cgroup_watch_process() directly (e.g. before removing the cgroup)
 * is harmless: it only reads two small files. */
#pragma once

#include "cgroup/cgroup.h"
#include "core/error.h"
#include "events/bus.h"

#define MOAT_CGROUP_WATCH_POLL_MS 500

struct moat_cgroup_watch;

/* fn gets each event (borrowed): moat_event_bus_emit_cb with the bus, typically.
 * -ENOENT when the cgroup has neither a memory nor a pids controller. */
int moat_cgroup_watch_new(const struct moat_cgroup *cg, const char *env, const char *service,
                          moat_event_sink_fn fn, void *userdata, struct moat_cgroup_watch **out,
                          struct moat_error **err);
void moat_cgroup_watch_free(struct moat_cgroup_watch *w);
/* Re-reads the counters, emits events for what changed.  Returns how many. */
int moat_cgroup_watch_process(struct moat_cgroup_watch *w);
/* Adds / removes the watch's fds (eventfd, inotify) to / from a loop;
 * their callback runs moat_cgroup_watch_process().  Detach before free. */
int moat_cgroup_watch_attach(struct moat_cgroup_watch *w, struct moat_events_loop *loop);
void moat_cgroup_watch_detach(struct moat_cgroup_watch *w, struct moat_events_loop *loop);
/* For tests and diagnostics: which mechanism each source uses. */
const char *moat_cgroup_watch_describe(const struct moat_cgroup_watch *w);
