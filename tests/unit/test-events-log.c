/* SPDX-License-Identifier: Apache-2.0 */
/* events: the per-environment log (cap and rotation, concurrent writers,
 * corrupt lines skipped) and the follower (new lines, across rotations),
 * in a temporary state dir. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "events/log.h"
#include "tap.h"

static char dir[128];

static struct moat_event *mk(const char *service, int seq)
{
        struct moat_event *ev = NULL;
        if (moat_event_new("logtest", service, MOAT_EV_EXIT, &ev) < 0)
                return NULL;
        moat_event_set_int(ev, "seq", seq);
        moat_event_set_str(ev, "pad", "0123456789012345678901234567890123456789");
        return ev;
}

static off_t fsize(const char *name)
{
        char p[256];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        return stat(p, &st) < 0 ? -1 : st.st_size;
}

struct counts {
        int n;
        int seen[2][10001];
        int bad_order;
        int last[2];
};

static int count_cb(const struct moat_event *ev, const char *line, size_t len, void *ud)
{
        struct counts *c = ud;
        int64_t seq = -1;
        int w = ev->service && STREQ(ev->service, "w1") ? 1 : 0;
        c->n++;
        if (moat_event_get_int(ev, "seq", &seq) == 0 && seq >= 0 && seq <= 10000) {
                c->seen[w][seq]++;
                if (seq < c->last[w])
                        c->bad_order++;
                c->last[w] = (int)seq;
        }
        return 0;
}

static void reset_dir(void)
{
        rm_rf_at(AT_FDCWD, dir);
}

static void test_cap_rotate(void)
{
        reset_dir();
        struct moat_event_log *l = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        ok(moat_event_log_open(dir, 4096, &l, &err) == 0, "open a log capped at 4 KiB");
        if (!l)
                return;
        int fails = 0;
        for (int i = 0; i < 200; i++) {
                struct moat_event *ev = mk("w0", i);
                if (!ev || moat_event_log_append(l, ev, NULL) < 0)
                        fails++;
                moat_event_free(ev);
        }
        is_int(fails, 0, "200 appends");
        off_t a = fsize(MOAT_EVENT_LOG_NAME), b = fsize(MOAT_EVENT_LOG_ROTATED);
        ok(a > 0 && a <= 4096, "current file within the cap (%lld)", (long long)a);
        ok(b > 0 && b <= 4096, "rotated file within the cap (%lld)", (long long)b);
        char p[256];
        snprintf(p, sizeof(p), "%s/%s.2", dir, MOAT_EVENT_LOG_NAME);
        ok(access(p, F_OK) < 0, "only one rotated generation");
        struct counts *c = calloc(1, sizeof(*c));
        ok(moat_event_log_read(dir, count_cb, c, &err) >= 0, "read back");
        ok(c->n > 10 && c->n < 200, "kept %d of 200 (older ones rotated away)", c->n);
        ok(c->seen[0][199] == 1 && c->bad_order == 0, "newest kept, in order, rotated part first");
        free(c);
        is_int(moat_event_log_append_line(l, "two\nlines\n", 10, NULL), -EINVAL, "embedded newline refused");
        is_int(moat_event_log_append_line(l, "no newline", 10, NULL), -EINVAL, "missing newline refused");
        moat_event_log_free(l);
}

static void test_corrupt(void)
{
        reset_dir();
        struct moat_event_log *l = NULL;
        moat_event_log_open(dir, 0, &l, NULL);
        if (!l)
                return;
        struct moat_event *e1 = mk("w0", 1), *e2 = mk("w0", 2);
        moat_event_log_append(l, e1, NULL);
        /* what a hostile process with write access might add */
        char p[256];
        snprintf(p, sizeof(p), "%s/%s", dir, MOAT_EVENT_LOG_NAME);
        int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
        const char junk[] = "garbage\n{\"time\":1}\n\n{\"time\":\"2026-11-27T04:34:06Z\",\"env\":\"x\",\"type\":\"nope\"}\n"
                            "\xff\xfe\x00\x01\n";
        ok(fd >= 0 && write(fd, junk, sizeof(junk) - 1) == (ssize_t)sizeof(junk) - 1, "append junk");
        char *huge = malloc(3 * MOAT_EVENT_LINE_MAX);
        if (huge) {
                memset(huge, 'A', 3 * MOAT_EVENT_LINE_MAX);
                huge[3 * MOAT_EVENT_LINE_MAX - 1] = '\n';
                (void)!write(fd, huge, 3 * MOAT_EVENT_LINE_MAX);
                free(huge);
        }
        close(fd);
        moat_event_log_append(l, e2, NULL);
        struct moat_event_follow *f = NULL;
        ok(moat_event_follow_open(dir, true, &f, NULL) == 0, "follow from start");
        struct counts *c = calloc(1, sizeof(*c));
        if (f && c) {
                int r = moat_event_follow_process(f, count_cb, c);
                is_int(r, 2, "the two good lines handed");
                ok(c->seen[0][1] == 1 && c->seen[0][2] == 1, "both good events, around the junk");
                is_int(moat_event_follow_skipped(f), 6, "junk lines skipped and counted (5 short + 1 over-long)");
        }
        free(c);
        moat_event_follow_free(f);
        moat_event_free(e1);
        moat_event_free(e2);
        moat_event_log_free(l);
}

