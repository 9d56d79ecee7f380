/* SPDX-License-Identifier: Apache-2.0 */
/* Name tables: namespaces, capabilities (libcap), rlimits, hooks. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "oci/spec-internal.h"
#include "oci/spec.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const struct {
        const char *name, *proc;
        int flag;
} ns_table[MOAT_NS__COUNT] = {
        [MOAT_NS_PID] = { "pid", "pid", CLONE_NEWPID },
        [MOAT_NS_NET] = { "network", "net", CLONE_NEWNET },
        [MOAT_NS_MNT] = { "mount", "mnt", CLONE_NEWNS },
        [MOAT_NS_IPC] = { "ipc", "ipc", CLONE_NEWIPC },
        [MOAT_NS_UTS] = { "uts", "uts", CLONE_NEWUTS },
        [MOAT_NS_USER] = { "user", "user", CLONE_NEWUSER },
        [MOAT_NS_CGROUP] = { "cgroup", "cgroup", CLONE_NEWCGROUP },
        [MOAT_NS_TIME] = { "time", "time", CLONE_NEWTIME },
};

const char *moat_ns_name(enum moat_ns_type t)
{
        return (unsigned)t < MOAT_NS__COUNT ? ns_table[t].name : NULL;
}

const char *moat_ns_proc_name(enum moat_ns_type t)
{
        return (unsigned)t < MOAT_NS__COUNT ? ns_table[t].proc : NULL;
}

int moat_ns_clone_flag(enum moat_ns_type t)
{
        return (unsigned)t < MOAT_NS__COUNT ? ns_table[t].flag : 0;
}

int spec_ns_from_name(const char *name)
{
        for (int i = 0; i < MOAT_NS__COUNT; i++)
                if (STREQ(ns_table[i].name, name))
                        return i;
        return -EINVAL;
}

static const char *const hook_names[MOAT_HOOK__COUNT] = {
        [MOAT_HOOK_PRESTART] = "prestart",
        [MOAT_HOOK_CREATE_RUNTIME] = "createRuntime",
        [MOAT_HOOK_CREATE_CONTAINER] = "createContainer",
        [MOAT_HOOK_START_CONTAINER] = "startContainer",
        [MOAT_HOOK_POSTSTART] = "poststart",
        [MOAT_HOOK_POSTSTOP] = "poststop",
};

const char *moat_hook_kind_name(enum moat_hook_kind k)
{
        return (unsigned)k < MOAT_HOOK__COUNT ? hook_names[k] : NULL;
}

/* ---- capabilities ---- */

static int cap_last_override = -1;

void spec_cap_set_last_for_tests(int last)
{
        cap_last_override = last;
}

int moat_cap_last(void)
{
        if (cap_last_override >= 0)
                return cap_last_override;
        static int cached = -1;
        if (cached >= 0)
                return cached;
        _cleanup_free_ char *s = NULL;
        int last;
        if (read_file_at(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", &s, NULL) >= 0) {
                s[strcspn(s, "\n")] = '\0';
                if (parse_int(s, &last) >= 0 && last >= 0 && last < 64)
                        return cached = last;
        }
        return cached = CAP_LAST_CAP; /* no /proc: what libcap was built with */
}

static char cap_names[64][40];
static pthread_once_t cap_names_once = PTHREAD_ONCE_INIT;

static void cap_names_init(void)
{
        for (int i = 0; i < 64; i++) {
                char *n = cap_to_name((cap_value_t)i);
                /* libcap spells unknown ones as a number */
                if (n && n[0] != '\0' && (n[0] < '0' || n[0] > '9') && strlen(n) < sizeof(cap_names[i])) {
                        for (size_t j = 0; n[j]; j++)
                                cap_names[i][j] = (n[j] >= 'a' && n[j] <= 'z') ? (char)(n[j] - 'a' + 'A') : n[j];
                }
                cap_free(n);
        }
}

const char *moat_cap_name(int cap)
{
        if (cap < 0 || cap >= 64)
                return NULL;
        pthread_once(&cap_names_once, cap_names_init);
        return cap_names[cap][0] ? cap_names[cap] : NULL;
}

int moat_cap_from_name(const char *name)
{
        /* runc takes only the canonical spelling: "CAP_" and upper case. */
        if (!name || strncmp(name, "CAP_", 4) != 0 || name[4] == '\0')
                return -EINVAL;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
                        return -EINVAL;
        cap_value_t v;
        if (cap_from_name(name, &v) < 0 || v < 0 || v >= 64)
                return -EINVAL;
        return (int)v;
}

/* ---- rlimits ---- */

static const struct {
        const char *name;
        int resource;
} rlimit_table[] = {
        { "RLIMIT_AS", RLIMIT_AS },           { "RLIMIT_CORE", RLIMIT_CORE },
        { "RLIMIT_CPU", RLIMIT_CPU },         { "RLIMIT_DATA", RLIMIT_DATA },
        { "RLIMIT_FSIZE", RLIMIT_FSIZE },     { "RLIMIT_LOCKS", RLIMIT_LOCKS },
        { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK }, { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
        { "RLIMIT_NICE", RLIMIT_NICE },       { "RLIMIT_NOFILE", RLIMIT_NOFILE },
        { "RLIMIT_NPROC", RLIMIT_NPROC },     { "RLIMIT_RSS", RLIMIT_RSS },
        { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },   { "RLIMIT_RTTIME", RLIMIT_RTTIME },
        { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING }, { "RLIMIT_STACK", RLIMIT_STACK },
};

int moat_rlimit_from_name(const char *name)
{
        for (size_t i = 0; name && i < ARRAY_SIZE(rlimit_table); i++)
                if (STREQ(rlimit_table[i].name, name))
                        return rlimit_table[i].resource;
        return -EINVAL;
}

const char *moat_rlimit_name(int resource)
{
        for (size_t i = 0; i < ARRAY_SIZE(rlimit_table); i++)
                if (rlimit_table[i].resource == resource)
                        return rlimit_table[i].name;
        return NULL;
}
