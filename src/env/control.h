/* SPDX-License-Identifier: Apache-2.0 */
/* The control socket of an environment's supervisor: <envdir>/supervisor.sock, a SOCK_SEQPACKET
 * unix socket (mode 0600).  One request and one reply per connection, each a single message
 * holding one JSON object; a request carries a string "op".  The server side plugs into the
 * supervisor's epoll loop (events/bus.h) and never blocks it: sockets are non-blocking, a
 * connection that sends nothing (or does not take its reply) is dropped after an idle timeout,
 * and at most MOAT_CONTROL_MAX_CONNS connections are open at once (more are answered
 * {"error": "..."} and closed).  Only peers with uid 0 or the supervisor's own uid are served.
 * A message that is too large, not JSON, not an object or without a string "op" is answered
 * {"error": "..."} by this file, without calling the handler. */
#pragma once

#include <jansson.h>

#include "core/error.h"
#include "events/bus.h"

#define MOAT_ENV_CONTROL_SOCK "supervisor.sock" /* in the environment's dir */
#define MOAT_CONTROL_MAX_MSG (64 * 1024)        /* requests and replies alike */
#define MOAT_CONTROL_MAX_CONNS 32
#define MOAT_CONTROL_IDLE_MS 5000               /* to send the request, or to take the reply */

struct moat_control;      /* the listening side */
struct moat_control_conn; /* one client's request in flight */

/* Called with each well-formed request; req is borrowed for the call (json_incref it to keep it).
 * The handler must call moat_control_reply exactly once for conn: at once, or later from another
 * loop callback (a "restart" answers when done).  If the client goes away meanwhile, the reply
 * just frees conn.  Never call moat_control_reply for a conn after moat_control_free. */
typedef void (*moat_control_fn)(struct moat_control_conn *conn, json_t *req, void *userdata);

/* Binds <dir>/supervisor.sock (through /proc/self/fd/N/ of an O_PATH fd of dir, so a dir longer
 * than sun_path works), mode 0600, listens, adds itself to loop.  A stale socket file (nobody
 * listening) is replaced; -EADDRINUSE if a live server answers there, -EEXIST if the name is
 * taken by something that is not a socket. */
int moat_control_listen(const char *dir, struct moat_events_loop *loop, moat_control_fn fn, void *userdata,
                        struct moat_control **out, struct moat_error **err);
/* Closes every connection (pending handler conns included: their pointers die), removes its fds
 * from the loop, unlinks the socket (if it is still ours) and frees c.  NULL is fine. */
void moat_control_free(struct moat_control *c);
/* The idle timeout of new connections (default MOAT_CONTROL_IDLE_MS; ms > 0). */
void moat_control_set_idle_timeout(struct moat_control *c, int ms);
/* Number of open client connections (for tests and `ps` of the supervisor itself). */
size_t moat_control_conns(const struct moat_control *c);

/* Takes resp (it may be NULL: an {"error"} goes out).  Sends it (or queues it until the socket
 * is writable, within the idle timeout), then closes and frees conn; conn is freed in every
 * case.  A reply over MOAT_CONTROL_MAX_MSG is replaced by {"error": "reply too large"}.
 * Returns 0, or -errno when the reply could not be delivered (client gone: -EPIPE). */
int moat_control_reply(struct moat_control_conn *conn, json_t *resp);
/* For streams (`events --follow`): takes the connection's fd (non-blocking, CLOEXEC) out of the
 * control (no reply will be sent), frees conn; the caller owns the fd.  -EPIPE if the client is gone. */
int moat_control_conn_take_fd(struct moat_control_conn *conn);

/* Client.  Connects to <dir>/supervisor.sock (refusing a server whose uid is neither 0 nor ours)
 * and returns the connected fd (CLOEXEC, blocking).  -ENOENT / -ECONNREFUSED when no supervisor
 * listens (the message names dir), -ETIMEDOUT if it cannot be reached within timeout_ms (< 0: no limit). */
int moat_control_connect(const char *dir, int timeout_ms, struct moat_error **err);
/* Connects, sends req (borrowed), waits up to timeout_ms (< 0: no limit) in all for the reply.
 * *resp is the reply object as sent, which may be {"error": "..."} (the call still returns 0).
 * -ENOENT / -ECONNREFUSED (no supervisor), -ETIMEDOUT, -ECONNRESET (closed without a reply),
 * -EMSGSIZE (request or reply too large), -EBADMSG (reply not a JSON object). */
int moat_control_call(const char *dir, json_t *req, int timeout_ms, json_t **resp, struct moat_error **err);
