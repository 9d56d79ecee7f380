/* SPDX-License-Identifier: Apache-2.0 */
/* One VM from start to end (vm/vm.h): prepare (kernel, initramfs, disks, CONFIG), listen on
 * the channel's socket, start QEMU, then one poll loop relaying between the guest init and
 * the caller's stdio until QEMU is gone.  The guest is not trusted: frames are bounded by the
 * reader, every message is checked, and anything off ends the VM. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "net/tap.h"
#include "vm/config.h"
#include "vm/disk.h"
#include "vm/exec.h"
#include "vm/initramfs.h"
#include "vm/kernel.h"
#include "vm/proto.h"
#include "vm/qemu.h"
#include "vm/virtiofs.h"
#include "vm/rtface.h"
#include "vm/vm.h"

#define EXIT_GRACE_MS 10000 /* after EXIT, the guest powers off; after this, QEMU is killed */

struct vm {
        const struct moat_vm_run_opts *o;
        struct moat_vm_kernel *kernel;
        char *initrd, *root_disk, *rw_disk, *sock_path, *console;
        struct moat_vm_config cfg;
        struct moat_vm_vfsd vfsd; /* the shares' virtiofsd (pid 0: none) */
        int lfd, cfd, pidfd, sigfd, tapfd;
        pid_t qemu;
        struct moat_vm_reader rd;
        bool hello, started, exited, stdin_open;
        uint32_t pending_sig; /* a signal that came before the process ran: sent at STARTED */
        int status;
        int64_t exit_deadline;
        struct moat_vm_exec_host *exec; /* exec sessions (o->exec_socket) */
};

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *moat_vm_find_init(void)
{
        const char *e = getenv("MOAT_VMINIT");
        if (e && *e)
                return strdup(e);
        static const char *const names[] = { "moat-vminit", "guest/moat-vminit", NULL };
        return moat_self_sibling(names);
}

/* The console's last lines, for errors about a guest that did not come up. */
static char *console_tail(const char *path)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (!path || read_file_at(AT_FDCWD, path, &text, &len) < 0 || len == 0)
                return strdup("(no console output)");
        size_t start = len > 600 ? len - 600 : 0;
        char *out = strndup(text + start, len - start);
        for (char *c = out; c && *c; c++)
                if ((unsigned char)*c < 0x20 && *c != '\n')
                        *c = '?';
        return out;
}

/* ---------------------------------------------------------------- preparing */

static unsigned vcpus_of(const struct moat_spec *s)
{
        const struct moat_resources *r = &s->linux_.resources;
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned n = 1;
        if (r->cpu.has_quota && r->cpu.quota > 0) {
                uint64_t period = r->cpu.has_period && r->cpu.period ? r->cpu.period : 100000;
                n = (unsigned)(((uint64_t)r->cpu.quota + period - 1) / period);
        }
        if (cores > 0 && n > (unsigned)cores)
                n = (unsigned)cores;
        return n ? n : 1;
}

static unsigned mem_of(const struct moat_spec *s)
{
        const struct moat_resources *r = &s->linux_.resources;
        if (!r->memory.has_limit || r->memory.limit <= 0)
                return MOAT_VM_DEFAULT_MEM_MIB;
        uint64_t mib = (uint64_t)r->memory.limit >> 20;
        return mib < MOAT_VM_MIN_MEM_MIB ? MOAT_VM_MIN_MEM_MIB : (unsigned)mib;
}

unsigned moat_vm_mem_mib(const struct moat_spec *s)
{
        return mem_of(s);
}

static int listen_on(struct vm *v, struct moat_error **err)
{
        if (asprintf(&v->sock_path, "%s/vm.sock", v->o->state_dir) < 0)
                return -ENOMEM;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(v->sock_path) >= sizeof sa.sun_path)
                return moat_error_input(err, -ENAMETOOLONG, "'%s' is too long for a socket path", v->sock_path);
        strcpy(sa.sun_path, v->sock_path);
        unlink(v->sock_path);
        v->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (v->lfd < 0 || bind(v->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(v->lfd, 1) < 0)
                return moat_error_set(err, errno, "cannot listen on '%s'", v->sock_path);
        return 0;
}

