/* SPDX-License-Identifier: Apache-2.0 */
/* Bad config.json: each must fail with -EINVAL and a message naming the field. */
#include <errno.h>
#include <stdio.h>

#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "oci/spec-internal.h"
#include "oci/spec.h"
#include "spec-test-util.h"
#include "tap.h"

#define B "{'ociVersion': '1.2.0', 'root': {'path': 'r'}, "
#define P(x) B "'process': {'args': ['sh'], 'cwd': '/', " x "}}"
#define L(x) B "'linux': {" x "}}"
#define NS "'namespaces': [{'type': 'pid'}, {'type': 'mount'}]"
#define SC(x) L("'seccomp': {" x "}")

static const struct {
        const char *json;
        const char *want; /* substring of the message */
} cases[] = {
        /* malformed and truncated */
        { "", "config.json: line 1, column 0" },
        { "{", "config.json: line 1, column 1" },
        { "{'ociVersion': '1.2.0', 'root': {'path': 'r'}", "line 1, column" },
        { "{'ociVersion': '1.2.0',\n 'root': {'path': 'r',}}", "config.json: line 2, column" },
        { "{'ociVersion': '1.2.0', 'ociVersion': '1.2.0'}", "duplicate object key" },
        { "[1, 2]", "expected a JSON object at the top level" },
        { "{'a': 1} trailing", "end of file expected" },
        { "{'a': '\\u0000'}", "NUL" },
        { "{'a': tru}", "invalid token" },
        /* top level */
        { "{'root': {'path': 'r'}}", "'ociVersion': missing" },
        { "{'ociVersion': 1, 'root': {'path': 'r'}}", "'ociVersion': expected a string, got 1" },
        { "{'ociVersion': '2.0.0', 'root': {'path': 'r'}}", "'ociVersion': version \"2.0.0\" is not supported" },
        { "{'ociVersion': '10.0', 'root': {'path': 'r'}}", "'ociVersion'" },
        { "{'ociVersion': '1.2.0'}", "'root': missing" },
        { "{'ociVersion': '1.2.0', 'root': []}", "'root': expected an object, got an array" },
        { "{'ociVersion': '1.2.0', 'root': {}}", "'root.path': missing" },
        { "{'ociVersion': '1.2.0', 'root': {'path': 'r', 'readonly': 'yes'}}",
          "'root.readonly': expected true or false, got a string" },
        { B "'hostname': 5}", "'hostname': expected a string, got 5" },
        { B "'hostname': 'x'}", "'hostname': setting the hostname needs a uts namespace" },
        { B "'domainname': 'x', 'linux': {" NS "}}", "'domainname'" },
        { B "'annotations': {'a': 1}}", "'annotations.a': expected a string, got 1" },
        { B "'annotations': {'': 'x'}}", "must not be empty" },
        { B "'annotations': []}", "'annotations': expected an object" },
        { B "'hooks': {'prestart': [{'args': []}]}}", "'hooks.prestart[0].path': missing" },
        { B "'hooks': {'poststop': [{'path': 'rel'}]}}", "'hooks.poststop[0].path': \"rel\" is not an absolute path" },
        { B "'hooks': {'createRuntime': [{'path': '/x', 'timeout': 0}]}}", "'hooks.createRuntime[0].timeout'" },
        { B "'hooks': {'startContainer': {}}}", "'hooks.startContainer': expected an array" },
        { B "'hooks': {'poststart': [{'path': '/x', 'args': ['a', 3]}]}}", "'hooks.poststart[0].args[1]': expected a string" },
        /* process */
        { B "'process': {'cwd': '/'}}", "'process.args': must name the program" },
        { B "'process': {'args': [], 'cwd': '/'}}", "'process.args'" },
        { B "'process': {'args': ['sh']}}", "'process.cwd': missing" },
        { P("'cwd': 'rel'"), "duplicate object key" },
        { B "'process': {'args': ['sh'], 'cwd': 'rel'}}", "'process.cwd': \"rel\" is not an absolute path" },
        { P("'terminal': 1"), "'process.terminal': expected true or false, got 1" },
        { P("'user': {'uid': -1}"), "'process.user.uid': expected an unsigned 32-bit integer, got -1" },
        { P("'user': {'gid': 4294967296}"), "'process.user.gid': expected an unsigned 32-bit integer, got 4294967296" },
        { P("'user': {'uid': 1.5}"), "'process.user.uid': expected an unsigned 32-bit integer, got 1.5" },
        { P("'user': {'uid': '0'}"), "'process.user.uid': expected an unsigned 32-bit integer, got a string" },
        { P("'user': {'umask': 4096}"), "'process.user.umask'" },
        { P("'user': {'additionalGids': [1, -2]}"), "'process.user.additionalGids[1]': expected an unsigned 32-bit" },
        { P("'user': 'root'"), "'process.user': expected an object, got a string" },
        { P("'consoleSize': {'height': 99999999999}"), "'process.consoleSize.height': expected an unsigned 32-bit integer" },
        { P("'env': ['NOEQUALS']"), "'process.env[0]': \"NOEQUALS\" is not NAME=VALUE" },
        { P("'env': ['=x']"), "'process.env[0]'" },
        { P("'env': 'A=b'"), "'process.env': expected an array, got a string" },
        { P("'commandLine': 'sh -c x'"), "'process.commandLine': only for Windows" },
        { P("'rlimits': [{'type': 'RLIMIT_BOGUS', 'soft': 1, 'hard': 1}]"), "'process.rlimits[0].type': unknown rlimit \"RLIMIT_BOGUS\"" },
        { P("'rlimits': [{'soft': 1, 'hard': 1}]"), "'process.rlimits[0].type': missing" },
        { P("'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': 1, 'hard': 1}, {'type': 'RLIMIT_NOFILE', 'soft': 1, 'hard': 1}]"),
          "'process.rlimits[1].type': duplicate rlimit" },
        { P("'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': 10, 'hard': 1}]"), "'process.rlimits[0].soft': soft limit 10 is above" },
        { P("'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': -1, 'hard': 1}]"), "'process.rlimits[0].soft': expected an unsigned 64-bit integer, got -1" },
        { P("'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': 1, 'hard': 18446744073709551616}]"),
          "'process.rlimits[0].hard': expected an unsigned 64-bit integer, got 18446744073709551616" },
        { P("'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': 1, 'hard': 123456789012345678901234567890}]"),
          "'process.rlimits[0].hard': expected an unsigned 64-bit integer, got 123456789012345678901234567890" },
        { P("'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': -99999999999999999999, 'hard': 1}]"),
          "'process.rlimits[0].soft': expected an unsigned 64-bit integer, got -99999999999999999999" },
        { P("'rlimits': {}"), "'process.rlimits': expected an array" },
        { P("'capabilities': {'bounding': ['CAP_FOO']}"), "'process.capabilities.bounding[0]': unknown capability \"CAP_FOO\"" },
        { P("'capabilities': {'effective': ['CAP_KILL', 'cap_chown']}"), "'process.capabilities.effective[1]': unknown capability" },
        { P("'capabilities': {'ambient': 'CAP_KILL'}"), "'process.capabilities.ambient': expected an array" },
        { P("'oomScoreAdj': 1001"), "'process.oomScoreAdj': expected a value between -1000 and 1000" },
        { P("'oomScoreAdj': 3000000000"), "'process.oomScoreAdj': expected a 32-bit integer, got 3000000000" },
        { P("'scheduler': {}"), "'process.scheduler.policy': missing" },
        { P("'scheduler': {'policy': 'SCHED_FAST'}"), "'process.scheduler.policy': unknown scheduling policy" },
        { P("'scheduler': {'policy': 'SCHED_OTHER', 'nice': 20}"), "'process.scheduler.nice'" },
        { P("'scheduler': {'policy': 'SCHED_OTHER', 'priority': 5}"), "'process.scheduler.priority': only SCHED_FIFO" },
        { P("'scheduler': {'policy': 'SCHED_OTHER', 'runtime': 5}"), "'process.scheduler': runtime, deadline and period" },
        { P("'scheduler': {'policy': 'SCHED_OTHER', 'flags': ['SCHED_FLAG_X']}"), "'process.scheduler.flags[0]': unknown scheduler flag" },
        { P("'ioPriority': {'class': 'IOPRIO_CLASS_X'}"), "'process.ioPriority.class': unknown I/O priority class" },
        { P("'ioPriority': {'class': 'IOPRIO_CLASS_BE', 'priority': 8}"), "'process.ioPriority.priority'" },
        { P("'execCPUAffinity': {'initial': '1-'}"), "'process.execCPUAffinity.initial': invalid CPU list" },
        { P("'execCPUAffinity': {'final': '3-1'}"), "'process.execCPUAffinity.final'" },
        { P("'execCPUAffinity': {'final': ' 1'}"), "'process.execCPUAffinity.final'" },
        { P("'noNewPrivileges': 'true'"), "'process.noNewPrivileges': expected true or false" },
        /* mounts */
        { B "'mounts': [{'type': 'proc'}]}", "'mounts[0].destination': missing" },
        { B "'mounts': [{'destination': '/a'}, {'destination': 'proc'}]}", "'mounts[1].destination': \"proc\" is not an absolute path" },
        { B "'mounts': [{'destination': '/a', 'options': 'ro'}]}", "'mounts[0].options': expected an array, got a string" },
        { B "'mounts': [{'destination': '/a', 'options': ['ro', 1]}]}", "'mounts[0].options[1]': expected a string, got 1" },
        { B "'mounts': [{'destination': '/a', 'uidMappings': [{'containerID': 0, 'hostID': 0, 'size': 1}]}]}",
          "'mounts[0]': an idmapped mount needs both" },
        { B "'mounts': [{'destination': '/a', 'uidMappings': [{'containerID': 0, 'hostID': 0, 'size': 0}]}]}",
          "'mounts[0].uidMappings[0].size': must be greater than 0" },
        { B "'mounts': {}}", "'mounts': expected an array" },
        /* linux: namespaces */
        { L("'namespaces': [{'type': 'foo'}]"),
          "config.json: 'linux.namespaces[0].type': unknown namespace \"foo\" (expected pid, network, mount, ipc, uts, user, cgroup, time)" },
        { L("'namespaces': [{'type': 'pid'}, {'type': 'mount'}, {'type': 'foo'}]"), "'linux.namespaces[2].type': unknown namespace \"foo\"" },
        { L("'namespaces': [{'type': 'pid'}, {'type': 'pid'}]"), "'linux.namespaces[1].type': duplicate namespace \"pid\"" },
        { L("'namespaces': [{}]"), "'linux.namespaces[0].type': missing" },
        { L("'namespaces': [{'type': 'net'}]"), "'linux.namespaces[0].type': unknown namespace \"net\"" },
        { L("'namespaces': [{'type': 'network', 'path': 'netns/x'}]"), "'linux.namespaces[0].path'" },
        { L("'namespaces': [{'type': 7}]"), "'linux.namespaces[0].type': expected a string, got 7" },
        { L("'namespaces': ['pid']"), "'linux.namespaces[0]': expected an object, got a string" },
        /* id maps */
        { L("'namespaces': [{'type': 'user'}], 'uidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 10},"
            " {'containerID': 5, 'hostID': 2000, 'size': 10}], 'gidMappings': [{'containerID': 0, 'hostID': 0, 'size': 1}]"),
          "'linux.uidMappings[1]': container IDs 5-14 overlap those of [0]" },
        { L("'namespaces': [{'type': 'user'}], 'uidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 10},"
            " {'containerID': 100, 'hostID': 1009, 'size': 10}], 'gidMappings': [{'containerID': 0, 'hostID': 0, 'size': 1}]"),
          "'linux.uidMappings[1]': host IDs 1009-1018 overlap those of [0]" },
        { L("'namespaces': [{'type': 'user'}], 'uidMappings': [{'containerID': 4294967295, 'hostID': 0, 'size': 2}]"),
          "'linux.uidMappings[0].size': containerID 4294967295 + size 2 is beyond 2^32" },
        { L("'namespaces': [{'type': 'user'}], 'gidMappings': [{'containerID': 0, 'hostID': 4294967290, 'size': 7}]"),
          "'linux.gidMappings[0].size': hostID" },
        { L("'namespaces': [{'type': 'user'}], 'uidMappings': [{'containerID': 0, 'size': 7}]"), "'linux.uidMappings[0].hostID': missing" },
        { L("'namespaces': [{'type': 'user'}], 'uidMappings': [{'containerID': 0, 'hostID': 0, 'size': -1}]"),
          "'linux.uidMappings[0].size': expected an unsigned 32-bit integer, got -1" },
        { L("'namespaces': [{'type': 'user'}]"), "'linux.uidMappings': a new user namespace needs uid mappings" },
        { L("'namespaces': [{'type': 'user'}], 'uidMappings': [{'containerID': 0, 'hostID': 0, 'size': 1}]"),
          "'linux.gidMappings': a new user namespace needs gid mappings" },
        { L(NS ", 'uidMappings': [{'containerID': 0, 'hostID': 0, 'size': 1}]"), "'linux.uidMappings': uid mappings without a user namespace" },
        { L(NS ", 'gidMappings': [{'containerID': 0, 'hostID': 0, 'size': 1}]"), "'linux.gidMappings': gid mappings without a user namespace" },
        /* cgroupsPath */
        { L("'cgroupsPath': '../../x'"), "'linux.cgroupsPath': \"../../x\" must not contain \"..\"" },
        { L("'cgroupsPath': '/a/../b'"), "'linux.cgroupsPath'" },
        { L("'cgroupsPath': '/a/..'"), "'linux.cgroupsPath'" },
        { L("'cgroupsPath': 5"), "'linux.cgroupsPath': expected a string" },
        /* devices */
        { L("'devices': [{'path': '/dev/x', 'type': 'x', 'major': 1, 'minor': 1}]"), "'linux.devices[0].type': unknown device type \"x\"" },
        { L("'devices': [{'path': '/dev/x', 'type': 'c', 'minor': 1}]"), "'linux.devices[0].major': missing" },
        { L("'devices': [{'path': '/dev/x', 'type': 'b', 'major': 1}]"), "'linux.devices[0].minor': missing" },
        { L("'devices': [{'path': '/etc/x', 'type': 'p'}]"), "'linux.devices[0].path': \"/etc/x\" is not a path under /dev" },
        { L("'devices': [{'path': '/dev/../etc/x', 'type': 'p'}]"), "'linux.devices[0].path'" },
        { L("'devices': [{'path': 'dev/x', 'type': 'p'}]"), "'linux.devices[0].path'" },
        { L("'devices': [{'path': '/dev/x', 'type': 'c', 'major': -1, 'minor': 1}]"), "'linux.devices[0].major': out of range" },
        { L("'devices': [{'path': '/dev/x', 'type': 'p', 'fileMode': 65536}]"), "'linux.devices[0].fileMode'" },
        { L("'devices': [{'path': '/dev/x', 'type': 'p', 'uid': -5}]"), "'linux.devices[0].uid': expected an unsigned 32-bit" },
        { L("'devices': [{'path': '/dev/x', 'type': 'p'}, {'path': '/dev/x', 'type': 'p'}]"), "'linux.devices[1].path': duplicate device" },
        /* resources */
        { L("'resources': {'memory': {'limit': '1G'}}"), "'linux.resources.memory.limit': expected a 64-bit integer, got a string" },
        { L("'resources': {'memory': {'limit': 9223372036854775808}}"), "'linux.resources.memory.limit': expected a 64-bit integer, got 9223372036854775808" },
        { L("'resources': {'memory': {'swappiness': 101}}"), "'linux.resources.memory.swappiness'" },
        { L("'resources': {'cpu': {'shares': -1}}"), "'linux.resources.cpu.shares': expected an unsigned 64-bit integer, got -1" },
        { L("'resources': {'cpu': {'cpus': 3}}"), "'linux.resources.cpu.cpus': expected a string, got 3" },
        { L("'resources': {'pids': {'limit': true}}"), "'linux.resources.pids.limit': expected a 64-bit integer, got true" },
        { L("'resources': {'blockIO': {'weight': 70000}}"), "'linux.resources.blockIO.weight': expected an unsigned 16-bit integer, got 70000" },
        { L("'resources': {'blockIO': {'weightDevice': [{'major': 8, 'minor': 0, 'leafWeight': -1}]}}"),
          "'linux.resources.blockIO.weightDevice[0].leafWeight': expected an unsigned 16-bit" },
        { L("'resources': {'blockIO': {'throttleWriteBpsDevice': [{'major': 8, 'minor': 0, 'rate': 'fast'}]}}"),
          "'linux.resources.blockIO.throttleWriteBpsDevice[0].rate'" },
        { L("'resources': {'devices': [{'access': 'rwm'}]}"), "'linux.resources.devices[0].allow': missing" },
        { L("'resources': {'devices': [{'allow': true, 'access': 'rwx'}]}"), "'linux.resources.devices[0].access'" },
        { L("'resources': {'devices': [{'allow': true, 'type': 'p'}]}"), "'linux.resources.devices[0].type'" },
        { L("'resources': {'hugepageLimits': [{'pageSize': '2MB/../x', 'limit': 1}]}"), "'linux.resources.hugepageLimits[0].pageSize'" },
        { L("'resources': {'hugepageLimits': [{'pageSize': '2MB'}]}"), "'linux.resources.hugepageLimits[0].limit': missing" },
        { L("'resources': {'network': {'classID': -1}}"), "'linux.resources.network.classID'" },
        { L("'resources': {'network': {'priorities': [{'name': 'eth0', 'priority': 'high'}]}}"),
          "'linux.resources.network.priorities[0].priority'" },
        { L("'resources': {'unified': {'../memory.max': '1'}}"), "'linux.resources.unified.../memory.max': invalid cgroup file name" },
        { L("'resources': {'unified': {'memory.max': 1}}"), "'linux.resources.unified.memory.max': expected a string, got 1" },
        { L("'resources': []"), "'linux.resources': expected an object, got an array" },
        /* paths, propagation, sysctl, personality, time */
        { L("'maskedPaths': ['/proc/kcore', 'proc/keys']"), "'linux.maskedPaths[1]': \"proc/keys\" is not an absolute path" },
        { L("'readonlyPaths': ['sys']"), "'linux.readonlyPaths[0]'" },
        { L("'rootfsPropagation': 'sideways'"), "'linux.rootfsPropagation': unknown propagation \"sideways\"" },
        { L("'sysctl': {'net.ipv4.ip_forward': '1'}"), "'linux.sysctl.net.ipv4.ip_forward': needs a network namespace" },
        { L("'sysctl': {'kernel.shmmax': '1'}"), "'linux.sysctl.kernel.shmmax': needs an ipc namespace" },
        { L("'sysctl': {'fs.mqueue.msg_max': '1'}"), "'linux.sysctl.fs.mqueue.msg_max': needs an ipc namespace" },
        { L("'namespaces': [{'type': 'uts'}], 'sysctl': {'kernel.hostname': 'x'}"), "'linux.sysctl.kernel.hostname': conflicts" },
        { L("'sysctl': {'kernel.domainname': 'x'}"), "'linux.sysctl.kernel.domainname': needs a uts namespace" },
        { L("'namespaces': [{'type': 'ipc'}, {'type': 'network'}], 'sysctl': {'vm.swappiness': '1'}"),
          "'linux.sysctl.vm.swappiness': is not in a separate kernel namespace" },
        { L("'namespaces': [{'type': 'network'}], 'sysctl': {'net/ipv4/ip_forward': '1'}"), "invalid sysctl name" },
        { L("'namespaces': [{'type': 'network'}], 'sysctl': {'net..ipv4': '1'}"), "invalid sysctl name" },
        { L("'namespaces': [{'type': 'network'}], 'sysctl': {'net.ipv4.': '1'}"), "invalid sysctl name" },
        { L("'namespaces': [{'type': 'network'}], 'sysctl': {'net.ipv4.ip_forward': 1}"),
          "'linux.sysctl.net.ipv4.ip_forward': expected a string, got 1" },
        { L("'personality': {'domain': 'LINUX64'}"), "'linux.personality.domain': unknown personality" },
        { L("'personality': {'domain': 'LINUX', 'flags': ['X']}"), "'linux.personality.flags'" },
        { L("'timeOffsets': {'monotonic': {'secs': 1}}"), "'linux.timeOffsets': time offsets need a time namespace" },
        { L("'namespaces': [{'type': 'time'}], 'timeOffsets': {'realtime': {'secs': 1}}"), "'linux.timeOffsets.realtime': unknown clock" },
        { L("'namespaces': [{'type': 'time'}], 'timeOffsets': {'boottime': {'nanosecs': 1000000000}}"),
          "'linux.timeOffsets.boottime.nanosecs'" },
        /* seccomp */
        { SC("'syscalls': []"), "'linux.seccomp.defaultAction': missing" },
        { SC("'defaultAction': 'SCMP_ACT_MAYBE'"), "'linux.seccomp.defaultAction': unknown seccomp action \"SCMP_ACT_MAYBE\"" },
        { SC("'defaultAction': 'SCMP_ACT_NOTIFY', 'listenerPath': '/x'"), "'linux.seccomp.defaultAction': SCMP_ACT_NOTIFY cannot" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'defaultErrnoRet': 1"), "'linux.seccomp.defaultErrnoRet': only SCMP_ACT_ERRNO" },
        { SC("'defaultAction': 'SCMP_ACT_ERRNO', 'defaultErrnoRet': 70000"), "'linux.seccomp.defaultErrnoRet': 70000 is too large" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'architectures': ['SCMP_ARCH_Z80']"), "'linux.seccomp.architectures[0]': unknown seccomp architecture" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'flags': ['SECCOMP_FILTER_FLAG_BOGUS']"), "'linux.seccomp.flags[0]': unknown seccomp flag" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read'], 'action': 'SCMP_ACT_NOTIFY'}]"),
          "'linux.seccomp.listenerPath': missing: SCMP_ACT_NOTIFY needs" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'listenerPath': '/run/x.sock'"), "'linux.seccomp.listenerPath': given, but no rule" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read']}]"), "'linux.seccomp.syscalls[0].action': missing" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': [], 'action': 'SCMP_ACT_LOG'}]"),
          "'linux.seccomp.syscalls[0].names': must list at least one" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'action': 'SCMP_ACT_LOG'}]"), "'linux.seccomp.syscalls[0].names'" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['x'], 'action': 'SCMP_ACT_TRAP', 'errnoRet': 1}]"),
          "'linux.seccomp.syscalls[0].errnoRet': only SCMP_ACT_ERRNO" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['x'], 'action': 'SCMP_ACT_ERRNO', 'args': [{'index': 6, 'value': 1, 'op': 'SCMP_CMP_EQ'}]}]"),
          "'linux.seccomp.syscalls[0].args[0].index': a system call has 6 arguments" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['x'], 'action': 'SCMP_ACT_ERRNO', 'args': [{'index': 0, 'value': 1, 'op': 'SCMP_CMP_ABOUT'}]}]"),
          "'linux.seccomp.syscalls[0].args[0].op': unknown seccomp operator \"SCMP_CMP_ABOUT\"" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['x'], 'action': 'SCMP_ACT_ERRNO', 'args': [{'index': 0, 'op': 'SCMP_CMP_EQ'}]}]"),
          "'linux.seccomp.syscalls[0].args[0].value': missing" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['x'], 'action': 'SCMP_ACT_ERRNO', 'args': [{'index': 0, 'value': -1, 'op': 'SCMP_CMP_EQ'}]}]"),
          "'linux.seccomp.syscalls[0].args[0].value': expected an unsigned 64-bit integer, got -1" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['x'], 'action': 'SCMP_ACT_ERRNO', 'args': [{'index': 0, 'value': 1, 'valueTwo': 18446744073709551616, 'op': 'SCMP_CMP_EQ'}]}]"),
          "'linux.seccomp.syscalls[0].args[0].valueTwo': expected an unsigned 64-bit integer, got 18446744073709551616" },
        { SC("'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': {}"), "'linux.seccomp.syscalls': expected an array" },
        { L("'seccomp': 'unconfined'"), "'linux.seccomp': expected an object, got a string" },
        { B "'linux': []}", "'linux': expected an object, got an array" },
};

