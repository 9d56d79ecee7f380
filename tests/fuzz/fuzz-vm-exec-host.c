/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: what a hostile guest sends the monitor for exec sessions (vm/exec.h
 * moat_vm_exec_host_frame), with sessions open, clients coming and going.  The input is a
 * list of records:
 *   0xF0 idx u8, type u8, len u16, bytes   a guest frame for session idx (its id put in front)
 *   0xF1 idx u8                            client idx hangs up
 *   0xF2                                   a new client connects and sends its EXEC
 *   0xF3 idx u8, type u8, len u8, bytes    client idx sends a frame (STDIN, SIGNAL, ...)
 *   other: type, len u16, bytes            a raw guest frame (the session id is the fuzzer's)
 * Nothing may crash or touch memory out of bounds; a frame is the host's (0), not an exec
 * frame (1) or a protocol break (< 0, with what set), after which the VM ends: so does the
 * input.  What the clients get must be well-formed frames, an ERROR at most 1024 bytes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vm/exec.h"
#include "vm/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CLIENTS 6

struct fclient {
        int fd;
        uint32_t id;    /* the session's id on the guest channel (the host's choice: 2, 3, ...) */
        struct moat_vm_reader rd;
};

static char dir[] = "/tmp/moat-fuzz-exec-XXXXXX";

static void check(bool cond, const char *what)
{
        if (!cond) {
                fprintf(stderr, "fuzz-vm-exec-host: %s\n", what);
                abort();
        }
}

/* One round of the monitor's poll loop for the exec socket. */
static void host_round(struct moat_vm_exec_host *h, int chan)
{
        struct pollfd p[MOAT_VM_EXEC_HOST_MAX_POLL];
        size_t n = moat_vm_exec_host_poll_add(h, p, MOAT_VM_EXEC_HOST_MAX_POLL, false);
        if (poll(p, n, 0) > 0)
                moat_vm_exec_host_poll_done(h, p, n, chan, true);
}

/* What a client got: frames only, as the host promises. */
static void client_drain(struct fclient *c)
{
        if (c->fd < 0)
                return;
        for (;;) {
                ssize_t n = moat_vm_reader_fill(&c->rd, c->fd);
                uint8_t type;
                const uint8_t *p;
                size_t len;
                int k;
                while ((k = moat_vm_reader_next(&c->rd, &type, &p, &len)) > 0)
                        check(type != MOAT_VM_EXEC_ERROR || len <= 1024, "an EXEC_ERROR over 1024 bytes");
                check(k == 0, "a bad frame to a client");
                if (n <= 0)
                        return;
        }
}

static void drain_fd(int fd)
{
        char buf[4096];
        while (read(fd, buf, sizeof buf) > 0)
                ;
}

static int client_open(struct fclient *c, uint32_t id)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s/" MOAT_VM_EXEC_SOCK, dir);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -1;
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                close(c->fd);
                c->fd = -1;
                return -1;
        }
        static const uint8_t exec[] = { 1, 0, 4, 0, 0, 0, 't', 'r', 'u', 'e' }; /* ARG "true" */
        (void)moat_vm_send(c->fd, MOAT_VM_EXEC, exec, sizeof exec);
        (void)fcntl(c->fd, F_SETFL, O_NONBLOCK);
        c->id = id;
        moat_vm_reader_init(&c->rd, MOAT_VM_MAX_FRAME);
        return 0;
}

static void client_close(struct fclient *c)
{
        if (c->fd < 0)
                return;
        close(c->fd);
        c->fd = -1;
        moat_vm_reader_free(&c->rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static bool have_dir;
        if (!have_dir) {
                if (!mkdtemp(dir))
                        return 0;
                have_dir = true;
        }
        struct moat_vm_exec_host *h = NULL;
        if (moat_vm_exec_host_open(dir, &h, NULL) < 0)
                return 0;
        int chan[2];
        if (pipe2(chan, O_CLOEXEC | O_NONBLOCK) < 0) {
                moat_vm_exec_host_free(h);
                return 0;
        }
        (void)fcntl(chan[1], F_SETPIPE_SZ, 1 << 20);
        struct fclient c[MAX_CLIENTS];
        size_t nc = 0;
        uint32_t next_id = 2;
        for (; nc < 2; nc++)
                if (client_open(&c[nc], next_id++) < 0)
                        goto out;
        host_round(h, chan[1]);
        host_round(h, chan[1]);

        size_t off = 0;
        uint8_t *frame = malloc(4 + 65536);
        if (!frame)
                goto out;
        while (off < size) {
                uint8_t op = data[off++];
                if (op == 0xF1 && off < size) {
                        client_close(&c[data[off++] % nc]);
                        host_round(h, chan[1]);
                        continue;
                }
                if (op == 0xF2) {
                        if (nc < MAX_CLIENTS && client_open(&c[nc], next_id++) == 0)
                                nc++;
                        host_round(h, chan[1]); /* accepted */
                        host_round(h, chan[1]); /* its EXEC to the guest */
                        continue;
                }
                if (op == 0xF3 && off + 3 <= size) {
                        struct fclient *cl = &c[data[off] % nc];
                        uint8_t type = data[off + 1];
                        size_t len = data[off + 2];
                        off += 3;
                        len = len > size - off ? size - off : len;
                        if (cl->fd >= 0)
                                (void)moat_vm_send(cl->fd, type, data + off, len);
                        off += len;
                        host_round(h, chan[1]);
                        continue;
                }
                size_t need = op == 0xF0 ? 4 : 2; /* [idx type] len u16 */
                if (off + need > size)
                        break;
                uint32_t id = op == 0xF0 ? c[data[off] % nc].id : 0;
                uint8_t type = op == 0xF0 ? data[off + 1] : op;
                size_t len = moat_vm_get_u16(data + off + need - 2);
                off += need;
                len = len > size - off ? size - off : len;
                size_t flen = 0;
                if (op == 0xF0) {
                        moat_vm_put_u32(frame, id);
                        flen = 4;
                }
                memcpy(frame + flen, data + off, len);
                flen += len;
                off += len;
                /* an exact-size copy: ASan sees any read past the payload */
                uint8_t *p = malloc(flen ? flen : 1);
                if (!p)
                        break;
                memcpy(p, frame, flen);
                const char *what = NULL;
                int r = moat_vm_exec_host_frame(h, type, p, flen, &what);
                free(p);
                check(r == 0 || r == 1 || (r == -EPROTO && what && *what), "an answer that is none of 0, 1, -EPROTO");
                check(r != 1 || (type < MOAT_VM_EXEC_STARTED || type > MOAT_VM_EXEC_ERROR),
                      "an exec frame taken for another's");
                for (size_t i = 0; i < nc; i++)
                        client_drain(&c[i]);
                drain_fd(chan[0]);
                if (r < 0)
                        break; /* the VM ends here */
                host_round(h, chan[1]);
        }
        free(frame);
out:
        for (size_t i = 0; i < nc; i++)
                client_close(&c[i]);
        moat_vm_exec_host_free(h);
        close(chan[0]);
        close(chan[1]);
        return 0;
}
