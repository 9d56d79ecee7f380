/* SPDX-License-Identifier: Apache-2.0 */
/* The config.json that `spec` writes: runc's example (libcontainer/specconv),
 * same shape, same key order, tab-indented; --rootless as runc's ToRootless. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "oci/json.h"
#include "oci/spec.h"

static json_t *caps3(void)
{
        return json_pack("[sss]", "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE");
}

static json_t *mount_entry(const char *dest, const char *type, const char *source, json_t *options)
{
        if (!options)
                return json_pack("{s:s, s:s, s:s}", "destination", dest, "type", type, "source", source);
        return json_pack("{s:s, s:s, s:s, s:o}", "destination", dest, "type", type, "source", source, "options",
                         options);
}

static json_t *build(bool rootless)
{
        json_t *mounts = json_pack(
                "[o, o, o, o, o, o, o]", mount_entry("/proc", "proc", "proc", NULL),
                mount_entry("/dev", "tmpfs", "tmpfs", json_pack("[ssss]", "nosuid", "strictatime", "mode=755",
                                                                "size=65536k")),
                rootless ? mount_entry("/dev/pts", "devpts", "devpts",
                                       json_pack("[sssss]", "nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                                 "mode=0620"))
                         : mount_entry("/dev/pts", "devpts", "devpts",
                                       json_pack("[ssssss]", "nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                                 "mode=0620", "gid=5")),
                mount_entry("/dev/shm", "tmpfs", "shm",
                            json_pack("[sssss]", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k")),
                mount_entry("/dev/mqueue", "mqueue", "mqueue", json_pack("[sss]", "nosuid", "noexec", "nodev")),
                rootless ? json_pack("{s:s, s:s, s:s, s:[sssss]}", "destination", "/sys", "type", "none", "source",
                                     "/sys", "options", "rbind", "nosuid", "noexec", "nodev", "ro")
                         : mount_entry("/sys", "sysfs", "sysfs", json_pack("[ssss]", "nosuid", "noexec", "nodev", "ro")),
                mount_entry("/sys/fs/cgroup", "cgroup", "cgroup",
                            json_pack("[sssss]", "nosuid", "noexec", "nodev", "relatime", "ro")));
        json_t *process = json_pack(
                "{s:b, s:{s:i, s:i}, s:[s], s:[ss], s:s, s:{s:o, s:o, s:o}, s:[{s:s, s:i, s:i}], s:b}", "terminal",
                1, "user", "uid", 0, "gid", 0, "args", "sh", "env",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "cwd", "/",
                "capabilities", "bounding", caps3(), "effective", caps3(), "permitted", caps3(), "rlimits", "type",
                "RLIMIT_NOFILE", "hard", 1024, "soft", 1024, "noNewPrivileges", 1);
        json_t *linux_ = json_object();
        json_t *ns = json_array();
        static const char *const ns_root[] = { "pid", "network", "ipc", "uts", "mount", "cgroup" };
        for (size_t i = 0; i < 6; i++)
                if (!rootless || strcmp(ns_root[i], "network") != 0)
                        json_array_append_new(ns, json_pack("{s:s}", "type", ns_root[i]));
        if (rootless) {
                json_array_append_new(ns, json_pack("{s:s}", "type", "user"));
                json_object_set_new(linux_, "uidMappings",
                                    json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID", (json_int_t)geteuid(),
                                              "size", 1));
                json_object_set_new(linux_, "gidMappings",
                                    json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID", (json_int_t)getegid(),
                                              "size", 1));
        } else {
                json_object_set_new(linux_, "resources",
                                    json_pack("{s:[{s:b, s:s}]}", "devices", "allow", 0, "access", "rwm"));
        }
        json_object_set_new(linux_, "namespaces", ns);
        json_object_set_new(linux_, "maskedPaths",
                            json_pack("[sssssssssss]", "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                                      "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                      "/proc/sched_debug", "/sys/firmware", "/proc/scsi", "/sys/devices/virtual/tpm"));
        json_object_set_new(linux_, "readonlyPaths",
                            json_pack("[sssss]", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                      "/proc/sysrq-trigger"));
        if (!mounts || !process)
                goto fail;
        json_t *spec = json_pack("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:o}", "ociVersion", MOAT_OCI_VERSION,
                                 "process", process, "root", "path", "rootfs", "readonly", 1, "hostname", "runc",
                                 "mounts", mounts, "linux", linux_);
        return spec;
fail:
        json_decref(mounts);
        json_decref(process);
        json_decref(linux_);
        return NULL;
}

char *moat_spec_default_json(bool rootless)
{
        _cleanup_json_ json_t *spec = build(rootless);
        if (!spec)
                return NULL;
        _cleanup_free_ char *text = json_dumps(spec, JSON_INDENT(1));
        if (!text)
                return NULL;
        /* JSON_INDENT(1) puts one space per level at the start of a line: make those tabs. */
        size_t len = strlen(text);
        char *out = malloc(len + 2);
        if (!out)
                return NULL;
        bool bol = true;
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
                char ch = text[i];
                if (bol && ch == ' ') {
                        out[o++] = '\t';
                        continue;
                }
                bol = ch == '\n';
                out[o++] = ch;
        }
        out[o++] = '\n';
        out[o] = '\0';
        return out;
}
