/* SPDX-License-Identifier: Apache-2.0 */
/* Volumes of an environment's services: named, external and anonymous ones,
 * made on the host and handed to patch_config (env/up.c) as OCI bind mounts.
 *
 * Layout:
 *   <volroot>/<project>/<NAME>/_data     a named volume of project (removed by `moat down -v`)
 *   <volroot>/external/<NAME>/_data      an external: true volume (made by the user, never removed)
 *   <envdir>/volumes/<service>-<k>/_data an anonymous volume (k: the index of the mount in
 *                                        service->mounts; removed with the environment dir)
 *
 * A volume made now gets the image's content at its target first (as Docker does for a
 * new volume: files, directories, symlinks, hard links, device nodes, owners, modes,
 * times, xattrs of files and directories; the _data directory takes the target's owner
 * and mode).  The target is resolved inside the rootfs (openat2 RESOLVE_IN_ROOT), and
 * the copy never follows a symlink.  The copy goes to a temporary directory
 * (<parent>/.tmp-_data-XXXXXX) renamed to _data when complete, so a crash half-way
 * never leaves a half-copied volume that looks complete (stale .tmp-* are removed on
 * the next call).
 *
 * The project name "external" cannot have named volumes (its directory would be the
 * external volumes'). */
#pragma once

#include <jansson.h>

#include "core/error.h"
#include "env/envfile.h"

#define MOAT_VOLUMES_DIR "/var/lib/moat/volumes" /* default volume root */

/* Appends to mounts (a JSON array of OCI mount objects) one bind mount per volume
 * mount (MOAT_MOUNT_VOLUME) of service s:
 *   {"destination": target, "type": "bind", "source": PATH, "options": ["rbind", "rw"|"ro"]}
 * volroot NULL: MOAT_VOLUMES_DIR.  rootfs: the service's unpacked rootfs (content to
 * copy into new volumes; NULL: none).  Errors name the service, the volume and the path. */
int moat_env_volumes_mounts(const struct moat_envfile *f, const struct moat_env_service *s, const char *project,
                            const char *volroot, const char *envdir, const char *rootfs, json_t *mounts,
                            struct moat_error **err);

/* `moat down -v`: removes <volroot>/<project> (all its named volumes; never external
 * ones).  Missing is not an error.  volroot NULL: MOAT_VOLUMES_DIR. */
int moat_env_volumes_remove(const char *volroot, const char *project, struct moat_error **err);

/* Whether name can be a volume (or project) directory name: not empty, no '/', does not
 * start with '.'. */
bool moat_env_volume_name_ok(const char *name);