static int prepare(struct vm *v, struct moat_error **err)
{
        const struct moat_vm_run_opts *o = v->o;
        const char *cache = o->cache_dir ? o->cache_dir : MOAT_VM_CACHE_DIR;
        int r = mkdir_p(cache, 0700);
        if (r < 0)
                return moat_error_set(err, -r, "cannot make '%s'", cache);
        if (!o->init_path)
                return moat_error_input(err, -ENOENT, "the guest init moat-vminit was not found (it is built next "
                                        "to moat; or set MOAT_VMINIT)");
        r = moat_vm_kernel_find(o->kernel_dir, &v->kernel, err);
        if (r < 0)
                return r;
        r = moat_vm_initramfs(cache, o->init_path, v->kernel, &v->initrd, err);
        if (r < 0)
                return r;
        r = moat_vm_config_build(o->spec, &v->cfg, err);
        if (r < 0)
                return r;
        if (v->cfg.net.present) {
                if (!v->kernel->net_modules) /* an empty list: virtio_net is built in */
                        return moat_error_input(err, -ENOENT, "the guest kernel in '%s' has no network module list "
                                                "(moat-modules-net): run scripts/vm-kernel.sh again", v->kernel->dir);
                r = moat_net_tap_attach(NULL, v->cfg.net.env, v->cfg.net.addr, &v->tapfd, NULL, err);
                if (r < 0)
                        return r;
        }
        r = moat_vm_shares_check(v->cfg.shares, v->cfg.n_shares, err);
        if (r < 0)
                return r;
        /* with a key (an image) the root disk is cached; without, it is the VM's own */
        r = moat_vm_disk_root(o->disk_key ? cache : o->state_dir, o->disk_key ? o->disk_key : "root",
                              o->spec->root.path, &v->root_disk, err);
        if (r < 0)
                return r;
        if (asprintf(&v->rw_disk, "%s/rw.ext4", o->state_dir) < 0 ||
            asprintf(&v->console, "%s/console.log", o->state_dir) < 0)
                return -ENOMEM;
        unlink(v->rw_disk);
        r = moat_vm_disk_rw(v->rw_disk, MOAT_VM_RW_SIZE, err);
        if (r < 0)
                return r;
        return listen_on(v, err);
}

static int start_qemu(struct vm *v, struct moat_error **err)
{
        enum moat_vm_accel accel;
        _cleanup_free_ char *why = NULL;
        int r = moat_vm_accel_detect(&accel, &why);
        if (r < 0)
                return moat_error_set(err, -r, "cannot choose an accelerator");
        moat_debug("accelerator: %s (%s)", accel == MOAT_VM_ACCEL_KVM ? "kvm" : "tcg", why ? why : "");
        struct moat_vm_qemu_opts q = {
                .qemu = getenv("MOAT_VM_QEMU"),
                .accel = accel,
                .vcpus = vcpus_of(v->o->spec),
                .mem_mib = mem_of(v->o->spec),
                .kernel = v->kernel->vmlinux,
                .initrd = v->initrd,
                .ctl_socket = v->sock_path,
                .root_disk = v->root_disk,
                .rw_disk = v->rw_disk,
                .console_log = v->console,
                .net = v->cfg.net.present,
                .tap_fd = v->tapfd,
        };
        if (q.net)
                moat_net_addr_mac(v->cfg.net.addr, q.mac);
        if (v->cfg.n_shares > 0) {
                r = moat_vm_vfsd_start(v->o->state_dir, v->cfg.shares, v->cfg.n_shares, v->console, &v->vfsd, err);
                if (r < 0)
                        return r;
                q.fs_socket = v->vfsd.sock;
                q.fs_tag = MOAT_VM_SHARES_TAG;
        }
        r = moat_vm_qemu_spawn(&q, &v->qemu, &v->pidfd, err);
        closep(&v->tapfd); /* QEMU has it: the TAP goes when QEMU does */
        return r;
}

