/* SPDX-License-Identifier: Apache-2.0 */
/* The moat-runtime face: global flags, logging, then one of runc's verbs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/log.h"
#include "moat-config.h"

int cli_fail(struct cli_globals *g, struct moat_error *err, const char *msg)
{
        const char *text = err && err->msg ? err->msg : msg ? msg : "failed";
        /* --log gets it in the chosen format (containerd reads the last error from it);
         * stderr always gets the plain line. */
        if (g->log) {
                moat_log(MOAT_LOG_ERROR, "%s", text);
        }
        fprintf(stderr, "%s: %s\n", g->prog, text);
        return 1;
}

static int setup_logging(struct cli_globals *g)
{
        enum moat_log_format fmt = MOAT_LOG_TEXT;
        if (g->log_format) {
                if (strcmp(g->log_format, "json") == 0)
                        fmt = MOAT_LOG_JSON;
                else if (strcmp(g->log_format, "text") != 0) {
                        fprintf(stderr, "%s: --log-format '%s': expected text or json\n", g->prog, g->log_format);
                        return -EINVAL;
                }
        }
        int fd = -1;
        if (g->log && *g->log) {
                fd = open(g->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
                if (fd < 0) {
                        fprintf(stderr, "%s: cannot open log file '%s': %s\n", g->prog, g->log, strerror(errno));
                        return -errno;
                }
        }
        moat_log_setup(fd, fmt, g->debug ? MOAT_LOG_DEBUG : MOAT_LOG_WARNING);
        return 0;
}

int cli_runtime_face(const char *prog, int argc, char **argv, int idx)
{
        struct cli_globals g = { .root = MOAT_DEFAULT_ROOT, .prog = prog };
        const struct opt globals[] = {
                { "root", 0, OPT_STR, &g.root, NULL },
                { "log", 0, OPT_STR, &g.log, NULL },
                { "log-format", 0, OPT_STR, &g.log_format, NULL },
                { "debug", 0, OPT_BOOL, &g.debug, NULL },
                { "systemd-cgroup", 0, OPT_BOOL, &g.systemd_cgroup, NULL },
                { "rootless", 0, OPT_STR, &g.rootless, NULL },
                { "criu", 0, OPT_STR, &g.criu, NULL },
                { "help", 'h', OPT_BOOL, &g.help, NULL },
                { "version", 'v', OPT_BOOL, &g.version, NULL },
                { 0 },
        };
        /* --rootless takes a value only in the --rootless=x form */
        for (int i = idx; i < argc && argv[i][0] == '-'; i++)
                if (strcmp(argv[i], "--rootless") == 0)
                        argv[i] = "--rootless=auto";
        char *msg = NULL;
        if (args_parse(argc, argv, &idx, globals, prog, &msg) < 0) {
                fprintf(stderr, "%s\n", msg ? msg : "bad arguments");
                free(msg);
                return 1;
        }
        if (setup_logging(&g) < 0)
                return 1;
        if (g.version) {
                printf("%s version %s\nspec: %s\n", prog, MOAT_VERSION, MOAT_OCI_VERSION);
                return 0;
        }
        if (g.help || idx >= argc) {
                cli_runtime_usage(prog);
                return g.help ? 0 : 1;
        }
        if (g.systemd_cgroup)
                return cli_fail(&g, NULL,
                                "--systemd-cgroup is not supported: moat manages cgroups through cgroupfs; "
                                "configure your engine with cgroup_manager = \"cgroupfs\" (podman: "
                                "--cgroup-manager=cgroupfs; containerd: SystemdCgroup = false)");
        return cli_runtime_verb(&g, argc, argv, idx);
}

