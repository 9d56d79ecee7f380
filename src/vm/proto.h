/* SPDX-License-Identifier: Apache-2.0 */
/* The vm tier's channel: the host (moat, src/vm/) and the guest's PID 1 (guest/moat-vminit.c)
 * talk over one virtio-serial port named MOAT_VM_PORT_NAME (the host end is a unix socket
 * QEMU connects to).  The guest is not trusted: everything the host reads is bounded and
 * checked, and a frame that breaks a rule ends the VM, never moat.  This file and proto.c
 * use only libc, so the static guest init links them too.
 *
 * A frame:  u32 length (little endian) of what follows, u8 type, payload (length - 1 bytes);
 *           1 <= length <= MOAT_VM_MAX_FRAME.
 *
 * guest -> host                          host -> guest
 *   HELLO    u32 version                   CONFIG   TLVs (below), once, after HELLO
 *   STARTED  u32 pid                       STDIN    bytes (empty: end of input)
 *   STDOUT   bytes                         SIGNAL   u32 signal number (to the process)
 *   STDERR   bytes                         RESIZE   u16 rows, u16 cols
 *   EXIT     u32 status (0..255, 128+sig)
 *   ERROR    UTF-8 text (why the process could not start); EXIT 127/126/1 follows
 * The guest powers off after EXIT.  Order: HELLO, CONFIG, STARTED, data..., EXIT.
 *
 * CONFIG is a list of TLVs: u16 tag, u32 length, value.  Strings are not NUL-terminated.
 *   ARG (repeated), ENV "K=V" (repeated), CWD, HOSTNAME, USER (u32 uid, u32 gid),
 *   GROUP u32 (repeated), UMASK u32, TERMINAL (empty: allocate a pty for the process),
 *   RLIMIT (u32 resource, u64 soft, u64 hard) (repeated), NO_NEW_PRIVS (empty),
 *   CAPS (5 x u64: bounding, effective, permitted, inheritable, ambient),
 *   SECCOMP (a classic BPF program: n x struct sock_filter, installed last, with TSYNC),
 *   ROOT (u8 readonly): the root is the lower disk + the writable disk (below),
 *   WINSIZE (u16 rows, u16 cols): with TERMINAL, the pty's size before the process starts,
 *   MOUNT (u8 kind, then three u16-length-prefixed strings: source, target, options):
 *     kind VIRTIOFS: source = the virtiofs tag; TMPFS: source ignored; PROC, SYSFS, DEVPTS,
 *     MQUEUE, CGROUP: the usual, inside the guest; SHARE (bind mounts): source = a name
 *     ([A-Za-z0-9_-], 1..64) in the one virtiofs filesystem tagged MOAT_VM_SHARES_TAG, a directory
 *     or a file there that the guest bind-mounts onto target (options: ro nosuid nodev noexec);
 *     the guest mounts that filesystem outside the new root and detaches it once bound.
 *   NET (4 bytes IPv4 address, u8 prefix length 1..30, 4 bytes gateway; addresses in network
 *     byte order): the guest loads /modules/net, then gives eth0 (the one virtio-net device)
 *     the address, sets it and lo up, and routes everything via the gateway.
 * Disks (virtio-blk, in this order): vda the root (ext4, read-only), vdb the writable layer
 * (ext4): the guest mounts overlay(lower=vda, upper+work on vdb) as the root.
 *
 * Details of the implementation (guest/moat-vminit.c):
 * - STARTED is sent once execve succeeded; when the process cannot start there is no STARTED,
 *   only ERROR then EXIT (127 command not found, 126 not executable, 1 anything else).
 * - Every integer is little endian, SECCOMP too: each instruction is u16 code, u8 jt, u8 jf,
 *   u32 k (8 bytes), at most 4096 of them.  USER is 8 bytes, RLIMIT 20, CAPS 40, ROOT 1, NET 9,
 *   UMASK <= 0777; any other size is a bad CONFIG.  No ROOT TLV = read-write.
 * - Strings: at most 65536 bytes, no NUL inside.  Unknown tags are skipped; unknown frame
 *   types from the host (and a second CONFIG) are ignored.
 * - MOUNT options: ro rw nosuid suid nodev dev noexec exec noatime relatime strictatime
 *   nodiratime sync become mount flags, the rest is the filesystem's data.  DEVPTS with no
 *   options gets "newinstance,ptmxmode=0666,mode=0620".  Targets are absolute, no "..".
 *   Without a MOUNT on "/dev" the guest mounts a tmpfs there with null zero full random
 *   urandom tty, ptmx -> pts/ptmx, fd/stdin/stdout/stderr links, pts/ and shm/ (never
 *   devtmpfs: the guest's disks and this port stay out of the process's reach); a TMPFS
 *   MOUNT on "/dev" gets the same nodes.  CGROUP mounts cgroup2.
 * - TERMINAL: stdin/stdout both go through the pty (everything arrives as STDOUT); an empty
 *   STDIN then sends the terminal's EOF character instead of closing.
 * - A bad frame or EOF from the host kills the process; the guest then powers off with no
 *   EXIT.  After the process exits, its remaining output is sent (for up to 0.5 s), then EXIT.
 * - Host -> guest STDIN is buffered in the guest up to 8 MiB unwritten; past that the guest
 *   stops reading the channel until the process reads (a SIGNAL waits behind it too).
 *
 * Exec sessions (more processes in the running guest; vm/exec.h, guest/exec.c), only after
 * STARTED and before EXIT of the main process; every payload starts with a u32 session id
 * chosen by the host (an EXEC with the id of a live session is ignored):
 *   host -> guest                          guest -> host
 *   EXEC         id, TLVs (the process      EXEC_STARTED  id, u32 pid
 *                part of CONFIG: ARG ENV    EXEC_STDOUT   id, bytes
 *                CWD USER GROUP UMASK       EXEC_STDERR   id, bytes
 *                TERMINAL RLIMIT            EXEC_EXIT     id, u32 status (0..255); the id is free
 *                NO_NEW_PRIVS CAPS SECCOMP) EXEC_ERROR    id, text; EXEC_EXIT 127/126/1 follows
 *   EXEC_STDIN   id, bytes (none: EOF)
 *   EXEC_SIGNAL  id, u32 signal
 *   EXEC_RESIZE  id, u16 rows, u16 cols
 * At most MOAT_VM_MAX_EXECS sessions at once: one more gets EXEC_ERROR + EXEC_EXIT 1.  When
 * the main process exits, the guest SIGKILLs the sessions and sends their EXEC_EXIT (137)
 * before EXIT.  A session's unwritten stdin past 4 MiB stops the guest reading the channel
 * until its process reads (as STDIN does).  The host's unix socket for `moat-runtime exec` (<state>/exec.sock) carries the
 * same frames without the session id.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MOAT_VM_PORT_NAME "org.moat.ctl"
#define MOAT_VM_PROTO_VERSION 2          /* 2: exec sessions */
#define MOAT_VM_MAX_FRAME (1u << 20)      /* a frame, type included */
#define MOAT_VM_MAX_DATA (64u << 10)      /* STDOUT/STDERR/STDIN chunks we send */
#define MOAT_VM_SHARES_TAG "moat-shares"  /* the virtiofs tag of MOUNT kind SHARE */
#define MOAT_VM_MAX_ARGS 4096             /* ARG, ENV, GROUP, RLIMIT, MOUNT each at most */
#define MOAT_VM_MAX_EXECS 64              /* exec sessions at once */

