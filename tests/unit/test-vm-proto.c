/* SPDX-License-Identifier: Apache-2.0 */
/* src/vm/proto.c: frames over fds (round trips, split reads, bad lengths) and TLVs.
 * check_stream()/check_tlvs() take arbitrary bytes and must never crash: they are the
 * bodies of a later fuzz target. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "vm/proto.h"

/* Feeds bytes one at a time (or in chunks) through a pipe into a reader: returns the number
 * of frames, or -EBADMSG. */
static int check_stream(const uint8_t *data, size_t len, size_t chunk, size_t max)
{
        int p[2];
        struct moat_vm_reader r;
        int frames = 0, ret = 0;

        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        moat_vm_reader_init(&r, max);
        for (size_t off = 0; off <= len && ret >= 0; off += chunk) {
                size_t n = len - off < chunk ? len - off : chunk;
                if (n > 0 && write(p[1], data + off, n) != (ssize_t)n) {
                        ret = -EIO;
                        break;
                }
                if (off + n >= len)
                        close(p[1]), p[1] = -1;
                for (;;) {
                        ssize_t f = moat_vm_reader_fill(&r, p[0]);
                        if (f == 0 || f == -EAGAIN)
                                break;
                        if (f < 0) {
                                ret = (int)f;
                                break;
                        }
                        uint8_t type;
                        const uint8_t *pl;
                        size_t pl_len;
                        int k;
                        while ((k = moat_vm_reader_next(&r, &type, &pl, &pl_len)) > 0) {
                                /* touch the payload: ASan catches an out-of-bounds one */
                                volatile uint8_t s = type;
                                for (size_t i = 0; i < pl_len; i++)
                                        s ^= pl[i];
                                (void)s;
                                frames++;
                        }
                        if (k < 0) {
                                ret = k;
                                break;
                        }
                }
                if (n == 0)
                        break;
        }
        if (p[1] >= 0)
                close(p[1]);
        close(p[0]);
        moat_vm_reader_free(&r);
        return ret < 0 ? ret : frames;
}

static int check_tlvs(const uint8_t *data, size_t len)
{
        struct moat_vm_tlv_iter it = { .p = data, .end = data + len };
        uint16_t tag;
        const uint8_t *v;
        size_t l;
        int k, n = 0;

        while ((k = moat_vm_tlv_next(&it, &tag, &v, &l)) > 0) {
                volatile uint8_t s = 0;
                for (size_t i = 0; i < l; i++)
                        s ^= v[i];
                (void)s;
                n++;
                if (n > 1000000)
                        return -ELOOP;
        }
        return k < 0 ? k : n;
}

static void frame_bytes(uint8_t *out, uint32_t flen, uint8_t type)
{
        moat_vm_put_u32(out, flen);
        out[4] = type;
}

