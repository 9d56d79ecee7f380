/* SPDX-License-Identifier: Apache-2.0 */
/* moat-vm-test-init: a tiny static PID 1 for tests/unit/test-vm-host.c's real boot.
 * Mounts devtmpfs and sysfs, loads the modules listed in /modules/order (compressed .ko.xz
 * through finit_module(MODULE_INIT_COMPRESSED_FILE)), finds the virtio port named
 * MOAT_VM_PORT_NAME, writes one HELLO frame and powers off.  Progress goes to /dev/console
 * as "vm-test-init: ..." lines (the test reads them from the console log). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <sys/types.h>
/* proto.h (not ours) has a nested comment opener (-Wcomment) and uses ssize_t
 * without <sys/types.h>: tolerate both until it is fixed. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcomment"
#include "vm/proto.h"
#pragma GCC diagnostic pop

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

static int console = -1;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
        char buf[512];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if (n > (int)sizeof(buf) - 2)
                n = (int)sizeof(buf) - 2;
        buf[n++] = '\n';
        if (console >= 0)
                (void)!write(console, "vm-test-init: ", 14), (void)!write(console, buf, (size_t)n);
}

__attribute__((noreturn)) static void poweroff(void)
{
        if (console >= 0)
                tcdrain(console);
        sync();
        reboot(RB_POWER_OFF);
        for (;;)
                pause();
}

static int load_modules(void)
{
        char buf[4096], *save = NULL;
        int fd = open("/modules/order", O_RDONLY | O_CLOEXEC), n = 0;
        ssize_t len;

        if (fd < 0)
                return 0;
        len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len < 0)
                return -1;
        buf[len] = 0;
        for (char *m = strtok_r(buf, "\n", &save); m; m = strtok_r(NULL, "\n", &save)) {
                int mfd = open(m, O_RDONLY | O_CLOEXEC);

                if (mfd < 0 || syscall(SYS_finit_module, mfd, "", MODULE_INIT_COMPRESSED_FILE) < 0) {
                        say("cannot load %s: %s", m, strerror(errno));
                        if (mfd >= 0)
                                close(mfd);
                        return -1;
                }
                close(mfd);
                n++;
        }
        return n;
}

static int open_port(void)
{
        DIR *d = opendir("/sys/class/virtio-ports");
        struct dirent *de;
        int fd = -1;

        if (!d)
                return -1;
        while (fd < 0 && (de = readdir(d))) {
                char path[300], name[64] = "";
                int nfd;
                ssize_t n;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
                nfd = open(path, O_RDONLY | O_CLOEXEC);
                if (nfd < 0)
                        continue;
                n = read(nfd, name, sizeof(name) - 1);
                close(nfd);
                if (n <= 0)
                        continue;
                name[n] = 0;
                name[strcspn(name, "\n")] = 0;
                if (strcmp(name, MOAT_VM_PORT_NAME) == 0) {
                        snprintf(path, sizeof(path), "/dev/%s", de->d_name);
                        fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
                }
        }
        closedir(d);
        return fd;
}

int main(void)
{
        uint8_t frame[9];
        int port, n;

        mount("devtmpfs", "/dev", "devtmpfs", 0, "mode=0755");
        console = open("/dev/console", O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (mount("sysfs", "/sys", "sysfs", 0, NULL) < 0)
                say("cannot mount sysfs: %s", strerror(errno));
        n = load_modules();
        say("modules loaded: %d", n);
        port = open_port();
        if (port < 0) {
                say("no port named %s", MOAT_VM_PORT_NAME);
                poweroff();
        }
        moat_vm_put_u32(frame, 5);
        frame[4] = MOAT_VM_HELLO;
        moat_vm_put_u32(frame + 5, MOAT_VM_PROTO_VERSION);
        if (write(port, frame, sizeof(frame)) != (ssize_t)sizeof(frame))
                say("cannot write HELLO: %s", strerror(errno));
        else
                say("HELLO sent");
        poweroff();
}
