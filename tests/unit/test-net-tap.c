/* SPDX-License-Identifier: Apache-2.0 */
/* A VM's port on an environment's bridge (net/tap.h), in a network namespace of the test's
 * own: named like a container's veth, a port of the bridge, up, hairpin and IPv6 off; gone
 * when its fd closes; a leftover of that name replaced; no bridge, a clear error. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "net/link.h"
#include "net/tap.h"
#include "tap.h"

static char *read_line(const char *dir, const char *name, const char *file)
{
        char path[256];
        char *text = NULL;
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%s/%s", dir, name, file);
        if (read_file_at(AT_FDCWD, path, &text, &len) < 0)
                return NULL;
        text[strcspn(text, "\n")] = 0;
        return text;
}

int main(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        char br[IFNAMSIZ], want[IFNAMSIZ], name[IFNAMSIZ] = "";
        struct in_addr a;
        int fd = -EBADF;

        if (geteuid() != 0)
                return skip_all("needs root (a network namespace, a bridge, a TAP)");
        /* a netns, and a mount ns for a /sys that shows it */
        if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("sysfs", "/sys", "sysfs", 0, NULL) < 0)
                return skip_all("cannot make a network namespace with its own /sys");
        if (access("/dev/net/tun", R_OK | W_OK) < 0)
                return skip_all("no /dev/net/tun (the tun module)");
        inet_pton(AF_INET, "10.77.0.9", &a);
        moat_net_bridge_name("tapt", br);
        moat_net_veth_name("tapt", 9, want);

        is_int(moat_net_tap_attach(NULL, "tapt", a, &fd, name, &err), -ENODEV, "no bridge: -ENODEV");
        contains(err ? err->msg : NULL, "environment 'tapt' has no bridge", "... saying which");
        ok(fd < 0, "... and no fd");
        moat_error_freep(&err);

        if (moat_bridge_create(br, 0, &err) < 0) {
                ok(false, "bridge: %s", err ? err->msg : "?");
                return done_testing();
        }
        is_int(moat_net_tap_attach(NULL, "tapt", a, &fd, name, &err), 0, "TAP attached");
        if (err)
                printf("# %s\n", err->msg);
        is_str(name, want, "named like a container's veth would be (%s)", want);
        struct moat_link_info li = { 0 }, bi = { 0 };
        ok(moat_link_get(NULL, name, &li, &err) > 0, "it exists");
        moat_link_get(NULL, br, &bi, &err);
        is_str(li.kind, "tun", "a tun/tap link");
        ok(li.master == bi.index && bi.index > 0, "a port of '%s'", br);
        ok(li.flags & IFF_UP, "up");
        _cleanup_free_ char *hp = read_line("/sys/class/net", name, "brport/hairpin_mode");
        is_str(hp, "0", "hairpin off");
        _cleanup_free_ char *v6 = read_line("/proc/sys/net/ipv6/conf", name, "disable_ipv6");
        ok(!v6 || STREQ(v6, "1"), "IPv6 off (%s)", v6 ? v6 : "no IPv6");
        _cleanup_free_ char *flags = read_line("/sys/class/net", name, "tun_flags");
        unsigned long tf = flags ? strtoul(flags, NULL, 16) : 0;
        ok((tf & 0x0002) && (tf & 0x1000) && !(tf & 0x0800), "IFF_TAP | IFF_NO_PI, not persistent (%s)",
           flags ? flags : "?");
        ok(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "the fd is O_CLOEXEC");

        /* the same address again (a crash left the old one): the old link goes, a new one comes */
        int fd2 = -EBADF;
        is_int(moat_net_tap_attach(NULL, "tapt", a, &fd2, NULL, &err), 0, "attached again over a leftover");
        close(fd);
        ok(moat_link_get(NULL, name, &li, &err) > 0, "the new one stays when the old fd closes");
        close(fd2);
        moat_error_freep(&err);
        is_int(moat_link_get(NULL, name, &li, &err), -ENODEV, "closing the last fd removes the TAP");
        moat_error_freep(&err);
        moat_link_delete(NULL, br, NULL);
        return done_testing();
}
