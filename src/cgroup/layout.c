/* SPDX-License-Identifier: Apache-2.0 */
/* Which hierarchies are mounted where (/proc/self/mountinfo), where moat
 * itself sits in each (/proc/self/cgroup), and cgroupsPath resolution. */
#include "cgroup/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/util.h"

static void hier_free(struct cg_hier *h)
{
        free(h->mount);
        free(h->name);
        free(h->options);
        strv_free(h->controllers);
        free(h->root);
        free(h->self);
}

void cg_layout_free(struct cg_layout *l)
{
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                hier_free(&l->h[i]);
        free(l->h);
        free(l);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
        char *w = s;
        for (char *r = s; *r; r++) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
                    r[3] <= '7') {
                        *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
                        r += 3;
                } else {
                        *w++ = *r;
                }
        }
        *w = '\0';
}

static bool is_generic_option(const char *o)
{
        static const char *const generic[] = { "rw", "ro", "xattr", "noprefix", "clone_children",
                                                "cpuset_v2_mode", "none", "nsdelegate", "favordynmods",
                                                "memory_localevents", "memory_recursiveprot" };
        for (size_t i = 0; i < ARRAY_SIZE(generic); i++)
                if (STREQ(o, generic[i]))
                        return true;
        return strncmp(o, "release_agent=", 14) == 0;
}

/* Fills h from a v1 superblock option string. */
static int parse_v1_options(struct cg_hier *h, const char *superopts)
{
        _cleanup_free_ char *copy = strdup(superopts);
        _cleanup_free_ char *opts = NULL;
        char *save = NULL;
        bool real = false;
        size_t len = 0;
        if (!copy)
                return -ENOMEM;
        opts = calloc(1, strlen(superopts) + 8);
        if (!opts)
                return -ENOMEM;
        for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                if (is_generic_option(o))
                        continue;
                if (strv_push(&h->controllers, o) < 0)
                        return -ENOMEM;
                if (strncmp(o, "name=", 5) != 0)
                        real = true;
        }
        if (!real)
                len += (size_t)sprintf(opts + len, "none");
        for (size_t i = 0; h->controllers && h->controllers[i]; i++)
                len += (size_t)sprintf(opts + len, "%s%s", len ? "," : "", h->controllers[i]);
        h->options = TAKE_PTR(opts);
        return 0;
}

static bool hier_has(const struct cg_hier *h, const char *ctrl)
{
        return !h->v2 && strv_contains(h->controllers, ctrl);
}

static bool hier_real_v1(const struct cg_hier *h)
{
        for (size_t i = 0; !h->v2 && h->controllers && h->controllers[i]; i++)
                if (strncmp(h->controllers[i], "name=", 5) != 0)
                        return true;
        return false;
}

/* Finds moat's own path for hierarchy h in /proc/self/cgroup text. */
static int self_path(const struct cg_hier *h, const char *self_cgroup, char **out)
{
        _cleanup_free_ char *copy = strdup(self_cgroup);
        char *save = NULL;
        if (!copy)
                return -ENOMEM;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *c1 = strchr(line, ':');
                char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c2 = '\0';
                const char *ctrls = c1 + 1, *path = c2 + 1;
                bool match = false;
                if (h->v2) {
                        match = STREQ(line, "0") || *ctrls == '\0';
                        match = match && *ctrls == '\0';
                } else {
                        _cleanup_free_ char *cc = strdup(ctrls);
                        char *s2 = NULL;
                        if (!cc)
                                return -ENOMEM;
                        for (char *c = strtok_r(cc, ",", &s2); c && !match; c = strtok_r(NULL, ",", &s2))
                                match = hier_has(h, c);
                }
                if (match) {
                        *out = strdup(path);
                        return *out ? 0 : -ENOMEM;
                }
        }
        *out = strdup("/");
        return *out ? 0 : -ENOMEM;
}