enum moat_vm_msg {
        /* guest -> host */
        MOAT_VM_HELLO = 1,
        MOAT_VM_STARTED = 2,
        MOAT_VM_STDOUT = 3,
        MOAT_VM_STDERR = 4,
        MOAT_VM_EXIT = 5,
        MOAT_VM_ERROR = 6,
        MOAT_VM_EXEC_STARTED = 8,
        MOAT_VM_EXEC_STDOUT = 9,
        MOAT_VM_EXEC_STDERR = 10,
        MOAT_VM_EXEC_EXIT = 11,
        MOAT_VM_EXEC_ERROR = 12,
        /* host -> guest */
        MOAT_VM_CONFIG = 64,
        MOAT_VM_STDIN = 65,
        MOAT_VM_SIGNAL = 66,
        MOAT_VM_RESIZE = 67,
        MOAT_VM_EXEC = 68,
        MOAT_VM_EXEC_STDIN = 69,
        MOAT_VM_EXEC_SIGNAL = 70,
        MOAT_VM_EXEC_RESIZE = 71,
};

enum moat_vm_tag {
        MOAT_VM_T_ARG = 1,
        MOAT_VM_T_ENV = 2,
        MOAT_VM_T_CWD = 3,
        MOAT_VM_T_HOSTNAME = 4,
        MOAT_VM_T_USER = 5,
        MOAT_VM_T_GROUP = 6,
        MOAT_VM_T_UMASK = 7,
        MOAT_VM_T_TERMINAL = 8,
        MOAT_VM_T_RLIMIT = 9,
        MOAT_VM_T_NO_NEW_PRIVS = 10,
        MOAT_VM_T_CAPS = 11,
        MOAT_VM_T_SECCOMP = 12,
        MOAT_VM_T_ROOT = 13,
        MOAT_VM_T_MOUNT = 14,
        MOAT_VM_T_NET = 15,
        MOAT_VM_T_WINSIZE = 30,         /* the runtime face's terminal (30..33 are its) */
};

