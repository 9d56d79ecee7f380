/* SPDX-License-Identifier: Apache-2.0 */
/* The store side of a bundle: the image's config blob, its root filesystem
 * mounted at dir/rootfs, and dir/config.json written through a temp file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "image/bundle.h"
#include "oci/json.h"

static int write_config(const char *dir, json_t *doc, struct moat_error **err)
{
        _cleanup_free_ char *text = json_dumps(doc, JSON_INDENT(2));
        _cleanup_free_ char *tmp = NULL, *path = NULL;
        if (!text || asprintf(&tmp, "%s/.config.json.tmp", dir) < 0 || asprintf(&path, "%s/config.json", dir) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot write '%s'", tmp);
        size_t len = strlen(text);
        if (write_all(fd, text, len) != (ssize_t)len || write_all(fd, "\n", 1) != 1) {
                int e = errno ? errno : EIO;
                unlink(tmp);
                return moat_error_set(err, e, "cannot write '%s'", tmp);
        }
        if (rename(tmp, path) < 0) {
                int e = errno;
                unlink(tmp);
                return moat_error_set(err, e, "cannot write '%s'", path);
        }
        return 0;
}

int moat_bundle_from_image(struct moat_store *s, const struct moat_image *img, const struct moat_run_opts *o,
                           const char *dir, struct moat_error **err)
{
        const char *name = img->name ? img->name : img->config_digest;
        if (!img->config_digest)
                return moat_error_input(err, -EINVAL, "image '%s' has no config", name ? name : "");
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = moat_store_blob_read(s, img->config_digest, &data, &len, err);
        if (r < 0)
                return moat_error_prefix(err, r, "image '%s'", name);
        struct moat_image_config ic = { 0 };
        r = moat_image_config_parse(data, len, &ic, err);
        if (r < 0)
                return moat_error_prefix(err, r, "image '%s': config '%s'", name, img->config_digest);

        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                r = moat_error_set(err, errno, "cannot make the bundle directory '%s'", dir);
                goto out;
        }
        _cleanup_free_ char *rootfs = NULL;
        r = moat_image_rootfs_mount(s, img, dir, &rootfs, err);
        if (r < 0) {
                moat_error_prefix(err, r, "image '%s'", name);
                goto out;
        }
        _cleanup_free_ char *abs_rootfs = NULL;
        if (rootfs[0] != '/' && asprintf(&abs_rootfs, "%s/rootfs", dir) < 0) {
                r = -ENOMEM;
                goto umount;
        }
        json_t *doc = NULL;
        r = moat_bundle_config(&ic, name, abs_rootfs ? abs_rootfs : rootfs, o, &doc, err);
        if (r >= 0) {
                /* The mount may not be at dir/rootfs exactly: point config.json at it. */
                _cleanup_free_ char *expect = NULL;
                if (asprintf(&expect, "%s/rootfs", dir) > 0 && strcmp(expect, rootfs) != 0 && rootfs[0] == '/')
                        json_object_set_new(json_object_get(doc, "root"), "path", json_string(rootfs));
                r = write_config(dir, doc, err);
                json_decref(doc);
        }
umount:
        if (r < 0) {
                struct moat_error *uerr = NULL;
                if (moat_image_rootfs_umount(dir, &uerr) < 0)
                        moat_warn("%s", uerr && uerr->msg ? uerr->msg : "cannot unmount the root filesystem");
                moat_error_free(uerr);
        }
out:
        moat_image_config_clear(&ic);
        return r < 0 ? r : 0;
}

int moat_bundle_remove(const char *dir, struct moat_error **err)
{
        struct stat st;
        if (lstat(dir, &st) < 0)
                return errno == ENOENT ? 0 : moat_error_set(err, errno, "cannot remove '%s'", dir);
        int r = moat_image_rootfs_umount(dir, err);
        if (r < 0)
                return r;
        /* rm_rf_at never crosses a mount point: a rootfs still mounted is left alone. */
        r = rm_rf_at(AT_FDCWD, dir);
        if (r < 0 && r != -ENOENT)
                return moat_error_set(err, r, "cannot remove the container directory '%s'", dir);
        return 0;
}
