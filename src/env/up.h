/* SPDX-License-Identifier: Apache-2.0 */
/* Bringing an environment up and down (container tier, no supervisor yet).
 *
 * Everything an environment creates is recorded in <root>/env/<project>/state.json BEFORE it
 * is created (the IPAM state dir, the bridge, the nft table, each container's id, bundle and
 * address), so a crash of `up` at any point leaves a record `down` can use.  Layout:
 *   <root>/env/<project>/state.json   the record (rewritten atomically: temp file + rename)
 *   <root>/env/<project>/hosts        /etc/hosts of every container (bind-mounted read-only)
 *   <root>/env/<project>/runtime/     the runtime root of the environment's containers
 *   <root>/env/<project>/bundles/S/   service S's bundle (config.json + the rootfs mount)
 *   <root>/env/<project>/logs/S.log   service S's stdout and stderr
 * Container ids are "<project>-<service>".  Each container runs moat-init as PID 1
 * (bind-mounted read-only at /.moat/init), so a service ignoring SIGTERM still stops.
 *   up.c     moat_env_up          state.c  the record          down.c  moat_env_down, moat_env_ps */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "core/error.h"
#include "env/plan.h"

#define MOAT_ENV_INIT_PATH "/.moat/init"
#define MOAT_ENV_STOP_GRACE_MS 2000 /* moat-init's --grace: SIGKILL this long after SIGTERM */
/* The NFLOG group an environment's "moat-deny" packets go to: one per project
 * (a group has one listener; two supervisors cannot share one).  2000-65000. */
int moat_env_nflog_group(const char *project);

struct moat_env_opts {
        const char *root;      /* the runtime root (/run/moat); the environment lives in <root>/env/<project> */
        const char *store;     /* the image store */
        const char *ipam_dir;  /* IPAM state (persistent; NULL: /var/lib/moat/ipam) */
        const char *init_path; /* moat-init on the host (required by up) */
        const char *volumes;   /* named volumes' root (NULL: /var/lib/moat/volumes) */
        bool wait_healthy;     /* up returns once every health check has passed */
        void (*progress)(const char *line, void *userdata); /* "web started" ... */
        void *userdata;
};

/* Brings p up, detached: IPAM addresses, the bridge, the policy (before any service runs),
 * then each service in start order (bundle, create, attach to the bridge, start).  An
 * environment already up is an error (-EEXIST).  On failure what was made stays recorded:
 * the caller says to run down (or calls moat_env_down). */
int moat_env_up(const struct moat_plan *p, const struct moat_env_opts *o, struct moat_error **err);

/* Removes everything the record of project lists, and anything of the environment found
 * without it (containers under its runtime root, bundles, moat-<tag> links, the nft tables).
 * Idempotent: an environment that is not there is not an error (*found = false).
 * volumes: also the environment's named volumes (<volumes>/<project>). */
int moat_env_down(const struct moat_env_opts *o, const char *project, bool volumes, bool *found,
                  struct moat_error **err);

/* [{"name","id","state","address","pid","ports":[...]}...] in start order; -ENOENT when the
 * environment is not up. */
int moat_env_ps(const struct moat_env_opts *o, const char *project, json_t **out, struct moat_error **err);

/* <root>/env/<project> (malloc'ed) */
char *moat_env_dir(const struct moat_env_opts *o, const char *project);

/* ---------------------------------------------------------------- state.c */
/* Reads dir/state.json (-ENOENT when absent). */
int moat_env_state_load(const char *dir, json_t **out, struct moat_error **err);
/* Writes dir/state.json atomically, fsynced: the record must be on disk before the resource. */
int moat_env_state_save(const char *dir, json_t *state, struct moat_error **err);
/* The service entry of name in state (NULL if none). */
json_t *moat_env_state_service(json_t *state, const char *name);
