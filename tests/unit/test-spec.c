/* SPDX-License-Identifier: Apache-2.0 */
/* config.json parsing: a full realistic config, every field checked. */
#include <errno.h>
#include <fcntl.h>
#include <linux/ioprio.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <seccomp.h>

#include "core/error.h"
#include "core/util.h"
#include "oci/spec.h"
#include "spec-test-util.h"
#include "tap.h"

static const char full_config[] =
        "{'ociVersion': '1.2.0',"
        " 'process': {"
        "   'terminal': true, 'consoleSize': {'height': 25, 'width': 80},"
        "   'user': {'uid': 1000, 'gid': 1001, 'umask': 18, 'additionalGids': [5, 6, 4294967295]},"
        "   'args': ['/bin/sh', '-c', 'echo hi'],"
        "   'env': ['PATH=/usr/bin:/bin', 'TERM=xterm', 'EMPTY='],"
        "   'cwd': '/work',"
        "   'capabilities': {'bounding': ['CAP_CHOWN', 'CAP_KILL', 'CAP_SYS_ADMIN'],"
        "                    'effective': ['CAP_KILL'], 'inheritable': [], 'permitted': ['CAP_KILL', 'CAP_NET_RAW'],"
        "                    'ambient': ['CAP_NET_BIND_SERVICE']},"
        "   'rlimits': [{'type': 'RLIMIT_NOFILE', 'hard': 4096, 'soft': 1024},"
        "               {'type': 'RLIMIT_CORE', 'hard': 18446744073709551615, 'soft': 18446744073709551615}],"
        "   'noNewPrivileges': true, 'apparmorProfile': 'moat-default', 'selinuxLabel': 'system_u:system_r:container_t:s0',"
        "   'oomScoreAdj': -500,"
        "   'scheduler': {'policy': 'SCHED_FIFO', 'priority': 10, 'flags': ['SCHED_FLAG_RESET_ON_FORK']},"
        "   'ioPriority': {'class': 'IOPRIO_CLASS_BE', 'priority': 4},"
        "   'execCPUAffinity': {'initial': '0-1,3', 'final': '2'},"
        "   'futureField': {'ignored': true}"
        " },"
        " 'root': {'path': 'rootfs', 'readonly': true},"
        " 'hostname': 'box', 'domainname': 'example.org',"
        " 'mounts': ["
        "   {'destination': '/proc', 'type': 'proc', 'source': 'proc'},"
        "   {'destination': '/dev', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},"
        "   {'destination': '/data', 'type': 'bind', 'source': '/srv/data', 'options': ['rbind', 'ro', 'rprivate', 'rnoexec'],"
        "    'uidMappings': [{'containerID': 0, 'hostID': 100000, 'size': 65536}],"
        "    'gidMappings': [{'containerID': 0, 'hostID': 100000, 'size': 65536}]}"
        " ],"
        " 'hooks': {"
        "   'prestart': [{'path': '/usr/bin/hook', 'args': ['hook', 'pre'], 'env': ['A=1'], 'timeout': 5}],"
        "   'createRuntime': [{'path': '/bin/a'}, {'path': '/bin/b'}],"
        "   'createContainer': [], 'startContainer': [{'path': '/bin/s'}],"
        "   'poststart': [{'path': '/bin/ps'}], 'poststop': [{'path': '/bin/stop', 'timeout': 1}]"
        " },"
        " 'annotations': {'moat.isolation': 'vm', 'org.example/key': 'value', 'digits': '-12345678901234567890123 \\\" 99999999999999999999'},"
        " 'linux': {"
        "   'namespaces': [{'type': 'pid'}, {'type': 'network', 'path': '/var/run/netns/x'}, {'type': 'mount'},"
        "                  {'type': 'ipc'}, {'type': 'uts'}, {'type': 'user'}, {'type': 'cgroup'}, {'type': 'time'}],"
        "   'uidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 1}, {'containerID': 1, 'hostID': 100000, 'size': 65535}],"
        "   'gidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 65536}],"
        "   'timeOffsets': {'monotonic': {'secs': -10, 'nanosecs': 500}, 'boottime': {'secs': 86400, 'nanosecs': 0}},"
        "   'devices': [{'path': '/dev/fuse', 'type': 'c', 'major': 10, 'minor': 229, 'fileMode': 438, 'uid': 0, 'gid': 0},"
        "               {'path': '/dev/myfifo', 'type': 'p'}],"
        "   'cgroupsPath': '/moat/box',"
        "   'resources': {"
        "     'devices': [{'allow': false, 'access': 'rwm'}, {'allow': true, 'type': 'c', 'major': 10, 'minor': 229, 'access': 'rw'}],"
        "     'memory': {'limit': 536870912, 'reservation': 268435456, 'swap': -1, 'swappiness': 60, 'disableOOMKiller': false,"
        "                'checkBeforeUpdate': true},"
        "     'cpu': {'shares': 1024, 'quota': 50000, 'period': 100000, 'burst': 1000, 'realtimeRuntime': 950000,"
        "             'realtimePeriod': 1000000, 'cpus': '0-1', 'mems': '0', 'idle': 0},"
        "     'pids': {'limit': 100},"
        "     'blockIO': {'weight': 500, 'leafWeight': 300,"
        "               'weightDevice': [{'major': 8, 'minor': 0, 'weight': 600}],"
        "               'throttleReadBpsDevice': [{'major': 8, 'minor': 0, 'rate': 1048576}],"
        "               'throttleWriteIOPSDevice': [{'major': 8, 'minor': 16, 'rate': 100}]},"
        "     'hugepageLimits': [{'pageSize': '2MB', 'limit': 209715200}],"
        "     'network': {'classID': 1048577, 'priorities': [{'name': 'eth0', 'priority': 500}]},"
        "     'unified': {'memory.high': '1G', 'io.weight': 'default 100'},"
        "     'rdma': {'mlx5_1': {'hcaHandles': 3}}"
        "   },"
        "   'rootfsPropagation': 'rslave',"
        "   'maskedPaths': ['/proc/kcore', '/sys/firmware'],"
        "   'readonlyPaths': ['/proc/sys'],"
        "   'mountLabel': 'system_u:object_r:container_file_t:s0',"
        "   'sysctl': {'net.ipv4.ip_forward': '1', 'kernel.shmmax': '65536', 'fs.mqueue.msg_max': '20',"
        "              'kernel.domainname': 'example.org'},"
        "   'seccomp': {'defaultAction': 'SCMP_ACT_ERRNO', 'defaultErrnoRet': 38,"
        "               'architectures': ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],"
        "               'flags': ['SECCOMP_FILTER_FLAG_LOG'],"
        "               'listenerPath': '/run/seccomp.sock', 'listenerMetadata': 'meta',"
        "               'syscalls': [{'names': ['read', 'write'], 'action': 'SCMP_ACT_ALLOW'},"
        "                            {'names': ['personality'], 'action': 'SCMP_ACT_ALLOW',"
        "                             'args': [{'index': 0, 'value': 4294967295, 'op': 'SCMP_CMP_EQ'},"
        "                                      {'index': 5, 'value': 18446744073709551615, 'valueTwo': 3, 'op': 'SCMP_CMP_MASKED_EQ'}]},"
        "                            {'names': ['mount'], 'action': 'SCMP_ACT_NOTIFY'},"
        "                            {'names': ['ptrace'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1},"
        "                            {'names': ['kexec_load'], 'action': 'SCMP_ACT_KILL_PROCESS'}]},"
        "   'personality': {'domain': 'LINUX32'},"
        "   'intelRdt': {'closID': 'x'}"
        " }}";

