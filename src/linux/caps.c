/* SPDX-License-Identifier: Apache-2.0 */
/* Capabilities and credentials.
 *
 * Raw capget/capset (version 3) rather than libcap's cap_t: the spec already
 * gives us 64-bit masks, this runs between fork and execve where we want no
 * allocation on the success path, and we need exact control over the order of
 * the effective/permitted/inheritable/ambient changes around the uid switch
 * and the seccomp load.  libcap is used only for cap_to_name() in error
 * messages. */
#include "linux/caps.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "linux/seccomp.h"

struct capsets {
        uint64_t eff, prm, inh;
};

int moat_caps_last_cap(void)
{
        int last = 0;
        /* PR_CAPBSET_READ fails with EINVAL past the last capability. */
        for (int c = 0; c < 64; c++) {
                if (prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) < 0)
                        break;
                last = c;
        }
        return last;
}

const char *moat_caps_name(int cap, char buf[static 48])
{
        char *n = cap_to_name((cap_value_t)cap);
        if (n && strncmp(n, "cap_", 4) == 0) {
                size_t i;
                for (i = 0; n[i] && i < 47; i++)
                        buf[i] = (char)toupper((unsigned char)n[i]);
                buf[i] = '\0';
        } else {
                snprintf(buf, 48, "capability %d", cap);
        }
        cap_free(n);
        return buf;
}

static int caps_get(struct capsets *s)
{
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2];
        memset(d, 0, sizeof(d));
        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        s->eff = d[0].effective | (uint64_t)d[1].effective << 32;
        s->prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
        s->inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
        return 0;
}

static int caps_set(const struct capsets *s)
{
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2] = {
                { .effective = (uint32_t)s->eff, .permitted = (uint32_t)s->prm, .inheritable = (uint32_t)s->inh },
                { .effective = (uint32_t)(s->eff >> 32), .permitted = (uint32_t)(s->prm >> 32),
                  .inheritable = (uint32_t)(s->inh >> 32) },
        };
        if (syscall(SYS_capset, &h, d) < 0)
                return -errno;
        return 0;
}

static int first_bit(uint64_t m)
{
        return m ? __builtin_ctzll(m) : -1;
}

int moat_caps_drop_bounding(uint64_t keep, struct moat_error **err)
{
        int last = moat_caps_last_cap();
        char name[48];

        for (int c = 0; c <= last; c++) {
                if (keep & (UINT64_C(1) << c))
                        continue;
                int r = prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0);
                if (r < 0)
                        return moat_error_set(err, errno, "cannot read the bounding set for %s", moat_caps_name(c, name));
                if (r == 0)
                        continue;
                if (prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) < 0)
                        return moat_error_set(err, errno, "cannot drop %s from the bounding set%s",
                                              moat_caps_name(c, name),
                                              errno == EPERM ? " (needs CAP_SETPCAP)" : "");
        }
        return 0;
}

static bool setgroups_denied(void)
{
        _cleanup_free_ char *s = NULL;
        if (read_file_at(AT_FDCWD, "/proc/self/setgroups", &s, NULL) < 0)
                return false;
        return strncmp(s, "deny", 4) == 0;
}

int moat_creds_switch(const struct moat_process *p, struct moat_error **err)
{
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                return moat_error_set(err, errno, "cannot set PR_SET_KEEPCAPS");
        if (setgroups_denied()) {
                if (p->n_additional_gids > 0)
                        return moat_error_input(err, -EPERM,
                                                "'process.user.additionalGids': cannot set supplementary groups: "
                                                "/proc/self/setgroups is 'deny' in this user namespace");
                moat_debug("setgroups denied in this user namespace; supplementary groups left as they are");
        } else if (setgroups(p->n_additional_gids, (const gid_t *)p->additional_gids) < 0) {
                return moat_error_set(err, errno, "cannot set 'process.user.additionalGids' (%zu groups)",
                                      p->n_additional_gids);
        }
        if (setresgid(p->gid, p->gid, p->gid) < 0)
                return moat_error_set(err, errno, "cannot switch to 'process.user.gid' %u", p->gid);
        if (setresuid(p->uid, p->uid, p->uid) < 0)
                return moat_error_set(err, errno, "cannot switch to 'process.user.uid' %u", p->uid);
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
                return moat_error_set(err, errno, "cannot clear PR_SET_KEEPCAPS");
        return 0;
}

