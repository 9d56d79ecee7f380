/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor's control socket (env/control.h): the server side in the supervisor's epoll
 * loop, and the client the CLI uses.  One SOCK_SEQPACKET message each way per connection.
 *
 * Server connections go READING (waiting for the request, idle deadline) -> DISPATCHED (the
 * handler owns the conn; only a hangup is watched, which closes the fd but keeps the struct
 * for the reply to free) -> WRITING (the reply did not fit in the socket buffer: EPOLLOUT,
 * idle deadline) -> freed.  One timerfd, armed to the earliest deadline, drops the idle ones. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/path.h"
#include "core/util.h"
#include "env/control.h"

#define ACCEPT_BATCH 64          /* accepts per loop turn */
#define ACCEPT_PAUSE_MS 100      /* after EMFILE and the like */
#define LISTEN_BACKLOG 64
#define CONNECT_RETRY_US 10000   /* the server's backlog is full: try again */

enum conn_state { CONN_READING, CONN_DISPATCHED, CONN_WRITING };

struct moat_control_conn {
        struct moat_control *c;
        int fd;                  /* -EBADF once the client is gone (DISPATCHED) */
        bool in_loop;
        enum conn_state state;
        int64_t deadline_ns;     /* READING and WRITING */
        char *out;               /* the reply, WRITING */
        size_t outlen;
        struct moat_control_conn *prev, *next;
};

struct moat_control {
        struct moat_events_loop *loop;
        moat_control_fn fn;
        void *userdata;
        char *dir;
        int dirfd, fd, timerfd;
        bool bound, listening, timer_in_loop;
        dev_t dev;
        ino_t ino;
        int64_t resume_ns;       /* accepting paused until then (0: not paused) */
        int idle_ms;
        size_t n_open;           /* conns with an fd */
        char *buf;               /* MOAT_CONTROL_MAX_MSG + 1 */
        struct moat_control_conn *conns;
};

static int sock_addr(int dirfd, struct sockaddr_un *sa, socklen_t *len)
{
        char p[32];
        *sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
        int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", fd_path(dirfd, p), MOAT_ENV_CONTROL_SOCK);
        if (n < 0 || (size_t)n >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
        return 0;
}

static bool uid_allowed(uid_t uid)
{
        return uid == 0 || uid == geteuid();
}

static int peer_uid(int fd, uid_t *uid)
{
        struct ucred cr;
        socklen_t l = sizeof(cr);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0)
                return -errno;
        *uid = cr.uid;
        return 0;
}

