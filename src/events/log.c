/* SPDX-License-Identifier: Apache-2.0 */
/* The append-only, size-capped event log and its follower. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "events/log.h"

struct moat_event_log {
        int dirfd, lockfd, fd;
        uint64_t max;
        char *dir;
};

static int open_log_fd(int dirfd)
{
        int fd = openat(dirfd, MOAT_EVENT_LOG_NAME, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        return fd < 0 ? -errno : fd;
}

int moat_event_log_open(const char *state_dir, uint64_t max_bytes, struct moat_event_log **out,
                        struct moat_error **err)
{
        int r = mkdir_p(state_dir, 0700);
        if (r < 0)
                return moat_error_set(err, r, "cannot create the event directory '%s'", state_dir);
        _cleanup_close_ int dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return moat_error_set(err, errno, "cannot open the event directory '%s'", state_dir);
        _cleanup_close_ int lockfd = openat(dirfd, "events.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lockfd < 0)
                return moat_error_set(err, errno, "cannot open '%s/events.lock'", state_dir);
        _cleanup_close_ int fd = open_log_fd(dirfd);
        if (fd < 0)
                return moat_error_set(err, fd, "cannot open '%s/%s'", state_dir, MOAT_EVENT_LOG_NAME);
        struct moat_event_log *l = calloc(1, sizeof(*l));
        if (!l || !(l->dir = strdup(state_dir))) {
                free(l);
                return moat_error_set(err, ENOMEM, "opening the event log");
        }
        l->max = max_bytes ? max_bytes : MOAT_EVENT_LOG_DEFAULT_MAX;
        l->dirfd = TAKE_FD(dirfd);
        l->lockfd = TAKE_FD(lockfd);
        l->fd = TAKE_FD(fd);
        *out = l;
        return 0;
}

void moat_event_log_free(struct moat_event_log *l)
{
        if (!l)
                return;
        closep(&l->dirfd);
        closep(&l->lockfd);
        closep(&l->fd);
        free(l->dir);
        free(l);
}

static int lock_as(int fd, int *held, int want)
{
        if (*held == want)
                return 0;
        while (flock(fd, want) < 0)
                if (errno != EINTR)
                        return -errno;
        *held = want;
        return 0;
}

/* Under the lock: make l->fd the file the name points at, rotating first if
 * this line would take it over the cap.  Lock held on return (shared or
 * exclusive); the caller unlocks. */