static void test_cases(void)
{
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_free_ char *json = q(cases[i].json);
                struct moat_spec *s = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                int r = moat_spec_parse(json, strlen(json), "config.json", &s, &err);
                bool good = is_int(r, -EINVAL, "case %zu fails with EINVAL", i);
                good = contains(err ? err->msg : NULL, cases[i].want, "case %zu names \"%s\"", i, cases[i].want) && good;
                if (!good)
                        printf("#   input: %s\n", json);
                ok(s == NULL, "case %zu: no spec returned", i);
                moat_spec_free(s);
        }
}

static void test_truncations(void)
{
        /* Every prefix of a valid config is refused cleanly (and leaks nothing). */
        char *full = moat_spec_default_json(false);
        size_t len = strlen(full), bad = 0;
        for (size_t n = 0; n + 2 < len; n++) {
                struct moat_spec *s = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                int r = moat_spec_parse(full, n, "config.json", &s, &err);
                if (r != -EINVAL || !err || !strstr(err->msg, "config.json: line ")) {
                        if (bad++ < 3)
                                printf("#   prefix %zu: r=%d %s\n", n, r, err ? err->msg : "(none)");
                }
                moat_spec_free(s);
        }
        is_int(bad, 0, "all %zu truncations fail with a line/column message", len - 2);
        free(full);
}

