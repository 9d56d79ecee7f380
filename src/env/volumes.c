/* SPDX-License-Identifier: Apache-2.0 */
/* Named, external and anonymous volumes of a service (see env/volumes.h). */
#include "env/volumes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/copytree.h"
#include "core/log.h"
#include "core/path.h"
#include "core/util.h"

#define TMP_PREFIX ".tmp-_data-"

bool moat_env_volume_name_ok(const char *name)
{
        return name && name[0] != '\0' && name[0] != '.' && !strchr(name, '/');
}

/* ---------------------------------------------------------------- making a volume */

struct vol_ctx {
        const char *service;
        const char *volume; /* for messages: the name, or "(anonymous)" */
        const char *target;
        int rootfd;         /* -EBADF: no content to copy */
};

/* Copies the image's content at v->target into tmpfd (a new empty directory), with
 * the target's owner and mode, if the target is a non-empty directory in the rootfs. */
static int fill_from_image(const struct vol_ctx *v, int tmpfd, const char *data, struct moat_error **err)
{
        if (v->rootfd < 0)
                return 0;
        _cleanup_close_ int src = path_open_in_root(v->rootfd, v->target, O_RDONLY | O_DIRECTORY, 0);
        if (src == -ENOENT || src == -ENOTDIR)
                return 0;
        if (src < 0)
                return moat_error_set(err, src, "service '%s': volume '%s': cannot open '%s' in the image", v->service,
                                      v->volume, v->target);
        int r = moat_dir_is_empty(src);
        if (r < 0)
                return moat_error_set(err, r, "service '%s': volume '%s': cannot read '%s' in the image", v->service,
                                      v->volume, v->target);
        if (r > 0)
                return 0;
        char where[PATH_MAX] = ""; /* what failed, relative to the volume */
        r = moat_copy_tree(src, tmpfd, where, sizeof where);
        if (r >= 0)
                r = moat_copy_tree_meta(src, tmpfd);
        if (r < 0)
                moat_error_set(err, r, "service '%s': volume '%s': cannot copy '%s%s%s' of the image into '%s'",
                               v->service, v->volume, v->target, where[0] ? "/" : "", where, data);
        return r;
}

/* Leftovers of a copy that did not finish (the caller holds the directory's lock). */
static void remove_stale(int dirfd)
{
        int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return;
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return;
        }
        struct dirent *e;
        while ((e = readdir(d)))
                if (!strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX))) {
                        moat_debug("removing an unfinished volume copy '%s'", e->d_name);
                        (void)rm_rf_at(dirfd, e->d_name);
                }
}

/* dir/_data exists afterwards (made now and filled from the image, or already there).
 * *out: its path. */