static int ambient_apply(uint64_t amb, int last, struct moat_error **err)
{
        char name[48];

        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
                if (errno == EINVAL && amb == 0)
                        return 0; /* kernel without ambient capabilities */
                return moat_error_set(err, errno, "cannot clear the ambient capability set");
        }
        for (int c = 0; c <= last; c++) {
                if (!(amb & (UINT64_C(1) << c)))
                        continue;
                /* As runc: a cap that cannot be ambient (not in permitted and
                 * inheritable) is a warning, not a failure: engines pass
                 * ambient sets without inheritable ones. */
                if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)c, 0, 0) < 0)
                        moat_warn("cannot raise ambient capability %s (it must also be in "
                                  "'process.capabilities.permitted' and '.inheritable'): %s; ignoring it",
                                  moat_caps_name(c, name), strerror(errno));
        }
        return 0;
}

int moat_caps_apply(const struct moat_process *p, struct moat_error **err)
{
        int last = moat_caps_last_cap();
        uint64_t mask = last >= 63 ? UINT64_MAX : ((UINT64_C(1) << (last + 1)) - 1);
        struct capsets want = { 0 }, cur;
        uint64_t amb = 0;
        char name[48];
        int ret;

        if (p->has_caps) {
                want.eff = p->caps[MOAT_CAP_EFFECTIVE] & mask;
                want.prm = p->caps[MOAT_CAP_PERMITTED] & mask;
                want.inh = p->caps[MOAT_CAP_INHERITABLE] & mask;
                amb = p->caps[MOAT_CAP_AMBIENT] & mask;
        }
        ret = caps_set(&want);
        if (ret < 0) {
                int bad = -1;
                const char *why = "";
                if (caps_get(&cur) == 0) {
                        uint64_t bnd = 0;
                        for (int c = 0; c <= last; c++)
                                if (prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) > 0)
                                        bnd |= UINT64_C(1) << c;
                        if ((bad = first_bit(want.prm & ~cur.prm)) >= 0)
                                why = " it is not in the current permitted set";
                        else if ((bad = first_bit(want.eff & ~want.prm)) >= 0)
                                why = " an effective capability must also be permitted";
                        else if ((bad = first_bit(want.inh & ~cur.inh & ~bnd)) >= 0)
                                why = " it is not in the bounding set, so it cannot become inheritable";
                        else if (!(cur.eff & (UINT64_C(1) << CAP_SETPCAP)) &&
                                 (bad = first_bit(want.inh & ~(cur.inh | cur.prm))) >= 0)
                                why = " adding an inheritable capability that is not permitted needs CAP_SETPCAP";
                }
                if (bad >= 0)
                        return moat_error_set(err, ret, "cannot set capabilities: %s:%s", moat_caps_name(bad, name),
                                              why);
                return moat_error_set(err, ret,
                                      "cannot set capabilities (effective 0x%016llx permitted 0x%016llx inheritable "
                                      "0x%016llx)",
                                      (unsigned long long)want.eff, (unsigned long long)want.prm,
                                      (unsigned long long)want.inh);
        }
        return ambient_apply(amb, last, err);
}

/* effective = permitted: what we still hold after the uid switch, so the
 * seccomp load (CAP_SYS_ADMIN without no_new_privs) can work. */
static int raise_effective(struct moat_error **err)
{
        struct capsets s;
        int ret = caps_get(&s);
        if (ret < 0)
                return moat_error_set(err, ret, "cannot read the capability sets");
        s.eff = s.prm;
        ret = caps_set(&s);
        if (ret < 0)
                return moat_error_set(err, ret, "cannot raise the effective capabilities");
        return 0;
}

int moat_process_finalize(const struct moat_process *p, struct moat_seccomp_prog *prog, int *notify_fd,
                          struct moat_error **err)
{
        uint64_t keep = p->has_caps ? p->caps[MOAT_CAP_BOUNDING] : 0;
        int ret;

        if (notify_fd)
                *notify_fd = -EBADF;
        ret = moat_caps_drop_bounding(keep, err);
        if (ret < 0)
                return ret;
        ret = moat_creds_switch(p, err);
        if (ret < 0)
                return ret;

        if (p->no_new_privileges) {
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                        return moat_error_set(err, errno, "cannot set 'process.noNewPrivileges'");
                ret = moat_caps_apply(p, err);
                if (ret < 0)
                        return ret;
                if (prog)
                        return moat_seccomp_load(prog, notify_fd, err);
                return 0;
        }

        if (!prog)
                return moat_caps_apply(p, err);
        ret = raise_effective(err);
        if (ret < 0)
                return ret;
        ret = moat_seccomp_load(prog, notify_fd, err);
        if (ret < 0)
                return ret;
        ret = moat_caps_apply(p, err);
        if (ret < 0 && notify_fd && *notify_fd >= 0) {
                close(*notify_fd);
                *notify_fd = -EBADF;
        }
        if (ret < 0)
                return moat_error_prefix(err, ret,
                                         "after loading the seccomp filter (without noNewPrivileges the filter is "
                                         "loaded before the capabilities are set, so it must allow capset(2) and "
                                         "prctl(2))");
        return 0;
}
