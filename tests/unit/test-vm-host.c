/* SPDX-License-Identifier: Apache-2.0 */
/* The host side of the vm tier: accelerator choice, TSC, QEMU's argv, the guest kernel
 * directory, the initramfs, and a real boot of the test init (skipped without QEMU or a
 * kernel from scripts/vm-kernel.sh; MOAT_MUST_WORK=1 fails instead). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/util.h"
#include "tap.h"
#include "vm-test.h"
#include "vm/initramfs.h"
#include "vm/kernel.h"
#include <sys/types.h>
/* proto.h (not ours) has a nested comment opener (-Wcomment) and uses ssize_t
 * without <sys/types.h>: tolerate both until it is fixed. */
#include "vm/proto.h"
#include "vm/qemu.h"

static char tmpdir[] = "/tmp/moat-test-vm-XXXXXX";

/* valgrind (3.19) answers ENOSYS to pidfd_open, as Linux < 5.3 would */
static bool have_pidfd_open(void)
{
        int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

        if (fd >= 0)
                close(fd);
        return fd >= 0 || errno != ENOSYS;
}

static void skip_one(const char *why)
{
        const char *must = getenv("MOAT_MUST_WORK");

        if (must && STREQ(must, "1"))
                ok(false, "skipped under MOAT_MUST_WORK=1: %s", why);
        else {
                tap_n++;
                printf("ok %d # SKIP %s\n", tap_n, why);
        }
}

static void put(const char *rel, const char *content)
{
        _cleanup_free_ char *p = NULL, *d = NULL;

        if (asprintf(&p, "%s/%s", tmpdir, rel) < 0 || !(d = strdup(p)))
                abort();
        FILE *f;

        mkdir_p(dirname(d), 0755);
        f = fopen(p, "we");
        if (!f || fputs(content, f) < 0 || fclose(f) != 0)
                abort();
}

static char *tpath(const char *rel)
{
        char *p;

        if (asprintf(&p, "%s/%s", tmpdir, rel) < 0)
                abort();
        return p;
}

static void test_accel(void)
{
        enum moat_vm_accel a = MOAT_VM_ACCEL_KVM;
        _cleanup_free_ char *root = tpath("accel"), *why = NULL;

        is_int(moat_vm_accel_detect_at(root, "tcg", &a, &why), 0, "forced tcg");
        is_int(a, MOAT_VM_ACCEL_TCG, "forced tcg gives TCG");
        free(TAKE_PTR(why));
        is_int(moat_vm_accel_detect_at(root, "kvm", &a, &why), 0, "forced kvm");
        is_int(a, MOAT_VM_ACCEL_KVM, "forced kvm gives KVM even without /dev/kvm");
        free(TAKE_PTR(why));
        is_int(moat_vm_accel_detect_at(root, "xen", &a, &why), -EINVAL, "forced 'xen' is rejected");
        contains(why, "'xen'", "the message names the value");
        free(TAKE_PTR(why));

        mkdir_p(root, 0755);
        is_int(moat_vm_accel_detect_at(root, NULL, &a, &why), 0, "no kvm module");
        is_int(a, MOAT_VM_ACCEL_TCG, "no kvm module: TCG");
        contains(why, "neither kvm_intel nor kvm_amd", "why: no module");
        free(TAKE_PTR(why));

        put("accel/sys/module/kvm/refcnt", "1\n");
        put("accel/sys/module/kvm_pvm/refcnt", "0\n");
        put("accel/dev/kvm", "");
        is_int(moat_vm_accel_detect_at(root, NULL, &a, &why), 0, "kvm_pvm");
        is_int(a, MOAT_VM_ACCEL_TCG, "kvm_pvm: TCG");
        contains(why, "kvm_pvm", "why names kvm_pvm");
        free(TAKE_PTR(why));

        put("accel/sys/module/kvm_intel/refcnt", "0\n");
        is_int(moat_vm_accel_detect_at(root, NULL, &a, &why), 0, "kvm_intel, fake /dev/kvm");
        is_int(a, MOAT_VM_ACCEL_TCG, "a /dev/kvm that is no KVM: TCG");
        contains(why, "KVM_GET_API_VERSION", "why: the ioctl failed");
        free(TAKE_PTR(why));

        {
                _cleanup_free_ char *dev = tpath("accel/dev/kvm");
                unlink(dev);
        }
        is_int(moat_vm_accel_detect_at(root, NULL, &a, &why), 0, "kvm_intel, no /dev/kvm");
        is_int(a, MOAT_VM_ACCEL_TCG, "no /dev/kvm: TCG");
        contains(why, "does not open", "why: no device");
        free(TAKE_PTR(why));

        is_int(moat_vm_accel_detect(&a, &why), 0, "this host's accelerator: %s (%s)", moat_vm_accel_name(a),
               why ? why : "?");
        ok(why != NULL, "a reason is given");
}

