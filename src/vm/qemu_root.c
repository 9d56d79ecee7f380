/* SPDX-License-Identifier: Apache-2.0 */
/* QEMU's root: a tmpfs holding only what QEMU opens (vm/qemu_root.h). */
#include "vm/qemu_root.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "vm/qemu.h"

/* Where the new root is mounted before the pivot (in QEMU's own mount namespace: the sources
 * are cloned with open_tree first, so whatever this hides does not matter). */
#define ROOT_AT "/tmp"

/* The merged-/usr names at /: copied as symlinks (or bound read-only when real directories). */
static const char *const top_names[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };

static bool is_top_link(char *const *links, const char *rel)
{
        for (size_t i = 0; links && links[i] && links[i + 1]; i += 2) {
                size_t n = strlen(links[i]);
                if (strncmp(rel, links[i], n) == 0 && rel[n] == '/')
                        return true;
        }
        return false;
}

enum { RO = 0, RW = 1, DEV = 2, EXEC = 4 };

static int add_ent(struct moat_vm_qemu_root *r, const char *path, const char *what, int flags,
                   struct moat_error **err)
{
        bool rw = flags & (RW | DEV), dev = flags & DEV;
        _cleanup_free_ char *abs = NULL;
        struct stat st;

        if (!path)
                return 0;
        if (path[0] != '/') {
                _cleanup_free_ char *cwd = getcwd(NULL, 0);
                if (!cwd || asprintf(&abs, "%s/%s", STREQ(cwd, "/") ? "" : cwd, path) < 0)
                        return -ENOMEM;
                if (!r->cwd)
                        r->cwd = TAKE_PTR(cwd);
        } else if (!(abs = strdup(path)))
                return -ENOMEM;
        if (stat(abs, &st) < 0)
                return moat_error_set(err, errno, "QEMU's root: %s '%s'", what, abs);
        /* read-only under /usr (or a copied /lib -> usr/lib ...): visible through the /usr bind */
        if (!rw && !dev && (strncmp(abs, "/usr/", 5) == 0 || is_top_link(r->links, abs + 1)))
                return 0;
        for (size_t i = 0; i < r->n; i++)
                if (STREQ(r->ents[i].path, abs) && r->ents[i].rw == rw)
                        return 0;
        struct moat_vm_qemu_root_ent *e = reallocarray(r->ents, r->n + 1, sizeof *e);
        if (!e)
                return -ENOMEM;
        r->ents = e;
        e = &r->ents[r->n];
        *e = (struct moat_vm_qemu_root_ent){ .path = TAKE_PTR(abs), .what = what, .dir = S_ISDIR(st.st_mode),
                                             .rw = rw, .dev = dev, .exec = flags & EXEC,
                                             .fd = -EBADF };
        r->n++;
        /* its parents, relative to the new root, parents first */
        _cleanup_free_ char *rel = strdup(e->path + 1);
        if (!rel)
                return -ENOMEM;
        for (char *s = strchr(rel, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                if (*rel && !strv_contains(r->dirs, rel) && strv_push(&r->dirs, rel) < 0)
                        return -ENOMEM;
                *s = '/';
        }
        return 0;
}

int moat_vm_qemu_root_prepare(const struct moat_vm_qemu_opts *o, const char *exe, struct moat_vm_qemu_root *r,
                              struct moat_error **err)
{
        const char *off = getenv("MOAT_VM_NO_ROOT_CONFINE");
        int k;

        *r = (struct moat_vm_qemu_root){ 0 };
        if (off && STREQ(off, "1")) {
                moat_debug("vm: $MOAT_VM_NO_ROOT_CONFINE=1: QEMU sees the host's files");
                return 0;
        }
        r->enabled = true;
        r->dirs = calloc(1, sizeof(char *));
        r->links = calloc(1, sizeof(char *));
        if (!r->dirs || !r->links)
                return -ENOMEM;
        for (size_t i = 0; i < ARRAY_SIZE(top_names); i++) {
                char p[32], target[256];
                struct stat st;
                ssize_t n;

                snprintf(p, sizeof p, "/%s", top_names[i]);
                if (lstat(p, &st) < 0)
                        continue;
                if (S_ISLNK(st.st_mode)) {
                        n = readlink(p, target, sizeof target - 1);
                        if (n <= 0)
                                continue;
                        target[n] = 0;
                        if (strv_push(&r->links, top_names[i]) < 0 || strv_push(&r->links, target) < 0)
                                return -ENOMEM;
                }
        }
        if ((k = add_ent(r, "/usr", "the host's", RO | EXEC, err)) < 0)
                return k;
        for (size_t i = 0; i < ARRAY_SIZE(top_names); i++) {
                char p[32];
                struct stat st;

                snprintf(p, sizeof p, "/%s", top_names[i]);
                if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && (k = add_ent(r, p, "the host's", RO | EXEC, err)) < 0)
                        return k;
        }
        /* the loader's cache: without it every library is searched for in ~20 directories, and
         * one in a directory only /etc/ld.so.conf names is not found */
        if (access("/etc/ld.so.cache", F_OK) == 0 && (k = add_ent(r, "/etc/ld.so.cache", "the loader's cache", RO, err)) < 0)
                return k;
        if ((k = add_ent(r, "/dev/null", "the device", DEV, err)) < 0 ||
            (k = add_ent(r, "/dev/zero", "the device", DEV, err)) < 0 ||
            (k = add_ent(r, "/dev/urandom", "the device", DEV, err)) < 0 ||
            (o->accel == MOAT_VM_ACCEL_KVM && (k = add_ent(r, "/dev/kvm", "the device", DEV, err)) < 0) ||
            (k = add_ent(r, exe, "the VMM", RO | EXEC, err)) < 0 ||
            (k = add_ent(r, o->kernel, "the guest kernel", RO, err)) < 0 ||
            (k = add_ent(r, o->initrd, "the initramfs", RO, err)) < 0 ||
            (k = add_ent(r, o->root_disk, "the root disk", RO, err)) < 0 ||
            (k = add_ent(r, o->rw_disk, "the writable disk", RW, err)) < 0 ||
            (k = add_ent(r, o->console_log, "the console log", RW, err)) < 0 ||
            (k = add_ent(r, o->ctl_socket, "the control socket", RO, err)) < 0 ||
            (k = add_ent(r, o->fs_socket, "the virtiofs socket", RO, err)) < 0)
                return k;
        return 0;
}