static char *error_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *error_msg(const char *fmt, ...)
{
        _cleanup_free_ char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (n < 0)
                return NULL;
        json_t *o = json_pack("{s:s}", "error", m);
        if (!o)
                return NULL;
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

/* ---------------------------------------------------------------- server: conns */

static void timer_arm(struct moat_control *c);

static void conn_unregister(struct moat_control_conn *conn)
{
        if (conn->in_loop)
                moat_events_loop_remove_fd(conn->c->loop, conn->fd);
        conn->in_loop = false;
}

static void conn_close_fd(struct moat_control_conn *conn)
{
        if (conn->fd < 0)
                return;
        conn_unregister(conn);
        closep(&conn->fd);
        conn->c->n_open--;
}

static void conn_free(struct moat_control_conn *conn)
{
        struct moat_control *c = conn->c;
        conn_close_fd(conn);
        if (conn->prev)
                conn->prev->next = conn->next;
        else
                c->conns = conn->next;
        if (conn->next)
                conn->next->prev = conn->prev;
        free(conn->out);
        free(conn);
}

static int conn_ready(int fd, uint32_t revents, void *userdata);

static int conn_register(struct moat_control_conn *conn, uint32_t events)
{
        conn_unregister(conn);
        int r = moat_events_loop_add_fd(conn->c->loop, conn->fd, events, conn_ready, conn);
        if (r >= 0)
                conn->in_loop = true;
        return r;
}

/* 0 sent, -EAGAIN, or -errno. */
static int conn_send(struct moat_control_conn *conn)
{
        for (;;) {
                ssize_t n = send(conn->fd, conn->out, conn->outlen, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n >= 0)
                        return 0;
                if (errno != EINTR)
                        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
}

/* Takes out (malloc'ed, may be NULL: out of memory).  Frees conn unless the reply waits for EPOLLOUT. */
static int conn_reply_raw(struct moat_control_conn *conn, char *out)
{
        struct moat_control *c = conn->c;
        free(conn->out);
        conn->out = out;
        conn->outlen = out ? strlen(out) : 0;
        if (conn->fd < 0) {
                conn_free(conn);
                return -EPIPE;
        }
        if (!out) {
                conn_free(conn);
                return -ENOMEM;
        }
        int r = conn_send(conn);
        if (r == -EAGAIN) {
                conn->state = CONN_WRITING;
                conn->deadline_ns = now_ns() + (int64_t)c->idle_ms * 1000000;
                r = conn_register(conn, EPOLLOUT);
                if (r >= 0) {
                        timer_arm(c);
                        return 0;
                }
        }
        conn_free(conn);
        return r;
}

int moat_control_reply(struct moat_control_conn *conn, json_t *resp)
{
        if (!conn) {
                json_decref(resp);
                return -EINVAL;
        }
        char *s = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
        if (!s)
                s = error_msg(resp ? "cannot encode the reply" : "no reply");
        else if (strlen(s) > MOAT_CONTROL_MAX_MSG) {
                moat_debug("control: reply of %zu bytes is over %d", strlen(s), MOAT_CONTROL_MAX_MSG);
                free(s);
                s = error_msg("reply too large (over %d bytes)", MOAT_CONTROL_MAX_MSG);
        }
        json_decref(resp);
        return conn_reply_raw(conn, s);
}

int moat_control_conn_take_fd(struct moat_control_conn *conn)
{
        if (!conn)
                return -EINVAL;
        if (conn->fd < 0) {
                conn_free(conn);
                return -EPIPE;
        }
        conn_unregister(conn);
        int fd = TAKE_FD(conn->fd);
        conn->c->n_open--;
        conn_free(conn);
        return fd;
}

static void read_request(struct moat_control_conn *conn)
{
        struct moat_control *c = conn->c;
        ssize_t n;
        do
                n = recv(conn->fd, c->buf, MOAT_CONTROL_MAX_MSG + 1, MSG_DONTWAIT | MSG_TRUNC);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
        if (n <= 0) { /* gone (or an empty message: nothing to answer) */
                conn_free(conn);
                return;
        }
        if (n > MOAT_CONTROL_MAX_MSG) {
                conn_reply_raw(conn, error_msg("request too large (%zd bytes, at most %d)", n, MOAT_CONTROL_MAX_MSG));
                return;
        }
        json_error_t je;
        json_t *req = json_loadb(c->buf, (size_t)n, JSON_REJECT_DUPLICATES, &je);
        if (!req) {
                conn_reply_raw(conn, error_msg("request is not JSON: %s", je.text));
                return;
        }
        if (!json_is_object(req) || !json_is_string(json_object_get(req, "op"))) {
                json_decref(req);
                conn_reply_raw(conn, error_msg("request is not a JSON object with a string \"op\""));
                return;
        }
        conn->state = CONN_DISPATCHED;
        /* Only a hangup matters now: events 0 still reports EPOLLHUP/EPOLLERR, and more data from
         * the client cannot make the loop spin. */
        if (conn_register(conn, 0) < 0)
                conn_close_fd(conn); /* the reply will just free it */
        c->fn(conn, req, c->userdata); /* may free conn */
        json_decref(req);
}

static int conn_ready(int fd, uint32_t revents, void *userdata)
{
        (void)fd;
        struct moat_control_conn *conn = userdata;
        switch (conn->state) {
        case CONN_READING:
                if (revents & EPOLLIN)
                        read_request(conn);
                else if (revents & (EPOLLHUP | EPOLLERR))
                        conn_free(conn);
                break;
        case CONN_DISPATCHED:
                if (revents & (EPOLLHUP | EPOLLERR))
                        conn_close_fd(conn); /* the handler still holds conn */
                break;
        case CONN_WRITING:
                if (revents & EPOLLOUT) {
                        if (conn_send(conn) != -EAGAIN)
                                conn_free(conn);
                } else if (revents & (EPOLLHUP | EPOLLERR)) {
                        conn_free(conn);
                }
                break;
        }
        return 0;
}

/* ---------------------------------------------------------------- server: listening */

static int listen_ready(int fd, uint32_t revents, void *userdata);

/* Sends a last {"error"} and closes; what the client sent already is read first, so that its
 * side sees our message rather than a reset. */
static void refuse(struct moat_control *c, int fd, char *m)
{
        for (int i = 0; i < 4 && recv(fd, c->buf, MOAT_CONTROL_MAX_MSG + 1, MSG_DONTWAIT) > 0; i++)
                ;
        if (m)
                (void)send(fd, m, strlen(m), MSG_DONTWAIT | MSG_NOSIGNAL);
        free(m);
}

static void accept_one(struct moat_control *c, int cfd_in)
{
        _cleanup_close_ int cfd = cfd_in;
        uid_t uid = (uid_t)-1;
        int r = peer_uid(cfd, &uid);
        if (r < 0 || !uid_allowed(uid)) {
                moat_debug("control: refusing a client with uid %d", (int)uid);
                refuse(c, cfd, error_msg("permission denied"));
                return;
        }
        if (c->n_open >= MOAT_CONTROL_MAX_CONNS) {
                moat_debug("control: %zu connections open, refusing one more", c->n_open);
                refuse(c, cfd, error_msg("too many connections (%d), try again", MOAT_CONTROL_MAX_CONNS));
                return;
        }
        struct moat_control_conn *conn = calloc(1, sizeof(*conn));
        if (!conn)
                return;
        *conn = (struct moat_control_conn){ .c = c, .fd = TAKE_FD(cfd), .state = CONN_READING,
                                            .deadline_ns = now_ns() + (int64_t)c->idle_ms * 1000000,
                                            .next = c->conns };
        if (c->conns)
                c->conns->prev = conn;
        c->conns = conn;
        c->n_open++;
        if (conn_register(conn, EPOLLIN) < 0)
                conn_free(conn);
}

static void listen_pause(struct moat_control *c, int e)
{
        moat_debug("control: accept: %s; pausing %d ms", strerror(e), ACCEPT_PAUSE_MS);
        if (c->listening)
                moat_events_loop_remove_fd(c->loop, c->fd);
        c->listening = false;
        c->resume_ns = now_ns() + ACCEPT_PAUSE_MS * 1000000LL;
}

static int listen_ready(int fd, uint32_t revents, void *userdata)
{
        (void)revents;
        struct moat_control *c = userdata;
        for (int i = 0; i < ACCEPT_BATCH; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd >= 0) {
                        accept_one(c, cfd);
                        continue;
                }
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        break;
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                        listen_pause(c, errno);
                        break;
                }
                /* EINTR, ECONNABORTED, EPROTO...: next one */
        }
        timer_arm(c);
        return 0;
}

