/* SPDX-License-Identifier: Apache-2.0 */
/* The guest's CONFIG (vm/proto.h) from a parsed config.json: the process (args, env, cwd, user,
 * groups, umask, terminal, rlimits, capabilities, no_new_privs, seccomp as compiled BPF), the
 * hostname, the root, and the mounts the guest makes itself (proc, sysfs, devpts, tmpfs,
 * mqueue; a bind mount becomes a share: a MOUNT of kind SHARE whose source is "moat<N>", N its
 * index here, the share's name in the one virtiofs filesystem the VM gets (vm/virtiofs.h)). */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "oci/spec.h"

struct moat_vm_share {
        char *tag;          /* "moat0" ...: its name in the shared filesystem */
        char *source;       /* host directory or file (made absolute by moat_vm_shares_check) */
        char *target;       /* in the guest */
        bool read_only;
        bool recursive;     /* rbind: the source's submounts too */
        bool is_file;       /* set by moat_vm_shares_check: a file, not a directory */
};

/* The guest's network (from the annotations below): a TAP on an environment's bridge.
 *   moat.network.environment  the environment (its bridge "moat-<tag>", net/link.h)
 *   moat.network.address      "A.B.C.D/P": the guest's eth0 (the TAP is named after its last byte)
 *   moat.network.gateway      "A.B.C.D": the default route */
#define MOAT_VM_ANN_NET_ENV "moat.network.environment"
#define MOAT_VM_ANN_NET_ADDR "moat.network.address"
#define MOAT_VM_ANN_NET_GW "moat.network.gateway"
struct moat_vm_net {
        bool present;
        char *env;
        struct in_addr addr, gateway;
        unsigned prefix;
};

struct moat_vm_config {
        uint8_t *tlv;       /* the CONFIG payload */
        size_t len;
        struct moat_vm_share *shares; /* bind mounts to export with virtiofs */
        size_t n_shares;
        struct moat_vm_net net;
};

/* The process part of CONFIG, and all of an EXEC (vm/proto.h): ARG ENV CWD USER GROUP UMASK
 * TERMINAL RLIMIT NO_NEW_PRIVS CAPS, then SECCOMP compiled from seccomp (NULL: none; a profile
 * with SCMP_ACT_NOTIFY is refused: no listener is reachable from the guest).  < 0 only for
 * seccomp; the writer's own errors stay in w->err. */
struct moat_vm_tlv_writer;
int moat_vm_process_tlv(struct moat_vm_tlv_writer *w, const struct moat_process *p,
                        const struct moat_seccomp *seccomp, struct moat_error **err);

/* Errors name the config.json field that cannot go into a VM. */
int moat_vm_config_build(const struct moat_spec *s, struct moat_vm_config *out, struct moat_error **err);
void moat_vm_config_free(struct moat_vm_config *c);
