/* SPDX-License-Identifier: Apache-2.0 */
/* The record of an environment: <dir>/state.json, rewritten atomically and fsynced
 * before each resource it lists is created (env/up.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "env/up.h"

char *moat_env_dir(const struct moat_env_opts *o, const char *project)
{
        char *d = NULL;
        if (asprintf(&d, "%s/env/%s", o->root, project) < 0)
                return NULL;
        return d;
}

int moat_env_state_load(const char *dir, json_t **out, struct moat_error **err)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len = 0;
        if (asprintf(&path, "%s/state.json", dir) < 0)
                return -ENOMEM;
        int r = read_file_at(AT_FDCWD, path, &text, &len);
        if (r == -ENOENT)
                return r;
        if (r < 0)
                return moat_error_set(err, -r, "cannot read '%s'", path);
        json_error_t je;
        json_t *j = json_loadb(text, len, 0, &je);
        if (!j || !json_is_object(j)) {
                json_decref(j);
                return moat_error_input(err, -EBADMSG, "'%s' is not a valid environment record: %s", path,
                                        j ? "not an object" : je.text);
        }
        *out = j;
        return 0;
}

int moat_env_state_save(const char *dir, json_t *state, struct moat_error **err)
{
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        _cleanup_free_ char *text = json_dumps(state, JSON_INDENT(2));
        if (!text || asprintf(&path, "%s/state.json", dir) < 0 || asprintf(&tmp, "%s/.state.json.tmp", dir) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot write '%s'", tmp);
        size_t len = strlen(text);
        if (write_all(fd, text, len) != (ssize_t)len || write_all(fd, "\n", 1) != 1 || fsync(fd) < 0) {
                int e = errno ? errno : EIO;
                unlink(tmp);
                return moat_error_set(err, e, "cannot write '%s'", tmp);
        }
        if (rename(tmp, path) < 0) {
                int e = errno;
                unlink(tmp);
                return moat_error_set(err, e, "cannot write '%s'", path);
        }
        return 0;
}

json_t *moat_env_state_service(json_t *state, const char *name)
{
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(state, "services"), i, s) {
                const char *n = json_string_value(json_object_get(s, "name"));
                if (n && strcmp(n, name) == 0)
                        return s;
        }
        return NULL;
}
