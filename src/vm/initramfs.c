/* SPDX-License-Identifier: Apache-2.0 */
#include "vm/initramfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"

#define FORMAT_TAG "moat-initramfs-v2"   /* bump when the layout below changes */
#define MAX_INPUT_SIZE (64u << 20)      /* an init or a module bigger than this is a mistake */

struct input {
        char *name;     /* path inside the cpio, no leading slash */
        char *data;
        size_t len;
        mode_t mode;
};

static void inputs_free(struct input *in, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(in[i].name);
                free(in[i].data);
        }
        free(in);
}

static int load_file(const char *path, struct input *in, const char *name, mode_t mode, struct moat_error **err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        int r;

        if (fd < 0)
                return moat_error_set(err, errno, "cannot open '%s' for the initramfs", path);
        if (fstat(fd, &st) < 0)
                return moat_error_set(err, errno, "cannot stat '%s'", path);
        if (!S_ISREG(st.st_mode))
                return moat_error_input(err, -EINVAL, "'%s' is not a regular file", path);
        if ((uint64_t)st.st_size > MAX_INPUT_SIZE)
                return moat_error_input(err, -EFBIG, "'%s' is too big for the initramfs", path);
        r = read_fd_all(fd, &in->data, &in->len);
        if (r < 0)
                return moat_error_set(err, r, "cannot read '%s'", path);
        in->name = strdup(name);
        if (!in->name)
                return -ENOMEM;
        in->mode = mode;
        return 0;
}

static void hash_item(EVP_MD_CTX *md, const char *name, const void *data, size_t len)
{
        uint64_t l = len;

        EVP_DigestUpdate(md, name, strlen(name) + 1);
        EVP_DigestUpdate(md, &l, sizeof(l));
        EVP_DigestUpdate(md, data, len);
}

static int hash_inputs(const struct input *in, size_t n, char hex[static 65])
{
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned dlen = 0;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        int ok;

        if (!md)
                return -ENOMEM;
        ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
        if (ok) {
                hash_item(md, FORMAT_TAG, "", 0);
                for (size_t i = 0; i < n; i++)
                        hash_item(md, in[i].name, in[i].data, in[i].len);
                ok = EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == 32;
        }
        EVP_MD_CTX_free(md);
        if (!ok)
                return -EIO;
        for (unsigned i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        return 0;
}

static int add_entry(struct archive *a, const char *name, mode_t type, mode_t perm, dev_t rdev,
                     const void *data, size_t len, int64_t ino)
{
        struct archive_entry *e = archive_entry_new();
        int r = 0;

        if (!e)
                return -ENOMEM;
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, perm);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        archive_entry_set_nlink(e, type == AE_IFDIR ? 2 : 1);
        archive_entry_set_ino64(e, ino);
        archive_entry_set_mtime(e, 0, 0);
        if (type == AE_IFCHR)
                archive_entry_set_rdev(e, rdev);
        archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)len : 0);
        if (archive_write_header(a, e) != ARCHIVE_OK)
                r = -EIO;
        else if (type == AE_IFREG && len > 0 && archive_write_data(a, data, len) != (la_ssize_t)len)
                r = -EIO;
        archive_entry_free(e);
        return r;
}

static int write_cpio(int fd, const struct input *in, size_t n, const char *tmp_path, struct moat_error **err)
{
        static const char *const dirs[] = { "dev", "proc", "sys", "lower", "rw", "newroot", "modules" };
        struct archive *a = archive_write_new();
        int64_t ino = 1;
        int r = 0;

        if (!a)
                return -ENOMEM;
        if (archive_write_set_format_cpio_newc(a) != ARCHIVE_OK ||
            archive_write_add_filter_none(a) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
            archive_write_open_fd(a, fd) != ARCHIVE_OK) {
                r = moat_error_input(err, -EIO, "cannot write the initramfs '%s': %s", tmp_path,
                                     archive_error_string(a) ?: "libarchive failed");
                goto out;
        }
        for (size_t i = 0; i < ARRAY_SIZE(dirs) && r >= 0; i++)
                r = add_entry(a, dirs[i], AE_IFDIR, 0755, 0, NULL, 0, ino++);
        if (r >= 0)
                r = add_entry(a, "dev/console", AE_IFCHR, 0600, makedev(5, 1), NULL, 0, ino++);
        for (size_t i = 0; i < n && r >= 0; i++)
                r = add_entry(a, in[i].name, AE_IFREG, in[i].mode, 0, in[i].data, in[i].len, ino++);
        if (r >= 0 && archive_write_close(a) != ARCHIVE_OK)
                r = -EIO;
        if (r < 0)
                r = moat_error_input(err, r, "cannot write the initramfs '%s': %s", tmp_path,
                                     archive_error_string(a) ?: "libarchive failed");
out:
        archive_write_free(a);
        return r;
}