/* ---- in the forked child: syscalls only ---- */

int moat_vm_qemu_root_enter(struct moat_vm_qemu_root *r, int *step, int *item)
{
        int rootfd;

        *item = -1;
        for (size_t i = 0; i < r->n; i++) {
                struct moat_vm_qemu_root_ent *e = &r->ents[i];
                struct mount_attr a = { .attr_set = (e->rw || e->dev ? 0 : MOUNT_ATTR_RDONLY) | MOUNT_ATTR_NOSUID |
                                                    (e->dev ? 0 : MOUNT_ATTR_NODEV) | (e->exec ? 0 : MOUNT_ATTR_NOEXEC) };

                *item = (int)i;
                *step = MOAT_VM_ROOT_STEP_CLONE;
                e->fd = open_tree(AT_FDCWD, e->path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (e->dir ? AT_RECURSIVE : 0));
                if (e->fd < 0)
                        return -1;
                *step = MOAT_VM_ROOT_STEP_ATTR;
                if (mount_setattr(e->fd, "", AT_EMPTY_PATH | (e->dir ? AT_RECURSIVE : 0), &a, sizeof a) < 0)
                        return -1;
        }
        *item = -1;
        *step = MOAT_VM_ROOT_STEP_TMPFS;
        if (mount("moat-qemu-root", ROOT_AT, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "mode=0755,size=64k,nr_inodes=4096") < 0)
                return -1;
        rootfd = open(ROOT_AT, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return -1;
        *step = MOAT_VM_ROOT_STEP_LINK;
        for (size_t i = 0; r->links[i] && r->links[i + 1]; i += 2)
                if (symlinkat(r->links[i + 1], rootfd, r->links[i]) < 0)
                        return -1;
        *step = MOAT_VM_ROOT_STEP_MKDIR;
        for (size_t i = 0; r->dirs[i]; i++)
                if (mkdirat(rootfd, r->dirs[i], 0755) < 0 && errno != EEXIST)
                        return -1;
        for (size_t i = 0; i < r->n; i++) {
                struct moat_vm_qemu_root_ent *e = &r->ents[i];
                const char *rel = e->path + 1;

                *item = (int)i;
                *step = MOAT_VM_ROOT_STEP_POINT;
                if (e->dir) {
                        if (mkdirat(rootfd, rel, 0755) < 0 && errno != EEXIST)
                                return -1;
                } else {
                        int fd = openat(rootfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
                        if (fd < 0 && errno != EEXIST)
                                return -1;
                        if (fd >= 0)
                                close(fd);
                }
                *step = MOAT_VM_ROOT_STEP_MOVE;
                if (move_mount(e->fd, "", rootfd, rel, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return -1;
                close(e->fd);
                e->fd = -EBADF;
        }
        *item = -1;
        *step = MOAT_VM_ROOT_STEP_SEAL;
        if (mount(NULL, ROOT_AT, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return -1;
        *step = MOAT_VM_ROOT_STEP_PIVOT;
        if (fchdir(rootfd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
            chdir("/") < 0)
                return -1;
        close(rootfd);
        /* relative paths in the argv: from the same directory (made in the root as their parent) */
        if (r->cwd && chdir(r->cwd) < 0)
                return -1;
        return 0;
}

const char *moat_vm_qemu_root_step_name(int step)
{
        switch (step) {
        case MOAT_VM_ROOT_STEP_SETUP: return "cannot confine it (namespaces, capabilities)";
        case MOAT_VM_ROOT_STEP_CLONE: return "cannot clone the mount of";
        case MOAT_VM_ROOT_STEP_ATTR: return "cannot make read-only/nosuid the mount of";
        case MOAT_VM_ROOT_STEP_TMPFS: return "cannot mount the tmpfs of its root";
        case MOAT_VM_ROOT_STEP_MKDIR: return "cannot make the directories of its root";
        case MOAT_VM_ROOT_STEP_LINK: return "cannot make /bin, /lib... in its root";
        case MOAT_VM_ROOT_STEP_POINT: return "cannot make the mount point in its root for";
        case MOAT_VM_ROOT_STEP_MOVE: return "cannot bind into its root";
        case MOAT_VM_ROOT_STEP_SEAL: return "cannot make its root read-only";
        case MOAT_VM_ROOT_STEP_PIVOT: return "cannot pivot into its root";
        case MOAT_VM_ROOT_STEP_EXEC: return "cannot run it";
        default: return "cannot start it";
        }
}

void moat_vm_qemu_root_free(struct moat_vm_qemu_root *r)
{
        for (size_t i = 0; i < r->n; i++) {
                free(r->ents[i].path);
                if (r->ents[i].fd >= 0)
                        close(r->ents[i].fd);
        }
        free(r->ents);
        strv_free(r->dirs);
        strv_free(r->links);
        free(r->cwd);
        *r = (struct moat_vm_qemu_root){ 0 };
}
