/* SPDX-License-Identifier: Apache-2.0 */
/* A container's state directory: <root>/<id>/ holding state.json, a copy of
 * config.json, and exec.fifo while the container is "created".  Every verb
 * takes the directory's flock for as long as it works on the container. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

enum moat_status { MOAT_STATUS_CREATING, MOAT_STATUS_CREATED, MOAT_STATUS_RUNNING,
                   MOAT_STATUS_PAUSED, MOAT_STATUS_STOPPED };
const char *moat_status_name(enum moat_status s);

struct moat_state {
        char *id;
        pid_t pid;                 /* init, in the runtime's pid namespace */
        uint64_t pid_start;        /* /proc/PID/stat field 22, against pid reuse */
        char *bundle;
        char *rootfs;
        char *created;             /* RFC 3339, UTC */
        char *cgroup_path;         /* moat_cgroup_path(), NULL when no cgroup */
        uint32_t owner;            /* uid that created it */
        bool own_pidns;            /* init is pid 1 of its own pid namespace */
        char **annotations;        /* key, value, key, value, ..., NULL */
        int64_t exit_status;       /* -1 unknown */
};

/* Names a container may have: [A-Za-z0-9][A-Za-z0-9_.+-]*, at most 1024 bytes. */
int moat_id_validate(const char *id, struct moat_error **err);

/* The root (--root) is created 0700 if missing.  Returns an O_DIRECTORY fd. */
int moat_root_open(const char *root, bool create, struct moat_error **err);
/* Creates <root>/<id> (EEXIST -> "container 'id' already exists") and locks it. */
int moat_state_dir_create(int rootfd, const char *id, int *dirfd, struct moat_error **err);
/* Opens and locks (LOCK_EX, or LOCK_SH when shared) <root>/<id>; ENOENT -> "container 'id' does not exist". */
int moat_state_dir_open(int rootfd, const char *id, bool shared, int *dirfd, struct moat_error **err);
/* Removes the state directory (the caller holds its lock). */
int moat_state_dir_remove(int rootfd, const char *id);

int moat_state_write(int dirfd, const struct moat_state *st, struct moat_error **err); /* atomic */
int moat_state_read(int dirfd, const char *id, struct moat_state **out, struct moat_error **err);
void moat_state_free(struct moat_state *st);
/* A container of the vm tier (its annotation moat.isolation=vm): the state's pid is the VM's
 * monitor (vm/vm.h). */
bool moat_state_is_vm(const struct moat_state *st);

/* Start time of a pid (field 22 of /proc/PID/stat); -ESRCH when gone. */
int moat_pid_start_time(pid_t pid, uint64_t *out);
/* pidfd of the container's init if it is still the same process, else -ESRCH. */
int moat_state_pidfd(const struct moat_state *st);
/* created / running / stopped from the process and exec.fifo; paused is the caller's (cgroup) business. */
enum moat_status moat_state_status(int dirfd, const struct moat_state *st);
/* "2026-11-27T03:16:00.123456789Z" */
char *moat_now_rfc3339(void);

/* While `create` works, a "creating" marker file sits in the state dir, so a
 * create killed half-way is known as such and `delete --force` cleans it up. */
#define MOAT_CREATING_MARK "creating"
int moat_state_mark_creating(int dirfd, bool on);
bool moat_state_is_creating(int dirfd);

#define MOAT_EXEC_FIFO "exec.fifo"
#define MOAT_STATE_FILE "state.json"
#define MOAT_CONFIG_COPY "config.json"
