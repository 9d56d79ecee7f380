/* SPDX-License-Identifier: Apache-2.0 */
/* The cgroup v2 device controller is an eBPF program
 * (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the cgroup directory.  Built here
 * from the OCI rules with raw bpf(2), as crun's ebpf.c does:
 *
 *   r2 = ctx->access_type & 0xffff   (BPF_DEVCG_DEV_BLOCK / _CHAR)
 *   r3 = ctx->access_type >> 16      (BPF_DEVCG_ACC_MKNOD | _READ | _WRITE)
 *   r4 = ctx->major, r5 = ctx->minor
 *   one block per rule, LAST rule first (later rules override earlier ones,
 *   as v1's devices.allow/deny writes do); a block falls through to the next
 *   when a check fails, else returns 1 (allow) or 0 (deny);
 *   default: return 0 (deny).
 * A rule that matches everything ends the program (the verifier refuses
 * unreachable instructions). */
#include "cgroup/internal.h"

#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
        struct bpf_insn i = { .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
        return i;
}

#define LDX_W(dst, src, off) insn(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0)
#define ALU32_IMM(op, dst, imm) insn(BPF_ALU | (op) | BPF_K, dst, 0, 0, imm)
#define MOV32_REG(dst, src) insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOV64_IMM(dst, imm) insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define JNE_IMM(dst, imm, off) insn(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
#define EXIT() insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static int access_mask(const char *a)
{
        int m = 0;
        for (; a && *a; a++) {
                if (*a == 'm')
                        m |= BPF_DEVCG_ACC_MKNOD;
                else if (*a == 'r')
                        m |= BPF_DEVCG_ACC_READ;
                else if (*a == 'w')
                        m |= BPF_DEVCG_ACC_WRITE;
        }
        return m ? m : BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
}

int cg_ebpf_devices_build(const struct moat_device_rule *rules, size_t n, void **out)
{
        /* Worst case: 6 prologue + 9 per rule + 2 default. */
        struct bpf_insn *p = calloc(6 + 9 * n + 2, sizeof(*p));
        size_t k = 0;
        bool catch_all = false;
        if (!p)
                return -ENOMEM;
        p[k++] = LDX_W(BPF_REG_2, BPF_REG_1, 0);
        p[k++] = ALU32_IMM(BPF_AND, BPF_REG_2, 0xffff);
        p[k++] = LDX_W(BPF_REG_3, BPF_REG_1, 0);
        p[k++] = ALU32_IMM(BPF_RSH, BPF_REG_3, 16);
        p[k++] = LDX_W(BPF_REG_4, BPF_REG_1, 4);
        p[k++] = LDX_W(BPF_REG_5, BPF_REG_1, 8);
        for (size_t i = n; i-- > 0 && !catch_all;) {
                const struct moat_device_rule *r = &rules[i];
                int type = r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : r->type == 'c' ? BPF_DEVCG_DEV_CHAR : 0;
                int mask = access_mask(r->access);
                bool all_access = mask == (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE);
                bool any_major = type == 0 || r->major < 0, any_minor = type == 0 || r->minor < 0;
                if (r->type != 'a' && r->type != 'b' && r->type != 'c' && r->type != 0) {
                        free(p);
                        return -EINVAL;
                }
                /* Block length, so each check can jump past it. */
                int len = (type ? 1 : 0) + (all_access ? 0 : 3) + (any_major ? 0 : 1) + (any_minor ? 0 : 1) + 2;
                int pos = 0;
                if (type) {
                        p[k++] = JNE_IMM(BPF_REG_2, type, (int16_t)(len - pos - 1));
                        pos++;
                }
                if (!all_access) {
                        p[k++] = MOV32_REG(BPF_REG_1, BPF_REG_3);
                        p[k++] = ALU32_IMM(BPF_AND, BPF_REG_1, ~mask & 7);
                        pos += 2;
                        p[k++] = JNE_IMM(BPF_REG_1, 0, (int16_t)(len - pos - 1));
                        pos++;
                }
                if (!any_major) {
                        p[k++] = JNE_IMM(BPF_REG_4, (int32_t)r->major, (int16_t)(len - pos - 1));
                        pos++;
                }
                if (!any_minor) {
                        p[k++] = JNE_IMM(BPF_REG_5, (int32_t)r->minor, (int16_t)(len - pos - 1));
                        pos++;
                }
                p[k++] = MOV64_IMM(BPF_REG_0, r->allow ? 1 : 0);
                p[k++] = EXIT();
                catch_all = len == 2;
        }
        if (!catch_all) {
                p[k++] = MOV64_IMM(BPF_REG_0, 0);
                p[k++] = EXIT();
        }
        *out = p;
        return (int)k;
}

