/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor's control socket (env/control.h): a server in a forked child running an
 * events loop, the client in this process. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/path.h"
#include "core/util.h"
#include "env/control.h"
#include "events/bus.h"
#include "tap.h"

#define IDLE_MS 1500

/* ---------------------------------------------------------------- the server (child) */

struct srv {
        struct moat_control *c;
        struct moat_events_loop *loop;
        int timerfd;
        struct moat_control_conn *pending[16];
        size_t n_pending;
        int calls;
        bool quit;
};

static int defer_fire(int fd, uint32_t revents, void *userdata)
{
        (void)revents;
        struct srv *s = userdata;
        uint64_t t;
        (void)!read(fd, &t, sizeof t);
        for (size_t i = 0; i < s->n_pending; i++)
                moat_control_reply(s->pending[i], json_pack("{s:b}", "deferred", 1));
        s->n_pending = 0;
        return 0;
}

static void handler(struct moat_control_conn *conn, json_t *req, void *userdata)
{
        struct srv *s = userdata;
        s->calls++;
        const char *op = json_string_value(json_object_get(req, "op"));
        if (STREQ(op, "echo")) {
                moat_control_reply(conn, json_pack("{s:s,s:O?}", "op", op, "arg", json_object_get(req, "arg")));
        } else if (STREQ(op, "defer") && s->n_pending < ARRAY_SIZE(s->pending)) {
                s->pending[s->n_pending++] = conn;
                struct itimerspec its = { .it_value = { 0, 200 * 1000000L } };
                timerfd_settime(s->timerfd, 0, &its, NULL);
        } else if (STREQ(op, "stats")) {
                moat_control_reply(conn, json_pack("{s:i,s:i}", "calls", s->calls, "conns",
                                                   (int)moat_control_conns(s->c)));
        } else if (STREQ(op, "big")) {
                _cleanup_free_ char *b = malloc(MOAT_CONTROL_MAX_MSG + 10);
                memset(b, 'x', MOAT_CONTROL_MAX_MSG + 9);
                b[MOAT_CONTROL_MAX_MSG + 9] = 0;
                moat_control_reply(conn, json_pack("{s:s}", "big", b));
        } else if (STREQ(op, "stream")) {
                int fd = moat_control_conn_take_fd(conn);
                if (fd >= 0) {
                        (void)!send(fd, "one", 3, MSG_NOSIGNAL);
                        (void)!send(fd, "two", 3, MSG_NOSIGNAL);
                        close(fd);
                }
        } else if (STREQ(op, "quit")) {
                s->quit = true;
                moat_control_reply(conn, json_pack("{s:b}", "bye", 1));
        } else {
                moat_control_reply(conn, json_pack("{s:s}", "error", "unknown op"));
        }
}

/* Writes "ok" or the error to the pipe, then serves until "quit". */
static int serve(const char *dir, int ready)
{
        struct srv s = { .timerfd = -EBADF };
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_events_loop_new(&s.loop);
        if (r >= 0)
                r = moat_control_listen(dir, s.loop, handler, &s, &s.c, &err);
        if (r < 0) {
                dprintf(ready, "listen: %d %s", r, err && err->msg ? err->msg : "");
                return 1;
        }
        moat_control_set_idle_timeout(s.c, IDLE_MS);
        s.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        moat_events_loop_add_fd(s.loop, s.timerfd, EPOLLIN, defer_fire, &s);
        (void)!write(ready, "ok", 2);
        close(ready);
        while (!s.quit)
                if (moat_events_loop_run_once(s.loop, -1) < 0)
                        return 2;
        moat_control_free(s.c);
        moat_events_loop_remove_fd(s.loop, s.timerfd);
        moat_events_loop_free(s.loop);
        return 0;
}