static void test_tsc(void)
{
        _cleanup_free_ char *r1 = tpath("tsc1"), *r2 = tpath("tsc2"), *r3 = tpath("tsc3"), *r4 = tpath("tsc4");
        unsigned long khz = 0;

        put("tsc1/sys/devices/system/cpu/cpu0/tsc_freq_khz", "2394454\n");
        put("tsc1/proc/cpuinfo", "model name\t: Intel(R) Xeon(R) CPU @ 2.60GHz\n");
        is_int(moat_vm_host_tsc_khz(r1, &khz), 0, "tsc_freq_khz");
        is_int(khz, 2394454, "tsc_freq_khz first");
        put("tsc2/proc/cpuinfo", "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz\n"
                                 "cpu MHz\t\t: 1200.000\n\nprocessor\t: 1\n");
        is_int(moat_vm_host_tsc_khz(r2, &khz), 0, "model name");
        is_int(khz, 2600000, "model name @ 2.60GHz");
        put("tsc3/proc/cpuinfo", "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\ncpu MHz\t\t: 2100.000\n");
        is_int(moat_vm_host_tsc_khz(r3, &khz), 0, "cpu MHz");
        is_int(khz, 2100000, "cpu MHz 2100.000");
        mkdir_p(r4, 0755);
        is_int(moat_vm_host_tsc_khz(r4, &khz), -ENOENT, "no source: -ENOENT");
        khz = 0;
        if (moat_vm_host_tsc_khz(NULL, &khz) == 0)
                ok(khz > 100000, "this host's TSC: %lu kHz", khz);
        else
                skip_one("this host shows no TSC frequency");
}

