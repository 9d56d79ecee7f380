/* SPDX-License-Identifier: Apache-2.0 */
/* The vm tier's runtime face, host side (vm/rtface.h): the cgroup's resources for a VMM and
 * the terminal of --console-socket. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "linux/terminal.h"
#include "vm/proto.h"
#include "vm/rtface.h"
#include "vm/vm.h"

const struct moat_resources *moat_vm_cgroup_resources(const struct moat_spec *s, struct moat_resources *out)
{
        const struct moat_resources *in = &s->linux_.resources;
        if (!in->present)
                return NULL;
        *out = *in;
        out->devices = NULL;
        out->n_devices = 0;
        if (in->memory.has_limit && in->memory.limit > 0) {
                int64_t limit = ((int64_t)moat_vm_mem_mib(s) + MOAT_VM_MEM_OVERHEAD_MIB) << 20;
                int64_t more = limit - in->memory.limit;
                out->memory.limit = limit;
                if (in->memory.has_swap && in->memory.swap > 0)
                        out->memory.swap = in->memory.swap + more; /* memory + swap: the swap stays as given */
        }
        if (in->pids.has_limit && in->pids.limit > 0 && in->pids.limit < MOAT_VM_MIN_PIDS)
                out->pids.limit = MOAT_VM_MIN_PIDS;
        return out;
}

int moat_vm_pty_open(const struct moat_process *p, const char *console_socket, int *slave,
                     struct moat_error **err)
{
        _cleanup_close_ int m = -EBADF, sl = -EBADF;
        int r = moat_pty_open(&m, &sl, NULL, err);
        if (r < 0)
                return r;
        struct termios t;
        if (tcgetattr(sl, &t) < 0)
                return moat_error_set(err, errno, "the terminal");
        cfmakeraw(&t); /* a transport: the guest's own pty echoes, edits lines and makes ^C a SIGINT */
        if (tcsetattr(sl, TCSANOW, &t) < 0)
                return moat_error_set(err, errno, "cannot set the terminal raw");
        if (p && p->has_console_size) {
                r = moat_pty_set_size(m, p->console_height, p->console_width, err);
                if (r < 0)
                        return r;
        }
        r = moat_console_socket_send(console_socket, m, err);
        if (r < 0)
                return r;
        *slave = TAKE_FD(sl);
        return 0;
}

int moat_vm_tty_open(const struct moat_spec *s, const char *console_socket, int *slave, struct moat_error **err)
{
        return moat_vm_pty_open(s->process, console_socket, slave, err);
}

int moat_vm_tty_size(int tty, uint8_t size[4])
{
        struct winsize ws;
        if (ioctl(tty, TIOCGWINSZ, &ws) < 0)
                return -errno;
        moat_vm_put_u16(size, ws.ws_row);
        moat_vm_put_u16(size + 2, ws.ws_col);
        return ws.ws_row || ws.ws_col;
}

void moat_vm_tlv_put_winsize(struct moat_vm_tlv_writer *w, int tty)
{
        uint8_t b[4];
        if (moat_vm_tty_size(tty, b) > 0)
                moat_vm_tlv_put(w, MOAT_VM_T_WINSIZE, b, sizeof b);
}

int moat_vm_tty_config(int tty, struct moat_vm_config *cfg)
{
        struct moat_vm_tlv_writer w = { .buf = cfg->tlv, .len = cfg->len, .cap = cfg->len };
        moat_vm_tlv_put_winsize(&w, tty);
        cfg->tlv = w.buf;
        cfg->len = w.len;
        return w.err;
}

int moat_vm_tty_send_size(int tty, int fd, uint8_t type)
{
        uint8_t b[4];
        int r = moat_vm_tty_size(tty, b);
        return r < 0 ? r : moat_vm_send(fd, type, b, sizeof b);
}

int moat_vm_tty_resize(int tty, int chan)
{
        return moat_vm_tty_send_size(tty, chan, MOAT_VM_RESIZE);
}
