/* SPDX-License-Identifier: Apache-2.0 */
/* The vm channel's frames and TLVs (see proto.h).  Only libc: the static guest init links
 * this file too.  Every length read from the wire is checked before it is used. */
#include "vm/proto.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HDR 4u          /* the u32 length */
#define READ_CHUNK 4096u

static int write_all(int fd, const uint8_t *p, size_t n)
{
        bool sock = true;

        while (n > 0) {
                ssize_t w;

                if (sock) {
                        /* MSG_NOSIGNAL: a closed peer is -EPIPE, never SIGPIPE */
                        w = send(fd, p, n, MSG_NOSIGNAL);
                        if (w < 0 && errno == ENOTSOCK) {
                                sock = false;
                                continue;
                        }
                } else {
                        w = write(fd, p, n);
                }
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK) {
                                struct pollfd pfd = { .fd = fd, .events = POLLOUT };

                                if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                                        return -errno;
                                continue;
                        }
                        return -errno;
                }
                if (w == 0)
                        return -EIO;
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

int moat_vm_send(int fd, uint8_t type, const void *payload, size_t len)
{
        uint8_t hdr[HDR + 1];

        if (len > MOAT_VM_MAX_FRAME - 1)
                return -EMSGSIZE;
        if (len > 0 && !payload)
                return -EINVAL;
        moat_vm_put_u32(hdr, (uint32_t)(len + 1));
        hdr[HDR] = type;
        if (len <= 256) {
                /* small frames in one write: fewer wakeups on the other side */
                uint8_t buf[sizeof hdr + 256];

                memcpy(buf, hdr, sizeof hdr);
                if (len)
                        memcpy(buf + sizeof hdr, payload, len);
                return write_all(fd, buf, sizeof hdr + len);
        }
        int r = write_all(fd, hdr, sizeof hdr);
        if (r < 0)
                return r;
        return write_all(fd, payload, len);
}

void moat_vm_reader_init(struct moat_vm_reader *r, size_t max_frame)
{
        memset(r, 0, sizeof *r);
        r->max = max_frame == 0 || max_frame > MOAT_VM_MAX_FRAME ? MOAT_VM_MAX_FRAME : max_frame;
}

void moat_vm_reader_free(struct moat_vm_reader *r)
{
        free(r->buf);
        r->buf = NULL;
        r->len = r->cap = r->skip = 0;
}

static void reader_compact(struct moat_vm_reader *r)
{
        if (r->skip == 0)
                return;
        if (r->skip >= r->len) {
                r->len = 0;
        } else {
                memmove(r->buf, r->buf + r->skip, r->len - r->skip);
                r->len -= r->skip;
        }
        r->skip = 0;
}

ssize_t moat_vm_reader_fill(struct moat_vm_reader *r, int fd)
{
        size_t limit = r->max + HDR;

        reader_compact(r);
        if (r->len >= limit)
                return -ENOBUFS;
        if (r->cap - r->len < READ_CHUNK && r->cap < limit) {
                size_t ncap = r->cap ? r->cap * 2 : 2 * READ_CHUNK;

                if (ncap > limit)
                        ncap = limit;
                uint8_t *nb = realloc(r->buf, ncap);
                if (!nb)
                        return -ENOMEM;
                r->buf = nb;
                r->cap = ncap;
        }
        for (;;) {
                ssize_t n = read(fd, r->buf + r->len, r->cap - r->len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
                }
                r->len += (size_t)n;
                return n;
        }
}

int moat_vm_reader_next(struct moat_vm_reader *r, uint8_t *type, const uint8_t **payload, size_t *len)
{
        reader_compact(r);
        if (r->len < HDR)
                return 0;
        uint32_t flen = moat_vm_get_u32(r->buf);
        if (flen == 0 || flen > r->max)
                return -EBADMSG;
        if (r->len - HDR < flen)
                return 0;
        *type = r->buf[HDR];
        *payload = r->buf + HDR + 1;
        *len = flen - 1;
        r->skip = HDR + flen;
        return 1;
}

/* ---- TLVs ---- */

#define TLV_HDR 6u      /* u16 tag, u32 length */

void moat_vm_tlv_put(struct moat_vm_tlv_writer *w, uint16_t tag, const void *val, size_t len)
{
        if (w->err)
                return;
        if (len > MOAT_VM_MAX_FRAME || w->len + TLV_HDR + len > MOAT_VM_MAX_FRAME - 1) {
                w->err = -EMSGSIZE;
                return;
        }
        if (len > 0 && !val) {
                w->err = -EINVAL;
                return;
        }
        size_t need = w->len + TLV_HDR + len;
        if (need > w->cap) {
                size_t ncap = w->cap ? w->cap : 256;

                while (ncap < need)
                        ncap *= 2;
                uint8_t *nb = realloc(w->buf, ncap);
                if (!nb) {
                        w->err = -ENOMEM;
                        return;
                }
                w->buf = nb;
                w->cap = ncap;
        }
        moat_vm_put_u16(w->buf + w->len, tag);
        moat_vm_put_u32(w->buf + w->len + 2, (uint32_t)len);
        if (len)
                memcpy(w->buf + w->len + TLV_HDR, val, len);
        w->len = need;
}

void moat_vm_tlv_put_str(struct moat_vm_tlv_writer *w, uint16_t tag, const char *s)
{
        if (!s) {
                if (!w->err)
                        w->err = -EINVAL;
                return;
        }
        moat_vm_tlv_put(w, tag, s, strlen(s));
}

void moat_vm_tlv_put_u32(struct moat_vm_tlv_writer *w, uint16_t tag, uint32_t v)
{
        uint8_t b[4];

        moat_vm_put_u32(b, v);
        moat_vm_tlv_put(w, tag, b, sizeof b);
}

void moat_vm_tlv_put_u64(struct moat_vm_tlv_writer *w, uint16_t tag, uint64_t v)
{
        uint8_t b[8];

        moat_vm_put_u64(b, v);
        moat_vm_tlv_put(w, tag, b, sizeof b);
}

void moat_vm_tlv_free(struct moat_vm_tlv_writer *w)
{
        free(w->buf);
        w->buf = NULL;
        w->len = w->cap = 0;
        w->err = 0;
}

int moat_vm_tlv_next(struct moat_vm_tlv_iter *it, uint16_t *tag, const uint8_t **val, size_t *len)
{
        if (!it->p || it->p >= it->end)
                return 0;
        size_t left = (size_t)(it->end - it->p);
        if (left < TLV_HDR)
                return -EBADMSG;
        uint32_t l = moat_vm_get_u32(it->p + 2);
        if (l > left - TLV_HDR)
                return -EBADMSG;
        *tag = moat_vm_get_u16(it->p);
        *val = it->p + TLV_HDR;
        *len = l;
        it->p += TLV_HDR + l;
        return 1;
}