static void test_argv(void)
{
        struct moat_vm_qemu_opts o = {
                .accel = MOAT_VM_ACCEL_TCG, .vcpus = 2, .mem_mib = 192,
                .kernel = "/k/vmlinux", .initrd = "/k/initrd.cpio", .cmdline_extra = "moat.debug=1",
                .ctl_socket = "/run/a,b/ctl.sock", .root_disk = "/d/root.ext4", .rw_disk = "/d/rw.ext4",
                .console_log = "/log/console.log",
        };
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_strv_ char **v = NULL;
        _cleanup_free_ char *s = NULL;
        unsigned long khz;

        if (moat_vm_host_tsc_khz(NULL, &khz) < 0)
                o.cmdline_extra = "tsc_early_khz=2000000";
        is_int(moat_vm_qemu_argv(&o, &v, &err), 0, "argv (tcg)");
        s = vm_test_join(v);
        printf("# %s\n", s);
        is_str(v ? v[0] : NULL, "qemu-system-x86_64", "default qemu");
        contains(s, " -nodefaults -no-user-config -nographic -no-reboot ", "no defaults");
        contains(s, "-M microvm,x-option-roms=off,isa-serial=off,pcie=on", "microvm with pcie");
        contains(s, "-accel tcg,tb-size=32 -cpu max ", "tcg, -cpu max");
        contains(s, "-smp 2 -m 192 ", "smp and memory");
        contains(s, "-kernel /k/vmlinux -initrd /k/initrd.cpio -append console=hvc0 ", "kernel, initrd, hvc0");
        contains(s, "tsc_early_khz=", "tsc_early_khz under TCG");
        contains(s, "moat.debug=1", "extra cmdline");
        contains(s, "socket,id=ctl,path=/run/a,,b/ctl.sock ", "socket path with the comma doubled");
        contains(s, "name=org.moat.ctl", "the control port's name");
        contains(s, "file,id=con,path=/log/console.log,append=on", "console to the log");
        contains(s, "node-name=vda,driver=raw,read-only=on,file.driver=file,file.filename=/d/root.ext4 "
                    "-device virtio-blk-pci,drive=vda", "vda read-only");
        contains(s, "node-name=vdb,driver=raw,read-only=off", "vdb writable");
        ok(strstr(s, "vda") < strstr(s, "vdb"), "vda before vdb");
        strv_free(TAKE_PTR(v));
        free(TAKE_PTR(s));

        o.accel = MOAT_VM_ACCEL_KVM;
        o.qemu = "/opt/qemu";
        o.console_log = NULL;
        o.rw_disk = NULL;
        o.cmdline_extra = NULL;
        is_int(moat_vm_qemu_argv(&o, &v, &err), 0, "argv (kvm)");
        s = vm_test_join(v);
        is_str(v ? v[0] : NULL, "/opt/qemu", "given qemu");
        contains(s, "-accel kvm -cpu host ", "kvm, -cpu host");
        ok(!strstr(s, "tsc_early_khz") && !strstr(s, "mitigations=off"), "no tsc_early_khz/mitigations=off on KVM");
        contains(s, "null,id=con", "console discarded without a log");
        ok(!strstr(s, "vdb"), "no vdb without rw_disk");
        ok(!strstr(s, "-netdev"), "no network device without net");
        strv_free(TAKE_PTR(v));
        free(TAKE_PTR(s));

        o.net = true;
        o.tap_fd = 17;
        memcpy(o.mac, (unsigned char[6]){ 0x02, 0x6d, 10, 0, 0, 0xfe }, 6);
        is_int(moat_vm_qemu_argv(&o, &v, &err), 0, "argv with a network");
        s = vm_test_join(v);
        contains(s, "-netdev tap,id=net0,fd=4 ", "the TAP as QEMU's fd 4 (wherever it is here)");
        contains(s, "-device virtio-net-pci,netdev=net0,id=net0-dev,mac=02:6d:0a:00:00:fe", "virtio-net with the MAC");
        strv_free(TAKE_PTR(v));
        o.net = false;

        o.kernel = NULL;
        is_int(moat_vm_qemu_argv(&o, &v, &err), -EINVAL, "no kernel: -EINVAL");
        moat_error_freep(&err);
        o.kernel = "/k";
        o.root_disk = NULL;
        o.rw_disk = "/rw";
        is_int(moat_vm_qemu_argv(&o, &v, &err), -EINVAL, "rw disk without root disk: -EINVAL");
}

static void test_kernel(void)
{
        _cleanup_free_ char *dir = tpath("kernels/6.1-test"), *cur = tpath("kernels/current");
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_vm_kernel *k = NULL;

        put("kernels/6.1-test/vmlinux", "\177ELF fake");
        put("kernels/6.1-test/lib/modules/x/kernel/a.ko.xz", "A");
        put("kernels/6.1-test/lib/modules/x/kernel/b.ko", "BB");
        put("kernels/6.1-test/moat-modules", "lib/modules/x/kernel/b.ko\n\nlib/modules/x/kernel/a.ko.xz\n");
        _cleanup_free_ char *saved = getenv("MOAT_VM_KERNEL") ? strdup(getenv("MOAT_VM_KERNEL")) : NULL;

        if (symlink("6.1-test", cur) < 0)
                abort();
        setenv("MOAT_VM_KERNEL", cur, 1);
        is_int(moat_vm_kernel_find(NULL, &k, &err), 0, "found through $MOAT_VM_KERNEL and 'current'");
        if (k) {
                is_str(k->version, "6.1-test", "version from the resolved directory");
                is_str(k->dir, dir, "dir resolved");
                is_int(strv_length(k->modules), 2, "two modules");
                contains(k->modules[0], "/kernels/6.1-test/lib/modules/x/kernel/b.ko", "load order kept");
                ok(k->modules[0][0] == '/', "absolute module paths");
                is_int(strv_length(k->net_modules), 0, "no moat-modules-net: no network modules (optional)");
                moat_vm_kernel_free(TAKE_PTR(k));
        }
        put("kernels/6.1-test/moat-modules-net", "lib/modules/x/kernel/a.ko.xz\n");
        is_int(moat_vm_kernel_find(dir, &k, &err), 0, "with moat-modules-net");
        if (k) {
                is_int(strv_length(k->net_modules), 1, "one network module");
                contains(k->net_modules[0], "/kernels/6.1-test/lib/modules/x/kernel/a.ko.xz", "... its absolute path");
                moat_vm_kernel_free(TAKE_PTR(k));
        }
        put("kernels/6.1-test/moat-modules-net", "lib/modules/x/kernel/nope.ko\n");
        ok(moat_vm_kernel_find(dir, &k, &err) < 0 && !k, "a missing network module is an error");
        moat_error_freep(&err);
        {
                _cleanup_free_ char *net = tpath("kernels/6.1-test/moat-modules-net");
                unlink(net);
        }
        if (saved)
                setenv("MOAT_VM_KERNEL", saved, 1);
        else
                unsetenv("MOAT_VM_KERNEL");

        put("kernels/6.1-test/moat-modules", "lib/modules/x/kernel/c.ko\n");
        ok(moat_vm_kernel_find(dir, &k, &err) < 0 && !k, "a missing module is an error");
        contains(err ? err->msg : NULL, "vm-kernel.sh", "the error says how to get a kernel");
        moat_error_freep(&err);
        put("kernels/6.1-test/moat-modules", "../../etc/passwd\n");
        ok(moat_vm_kernel_find(dir, &k, &err) < 0, "a module path outside the directory is refused");
        moat_error_freep(&err);
        put("kernels/6.1-test/moat-modules", "");
        put("kernels/6.1-test/vmlinux", "MZ bzImage");
        is_int(moat_vm_kernel_find(dir, &k, &err), -ENOEXEC, "a non-ELF vmlinux is refused");
        moat_error_freep(&err);
        {
                _cleanup_free_ char *none = tpath("kernels/none");
                ok(moat_vm_kernel_find(none, &k, &err) < 0, "no kernel directory");
                contains(err ? err->msg : NULL, "scripts/vm-kernel.sh", "the message says how to get one");
        }
        put("kernels/6.1-test/vmlinux", "\177ELF fake");
}

