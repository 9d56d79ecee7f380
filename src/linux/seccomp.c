/* SPDX-License-Identifier: Apache-2.0 */
/* seccomp filters: built with libseccomp in the runtime, exported to a BPF
 * array, installed with one seccomp(2) call right before execve. */
#include "linux/seccomp.h"

#include <errno.h>
#include <jansson.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"

#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SCMP_ACT_NOTIFY
#define SCMP_ACT_NOTIFY 0x7fc00000U
#endif

struct moat_seccomp_prog {
        struct sock_fprog fprog;
        unsigned int flags; /* SECCOMP_FILTER_FLAG_*, without NEW_LISTENER */
        bool notify;
};

/* Every name the runtime-spec lists; token 0 = valid but unknown to this libseccomp. */
static const struct {
        const char *name;
        uint32_t token;
} arch_table[] = {
        { "SCMP_ARCH_X86", SCMP_ARCH_X86 },
        { "SCMP_ARCH_X86_64", SCMP_ARCH_X86_64 },
        { "SCMP_ARCH_X32", SCMP_ARCH_X32 },
        { "SCMP_ARCH_ARM", SCMP_ARCH_ARM },
        { "SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64 },
        { "SCMP_ARCH_MIPS", SCMP_ARCH_MIPS },
        { "SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64 },
        { "SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32 },
        { "SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL },
        { "SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64 },
        { "SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32 },
        { "SCMP_ARCH_PPC", SCMP_ARCH_PPC },
        { "SCMP_ARCH_PPC64", SCMP_ARCH_PPC64 },
        { "SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE },
        { "SCMP_ARCH_S390", SCMP_ARCH_S390 },
        { "SCMP_ARCH_S390X", SCMP_ARCH_S390X },
        { "SCMP_ARCH_PARISC", SCMP_ARCH_PARISC },
        { "SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64 },
        { "SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64 },
#ifdef SCMP_ARCH_LOONGARCH64
        { "SCMP_ARCH_LOONGARCH64", SCMP_ARCH_LOONGARCH64 },
#else
        { "SCMP_ARCH_LOONGARCH64", 0 },
#endif
#ifdef SCMP_ARCH_M68K
        { "SCMP_ARCH_M68K", SCMP_ARCH_M68K },
#else
        { "SCMP_ARCH_M68K", 0 },
#endif
#ifdef SCMP_ARCH_SH
        { "SCMP_ARCH_SH", SCMP_ARCH_SH },
        { "SCMP_ARCH_SHEB", SCMP_ARCH_SHEB },
#else
        { "SCMP_ARCH_SH", 0 },
        { "SCMP_ARCH_SHEB", 0 },
#endif
};

int moat_seccomp_arch_token(const char *name, uint32_t *token)
{
        for (size_t i = 0; i < ARRAY_SIZE(arch_table); i++)
                if (STREQ(arch_table[i].name, name)) {
                        *token = arch_table[i].token;
                        return 0;
                }
        return -EINVAL;
}

static const struct {
        const char *name;
        unsigned int flag;
} flag_table[] = {
        { "SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC },
        { "SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG },
        { "SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW },
        { "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV },
};

/* The parser gives the action without its data; errno/trace default to EPERM as in runc. */
static uint32_t resolve_action(uint32_t action, bool has_ret, uint32_t ret)
{
        uint32_t base = action & 0xffff0000U;
        if (base == SCMP_ACT_ERRNO(0) || base == SCMP_ACT_TRACE(0))
                return base | ((has_ret ? ret : EPERM) & 0xffffU);
        return action;
}

static bool action_is_notify(uint32_t a)
{
        return (a & 0xffff0000U) == SCMP_ACT_NOTIFY;
}

static void ctx_releasep(scmp_filter_ctx *c)
{
        if (*c)
                seccomp_release(*c);
}

static int add_rule(scmp_filter_ctx ctx, const struct moat_seccomp_rule *r, size_t ri, const char *name,
                    int nr, uint32_t act, struct moat_error **err)
{
        struct scmp_arg_cmp cmps[6];
        unsigned int count[6] = { 0 };
        bool multiple = false;
        int ret;

        if (r->n_args > ARRAY_SIZE(cmps))
                return moat_error_input(err, -EINVAL, "'linux.seccomp.syscalls[%zu].args': %zu comparisons, at most 6",
                                        ri, r->n_args);
        for (size_t i = 0; i < r->n_args; i++) {
                const struct moat_seccomp_arg *a = &r->args[i];
                if (a->index >= 6)
                        return moat_error_input(err, -EINVAL,
                                                "'linux.seccomp.syscalls[%zu].args[%zu].index': %u is not 0-5", ri, i,
                                                a->index);
                cmps[i] = (struct scmp_arg_cmp){ .arg = a->index, .op = (enum scmp_compare)a->op,
                                                 .datum_a = a->value, .datum_b = a->value_two };
                if (++count[a->index] > 1)
                        multiple = true;
        }
        if (r->n_args == 0 || !multiple) {
                ret = seccomp_rule_add_array(ctx, act, nr, (unsigned int)r->n_args, r->n_args ? cmps : NULL);
                if (ret < 0)
                        return moat_error_set(err, ret, "'linux.seccomp.syscalls[%zu]': cannot add rule for '%s'", ri,
                                              name);
                return 0;
        }
        /* Several comparisons on the same argument: libseccomp cannot AND them
         * in one rule; like runc, add one rule per comparison (an OR). */
        for (size_t i = 0; i < r->n_args; i++) {
                ret = seccomp_rule_add_array(ctx, act, nr, 1, &cmps[i]);
                if (ret < 0)
                        return moat_error_set(err, ret, "'linux.seccomp.syscalls[%zu]': cannot add rule for '%s'", ri,
                                              name);
        }
        return 0;
}

/* Exports the BPF through a memfd (seccomp_export_bpf_mem is libseccomp >= 2.6). */
static int export_bpf(scmp_filter_ctx ctx, struct sock_fprog *fprog, struct moat_error **err)
{
        _cleanup_close_ int fd = memfd_create("moat-seccomp", MFD_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int ret;

        if (fd < 0)
                return moat_error_set(err, errno, "cannot create memfd for the seccomp filter");
        ret = seccomp_export_bpf(ctx, fd);
        if (ret < 0)
                return moat_error_set(err, ret, "cannot export the seccomp filter");
        if (lseek(fd, 0, SEEK_SET) < 0)
                return moat_error_set(err, errno, "cannot rewind the seccomp filter memfd");
        ret = read_fd_all(fd, &buf, &len);
        if (ret < 0)
                return moat_error_set(err, ret, "cannot read back the seccomp filter");
        if (len == 0 || len % sizeof(struct sock_filter) != 0 || len / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return moat_error_input(err, -E2BIG,
                                        "the seccomp filter compiles to %zu bytes, not a valid program of at most %d "
                                        "instructions",
                                        len, BPF_MAXINSNS);
        fprog->len = (unsigned short)(len / sizeof(struct sock_filter));
        fprog->filter = (struct sock_filter *)TAKE_PTR(buf);
        return 0;
}

int moat_seccomp_build(const struct moat_seccomp *sc, struct moat_seccomp_prog **out, struct moat_error **err)
{
        _cleanup_(ctx_releasep) scmp_filter_ctx ctx = NULL;
        uint32_t def = resolve_action(sc->default_action, sc->has_default_errno_ret, sc->default_errno_ret);
        unsigned int flags = 0;
        bool notify = false;
        int ret;

        if (action_is_notify(def))
                return moat_error_input(err, -EINVAL,
                                        "'linux.seccomp.defaultAction': SCMP_ACT_NOTIFY cannot be the default action");
        for (size_t i = 0; sc->flags && sc->flags[i]; i++) {
                size_t j;
                for (j = 0; j < ARRAY_SIZE(flag_table); j++)
                        if (STREQ(flag_table[j].name, sc->flags[i]))
                                break;
                if (j == ARRAY_SIZE(flag_table))
                        return moat_error_input(err, -EINVAL, "'linux.seccomp.flags[%zu]': unknown flag '%s'", i,
                                                sc->flags[i]);
                flags |= flag_table[j].flag;
        }

        ctx = seccomp_init(def);
        if (!ctx)
                return moat_error_input(err, -EINVAL,
                                        "'linux.seccomp.defaultAction': libseccomp refuses action 0x%x", def);
        for (size_t i = 0; sc->architectures && sc->architectures[i]; i++) {
                uint32_t token;
                if (moat_seccomp_arch_token(sc->architectures[i], &token) < 0)
                        return moat_error_input(err, -EINVAL, "'linux.seccomp.architectures[%zu]': unknown architecture '%s'",
                                                i, sc->architectures[i]);
                if (token == 0) {
                        moat_debug("seccomp: architecture '%s' is not supported by this libseccomp; skipped",
                                   sc->architectures[i]);
                        continue;
                }
                ret = seccomp_arch_add(ctx, token);
                if (ret < 0 && ret != -EEXIST)
                        return moat_error_set(err, ret, "'linux.seccomp.architectures[%zu]': cannot add '%s'", i,
                                              sc->architectures[i]);
        }

        for (size_t ri = 0; ri < sc->n_syscalls; ri++) {
                const struct moat_seccomp_rule *r = &sc->syscalls[ri];
                uint32_t act = resolve_action(r->action, r->has_errno_ret, r->errno_ret);
                if (act == def) {
                        moat_debug("seccomp: syscalls[%zu] has the default action; skipped", ri);
                        continue;
                }
                for (size_t ni = 0; r->names && r->names[ni]; ni++) {
                        const char *name = r->names[ni];
                        int nr = seccomp_syscall_resolve_name(name);
                        if (nr == __NR_SCMP_ERROR) {
                                moat_debug("seccomp: unknown syscall '%s' skipped", name);
                                continue;
                        }
                        ret = add_rule(ctx, r, ri, name, nr, act, err);
                        if (ret < 0)
                                return ret;
                        if (action_is_notify(act))
                                notify = true;
                }
        }

        /* NEW_LISTENER cannot be combined with plain TSYNC. */
        if (!notify && (flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)) {
                moat_debug("seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV without notify rules; dropped");
                flags &= ~(unsigned int)SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
        }
        if (notify && (flags & SECCOMP_FILTER_FLAG_TSYNC))
                flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;

        _cleanup_free_ struct moat_seccomp_prog *p = calloc(1, sizeof(*p));
        if (!p)
                return moat_error_set(err, ENOMEM, "cannot compile the seccomp filter");
        ret = export_bpf(ctx, &p->fprog, err);
        if (ret < 0)
                return ret;
        p->flags = flags;
        p->notify = notify;
        *out = TAKE_PTR(p);
        return 0;
}

int moat_seccomp_load(struct moat_seccomp_prog *p, int *notify_fd, struct moat_error **err)
{
        unsigned long flags = p->flags;
        long ret;

        if (notify_fd)
                *notify_fd = -EBADF;
        if (p->notify)
                flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
        ret = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, flags, &p->fprog);
        if (ret < 0) {
                if (errno == EACCES)
                        return moat_error_set(err, errno,
                                              "cannot load the seccomp filter (without noNewPrivileges it needs "
                                              "CAP_SYS_ADMIN)");
                return moat_error_set(err, errno, "cannot load the seccomp filter (flags 0x%lx)", flags);
        }
        if (p->notify) {
                if (notify_fd)
                        *notify_fd = (int)ret;
                else
                        close((int)ret);
        }
        return 0;
}

bool moat_seccomp_uses_notify(const struct moat_seccomp_prog *p)
{
        return p && p->notify;
}

const void *moat_seccomp_prog_filter(const struct moat_seccomp_prog *p, unsigned int *n)
{
        *n = p->fprog.len;
        return p->fprog.filter;
}

unsigned int moat_seccomp_prog_len(const struct moat_seccomp_prog *p)
{
        return p ? p->fprog.len : 0;
}

unsigned int moat_seccomp_prog_flags(const struct moat_seccomp_prog *p)
{
        return p ? p->flags : 0;
}

void moat_seccomp_prog_free(struct moat_seccomp_prog *p)
{
        if (!p)
                return;
        free(p->fprog.filter);
        free(p);
}

int moat_seccomp_send_listener(const char *listener_path, int notify_fd, const char *state_json,
                               struct moat_error **err)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int sock = -EBADF;
        size_t len = strlen(state_json);
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } u;
        struct iovec iov = { .iov_base = (void *)state_json, .iov_len = len };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                              .msg_controllen = sizeof(u.buf) };
        struct cmsghdr *c;
        ssize_t n;

        if (notify_fd < 0)
                return moat_error_input(err, -EBADF, "no seccomp notify fd to send to '%s'", listener_path);
        if (len == 0)
                return moat_error_input(err, -EINVAL, "empty container process state for '%s'", listener_path);
        if (strlen(listener_path) >= sizeof(sa.sun_path))
                return moat_error_input(err, -ENAMETOOLONG,
                                        "'linux.seccomp.listenerPath': '%s' is longer than a unix socket path can be",
                                        listener_path);
        strcpy(sa.sun_path, listener_path);
        sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return moat_error_set(err, errno, "cannot create a socket for '%s'", listener_path);
        if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return moat_error_set(err, errno, "cannot connect to seccomp listener '%s'", listener_path);

        memset(&u, 0, sizeof(u));
        c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &notify_fd, sizeof(int));
        do
                n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return moat_error_set(err, errno, "cannot send the seccomp fd to '%s'", listener_path);
        /* A stream socket may take a long state in pieces: the rest goes plain. */
        if ((size_t)n < len && write_all(sock, state_json + n, len - (size_t)n) < 0)
                return moat_error_set(err, errno, "cannot send the container state to '%s'", listener_path);
        return 0;
}

char *moat_seccomp_process_state_json(const char *metadata, pid_t pid, const char *container_state_json)
{
        json_error_t jerr;
        json_t *state = json_loads(container_state_json, 0, &jerr);
        json_t *root;
        char *s;

        if (!state || !json_is_object(state)) {
                json_decref(state);
                return NULL;
        }
        root = json_pack("{s:s, s:[s], s:I}", "ociVersion", MOAT_OCI_VERSION, "fds", "seccompFd", "pid",
                         (json_int_t)pid);
        if (!root || (metadata && *metadata && json_object_set_new(root, "metadata", json_string(metadata)) < 0)) {
                json_decref(state);
                json_decref(root);
                return NULL;
        }
        if (json_object_set_new(root, "state", state) < 0) { /* steals state, even on failure */
                json_decref(root);
                return NULL;
        }
        s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(root);
        return s;
}