static int ensure_volume(const struct vol_ctx *v, const char *dir, char **out, struct moat_error **err)
{
        _cleanup_free_ char *data = NULL, *tmppath = NULL;
        if (asprintf(&data, "%s/_data", dir) < 0 || asprintf(&tmppath, "%s/" TMP_PREFIX "XXXXXX", dir) < 0)
                return -ENOMEM;
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return moat_error_set(err, r, "service '%s': volume '%s': cannot create '%s'", v->service, v->volume,
                                      dir);
        _cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return moat_error_set(err, errno, "service '%s': volume '%s': cannot open '%s'", v->service, v->volume,
                                      dir);
        /* two `up` making the same volume: one copies, the other finds it made */
        if (flock(dirfd, LOCK_EX) < 0)
                return moat_error_set(err, errno, "service '%s': volume '%s': cannot lock '%s'", v->service, v->volume,
                                      dir);
        struct stat st;
        if (fstatat(dirfd, "_data", &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (!S_ISDIR(st.st_mode))
                        return moat_error_input(err, -ENOTDIR, "service '%s': volume '%s': '%s' is not a directory",
                                                v->service, v->volume, data);
                *out = TAKE_PTR(data);
                return 0;
        }
        if (errno != ENOENT)
                return moat_error_set(err, errno, "service '%s': volume '%s': cannot stat '%s'", v->service, v->volume,
                                      data);
        remove_stale(dirfd);
        if (!mkdtemp(tmppath))
                return moat_error_set(err, errno, "service '%s': volume '%s': cannot create a directory in '%s'",
                                      v->service, v->volume, dir);
        const char *tmpname = strrchr(tmppath, '/') + 1;
        _cleanup_close_ int tmpfd = openat(dirfd, tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (tmpfd < 0) {
                r = moat_error_set(err, errno, "service '%s': volume '%s': cannot open '%s'", v->service, v->volume,
                                   tmppath);
                goto fail;
        }
        if (fchmod(tmpfd, 0755) < 0) {
                r = moat_error_set(err, errno, "service '%s': volume '%s': cannot chmod '%s'", v->service, v->volume,
                                   tmppath);
                goto fail;
        }
        r = fill_from_image(v, tmpfd, data, err);
        if (r < 0)
                goto fail;
        /* the content on disk before the name that says it is complete */
        if (syncfs(tmpfd) < 0) {
                r = moat_error_set(err, errno, "service '%s': volume '%s': cannot sync '%s'", v->service, v->volume,
                                   tmppath);
                goto fail;
        }
        if (renameat2(dirfd, tmpname, dirfd, "_data", RENAME_NOREPLACE) < 0) {
                r = moat_error_set(err, errno, "service '%s': volume '%s': cannot rename '%s' to '%s'", v->service,
                                   v->volume, tmppath, data);
                goto fail;
        }
        (void)fsync(dirfd);
        moat_debug("service '%s': volume '%s' made at '%s'", v->service, v->volume, data);
        *out = TAKE_PTR(data);
        return 1;
fail:
        (void)rm_rf_at(dirfd, tmpname);
        return r;
}

static const struct moat_env_volume *find_volume(const struct moat_envfile *f, const char *name)
{
        for (size_t i = 0; f && i < f->n_volumes; i++)
                if (STREQ(f->volumes[i].name, name))
                        return &f->volumes[i];
        return NULL;
}

static int external_path(const struct vol_ctx *v, const char *volroot, char **out, struct moat_error **err)
{
        _cleanup_free_ char *data = NULL;
        if (asprintf(&data, "%s/external/%s/_data", volroot, v->volume) < 0)
                return -ENOMEM;
        struct stat st;
        if (stat(data, &st) < 0) {
                if (errno == ENOENT)
                        return moat_error_input(err, -ENOENT, "service '%s': external volume '%s': '%s' does not "
                                                "exist (create it first: mkdir -p '%s')", v->service, v->volume, data,
                                                data);
                return moat_error_set(err, errno, "service '%s': external volume '%s': cannot stat '%s'", v->service,
                                      v->volume, data);
        }
        if (!S_ISDIR(st.st_mode))
                return moat_error_input(err, -ENOTDIR, "service '%s': external volume '%s': '%s' is not a directory",
                                        v->service, v->volume, data);
        *out = TAKE_PTR(data);
        return 0;
}

static json_t *bind_json(const char *dst, const char *src, bool ro)
{
        return json_pack("{s:s, s:s, s:s, s:[s, s]}", "destination", dst, "type", "bind", "source", src, "options",
                         "rbind", ro ? "ro" : "rw");
}

int moat_env_volumes_mounts(const struct moat_envfile *f, const struct moat_env_service *s, const char *project,
                            const char *volroot, const char *envdir, const char *rootfs, json_t *mounts,
                            struct moat_error **err)
{
        if (!s || !json_is_array(mounts))
                return -EINVAL;
        if (!volroot)
                volroot = MOAT_VOLUMES_DIR;
        _cleanup_close_ int rootfd = -EBADF;
        for (size_t k = 0; k < s->n_mounts; k++) {
                const struct moat_env_mount *mt = &s->mounts[k];
                if (mt->type != MOAT_MOUNT_VOLUME)
                        continue;
                struct vol_ctx v = {
                        .service = s->name,
                        .volume = mt->source ? mt->source : "(anonymous)",
                        .target = mt->target,
                        .rootfd = -EBADF,
                };
                if (!mt->target || mt->target[0] != '/')
                        return moat_error_input(err, -EINVAL, "service '%s': volume '%s': target '%s' is not an "
                                                "absolute path", s->name, v.volume, mt->target ? mt->target : "");
                if (rootfs && rootfd < 0) {
                        rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (rootfd < 0)
                                return moat_error_set(err, errno, "service '%s': cannot open the rootfs '%s'", s->name,
                                                      rootfs);
                }
                v.rootfd = rootfd;
                _cleanup_free_ char *path = NULL, *dir = NULL;
                int r;
                if (mt->source) {
                        if (!moat_env_volume_name_ok(mt->source))
                                return moat_error_input(err, -EINVAL, "service '%s': volume name '%s' is not valid "
                                                        "(no '/', not starting with '.')", s->name, mt->source);
                        const struct moat_env_volume *vol = find_volume(f, mt->source);
                        if (!vol)
                                return moat_error_input(err, -EINVAL, "service '%s': volume '%s' is not declared "
                                                        "under the top-level 'volumes:'", s->name, mt->source);
                        if (vol->external) {
                                r = external_path(&v, volroot, &path, err);
                        } else {
                                if (!moat_env_volume_name_ok(project))
                                        return moat_error_input(err, -EINVAL, "service '%s': volume '%s': project "
                                                                "name '%s' is not valid", s->name, mt->source,
                                                                project ? project : "");
                                if (STREQ(project, "external"))
                                        return moat_error_input(err, -EINVAL, "service '%s': volume '%s': a project "
                                                                "named 'external' cannot have named volumes (its "
                                                                "directory holds the external ones); use -p",
                                                                s->name, mt->source);
                                if (asprintf(&dir, "%s/%s/%s", volroot, project, mt->source) < 0)
                                        return -ENOMEM;
                                r = ensure_volume(&v, dir, &path, err);
                        }
                } else {
                        if (!envdir)
                                return -EINVAL;
                        if (!moat_env_volume_name_ok(s->name))
                                return moat_error_input(err, -EINVAL, "service name '%s' is not valid for an "
                                                        "anonymous volume", s->name);
                        if (asprintf(&dir, "%s/volumes/%s-%zu", envdir, s->name, k) < 0)
                                return -ENOMEM;
                        r = ensure_volume(&v, dir, &path, err);
                }
                if (r < 0)
                        return r;
                json_t *m = bind_json(mt->target, path, mt->read_only);
                if (!m || json_array_append_new(mounts, m) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int moat_env_volumes_remove(const char *volroot, const char *project, struct moat_error **err)
{
        if (!volroot)
                volroot = MOAT_VOLUMES_DIR;
        if (!moat_env_volume_name_ok(project))
                return moat_error_input(err, -EINVAL, "project name '%s' is not valid", project ? project : "");
        if (STREQ(project, "external")) {
                /* never the external volumes; a project of that name has no named ones */
                moat_debug("project 'external': no named volumes to remove");
                return 0;
        }
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s/%s", volroot, project) < 0)
                return -ENOMEM;
        int r = rm_rf_at(AT_FDCWD, dir);
        if (r < 0)
                return moat_error_set(err, r, "cannot remove the volumes of project '%s' ('%s')", project, dir);
        return 0;
}