static void test_full(void)
{
        _cleanup_free_ char *json = q(full_config);
        struct moat_spec *s = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_spec_parse(json, strlen(json), "config.json", &s, &err);
        if (!is_int(r, 0, "full config parses")) {
                printf("# %s\n", err ? err->msg : "(no message)");
                return;
        }
        is_str(s->oci_version, "1.2.0", "ociVersion");
        is_str(s->root.path, "rootfs", "root.path as given");
        ok(s->root.readonly, "root.readonly");
        is_str(s->hostname, "box", "hostname");
        is_str(s->domainname, "example.org", "domainname");

        struct moat_process *p = s->process;
        ok(p, "process present");
        ok(p->terminal, "terminal");
        ok(p->has_console_size && p->console_height == 25 && p->console_width == 80, "consoleSize");
        is_int(p->uid, 1000, "uid");
        is_int(p->gid, 1001, "gid");
        ok(p->has_umask && p->umask == 022, "umask");
        is_int(p->n_additional_gids, 3, "additionalGids count");
        ok(p->additional_gids[0] == 5 && p->additional_gids[1] == 6 && p->additional_gids[2] == 4294967295u,
           "additionalGids values (incl. 2^32-1)");
        is_int(strv_length(p->args), 3, "args count");
        is_str(p->args[2], "echo hi", "args[2]");
        is_int(strv_length(p->env), 3, "env count");
        is_str(p->env[2], "EMPTY=", "env[2]");
        is_str(p->cwd, "/work", "cwd");
        ok(p->has_caps, "has_caps");
        ok(p->caps[MOAT_CAP_BOUNDING] == ((1ull << 0) | (1ull << 5) | (1ull << 21)), "bounding caps");
        ok(p->caps[MOAT_CAP_EFFECTIVE] == (1ull << 5), "effective caps");
        ok(p->caps[MOAT_CAP_INHERITABLE] == 0, "inheritable empty");
        ok(p->caps[MOAT_CAP_PERMITTED] == ((1ull << 5) | (1ull << 13)), "permitted caps");
        ok(p->caps[MOAT_CAP_AMBIENT] == (1ull << 10), "ambient caps");
        is_int(p->n_rlimits, 2, "rlimits count");
        ok(p->rlimits[0].resource == RLIMIT_NOFILE && p->rlimits[0].soft == 1024 && p->rlimits[0].hard == 4096,
           "RLIMIT_NOFILE");
        is_str(p->rlimits[0].name, "RLIMIT_NOFILE", "rlimit name kept");
        ok(p->rlimits[1].resource == RLIMIT_CORE && p->rlimits[1].soft == UINT64_MAX && p->rlimits[1].hard == UINT64_MAX,
           "RLIMIT_CORE unlimited (2^64-1 beyond json_int_t)");
        ok(p->no_new_privileges, "noNewPrivileges");
        is_str(p->apparmor_profile, "moat-default", "apparmorProfile");
        is_str(p->selinux_label, "system_u:system_r:container_t:s0", "selinuxLabel");
        ok(p->has_oom_score_adj && p->oom_score_adj == -500, "oomScoreAdj");
        ok(p->has_scheduler && p->sched_policy == SCHED_FIFO && p->sched_priority == 10 && p->sched_flags == 1,
           "scheduler");
        ok(p->has_io_priority && p->io_priority_class == IOPRIO_CLASS_BE && p->io_priority == 4, "ioPriority");
        is_str(p->exec_cpu_affinity_initial, "0-1,3", "execCPUAffinity.initial");
        is_str(p->exec_cpu_affinity_final, "2", "execCPUAffinity.final");
        ok(!p->command_line, "no commandLine");

        is_int(s->n_mounts, 3, "mounts count");
        is_str(s->mounts[0].destination, "/proc", "mounts[0].destination");
        is_str(s->mounts[0].type, "proc", "mounts[0].type");
        ok(!s->mounts[0].data && s->mounts[0].flags == 0, "mounts[0] no options");
        is_str(s->mounts[1].data, "mode=755,size=65536k", "mounts[1].data");
        ok(s->mounts[1].flags == (MS_NOSUID | MS_STRICTATIME), "mounts[1].flags");
        ok(s->mounts[2].bind, "mounts[2] bind");
        ok(s->mounts[2].flags == (MS_BIND | MS_REC | MS_RDONLY), "mounts[2].flags rbind,ro");
        ok(s->mounts[2].propagation == (MS_PRIVATE | MS_REC), "mounts[2] rprivate");
        ok(s->mounts[2].attr_set == MOUNT_ATTR_NOEXEC, "mounts[2] rnoexec");
        is_int(strv_length(s->mounts[2].options), 4, "mounts[2].options kept");
        ok(s->mounts[2].n_uid_mappings == 1 && s->mounts[2].uid_mappings[0].host_id == 100000 &&
                   s->mounts[2].uid_mappings[0].size == 65536,
           "mounts[2].uidMappings");
        is_int(s->mounts[2].n_gid_mappings, 1, "mounts[2].gidMappings");

        is_int(s->n_hooks[MOAT_HOOK_PRESTART], 1, "prestart hooks");
        is_str(s->hooks[MOAT_HOOK_PRESTART][0].path, "/usr/bin/hook", "prestart path");
        is_str(s->hooks[MOAT_HOOK_PRESTART][0].args[1], "pre", "prestart args");
        is_str(s->hooks[MOAT_HOOK_PRESTART][0].env[0], "A=1", "prestart env");
        is_int(s->hooks[MOAT_HOOK_PRESTART][0].timeout, 5, "prestart timeout");
        is_int(s->n_hooks[MOAT_HOOK_CREATE_RUNTIME], 2, "createRuntime hooks");
        is_str(s->hooks[MOAT_HOOK_CREATE_RUNTIME][1].path, "/bin/b", "createRuntime[1]");
        is_int(s->n_hooks[MOAT_HOOK_CREATE_CONTAINER], 0, "createContainer empty");
        is_int(s->n_hooks[MOAT_HOOK_START_CONTAINER], 1, "startContainer");
        is_int(s->n_hooks[MOAT_HOOK_POSTSTART], 1, "poststart");
        is_int(s->hooks[MOAT_HOOK_POSTSTOP][0].timeout, 1, "poststop timeout");

        is_int(s->n_annotations, 3, "annotations count");
        is_str(moat_spec_annotation(s, "digits"), "-12345678901234567890123 \" 99999999999999999999",
               "long digit runs inside strings are left alone");
        is_str(moat_spec_annotation(s, "moat.isolation"), "vm", "annotation lookup");
        is_str(moat_spec_annotation(s, "org.example/key"), "value", "annotation with slash");
        ok(!moat_spec_annotation(s, "nope"), "missing annotation");

        struct moat_linux *l = &s->linux_;
        is_int(l->n_namespaces, 8, "namespaces count");
        ok(moat_spec_ns(s, MOAT_NS_PID) && !moat_spec_ns(s, MOAT_NS_PID)->path, "pid ns new");
        is_str(moat_spec_ns(s, MOAT_NS_NET)->path, "/var/run/netns/x", "net ns path");
        ok(moat_spec_ns(s, MOAT_NS_TIME) != NULL, "time ns");
        ok(l->n_uid_mappings == 2 && l->uid_mappings[1].container_id == 1 && l->uid_mappings[1].host_id == 100000 &&
                   l->uid_mappings[1].size == 65535,
           "uidMappings");
        ok(l->n_gid_mappings == 1 && l->gid_mappings[0].size == 65536, "gidMappings");
        ok(l->has_time_offsets && l->time_monotonic.secs == -10 && l->time_monotonic.nanosecs == 500 &&
                   l->time_boottime.secs == 86400,
           "timeOffsets");
        is_int(l->n_devices, 2, "devices count");
        ok(l->devices[0].type == 'c' && l->devices[0].major == 10 && l->devices[0].minor == 229 &&
                   l->devices[0].has_file_mode && l->devices[0].file_mode == 0666 && l->devices[0].has_uid &&
                   l->devices[0].has_gid,
           "devices[0]");
        ok(l->devices[1].type == 'p' && !l->devices[1].has_file_mode, "devices[1] fifo");
        is_str(l->cgroups_path, "/moat/box", "cgroupsPath");

        struct moat_resources *res = &l->resources;
        ok(res->present, "resources present");
        is_int(res->n_devices, 2, "device rules");
        ok(!res->devices[0].allow && res->devices[0].type == 'a' && res->devices[0].major == -1 &&
                   res->devices[0].minor == -1 && STREQ(res->devices[0].access, "rwm"),
           "device rule 0 (deny all)");
        ok(res->devices[1].allow && res->devices[1].type == 'c' && res->devices[1].major == 10 &&
                   STREQ(res->devices[1].access, "rw"),
           "device rule 1");
        ok(res->memory.has_limit && res->memory.limit == 536870912, "memory.limit");
        ok(res->memory.has_reservation && res->memory.reservation == 268435456, "memory.reservation");
        ok(res->memory.has_swap && res->memory.swap == -1, "memory.swap -1");
        ok(!res->memory.has_kernel, "memory.kernel absent");
        ok(res->memory.has_swappiness && res->memory.swappiness == 60, "memory.swappiness");
        ok(res->memory.has_disable_oom_killer && !res->memory.disable_oom_killer, "disableOOMKiller");
        ok(res->memory.has_check_before_update && res->memory.check_before_update, "checkBeforeUpdate");
        ok(res->cpu.has_shares && res->cpu.shares == 1024 && res->cpu.quota == 50000 && res->cpu.period == 100000 &&
                   res->cpu.burst == 1000 && res->cpu.realtime_runtime == 950000 &&
                   res->cpu.realtime_period == 1000000 && res->cpu.has_idle && res->cpu.idle == 0,
           "cpu numbers");
        is_str(res->cpu.cpus, "0-1", "cpu.cpus");
        is_str(res->cpu.mems, "0", "cpu.mems");
        ok(res->pids.has_limit && res->pids.limit == 100, "pids.limit");
        ok(res->blkio.has_weight && res->blkio.weight == 500 && res->blkio.leaf_weight == 300, "blkio weight");
        ok(res->blkio.n_weight_device == 1 && res->blkio.weight_device[0].weight == 600 &&
                   !res->blkio.weight_device[0].has_leaf_weight,
           "blkio weightDevice");
        ok(res->blkio.n_throttle[MOAT_THROTTLE_READ_BPS] == 1 &&
                   res->blkio.throttle[MOAT_THROTTLE_READ_BPS][0].rate == 1048576,
           "throttleReadBpsDevice");
        ok(res->blkio.n_throttle[MOAT_THROTTLE_WRITE_IOPS] == 1 &&
                   res->blkio.throttle[MOAT_THROTTLE_WRITE_IOPS][0].minor == 16,
           "throttleWriteIOPSDevice");
        is_int(res->blkio.n_throttle[MOAT_THROTTLE_WRITE_BPS], 0, "no write bps");
        ok(res->n_hugepages == 1 && STREQ(res->hugepages[0].page_size, "2MB") && res->hugepages[0].limit == 209715200,
           "hugepageLimits");
        ok(res->network.has_class_id && res->network.class_id == 1048577 && res->network.n_priorities == 1 &&
                   STREQ(res->network.priorities[0].name, "eth0") && res->network.priorities[0].priority == 500,
           "network");
        ok(res->n_unified == 2 && STREQ(res->unified[0].key, "memory.high") && STREQ(res->unified[1].value, "default 100"),
           "unified");

        ok(l->rootfs_propagation == (MS_SLAVE | MS_REC), "rootfsPropagation rslave");
        ok(l->has_masked_paths && strv_length(l->masked_paths) == 2, "maskedPaths");
        ok(l->has_readonly_paths && STREQ(l->readonly_paths[0], "/proc/sys"), "readonlyPaths");
        is_str(l->mount_label, "system_u:object_r:container_file_t:s0", "mountLabel");
        is_int(l->n_sysctl, 4, "sysctl count");
        ok(STREQ(l->sysctl[0].key, "net.ipv4.ip_forward") && STREQ(l->sysctl[0].value, "1"), "sysctl[0]");

        struct moat_seccomp *sc = l->seccomp;
        ok(sc, "seccomp present");
        ok(sc->default_action == SCMP_ACT_ERRNO(0) && sc->has_default_errno_ret && sc->default_errno_ret == 38,
           "seccomp default ERRNO(38)");
        ok(strv_length(sc->architectures) == 2 && STREQ(sc->architectures[0], "SCMP_ARCH_X86_64"), "architectures");
        is_str(sc->flags[0], "SECCOMP_FILTER_FLAG_LOG", "flags");
        is_str(sc->listener_path, "/run/seccomp.sock", "listenerPath");
        is_str(sc->listener_metadata, "meta", "listenerMetadata");
        is_int(sc->n_syscalls, 5, "syscalls");
        ok(sc->syscalls[0].action == SCMP_ACT_ALLOW && strv_length(sc->syscalls[0].names) == 2, "rule 0");
        ok(sc->syscalls[1].n_args == 2 && sc->syscalls[1].args[0].value == 4294967295u &&
                   sc->syscalls[1].args[0].op == SCMP_CMP_EQ,
           "rule 1 arg 0");
        ok(sc->syscalls[1].args[1].index == 5 && sc->syscalls[1].args[1].value == UINT64_MAX &&
                   sc->syscalls[1].args[1].value_two == 3 && sc->syscalls[1].args[1].op == SCMP_CMP_MASKED_EQ,
           "rule 1 arg 1 (uint64 max)");
        ok(sc->syscalls[2].action == SCMP_ACT_NOTIFY, "rule 2 notify");
        ok(sc->syscalls[3].action == SCMP_ACT_ERRNO(0) && sc->syscalls[3].has_errno_ret && sc->syscalls[3].errno_ret == 1,
           "rule 3 errno 1");
        ok(!sc->syscalls[0].has_errno_ret, "rule 0 no errno");
        ok(sc->syscalls[4].action == SCMP_ACT_KILL_PROCESS, "rule 4 kill process");
        ok(l->has_personality && l->personality == PER_LINUX32, "personality");
        ok(l->has_intel_rdt, "intelRdt");
        moat_spec_free(s);
}

