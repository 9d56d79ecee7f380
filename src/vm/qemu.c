/* SPDX-License-Identifier: Apache-2.0 */
#include "vm/qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/mount.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include <sys/types.h>
/* proto.h (not ours) has a nested comment opener (-Wcomment) and uses ssize_t
 * without <sys/types.h>: tolerate both until it is fixed. */
#include "vm/proto.h"
#include "vm/qemu_root.h"

#define DEFAULT_QEMU "qemu-system-x86_64"
#define DEFAULT_MEM_MIB 256u
#define MAX_VCPUS 256u

/* ---- accelerator ---- */

const char *moat_vm_accel_name(enum moat_vm_accel a)
{
        return a == MOAT_VM_ACCEL_KVM ? "kvm" : "tcg";
}

static bool exists_at(const char *root, const char *path)
{
        _cleanup_free_ char *p = NULL;

        if (asprintf(&p, "%s%s", root, path) < 0)
                return false;
        return access(p, F_OK) == 0;
}

static int set_why(char **why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int set_why(char **why, const char *fmt, ...)
{
        va_list ap;
        int r;

        if (!why)
                return 0;
        va_start(ap, fmt);
        r = vasprintf(why, fmt, ap);
        va_end(ap);
        if (r < 0) {
                *why = NULL;
                return -ENOMEM;
        }
        return 0;
}

int moat_vm_accel_detect_at(const char *root, const char *force, enum moat_vm_accel *out, char **why)
{
        _cleanup_free_ char *dev = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *mod;
        int api;

        if (why)
                *why = NULL;
        *out = MOAT_VM_ACCEL_TCG;
        root = root ? root : "";
        if (force && *force) {
                if (STREQ(force, "kvm"))
                        *out = MOAT_VM_ACCEL_KVM;
                else if (!STREQ(force, "tcg")) {
                        set_why(why, "$MOAT_VM_ACCEL='%s': expected 'kvm' or 'tcg'", force);
                        return -EINVAL;
                }
                return set_why(why, "forced by $MOAT_VM_ACCEL=%s", force);
        }
        if (exists_at(root, "/sys/module/kvm_intel"))
                mod = "kvm_intel";
        else if (exists_at(root, "/sys/module/kvm_amd"))
                mod = "kvm_amd";
        else if (exists_at(root, "/sys/module/kvm_pvm"))
                return set_why(why, "/dev/kvm is kvm_pvm (PVM), which cannot boot a stock kernel: using TCG");
        else
                return set_why(why, "neither kvm_intel nor kvm_amd is loaded: using TCG");
        if (asprintf(&dev, "%s/dev/kvm", root) < 0)
                return -ENOMEM;
        fd = open(dev, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return set_why(why, "%s is loaded but '%s' does not open (%s): using TCG", mod, dev,
                               strerror(errno));
        api = ioctl(fd, KVM_GET_API_VERSION, 0);
        if (api != KVM_API_VERSION)
                return set_why(why, "%s is loaded but KVM_GET_API_VERSION on '%s' gives %d (%s): using TCG", mod,
                               dev, api, api < 0 ? strerror(errno) : "not 12");
        *out = MOAT_VM_ACCEL_KVM;
        return set_why(why, "%s, '%s' API %d", mod, dev, api);
}

int moat_vm_accel_detect(enum moat_vm_accel *out, char **why)
{
        return moat_vm_accel_detect_at(NULL, getenv("MOAT_VM_ACCEL"), out, why);
}

/* ---- TSC ---- */

static int parse_ghz(const char *s, unsigned long *khz)
{
        /* "2.10GHz": integer part, up to 6 decimals */
        unsigned long whole = 0, frac = 0, scale = 1000000;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        for (; *s >= '0' && *s <= '9'; s++)
                whole = whole * 10 + (unsigned long)(*s - '0');
        if (*s == '.')
                for (s++; *s >= '0' && *s <= '9'; s++)
                        if (scale > 1) {
                                scale /= 10;
                                frac += (unsigned long)(*s - '0') * scale;
                        }
        if (strncmp(s, "GHz", 3) != 0 || whole > 100)
                return -EINVAL;
        *khz = whole * 1000000 + frac;
        return 0;
}

int moat_vm_host_tsc_khz(const char *root, unsigned long *khz)
{
        _cleanup_free_ char *p = NULL, *buf = NULL;
        unsigned long mhz_khz = 0;
        size_t len;
        uint64_t v;

        root = root ? root : "";
        if (asprintf(&p, "%s/sys/devices/system/cpu/cpu0/tsc_freq_khz", root) < 0)
                return -ENOMEM;
        if (read_file_at(AT_FDCWD, p, &buf, &len) >= 0) {
                buf[strcspn(buf, "\n")] = 0;
                if (parse_u64(buf, &v) >= 0 && v > 0 && v < 100000000) {
                        *khz = (unsigned long)v;
                        return 0;
                }
        }
        free(TAKE_PTR(buf));
        free(TAKE_PTR(p));
        if (asprintf(&p, "%s/proc/cpuinfo", root) < 0)
                return -ENOMEM;
        if (read_file_at(AT_FDCWD, p, &buf, &len) < 0)
                return -ENOENT;
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (!*line)
                        break; /* the first CPU only */
                if (strncmp(line, "model name", 10) == 0) {
                        const char *at = strrchr(line, '@');
                        unsigned long k;

                        if (at && parse_ghz(at + 1 + strspn(at + 1, " "), &k) >= 0 && k > 0) {
                                *khz = k;
                                return 0;
                        }
                } else if (strncmp(line, "cpu MHz", 7) == 0 && !mhz_khz) {
                        const char *c = strchr(line, ':');
                        char *end = NULL;
                        double mhz;

                        if (c) {
                                errno = 0;
                                mhz = strtod(c + 1, &end);
                                if (!errno && end != c + 1 && mhz > 1 && mhz < 100000)
                                        mhz_khz = (unsigned long)(mhz * 1000 + 0.5);
                        }
                }
        }
        if (!mhz_khz)
                return -ENOENT;
        *khz = mhz_khz;
        return 0;
}

/* ---- argv ---- */

/* QEMU's option syntax: a comma in a value is written ",,". */
static char *qopt_escape(const char *s)
{
        size_t n = strlen(s), commas = 0;
        char *r, *w;

        for (const char *c = s; *c; c++)
                commas += *c == ',';
        r = malloc(n + commas + 1);
        if (!r)
                return NULL;
        w = r;
        for (const char *c = s; *c; c++) {
                *w++ = *c;
                if (*c == ',')
                        *w++ = ',';
        }
        *w = 0;
        return r;
}

static int push(char ***v, const char *s)
{
        return strv_push(v, s);
}

static int pushf(char ***v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pushf(char ***v, const char *fmt, ...)
{
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0) {
                s = NULL;
                return -ENOMEM;
        }
        return strv_push(v, s);
}

static int push_disk(char ***v, const char *id, const char *path, bool ro)
{
        _cleanup_free_ char *e = qopt_escape(path);

        if (!e)
                return -ENOMEM;
        if (push(v, "-blockdev") < 0 ||
            pushf(v, "node-name=%s,driver=raw,read-only=%s,file.driver=file,file.filename=%s%s", id,
                  ro ? "on" : "off", e, ro ? "" : ",discard=unmap") < 0 ||
            push(v, "-device") < 0 || pushf(v, "virtio-blk-pci,drive=%s,id=%s-dev", id, id) < 0)
                return -ENOMEM;
        return 0;
}

/* Kernel command line: hvc0 console, no reboot on panic (QEMU exits: -no-reboot), and what
 * saves time at boot (vmproto/NOTES.md).  Under TCG the guest TSC runs at the host's rate
 * and microvm cannot calibrate it: tsc_early_khz is required. */
static int build_cmdline(const struct moat_vm_qemu_opts *o, char **out, struct moat_error **err)
{
        _cleanup_free_ char *tsc = NULL;
        const char *extra = o->cmdline_extra ? o->cmdline_extra : "";
        unsigned long khz = 0;

        if (o->accel == MOAT_VM_ACCEL_TCG) {
                if (strstr(extra, "tsc_early_khz="))
                        tsc = strdup(" tsc=reliable");
                else if (moat_vm_host_tsc_khz(NULL, &khz) >= 0)
                        (void)!asprintf(&tsc, " tsc_early_khz=%lu tsc=reliable", khz);
                else
                        return moat_error_input(err, -ENOENT,
                                                "cannot find the host's TSC frequency (needed under TCG): "
                                                "pass tsc_early_khz=<kHz> in the kernel command line");
                if (!tsc)
                        return -ENOMEM;
        }
        if (asprintf(out,
                     "console=hvc0 quiet panic=-1 no_timer_check cryptomgr.notests "
                     "i8042.noaux i8042.nokbd i8042.nopnp random.trust_cpu=on%s%s%s%s",
                     tsc ? tsc : "",
                     /* TCG does not speculate like hardware: mitigations only cost time there */
                     o->accel == MOAT_VM_ACCEL_TCG ? " mitigations=off" : "",
                     *extra ? " " : "", extra) < 0) {
                *out = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* Shares: vhost-user-fs wants the guest's memory shareable with virtiofsd (a memfd). */
static int push_fs(char ***v, const struct moat_vm_qemu_opts *o, unsigned mem, struct moat_error **err)
{
        _cleanup_free_ char *sock = qopt_escape(o->fs_socket), *tag = NULL;

        if (!o->fs_tag || !*o->fs_tag || strlen(o->fs_tag) > 36 || strchr(o->fs_tag, ','))
                return moat_error_input(err, -EINVAL, "virtiofs tag '%s': 1..36 characters, no comma",
                                        o->fs_tag ? o->fs_tag : "");
        tag = strdup(o->fs_tag);
        if (!sock || !tag)
                return -ENOMEM;
        if (push(v, "-object") < 0 || pushf(v, "memory-backend-memfd,id=mem,size=%uM,share=on", mem) < 0 ||
            push(v, "-chardev") < 0 || pushf(v, "socket,id=vfs,path=%s", sock) < 0 ||
            push(v, "-device") < 0 || pushf(v, "vhost-user-fs-pci,chardev=vfs,tag=%s,id=vfs0", tag) < 0)
                return -ENOMEM;
        return 0;
}

int moat_vm_qemu_argv(const struct moat_vm_qemu_opts *o, char ***argv, struct moat_error **err)
{
        _cleanup_strv_ char **v = NULL;
        _cleanup_free_ char *cmdline = NULL, *sock = NULL, *log = NULL;
        unsigned vcpus = o->vcpus ? o->vcpus : 1, mem = o->mem_mib ? o->mem_mib : DEFAULT_MEM_MIB;
        int r;

        *argv = NULL;
        if (!o->kernel || !*o->kernel)
                return moat_error_input(err, -EINVAL, "no guest kernel given");
        if (!o->ctl_socket || !*o->ctl_socket)
                return moat_error_input(err, -EINVAL, "no control socket given");
        if (vcpus > MAX_VCPUS)
                return moat_error_input(err, -EINVAL, "%u vcpus: at most %u", vcpus, MAX_VCPUS);
        if (mem < 64 || mem > (1u << 20))
                return moat_error_input(err, -EINVAL, "%u MiB of guest memory: expected 64..1048576", mem);
        if (o->rw_disk && !o->root_disk)
                return moat_error_input(err, -EINVAL, "a writable disk ('%s') needs a root disk", o->rw_disk);
        r = build_cmdline(o, &cmdline, err);
        if (r < 0)
                return r;
        sock = qopt_escape(o->ctl_socket);
        log = o->console_log ? qopt_escape(o->console_log) : strdup("");
        v = calloc(1, sizeof(char *));
        if (!v || !sock || !log)
                return -ENOMEM;

        if (push(&v, o->qemu && *o->qemu ? o->qemu : DEFAULT_QEMU) < 0 ||
            push(&v, "-nodefaults") < 0 || push(&v, "-no-user-config") < 0 || push(&v, "-nographic") < 0 ||
            push(&v, "-no-reboot") < 0 ||
            push(&v, "-M") < 0 ||
            push(&v, o->fs_socket ? "microvm,x-option-roms=off,isa-serial=off,pcie=on,rtc=on,memory-backend=mem"
                                  : "microvm,x-option-roms=off,isa-serial=off,pcie=on,rtc=on") < 0 ||
            push(&v, "-accel") < 0 ||
            /* tb-size=32: the translation cache at 32 MiB instead of 1 GiB saves ~25 MB of RSS, no slower */
            push(&v, o->accel == MOAT_VM_ACCEL_KVM ? "kvm" : "tcg,tb-size=32") < 0 ||
            push(&v, "-cpu") < 0 || push(&v, o->accel == MOAT_VM_ACCEL_KVM ? "host" : "max") < 0 ||
            push(&v, "-smp") < 0 || pushf(&v, "%u", vcpus) < 0 ||
            push(&v, "-m") < 0 || pushf(&v, "%u", mem) < 0 ||
            push(&v, "-kernel") < 0 || push(&v, o->kernel) < 0)
                return -ENOMEM;
        if (o->initrd && (push(&v, "-initrd") < 0 || push(&v, o->initrd) < 0))
                return -ENOMEM;
        if (push(&v, "-append") < 0 || push(&v, cmdline) < 0 ||
            /* QEMU's own seccomp filter: no exec, no privilege changes, no obsolete syscalls */
            push(&v, "-sandbox") < 0 ||
            push(&v, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny") < 0 ||
            push(&v, "-device") < 0 || push(&v, "virtio-serial-pci,id=vser0") < 0 ||
            push(&v, "-chardev") < 0 ||
            (o->console_log ? pushf(&v, "file,id=con,path=%s,append=on", log) : push(&v, "null,id=con")) < 0 ||
            push(&v, "-device") < 0 || push(&v, "virtconsole,bus=vser0.0,chardev=con,id=con0") < 0 ||
            push(&v, "-chardev") < 0 || pushf(&v, "socket,id=ctl,path=%s", sock) < 0 ||
            push(&v, "-device") < 0 ||
            pushf(&v, "virtserialport,bus=vser0.0,chardev=ctl,name=%s,id=ctl0", MOAT_VM_PORT_NAME) < 0)
                return -ENOMEM;
        if (o->root_disk && push_disk(&v, "vda", o->root_disk, true) < 0)
                return -ENOMEM;
        if (o->rw_disk && push_disk(&v, "vdb", o->rw_disk, false) < 0)
                return -ENOMEM;
        if (o->net && (push(&v, "-netdev") < 0 || pushf(&v, "tap,id=net0,fd=%d", MOAT_VM_QEMU_TAP_FD) < 0 ||
                       push(&v, "-device") < 0 ||
                       pushf(&v, "virtio-net-pci,netdev=net0,id=net0-dev,mac=%02x:%02x:%02x:%02x:%02x:%02x", o->mac[0],
                             o->mac[1], o->mac[2], o->mac[3], o->mac[4], o->mac[5]) < 0))
                return -ENOMEM;
        if (o->fs_socket && (r = push_fs(&v, o, mem, err)) < 0)
                return r;
        *argv = TAKE_PTR(v);
        return 0;
}

/* ---- spawn ---- */

/* The executable: as given when it has a slash, else searched in $PATH (here, not in the child). */
static int find_exe(const char *name, char **out, struct moat_error **err)
{
        const char *path = getenv("PATH");
        _cleanup_free_ char *dup = NULL;

        if (strchr(name, '/')) {
                if (access(name, X_OK) < 0)
                        return moat_error_set(err, errno, "cannot run '%s'", name);
                *out = strdup(name);
                return *out ? 0 : -ENOMEM;
        }
        dup = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
        if (!dup)
                return -ENOMEM;
        for (char *save = NULL, *d = strtok_r(dup, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                _cleanup_free_ char *p = NULL;
                struct stat st;

                if (asprintf(&p, "%s/%s", d, name) < 0)
                        return -ENOMEM;
                if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0) {
                        *out = TAKE_PTR(p);
                        return 0;
                }
        }
        return moat_error_input(err, -ENOENT, "'%s' not found in $PATH (on Debian: apt-get install qemu-system-x86)",
                                name);
}

/* What the child reports on the error pipe when it does not get to QEMU. */
struct child_fail {
        int err;
        int step; /* MOAT_VM_ROOT_STEP_* */
        int item; /* the root's entry, or -1 */
};

/* In the forked child: async-signal-safe calls only. */
/* The VMM runs with as little as it needs: no network (its own empty network namespace: the
 * guest's network, when there is one, comes as an fd), its own IPC and UTS namespaces and a
 * mount namespace whose root is a tmpfs holding only its own files (vm/qemu_root.h), no
 * capability at all, and no_new_privs; on top of QEMU's own seccomp sandbox (-sandbox). */
static int confine(struct moat_vm_qemu_root *root, struct child_fail *f)
{
        f->step = MOAT_VM_ROOT_STEP_SETUP;
        if (unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS) < 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -1;
        if (root->enabled && moat_vm_qemu_root_enter(root, &f->step, &f->item) < 0)
                return -1;
        f->step = MOAT_VM_ROOT_STEP_SETUP;
        f->item = -1;
        for (int cap = 0; cap <= 63; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                        return -1;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -1;
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = { { 0 } };
        if (syscall(SYS_capset, &h, d) < 0)
                return -1;
        return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

__attribute__((noreturn)) static void child_exec(const char *exe, char **argv, int nullfd, int logfd, int errfd,
                                                 int tapfd, struct moat_vm_qemu_root *root)
{
        struct child_fail f = { .step = MOAT_VM_ROOT_STEP_SETUP, .item = -1 };

        /* the VMM does not outlive moat: a SIGKILLed moat takes its VM with it */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                goto fail;
        /* move everything above 0..3 first so the dup2s below cannot clobber a source */
        nullfd = fcntl(nullfd, F_DUPFD_CLOEXEC, 10);
        if (logfd >= 0)
                logfd = fcntl(logfd, F_DUPFD_CLOEXEC, 10);
        errfd = fcntl(errfd, F_DUPFD_CLOEXEC, 10);
        if (tapfd >= 0)
                tapfd = fcntl(tapfd, F_DUPFD_CLOEXEC, 10);
        if (nullfd < 0 || errfd < 0 || logfd < -1 || tapfd < -1)
                goto fail;
        if (dup2(nullfd, 0) < 0 || dup2(nullfd, 1) < 0 || (logfd >= 0 && dup2(logfd, 2) < 0) ||
            dup3(errfd, 3, O_CLOEXEC) < 0 || (tapfd >= 0 && dup2(tapfd, MOAT_VM_QEMU_TAP_FD) < 0))
                goto fail;
        if (tapfd < 0)
                close(MOAT_VM_QEMU_TAP_FD);
        if (close_fds_from(MOAT_VM_QEMU_TAP_FD + 1, NULL, 0) < 0)
                goto fail;
        errfd = 3;
        moat_signals_reset();
        if (confine(root, &f) < 0)
                goto fail;
        f.step = MOAT_VM_ROOT_STEP_EXEC;
        execv(exe, argv);
fail:
        f.err = errno;
        (void)!write(errfd, &f, sizeof(f));
        _exit(127);
}

int moat_vm_qemu_spawn(const struct moat_vm_qemu_opts *o, pid_t *pid_out, int *pidfd_out, struct moat_error **err)
{
        _cleanup_strv_ char **argv = NULL;
        _cleanup_free_ char *exe = NULL;
        _cleanup_close_ int nullfd = -EBADF, logfd = -EBADF, pidfd = -EBADF;
        int pipefd[2] = { -EBADF, -EBADF };
        struct child_fail f = { 0 };
        _cleanup_(moat_vm_qemu_root_free) struct moat_vm_qemu_root root = { 0 };
        _cleanup_pid_ pid_t pid = 0;
        ssize_t n;
        int r;

        *pid_out = 0;
        *pidfd_out = -EBADF;
        r = moat_vm_qemu_argv(o, &argv, err);
        if (r < 0)
                return r;
        r = find_exe(argv[0], &exe, err);
        if (r < 0)
                return r;
        nullfd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (nullfd < 0)
                return moat_error_set(err, errno, "cannot open '/dev/null'");
        if (o->console_log) {
                logfd = open(o->console_log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
                if (logfd < 0)
                        return moat_error_set(err, errno, "cannot open the console log '%s'", o->console_log);
        }
        r = moat_vm_qemu_root_prepare(o, exe, &root, err);
        if (r < 0)
                return r;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return moat_error_set(err, errno, "cannot create a pipe");
        pid = fork();
        if (pid < 0) {
                r = moat_error_set(err, errno, "cannot fork for '%s'", exe);
                close(pipefd[0]);
                close(pipefd[1]);
                return r;
        }
        if (pid == 0)
                child_exec(exe, argv, nullfd, logfd, pipefd[1], o->net ? o->tap_fd : -1, &root);
        close(pipefd[1]);
        do
                n = read(pipefd[0], &f, sizeof(f));
        while (n < 0 && errno == EINTR);
        close(pipefd[0]);
        if (n > 0 && n != sizeof(f))
                return moat_error_set(err, EIO, "cannot run '%s'", exe);
        if (n > 0 && f.item >= 0 && (size_t)f.item < root.n)
                return moat_error_set(err, f.err, "cannot run '%s' confined: %s %s '%s'", exe,
                                      moat_vm_qemu_root_step_name(f.step), root.ents[f.item].what,
                                      root.ents[f.item].path);
        if (n > 0 && f.step == MOAT_VM_ROOT_STEP_EXEC)
                return moat_error_set(err, f.err, "cannot run '%s'", exe);
        if (n > 0)
                return moat_error_set(err, f.err, "cannot run '%s' confined: %s", exe,
                                      moat_vm_qemu_root_step_name(f.step));
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
                return moat_error_set(err, errno, "pidfd_open(%d) for '%s'", (int)pid, exe);
        /* pidfd_open's fds are O_CLOEXEC already */
        moat_debug("vm: started %s as pid %d", exe, (int)pid);
        *pid_out = TAKE_PID(pid);
        *pidfd_out = TAKE_FD(pidfd);
        return 0;
}