struct entry_seen {
        int init, console, order, net, dirs, modules;
        char order_text[256], net_text[256];
};

static int list_cpio(const char *path, struct entry_seen *s)
{
        struct archive *a = archive_read_new();
        struct archive_entry *e;
        int r, n = 0;

        archive_read_support_format_cpio(a);
        if (archive_read_open_filename(a, path, 16384) != ARCHIVE_OK) {
                archive_read_free(a);
                return -EIO;
        }
        while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
                const char *name = archive_entry_pathname(e);
                mode_t type = archive_entry_filetype(e);

                n++;
                if (STREQ(name, "init") && type == AE_IFREG && (archive_entry_perm(e) & 07777) == 0755 &&
                    archive_entry_size(e) == 4)
                        s->init++;
                else if (STREQ(name, "dev/console") && type == AE_IFCHR && archive_entry_rdevmajor(e) == 5 &&
                         archive_entry_rdevminor(e) == 1)
                        s->console++;
                else if (STREQ(name, "modules/order") && type == AE_IFREG) {
                        la_ssize_t got = archive_read_data(a, s->order_text, sizeof(s->order_text) - 1);
                        if (got >= 0)
                                s->order_text[got] = 0;
                        s->order++;
                } else if (STREQ(name, "modules/net") && type == AE_IFREG) {
                        la_ssize_t got = archive_read_data(a, s->net_text, sizeof(s->net_text) - 1);
                        if (got >= 0)
                                s->net_text[got] = 0;
                        s->net++;
                } else if (strncmp(name, "modules/", 8) == 0 && type == AE_IFREG)
                        s->modules++;
                else if (type == AE_IFDIR &&
                         (STREQ(name, "dev") || STREQ(name, "proc") || STREQ(name, "sys") || STREQ(name, "lower") ||
                          STREQ(name, "rw") || STREQ(name, "newroot") || STREQ(name, "modules")))
                        s->dirs++;
                else
                        printf("# unexpected entry '%s'\n", name);
        }
        archive_read_free(a);
        return r == ARCHIVE_EOF ? n : -EIO;
}

