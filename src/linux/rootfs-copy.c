/* SPDX-License-Identifier: Apache-2.0 */
/* tmpcopyup: copy what was at a tmpfs destination into the new tmpfs. */
#include <errno.h>
#include <fcntl.h>

#include "core/cleanup.h"
#include "core/copytree.h"
#include "linux/rootfs-internal.h"

int moat_rootfs_tmpcopyup(int oldfd, int mfd, char *where, size_t where_size)
{
        _cleanup_close_ int dst = openat(mfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dst < 0)
                return -errno;
        return moat_copy_tree(oldfd, dst, where, where_size);
}
