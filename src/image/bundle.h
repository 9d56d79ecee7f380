/* SPDX-License-Identifier: Apache-2.0 */
/* An OCI bundle (config.json + rootfs) for a one-shot container made from an
 * image: what `moat run IMAGE [CMD...]` runs.  Docker's semantics for the
 * image's entrypoint, cmd, env, user and workdir.
 *   bundle_config.c  config.json generation and the flag parsers (pure: no store, no mounts)
 *   bundle_user.c    user[:group] resolved from the rootfs' /etc/passwd and /etc/group, safely
 *   bundle.c         the store side: image config blob, rootfs mount, config.json on disk */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"
#include "image/image.h"

enum moat_run_network {
        MOAT_RUN_NET_DEFAULT = 0, /* for now as none: a private netns with lo up (a bridge comes later) */
        MOAT_RUN_NET_NONE,        /* a private netns with only lo */
        MOAT_RUN_NET_HOST,        /* the host's netns (no network namespace entry) */
};

struct moat_run_opts {
        char *const *cmd;       /* after the image name; NULL or empty: the image's Cmd */
        char *const *env;       /* --env KEY=VAL, or KEY (copied from our environment when set there) */
        char *const *volumes;   /* --volume SRC:DST[:ro|:rw] */
        const char *workdir;    /* --workdir (absolute) */
        const char *user;       /* --user name|uid[:group|gid] */
        const char *memory;     /* --memory "100m", "1g" */
        const char *cpus;       /* --cpus "1.5" */
        const char *pids_limit; /* --pids-limit N (0 or -1: unlimited) */
        const char *network;    /* "none" | "host" | "default"; NULL: default */
        const char *hostname;   /* NULL: a random short id */
        int terminal;           /* -1: isatty(stdin) && isatty(stdout); 0: no; 1: yes */
};

/* --memory: a size with an optional k/m/g/t suffix (b, kb, kib ... accepted), at least 6 MiB (as Docker). */
int moat_run_parse_memory(const char *s, int64_t *bytes, struct moat_error **err);
/* --cpus: a decimal number of CPUs, 0.01 and up; period 100000 us, quota = cpus * period. */
int moat_run_parse_cpus(const char *s, int64_t *quota, uint64_t *period, struct moat_error **err);
/* --pids-limit: a positive number; 0 or -1: no limit (*limit = 0). */
int moat_run_parse_pids(const char *s, int64_t *limit, struct moat_error **err);
int moat_run_parse_network(const char *s, enum moat_run_network *out, struct moat_error **err);

struct moat_volume {
        char *source; /* absolute, resolved on the host; must exist */
        char *destination; /* absolute, not "/" */
        bool readonly;
};
/* --volume SRC:DST[:ro|:rw]. */
int moat_run_parse_volume(const char *s, struct moat_volume *out, struct moat_error **err);
void moat_volume_clear(struct moat_volume *v);

struct moat_run_user {
        uid_t uid;
        gid_t gid;
        gid_t *additional_gids; /* groups of /etc/group that list the user, without gid */
        size_t n_additional_gids;
        char *home; /* from /etc/passwd; NULL when there is no entry */
};
/* Resolves "name", "uid", "name:group", "uid:gid" (and mixes) against rootfs/etc/passwd and
 * rootfs/etc/group, opened inside rootfd (a symlink never leads out of it; only regular
 * files are read).  NULL or "" is root.  A name that is not there: -ENOENT naming it. */
int moat_run_resolve_user(int rootfd, const char *user, struct moat_run_user *out, struct moat_error **err);
void moat_run_user_clear(struct moat_run_user *u);

/* The config.json for image config ic (may be NULL: no entrypoint/cmd/env) with its root
 * filesystem already at rootfs (an absolute directory; read for /etc/passwd).  image_name
 * names the image in messages.  The root path in the document is "rootfs" (bundle-relative). */
int moat_bundle_config(const struct moat_image_config *ic, const char *image_name, const char *rootfs,
                       const struct moat_run_opts *o, json_t **out, struct moat_error **err);

/* Makes dir (if missing), mounts the image's root filesystem at dir/rootfs
 * (moat_image_rootfs_mount) and writes dir/config.json.  On failure nothing stays mounted. */
int moat_bundle_from_image(struct moat_store *s, const struct moat_image *img, const struct moat_run_opts *o,
                           const char *dir, struct moat_error **err);
/* Unmounts dir/rootfs (moat_image_rootfs_umount) and removes dir; never crosses a mount left behind. */
int moat_bundle_remove(const char *dir, struct moat_error **err);