/* Each module of list as modules/<basename>, and order_name listing them in load order. */
static int add_modules(struct input *in, size_t *n, char *const *list, const char *order_name,
                       struct moat_error **err)
{
        _cleanup_free_ char *order = NULL;
        size_t order_len = 0;
        FILE *of = open_memstream(&order, &order_len);
        int r = 0;

        if (!of)
                return -ENOMEM;
        for (size_t i = 0; list && list[i] && r >= 0; i++) {
                const char *base = strrchr(list[i], '/');
                _cleanup_free_ char *name = NULL;

                base = base ? base + 1 : list[i];
                if (!*base || STREQ(base, "order") || STREQ(base, "net")) {
                        r = moat_error_input(err, -EINVAL, "bad module path '%s'", list[i]);
                        break;
                }
                if (asprintf(&name, "modules/%s", base) < 0) {
                        r = -ENOMEM;
                        break;
                }
                for (size_t j = 1; j < *n; j++)
                        if (STREQ(in[j].name, name))
                                r = moat_error_input(err, -EEXIST, "two modules named '%s' ('%s')", base, list[i]);
                if (r >= 0)
                        r = load_file(list[i], &in[(*n)++], name, 0644, err);
                if (r >= 0)
                        fprintf(of, "/%s\n", name);
        }
        if (fclose(of) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0)
                return r;
        in[*n].name = strdup(order_name);
        if (!in[*n].name)
                return -ENOMEM;
        in[*n].data = TAKE_PTR(order);
        in[*n].len = order_len;
        in[(*n)++].mode = 0644;
        return 0;
}

int moat_vm_initramfs(const char *cache_dir, const char *init_path, const struct moat_vm_kernel *k,
                      char **out_path, struct moat_error **err)
{
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t nmod = (k && k->modules ? strv_length(k->modules) : 0) + (k && k->net_modules ? strv_length(k->net_modules) : 0),
               n = 0;
        struct input *in = NULL;
        char hex[65];
        struct stat st;
        int r;

        *out_path = NULL;
        /* init, the modules, /modules/order, the network's modules, /modules/net */
        in = calloc(nmod + 3, sizeof(*in));
        if (!in)
                return -ENOMEM;
        r = load_file(init_path, &in[n++], "init", 0755, err);
        if (r < 0)
                goto out;
        r = add_modules(in, &n, k ? k->modules : NULL, "modules/order", err);
        if (r < 0)
                goto out;
        r = add_modules(in, &n, k ? k->net_modules : NULL, "modules/net", err);
        if (r < 0)
                goto out;

        r = hash_inputs(in, n, hex);
        if (r < 0)
                goto out;
        r = mkdir_p(cache_dir, 0700);
        if (r < 0) {
                r = moat_error_set(err, r, "cannot create the cache directory '%s'", cache_dir);
                goto out;
        }
        if (asprintf(&path, "%s/initramfs-%s.cpio", cache_dir, hex) < 0) {
                path = NULL;
                r = -ENOMEM;
                goto out;
        }
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
                *out_path = TAKE_PTR(path);     /* cache hit */
                r = 0;
                goto out;
        }
        if (asprintf(&tmp, "%s/.initramfs-%s.XXXXXX", cache_dir, hex) < 0) {
                tmp = NULL;
                r = -ENOMEM;
                goto out;
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = moat_error_set(err, errno, "cannot create a file in '%s'", cache_dir);
                goto out;
        }
        r = write_cpio(fd, in, n, tmp, err);
        if (r >= 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
                r = moat_error_set(err, errno, "cannot write '%s'", tmp);
        if (r >= 0 && rename(tmp, path) < 0)
                r = moat_error_set(err, errno, "cannot rename '%s' to '%s'", tmp, path);
        if (r < 0) {
                unlink(tmp);
                goto out;
        }
        *out_path = TAKE_PTR(path);
        r = 0;
out:
        inputs_free(in, nmod + 3);     /* calloc'd: unused entries are empty */
        return r;
}