static void test_initramfs(void)
{
        _cleanup_free_ char *dir = tpath("kernels/6.1-test"), *cache = tpath("cache"), *init = tpath("init-bin");
        _cleanup_free_ char *p1 = NULL, *p2 = NULL, *p3 = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_vm_kernel *k = NULL;
        struct entry_seen s = { 0 };
        struct stat st1, st2;

        put("kernels/6.1-test/moat-modules", "lib/modules/x/kernel/b.ko\nlib/modules/x/kernel/a.ko.xz\n");
        put("kernels/6.1-test/lib/modules/x/kernel/n.ko.xz", "N");
        put("kernels/6.1-test/moat-modules-net", "lib/modules/x/kernel/n.ko.xz\n");
        put("init-bin", "INIT");
        if (moat_vm_kernel_find(dir, &k, &err) < 0) {
                ok(false, "fake kernel: %s", err ? err->msg : "?");
                return;
        }
        is_int(moat_vm_initramfs(cache, init, k, &p1, &err), 0, "initramfs built");
        printf("# %s\n", p1 ? p1 : (err ? err->msg : "?"));
        contains(p1, "/cache/initramfs-", "in the cache dir");
        is_int(list_cpio(p1, &s), 7 + 1 + 1 + 3 + 2, "14 entries");
        is_int(s.init, 1, "/init, 0755, its content");
        is_int(s.console, 1, "/dev/console 5:1");
        is_int(s.dirs, 7, "the directories");
        is_int(s.modules, 3, "three modules (one for the network)");
        is_str(s.order_text, "/modules/b.ko\n/modules/a.ko.xz\n", "modules/order in load order");
        is_int(s.net, 1, "modules/net");
        is_str(s.net_text, "/modules/n.ko.xz\n", "... lists the network's module");
        stat(p1, &st1);
        is_int(moat_vm_initramfs(cache, init, k, &p2, &err), 0, "second call");
        is_str(p2, p1, "cache hit: same path");
        stat(p2, &st2);
        ok(st1.st_ino == st2.st_ino && st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec, "not rewritten");
        put("init-bin", "INIT2");
        is_int(moat_vm_initramfs(cache, init, k, &p3, &err), 0, "changed init");
        ok(p3 && p1 && !STREQ(p1, p3), "a changed input gives a new file");
        moat_vm_kernel_free(k);
        {
                _cleanup_free_ char *net = tpath("kernels/6.1-test/moat-modules-net");
                unlink(net);
        }

        {
                _cleanup_free_ char *missing = tpath("no-init"), *p4 = NULL;
                ok(moat_vm_initramfs(cache, missing, NULL, &p4, &err) < 0 && !p4, "missing init: error");
                contains(err ? err->msg : NULL, "no-init", "names the init");
        }
}

/* The spawn itself, with a shell script standing in for QEMU: it records its open fds,
 * its stdin/stdout and writes to stderr (the console log). */
