/* SPDX-License-Identifier: Apache-2.0 */
/* Launching one service of an environment from its prepared bundle: create the container
 * with its stdio on the service's log, plug its netns into the environment's bridge, start
 * it.  Used by the supervisor for the first start and for every restart. */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <sys/types.h>

#include "core/error.h"
#include "net/ipam.h"
#include "runtime/container.h"

struct moat_env_launch {
        const struct moat_runtime *rt;
        const char *project;
        const char *id;
        const char *bundle;
        const char *log;              /* stdout and stderr go here (appended) */
        struct in_addr addr;
        const struct moat_ipam_net *net;
        bool vm;                      /* isolation: vm: a VM whose TAP the runtime plugs in itself */
};

/* Creates, attaches and starts.  *pid: the container's init (a VM's monitor); host_if: the
 * veth's host end (a VM's TAP, vm/config.h, made by the VM's monitor at create).
 * On failure the container is deleted again (nothing of this launch stays). */
int moat_env_launch(const struct moat_env_launch *l, pid_t *pid, char host_if[IFNAMSIZ], struct moat_error **err);

/* Kills (SIGKILL, all processes) and deletes the container id, if there is one. */
int moat_env_unlaunch(const struct moat_runtime *rt, const char *id, struct moat_error **err);