int cg_layout_parse(const char *mountinfo, const char *self_cgroup, struct cg_layout **out,
                    struct moat_error **err)
{
        struct cg_layout *l = calloc(1, sizeof(*l));
        _cleanup_free_ char *copy = strdup(mountinfo);
        char *save = NULL;
        bool have_v2 = false, have_v1 = false;
        int r = -ENOMEM;
        if (!l || !copy)
                goto fail;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                /* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
                char *f[6] = { 0 }, *s2 = NULL, *tok;
                int nf = 0;
                char *sep = strstr(line, " - ");
                if (!sep)
                        continue;
                *sep = '\0';
                for (tok = strtok_r(line, " ", &s2); tok && nf < 6; tok = strtok_r(NULL, " ", &s2))
                        f[nf++] = tok;
                if (nf < 5)
                        continue;
                char *fstype = strtok_r(sep + 3, " ", &s2);
                char *source = fstype ? strtok_r(NULL, " ", &s2) : NULL;
                char *superopts = source ? strtok_r(NULL, " ", &s2) : NULL;
                if (!superopts)
                        continue;
                unescape(f[3]);
                unescape(f[4]);
                /* A later mount on (or above) a hierarchy's mount point hides it
                 * (e.g. a tmpfs over /sys/fs/cgroup/unified): forget it. */
                size_t ml = strlen(f[4]);
                for (size_t i = 0; i < l->n;) {
                        const char *m = l->h[i].mount;
                        bool hidden = strncmp(m, f[4], ml) == 0 &&
                                      (m[ml] == '\0' || m[ml] == '/' || (ml == 1 && f[4][0] == '/'));
                        if (!hidden) {
                                i++;
                                continue;
                        }
                        hier_free(&l->h[i]);
                        memmove(&l->h[i], &l->h[i + 1], (l->n - i - 1) * sizeof(l->h[0]));
                        l->n--;
                }
                bool v2 = STREQ(fstype, "cgroup2");
                if (!v2 && !STREQ(fstype, "cgroup"))
                        continue;
                struct cg_hier h = { .v2 = v2 };
                h.root = strdup(f[3]);
                h.mount = strdup(f[4]);
                const char *base = strrchr(f[4], '/');
                h.name = strdup(base && base[1] ? base + 1 : f[4]);
                if (!h.root || !h.mount || !h.name || (!v2 && parse_v1_options(&h, superopts) < 0)) {
                        hier_free(&h);
                        goto fail;
                }
                /* The same hierarchy mounted twice (or a v2 mounted twice): keep the first. */
                bool dup = false;
                for (size_t i = 0; i < l->n && !dup; i++) {
                        if (l->h[i].v2 != v2)
                                continue;
                        dup = v2 || (l->h[i].options && STREQ(l->h[i].options, h.options));
                }
                if (dup) {
                        hier_free(&h);
                        continue;
                }
                if (self_path(&h, self_cgroup, &h.self) < 0) {
                        hier_free(&h);
                        goto fail;
                }
                struct cg_hier *nh = realloc(l->h, (l->n + 1) * sizeof(*nh));
                if (!nh) {
                        hier_free(&h);
                        goto fail;
                }
                l->h = nh;
                l->h[l->n++] = h;
                if (v2)
                        have_v2 = true;
                else if (hier_real_v1(&h))
                        have_v1 = true;
        }
        have_v1 = have_v2 = false;
        for (size_t i = 0; i < l->n; i++) {
                if (l->h[i].v2)
                        have_v2 = true;
                else if (hier_real_v1(&l->h[i]))
                        have_v1 = true;
        }
        if (!have_v1 && !have_v2) {
                r = moat_error_input(err, ENOENT, "no cgroup hierarchy is mounted (see /proc/self/mountinfo)");
                goto fail;
        }
        l->layout = have_v1 ? (have_v2 ? MOAT_CG_HYBRID : MOAT_CG_V1) : MOAT_CG_V2;
        *out = l;
        return 0;
fail:
        cg_layout_free(l);
        if (r == -ENOMEM)
                moat_error_set(err, ENOMEM, "reading the cgroup layout");
        return r;
}

static struct cg_layout *cached;
static pthread_mutex_t cached_lock = PTHREAD_MUTEX_INITIALIZER;

int cg_layout_get(const struct cg_layout **out, struct moat_error **err)
{
        int r = 0;
        pthread_mutex_lock(&cached_lock);
        if (!cached) {
                _cleanup_free_ char *mi = NULL, *self = NULL;
                r = read_file_at(AT_FDCWD, "/proc/self/mountinfo", &mi, NULL);
                if (r < 0) {
                        moat_error_set(err, r, "cannot read /proc/self/mountinfo");
                        goto out;
                }
                r = read_file_at(AT_FDCWD, "/proc/self/cgroup", &self, NULL);
                if (r < 0) {
                        moat_error_set(err, r, "cannot read /proc/self/cgroup");
                        goto out;
                }
                r = cg_layout_parse(mi, self, &cached, err);
        }
out:
        if (r >= 0)
                *out = cached;
        pthread_mutex_unlock(&cached_lock);
        return r;
}

int moat_cgroup_layout_detect(enum moat_cgroup_layout *out, struct moat_error **err)
{
        const struct cg_layout *l;
        int r = cg_layout_get(&l, err);
        if (r < 0)
                return r;
        *out = l->layout;
        return 0;
}

const struct cg_hier *cg_layout_find(const struct cg_layout *l, const char *ctrl)
{
        for (size_t i = 0; i < l->n; i++)
                if (hier_has(&l->h[i], ctrl))
                        return &l->h[i];
        return NULL;
}

const struct cg_hier *cg_layout_v2(const struct cg_layout *l)
{
        for (size_t i = 0; i < l->n; i++)
                if (l->h[i].v2)
                        return &l->h[i];
        return NULL;
}

int cg_resolve_path(const char *path, const char *id, const char *self, char **out,
                    struct moat_error **err)
{
        _cleanup_free_ char *joined = NULL, *res = NULL;
        char *save = NULL;
        size_t len = 0;
        if (!path) {
                if (!id || !*id || strchr(id, '/') || STREQ(id, ".") || STREQ(id, ".."))
                        return moat_error_input(err, EINVAL, "container id '%s' cannot name a cgroup",
                                                id ? id : "");
                if (asprintf(&joined, "/moat/%s", id) < 0)
                        return moat_error_set(err, ENOMEM, "resolving cgroup path");
        } else if (path[0] == '/') {
                joined = strdup(path);
        } else {
                if (asprintf(&joined, "%s/%s", self ? self : "/", path) < 0)
                        joined = NULL;
        }
        if (!joined)
                return moat_error_set(err, ENOMEM, "resolving cgroup path");
        res = calloc(1, strlen(joined) + 2);
        if (!res)
                return moat_error_set(err, ENOMEM, "resolving cgroup path");
        for (char *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                if (STREQ(c, "."))
                        continue;
                if (STREQ(c, ".."))
                        return moat_error_input(err, EINVAL, "cgroupsPath '%s': '..' is not allowed", path);
                len += (size_t)sprintf(res + len, "/%s", c);
        }
        if (len == 0)
                strcpy(res, "/");
        *out = TAKE_PTR(res);
        return 0;
}