static void test_minimal(void)
{
        _cleanup_free_ char *json = q("{'ociVersion': '1.0.2-dev', 'root': {'path': '/r'}, 'process': null,"
                                      " 'hostname': null, 'linux': {'namespaces': null}}");
        struct moat_spec *s = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        is_int(moat_spec_parse(json, strlen(json), NULL, &s, &err), 0, "minimal config with nulls");
        if (s) {
                ok(!s->process && !s->hostname && !s->linux_.resources.present && !s->linux_.seccomp, "all absent");
                ok(!s->root.readonly, "readonly default false");
                moat_spec_free(s);
        }
}

static void test_defaults(void)
{
        for (int rootless = 0; rootless < 2; rootless++) {
                char *json = moat_spec_default_json(rootless);
                ok(json != NULL, "default json (rootless=%d)", rootless);
                if (!json)
                        continue;
                ok(strstr(json, "\n\t\"process\": {") != NULL, "tab indented like runc (rootless=%d)", rootless);
                struct moat_spec *s = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                int r = moat_spec_parse(json, strlen(json), "default", &s, &err);
                if (!is_int(r, 0, "default parses (rootless=%d)", rootless)) {
                        printf("# %s\n", err ? err->msg : "");
                        free(json);
                        continue;
                }
                is_str(s->process->args[0], "sh", "args sh");
                ok(s->process->terminal, "terminal");
                uint64_t three = (1ull << 29) | (1ull << 5) | (1ull << 10);
                ok(s->process->caps[MOAT_CAP_BOUNDING] == three && s->process->caps[MOAT_CAP_EFFECTIVE] == three &&
                           s->process->caps[MOAT_CAP_PERMITTED] == three,
                   "three default caps");
                ok(s->process->n_rlimits == 1 && s->process->rlimits[0].soft == 1024, "RLIMIT_NOFILE 1024");
                is_int(s->n_mounts, 7, "seven mounts");
                is_str(s->mounts[6].destination, "/sys/fs/cgroup", "cgroup mount last");
                is_int(strv_length(s->linux_.masked_paths), 11, "masked paths");
                is_int(strv_length(s->linux_.readonly_paths), 5, "readonly paths");
                ok(moat_spec_ns(s, MOAT_NS_PID) && moat_spec_ns(s, MOAT_NS_IPC) && moat_spec_ns(s, MOAT_NS_UTS) &&
                           moat_spec_ns(s, MOAT_NS_MNT) && moat_spec_ns(s, MOAT_NS_CGROUP),
                   "namespaces");
                if (!rootless) {
                        ok(moat_spec_ns(s, MOAT_NS_NET) && !moat_spec_ns(s, MOAT_NS_USER), "network, no user ns");
                        ok(s->linux_.resources.n_devices == 1 && !s->linux_.resources.devices[0].allow, "deny all devices");
                        is_str(s->mounts[2].data, "newinstance,ptmxmode=0666,mode=0620,gid=5", "devpts data");
                } else {
                        ok(!moat_spec_ns(s, MOAT_NS_NET) && moat_spec_ns(s, MOAT_NS_USER), "user ns, no network");
                        ok(s->linux_.n_uid_mappings == 1 && s->linux_.uid_mappings[0].host_id == geteuid() &&
                                   s->linux_.uid_mappings[0].size == 1,
                           "uid mapping for the current user");
                        ok(s->linux_.n_gid_mappings == 1 && s->linux_.gid_mappings[0].host_id == getegid(),
                           "gid mapping");
                        is_str(s->mounts[2].data, "newinstance,ptmxmode=0666,mode=0620", "no gid= in devpts");
                        ok(s->mounts[5].bind && STREQ(s->mounts[5].source, "/sys"), "/sys rbind");
                        ok(!s->linux_.resources.present, "no resources");
                }
                moat_spec_free(s);
                free(json);
        }
}

