/* SPDX-License-Identifier: Apache-2.0 */
/* The guest's CONFIG (vm/proto.h) from a parsed config.json: the process (args, env, cwd, user,
 * groups, umask, terminal, rlimits, capabilities, no_new_privs, seccomp as compiled BPF), the
 * hostname, the root, and the mounts the guest makes itself (proc, sysfs, devpts, tmpfs,
 * mqueue; a bind mount becomes a share: a MOUNT of kind SHARE whose source is "moat<N>", N its
 * index here, the share's name in the one virtiofs filesystem the VM gets (vm/virtiofs.h)). */
#pragma once

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

struct moat_vm_config {
        uint8_t *tlv;       /* the CONFIG payload */
        size_t len;
        struct moat_vm_share *shares; /* bind mounts to export with virtiofs */
        size_t n_shares;
};

/* Errors name the config.json field that cannot go into a VM. */
int moat_vm_config_build(const struct moat_spec *s, struct moat_vm_config *out, struct moat_error **err);
void moat_vm_config_free(struct moat_vm_config *c);
