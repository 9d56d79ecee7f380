/* SPDX-License-Identifier: Apache-2.0 */
/* linux.sysctl and hostname/domainname, applied inside the container. */
#pragma once

#include <stdbool.h>

#include "core/error.h"
#include "oci/spec.h"

/* true when key is "a.b.c" with non-empty parts, no '/', no "..". */
bool moat_sysctl_key_valid(const char *key);
/* Writes one value to /proc/sys/<key, dots as slashes>: the file is opened
 * with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) under an fd of /proc/sys
 * that is checked to be procfs, and must itself be on procfs.
 * proc_sys_fd < 0: opens "/proc/sys" of the current mount namespace. */
int moat_sysctl_write(int proc_sys_fd, const char *key, const char *value, struct moat_error **err);
/* Every linux.sysctl entry, in order; in the container after /proc is mounted. */
int moat_sysctl_apply(const struct moat_spec *s, struct moat_error **err);
/* sethostname / setdomainname from s->hostname / s->domainname (when set). */
int moat_set_hostname(const struct moat_spec *s, struct moat_error **err);
