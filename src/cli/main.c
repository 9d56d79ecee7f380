/* SPDX-License-Identifier: Apache-2.0 */
/* moat: the front end for people and CI.  Called as moat-runtime (a symlink),
 * or as `moat runtime VERB`, it is the runtime face too; build/moat-runtime
 * itself is a separate, leaner binary of the same code (fewer libraries to
 * load on every container operation). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/util.h"
#include "vm/vm.h"
#include "core/log.h"
#include "moat-config.h"

static void moat_usage(void)
{
        printf("moat %s: isolated environments and OCI containers\n\n"
               "Usage: moat [--store DIR] [--root DIR] [--debug] COMMAND ...\n\n"
               "  run [OPTIONS] IMAGE [--] [CMD...]   a one-shot container from an image\n"
               "  image pull|import|ls|inspect|tag|rm|prune\n"
               "  config | up [-d] | down [-v] | ps | logs [-f] | exec | restart | events [--follow]\n"
               "                                       environments from a Compose file (docs/environments.md)\n"
               "  runtime VERB ...                     the OCI runtime (also installed as moat-runtime)\n"
               "  version\n",
               MOAT_VERSION);
}

static int moat_main(int argc, char **argv)
{
        struct moat_globals g = { .store = getenv("MOAT_STORE"), .root = MOAT_DEFAULT_ROOT };
        if (!g.store || !*g.store)
                g.store = "/var/lib/moat";
        bool help = false, version = false;
        const struct opt globals[] = {
                { "store", 0, OPT_STR, &g.store, NULL },
                { "root", 0, OPT_STR, &g.root, NULL },
                { "debug", 0, OPT_BOOL, &g.debug, NULL },
                { "help", 'h', OPT_BOOL, &help, NULL },
                { "version", 'v', OPT_BOOL, &version, NULL },
                { 0 },
        };
        int idx = 1;
        char *msg = NULL;
        if (args_parse(argc, argv, &idx, globals, "moat", &msg) < 0) {
                fprintf(stderr, "moat: %s\n", msg ? msg : "bad arguments");
                free(msg);
                return 1;
        }
        moat_log_setup(-1, MOAT_LOG_TEXT, g.debug ? MOAT_LOG_DEBUG : MOAT_LOG_WARNING);
        if (version || (idx < argc && strcmp(argv[idx], "version") == 0)) {
                printf("moat %s\n", MOAT_VERSION);
                return 0;
        }
        if (help || idx >= argc) {
                moat_usage();
                return help ? 0 : 1;
        }
        const char *verb = argv[idx++];
        if (strcmp(verb, "runtime") == 0)
                return cli_runtime_face("moat-runtime", argc, argv, idx);
        if (strcmp(verb, "image") == 0)
                return cli_moat_image(&g, argc, argv, idx);
        if (strcmp(verb, "run") == 0)
                return cli_moat_run(&g, argc, argv, idx);
        if (strcmp(verb, "config") == 0)
                return cli_env_config(&g, argc, argv, idx);
        if (strcmp(verb, "up") == 0) return cli_env_up(&g, argc, argv, idx);
        if (strcmp(verb, "ps") == 0) return cli_env_ps(&g, argc, argv, idx);
        if (strcmp(verb, "down") == 0) return cli_env_down(&g, argc, argv, idx);
        if (strcmp(verb, "events") == 0) return cli_env_events(&g, argc, argv, idx);
        if (strcmp(verb, "logs") == 0) return cli_env_logs(&g, argc, argv, idx);
        if (strcmp(verb, "exec") == 0) return cli_env_exec(&g, argc, argv, idx);
        if (strcmp(verb, "restart") == 0) return cli_env_restart(&g, argc, argv, idx);
        if (strcmp(verb, "help") == 0) {
                moat_usage();
                return 0;
        }
        fprintf(stderr, "moat: unknown command '%s' (see moat --help)\n", verb);
        return 1;
}

int main(int argc, char **argv)
{
        /* Found before a verb re-executes us from a sealed copy (/proc/self/exe is then a memfd). */
        if (!getenv("MOAT_VMINIT")) {
                static const char *const names[] = { "moat-vminit", "guest/moat-vminit", NULL };
                char *vminit = moat_self_sibling(names);
                if (vminit)
                        setenv("MOAT_VMINIT", vminit, 0);
                free(vminit);
        }
        cli_vm_create = moat_vm_create;
        const char *name = strrchr(argv[0], '/');
        name = name ? name + 1 : argv[0];
        if (strstr(name, "runtime") || strcmp(name, "runc") == 0)
                return cli_runtime_face("moat-runtime", argc, argv, 1);
        return moat_main(argc, argv);
}
