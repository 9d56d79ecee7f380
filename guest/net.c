/* SPDX-License-Identifier: Apache-2.0 */
/* The guest's network (CONFIG's NET, vm/proto.h): the virtio-net driver from /modules/net,
 * then eth0 with its address, lo, and the default route, with the classic ioctls (no
 * netlink needed for one address and one route).  IPv6 is off, as for containers: the
 * environment's policy never lets it through, and the guest should not pretend otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vminit.h"

#define NET_WAIT_MS 10000 /* the device appears as soon as virtio_net probes: this is a hang */

static void write_sysctl(const char *path, const char *value)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return; /* a kernel without IPv6: nothing to turn off */
        (void)!write(fd, value, strlen(value));
        close(fd);
}

static int set_up(int s, const char *ifname)
{
        struct ifreq ifr = { 0 };
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return -errno;
        ifr.ifr_flags |= IFF_UP;
        return ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

static void sin_of(struct sockaddr *sa, const uint8_t a[4])
{
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        memset(in, 0, sizeof *in);
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr.s_addr, a, 4);
}

static int wait_for(const char *path)
{
        struct timespec d = { 0, 2 * 1000 * 1000 };
        for (int ms = 0; ms < NET_WAIT_MS; ms += 2) {
                if (access(path, F_OK) == 0)
                        return 0;
                nanosleep(&d, NULL);
        }
        return -ETIMEDOUT;
}

int vm_setup_net(const struct vm_config *c, char *why, size_t whylen)
{
        vm_load_modules("/modules/net");
        write_sysctl("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
        write_sysctl("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
        if (wait_for("/sys/class/net/eth0") < 0) {
                snprintf(why, whylen, "no network device eth0 after %d s (virtio_net not loaded?)", NET_WAIT_MS / 1000);
                return -1;
        }
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0) {
                snprintf(why, whylen, "socket: %s", strerror(errno));
                return -1;
        }
        struct ifreq ifr = { 0 };
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "eth0");
        uint32_t mask = c->net_prefix ? htonl(~0u << (32 - c->net_prefix)) : 0;
        const char *step = "SIOCSIFADDR";
        int r = 0;
        sin_of(&ifr.ifr_addr, c->net_addr);
        if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
                r = -errno;
        if (r == 0) {
                step = "SIOCSIFNETMASK";
                sin_of(&ifr.ifr_netmask, (const uint8_t *)&mask);
                if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0)
                        r = -errno;
        }
        if (r == 0) {
                step = "eth0 up";
                r = set_up(s, "eth0");
        }
        if (r == 0) {
                step = "lo up";
                r = set_up(s, "lo");
        }
        if (r == 0) {
                static const uint8_t any[4] = { 0, 0, 0, 0 };
                struct rtentry rt = { 0 };
                char dev[] = "eth0";
                step = "the default route";
                sin_of(&rt.rt_dst, any);
                sin_of(&rt.rt_genmask, any);
                sin_of(&rt.rt_gateway, c->net_gateway);
                rt.rt_flags = RTF_UP | RTF_GATEWAY;
                rt.rt_dev = dev;
                if (ioctl(s, SIOCADDRT, &rt) < 0)
                        r = -errno;
        }
        close(s);
        if (r < 0) {
                snprintf(why, whylen, "network: %s: %s", step, strerror(-r));
                return -1;
        }
        return 0;
}