static void test_bundle(void)
{
        char dir[] = "/tmp/moat-spec-XXXXXX";
        if (!mkdtemp(dir)) {
                skip("mkdtemp failed");
                return;
        }
        struct moat_spec *s = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        is_int(moat_spec_load_bundle(dir, &s, &err), -ENOENT, "missing config.json");
        contains(err ? err->msg : NULL, "config.json", "error names the path");
        moat_error_freep(&err);

        char path[256];
        snprintf(path, sizeof(path), "%s/config.json", dir);
        _cleanup_free_ char *json = q("{'ociVersion': '1.2.0', 'root': {'path': './rootfs/'}}");
        ok(write_text(path, json) == 0, "wrote config.json");
        int r = moat_spec_load_bundle(dir, &s, &err);
        is_int(r, 0, "bundle loads");
        if (s) {
                char want[256];
                snprintf(want, sizeof(want), "%s/rootfs", dir);
                is_str(s->root.path, want, "root.path made absolute");
                moat_spec_free(s);
                s = NULL;
        }
        _cleanup_free_ char *bad = q("{'ociVersion': '1.2.0', 'root': {'path': 'rootfs'}, 'x': [1,}");
        ok(write_text(path, bad) == 0, "wrote broken config.json");
        moat_error_freep(&err);
        is_int(moat_spec_load_bundle(dir, &s, &err), -EINVAL, "broken config.json");
        contains(err ? err->msg : NULL, path, "syntax error names the file");
        contains(err ? err->msg : NULL, "line 1, column", "and line/column");
        unlink(path);
        rmdir(dir);
}

