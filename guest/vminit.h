/* SPDX-License-Identifier: Apache-2.0 */
/* moat-vminit internals: the parsed CONFIG, the guest setup (PID 1 only) and the process. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vm/proto.h"

#define VM_MAX_STR 65536        /* any one string of CONFIG */

struct vm_rlimit {
        uint32_t resource;
        uint64_t soft, hard;
};

struct vm_mount {
        uint8_t kind;
        char *source, *target, *options;
};

struct vm_config {
        char **args;            /* NULL-terminated */
        size_t n_args;
        char **env;             /* NULL-terminated */
        size_t n_env;
        char *cwd, *hostname;
        bool has_user;
        uint32_t uid, gid;
        uint32_t *groups;
        size_t n_groups;
        bool has_umask;
        uint32_t umask;
        bool terminal;
        uint16_t rows, cols;    /* WINSIZE: the pty's size (0 0: none given) */
        struct vm_rlimit *rlimits;
        size_t n_rlimits;
        bool no_new_privs;
        bool has_caps;
        uint64_t caps[5];       /* bounding, effective, permitted, inheritable, ambient */
        uint8_t *seccomp;       /* raw wire bytes: n x 8 (u16 code, u8 jt, u8 jf, u32 k; LE) */
        size_t seccomp_len;
        bool has_root;
        bool root_readonly;
        struct vm_mount *mounts;
        size_t n_mounts;
        bool has_net;
        uint8_t net_addr[4], net_gateway[4];  /* network byte order */
        uint8_t net_prefix;
};

/* config.c: parses a CONFIG payload; -EBADMSG (and *why) when it breaks a rule. */
int vm_config_parse(struct vm_config *c, const uint8_t *p, size_t len, const char **why);
void vm_config_free(struct vm_config *c);

/* Diagnostics: to the console in the VM, stderr in test mode. */
void vm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* setup.c: PID 1 only. */
void vm_early_mounts(void);
void vm_load_modules(const char *list);
int vm_open_port(const char *name, int timeout_ms);
int vm_setup_root(const struct vm_config *c, char *why, size_t whylen);
void vm_poweroff(void) __attribute__((noreturn));

/* net.c: PID 1 only: loads /modules/net, configures eth0 and lo, the default route. */
int vm_setup_net(const struct vm_config *c, char *why, size_t whylen);

/* child.c: runs in the forked child; reports a failure on errfd ({u32 exit code, text}) and
 * _exits; on success execve closes errfd (O_CLOEXEC). */
struct vm_child_io {
        int in, out, err;       /* become 0, 1, 2 */
        int pty_slave;          /* >= 0 with a terminal: becomes 0, 1, 2 and the controlling tty */
        int errfd;
        bool test_mode;
};
void vm_child_exec(const struct vm_config *c, const struct vm_child_io *io) __attribute__((noreturn));

/* spawn.c: starts the process of c (the container's or an exec'd one): 0 and *p (with a
 * terminal, in = out = master and err = -1; in/out/err non-blocking), or an exit code > 0
 * (127 not found, 126 not executable, 1 anything else) with the reason in why. */
struct vm_proc {
        pid_t pid;
        int in, out, err, master;
};
int vm_spawn(const struct vm_config *c, bool test_mode, struct vm_proc *p, char *why, size_t whylen);
void vm_close_fd(int *fd);
void vm_set_nonblock(int fd);
/* The exit status of a wait status: the code, or 128 + the signal. */
int vm_status_code(int st);

/* A process's stdin as the host sends it: queued, written as fd takes it (non-blocking), and
 * once an empty STDIN came and all is written, closed (on a terminal: the EOF character; the
 * master is not ours to close).  A process that closed its stdin drops the rest. */
struct vm_stdin {
        int fd;                 /* -1 once closed */
        bool pty;               /* fd is a pty master */
        bool close;             /* an empty STDIN came */
        uint8_t *buf;
        size_t len, off;        /* buf[off..len) not written yet */
};
static inline size_t vm_stdin_pending(const struct vm_stdin *q)
{
        return q->len - q->off;
}
/* Queues p (len 0: the end of input) and writes what fd takes: -1 out of memory. */
int vm_stdin_push(struct vm_stdin *q, const uint8_t *p, size_t len);
void vm_stdin_pump(struct vm_stdin *q);   /* fd is writable */
void vm_stdin_close(struct vm_stdin *q);  /* no more input (queued bytes stay, unwritten) */
void vm_stdin_free(struct vm_stdin *q);

/* run.c: starts the process and relays until it exits; returns its status for EXIT
 * (or < 0 when the channel broke: the caller ends without EXIT). */
struct moat_vm_reader;
int vm_run(int chan, struct moat_vm_reader *rd, const struct vm_config *c, bool test_mode);

/* exec.c: exec sessions (EXEC_* frames), driven from vm_run's loop. */
struct pollfd;
void vm_exec_init(int chan, bool test_mode);
/* 1: not an exec frame; 0 handled; -1 the channel broke. */
int vm_exec_frame(uint8_t type, const uint8_t *p, size_t len);
/* A session holds too much unwritten stdin: stop reading the channel until it drains (as for
 * the main process: nothing is dropped). */
bool vm_exec_stdin_full(void);
#define VM_EXEC_MAX_POLL (3 * MOAT_VM_MAX_EXECS)
size_t vm_exec_poll_add(struct pollfd *p, size_t max);
int vm_exec_poll_done(const struct pollfd *p, size_t n);
/* A child reaped by PID 1: an exec session's process ends (0, or -1 the channel broke). */
int vm_exec_reaped(pid_t pid, int status);
/* The main process is gone: SIGKILL every session, EXEC_EXIT each when send. */
void vm_exec_end(bool send);
