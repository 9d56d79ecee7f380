/* SPDX-License-Identifier: Apache-2.0 */
/* One service's container: create (stdio on its log), attach, start (env/launch.h). */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "env/launch.h"
#include "net/attach.h"
#include "net/link.h"
#include "vm/vm.h"

/* The runtime's create hands our stdio to the container: give it the service's log and
 * /dev/null instead, so nobody's terminal or pipe is held open by a service. */
static int create_with_log(const struct moat_env_launch *l, struct moat_error **err)
{
        _cleanup_close_ int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int lfd = open(l->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (null < 0 || lfd < 0)
                return moat_error_set(err, errno, "cannot open '%s'", null < 0 ? "/dev/null" : l->log);
        int saved[3] = { -EBADF, -EBADF, -EBADF };
        for (int k = 0; k < 3; k++)
                saved[k] = fcntl(k, F_DUPFD_CLOEXEC, 3);
        fflush(stdout);
        fflush(stderr);
        dup2(null, 0);
        dup2(lfd, 1);
        dup2(lfd, 2);
        struct moat_create_opts co = { .id = l->id, .bundle = l->bundle };
        int r = l->vm ? moat_vm_create(l->rt, &co, err) : moat_container_create(l->rt, &co, err);
        for (int k = 0; k < 3; k++) {
                if (saved[k] >= 0) {
                        dup2(saved[k], k);
                        close(saved[k]);
                } else {
                        close(k);
                }
        }
        return r;
}

static int container_pid(const struct moat_env_launch *l, pid_t *pid, struct moat_error **err)
{
        json_t *st = NULL;
        int r = moat_container_state(l->rt, l->id, &st, err);
        if (r < 0)
                return r;
        json_int_t v = json_integer_value(json_object_get(st, "pid"));
        json_decref(st);
        if (v <= 0)
                return moat_error_input(err, -ESRCH, "container '%s' has no process", l->id);
        *pid = (pid_t)v;
        return 0;
}

int moat_env_unlaunch(const struct moat_runtime *rt, const char *id, struct moat_error **err)
{
        int r = moat_container_delete(rt, id, true, err);
        if (r == -ENOENT) {
                moat_error_free(*err);
                *err = NULL;
                return 0;
        }
        return r;
}

int moat_env_launch(const struct moat_env_launch *l, pid_t *pid, char host_if[IFNAMSIZ], struct moat_error **err)
{
        int r = create_with_log(l, err);
        if (r < 0)
                return r;
        r = container_pid(l, pid, err);
        if (r >= 0 && l->vm) {
                r = moat_net_veth_name(l->project, ntohl(l->addr.s_addr) & 0xff, host_if);
                if (r < 0)
                        moat_error_input(err, r, "container '%s': no port name", l->id);
        } else if (r >= 0) {
                char nspath[64];
                snprintf(nspath, sizeof nspath, "/proc/%d/ns/net", (int)*pid);
                _cleanup_close_ int nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
                if (nsfd < 0)
                        r = moat_error_set(err, errno, "cannot open '%s'", nspath);
                else
                        r = moat_net_attach(NULL, -1, l->project, nsfd, l->addr, l->net, 0, host_if, err);
        }
        if (r >= 0)
                r = moat_container_start(l->rt, l->id, err);
        if (r < 0) {
                struct moat_error *e = NULL;
                moat_env_unlaunch(l->rt, l->id, &e);
                moat_error_free(e);
        }
        return r;
}