static void test_round_trip(void)
{
        int sv[2];
        struct moat_vm_reader r;
        uint8_t type;
        const uint8_t *p;
        size_t len;

        ok(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
        uint8_t v[4];
        moat_vm_put_u32(v, 1);
        is_int(moat_vm_send(sv[0], MOAT_VM_HELLO, v, 4), 0, "send HELLO");
        is_int(moat_vm_send(sv[0], MOAT_VM_STDIN, NULL, 0), 0, "send an empty STDIN");
        is_int(moat_vm_send(sv[0], MOAT_VM_STDOUT, "hello", 5), 0, "send STDOUT");
        /* a big one (more than the socket buffer: the reader has to drain it meanwhile) */
        size_t big = MOAT_VM_MAX_FRAME - 1;
        uint8_t *bigbuf = malloc(big);
        for (size_t i = 0; i < big; i++)
                bigbuf[i] = (uint8_t)(i * 7);
        fcntl(sv[1], F_SETFL, O_NONBLOCK);
        moat_vm_reader_init(&r, 0);
        pid_t pid = fork();
        if (pid == 0) {
                _exit(moat_vm_send(sv[0], MOAT_VM_STDOUT, bigbuf, big) == 0 ? 0 : 1);
        }
        int got = 0, big_ok = 0;
        while (got < 4) {
                ssize_t n = moat_vm_reader_fill(&r, sv[1]);
                if (n == 0 || (n < 0 && n != -EAGAIN))
                        break;
                int k;
                while ((k = moat_vm_reader_next(&r, &type, &p, &len)) > 0) {
                        got++;
                        if (got == 1)
                                ok(type == MOAT_VM_HELLO && len == 4 && moat_vm_get_u32(p) == 1, "HELLO 1 back");
                        if (got == 2)
                                ok(type == MOAT_VM_STDIN && len == 0, "empty STDIN back");
                        if (got == 3)
                                ok(type == MOAT_VM_STDOUT && len == 5 && memcmp(p, "hello", 5) == 0, "STDOUT back");
                        if (got == 4)
                                big_ok = type == MOAT_VM_STDOUT && len == big && memcmp(p, bigbuf, big) == 0;
                }
                if (k < 0)
                        break;
                if (n == -EAGAIN)
                        usleep(1000);
        }
        ok(big_ok, "a frame of MOAT_VM_MAX_FRAME bytes back intact");
        ok(r.cap <= MOAT_VM_MAX_FRAME + 4, "the reader buffer stays within max + 4 (%zu)", r.cap);
        int st;
        waitpid(pid, &st, 0);
        is_int(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0, "the big send completed");
        is_int(moat_vm_send(sv[0], MOAT_VM_STDOUT, bigbuf, big + 1), -EMSGSIZE, "one byte more: -EMSGSIZE");
        close(sv[1]);
        is_int(moat_vm_send(sv[0], MOAT_VM_STDOUT, "x", 1), -EPIPE, "peer closed: -EPIPE, no SIGPIPE");
        close(sv[0]);
        moat_vm_reader_free(&r);
        free(bigbuf);
}

static void test_split_and_bad(void)
{
        uint8_t s[64];
        size_t n = 0;

        /* three frames back to back */
        frame_bytes(s + n, 5, MOAT_VM_SIGNAL);
        moat_vm_put_u32(s + n + 5, 15);
        n += 9;
        frame_bytes(s + n, 1, MOAT_VM_STDIN);
        n += 5;
        frame_bytes(s + n, 5, MOAT_VM_RESIZE);
        memcpy(s + n + 5, "\x18\x00\x50\x00", 4);
        n += 9;
        is_int(check_stream(s, n, n, 0), 3, "3 frames in one read");
        is_int(check_stream(s, n, 1, 0), 3, "3 frames byte by byte");
        is_int(check_stream(s, n, 3, 0), 3, "3 frames 3 bytes at a time");
        is_int(check_stream(s, n - 1, 1, 0), 2, "a truncated last frame is not returned");

        uint8_t z[5];
        frame_bytes(z, 0, 1);
        is_int(check_stream(z, 5, 1, 0), -EBADMSG, "length 0: -EBADMSG");
        frame_bytes(z, MOAT_VM_MAX_FRAME + 1, 1);
        is_int(check_stream(z, 5, 5, 0), -EBADMSG, "length over MOAT_VM_MAX_FRAME: -EBADMSG");
        frame_bytes(z, 0xffffffffu, 1);
        is_int(check_stream(z, 4, 1, 0), -EBADMSG, "length 4 GiB: -EBADMSG from the header alone");
        frame_bytes(z, 101, 1);
        is_int(check_stream(z, 5, 5, 100), -EBADMSG, "over a lower reader max: -EBADMSG");
        frame_bytes(z, 100, 1);
        is_int(check_stream(z, 5, 5, 100), 0, "at the lower max: waits for the rest");

        struct moat_vm_reader r;
        moat_vm_reader_init(&r, 0);
        is_int(r.max, MOAT_VM_MAX_FRAME, "max 0 = MOAT_VM_MAX_FRAME");
        moat_vm_reader_init(&r, (size_t)MOAT_VM_MAX_FRAME * 8);
        is_int(r.max, MOAT_VM_MAX_FRAME, "max is clamped to MOAT_VM_MAX_FRAME");
        moat_vm_reader_free(&r);

        /* pseudo-random garbage: never a crash */
        uint8_t g[4096];
        unsigned seed = 1;
        int crashed = 0;
        for (int round = 0; round < 200; round++) {
                for (size_t i = 0; i < sizeof g; i++) {
                        seed = seed * 1103515245u + 12345u;
                        g[i] = (uint8_t)(seed >> 16);
                }
                if (round % 2)  /* small plausible lengths */
                        for (size_t i = 0; i + 5 < sizeof g; i += 37)
                                frame_bytes(g + i, g[i + 4] % 40, g[i + 4]);
                int k = check_stream(g, sizeof g, 1 + (size_t)round % 17, 0);
                if (k < 0 && k != -EBADMSG)
                        crashed++;
                k = check_tlvs(g, sizeof g);
                if (k < 0 && k != -EBADMSG)
                        crashed++;
        }
        is_int(crashed, 0, "200 rounds of garbage: only frames or -EBADMSG");
}

static void test_tlv(void)
{
        struct moat_vm_tlv_writer w = { 0 };
        uint16_t tag;
        const uint8_t *v;
        size_t l;

        moat_vm_tlv_put_str(&w, MOAT_VM_T_ARG, "/bin/sh");
        moat_vm_tlv_put_str(&w, MOAT_VM_T_ARG, "");
        moat_vm_tlv_put_u32(&w, MOAT_VM_T_UMASK, 022);
        moat_vm_tlv_put_u64(&w, 0x7777, 0x0102030405060708ULL);
        moat_vm_tlv_put(&w, MOAT_VM_T_TERMINAL, NULL, 0);
        is_int(w.err, 0, "writer: no error");
        is_int(w.len, 6 * 5 + 7 + 0 + 4 + 8 + 0, "writer: length");

        struct moat_vm_tlv_iter it = { .p = w.buf, .end = w.buf + w.len };
        ok(moat_vm_tlv_next(&it, &tag, &v, &l) == 1 && tag == MOAT_VM_T_ARG && l == 7 && !memcmp(v, "/bin/sh", 7),
           "TLV 1: ARG /bin/sh");
        ok(moat_vm_tlv_next(&it, &tag, &v, &l) == 1 && tag == MOAT_VM_T_ARG && l == 0, "TLV 2: empty ARG");
        ok(moat_vm_tlv_next(&it, &tag, &v, &l) == 1 && tag == MOAT_VM_T_UMASK && l == 4 && moat_vm_get_u32(v) == 022,
           "TLV 3: UMASK");
        ok(moat_vm_tlv_next(&it, &tag, &v, &l) == 1 && tag == 0x7777 && l == 8 &&
                   moat_vm_get_u64(v) == 0x0102030405060708ULL,
           "TLV 4: u64");
        ok(moat_vm_tlv_next(&it, &tag, &v, &l) == 1 && tag == MOAT_VM_T_TERMINAL && l == 0, "TLV 5: TERMINAL");
        is_int(moat_vm_tlv_next(&it, &tag, &v, &l), 0, "then the end");
        is_int(moat_vm_tlv_next(&it, &tag, &v, &l), 0, "and the end again");

        /* every truncation of the buffer: -EBADMSG unless it cuts between TLVs */
        int bad = 0;
        size_t bounds[] = { 0, 13, 19, 29, 43, 49 };
        for (size_t cut = 0; cut < w.len; cut++) {
                int k = check_tlvs(w.buf, cut);
                bool boundary = false;
                for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++)
                        boundary |= bounds[i] == cut;
                if (boundary ? k < 0 : k != -EBADMSG)
                        bad++;
        }
        is_int(bad, 0, "every truncated buffer: -EBADMSG (whole TLVs only at the boundaries)");

        /* a TLV claiming 4 GiB */
        uint8_t huge[10] = { 1, 0, 0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c', 'd' };
        is_int(check_tlvs(huge, sizeof huge), -EBADMSG, "a TLV length of 4 GiB: -EBADMSG");
        uint8_t five[5] = { 1, 0, 0, 0, 0 };
        is_int(check_tlvs(five, sizeof five), -EBADMSG, "a 5-byte TLV header: -EBADMSG");
        struct moat_vm_tlv_iter empty = { 0 };
        is_int(moat_vm_tlv_next(&empty, &tag, &v, &l), 0, "a zeroed iterator: the end");

        /* many small TLVs (a huge count) */
        struct moat_vm_tlv_writer m = { 0 };
        int n = 0;
        while (!m.err) {
                moat_vm_tlv_put(&m, MOAT_VM_T_GROUP, "abcd", 4);
                n++;
        }
        is_int(m.err, -EMSGSIZE, "the writer stops at one frame: -EMSGSIZE");
        ok(m.len <= MOAT_VM_MAX_FRAME - 1, "and its length fits a frame (%zu)", m.len);
        is_int(check_tlvs(m.buf, m.len), n - 1, "%d TLVs all read back", n - 1);
        moat_vm_tlv_put_str(&m, MOAT_VM_T_ARG, "x");
        is_int(m.err, -EMSGSIZE, "a failed writer stays failed");
        moat_vm_tlv_free(&m);
        is_int(m.len, 0, "free resets");

        struct moat_vm_tlv_writer b = { 0 };
        moat_vm_tlv_put(&b, 1, "x", MOAT_VM_MAX_FRAME);
        is_int(b.err, -EMSGSIZE, "one TLV over a frame: -EMSGSIZE");
        moat_vm_tlv_free(&b);
        moat_vm_tlv_free(&w);

        uint8_t le[8];
        moat_vm_put_u16(le, 0xa1b2);
        ok(le[0] == 0xb2 && le[1] == 0xa1 && moat_vm_get_u16(le) == 0xa1b2, "u16 little endian");
        moat_vm_put_u64(le, 0x1122334455667788ULL);
        ok(le[0] == 0x88 && le[7] == 0x11, "u64 little endian");
}

int main(void)
{
        signal(SIGPIPE, SIG_DFL);       /* send must not raise it */
        test_round_trip();
        test_split_and_bad();
        test_tlv();
        return done_testing();
}
