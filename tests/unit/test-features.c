/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "moat-config.h"
#include "oci/features.h"
#include "oci/spec.h"
#include "tap.h"

static bool has(json_t *arr, const char *s)
{
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
                if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
                        return true;
        return false;
}

static json_t *path(json_t *root, const char *a, const char *b, const char *c)
{
        json_t *v = json_object_get(root, a);
        if (v && b)
                v = json_object_get(v, b);
        if (v && c)
                v = json_object_get(v, c);
        return v;
}

static int kernel_cap_last(void)
{
        _cleanup_free_ char *s = NULL;
        int last = -1;
        if (read_file_at(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", &s, NULL) >= 0) {
                s[strcspn(s, "\n")] = '\0';
                parse_int(s, &last);
        }
        return last;
}

int main(void)
{
        _cleanup_free_ char *text = moat_features_json();
        if (!ok(text != NULL, "features JSON produced"))
                return done_testing();
        json_error_t jerr;
        json_t *root = json_loads(text, 0, &jerr);
        if (!ok(root && json_is_object(root), "valid JSON object (%s)", root ? "ok" : jerr.text))
                return done_testing();

        is_str(json_string_value(json_object_get(root, "ociVersionMin")), "1.0.0", "ociVersionMin");
        is_str(json_string_value(json_object_get(root, "ociVersionMax")), "1.2.0", "ociVersionMax");

        json_t *hooks = json_object_get(root, "hooks");
        is_int(json_array_size(hooks), 6, "six hooks");
        ok(has(hooks, "prestart") && has(hooks, "createRuntime") && has(hooks, "createContainer") &&
           has(hooks, "startContainer") && has(hooks, "poststart") && has(hooks, "poststop"),
           "hooks: every kind");

        json_t *mo = json_object_get(root, "mountOptions");
        ok(json_array_size(mo) >= 55, "mountOptions: %zu names", json_array_size(mo));
        ok(has(mo, "rro") && has(mo, "rbind") && has(mo, "tmpcopyup") && has(mo, "nosymfollow") && has(mo, "idmap"),
           "mountOptions include rro, rbind, tmpcopyup, nosymfollow, idmap");
        /* Each listed option must be one the spec parser knows, not passed on as filesystem data. */
        size_t i;
        json_t *v;
        int unknown = 0;
        json_array_foreach(mo, i, v) {
                char *opts[] = { (char *)json_string_value(v), NULL };
                struct moat_mount m;
                memset(&m, 0, sizeof(m));
                m.type = "none";
                m.options = opts;
                _cleanup_error_ struct moat_error *err = NULL;
                if (moat_mount_parse_options(&m, "options", &err) < 0 || (m.data && *m.data)) {
                        printf("# '%s' is not recognized by moat_mount_parse_options\n", opts[0]);
                        unknown++;
                }
                free(m.data);
        }
        is_int(unknown, 0, "every listed mount option is recognized by the spec parser");

        json_t *ns = path(root, "linux", "namespaces", NULL);
        is_int(json_array_size(ns), 8, "eight namespaces");
        ok(has(ns, "time") && has(ns, "cgroup") && has(ns, "network") && has(ns, "mount") && has(ns, "user"),
           "namespaces include time, cgroup, network, mount, user");

        json_t *caps = path(root, "linux", "capabilities", NULL);
        ok(has(caps, "CAP_CHOWN") && has(caps, "CAP_SYS_ADMIN") && has(caps, "CAP_NET_RAW"),
           "capabilities: CAP_CHOWN, CAP_SYS_ADMIN, CAP_NET_RAW");
        int last = kernel_cap_last();
        if (last >= 40) {
                ok(has(caps, "CAP_CHECKPOINT_RESTORE"), "CAP_CHECKPOINT_RESTORE (cap_last_cap %d)", last);
                is_int(json_array_size(caps), last + 1, "one name per capability up to cap_last_cap");
        } else {
                skip("kernel cap_last_cap < 40");
        }

        json_t *cg = path(root, "linux", "cgroup", NULL);
        ok(json_is_true(json_object_get(cg, "v1")) && json_is_true(json_object_get(cg, "v2")), "cgroup v1 and v2");
        ok(json_is_false(json_object_get(cg, "systemd")) && json_is_false(json_object_get(cg, "systemdUser")) &&
           json_is_false(json_object_get(cg, "rdma")), "cgroup systemd, systemdUser, rdma false");

        json_t *sc = path(root, "linux", "seccomp", NULL);
        ok(json_is_true(json_object_get(sc, "enabled")), "seccomp enabled");
        json_t *acts = json_object_get(sc, "actions");
        ok(has(acts, "SCMP_ACT_ALLOW") && has(acts, "SCMP_ACT_ERRNO") && has(acts, "SCMP_ACT_KILL_PROCESS"),
           "seccomp actions: ALLOW, ERRNO, KILL_PROCESS");
        ok(has(acts, "SCMP_ACT_NOTIFY") && has(acts, "SCMP_ACT_LOG"), "NOTIFY and LOG available on this kernel");
        is_int(json_array_size(json_object_get(sc, "operators")), 7, "seven operators");
        ok(has(json_object_get(sc, "archs"), "SCMP_ARCH_X86_64") && has(json_object_get(sc, "archs"), "SCMP_ARCH_AARCH64"),
           "archs include X86_64 and AARCH64");
        json_t *known = json_object_get(sc, "knownFlags"), *sup = json_object_get(sc, "supportedFlags");
        ok(has(known, "SECCOMP_FILTER_FLAG_LOG") && has(known, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"), "knownFlags");
        int not_known = 0;
        json_array_foreach(sup, i, v)
                if (!has(known, json_string_value(v)))
                        not_known++;
        is_int(not_known, 0, "supportedFlags is a subset of knownFlags");
        ok(has(sup, "SECCOMP_FILTER_FLAG_LOG") && has(sup, "SECCOMP_FILTER_FLAG_TSYNC"),
           "supportedFlags probed: LOG and TSYNC on this kernel");
        ok(has(sup, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"), "WAIT_KILLABLE_RECV (Linux 5.19+) probed with NEW_LISTENER");

        ok(json_is_boolean(path(root, "linux", "apparmor", "enabled")), "apparmor.enabled is a boolean");
        ok(json_is_boolean(path(root, "linux", "selinux", "enabled")), "selinux.enabled is a boolean");
        ok(json_is_false(path(root, "linux", "intelRdt", "enabled")), "intelRdt disabled");
        json_t *idmap = json_object_get(path(root, "linux", "mountExtensions", "idmap"), "enabled");
        ok(json_is_true(idmap), "mountExtensions.idmap.enabled");

        is_str(json_string_value(path(root, "annotations", "org.opencontainers.runc.checkpoint.enabled", NULL)),
               "false", "checkpoint annotation false");
        is_str(json_string_value(path(root, "annotations", "io.github.moat.version", NULL)), MOAT_VERSION,
               "version annotation");
        json_t *ann = json_object_get(root, "annotations");
        const char *k;
        int non_string = 0;
        json_object_foreach(ann, k, v)
                if (!json_is_string(v))
                        non_string++;
        is_int(non_string, 0, "annotations are all strings");

        json_decref(root);
        return done_testing();
}