enum moat_vm_mount_kind {
        MOAT_VM_M_VIRTIOFS = 1,
        MOAT_VM_M_TMPFS = 2,
        MOAT_VM_M_PROC = 3,
        MOAT_VM_M_SYSFS = 4,
        MOAT_VM_M_DEVPTS = 5,
        MOAT_VM_M_MQUEUE = 6,
        MOAT_VM_M_CGROUP = 7,
        MOAT_VM_M_SHARE = 8,    /* a bind mount through virtiofs (vm/virtiofs.h) */
};

/* ---- frames over an fd (blocking or not: see each) ---- */

/* Writes one frame (all of it; EINTR/EAGAIN retried with poll).  -EMSGSIZE if too big. */
int moat_vm_send(int fd, uint8_t type, const void *payload, size_t len);

/* An incremental reader for a non-blocking fd: feed it what read() gives, take frames out. */
struct moat_vm_reader {
        uint8_t *buf;
        size_t len, cap;
        size_t max;     /* MOAT_VM_MAX_FRAME unless set lower */
        size_t skip;    /* bytes of the frame last returned by next(), dropped on the next call */
};
void moat_vm_reader_init(struct moat_vm_reader *r, size_t max_frame);
void moat_vm_reader_free(struct moat_vm_reader *r);
/* Reads what is there from fd into r: >0 bytes read, 0 EOF, -EAGAIN nothing now, -errno.
 * The buffer never grows past max + 4: call next() until it returns 0 before filling again
 * (-ENOBUFS otherwise).  EINTR is retried. */
ssize_t moat_vm_reader_fill(struct moat_vm_reader *r, int fd);
/* The next complete frame: 1 and type, payload, len (valid until the next call), 0 when none
 * is complete yet, -EBADMSG when the stream breaks the rules (length 0 or over max): the
 * stream is then unusable. */
int moat_vm_reader_next(struct moat_vm_reader *r, uint8_t *type, const uint8_t **payload, size_t *len);

/* ---- TLVs ---- */

struct moat_vm_tlv_writer {
        uint8_t *buf;
        size_t len, cap;
        int err;        /* first error (-ENOMEM, -EMSGSIZE): the writer then does nothing */
};
void moat_vm_tlv_put(struct moat_vm_tlv_writer *w, uint16_t tag, const void *val, size_t len);
void moat_vm_tlv_put_str(struct moat_vm_tlv_writer *w, uint16_t tag, const char *s);
void moat_vm_tlv_put_u32(struct moat_vm_tlv_writer *w, uint16_t tag, uint32_t v);
void moat_vm_tlv_put_u64(struct moat_vm_tlv_writer *w, uint16_t tag, uint64_t v);
void moat_vm_tlv_free(struct moat_vm_tlv_writer *w);
/* A writer starts zeroed ({0}); its value never exceeds MOAT_VM_MAX_FRAME - 1 bytes in total
 * (so it fits one CONFIG frame): past that, err = -EMSGSIZE. */

/* Walks a TLV buffer: 1 and the next tag/value, 0 at the end, -EBADMSG if truncated. */
struct moat_vm_tlv_iter {
        const uint8_t *p, *end;
};
int moat_vm_tlv_next(struct moat_vm_tlv_iter *it, uint16_t *tag, const uint8_t **val, size_t *len);

/* Little-endian helpers (the guest and host are both x86-64 today, but the wire is fixed). */
static inline uint32_t moat_vm_get_u32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void moat_vm_put_u32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}
static inline uint64_t moat_vm_get_u64(const uint8_t *p)
{
        return (uint64_t)moat_vm_get_u32(p) | (uint64_t)moat_vm_get_u32(p + 4) << 32;
}
static inline uint16_t moat_vm_get_u16(const uint8_t *p)
{
        return (uint16_t)(p[0] | p[1] << 8);
}
static inline void moat_vm_put_u16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}
static inline void moat_vm_put_u64(uint8_t *p, uint64_t v)
{
        moat_vm_put_u32(p, (uint32_t)v);
        moat_vm_put_u32(p + 4, (uint32_t)(v >> 32));
}