static void test_spawn(void)
{
        _cleanup_free_ char *script = tpath("fake-qemu"), *fds = tpath("fds"), *log = tpath("spawn.log");
        _cleanup_free_ char *text = NULL, *logtext = NULL, *want = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC on purpose */
        struct moat_vm_qemu_opts o = { .accel = MOAT_VM_ACCEL_KVM, .kernel = "/k", .ctl_socket = "/s" };
        int pidfd = -EBADF, status = -1;
        size_t len;
        pid_t pid = 0;
        FILE *f;

        /* the fds are listed through /proc, into our tmpdir: both out of QEMU's own root (below) */
        setenv("MOAT_VM_NO_ROOT_CONFINE", "1", 1);
        f = fopen(script, "we");
        if (!f)
                abort();
        /* ls, a child of the shell, lists the shell's fds (a glob in the shell would see its own dir fd) */
        fprintf(f, "#!/bin/sh\nls -l /proc/$$/fd >%s\n"
                   "echo qemu-stderr >&2\nexit 3\n", fds);
        fclose(f);
        chmod(script, 0755);
        o.qemu = script;
        o.console_log = log;
        write_string_at(AT_FDCWD, log, "");
        is_int(moat_vm_qemu_spawn(&o, &pid, &pidfd, &err), 0, "spawn a fake qemu");
        if (have_pidfd_open())
                ok(pidfd >= 0 && (fcntl(pidfd, F_GETFD) & FD_CLOEXEC), "a pidfd, O_CLOEXEC");
        if (pid > 0 && pidfd >= 0) {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };
                ok(poll(&p, 1, 10000) == 1, "the pidfd becomes readable at exit");
        }
        if (pid > 0)
                waitpid(pid, &status, 0);
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 3, "its exit status (0x%x)", status);
        if (pidfd >= 0)
                close(pidfd);
        if (read_file_at(AT_FDCWD, fds, &text, &len) >= 0) {
                _cleanup_free_ char *copy = strdup(text);
                for (char *l = copy ? strtok(copy, "\n") : NULL; l; l = strtok(NULL, "\n"))
                        printf("# %s\n", l);
                contains(text, " 0 -> /dev/null", "stdin /dev/null");
                contains(text, " 2 -> /", "stderr open");
                (void)!asprintf(&want, " %d -> ", leak);
                ok(leak >= 0 && !strstr(text, want), "our non-CLOEXEC fd %d is not inherited", leak);
                ok(!strstr(text, " 3 -> ") && !strstr(text, "pipe:"), "no pipe, no fd 3");
        } else
                ok(false, "the fake qemu ran");
        ok(read_file_at(AT_FDCWD, log, &logtext, &len) >= 0 && strstr(logtext, "qemu-stderr"),
           "stderr goes to the console log");

        {
                /* with a network: the TAP's fd (a file standing in) reaches QEMU as fd 4, nothing else */
                _cleanup_free_ char *tap = tpath("tap-standin"), *text2 = NULL;
                _cleanup_close_ int tapfd = open(tap, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                ok(tapfd >= 0, "a file standing in for the TAP");
                o.net = true;
                o.tap_fd = tapfd;
                pid = 0;
                is_int(moat_vm_qemu_spawn(&o, &pid, &pidfd, &err), 0, "spawn with a TAP fd");
                if (pid > 0)
                        waitpid(pid, &status, 0);
                if (pidfd >= 0)
                        close(pidfd);
                if (read_file_at(AT_FDCWD, fds, &text2, &len) >= 0) {
                        contains(text2, " 4 -> /", "the TAP is fd 4 in QEMU");
                        contains(text2, "tap-standin", "... that very file");
                        ok(!strstr(text2, " 5 -> "), "nothing past fd 4");
                } else
                        ok(false, "the fake qemu ran with a TAP");
                o.net = false;
        }

        o.qemu = "/nonexistent/qemu";
        pid = 0;
        ok(moat_vm_qemu_spawn(&o, &pid, &pidfd, &err) < 0 && pid == 0, "a missing qemu is an error");
        contains(err ? err->msg : NULL, "/nonexistent/qemu", "naming it");
        moat_error_freep(&err);
        o.qemu = "no-such-qemu-binary";
        ok(moat_vm_qemu_spawn(&o, &pid, &pidfd, &err) < 0, "a qemu not in $PATH is an error");
        contains(err ? err->msg : NULL, "qemu-system-x86", "saying which package");
        unsetenv("MOAT_VM_NO_ROOT_CONFINE");
}

/* QEMU's own root (vm/qemu_root.h): a fake QEMU reports what it sees on stderr (the console
 * log, one of the few writable files in there). */
