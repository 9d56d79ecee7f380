/* SPDX-License-Identifier: Apache-2.0 */
#include "oci/features.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "moat-config.h"

#ifndef SECCOMP_GET_ACTION_AVAIL
#define SECCOMP_GET_ACTION_AVAIL 2
#endif
#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif
#ifndef SECCOMP_RET_USER_NOTIF
#define SECCOMP_RET_USER_NOTIF 0x7fc00000U
#endif
#ifndef SECCOMP_RET_LOG
#define SECCOMP_RET_LOG 0x7ffc0000U
#endif

/* The option names src/oci/spec_mount.c recognizes (kept in step with its table;
 * filesystem-specific options such as "acl" go to mount data and are not listed). */
static const char *const mount_options[] = {
        "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "idmap", "iversion",
        "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime",
        "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "ratime", "rbind",
        "rdev", "rdiratime", "relatime", "remount", "rexec", "ridmap", "rnoatime", "rnodev", "rnodiratime",
        "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime",
        "rro", "rrw", "rshared", "rslave", "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw",
        "shared", "silent", "slave", "strictatime", "suid", "sync", "tmpcopyup", "unbindable",
};

static const char *const hooks[] = {
        "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
};

static const char *const namespaces[] = {
        "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
};

static const struct {
        const char *name;
        uint32_t kernel_action; /* probed with SECCOMP_GET_ACTION_AVAIL */
} seccomp_actions[] = {
        { "SCMP_ACT_ALLOW", SECCOMP_RET_ALLOW },
        { "SCMP_ACT_ERRNO", SECCOMP_RET_ERRNO },
        { "SCMP_ACT_KILL", SECCOMP_RET_KILL_THREAD },
        { "SCMP_ACT_KILL_PROCESS", SECCOMP_RET_KILL_PROCESS },
        { "SCMP_ACT_KILL_THREAD", SECCOMP_RET_KILL_THREAD },
        { "SCMP_ACT_LOG", SECCOMP_RET_LOG },
        { "SCMP_ACT_NOTIFY", SECCOMP_RET_USER_NOTIF },
        { "SCMP_ACT_TRACE", SECCOMP_RET_TRACE },
        { "SCMP_ACT_TRAP", SECCOMP_RET_TRAP },
};

static const char *const seccomp_operators[] = {
        "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
        "SCMP_CMP_NE",
};

/* runtime-spec names; listed when this libseccomp resolves the lower-case name. */
static const char *const seccomp_archs[] = {
        "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_SH",
        "SCMP_ARCH_SHEB", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64",
};

