/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/cleanup.h"

size_t strv_length(char *const *v);
char **strv_dup(char *const *v);                /* NULL on ENOMEM; NULL in, empty out */
int strv_push(char ***v, const char *s);        /* appends a copy; -ENOMEM */
bool strv_contains(char *const *v, const char *s);

/* Whole-file helpers.  *_at take a directory fd (AT_FDCWD for paths). */
int write_file_at(int dirfd, const char *path, const void *data, size_t len);
int write_string_at(int dirfd, const char *path, const char *s);
int read_file_at(int dirfd, const char *path, char **out, size_t *len); /* NUL-terminated */
int read_fd_all(int fd, char **out, size_t *len);
ssize_t write_all(int fd, const void *buf, size_t len);
ssize_t read_all(int fd, void *buf, size_t len); /* until len or EOF */

int mkdir_p(const char *path, mode_t mode);
int rm_rf_at(int dirfd, const char *name); /* never crosses mount points */
/* The first of names (relative to this program's directory) that is executable, as a real path
 * (malloc'ed; NULL if none).  Before re-executing from a sealed copy: /proc/self/exe is then
 * the memfd. */
char *moat_self_sibling(const char *const *names);

/* Strict number parsing: the whole string, no sign surprises, range checked. */
int parse_i64(const char *s, int64_t *out);
int parse_u64(const char *s, uint64_t *out);
int parse_int(const char *s, int *out);

/* Sends / receives one fd over a unix socket (SCM_RIGHTS) with a small payload. */
int send_fd(int sock, int fd, const void *data, size_t len);
int recv_fd(int sock, int *fd, void *data, size_t len);

int64_t now_ns(void); /* CLOCK_MONOTONIC */

/* Closes every fd >= from except those in keep (sorted or not, n entries). */
int close_fds_from(int from, const int *keep, size_t n);
/* Every signal back to its default action and none blocked, as in a new process (for a child
 * before execve: the caller may block signals for a signalfd or ignore some).  The kernel's
 * sigaction, so glibc's own signals (32, 33) are reset too; async-signal-safe. */
void moat_signals_reset(void);
int fd_cloexec(int fd, bool on);
