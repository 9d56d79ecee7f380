/* SPDX-License-Identifier: Apache-2.0 */
#include "net/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "net/link.h"

void moat_net_addr_mac(struct in_addr addr, unsigned char mac[static 6])
{
        const unsigned char *b = (const unsigned char *)&addr.s_addr;
        mac[0] = 0x02;
        mac[1] = 0x6d;
        memcpy(mac + 2, b, 4);
}

int moat_net_tap_attach(struct moat_nl *nl, const char *env, struct in_addr addr, int *tap_fd,
                        char name[IFNAMSIZ], struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct moat_nl *s;
        struct moat_link_info info;
        char br[IFNAMSIZ], tap[IFNAMSIZ], ip[INET_ADDRSTRLEN];
        int r;

        *tap_fd = -EBADF;
        r = moat_nl_or_open(nl, &tmp, &s, err);
        if (r < 0)
                return r;
        inet_ntop(AF_INET, &addr, ip, sizeof ip);
        moat_net_bridge_name(env, br);
        r = moat_net_veth_name(env, ntohl(addr.s_addr) & 0xff, tap);
        if (r < 0)
                return moat_error_input(err, r, "no port name for '%s' in environment '%s'", ip, env);
        r = moat_link_get(s, br, &info, err);
        if (r == -ENODEV) {
                moat_error_free(*err);
                *err = NULL;
                return moat_error_input(err, -ENODEV, "environment '%s' has no bridge '%s' (is it up?)", env, br);
        }
        if (r < 0)
                return r;
        if (!STREQ(info.kind, "bridge"))
                return moat_error_input(err, -EINVAL, "link '%s' of environment '%s' is not a bridge", br, env);
        /* a leftover of a crash has the name we want: it is ours, it goes */
        if ((r = moat_link_delete(s, tap, err)) < 0)
                return r;
        fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot open '/dev/net/tun' (is the tun module there?)");
        struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
        memcpy(ifr.ifr_name, tap, IFNAMSIZ);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0)
                return moat_error_set(err, errno, "cannot create the TAP '%s'", tap);
        /* from here on, closing fd removes the TAP: every failure below leaves nothing */
        if ((r = moat_link_set_master(s, tap, br, err)) < 0 || (r = moat_bridge_port_hairpin(s, tap, false, err)) < 0 ||
            (r = moat_link_disable_ipv6(-1, tap, true, err)) < 0 || (r = moat_link_set_up(s, tap, true, err)) < 0)
                return moat_error_prefix(err, r, "attaching '%s' to environment '%s'", ip, env);
        if (name)
                memcpy(name, tap, IFNAMSIZ);
        *tap_fd = TAKE_FD(fd);
        return 0;
}
