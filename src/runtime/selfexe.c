/* SPDX-License-Identifier: Apache-2.0 */
/* CVE-2019-5736: a process inside a container could open /proc/PID/exe of a
 * runtime process that entered the container and, once the runtime exits,
 * reopen it for writing and replace the runtime binary on the host.  We run
 * every verb that enters a container from a sealed memfd copy instead: the
 * copy can be neither written nor resized, and it is not the file on disk. */
#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "runtime/container.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define ALL_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

static int is_sealed(int fd)
{
        int seals = fcntl(fd, F_GET_SEALS);
        return seals >= 0 && (seals & ALL_SEALS) == ALL_SEALS;
}

int moat_selfexe_ensure_sealed(char **argv, struct moat_error **err)
{
        _cleanup_close_ int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        if (self < 0)
                return moat_error_set(err, errno, "cannot open /proc/self/exe");
        if (is_sealed(self))
                return 0;
        struct stat st;
        if (fstat(self, &st) < 0)
                return moat_error_set(err, errno, "cannot stat /proc/self/exe");
        _cleanup_close_ int mfd = memfd_create("moat", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
        if (mfd < 0 && errno == EINVAL) /* kernels before 6.3 know no MFD_EXEC */
                mfd = memfd_create("moat", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (mfd < 0)
                return moat_error_set(err, errno, "cannot create a sealed copy of moat");
        off_t left = st.st_size;
        while (left > 0) {
                ssize_t n = sendfile(mfd, self, NULL, (size_t)left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return moat_error_set(err, n < 0 ? errno : EIO, "cannot copy moat into a sealed memfd");
                left -= n;
        }
        if (fcntl(mfd, F_ADD_SEALS, ALL_SEALS) < 0)
                return moat_error_set(err, errno, "cannot seal the copy of moat");
        fexecve(mfd, argv, environ);
        return moat_error_set(err, errno, "cannot re-execute moat from its sealed copy");
}