/* The flags src/linux/seccomp.c accepts. */
static const struct {
        const char *name;
        unsigned int flag;
} seccomp_flags[] = {
        { "SECCOMP_FILTER_FLAG_TSYNC", 1U << 0 },
        { "SECCOMP_FILTER_FLAG_LOG", 1U << 1 },
        { "SECCOMP_FILTER_FLAG_SPEC_ALLOW", 1U << 2 },
        { "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 1U << 5 },
};

static int add_strings(json_t *arr, const char *const *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (json_array_append_new(arr, json_string(v[i])) < 0)
                        return -ENOMEM;
        return 0;
}

static json_t *string_array(const char *const *v, size_t n)
{
        json_t *a = json_array();
        if (a && add_strings(a, v, n) < 0) {
                json_decref(a);
                return NULL;
        }
        return a;
}

static int cap_last(void)
{
        _cleanup_free_ char *s = NULL;
        int last = -1;
        if (read_file_at(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", &s, NULL) >= 0) {
                s[strcspn(s, "\n")] = '\0';
                if (parse_int(s, &last) < 0)
                        last = -1;
        }
        if (last < 0)
                last = (int)cap_max_bits() - 1;
        return last;
}

static json_t *capabilities(void)
{
        json_t *a = json_array();
        if (!a)
                return NULL;
        int last = cap_last();
        for (int c = 0; c <= last; c++) {
                char *n = cap_to_name((cap_value_t)c);
                if (!n)
                        continue;
                /* libcap prints a number for capabilities it does not know. */
                if (strncmp(n, "cap_", 4) == 0) {
                        for (char *p = n; *p; p++)
                                *p = (char)toupper((unsigned char)*p);
                        json_array_append_new(a, json_string(n));
                }
                cap_free(n);
        }
        return a;
}

static bool seccomp_action_avail(uint32_t action)
{
        return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

/* A NULL filter: EFAULT means the flag passed the flag check, EINVAL that it did not.
 * WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER. */
static bool seccomp_flag_supported(unsigned int flag)
{
        if (flag == (1U << 5))
                flag |= 1U << 3; /* SECCOMP_FILTER_FLAG_NEW_LISTENER */
        return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flag, NULL) < 0 && errno == EFAULT;
}

static json_t *seccomp_features(void)
{
        bool enabled = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 || errno != EINVAL;
        json_t *o = json_object(), *actions = json_array(), *archs = json_array(), *known = json_array(),
               *supported = json_array();
        if (!o || !actions || !archs || !known || !supported)
                goto fail;
        for (size_t i = 0; i < ARRAY_SIZE(seccomp_actions); i++)
                if (!enabled || seccomp_action_avail(seccomp_actions[i].kernel_action))
                        json_array_append_new(actions, json_string(seccomp_actions[i].name));
        for (size_t i = 0; i < ARRAY_SIZE(seccomp_archs); i++) {
                char lower[64];
                const char *s = seccomp_archs[i] + strlen("SCMP_ARCH_");
                size_t j = 0;
                for (; s[j] && j < sizeof(lower) - 1; j++)
                        lower[j] = (char)tolower((unsigned char)s[j]);
                lower[j] = '\0';
                if (seccomp_arch_resolve_name(lower) != 0)
                        json_array_append_new(archs, json_string(seccomp_archs[i]));
        }
        for (size_t i = 0; i < ARRAY_SIZE(seccomp_flags); i++) {
                json_array_append_new(known, json_string(seccomp_flags[i].name));
                if (enabled && seccomp_flag_supported(seccomp_flags[i].flag))
                        json_array_append_new(supported, json_string(seccomp_flags[i].name));
        }
        json_object_set_new(o, "enabled", json_boolean(enabled));
        json_object_set_new(o, "actions", actions);
        json_object_set_new(o, "operators", string_array(seccomp_operators, ARRAY_SIZE(seccomp_operators)));
        json_object_set_new(o, "archs", archs);
        json_object_set_new(o, "knownFlags", known);
        json_object_set_new(o, "supportedFlags", supported);
        return o;
fail:
        json_decref(o);
        json_decref(actions);
        json_decref(archs);
        json_decref(known);
        json_decref(supported);
        return NULL;
}

static json_t *enabled_obj(bool on)
{
        return json_pack("{s:b}", "enabled", on);
}

static json_t *linux_features(void)
{
        json_t *l = json_object();
        if (!l)
                return NULL;
        json_object_set_new(l, "namespaces", string_array(namespaces, ARRAY_SIZE(namespaces)));
        json_object_set_new(l, "capabilities", capabilities());
        json_object_set_new(l, "cgroup", json_pack("{s:b,s:b,s:b,s:b,s:b}", "v1", 1, "v2", 1, "systemd", 0,
                                                   "systemdUser", 0, "rdma", 0));
        json_object_set_new(l, "seccomp", seccomp_features());
        /* Recognized (profiles and labels are applied when the host has the LSM). */
        json_object_set_new(l, "apparmor", enabled_obj(true));
        json_object_set_new(l, "selinux", enabled_obj(true));
        json_object_set_new(l, "intelRdt", enabled_obj(false));
        json_object_set_new(l, "mountExtensions", json_pack("{s:{s:b}}", "idmap", "enabled", 1));
        return l;
}

char *moat_features_json(void)
{
        json_t *root = json_object();
        if (!root)
                return NULL;
        json_object_set_new(root, "ociVersionMin", json_string("1.0.0"));
        json_object_set_new(root, "ociVersionMax", json_string("1.2.0"));
        json_object_set_new(root, "hooks", string_array(hooks, ARRAY_SIZE(hooks)));
        json_object_set_new(root, "mountOptions", string_array(mount_options, ARRAY_SIZE(mount_options)));
        json_object_set_new(root, "linux", linux_features());

        json_t *ann = json_object();
        if (ann) {
                const struct scmp_version *v = seccomp_version();
                char sv[64];
                if (v) {
                        snprintf(sv, sizeof(sv), "%u.%u.%u", v->major, v->minor, v->micro);
                        json_object_set_new(ann, "io.github.seccomp.libseccomp.version", json_string(sv));
                }
                json_object_set_new(ann, "org.opencontainers.runc.checkpoint.enabled", json_string("false"));
                json_object_set_new(ann, "io.github.moat.version", json_string(MOAT_VERSION));
                json_object_set_new(root, "annotations", ann);
        }
        char *out = json_dumps(root, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
        json_decref(root);
        return out;
}
