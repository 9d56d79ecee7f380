/* SPDX-License-Identifier: Apache-2.0 */
#include "runtime/state.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/path.h"
#include "core/util.h"

const char *moat_status_name(enum moat_status s)
{
        switch (s) {
        case MOAT_STATUS_CREATING: return "creating";
        case MOAT_STATUS_CREATED: return "created";
        case MOAT_STATUS_RUNNING: return "running";
        case MOAT_STATUS_PAUSED: return "paused";
        default: return "stopped";
        }
}

int moat_id_validate(const char *id, struct moat_error **err)
{
        if (!id || !*id)
                return moat_error_input(err, EINVAL, "container id must not be empty");
        size_t n = strlen(id);
        if (n > 1024)
                return moat_error_input(err, EINVAL, "container id '%.32s...' is longer than 1024 bytes", id);
        for (size_t i = 0; i < n; i++) {
                char c = id[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (alnum || (i > 0 && (c == '_' || c == '.' || c == '-' || c == '+')))
                        continue;
                return moat_error_input(err, EINVAL,
                                        "invalid container id '%s': use letters, digits and _ . + - (not first)", id);
        }
        return 0;
}

int moat_root_open(const char *root, bool create, struct moat_error **err)
{
        if (create) {
                int r = mkdir_p(root, 0700);
                if (r < 0)
                        return moat_error_set(err, r, "cannot create state root '%s'", root);
        }
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot open state root '%s'", root);
        return fd;
}

static int lock_dir(int fd, bool shared)
{
        while (flock(fd, shared ? LOCK_SH : LOCK_EX) < 0)
                if (errno != EINTR)
                        return -errno;
        return 0;
}

int moat_state_dir_create(int rootfd, const char *id, int *dirfd, struct moat_error **err)
{
        if (mkdirat(rootfd, id, 0700) < 0) {
                if (errno == EEXIST)
                        return moat_error_input(err, EEXIST, "container '%s' already exists", id);
                return moat_error_set(err, errno, "cannot create state directory for '%s'", id);
        }
        int fd = openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                int e = errno;
                unlinkat(rootfd, id, AT_REMOVEDIR);
                return moat_error_set(err, e, "cannot open state directory of '%s'", id);
        }
        int r = lock_dir(fd, false);
        if (r < 0) {
                close(fd);
                unlinkat(rootfd, id, AT_REMOVEDIR);
                return moat_error_set(err, r, "cannot lock state directory of '%s'", id);
        }
        *dirfd = fd;
        return 0;
}

int moat_state_dir_open(int rootfd, const char *id, bool shared, int *dirfd, struct moat_error **err)
{
        int fd = openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return moat_error_input(err, ENOENT, "container '%s' does not exist", id);
                return moat_error_set(err, errno, "cannot open state of container '%s'", id);
        }
        int r = lock_dir(fd, shared);
        if (r < 0) {
                close(fd);
                return moat_error_set(err, r, "cannot lock state of container '%s'", id);
        }
        /* Deleted while we waited for the lock? */
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_nlink == 0) {
                close(fd);
                return moat_error_input(err, ENOENT, "container '%s' does not exist", id);
        }
        *dirfd = fd;
        return 0;
}

int moat_state_dir_remove(int rootfd, const char *id)
{
        return rm_rf_at(rootfd, id);
}

static json_t *annotations_json(char **a)
{
        json_t *o = json_object();
        for (size_t i = 0; a && a[i] && a[i + 1]; i += 2)
                json_object_set_new(o, a[i], json_string(a[i + 1]));
        return o;
}

int moat_state_write(int dirfd, const struct moat_state *st, struct moat_error **err)
{
        json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:I, s:b, s:I, s:o}",
                              "id", st->id, "pid", (json_int_t)st->pid, "pid_start", (json_int_t)st->pid_start,
                              "bundle", st->bundle, "rootfs", st->rootfs, "created", st->created,
                              "owner", (json_int_t)st->owner, "own_pidns", st->own_pidns,
                              "exit_status", (json_int_t)st->exit_status,
                              "annotations", annotations_json(st->annotations));
        if (!o)
                return moat_error_set(err, ENOMEM, "cannot build state of '%s'", st->id);
        if (st->cgroup_path)
                json_object_set_new(o, "cgroup", json_string(st->cgroup_path));
        _cleanup_free_ char *text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!text)
                return moat_error_set(err, ENOMEM, "cannot build state of '%s'", st->id);
        int fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        int r;
        if (fd >= 0) {
                r = (int)write_all(fd, text, strlen(text));
                char path[32];
                if (r >= 0) {
                        unlinkat(dirfd, MOAT_STATE_FILE, 0);
                        if (linkat(AT_FDCWD, fd_path(fd, path), dirfd, MOAT_STATE_FILE, AT_SYMLINK_FOLLOW) < 0)
                                r = -errno;
                }
                close(fd);
        } else {
                fd = openat(dirfd, MOAT_STATE_FILE ".tmp", O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
                if (fd < 0)
                        return moat_error_set(err, errno, "cannot write state of '%s'", st->id);
                r = (int)write_all(fd, text, strlen(text));
                close(fd);
                if (r >= 0 && renameat(dirfd, MOAT_STATE_FILE ".tmp", dirfd, MOAT_STATE_FILE) < 0)
                        r = -errno;
        }
        if (r < 0)
                return moat_error_set(err, r, "cannot write state of '%s'", st->id);
        return 0;
}

static char *dup_str(json_t *o, const char *key)
{
        const char *s = json_string_value(json_object_get(o, key));
        return s ? strdup(s) : NULL;
}

