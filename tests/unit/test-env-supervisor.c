/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor's record: moat_env_supervisor_stop() must only ever signal the daemon it
 * recorded (never a reused pid), and must not be blocked by a stale or broken record;
 * moat_env_supervisor_start() on an environment without a record fails and leaves nothing. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/util.h"
#include "env/supervisor.h"
#include "runtime/state.h"
#include "tap.h"

static void put(const char *dir, const char *text)
{
        char path[512];
        snprintf(path, sizeof path, "%s/" MOAT_ENV_SUPERVISOR_PID, dir);
        FILE *f = fopen(path, "we");
        if (f) {
                fputs(text, f);
                fclose(f);
        }
}

static bool has_pid_file(const char *dir)
{
        char path[512];
        snprintf(path, sizeof path, "%s/" MOAT_ENV_SUPERVISOR_PID, dir);
        return access(path, F_OK) == 0;
}

int main(void)
{
        char dir[] = "/tmp/moat-test-sup-XXXXXX";
        if (!mkdtemp(dir))
                return skip_all("mkdtemp failed");

        is_int(moat_env_supervisor_stop(dir), 0, "no record: nothing to stop");

        put(dir, "garbage\n");
        is_int(moat_env_supervisor_stop(dir), 0, "a broken record: nothing to stop");
        ok(!has_pid_file(dir), "... and it is removed");

        /* our own pid with our start time: alive, but not a supervisor (comm differs) */
        uint64_t start = 0;
        ok(moat_pid_start_time(getpid(), &start) == 0, "our start time");
        char text[64];
        snprintf(text, sizeof text, "%d %llu\n", (int)getpid(), (unsigned long long)start);
        put(dir, text);
        is_int(moat_env_supervisor_stop(dir), 0, "a live process that is not a supervisor: left alone");
        ok(!has_pid_file(dir), "... the stale record removed");

        /* our pid with another start time: a reused pid */
        snprintf(text, sizeof text, "%d %llu\n", (int)getpid(), (unsigned long long)start + 1);
        put(dir, text);
        is_int(moat_env_supervisor_stop(dir), 0, "a reused pid: left alone");

        struct moat_error *err = NULL;
        int r = moat_env_supervisor_start(dir, NULL, &err);
        ok(r < 0, "start without a record fails");
        contains(err && err->msg ? err->msg : "", "state.json", "... naming the record");
        moat_error_free(err);
        ok(!has_pid_file(dir), "... and records no daemon");

        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "# could not remove %s\n", dir);
        return done_testing();
}