static void test_too_large(void)
{
        size_t n = (4u << 20) + 1;
        char *big = malloc(n);
        memset(big, ' ', n);
        big[0] = '{';
        big[n - 1] = '}';
        struct moat_spec *s = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        is_int(moat_spec_parse(big, n, "config.json", &s, &err), -EINVAL, "config over 4 MiB refused");
        contains(err ? err->msg : NULL, "too large", "says too large");
        free(big);
}

static void test_cap_above_kernel(void)
{
        /* A capability libcap knows but this "kernel" does not: warned about, ignored. */
        moat_log_setup(-1, MOAT_LOG_TEXT, MOAT_LOG_ERROR); /* keep the warning out of TAP */
        spec_cap_set_last_for_tests(30);
        _cleanup_free_ char *json = q(P("'capabilities': {'bounding': ['CAP_KILL', 'CAP_BPF', 'CAP_AUDIT_READ']}"));
        struct moat_spec *s = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_spec_parse(json, strlen(json), "config.json", &s, &err);
        is_int(r, 0, "unknown-to-kernel capability accepted");
        if (s)
                ok(s->process->caps[MOAT_CAP_BOUNDING] == (1ull << 5), "and ignored (only CAP_KILL set)");
        moat_spec_free(s);
        spec_cap_set_last_for_tests(-1);
}

static void test_null_err(void)
{
        _cleanup_free_ char *json = q(L("'namespaces': [{'type': 'foo'}]"));
        struct moat_spec *s = NULL;
        is_int(moat_spec_parse(json, strlen(json), "config.json", &s, NULL), -EINVAL, "works without an error slot");
}

int main(void)
{
        test_cases();
        test_truncations();
        test_too_large();
        test_cap_above_kernel();
        test_null_err();
        return done_testing();
}
