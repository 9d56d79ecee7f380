/* SPDX-License-Identifier: Apache-2.0 */
/* Size caps on the services' logs (env/sup.h).  The services write their log with O_APPEND
 * through fds the supervisor does not hold, so the log cannot be renamed away under them:
 * once it passes max bytes its content is copied to path.1 (older copies shifted to .2 ...,
 * the oldest dropped) and the file is truncated; writers carry on at its new end. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "env/sup.h"

static int copy_to(int in, const char *dst, off_t len)
{
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp", dst) < 0)
                return -ENOMEM;
        _cleanup_close_ int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out < 0)
                return -errno;
        off_t in_off = 0;
        while (in_off < len) {
                ssize_t n = copy_file_range(in, &in_off, out, NULL, (size_t)(len - in_off), 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int e = n < 0 ? -errno : -EIO;
                        unlink(tmp);
                        return e;
                }
        }
        if (rename(tmp, dst) < 0) {
                int e = -errno;
                unlink(tmp);
                return e;
        }
        return 0;
}

int sup_log_cap(const char *path, int64_t max, int files)
{
        if (max <= 0)
                return 0;
        _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size <= max)
                return 0;
        if (files > 1) {
                for (int k = files - 1; k > 1; k--) {
                        _cleanup_free_ char *from = NULL, *to = NULL;
                        if (asprintf(&from, "%s.%d", path, k - 1) < 0 || asprintf(&to, "%s.%d", path, k) < 0)
                                return -ENOMEM;
                        if (rename(from, to) < 0 && errno != ENOENT)
                                return -errno;
                }
                _cleanup_free_ char *one = NULL;
                if (asprintf(&one, "%s.1", path) < 0)
                        return -ENOMEM;
                int r = copy_to(fd, one, st.st_size);
                if (r < 0)
                        return r;
        }
        return ftruncate(fd, 0) < 0 ? -errno : 1;
}
