/* SPDX-License-Identifier: Apache-2.0 */
/* Pull progress: a bar per layer on a terminal, plain lines elsewhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/util.h"
#include "image/pull.h"

struct item {
        char label[20]; /* "sha256:0123456789ab" */
        int64_t total, done;
        enum pull_state st, printed_st;
};

struct pull_progress {
        int fd;
        bool tty;
        size_t n;
        bool drawn;
        int64_t last_ns;
        struct item *items;
};

static const char *const state_names[] = {
        [PULL_WAITING] = "waiting",      [PULL_DOWNLOADING] = "downloading", [PULL_UNPACKING] = "unpacking",
        [PULL_DONE] = "done",            [PULL_PRESENT] = "already present", [PULL_FAILED] = "failed",
};

struct pull_progress *pull_progress_new(int fd, size_t n)
{
        if (fd < 0)
                return NULL;
        struct pull_progress *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->items = calloc(n ? n : 1, sizeof(*p->items));
        if (!p->items) {
                free(p);
                return NULL;
        }
        p->fd = fd;
        p->n = n;
        p->tty = isatty(fd);
        for (size_t i = 0; i < n; i++)
                p->items[i].printed_st = (enum pull_state)-1;
        return p;
}

void pull_progress_item(struct pull_progress *p, size_t i, const char *digest, int64_t total)
{
        if (!p || i >= p->n)
                return;
        const char *h = strchr(digest, ':');
        snprintf(p->items[i].label, sizeof(p->items[i].label), "%.12s", h ? h + 1 : digest);
        p->items[i].total = total;
}

static void human(char *buf, size_t sz, int64_t b)
{
        if (b >= 1 << 20)
                snprintf(buf, sz, "%.1f MiB", b / 1048576.0);
        else if (b >= 1 << 10)
                snprintf(buf, sz, "%.1f KiB", b / 1024.0);
        else
                snprintf(buf, sz, "%lld B", (long long)b);
}

void pull_progress_set(struct pull_progress *p, size_t i, enum pull_state st, int64_t done)
{
        if (!p || i >= p->n)
                return;
        p->items[i].st = st;
        if (done >= 0)
                p->items[i].done = done;
        pull_progress_render(p, !p->tty);
}

void pull_progress_bytes(struct pull_progress *p, size_t i, int64_t done)
{
        if (!p || i >= p->n)
                return;
        p->items[i].done = done;
}

void pull_progress_render(struct pull_progress *p, bool force)
{
        if (!p)
                return;
        char out[8192];
        size_t o = 0;
        if (!p->tty) {
                for (size_t i = 0; i < p->n; i++) {
                        struct item *it = &p->items[i];
                        if (it->st == it->printed_st || it->st == PULL_WAITING)
                                continue;
                        char t[32];
                        human(t, sizeof(t), it->total);
                        o += snprintf(out + o, sizeof(out) - o, "layer %s: %s (%s)\n", it->label,
                                      state_names[it->st], t);
                        it->printed_st = it->st;
                        if (o > sizeof(out) - 200) {
                                write_all(p->fd, out, o);
                                o = 0;
                        }
                }
                if (o)
                        write_all(p->fd, out, o);
                return;
        }
        int64_t now = now_ns();
        if (!force && p->drawn && now - p->last_ns < 100 * 1000 * 1000)
                return;
        p->last_ns = now;
        struct winsize ws = { 0 };
        int cols = ioctl(p->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80;
        int barw = cols - 60;
        if (barw > 40)
                barw = 40;
        if (p->drawn && p->n)
                o += snprintf(out + o, sizeof(out) - o, "\033[%zuA", p->n);
        for (size_t i = 0; i < p->n && o < sizeof(out) - 300; i++) {
                struct item *it = &p->items[i];
                char d[32], t[32], bar[64] = "";
                human(d, sizeof(d), it->done);
                human(t, sizeof(t), it->total);
                if (barw >= 5) {
                        int fill = it->total > 0 ? (int)(barw * (it->done > it->total ? it->total : it->done) /
                                                         it->total)
                                                 : 0;
                        if (it->st == PULL_DONE || it->st == PULL_PRESENT)
                                fill = barw;
                        bar[0] = '[';
                        for (int k = 0; k < barw; k++)
                                bar[1 + k] = k < fill ? '#' : '.';
                        bar[barw + 1] = ']';
                        bar[barw + 2] = 0;
                }
                o += snprintf(out + o, sizeof(out) - o, "\r\033[K%s %-15s %s %s / %s\n", it->label,
                              state_names[it->st], bar, d, t);
        }
        p->drawn = true;
        write_all(p->fd, out, o);
}

void pull_progress_free(struct pull_progress *p)
{
        if (!p)
                return;
        if (p->tty)
                pull_progress_render(p, true);
        free(p->items);
        free(p);
}
