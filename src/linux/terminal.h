/* SPDX-License-Identifier: Apache-2.0 */
/* The container console, as runc does it: the pty is opened inside the
 * container (its own devpts), the master goes to --console-socket with
 * SCM_RIGHTS, or back to moat which relays it to its own stdio. */
#pragma once

#include <sys/types.h>

#include "core/error.h"

/* Opens /dev/ptmx of the current mount namespace (O_RDWR|O_NOCTTY|O_CLOEXEC),
 * unlocks it and opens the slave (TIOCGPTPEER, else by name).  slave_name may
 * be NULL; else it gets "/dev/pts/N" (malloc'ed).  Both fds are O_CLOEXEC. */
int moat_pty_open(int *master, int *slave, char **slave_name, struct moat_error **err);
/* TIOCSWINSZ on a master or slave. */
int moat_pty_set_size(int fd, unsigned rows, unsigned cols, struct moat_error **err);
/* In the process that becomes the console owner: setsid(), TIOCSCTTY, and
 * dup2(slave, 0/1/2).  The caller still owns `slave` (close it if > 2). */
int moat_pty_make_controlling(int slave, struct moat_error **err);

/* Connects to the AF_UNIX SOCK_STREAM socket at socket_path and sends master
 * with SCM_RIGHTS, the payload being the file name ("/dev/ptmx"), as runc's
 * utils.SendFile does (what conmon and containerd-shim expect). */
int moat_console_socket_send(const char *socket_path, int master, struct moat_error **err);
/* Same over an already connected socket (a socketpair to moat itself). */
int moat_console_fd_send(int sock, int master, struct moat_error **err);
/* Receives a master: accept()s one connection if listen_fd is listening,
 * else reads from the connected socket itself.  Checks it is a tty. */
int moat_console_socket_recv(int listen_fd, int *master, struct moat_error **err);

/* Foreground relay for `run`/`exec --tty` without a console socket: copies
 * our stdin to the master and the master to our stdout, puts our terminal
 * (if stdin is one) in raw mode for the duration, forwards SIGWINCH (the
 * size of our terminal goes to the master).  Returns when the child has
 * exited and the master hit EOF/EIO (or stayed quiet 200 ms after the exit,
 * when something else in the container keeps the slave open).
 * wstatus != NULL: the child is reaped and its wait status stored there;
 * NULL: the child is left unreaped (waitid WNOWAIT) for the caller. */
int moat_pty_relay(int master, pid_t child, int *wstatus, struct moat_error **err);