static void timer_arm(struct moat_control *c)
{
        int64_t t = INT64_MAX;
        for (struct moat_control_conn *k = c->conns; k; k = k->next)
                if (k->fd >= 0 && k->state != CONN_DISPATCHED && k->deadline_ns < t)
                        t = k->deadline_ns;
        if (c->resume_ns > 0 && c->resume_ns < t)
                t = c->resume_ns;
        struct itimerspec its = { 0 };
        if (t != INT64_MAX) {
                if (t <= 0)
                        t = 1;
                its.it_value.tv_sec = t / 1000000000;
                its.it_value.tv_nsec = t % 1000000000;
        }
        if (timerfd_settime(c->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
                moat_debug("control: timerfd_settime: %s", strerror(errno));
}

static int timer_ready(int fd, uint32_t revents, void *userdata)
{
        (void)revents;
        struct moat_control *c = userdata;
        uint64_t ticks;
        (void)!read(fd, &ticks, sizeof ticks);
        int64_t now = now_ns();
        for (struct moat_control_conn *k = c->conns, *next; k; k = next) {
                next = k->next;
                if (k->fd >= 0 && k->state != CONN_DISPATCHED && k->deadline_ns <= now) {
                        moat_debug("control: dropping an idle connection");
                        conn_free(k);
                }
        }
        if (c->resume_ns > 0 && c->resume_ns <= now) {
                c->resume_ns = 0;
                if (moat_events_loop_add_fd(c->loop, c->fd, EPOLLIN, listen_ready, c) >= 0)
                        c->listening = true;
                else
                        c->resume_ns = now + ACCEPT_PAUSE_MS * 1000000LL;
        }
        timer_arm(c);
        return 0;
}

/* Is somebody listening on the socket file?  Stale files are unlinked. */
static int replace_stale(struct moat_control *c, struct moat_error **err)
{
        struct stat st;
        if (fstatat(c->dirfd, MOAT_ENV_CONTROL_SOCK, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                return moat_error_set(err, errno, "cannot stat '%s/%s'", c->dir, MOAT_ENV_CONTROL_SOCK);
        }
        if (!S_ISSOCK(st.st_mode))
                return moat_error_input(err, -EEXIST, "'%s/%s' exists and is not a socket: remove it", c->dir,
                                        MOAT_ENV_CONTROL_SOCK);
        struct sockaddr_un sa;
        socklen_t len;
        int r = sock_addr(c->dirfd, &sa, &len);
        if (r < 0)
                return r;
        _cleanup_close_ int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (probe < 0)
                return moat_error_set(err, errno, "socket");
        if (connect(probe, (struct sockaddr *)&sa, len) == 0 || errno == EAGAIN)
                return moat_error_input(err, -EADDRINUSE, "a supervisor already listens on '%s/%s'", c->dir,
                                        MOAT_ENV_CONTROL_SOCK);
        if (unlinkat(c->dirfd, MOAT_ENV_CONTROL_SOCK, 0) < 0 && errno != ENOENT)
                return moat_error_set(err, errno, "cannot remove the stale socket '%s/%s'", c->dir,
                                      MOAT_ENV_CONTROL_SOCK);
        return 0;
}

int moat_control_listen(const char *dir, struct moat_events_loop *loop, moat_control_fn fn, void *userdata,
                        struct moat_control **out, struct moat_error **err)
{
        if (!dir || !loop || !fn || !out)
                return -EINVAL;
        struct moat_control *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (struct moat_control){ .loop = loop, .fn = fn, .userdata = userdata, .dirfd = -EBADF, .fd = -EBADF,
                                    .timerfd = -EBADF, .idle_ms = MOAT_CONTROL_IDLE_MS };
        int r = -ENOMEM;
        c->dir = strdup(dir);
        c->buf = malloc(MOAT_CONTROL_MAX_MSG + 1);
        if (!c->dir || !c->buf)
                goto fail;
        c->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (c->dirfd < 0) {
                r = moat_error_set(err, errno, "cannot open the environment directory '%s'", dir);
                goto fail;
        }
        if ((r = replace_stale(c, err)) < 0)
                goto fail;
        struct sockaddr_un sa;
        socklen_t len;
        if ((r = sock_addr(c->dirfd, &sa, &len)) < 0)
                goto fail;
        c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->fd < 0) {
                r = moat_error_set(err, errno, "socket");
                goto fail;
        }
        if (bind(c->fd, (struct sockaddr *)&sa, len) < 0) {
                r = moat_error_set(err, errno, "cannot bind '%s/%s'", dir, MOAT_ENV_CONTROL_SOCK);
                goto fail;
        }
        c->bound = true;
        struct stat st;
        /* not listening yet: nobody can connect before the mode is right */
        if (fchmodat(c->dirfd, MOAT_ENV_CONTROL_SOCK, 0600, 0) < 0 ||
            fstatat(c->dirfd, MOAT_ENV_CONTROL_SOCK, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                r = moat_error_set(err, errno, "cannot set the mode of '%s/%s'", dir, MOAT_ENV_CONTROL_SOCK);
                goto fail;
        }
        c->dev = st.st_dev;
        c->ino = st.st_ino;
        if (listen(c->fd, LISTEN_BACKLOG) < 0) {
                r = moat_error_set(err, errno, "cannot listen on '%s/%s'", dir, MOAT_ENV_CONTROL_SOCK);
                goto fail;
        }
        c->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (c->timerfd < 0) {
                r = moat_error_set(err, errno, "timerfd");
                goto fail;
        }
        if ((r = moat_events_loop_add_fd(loop, c->timerfd, EPOLLIN, timer_ready, c)) < 0) {
                r = moat_error_set(err, r, "cannot watch the control timer");
                goto fail;
        }
        c->timer_in_loop = true;
        if ((r = moat_events_loop_add_fd(loop, c->fd, EPOLLIN, listen_ready, c)) < 0) {
                r = moat_error_set(err, r, "cannot watch '%s/%s'", dir, MOAT_ENV_CONTROL_SOCK);
                goto fail;
        }
        c->listening = true;
        *out = c;
        return 0;
fail:
        moat_control_free(c);
        return r;
}

void moat_control_free(struct moat_control *c)
{
        if (!c)
                return;
        while (c->conns)
                conn_free(c->conns);
        if (c->listening)
                moat_events_loop_remove_fd(c->loop, c->fd);
        if (c->timer_in_loop)
                moat_events_loop_remove_fd(c->loop, c->timerfd);
        closep(&c->fd);
        closep(&c->timerfd);
        if (c->bound) {
                struct stat st;
                /* only if it is still ours (not replaced by a newer supervisor) */
                if (fstatat(c->dirfd, MOAT_ENV_CONTROL_SOCK, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == c->dev &&
                    st.st_ino == c->ino)
                        unlinkat(c->dirfd, MOAT_ENV_CONTROL_SOCK, 0);
        }
        closep(&c->dirfd);
        free(c->buf);
        free(c->dir);
        free(c);
}

void moat_control_set_idle_timeout(struct moat_control *c, int ms)
{
        if (c && ms > 0)
                c->idle_ms = ms;
}

size_t moat_control_conns(const struct moat_control *c)
{
        return c ? c->n_open : 0;
}

/* ---------------------------------------------------------------- client */

static int64_t deadline_of(int timeout_ms)
{
        return timeout_ms < 0 ? INT64_MAX : now_ns() + (int64_t)timeout_ms * 1000000;
}

/* Waits for events on fd until deadline: > 0 ready, -ETIMEDOUT, -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
        for (;;) {
                int ms = -1;
                if (deadline != INT64_MAX) {
                        int64_t left = deadline - now_ns();
                        if (left <= 0)
                                return -ETIMEDOUT;
                        left = (left + 999999) / 1000000;
                        ms = left > INT32_MAX ? INT32_MAX : (int)left;
                }
                struct pollfd p = { .fd = fd, .events = events };
                int n = poll(&p, 1, ms);
                if (n > 0)
                        return n;
                if (n < 0 && errno != EINTR)
                        return -errno;
        }
}

/* Non-blocking connected fd, or -errno. */
static int connect_fd(const char *dir, int64_t deadline, int timeout_ms, struct moat_error **err)
{
        _cleanup_close_ int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return moat_error_set(err, errno, "no supervisor for the environment '%s' (cannot open the directory)",
                                      dir);
        struct sockaddr_un sa;
        socklen_t len;
        int r = sock_addr(dirfd, &sa, &len);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return moat_error_set(err, errno, "socket");
        while (connect(fd, (struct sockaddr *)&sa, len) < 0) {
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) { /* its backlog is full */
                        if (now_ns() >= deadline)
                                return moat_error_set(err, ETIMEDOUT,
                                                      "the supervisor of '%s' did not accept within %d ms", dir,
                                                      timeout_ms);
                        usleep(CONNECT_RETRY_US);
                        continue;
                }
                if (errno == ENOENT || errno == ECONNREFUSED)
                        return moat_error_set(err, errno,
                                              "no supervisor listens on '%s/%s' (is the environment up?)", dir,
                                              MOAT_ENV_CONTROL_SOCK);
                return moat_error_set(err, errno, "cannot connect to '%s/%s'", dir, MOAT_ENV_CONTROL_SOCK);
        }
        uid_t uid = (uid_t)-1;
        if ((r = peer_uid(fd, &uid)) < 0)
                return moat_error_set(err, r, "cannot check the owner of '%s/%s'", dir, MOAT_ENV_CONTROL_SOCK);
        if (!uid_allowed(uid))
                return moat_error_input(err, -EPERM, "'%s/%s' is served by uid %u, neither root nor us: not trusted",
                                        dir, MOAT_ENV_CONTROL_SOCK, (unsigned)uid);
        return TAKE_FD(fd);
}

int moat_control_connect(const char *dir, int timeout_ms, struct moat_error **err)
{
        if (!dir)
                return -EINVAL;
        _cleanup_close_ int fd = connect_fd(dir, deadline_of(timeout_ms), timeout_ms, err);
        if (fd < 0)
                return fd;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                return moat_error_set(err, errno, "fcntl");
        return TAKE_FD(fd);
}

static int wait_failed(struct moat_error **err, int r, const char *dir, int timeout_ms)
{
        if (r == -ETIMEDOUT)
                return moat_error_set(err, r, "no answer from the supervisor of '%s' within %d ms", dir, timeout_ms);
        return moat_error_set(err, r, "waiting for the supervisor of '%s'", dir);
}

int moat_control_call(const char *dir, json_t *req, int timeout_ms, json_t **resp, struct moat_error **err)
{
        if (!dir || !req || !resp)
                return -EINVAL;
        *resp = NULL;
        int64_t deadline = deadline_of(timeout_ms);
        _cleanup_free_ char *s = json_dumps(req, JSON_COMPACT);
        if (!s)
                return moat_error_input(err, -EINVAL, "cannot encode the request to '%s'", dir);
        size_t len = strlen(s);
        if (len > MOAT_CONTROL_MAX_MSG)
                return moat_error_input(err, -EMSGSIZE, "request to '%s' too large (%zu bytes, at most %d)", dir, len,
                                        MOAT_CONTROL_MAX_MSG);
        _cleanup_close_ int fd = connect_fd(dir, deadline, timeout_ms, err);
        if (fd < 0)
                return fd;
        int r;
        for (;;) {
                if (send(fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno == EPIPE || errno == ECONNRESET)
                        break; /* refused at once: its {"error"} may be waiting for us */
                if (errno != EAGAIN)
                        return moat_error_set(err, errno, "cannot send to the supervisor of '%s'", dir);
                if ((r = wait_fd(fd, POLLOUT, deadline)) < 0)
                        return wait_failed(err, r, dir, timeout_ms);
        }
        _cleanup_free_ char *buf = malloc(MOAT_CONTROL_MAX_MSG + 1);
        if (!buf)
                return -ENOMEM;
        ssize_t n;
        bool reset_seen = false;
        for (;;) {
                if ((r = wait_fd(fd, POLLIN, deadline)) < 0)
                        return wait_failed(err, r, dir, timeout_ms);
                n = recv(fd, buf, MOAT_CONTROL_MAX_MSG + 1, MSG_DONTWAIT | MSG_TRUNC);
                if (n >= 0)
                        break;
                if (errno == EINTR || errno == EAGAIN)
                        continue;
                /* The server closed with our request unread (a refusal): the error is reported
                 * once, before the message it sent; read that message if there is one. */
                if (errno == ECONNRESET && !reset_seen) {
                        reset_seen = true;
                        continue;
                }
                return moat_error_set(err, errno, "cannot read the answer of the supervisor of '%s'", dir);
        }
        if (n == 0)
                return moat_error_input(err, -ECONNRESET, "the supervisor of '%s' closed the connection without an answer",
                                        dir);
        if (n > MOAT_CONTROL_MAX_MSG)
                return moat_error_input(err, -EMSGSIZE, "the answer of the supervisor of '%s' is too large (%zd bytes)",
                                        dir, n);
        json_error_t je;
        json_t *j = json_loadb(buf, (size_t)n, 0, &je);
        if (!json_is_object(j)) {
                json_decref(j);
                return moat_error_input(err, -EBADMSG, "the answer of the supervisor of '%s' is not a JSON object", dir);
        }
        *resp = j;
        return 0;
}
