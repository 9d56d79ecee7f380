/* SPDX-License-Identifier: Apache-2.0 */
/*
 * moat-vminit: PID 1 of a vm-tier guest (/init of its initramfs).
 *
 *   (as PID 1)  mounts /dev /proc /sys, loads /modules/order, opens the virtio-serial port
 *               named MOAT_VM_PORT_NAME, HELLO, reads CONFIG, builds the root (overlay of
 *               vda + vdb) and its mounts, switches root, runs the process, relays its
 *               stdio as frames, EXIT, powers off.
 *   moat-vminit --channel-fd N   (or MOAT_VMINIT_CHANNEL_FD=N)
 *               test mode: no mounts, modules, port, root switch or power-off; fd N is the
 *               channel and the process runs as the current user when USER cannot be set.
 *
 * Protocol: src/vm/proto.h.  A failure before the process starts: ERROR + EXIT 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vminit.h"

static int log_fd = STDERR_FILENO;

void vm_log(const char *fmt, ...)
{
        char buf[1024];
        va_list ap;
        int n = snprintf(buf, sizeof buf, "moat-vminit: ");

        va_start(ap, fmt);
        n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
        va_end(ap);
        if (n >= (int)sizeof buf - 1)
                n = (int)sizeof buf - 2;
        buf[n++] = '\n';
        (void)!write(log_fd, buf, (size_t)n);
}

static int parse_fd(const char *s)
{
        char *end;
        errno = 0;
        long v = s ? strtol(s, &end, 10) : -1;
        if (!s || errno || end == s || *end || v < 0 || v > 1 << 20)
                return -1;
        return (int)v;
}

/* Waits for the first frame; it must be CONFIG.  1 ok, 0 channel gone, -1 protocol error. */
static int read_config(int chan, struct moat_vm_reader *rd, struct vm_config *c, const char **why)
{
        for (;;) {
                uint8_t type;
                const uint8_t *p;
                size_t len;
                int k = moat_vm_reader_next(rd, &type, &p, &len);

                if (k < 0) {
                        *why = "bad frame from the host";
                        return -1;
                }
                if (k > 0) {
                        if (type != MOAT_VM_CONFIG) {
                                *why = "the first frame from the host is not CONFIG";
                                return -1;
                        }
                        int r = vm_config_parse(c, p, len, why);
                        if (r < 0) {
                                if (!*why)
                                        *why = r == -ENOMEM ? "out of memory" : "bad CONFIG";
                                return -1;
                        }
                        return 1;
                }
                struct pollfd pfd = { .fd = chan, .events = POLLIN };
                if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                        return 0;
                ssize_t n = moat_vm_reader_fill(rd, chan);
                if (n == 0 || (n < 0 && n != -EAGAIN))
                        return 0;
        }
}

static void send_exit(int chan, int code)
{
        uint8_t b[4];

        moat_vm_put_u32(b, (uint32_t)code);
        (void)moat_vm_send(chan, MOAT_VM_EXIT, b, sizeof b);
}

static void fail_before_start(int chan, const char *why)
{
        vm_log("%s", why);
        if (chan >= 0) {
                (void)moat_vm_send(chan, MOAT_VM_ERROR, why, strlen(why));
                send_exit(chan, 1);
        }
}

int main(int argc, char **argv)
{
        bool test_mode = false;
        int chan = -1;
        struct moat_vm_reader rd;
        struct vm_config c;
        const char *why = NULL;
        char whybuf[512];
        int code = 1;

        if (argc == 3 && strcmp(argv[1], "--channel-fd") == 0) {
                test_mode = true;
                chan = parse_fd(argv[2]);
        } else if (getenv("MOAT_VMINIT_CHANNEL_FD")) {
                test_mode = true;
                chan = parse_fd(getenv("MOAT_VMINIT_CHANNEL_FD"));
        } else if (argc > 1 || getpid() != 1) {
                fprintf(stderr, "usage: moat-vminit (as PID 1 of a VM) | moat-vminit --channel-fd N\n");
                return 2;
        }
        if (test_mode && (chan < 0 || fcntl(chan, F_GETFD) < 0)) {
                fprintf(stderr, "moat-vminit: bad channel fd\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        signal(SIGCHLD, SIG_DFL);
        moat_vm_reader_init(&rd, 0);

        if (!test_mode) {
                vm_early_mounts();
                int con = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
                if (con >= 0)
                        log_fd = con;
                vm_load_modules("/modules/order");
                chan = vm_open_port(MOAT_VM_PORT_NAME, 10000);
                if (chan < 0) {
                        vm_log("no virtio-serial port named '%s': %s", MOAT_VM_PORT_NAME, strerror(-chan));
                        vm_poweroff();
                }
        } else {
                (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
        (void)fcntl(chan, F_SETFD, FD_CLOEXEC);
        int fl = fcntl(chan, F_GETFL);
        if (fl >= 0)
                (void)fcntl(chan, F_SETFL, fl | O_NONBLOCK);

        uint8_t ver[4];
        moat_vm_put_u32(ver, MOAT_VM_PROTO_VERSION);
        if (moat_vm_send(chan, MOAT_VM_HELLO, ver, sizeof ver) < 0) {
                vm_log("cannot send HELLO");
                goto end;
        }
        int k = read_config(chan, &rd, &c, &why);
        if (k <= 0) {
                if (k < 0)
                        fail_before_start(chan, why);
                else
                        vm_log("the host closed the channel before CONFIG");
                goto end;
        }
        if (!test_mode) {
                if ((c.has_net && vm_setup_net(&c, whybuf, sizeof whybuf) < 0) ||
                    vm_setup_root(&c, whybuf, sizeof whybuf) < 0) {
                        fail_before_start(chan, whybuf);
                        vm_config_free(&c);
                        goto end;
                }
        }
        code = vm_run(chan, &rd, &c, test_mode);
        vm_config_free(&c);
        if (code >= 0)
                send_exit(chan, code);
        else
                vm_log("the channel broke: the process was killed");
end:
        moat_vm_reader_free(&rd);
        if (!test_mode) {
                (void)kill(-1, SIGKILL);
                while (wait(NULL) > 0 || errno == EINTR)
                        ;
                vm_poweroff();
        }
        close(chan);
        return code < 0 ? 1 : code;
}
