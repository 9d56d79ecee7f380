/* SPDX-License-Identifier: Apache-2.0 */
/* The epoll loop, the event bus and its sinks (log, client stream, on-violation). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "events/bus.h"

/* ---- loop ---- */

struct loop_reg {
        int fd;
        moat_loop_fd_fn fn;
        void *userdata;
        bool dead;
        struct loop_reg *next;
};

struct moat_events_loop {
        int epfd;
        struct loop_reg *regs;
        bool dispatching;
};

int moat_events_loop_new(struct moat_events_loop **out)
{
        struct moat_events_loop *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epfd < 0) {
                int r = -errno;
                free(l);
                return r;
        }
        *out = l;
        return 0;
}

static void reap_dead(struct moat_events_loop *l)
{
        for (struct loop_reg **p = &l->regs; *p;) {
                if ((*p)->dead) {
                        struct loop_reg *d = *p;
                        *p = d->next;
                        free(d);
                } else {
                        p = &(*p)->next;
                }
        }
}

void moat_events_loop_free(struct moat_events_loop *l)
{
        if (!l)
                return;
        for (struct loop_reg *r = l->regs; r; r = r->next)
                r->dead = true;
        reap_dead(l);
        closep(&l->epfd);
        free(l);
}

int moat_events_loop_fd(const struct moat_events_loop *l)
{
        return l->epfd;
}

static struct loop_reg *find_reg(struct moat_events_loop *l, int fd)
{
        for (struct loop_reg *r = l->regs; r; r = r->next)
                if (!r->dead && r->fd == fd)
                        return r;
        return NULL;
}

int moat_events_loop_add_fd(struct moat_events_loop *l, int fd, uint32_t events, moat_loop_fd_fn fn, void *userdata)
{
        if (fd < 0 || !fn)
                return -EINVAL;
        if (find_reg(l, fd))
                return -EEXIST;
        struct loop_reg *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        *r = (struct loop_reg){ .fd = fd, .fn = fn, .userdata = userdata, .next = l->regs };
        struct epoll_event ee = { .events = events, .data.ptr = r };
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
                int e = -errno;
                free(r);
                return e;
        }
        l->regs = r;
        return 0;
}

int moat_events_loop_remove_fd(struct moat_events_loop *l, int fd)
{
        struct loop_reg *r = find_reg(l, fd);
        if (!r)
                return -ENOENT;
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL); /* fails harmlessly if the fd was closed already */
        r->dead = true;
        if (!l->dispatching)
                reap_dead(l);
        return 0;
}

int moat_events_loop_run_once(struct moat_events_loop *l, int timeout_ms)
{
        struct epoll_event ev[32];
        int n = epoll_wait(l->epfd, ev, ARRAY_SIZE(ev), timeout_ms);
        if (n < 0)
                return errno == EINTR ? 0 : -errno;
        int ran = 0, first_err = 0;
        l->dispatching = true;
        for (int i = 0; i < n; i++) {
                struct loop_reg *r = ev[i].data.ptr;
                if (r->dead) /* removed by an earlier callback of this round */
                        continue;
                int cr = r->fn(r->fd, ev[i].events, r->userdata);
                ran++;
                if (cr < 0 && first_err == 0)
                        first_err = cr;
        }
        l->dispatching = false;
        reap_dead(l);
        return first_err < 0 ? first_err : ran;
}

/* ---- bus ---- */

struct sink {
        int id;
        moat_event_sink_fn fn;
        void *userdata;
};

#define BUS_QUEUE_MAX 256

struct moat_event_bus {
        struct sink *sinks;
        size_t n, cap;
        int next_id;
        bool emitting;
        struct moat_event *queue[BUS_QUEUE_MAX]; /* emitted by sinks while emitting */
        size_t qhead, qlen;
};

int moat_event_bus_new(struct moat_event_bus **out)
{
        struct moat_event_bus *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        *out = b;
        return 0;
}

void moat_event_bus_free(struct moat_event_bus *b)
{
        if (!b)
                return;
        for (size_t i = 0; i < b->qlen; i++)
                moat_event_free(b->queue[(b->qhead + i) % BUS_QUEUE_MAX]);
        free(b->sinks);
        free(b);
}

int moat_event_bus_add_sink(struct moat_event_bus *b, moat_event_sink_fn fn, void *userdata)
{
        if (!fn)
                return -EINVAL;
        if (b->n == b->cap) {
                size_t nc = b->cap ? b->cap * 2 : 4;
                struct sink *s = realloc(b->sinks, nc * sizeof(*s));
                if (!s)
                        return -ENOMEM;
                b->sinks = s;
                b->cap = nc;
        }
        b->sinks[b->n] = (struct sink){ .id = b->next_id++, .fn = fn, .userdata = userdata };
        return b->sinks[b->n++].id;
}

int moat_event_bus_remove_sink(struct moat_event_bus *b, int id)
{
        for (size_t i = 0; i < b->n; i++)
                if (b->sinks[i].id == id) {
                        memmove(&b->sinks[i], &b->sinks[i + 1], (b->n - i - 1) * sizeof(*b->sinks));
                        b->n--;
                        return 0;
                }
        return -ENOENT;
}