static int prepare_locked(struct moat_event_log *l, size_t len, int *held)
{
        for (int tries = 0; tries < 16; tries++) {
                struct stat fst, nst;
                if (fstat(l->fd, &fst) < 0)
                        return -errno;
                int sr = fstatat(l->dirfd, MOAT_EVENT_LOG_NAME, &nst, AT_SYMLINK_NOFOLLOW);
                if (sr < 0 && errno != ENOENT)
                        return -errno;
                if (sr < 0 || nst.st_ino != fst.st_ino || nst.st_dev != fst.st_dev) {
                        /* Rotated (or removed) by someone else: follow the name. */
                        int fd = open_log_fd(l->dirfd);
                        if (fd < 0)
                                return fd;
                        close(l->fd);
                        l->fd = fd;
                        continue;
                }
                if (!S_ISREG(fst.st_mode))
                        return -EINVAL;
                if (fst.st_size == 0 || (uint64_t)fst.st_size + len <= l->max)
                        return 0;
                if (*held != LOCK_EX) {
                        /* Not atomic: re-check everything once exclusive. */
                        int r = lock_as(l->lockfd, held, LOCK_EX);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (renameat(l->dirfd, MOAT_EVENT_LOG_NAME, l->dirfd, MOAT_EVENT_LOG_ROTATED) < 0)
                        return -errno;
                int fd = open_log_fd(l->dirfd);
                if (fd < 0)
                        return fd;
                close(l->fd);
                l->fd = fd;
        }
        return -EAGAIN;
}

int moat_event_log_append_line(struct moat_event_log *l, const char *line, size_t len, struct moat_error **err)
{
        if (len == 0 || len >= MOAT_EVENT_LINE_MAX || line[len - 1] != '\n' || memchr(line, '\n', len - 1))
                return moat_error_input(err, EINVAL, "not a single event line");
        int held = 0, r = lock_as(l->lockfd, &held, LOCK_SH);
        if (r < 0)
                return moat_error_set(err, r, "cannot lock '%s/events.lock'", l->dir);
        r = prepare_locked(l, len, &held);
        if (r < 0) {
                moat_error_set(err, r, "cannot rotate the event log in '%s'", l->dir);
                goto out;
        }
        ssize_t n;
        do
                n = write(l->fd, line, len);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                r = moat_error_set(err, errno, "cannot write to '%s/%s'", l->dir, MOAT_EVENT_LOG_NAME);
        else if ((size_t)n != len)
                r = moat_error_set(err, EIO, "short write to '%s/%s'", l->dir, MOAT_EVENT_LOG_NAME);
out:
        flock(l->lockfd, LOCK_UN);
        return r;
}

int moat_event_log_append(struct moat_event_log *l, const struct moat_event *ev, struct moat_error **err)
{
        _cleanup_free_ char *line = NULL;
        size_t len;
        int r = moat_event_to_line(ev, &line, &len);
        if (r < 0)
                return moat_error_set(err, r, "cannot format an event for '%s'", ev->env);
        return moat_event_log_append_line(l, line, len, err);
}

/* ---- the follower ---- */

struct moat_event_follow {
        int dirfd, inofd;
        int old;  /* events.jsonl.1 still to read (from_start), or -EBADF */
        int fd;   /* the events.jsonl we are reading, or -EBADF before it exists */
        char *buf;
        size_t len, cap;
        bool discarding; /* inside an over-long line */
        uint64_t skipped;
};

int moat_event_follow_open(const char *state_dir, bool from_start, struct moat_event_follow **out,
                           struct moat_error **err)
{
        _cleanup_close_ int dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return moat_error_set(err, errno, "cannot open the event directory '%s'", state_dir);
        _cleanup_close_ int inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (inofd < 0)
                return moat_error_set(err, errno, "inotify");
        /* A watch on the directory sees writes to its files, renames and creations. */
        if (inotify_add_watch(inofd, state_dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) < 0)
                return moat_error_set(err, errno, "cannot watch '%s'", state_dir);
        _cleanup_close_ int fd = openat(dirfd, MOAT_EVENT_LOG_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno != ENOENT)
                return moat_error_set(err, errno, "cannot open '%s/%s'", state_dir, MOAT_EVENT_LOG_NAME);
        _cleanup_close_ int old = -EBADF;
        if (from_start) {
                old = openat(dirfd, MOAT_EVENT_LOG_ROTATED, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (old < 0 && errno != ENOENT)
                        return moat_error_set(err, errno, "cannot open '%s/%s'", state_dir, MOAT_EVENT_LOG_ROTATED);
                struct stat a, b;
                /* Rotated between the two opens: the .1 is the file we hold. */
                if (old >= 0 && fd >= 0 && fstat(old, &a) == 0 && fstat(fd, &b) == 0 && a.st_ino == b.st_ino)
                        closep(&old);
        } else if (fd >= 0 && lseek(fd, 0, SEEK_END) < 0) {
                return moat_error_set(err, errno, "cannot seek in '%s/%s'", state_dir, MOAT_EVENT_LOG_NAME);
        }
        struct moat_event_follow *f = calloc(1, sizeof(*f));
        if (!f)
                return moat_error_set(err, ENOMEM, "following events");
        f->dirfd = TAKE_FD(dirfd);
        f->inofd = TAKE_FD(inofd);
        f->fd = fd >= 0 ? TAKE_FD(fd) : -EBADF;
        f->old = old >= 0 ? TAKE_FD(old) : -EBADF;
        *out = f;
        return 0;
}

void moat_event_follow_free(struct moat_event_follow *f)
{
        if (!f)
                return;
        closep(&f->dirfd);
        closep(&f->inofd);
        closep(&f->old);
        closep(&f->fd);
        free(f->buf);
        free(f);
}

int moat_event_follow_fd(const struct moat_event_follow *f)
{
        return f->inofd;
}

uint64_t moat_event_follow_skipped(const struct moat_event_follow *f)
{
        return f->skipped;
}

/* 1: handed, 0: skipped (bad line), < 0: the callback's stop value. */
static int handle_line(struct moat_event_follow *f, const char *line, size_t len, moat_event_line_fn fn, void *ud)
{
        _cleanup_error_ struct moat_error *perr = NULL;
        _cleanup_event_ struct moat_event *ev = NULL;
        if (moat_event_parse(line, len, &ev, &perr) < 0) {
                f->skipped++;
                moat_warn("skipping a bad line in the event log: %s", perr ? perr->msg : "invalid");
                return 0;
        }
        int r = fn ? fn(ev, line, len, ud) : 0;
        return r < 0 ? r : 1;
}

/* Reads fd to EOF, handing each complete line.  Returns lines handed or < 0. */
static int drain(struct moat_event_follow *f, int fd, moat_event_line_fn fn, void *ud)
{
        int handed = 0;
        for (;;) {
                if (f->cap - f->len < 65536) {
                        size_t ncap = f->cap ? f->cap * 2 : 131072;
                        char *nb = realloc(f->buf, ncap);
                        if (!nb)
                                return -ENOMEM;
                        f->buf = nb;
                        f->cap = ncap;
                }
                ssize_t n = read(fd, f->buf + f->len, f->cap - f->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return handed;
                f->len += (size_t)n;
                size_t start = 0;
                for (;;) {
                        char *nl = memchr(f->buf + start, '\n', f->len - start);
                        if (!nl)
                                break;
                        size_t ll = (size_t)(nl - (f->buf + start)) + 1;
                        if (f->discarding) {
                                f->discarding = false; /* the tail of an over-long line */
                        } else {
                                int r = handle_line(f, f->buf + start, ll, fn, ud);
                                if (r < 0) {
                                        memmove(f->buf, f->buf + start + ll, f->len - start - ll);
                                        f->len -= start + ll;
                                        return r;
                                }
                                handed += r;
                        }
                        start += ll;
                }
                memmove(f->buf, f->buf + start, f->len - start);
                f->len -= start;
                if (f->len >= MOAT_EVENT_LINE_MAX) {
                        if (!f->discarding) {
                                f->skipped++;
                                moat_warn("skipping an event log line over %d bytes", MOAT_EVENT_LINE_MAX);
                        }
                        f->discarding = true;
                        f->len = 0;
                }
        }
}

/* What is left at the end of a file that will not grow again. */
static void drop_partial(struct moat_event_follow *f)
{
        if (f->len > 0 || f->discarding) {
                f->skipped++;
                moat_warn("skipping an unterminated line at the end of a rotated event log");
        }
        f->len = 0;
        f->discarding = false;
}

int moat_event_follow_process(struct moat_event_follow *f, moat_event_line_fn fn, void *userdata)
{
        char ibuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        while (read(f->inofd, ibuf, sizeof(ibuf)) > 0)
                ;
        int total = 0, r;
        if (f->old >= 0) {
                r = drain(f, f->old, fn, userdata);
                if (r < 0)
                        return r;
                total += r;
                closep(&f->old);
                drop_partial(f);
        }
        for (int rounds = 0; rounds < 8; rounds++) {
                if (f->fd < 0) {
                        f->fd = openat(f->dirfd, MOAT_EVENT_LOG_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                        if (f->fd < 0) {
                                f->fd = -EBADF;
                                return errno == ENOENT ? total : -errno;
                        }
                }
                struct stat fst, nst;
                if (fstat(f->fd, &fst) == 0 && lseek(f->fd, 0, SEEK_CUR) > fst.st_size) {
                        /* Truncated under us: start over. */
                        lseek(f->fd, 0, SEEK_SET);
                        f->len = 0;
                }
                r = drain(f, f->fd, fn, userdata);
                if (r < 0)
                        return r;
                total += r;
                /* Writers only append to the file the name points at (checked
                 * under the lock), so once the name moved on, what we hold is complete. */
                int sr = fstatat(f->dirfd, MOAT_EVENT_LOG_NAME, &nst, AT_SYMLINK_NOFOLLOW);
                if (sr == 0 && nst.st_ino == fst.st_ino && nst.st_dev == fst.st_dev)
                        return total;
                r = drain(f, f->fd, fn, userdata);
                if (r < 0)
                        return r;
                total += r;
                drop_partial(f);
                closep(&f->fd);
                if (sr < 0)
                        return total;
        }
        return total;
}

int moat_event_follow_wait(struct moat_event_follow *f, int timeout_ms, moat_event_line_fn fn, void *userdata)
{
        struct pollfd p = { .fd = f->inofd, .events = POLLIN };
        int n = poll(&p, 1, timeout_ms);
        if (n < 0 && errno != EINTR)
                return -errno;
        return moat_event_follow_process(f, fn, userdata);
}

int moat_event_log_read(const char *state_dir, moat_event_line_fn fn, void *userdata, struct moat_error **err)
{
        struct moat_event_follow *f = NULL;
        int r = moat_event_follow_open(state_dir, true, &f, err);
        if (r < 0)
                return r;
        r = moat_event_follow_process(f, fn, userdata);
        moat_event_follow_free(f);
        if (r < 0 && r != -ECANCELED)
                return moat_error_set(err, r, "cannot read the events in '%s'", state_dir);
        return r;
}