static void writer(int w, uint64_t cap)
{
        struct moat_event_log *l = NULL;
        if (moat_event_log_open(dir, cap, &l, NULL) < 0)
                _exit(2);
        char name[16];
        snprintf(name, sizeof(name), "w%d", w);
        for (int i = 1; i <= 10000; i++) {
                struct moat_event *ev = mk(name, i);
                if (!ev || moat_event_log_append(l, ev, NULL) < 0)
                        _exit(3);
                moat_event_free(ev);
        }
        moat_event_log_free(l);
        _exit(0);
}

static void test_concurrent(void)
{
        reset_dir();
        mkdir_p(dir, 0700);
        pid_t p[2];
        for (int w = 0; w < 2; w++)
                if ((p[w] = fork()) == 0)
                        writer(w, 64 << 20);
        int good = 0;
        for (int w = 0; w < 2; w++) {
                int st;
                if (p[w] > 0 && waitpid(p[w], &st, 0) == p[w] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
                        good++;
        }
        is_int(good, 2, "two writers of 10k lines each finished");
        struct counts *c = calloc(1, sizeof(*c));
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_event_follow *f = NULL;
        moat_event_follow_open(dir, true, &f, &err);
        if (f && c) {
                moat_event_follow_process(f, count_cb, c);
                is_int(c->n, 20000, "20000 whole lines");
                is_int(moat_event_follow_skipped(f), 0, "no interleaved or cut line");
                int missing = 0;
                for (int w = 0; w < 2; w++)
                        for (int i = 1; i <= 10000; i++)
                                missing += c->seen[w][i] != 1;
                is_int(missing, 0, "each line exactly once");
                is_int(c->bad_order, 0, "each writer's lines in its order");
        }
        moat_event_follow_free(f);
        free(c);

        /* Again with a small cap, so both rotate under each other: no line is
         * cut, none lands in a file that was already rotated away twice. */
        reset_dir();
        mkdir_p(dir, 0700);
        for (int w = 0; w < 2; w++)
                if ((p[w] = fork()) == 0)
                        writer(w, 256 << 10);
        good = 0;
        for (int w = 0; w < 2; w++) {
                int st;
                if (p[w] > 0 && waitpid(p[w], &st, 0) == p[w] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
                        good++;
        }
        is_int(good, 2, "two writers rotating under each other finished");
        c = calloc(1, sizeof(*c));
        f = NULL;
        moat_event_follow_open(dir, true, &f, NULL);
        if (f && c) {
                moat_event_follow_process(f, count_cb, c);
                is_int(moat_event_follow_skipped(f), 0, "no cut line across rotations");
                /* The newest line always survives; the other writer's last line may
                 * legitimately be rotated away if it finished long before. */
                ok(c->seen[0][10000] == 1 || c->seen[1][10000] == 1, "the newest last line is kept");
                ok(fsize(MOAT_EVENT_LOG_NAME) <= 256 << 10 && fsize(MOAT_EVENT_LOG_ROTATED) <= 256 << 10,
                   "both files within the cap");
                /* the two files hold a contiguous tail of each writer's sequence */
                int gaps = 0;
                for (int w = 0; w < 2; w++) {
                        int i = 10000;
                        while (i > 0 && c->seen[w][i] == 1)
                                i--;
                        for (; i > 0; i--)
                                gaps += c->seen[w][i] != 0;
                }
                is_int(gaps, 0, "kept lines are a contiguous tail per writer");
        }
        moat_event_follow_free(f);
        free(c);
}

/* ---- follow ---- */

struct follow_ctx {
        struct moat_event_follow *f;
        struct counts *c;
        volatile int stop;
        int target;
};

static void *follower(void *arg)
{
        struct follow_ctx *x = arg;
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (!x->stop && x->c->n < x->target) {
                if (moat_event_follow_wait(x->f, 100, count_cb, x->c) < 0)
                        break;
                clock_gettime(CLOCK_MONOTONIC, &t);
                if (t.tv_sec - t0.tv_sec > 30)
                        break; /* the test fails on the count, it does not hang */
        }
        return NULL;
}

static void test_follow(void)
{
        reset_dir();
        struct moat_event_log *l = NULL;
        moat_event_log_open(dir, 8192, &l, NULL);
        if (!l)
                return;
        for (int i = 1; i <= 5; i++) {
                struct moat_event *ev = mk("w0", i);
                moat_event_log_append(l, ev, NULL);
                moat_event_free(ev);
        }
        struct follow_ctx x = { .c = calloc(1, sizeof(struct counts)), .target = 5 + 500 };
        _cleanup_error_ struct moat_error *err = NULL;
        ok(moat_event_follow_open(dir, true, &x.f, &err) == 0 && moat_event_follow_fd(x.f) >= 0, "follower open");
        if (!x.f || !x.c)
                return;
        pthread_t th;
        ok(pthread_create(&th, NULL, follower, &x) == 0, "follower thread");
        /* 500 more lines, slowly enough that the follower wakes many times;
         * at ~140 bytes a line an 8 KiB cap rotates about 8 times. */
        for (int i = 6; i <= 505; i++) {
                struct moat_event *ev = mk("w0", i);
                moat_event_log_append(l, ev, NULL);
                moat_event_free(ev);
                if (i % 50 == 0)
                        usleep(20000);
        }
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do {
                usleep(10000);
                clock_gettime(CLOCK_MONOTONIC, &t);
        } while (x.c->n < x.target && t.tv_sec - t0.tv_sec < 10);
        x.stop = 1;
        pthread_join(th, NULL);
        is_int(x.c->n, 505, "follower saw the old lines and every new one across rotations");
        int missing = 0;
        for (int i = 1; i <= 505; i++)
                missing += x.c->seen[0][i] != 1;
        is_int(missing, 0, "each exactly once");
        is_int(x.c->bad_order, 0, "in order");
        ok(fsize(MOAT_EVENT_LOG_ROTATED) > 0, "the log did rotate meanwhile");
        moat_event_follow_free(x.f);
        free(x.c);

        /* not from the start: only what comes after */
        struct moat_event_follow *f2 = NULL;
        moat_event_follow_open(dir, false, &f2, NULL);
        struct counts *c2 = calloc(1, sizeof(*c2));
        if (f2 && c2) {
                is_int(moat_event_follow_process(f2, count_cb, c2), 0, "tail mode: nothing old");
                struct moat_event *ev = mk("w1", 7);
                moat_event_log_append(l, ev, NULL);
                moat_event_free(ev);
                is_int(moat_event_follow_wait(f2, 2000, count_cb, c2), 1, "tail mode: the new line");
                is_int(c2->seen[1][7], 1, "the right one");
        }
        free(c2);
        moat_event_follow_free(f2);
        moat_event_log_free(l);
}

int main(void)
{
        snprintf(dir, sizeof(dir), "/tmp/moat-test-events-%d", (int)getpid());
        test_cap_rotate();
        test_corrupt();
        test_concurrent();
        test_follow();
        reset_dir();
        return done_testing();
}