static void test_process(void)
{
        _cleanup_free_ char *json = q("{'args': ['ls', '-l'], 'cwd': '/', 'env': ['A=b'], 'user': {'uid': 5},"
                                      " 'capabilities': {'bounding': ['CAP_KILL']}}");
        struct moat_process *p = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        is_int(moat_process_parse(json, strlen(json), "process.json", &p, &err), 0, "process.json parses");
        if (p) {
                is_str(p->args[1], "-l", "args");
                is_int(p->uid, 5, "uid");
                ok(p->caps[MOAT_CAP_BOUNDING] == (1ull << 5), "caps");
                moat_process_free(p);
                p = NULL;
        }
        _cleanup_free_ char *bad = q("{'args': ['ls'], 'cwd': 'relative'}");
        is_int(moat_process_parse(bad, strlen(bad), "process.json", &p, &err), -EINVAL, "relative cwd refused");
        contains(err ? err->msg : NULL, "process.json: 'cwd'", "names cwd");
}

static void test_names(void)
{
        is_int(moat_cap_from_name("CAP_SYS_ADMIN"), 21, "CAP_SYS_ADMIN");
        is_int(moat_cap_from_name("cap_sys_admin"), -EINVAL, "lower case refused");
        is_int(moat_cap_from_name("CAP_NOPE"), -EINVAL, "unknown cap");
        is_int(moat_cap_from_name("12"), -EINVAL, "number refused");
        is_str(moat_cap_name(0), "CAP_CHOWN", "cap 0 name");
        is_str(moat_cap_name(21), "CAP_SYS_ADMIN", "cap 21 name");
        ok(moat_cap_name(63) == NULL, "cap 63 unknown");
        ok(moat_cap_last() >= 36 && moat_cap_last() < 64, "cap_last_cap sane (%d)", moat_cap_last());
        is_int(moat_rlimit_from_name("RLIMIT_NOFILE"), RLIMIT_NOFILE, "rlimit from name");
        is_str(moat_rlimit_name(RLIMIT_STACK), "RLIMIT_STACK", "rlimit name");
        is_int(moat_rlimit_from_name("RLIMIT_FOO"), -EINVAL, "unknown rlimit");
        is_str(moat_ns_name(MOAT_NS_NET), "network", "ns name");
        is_str(moat_ns_proc_name(MOAT_NS_MNT), "mnt", "ns proc name");
        is_int(moat_ns_clone_flag(MOAT_NS_USER), CLONE_NEWUSER, "ns clone flag");
        is_str(moat_hook_kind_name(MOAT_HOOK_CREATE_RUNTIME), "createRuntime", "hook name");
}

int main(void)
{
        test_full();
        test_minimal();
        test_defaults();
        test_bundle();
        test_process();
        test_names();
        return done_testing();
}