static void test_spawn_root(void)
{
        _cleanup_free_ char *script = tpath("root-qemu"), *log = tpath("root.log"), *kern = tpath("root-k"),
                            *disk = tpath("root-vda"), *rw = tpath("root-vdb"), *sock = tpath("root.sock"),
                            *other = tpath("root-other");
        _cleanup_free_ char *text = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct moat_vm_qemu_opts o = { .accel = MOAT_VM_ACCEL_TCG, .kernel = kern, .ctl_socket = sock,
                                       .root_disk = disk, .rw_disk = rw, .console_log = log,
                                       .cmdline_extra = "tsc_early_khz=1000" };
        int pidfd = -EBADF, status = -1;
        size_t len;
        pid_t pid = 0;
        FILE *f;

        if (geteuid() != 0) {
                skip_one("QEMU's root needs root (mount namespaces)");
                return;
        }
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
        ok(lsock >= 0 && bind(lsock, (struct sockaddr *)&sa, sizeof sa) == 0, "a socket standing in for the channel");
        put("root-k", "K");
        put("root-vda", "D");
        put("root-vdb", "W");
        put("root.log", "");
        put("root-other", "not for QEMU");
        f = fopen(script, "we");
        if (!f)
                abort();
        fprintf(f, "#!/bin/sh\nexec 2>>%s\n"
                   "for p in /etc/passwd /home /proc/self /sys/kernel %s %s %s %s; do\n"
                   "  [ -e \"$p\" ] && echo \"has $p\" || echo \"no $p\"; done >&2\n"
                   "[ -S %s ] && echo socket-there >&2\n"
                   "(echo x >>%s) 2>/dev/null && echo kernel-writable >&2 || echo kernel-ro >&2\n"
                   "(echo x >>%s) 2>/dev/null && echo vdb-writable >&2 || echo vdb-ro >&2\n"
                   "(: >/new) 2>/dev/null && echo root-writable >&2 || echo root-ro >&2\n"
                   "echo pwd=$(pwd) >&2\nexit 5\n",
                log, kern, disk, rw, other, sock, kern, rw);
        fclose(f);
        chmod(script, 0755);
        o.qemu = script;
        is_int(moat_vm_qemu_spawn(&o, &pid, &pidfd, &err), 0, "spawn a fake qemu in its own root");
        if (err)
                printf("# %s\n", err->msg);
        if (pid > 0)
                waitpid(pid, &status, 0);
        if (pidfd >= 0)
                close(pidfd);
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 5, "it ran (status 0x%x)", status);
        if (read_file_at(AT_FDCWD, log, &text, &len) < 0)
                text = strdup("");
        {
                _cleanup_free_ char *copy = strdup(text ? text : "");
                for (char *save = NULL, *l = copy ? strtok_r(copy, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save))
                        printf("# %s\n", l);
        }
        contains(text, "no /etc/passwd\nno /home\nno /proc/self\nno /sys/kernel\n", "no /etc, /home, /proc, /sys");
        {
                _cleanup_free_ char *want = NULL;
                (void)!asprintf(&want, "has %s\nhas %s\nhas %s\nno %s\n", kern, disk, rw, other);
                contains(text, want, "its kernel and disks at their paths, not the rest of their directory");
        }
        contains(text, "socket-there", "the control socket");
        contains(text, "kernel-ro", "the kernel read-only");
        contains(text, "vdb-writable", "the writable disk writable");
        contains(text, "root-ro", "the root read-only");
        contains(text, "pwd=/\n", "cwd /");
        {
                _cleanup_free_ char *t2 = NULL;
                ok(read_file_at(AT_FDCWD, kern, &t2, &len) >= 0 && STREQ(t2, "K"), "the kernel is unchanged");
        }

        o.kernel = "/nonexistent-kernel";
        pid = 0;
        ok(moat_vm_qemu_spawn(&o, &pid, &pidfd, &err) < 0 && pid == 0, "a missing kernel: QEMU not started");
        contains(err ? err->msg : NULL, "the guest kernel '/nonexistent-kernel'", "naming it");
}

/* ---- the real boot ---- */

static char *test_init_path(void)
{
        char self[PATH_MAX], *p = NULL;
        const char *env = getenv("MOAT_VM_TEST_INIT");
        ssize_t n;

        if (env && *env)
                return strdup(env);
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0)
                return NULL;
        self[n] = 0;
        if (asprintf(&p, "%s/helpers/moat-vm-test-init", dirname(self)) < 0)
                return NULL;
        return p;
}

static int64_t ms_since(int64_t t0)
{
        return (now_ns() - t0) / 1000000;
}

