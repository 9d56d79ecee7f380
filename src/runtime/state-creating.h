/* SPDX-License-Identifier: Apache-2.0 */
/* A container being created: create marks its state directory with a
 * "creating" file and writes an early state.json (cgroup, then the child's
 * pid) so that a create killed half-way can be cleaned up by `delete --force`.
 * The mark goes once the container is "created".  (Implemented in state.c;
 * candidates for state.h.) */
#pragma once

#include <stdbool.h>

#define MOAT_CREATING_MARK "creating"

/* Sets (on) or clears the mark; 0 or -errno. */
int moat_state_mark_creating(int dirfd, bool on);
bool moat_state_is_creating(int dirfd);
