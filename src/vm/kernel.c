/* SPDX-License-Identifier: Apache-2.0 */
#include "vm/kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"

#define HOWTO "(get one with scripts/vm-kernel.sh [DIR], or set $MOAT_VM_KERNEL)"
#define MAX_MODULES_FILE (64u << 10)

void moat_vm_kernel_free(struct moat_vm_kernel *k)
{
        if (!k)
                return;
        free(k->dir);
        free(k->version);
        free(k->vmlinux);
        strv_free(k->modules);
        strv_free(k->net_modules);
        free(k);
}

static int check_elf(const char *path, struct moat_error **err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        unsigned char magic[4];
        struct stat st;

        if (fd < 0)
                return moat_error_set(err, errno, "no guest kernel '%s' " HOWTO, path);
        if (fstat(fd, &st) < 0)
                return moat_error_set(err, errno, "cannot stat '%s'", path);
        if (!S_ISREG(st.st_mode))
                return moat_error_input(err, -EINVAL, "guest kernel '%s' is not a regular file " HOWTO, path);
        if (read_all(fd, magic, sizeof(magic)) != (ssize_t)sizeof(magic) || memcmp(magic, "\177ELF", 4) != 0)
                return moat_error_input(err, -ENOEXEC,
                                        "guest kernel '%s' is not an uncompressed ELF vmlinux " HOWTO, path);
        return 0;
}

/* <dir>/<name> into *out; a missing optional list is NULL, an empty list (a kernel with
 * everything built in, scripts/vm-kernel-minimal.sh) an empty vector. */
static int read_modules(struct moat_vm_kernel *k, const char *name, bool optional, char ***out,
                        struct moat_error **err)
{
        _cleanup_free_ char *list = NULL, *path = NULL;
        size_t len = 0;
        int r;

        *out = calloc(1, sizeof(char *));
        if (!*out || asprintf(&path, "%s/%s", k->dir, name) < 0)
                return -ENOMEM;
        r = read_file_at(AT_FDCWD, path, &list, &len);
        if (r == -ENOENT && optional) {
                free(*out);
                *out = NULL;
                return 0;
        }
        if (r < 0)
                return moat_error_set(err, r, "cannot read the module list '%s' " HOWTO, path);
        if (len > MAX_MODULES_FILE)
                return moat_error_input(err, -EFBIG, "module list '%s' is too big", path);
        for (char *save = NULL, *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                _cleanup_free_ char *abs = NULL;
                struct stat st;

                line += strspn(line, " \t");
                if (!*line || *line == '#')
                        continue;
                if (*line == '/' || strstr(line, ".."))
                        return moat_error_input(err, -EINVAL, "module list '%s': '%s' is not a path inside '%s'",
                                                path, line, k->dir);
                if (asprintf(&abs, "%s/%s", k->dir, line) < 0)
                        return -ENOMEM;
                if (stat(abs, &st) < 0)
                        return moat_error_set(err, errno, "module list '%s': cannot find '%s' " HOWTO, path, abs);
                if (!S_ISREG(st.st_mode))
                        return moat_error_input(err, -EINVAL, "module list '%s': '%s' is not a file", path, abs);
                if (strv_push(out, abs) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int moat_vm_kernel_find(const char *dir, struct moat_vm_kernel **out, struct moat_error **err)
{
        _cleanup_vm_kernel_ struct moat_vm_kernel *k = NULL;
        char *vmlinux = NULL;
        const char *base;
        int r;

        *out = NULL;
        if (!dir || !*dir) {
                dir = getenv("MOAT_VM_KERNEL");
                if (!dir || !*dir)
                        dir = MOAT_VM_KERNEL_DEFAULT;
        }
        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->dir = realpath(dir, NULL);
        if (!k->dir) {
                if (errno == ENOMEM)
                        return -ENOMEM;
                return moat_error_set(err, errno, "no guest kernel in '%s' " HOWTO, dir);
        }
        base = strrchr(k->dir, '/');
        k->version = strdup(base && base[1] ? base + 1 : k->dir);
        if (!k->version || asprintf(&vmlinux, "%s/vmlinux", k->dir) < 0)
                return -ENOMEM;
        k->vmlinux = vmlinux;
        r = check_elf(k->vmlinux, err);
        if (r < 0)
                return r;
        r = read_modules(k, "moat-modules", false, &k->modules, err);
        if (r < 0)
                return r;
        r = read_modules(k, "moat-modules-net", true, &k->net_modules, err);
        if (r < 0)
                return r;
        *out = TAKE_PTR(k);
        return 0;
}