/* ---------------------------------------------------------------- the channel */

static int guest_broke(struct vm *v, struct moat_error **err, const char *what)
{
        return moat_error_input(err, -EPROTO, "the guest of '%s' broke the channel protocol (%s): VM stopped",
                                v->o->id, what);
}

static int on_frame(struct vm *v, uint8_t type, const uint8_t *p, size_t len, struct moat_error **err)
{
        if (!v->hello) {
                if (type != MOAT_VM_HELLO || len != 4)
                        return guest_broke(v, err, "no HELLO first");
                uint32_t ver = moat_vm_get_u32(p);
                if (ver != MOAT_VM_PROTO_VERSION)
                        return moat_error_input(err, -EPROTO, "the guest init speaks protocol %u, moat %u", ver,
                                                MOAT_VM_PROTO_VERSION);
                v->hello = true;
                if (v->o->before_config) {
                        int r = v->o->before_config(v->o->userdata);
                        if (r < 0)
                                return moat_error_set(err, -r, "'%s' was not started", v->o->id);
                }
                if (v->o->tty_resize && moat_vm_tty_config(v->o->out, &v->cfg) < 0)
                        return moat_error_set(err, ENOMEM, "CONFIG");
                return moat_vm_send(v->cfd, MOAT_VM_CONFIG, v->cfg.tlv, v->cfg.len);
        }
        switch (type) {
        case MOAT_VM_STARTED:
                if (len != 4 || v->started)
                        return guest_broke(v, err, "STARTED");
                v->started = true;
                moat_debug("%s: the process runs (guest pid %u)", v->o->id, moat_vm_get_u32(p));
                if (v->pending_sig) {
                        uint8_t b[4];
                        moat_vm_put_u32(b, v->pending_sig);
                        return moat_vm_send(v->cfd, MOAT_VM_SIGNAL, b, sizeof b);
                }
                return 0;
        case MOAT_VM_STDOUT:
        case MOAT_VM_STDERR: {
                int fd = type == MOAT_VM_STDOUT ? v->o->out : v->o->err;
                if (fd >= 0 && len && write_all(fd, p, len) < 0 && errno != EPIPE)
                        moat_debug("%s: output lost: %s", v->o->id, strerror(errno));
                return 0;
        }
        case MOAT_VM_ERROR: {
                size_t n = len > 1024 ? 1024 : len;
                char msg[1025];
                for (size_t i = 0; i < n; i++)
                        msg[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
                msg[n] = '\0';
                moat_warn("%s: in the VM: %s", v->o->id, msg);
                return 0;
        }
        case MOAT_VM_EXIT:
                if (len != 4 || v->exited || moat_vm_get_u32(p) > 255)
                        return guest_broke(v, err, "EXIT");
                v->status = (int)moat_vm_get_u32(p);
                v->exited = true;
                v->exit_deadline = now_ms() + EXIT_GRACE_MS;
                return 0;
        default: {
                const char *what = NULL;
                int r = moat_vm_exec_host_frame(v->exec, type, p, len, &what);
                return r < 0 ? guest_broke(v, err, what) : r == 0 ? 0 : guest_broke(v, err, "an unknown message");
        }
        }
}

static int channel_ready(struct vm *v, struct moat_error **err)
{
        ssize_t n = moat_vm_reader_fill(&v->rd, v->cfd);
        if (n == -EAGAIN)
                return 0;
        if (n <= 0) { /* EOF: the guest is going (or gone) */
                closep(&v->cfd);
                return n < 0 && n != -ECONNRESET ? moat_error_set(err, (int)-n, "the VM's channel") : 0;
        }
        uint8_t type;
        const uint8_t *p;
        size_t len;
        int r;
        while ((r = moat_vm_reader_next(&v->rd, &type, &p, &len)) > 0) {
                r = on_frame(v, type, p, len, err);
                if (r < 0)
                        return r;
        }
        return r == -EBADMSG ? guest_broke(v, err, "a bad frame") : 0;
}

static void stdin_ready(struct vm *v)
{
        char buf[MOAT_VM_MAX_DATA];
        ssize_t n = read(v->o->in, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n <= 0) {
                v->stdin_open = false;
                (void)moat_vm_send(v->cfd, MOAT_VM_STDIN, NULL, 0);
                return;
        }
        (void)moat_vm_send(v->cfd, MOAT_VM_STDIN, buf, (size_t)n);
}

static void signal_ready(struct vm *v)
{
        struct signalfd_siginfo si;
        while (read(v->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
                uint8_t b[4];
                moat_vm_put_u32(b, si.ssi_signo);
                if (si.ssi_signo == SIGWINCH && v->o->tty_resize) {
                        if (v->cfd >= 0 && v->hello)
                                (void)moat_vm_tty_resize(v->o->out, v->cfd);
                } else if (v->cfd >= 0 && v->started)
                        (void)moat_vm_send(v->cfd, MOAT_VM_SIGNAL, b, sizeof b);
                else
                        v->pending_sig = si.ssi_signo; /* the process is not there yet */
        }
}

static int relay(struct vm *v, struct moat_error **err)
{
        int64_t boot_deadline = now_ms() + MOAT_VM_BOOT_TIMEOUT_MS;
        for (;;) {
                struct pollfd p[5 + MOAT_VM_EXEC_HOST_MAX_POLL] = {
                        { .fd = v->pidfd, .events = POLLIN },
                        { .fd = v->cfd >= 0 ? v->cfd : v->lfd, .events = POLLIN },
                        { .fd = v->stdin_open && v->cfd >= 0 && v->hello ? v->o->in : -1, .events = POLLIN },
                        { .fd = v->sigfd, .events = POLLIN },
                };
                size_t n_exec = moat_vm_exec_host_poll_add(v->exec, p + 4, MOAT_VM_EXEC_HOST_MAX_POLL,
                                                            !v->started && !v->exited);
                int64_t deadline = v->exited ? v->exit_deadline : v->hello ? -1 : boot_deadline;
                int timeout = deadline < 0 ? -1 : (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0);
                /* the shares' virtiofsd: the guest's bind mounts hang without it */
                struct pollfd *vfsd = &p[4 + n_exec];
                *vfsd = (struct pollfd){ .fd = v->vfsd.pid > 0 ? v->vfsd.pidfd : -1, .events = POLLIN };
                int n = poll(p, 5 + n_exec, timeout);
                if (n < 0 && errno != EINTR)
                        return moat_error_set(err, errno, "poll");
                if (n == 0) {
                        if (v->exited)
                                return 0; /* it said EXIT but does not power off: killed below */
                        _cleanup_free_ char *tail = console_tail(v->console);
                        return moat_error_input(err, -ETIMEDOUT, "the VM of '%s' did not come up in %d s; its "
                                                "console:\n%s", v->o->id, MOAT_VM_BOOT_TIMEOUT_MS / 1000, tail);
                }
                if (n < 0)
                        continue;
                if (p[3].revents)
                        signal_ready(v);
                if (p[1].revents && v->cfd < 0) {
                        v->cfd = accept4(v->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                        if (v->cfd < 0 && errno != EAGAIN && errno != EINTR)
                                return moat_error_set(err, errno, "accept on '%s'", v->sock_path);
                } else if (p[1].revents) {
                        int r = channel_ready(v, err);
                        if (r < 0)
                                return r;
                }
                if (p[2].revents)
                        stdin_ready(v);
                moat_vm_exec_host_poll_done(v->exec, p + 4, n_exec, v->cfd, v->started && !v->exited);
                if (vfsd->revents && v->vfsd.pid > 0) {
                        char how[64];
                        pid_t pid = v->vfsd.pid;
                        (void)moat_vm_vfsd_reap(&v->vfsd, how, sizeof how);
                        /* QEMU's end ends it too (its client gone): then QEMU's error, below */
                        struct pollfd q = { .fd = v->pidfd, .events = POLLIN };
                        if (!p[0].revents && poll(&q, 1, 200) > 0)
                                p[0].revents = q.revents;
                        if (!v->exited && !p[0].revents) {
                                _cleanup_free_ char *tail = console_tail(v->console);
                                return moat_error_input(err, -ECHILD, "virtiofsd (pid %d), which serves the bind "
                                                        "mounts of '%s', ended (%s) while the VM ran: VM stopped; "
                                                        "its console:\n%s", (int)pid, v->o->id, how, tail);
                        }
                }
                if (p[0].revents) { /* QEMU is gone: read what the guest still said */
                        if (v->cfd >= 0)
                                (void)channel_ready(v, err);
                        if (v->exited)
                                return 0;
                        _cleanup_free_ char *tail = console_tail(v->console);
                        return moat_error_input(err, -ECHILD, "the VM of '%s' ended without the process's exit "
                                                "status; its console:\n%s", v->o->id, tail);
                }
        }
}

/* ---------------------------------------------------------------- run */

static void stop_qemu(struct vm *v)
{
        if (v->pidfd >= 0) {
                syscall(SYS_pidfd_send_signal, v->pidfd, SIGKILL, NULL, 0);
                close(v->pidfd);
                v->pidfd = -EBADF;
        }
        if (v->qemu > 0) {
                while (waitpid(v->qemu, NULL, 0) < 0 && errno == EINTR)
                        ;
                v->qemu = 0;
        }
}

int moat_vm_run(const struct moat_vm_run_opts *o, int *status, struct moat_error **err)
{
        struct vm v = { .o = o, .lfd = -EBADF, .cfd = -EBADF, .pidfd = -EBADF, .sigfd = -EBADF, .tapfd = -EBADF, .stdin_open = o->in >= 0 };
        moat_vm_reader_init(&v.rd, MOAT_VM_MAX_FRAME);
        sigset_t mask, old;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        if (o->all_signals) {
                sigfillset(&mask);
                sigdelset(&mask, SIGCHLD);
                sigdelset(&mask, SIGPIPE);
                static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS };
                for (size_t i = 0; i < ARRAY_SIZE(faults); i++)
                        sigdelset(&mask, faults[i]);
        }
        sigprocmask(SIG_BLOCK, &mask, &old);
        v.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        int r = v.sigfd < 0 ? moat_error_set(err, errno, "signalfd") : prepare(&v, err);
        if (r >= 0 && o->exec_socket)
                r = moat_vm_exec_host_open(o->state_dir, &v.exec, err);
        if (r >= 0)
                r = start_qemu(&v, err);
        if (r >= 0)
                r = relay(&v, err);
        if (r >= 0)
                *status = v.status;
        stop_qemu(&v);
        moat_vm_vfsd_stop(&v.vfsd); /* after QEMU: its client gone, it exits */
        moat_vm_exec_host_free(v.exec);
        closep(&v.cfd);
        closep(&v.lfd);
        closep(&v.sigfd);
        closep(&v.tapfd);
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (v.sock_path)
                unlink(v.sock_path);
        if (v.rw_disk)
                unlink(v.rw_disk); /* the writable layer is discarded with the VM */
        if (!o->disk_key && v.root_disk) { /* so is a root disk of its own */
                unlink(v.root_disk);
                _cleanup_free_ char *lock = NULL;
                if (asprintf(&lock, "%s/root.lock", o->state_dir) >= 0)
                        unlink(lock);
        }
        moat_vm_reader_free(&v.rd);
        moat_vm_config_free(&v.cfg);
        moat_vm_kernel_free(v.kernel);
        free(v.initrd);
        free(v.root_disk);
        free(v.rw_disk);
        free(v.sock_path);
        free(v.console);
        return r;
}