static int deliver(struct moat_event_bus *b, const struct moat_event *ev)
{
        int first = 0;
        /* By index: a sink may remove sinks (itself included) as it runs. */
        for (size_t i = 0; i < b->n; i++) {
                int id = b->sinks[i].id;
                int r = b->sinks[i].fn(b->sinks[i].userdata, ev);
                if (r < 0) {
                        moat_debug("event sink %d failed: %s", id, strerror(-r));
                        if (first == 0)
                                first = r;
                }
                if (i < b->n && b->sinks[i].id != id)
                        i--; /* the current sink went away: the next one moved here */
        }
        return first;
}

int moat_event_bus_emit(struct moat_event_bus *b, const struct moat_event *ev)
{
        if (b->emitting) {
                if (b->qlen == BUS_QUEUE_MAX)
                        return -ENOBUFS;
                struct moat_event *c = moat_event_dup(ev);
                if (!c)
                        return -ENOMEM;
                b->queue[(b->qhead + b->qlen++) % BUS_QUEUE_MAX] = c;
                return 0;
        }
        b->emitting = true;
        int first = deliver(b, ev);
        while (b->qlen > 0) {
                struct moat_event *q = b->queue[b->qhead];
                b->qhead = (b->qhead + 1) % BUS_QUEUE_MAX;
                b->qlen--;
                int r = deliver(b, q);
                moat_event_free(q);
                if (r < 0 && first == 0)
                        first = r;
        }
        b->emitting = false;
        return first;
}

int moat_event_bus_emit_cb(void *bus, const struct moat_event *ev)
{
        return moat_event_bus_emit(bus, ev);
}

/* ---- sinks ---- */

int moat_event_sink_log(void *log, const struct moat_event *ev)
{
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_event_log_append(log, ev, &err);
        if (r < 0)
                moat_debug("event log: %s", err ? err->msg : strerror(-r));
        return r;
}

struct moat_event_stream {
        int *fds;
        size_t n, cap;
};

int moat_event_stream_new(struct moat_event_stream **out)
{
        struct moat_event_stream *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *out = s;
        return 0;
}

void moat_event_stream_free(struct moat_event_stream *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n; i++)
                close(s->fds[i]);
        free(s->fds);
        free(s);
}

int moat_event_stream_add_client(struct moat_event_stream *s, int fd)
{
        if (fd < 0)
                return -EBADF;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (s->n == s->cap) {
                size_t nc = s->cap ? s->cap * 2 : 4;
                int *f = realloc(s->fds, nc * sizeof(*f));
                if (!f) {
                        close(fd);
                        return -ENOMEM;
                }
                s->fds = f;
                s->cap = nc;
        }
        s->fds[s->n++] = fd;
        return 0;
}

size_t moat_event_stream_clients(const struct moat_event_stream *s)
{
        return s->n;
}

int moat_event_sink_stream(void *stream, const struct moat_event *ev)
{
        struct moat_event_stream *s = stream;
        if (s->n == 0)
                return 0;
        _cleanup_free_ char *line = NULL;
        size_t len;
        int r = moat_event_to_line(ev, &line, &len);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n;) {
                ssize_t w;
                do {
                        w = send(s->fds[i], line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (w < 0 && errno == ENOTSOCK)
                                w = write(s->fds[i], line, len); /* a pipe (tests, `events` via a helper) */
                } while (w < 0 && errno == EINTR);
                if (w == (ssize_t)len) {
                        i++;
                        continue;
                }
                /* Gone, or too slow for a whole line: a cut line would corrupt its stream. */
                moat_debug("dropping event client fd %d: %s", s->fds[i], w < 0 ? strerror(errno) : "short write");
                close(s->fds[i]);
                s->fds[i] = s->fds[--s->n];
        }
        return 0;
}

bool moat_event_is_violation(const struct moat_event *ev)
{
        return ev->type == MOAT_EV_DENIED || ev->type == MOAT_EV_OOM || ev->type == MOAT_EV_PIDS_LIMIT;
}

static const char *const action_names[] = { "log", "kill", "stop" };

int moat_on_violation_from_name(const char *s, enum moat_on_violation *out)
{
        for (size_t i = 0; s && i < ARRAY_SIZE(action_names); i++)
                if (STREQ(s, action_names[i])) {
                        *out = (enum moat_on_violation)i;
                        return 0;
                }
        return -EINVAL;
}

const char *moat_on_violation_name(enum moat_on_violation a)
{
        return (unsigned)a < ARRAY_SIZE(action_names) ? action_names[a] : NULL;
}

int moat_event_sink_violation(void *violation_sink, const struct moat_event *ev)
{
        struct moat_violation_sink *v = violation_sink;
        if (!moat_event_is_violation(ev) || !v->policy)
                return 0;
        enum moat_on_violation a = v->policy(v->userdata, ev->env, ev->service);
        if (a == MOAT_ON_VIOLATION_LOG || !moat_on_violation_name(a))
                return 0;
        int r = v->act ? v->act(v->userdata, ev->env, ev->service, a) : -ENOSYS;
        if (!v->bus)
                return r < 0 ? r : 0;
        _cleanup_event_ struct moat_event *out = NULL;
        int e = moat_event_new(ev->env, ev->service, MOAT_EV_VIOLATION_ACTION, &out);
        if (e < 0)
                return e;
        if ((e = moat_event_set_str(out, "action", moat_on_violation_name(a))) < 0 ||
            (e = moat_event_set_str(out, "cause", moat_event_type_name(ev->type))) < 0 ||
            (e = moat_event_set_str(out, "result", r < 0 ? strerror(-r) : "ok")) < 0)
                return e;
        e = moat_event_bus_emit(v->bus, out);
        return r < 0 ? r : e;
}
