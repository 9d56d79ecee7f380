/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: bytes a hostile guest could write on the vm tier's channel.  They go
 * through the host's incremental frame reader (in odd-sized pieces) and every frame's payload,
 * and the whole input, through the TLV iterator.  Nothing may crash, leak, or read out of
 * bounds; a broken stream must end with -EBADMSG. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "vm/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_tlvs(const uint8_t *p, size_t len)
{
        struct moat_vm_tlv_iter it = { .p = p, .end = p + len };
        uint16_t tag;
        const uint8_t *val;
        size_t vlen;
        while (moat_vm_tlv_next(&it, &tag, &val, &vlen) > 0)
                if (vlen >= 4)
                        (void)moat_vm_get_u32(val);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        walk_tlvs(data, size);
        int fds[2];
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
                return 0;
        struct moat_vm_reader r;
        moat_vm_reader_init(&r, 4096); /* small, so big lengths are refused here too */
        size_t off = 0, piece = 1;
        int broken = 0;
        while (!broken) {
                if (off < size) {
                        size_t n = size - off < piece ? size - off : piece;
                        ssize_t w = write(fds[1], data + off, n);
                        if (w > 0)
                                off += (size_t)w;
                        piece = piece * 3 + 1;
                } else if (fds[1] >= 0) {
                        close(fds[1]);
                        fds[1] = -1;
                }
                ssize_t got = moat_vm_reader_fill(&r, fds[0]);
                uint8_t type;
                const uint8_t *p;
                size_t len;
                int k;
                while ((k = moat_vm_reader_next(&r, &type, &p, &len)) > 0)
                        walk_tlvs(p, len);
                if (k < 0 || got == 0 || (got < 0 && got != -EAGAIN && got != -ENOBUFS))
                        broken = 1;
        }
        moat_vm_reader_free(&r);
        close(fds[0]);
        if (fds[1] >= 0)
                close(fds[1]);
        return 0;
}