static void test_boot(void)
{
        _cleanup_free_ char *init = test_init_path(), *cache = tpath("boot-cache"), *initrd = NULL;
        _cleanup_free_ char *sock_path = tpath("ctl.sock"), *log = tpath("console.log"), *why = NULL;
        _cleanup_free_ char *console = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_vm_kernel_ struct moat_vm_kernel *k = NULL;
        _cleanup_close_ int lsock = -EBADF, conn = -EBADF, pidfd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct moat_vm_qemu_opts o = { 0 };
        uint8_t frame[9];
        size_t got = 0, clen;
        pid_t pid = 0;
        int64_t t0, t_hello = -1, t_exit = -1;
        int status = -1, r;
        enum moat_vm_accel accel;

        if (moat_vm_kernel_find(NULL, &k, &err) < 0) {
                _cleanup_free_ char *why2 = NULL;
                (void)!asprintf(&why2, "no guest kernel: %s", err->msg);
                skip_one(why2);
                return;
        }
        if (!init || access(init, X_OK) < 0) {
                skip_one("moat-vm-test-init not built (set $MOAT_VM_TEST_INIT)");
                return;
        }
        if (system("command -v qemu-system-x86_64 >/dev/null 2>&1") != 0) {
                skip_one("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)");
                return;
        }
        if (!ok(moat_vm_initramfs(cache, init, k, &initrd, &err) == 0, "initramfs for the boot")) {
                printf("# %s\n", err ? err->msg : "?");
                return;
        }
        r = moat_vm_accel_detect(&accel, &why);
        is_int(r, 0, "accelerator: %s (%s)", moat_vm_accel_name(accel), why ? why : "?");

        lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
        if (!ok(lsock >= 0 && bind(lsock, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lsock, 1) == 0,
                "listening on %s", sock_path))
                return;

        o.accel = accel;
        o.kernel = k->vmlinux;
        o.initrd = initrd;
        o.ctl_socket = sock_path;
        o.console_log = log;
        t0 = now_ns();
        r = moat_vm_qemu_spawn(&o, &pid, &pidfd, &err);
        if (!is_int(r, 0, "qemu spawned")) {
                printf("# %s\n", err ? err->msg : "?");
                return;
        }
        ok(pid > 0 && (pidfd >= 0 || !have_pidfd_open()), "pid %d and a pidfd (%d)", (int)pid, pidfd);

        /* QEMU connects at start-up; the frame comes once the guest booted.  Watch the pidfd too. */
        while (t_exit < 0 && ms_since(t0) < 100000) {
                struct pollfd p[2] = { { .fd = pidfd, .events = POLLIN }, /* pidfd < 0: ignored by poll */
                                       { .fd = conn >= 0 ? conn : lsock, .events = POLLIN } };
                int nfds = got < sizeof(frame) ? 2 : 1;

                if (poll(p, (nfds_t)nfds, pidfd >= 0 ? 1000 : 50) < 0)
                        break;
                if (nfds == 2 && (p[1].revents & (POLLIN | POLLHUP))) {
                        if (conn < 0)
                                conn = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
                        else {
                                ssize_t n = read(conn, frame + got, sizeof(frame) - got);
                                if (n <= 0) {
                                        printf("# control connection closed after %zu bytes\n", got);
                                        close(TAKE_FD(conn));
                                        got = sizeof(frame) + 1;
                                } else if ((got += (size_t)n) == sizeof(frame))
                                        t_hello = ms_since(t0);
                        }
                }
                if ((p[0].revents & POLLIN) || (pidfd < 0 && waitpid(pid, &status, WNOHANG) == pid)) {
                        if (pidfd < 0 || waitpid(pid, &status, 0) == pid)
                                t_exit = ms_since(t0);
                        pid = 0;
                }
        }
        if (pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                printf("# QEMU killed after %lld ms\n", (long long)ms_since(t0));
        }
        is_int(got, sizeof(frame), "a whole HELLO frame");
        if (got == sizeof(frame)) {
                is_int(moat_vm_get_u32(frame), 5, "length 5");
                is_int(frame[4], MOAT_VM_HELLO, "type HELLO");
                is_int(moat_vm_get_u32(frame + 5), MOAT_VM_PROTO_VERSION, "version 1");
        }
        ok(t_exit >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "QEMU exited 0 (status 0x%x)", status);
        if (read_file_at(AT_FDCWD, log, &console, &clen) >= 0) {
                _cleanup_free_ char *want = NULL;
                (void)!asprintf(&want, "vm-test-init: modules loaded: %zu", strv_length(k->modules));
                contains(console, want, "the guest loaded the initramfs modules");
                if (!strstr(console, want))
                        printf("# console:\n%s\n", console);
        } else
                ok(false, "console log '%s' readable", log);
        printf("# boot (%s): spawn -> HELLO %lld ms, -> QEMU exit %lld ms\n", moat_vm_accel_name(accel),
               (long long)t_hello, (long long)t_exit);
}

int main(void)
{
        if (!mkdtemp(tmpdir))
                return skip_all("mkdtemp failed");
        test_accel();
        test_tsc();
        test_argv();
        test_kernel();
        test_initramfs();
        test_spawn();
        test_spawn_root();
        test_boot();
        rm_rf_at(AT_FDCWD, tmpdir);
        return done_testing();
}