static pid_t start_server(const char *dir, char *msg, size_t msglen)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                alarm(60);
                exit(serve(dir, p[1])); /* exit, not _exit: LeakSanitizer checks the server too */
        }
        close(p[1]);
        ssize_t n = read_all(p[0], msg, msglen - 1);
        close(p[0]);
        msg[n > 0 ? n : 0] = 0;
        return pid;
}

/* ---------------------------------------------------------------- client helpers */

static int call(const char *dir, const char *json, int timeout_ms, json_t **resp, char **msg)
{
        json_t *req = json_loads(json, 0, NULL);
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_control_call(dir, req, timeout_ms, resp, &err);
        json_decref(req);
        if (msg)
                *msg = err && err->msg ? strdup(err->msg) : NULL;
        return r;
}

static const char *jstr(json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

/* Sends raw bytes on a fresh connection; returns the reply (or NULL). */
static char *raw_exchange(const char *dir, const void *buf, size_t len)
{
        _cleanup_close_ int fd = moat_control_connect(dir, 2000, NULL);
        if (fd < 0)
                return NULL;
        struct timeval tv = { .tv_sec = 3 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (send(fd, buf, len, MSG_NOSIGNAL) < 0)
                return NULL;
        char *out = calloc(1, MOAT_CONTROL_MAX_MSG + 1);
        ssize_t n = recv(fd, out, MOAT_CONTROL_MAX_MSG, 0);
        if (n <= 0) {
                free(out);
                return NULL;
        }
        return out;
}

static int stale_socket(const char *dir)
{
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        char p[32];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", fd_path(dfd, p), MOAT_ENV_CONTROL_SOCK);
        return bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ? -errno : 0;
}

static int calls_of(const char *dir)
{
        json_t *resp = NULL;
        if (call(dir, "{\"op\":\"stats\"}", 2000, &resp, NULL) < 0)
                return -1;
        int n = (int)json_integer_value(json_object_get(resp, "calls"));
        json_decref(resp);
        return n;
}

static int64_t ms_since(int64_t t0)
{
        return (now_ns() - t0) / 1000000;
}

int main(void)
{
        signal(SIGPIPE, SIG_IGN);
        alarm(90);
        char base[] = "/tmp/moat-ctl-XXXXXX";
        if (!mkdtemp(base))
                return skip_all("mkdtemp failed");
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%0150d", base, 0);
        ok(mkdir(dir, 0700) == 0, "long environment dir (%zu chars, over sun_path)", strlen(dir));
        ok(strlen(dir) > 108, "the dir is longer than sun_path");

        json_t *resp = NULL;
        char *msg = NULL;
        int r;

        /* ---- no server */
        r = call(base, "{\"op\":\"echo\"}", 1000, &resp, &msg);
        is_int(r, -ENOENT, "no socket: -ENOENT");
        contains(msg, base, "the error names the environment dir");
        free(msg);
        is_int(stale_socket(dir), 0, "a stale socket file (bound, nobody listens)");
        r = call(dir, "{\"op\":\"echo\"}", 1000, &resp, &msg);
        is_int(r, -ECONNREFUSED, "stale socket: -ECONNREFUSED");
        contains(msg, "no supervisor listens", "clear message");
        free(msg);

        /* ---- server */
        char smsg[512];
        _cleanup_pid_ pid_t srv = start_server(dir, smsg, sizeof smsg);
        if (!is_str(smsg, "ok", "server listens (stale socket replaced, long path)")) {
                printf("# %s\n", smsg);
                return done_testing();
        }
        char sock[600];
        snprintf(sock, sizeof sock, "%s/%s", dir, MOAT_ENV_CONTROL_SOCK);
        struct stat st;
        ok(stat(sock, &st) == 0 && S_ISSOCK(st.st_mode), "socket file exists");
        is_int(st.st_mode & 07777, 0600, "mode 0600");

        {
                struct moat_events_loop *loop = NULL;
                struct moat_control *c2 = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                moat_events_loop_new(&loop);
                r = moat_control_listen(dir, loop, handler, NULL, &c2, &err);
                is_int(r, -EADDRINUSE, "a second listener on a live socket: -EADDRINUSE");
                moat_control_free(c2);
                moat_events_loop_free(loop);
        }

        /* ---- round trip */
        r = call(dir, "{\"op\":\"echo\",\"arg\":\"hello\"}", 2000, &resp, NULL);
        is_int(r, 0, "echo call");
        is_str(jstr(resp, "arg"), "hello", "round trip");
        json_decref(resp);

        /* ---- deferred reply */
        int64_t t0 = now_ns();
        r = call(dir, "{\"op\":\"defer\"}", 3000, &resp, NULL);
        is_int(r, 0, "deferred call");
        ok(json_is_true(json_object_get(resp, "deferred")), "deferred reply received");
        ok(ms_since(t0) >= 150, "it came from a later loop turn (%lld ms)", (long long)ms_since(t0));
        json_decref(resp);
        r = call(dir, "{\"op\":\"defer\"}", 50, &resp, NULL);
        is_int(r, -ETIMEDOUT, "a reply later than the timeout: -ETIMEDOUT");
        usleep(300 * 1000); /* the server replies to a gone client */

        /* ---- garbage: answered without the handler */
        int before = calls_of(dir);
        ok(before >= 4, "stats (%d handler calls so far)", before);
        static const char *bad[] = { "not json", "{\"x\":1}", "{\"op\":5}", "[1,2]", "\"op\"",
                                     "{\"op\":\"echo\",\"op\":\"echo\"}", "{\"op\":\"echo\"" };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_free_ char *rep = raw_exchange(dir, bad[i], strlen(bad[i]));
                contains(rep, "\"error\"", "garbage %s: error reply", bad[i]);
        }
        {
                size_t n = MOAT_CONTROL_MAX_MSG + 100;
                _cleanup_free_ char *huge = malloc(n);
                memset(huge, ' ', n);
                memcpy(huge, "{\"op\":\"echo\",\"arg\":\"", 20);
                _cleanup_free_ char *rep = raw_exchange(dir, huge, n);
                contains(rep, "too large", "a huge message: 'too large' error");
                const char nul[] = "{\"op\":\"echo\"}\0garbage";
                _cleanup_free_ char *rep2 = raw_exchange(dir, nul, sizeof nul);
                contains(rep2, "\"error\"", "a message with a NUL byte: error reply");
        }
        is_int(calls_of(dir), before + 1, "the handler was not called for garbage (only stats)");
        r = call(dir, "{\"op\":\"big\"}", 2000, &resp, NULL);
        is_int(r, 0, "an oversized reply");
        contains(jstr(resp, "error"), "too large", "is replaced by an error");
        json_decref(resp);

        /* ---- a silent client does not block others; it is dropped after the idle timeout */
        _cleanup_close_ int silent = moat_control_connect(dir, 1000, NULL);
        ok(silent >= 0, "a silent client connects");
        t0 = now_ns();
        r = call(dir, "{\"op\":\"echo\",\"arg\":\"x\"}", 1000, &resp, NULL);
        is_int(r, 0, "another client is served meanwhile");
        ok(ms_since(t0) < 500, "promptly (%lld ms)", (long long)ms_since(t0));
        json_decref(resp);
        {
                /* a client that sends a request and goes away before the deferred reply */
                _cleanup_close_ int gone = moat_control_connect(dir, 1000, NULL);
                ok(gone >= 0 && send(gone, "{\"op\":\"defer\"}", 14, MSG_NOSIGNAL) == 14, "a client asks and leaves");
        }
        usleep(400 * 1000);
        r = call(dir, "{\"op\":\"echo\"}", 1000, &resp, NULL);
        is_int(r, 0, "the server survives replying to a gone client");
        json_decref(resp);
        struct pollfd pfd = { .fd = silent, .events = POLLIN };
        r = poll(&pfd, 1, 5000);
        char tmp[16];
        ok(r == 1 && recv(silent, tmp, sizeof tmp, MSG_DONTWAIT) == 0, "the silent client is closed by the server");
        ok(ms_since(t0) >= IDLE_MS - 200, "after the idle timeout (%lld ms)", (long long)ms_since(t0));

        /* ---- connection cap */
        int many[MOAT_CONTROL_MAX_CONNS];
        int nmany = 0;
        for (int i = 0; i < MOAT_CONTROL_MAX_CONNS; i++)
                if ((many[nmany] = moat_control_connect(dir, 1000, NULL)) >= 0)
                        nmany++;
        is_int(nmany, MOAT_CONTROL_MAX_CONNS, "%d idle clients connect", MOAT_CONTROL_MAX_CONNS);
        r = call(dir, "{\"op\":\"echo\"}", 1000, &resp, NULL);
        is_int(r, 0, "one more connection gets an answer");
        contains(jstr(resp, "error"), "too many", "a 'too many connections' error");
        json_decref(resp);
        close(many[--nmany]);
        usleep(100 * 1000);
        r = call(dir, "{\"op\":\"echo\",\"arg\":\"again\"}", 1000, &resp, NULL);
        is_str(r == 0 ? jstr(resp, "arg") : NULL, "again", "served again once one closed");
        json_decref(resp);
        while (nmany > 0)
                close(many[--nmany]);

        /* ---- a taken fd for streams */
        {
                _cleanup_close_ int fd = moat_control_connect(dir, 1000, NULL);
                char a[8] = { 0 }, b[8] = { 0 };
                struct timeval tv = { .tv_sec = 3 };
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                ok(fd >= 0 && send(fd, "{\"op\":\"stream\"}", 15, MSG_NOSIGNAL) == 15, "stream request");
                ok(recv(fd, a, sizeof a - 1, 0) == 3 && recv(fd, b, sizeof b - 1, 0) == 3, "two messages");
                is_str(a, "one", "first streamed message");
                is_str(b, "two", "second streamed message");
        }

        /* ---- a peer with another uid is refused */
        before = calls_of(dir);
        if (chmod(base, 0711) == 0 && chmod(dir, 0711) == 0 && chmod(sock, 0666) == 0) {
                pid_t p = fork();
                if (p == 0) {
                        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                                _exit(3);
                        json_t *o = NULL;
                        int cr = call(dir, "{\"op\":\"echo\"}", 2000, &o, NULL);
                        if (cr < 0)
                                _exit(2);
                        const char *e = jstr(o, "error");
                        _exit(e && strstr(e, "permission denied") ? 0 : 1);
                }
                int ws = -1;
                waitpid(p, &ws, 0);
                is_int(WIFEXITED(ws) ? WEXITSTATUS(ws) : 100, 0, "uid 65534 is refused ('permission denied')");
                chmod(sock, 0600);
        } else {
                ok(0, "chmod for the uid test: %s", strerror(errno));
        }
        is_int(calls_of(dir), before + 1, "the handler never saw the foreign request");

        /* ---- free unlinks */
        r = call(dir, "{\"op\":\"quit\"}", 2000, &resp, NULL);
        ok(r == 0 && json_is_true(json_object_get(resp, "bye")), "quit");
        json_decref(resp);
        int ws = -1;
        waitpid(TAKE_PID(srv), &ws, 0);
        is_int(WIFEXITED(ws) ? WEXITSTATUS(ws) : 100, 0, "server exited cleanly");
        ok(lstat(sock, &st) < 0 && errno == ENOENT, "moat_control_free unlinked the socket");
        r = call(dir, "{\"op\":\"echo\"}", 1000, &resp, NULL);
        is_int(r, -ENOENT, "after free: -ENOENT");

        rm_rf_at(AT_FDCWD, base);
        return done_testing();
}