static int bpf(int cmd, union bpf_attr *attr)
{
        return (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

int cg_ebpf_devices_install(int dirfd, const struct moat_device_rule *rules, size_t n,
                            struct moat_error **err)
{
        _cleanup_free_ void *prog = NULL;
        _cleanup_free_ char *log = NULL;
        _cleanup_close_ int pfd = -EBADF;
        uint32_t old[64], n_old = ARRAY_SIZE(old);
        union bpf_attr attr;
        int cnt = cg_ebpf_devices_build(rules, n, &prog);
        if (cnt < 0)
                return moat_error_input(err, -cnt, "'devices': a rule has an unknown type");

        memset(&attr, 0, sizeof(attr));
        attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
        attr.insns = (uint64_t)(uintptr_t)prog;
        attr.insn_cnt = (uint32_t)cnt;
        attr.license = (uint64_t)(uintptr_t) "GPL";
        pfd = bpf(BPF_PROG_LOAD, &attr);
        if (pfd < 0) {
                int e = errno;
                log = calloc(1, 8192);
                if (log) {
                        attr.log_buf = (uint64_t)(uintptr_t)log;
                        attr.log_size = 8192;
                        attr.log_level = 1;
                        int fd2 = bpf(BPF_PROG_LOAD, &attr);
                        if (fd2 >= 0)
                                close(fd2);
                }
                return moat_error_set(err, e, "cannot load the device eBPF program%s%s", log && *log ? ": " : "",
                                      log ? log : "");
        }

        /* Programs attached before (an earlier update): detached after the new one is in. */
        memset(&attr, 0, sizeof(attr));
        attr.query.target_fd = (uint32_t)dirfd;
        attr.query.attach_type = BPF_CGROUP_DEVICE;
        attr.query.prog_ids = (uint64_t)(uintptr_t)old;
        attr.query.prog_cnt = n_old;
        if (bpf(BPF_PROG_QUERY, &attr) < 0)
                n_old = 0;
        else
                n_old = attr.query.prog_cnt < ARRAY_SIZE(old) ? attr.query.prog_cnt : ARRAY_SIZE(old);

        memset(&attr, 0, sizeof(attr));
        attr.target_fd = (uint32_t)dirfd;
        attr.attach_bpf_fd = (uint32_t)pfd;
        attr.attach_type = BPF_CGROUP_DEVICE;
        attr.attach_flags = BPF_F_ALLOW_MULTI;
        if (bpf(BPF_PROG_ATTACH, &attr) < 0)
                return moat_error_set(err, errno, "cannot attach the device eBPF program to the cgroup");

        for (uint32_t i = 0; i < n_old; i++) {
                union bpf_attr a2;
                memset(&a2, 0, sizeof(a2));
                a2.prog_id = old[i];
                _cleanup_close_ int ofd = bpf(BPF_PROG_GET_FD_BY_ID, &a2);
                if (ofd < 0)
                        continue;
                memset(&a2, 0, sizeof(a2));
                a2.target_fd = (uint32_t)dirfd;
                a2.attach_bpf_fd = (uint32_t)ofd;
                a2.attach_type = BPF_CGROUP_DEVICE;
                if (bpf(BPF_PROG_DETACH, &a2) < 0)
                        moat_debug("cgroup: cannot detach old device program %u: %m", old[i]);
        }
        return 0;
}