int moat_state_read(int dirfd, const char *id, struct moat_state **out, struct moat_error **err)
{
        _cleanup_free_ char *text = NULL;
        int r = read_file_at(dirfd, MOAT_STATE_FILE, &text, NULL);
        if (r == -ENOENT)
                return moat_error_input(err, ENOENT, "container '%s' is still being created (or its creation failed)", id);
        if (r < 0)
                return moat_error_set(err, r, "cannot read state of container '%s'", id);
        json_error_t jerr;
        json_t *o = json_loads(text, 0, &jerr);
        if (!o || !json_is_object(o)) {
                json_decref(o);
                return moat_error_input(err, EINVAL, "state of container '%s' is corrupt: %s", id, jerr.text);
        }
        struct moat_state *st = calloc(1, sizeof(*st));
        if (!st) {
                json_decref(o);
                return moat_error_set(err, ENOMEM, "reading state of '%s'", id);
        }
        st->id = dup_str(o, "id");
        st->pid = (pid_t)json_integer_value(json_object_get(o, "pid"));
        st->pid_start = (uint64_t)json_integer_value(json_object_get(o, "pid_start"));
        st->bundle = dup_str(o, "bundle");
        st->rootfs = dup_str(o, "rootfs");
        st->created = dup_str(o, "created");
        st->cgroup_path = dup_str(o, "cgroup");
        st->owner = (uint32_t)json_integer_value(json_object_get(o, "owner"));
        st->own_pidns = json_is_true(json_object_get(o, "own_pidns"));
        json_t *es = json_object_get(o, "exit_status");
        st->exit_status = es ? json_integer_value(es) : -1;
        json_t *ann = json_object_get(o, "annotations");
        size_t n = json_object_size(ann), i = 0;
        st->annotations = calloc(2 * n + 1, sizeof(char *));
        const char *k;
        json_t *v;
        json_object_foreach(ann, k, v) {
                if (!st->annotations || !json_is_string(v))
                        continue;
                st->annotations[i++] = strdup(k);
                st->annotations[i++] = strdup(json_string_value(v));
        }
        json_decref(o);
        /* pid 0: a creation that had not spawned its init yet */
        bool pid_ok = st->pid > 0 || (st->pid == 0 && moat_state_is_creating(dirfd));
        if (!st->id || !st->bundle || !st->rootfs || !st->created || !st->annotations || !pid_ok) {
                moat_state_free(st);
                return moat_error_input(err, EINVAL, "state of container '%s' is incomplete", id);
        }
        *out = st;
        return 0;
}

void moat_state_free(struct moat_state *st)
{
        if (!st)
                return;
        free(st->id);
        free(st->bundle);
        free(st->rootfs);
        free(st->created);
        free(st->cgroup_path);
        strv_free(st->annotations);
        free(st);
}

int moat_pid_start_time(pid_t pid, uint64_t *out)
{
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : -errno;
        ssize_t n = read_all(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -ESRCH;
        buf[n] = '\0';
        /* comm may hold spaces and parens: fields resume after the last ')'. */
        char *p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        char *save = NULL, *tok = strtok_r(p + 1, " ", &save);
        if (!tok)
                return -EIO;
        if (tok[0] == 'Z' || tok[0] == 'X')
                return -ESRCH; /* a zombie is as good as stopped */
        for (int field = 3; field < 22 && tok; field++)
                tok = strtok_r(NULL, " ", &save);
        return tok && parse_u64(tok, out) == 0 ? 0 : -EIO;
}

int moat_state_pidfd(const struct moat_state *st)
{
        if (st->pid <= 0)
                return -ESRCH;
        int fd = (int)syscall(SYS_pidfd_open, st->pid, 0);
        if (fd < 0)
                return errno == ESRCH ? -ESRCH : -errno;
        uint64_t start;
        if (moat_pid_start_time(st->pid, &start) < 0 || start != st->pid_start) {
                close(fd);
                return -ESRCH;
        }
        return fd;
}

int moat_state_mark_creating(int dirfd, bool on)
{
        if (!on)
                return unlinkat(dirfd, MOAT_CREATING_MARK, 0) < 0 && errno != ENOENT ? -errno : 0;
        int fd = openat(dirfd, MOAT_CREATING_MARK, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        close(fd);
        return 0;
}

bool moat_state_is_creating(int dirfd)
{
        return faccessat(dirfd, MOAT_CREATING_MARK, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

enum moat_status moat_state_status(int dirfd, const struct moat_state *st)
{
        uint64_t start;
        if (st->pid <= 0 || moat_pid_start_time(st->pid, &start) < 0 || start != st->pid_start)
                return MOAT_STATUS_STOPPED;
        /* A create that is still at work, or died half-way with its init alive. */
        if (moat_state_is_creating(dirfd))
                return MOAT_STATUS_CREATING;
        if (faccessat(dirfd, MOAT_EXEC_FIFO, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return MOAT_STATUS_CREATED;
        return MOAT_STATUS_RUNNING;
}

char *moat_now_rfc3339(void)
{
        struct timespec ts;
        struct tm tm;
        char buf[64], *out = NULL;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
        if (asprintf(&out, "%s.%09ldZ", buf, ts.tv_nsec) < 0)
                return NULL;
        return out;
}

bool moat_state_is_vm(const struct moat_state *st)
{
        for (char **a = st->annotations; a && a[0] && a[1]; a += 2)
                if (strcmp(a[0], "moat.isolation") == 0)
                        return strcmp(a[1], "vm") == 0;
        return false;
}
