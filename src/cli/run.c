/* SPDX-License-Identifier: Apache-2.0 */
/* moat run [OPTIONS] IMAGE [--] [CMD...]: a one-shot container from an image.
 *
 * The container's directory (bundle: config.json, the rootfs mount, the overlay's
 * upper/ and work/) is <store>/containers/<id>/: what the command writes lands on
 * the store's disk beside the layers, not in /run's tmpfs (memory), and a kept
 * (--rm=false) container's files survive for inspection.  The runtime state stays
 * under --root as for every container.
 *
 * Exit status: the command's (0..255, 128+signal); 125 when moat itself failed
 * before the command ran (as docker run). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/cleanup.h"
#include "core/util.h"
#include "image/bundle.h"
#include "image/image.h"
#include "vm/vm.h"

#define EXIT_MOAT 125

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
        interrupted = sig;
}

static void usage(void)
{
        printf("Usage: moat run [OPTIONS] IMAGE [--] [CMD...]\n\n"
               "Runs CMD (default: the image's entrypoint and cmd) in a new container made from IMAGE\n"
               "and exits with its status.  The container is removed when it ends (--rm).\n\n"
               "  -e, --env KEY=VALUE|KEY     set a variable (KEY alone: our value, when we have one)\n"
               "  -v, --volume SRC:DST[:ro]   bind mount the host's SRC (must exist) on DST\n"
               "  -w, --workdir DIR           working directory (default: the image's, or /)\n"
               "  -u, --user USER[:GROUP]     name or uid (default: the image's user, or root)\n"
               "  -m, --memory SIZE           memory limit (100m, 1g)\n"
               "      --cpus N                CPU limit (1.5: one and a half CPUs)\n"
               "      --pids-limit N          at most N processes\n"
               "      --network MODE          none: only lo; host: the host's network;\n"
               "                              default: for now the same as none (a private network\n"
               "                              with lo up; a bridge to other containers comes with\n"
               "                              environments)\n"
               "      --hostname NAME         (default: a short random id)\n"
               "  -t, --tty                   a terminal (default: when stdin and stdout are one)\n"
               "  -i, --interactive           accepted for docker compatibility: stdin is always passed\n"
               "      --rm[=false]            remove the container when it ends (default true)\n"
               "      --keep                  keep it (same as --rm=false)\n"
               "      --name NAME             the container id (default: moat-run-<random>)\n"
               "      --insecure              pull over plain HTTP (loopback registries)\n"
               "      --isolation container|vm  vm: in a VM of its own, with its own kernel\n"
               "                              (QEMU; docs/vm.md)\n\n"
               "A missing image is pulled when its name has a registry host (localhost:5000/x);\n"
               "otherwise use moat image pull or moat image import first.  --detach is not supported:\n"
               "moat run is for one-shot commands (CI jobs); use moat-runtime for long-lived containers.\n");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "moat run: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
        return EXIT_MOAT;
}

static int fail_err(struct moat_error *err, const char *fallback)
{
        fprintf(stderr, "moat run: %s\n", err && err->msg ? err->msg : fallback);
        moat_error_free(err);
        return EXIT_MOAT;
}

/* docker/distribution: the first component names a registry host when it has a '.' or a ':'
 * or is "localhost". */
static bool names_registry(const char *ref)
{
        const char *slash = strchr(ref, '/');
        if (!slash)
                return false;
        size_t n = (size_t)(slash - ref);
        return memchr(ref, '.', n) || memchr(ref, ':', n) || (n == 9 && strncmp(ref, "localhost", 9) == 0);
}

static int find_image(struct moat_store *s, const char *name, bool insecure, struct moat_image **img)
{
        struct moat_error *err = NULL;
        int r = moat_store_lookup(s, name, img, &err);
        if (r >= 0)
                return 0;
        if (r != -ENOENT)
                return fail_err(err, "cannot look up the image");
        moat_error_free(err);
        err = NULL;
        if (!names_registry(name))
                return fail("image '%s' not found (moat image pull/import it first)", name);
        struct moat_pull_opts po = { .insecure = insecure, .progress_fd = STDERR_FILENO, .parallel = 4 };
        r = moat_image_pull(s, name, &po, img, &err);
        if (r < 0)
                return fail_err(err, "cannot pull the image");
        return 0;
}

static int make_id(const char *name, char **id)
{
        if (name) {
                if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                        return -EINVAL;
                *id = strdup(name);
                return *id ? 0 : -ENOMEM;
        }
        unsigned char b[6];
        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
                return -errno;
        return asprintf(id, "moat-run-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]) < 0 ? -ENOMEM
                                                                                                          : 0;
}

static void cleanup_bundle(const char *dir)
{
        struct moat_error *err = NULL;
        if (moat_bundle_remove(dir, &err) < 0)
                fprintf(stderr, "moat run: %s\n", err && err->msg ? err->msg : "cannot remove the container directory");
        moat_error_free(err);
}

/* --isolation vm: the same bundle in a VM of its own (vm/vm.h); the root disk is cached per image. */
static int run_vm(const struct moat_image *img, const char *id, const char *dir)
{
        struct moat_error *err = NULL;
        struct moat_spec *spec = NULL;
        if (moat_spec_load_bundle(dir, &spec, &err) < 0)
                return fail_err(err, "cannot read the bundle");
        _cleanup_free_ char *init = moat_vm_find_init(), *key = NULL;
        const char *digest = img->config_digest ? strchr(img->config_digest, ':') : NULL;
        if (digest && asprintf(&key, "img-%s", digest + 1) < 0)
                key = NULL;
        struct moat_vm_run_opts vo = { .id = id, .spec = spec, .state_dir = dir, .disk_key = key, .init_path = init,
                                       .in = 0, .out = 1, .err = 2 };
        int status = 0;
        int r = moat_vm_run(&vo, &status, &err);
        moat_spec_free(spec);
        if (r < 0)
                return fail_err(err, "cannot run the VM");
        return status;
}

int cli_moat_run(struct moat_globals *g, int argc, char **argv, int idx)
{
        {
                /* Found before we re-execute from a sealed copy (/proc/self/exe is then the memfd). */
                _cleanup_free_ char *vminit = moat_vm_find_init();
                if (vminit)
                        setenv("MOAT_VMINIT", vminit, 0);
        }
        {
                /* A process goes into a container: run from a sealed copy of us (CVE-2019-5736). */
                struct moat_error *err = NULL;
                if (moat_selfexe_ensure_sealed(argv, &err) < 0)
                        return fail_err(err, "cannot seal the moat binary");
        }
        _cleanup_strv_ char **env = NULL, **volumes = NULL;
        const char *workdir = NULL, *user = NULL, *memory = NULL, *cpus = NULL, *pids = NULL, *network = NULL,
                   *hostname = NULL, *name = NULL, *net_alias = NULL, *isolation = NULL;
        bool rm = true, keep = false, tty = false, tty_seen = false, interactive = false, detach = false,
             insecure = false, help = false;
        const struct opt opts[] = {
                { "env", 'e', OPT_MULTI, &env, NULL },
                { "volume", 'v', OPT_MULTI, &volumes, NULL },
                { "workdir", 'w', OPT_STR, &workdir, NULL },
                { "user", 'u', OPT_STR, &user, NULL },
                { "memory", 'm', OPT_STR, &memory, NULL },
                { "cpus", 0, OPT_STR, &cpus, NULL },
                { "pids-limit", 0, OPT_STR, &pids, NULL },
                { "network", 0, OPT_STR, &network, NULL },
                { "net", 0, OPT_STR, &net_alias, NULL },
                { "hostname", 0, OPT_STR, &hostname, NULL },
                { "tty", 't', OPT_BOOL, &tty, &tty_seen },
                { "interactive", 'i', OPT_BOOL, &interactive, NULL },
                { "rm", 0, OPT_BOOL, &rm, NULL },
                { "keep", 0, OPT_BOOL, &keep, NULL },
                { "name", 0, OPT_STR, &name, NULL },
                { "detach", 'd', OPT_BOOL, &detach, NULL },
                { "insecure", 0, OPT_BOOL, &insecure, NULL },
                { "isolation", 0, OPT_STR, &isolation, NULL },
                { "help", 'h', OPT_BOOL, &help, NULL },
                { 0 },
        };
        /* docker's "-it" */
        for (int i = idx; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0; i++)
                if (strcmp(argv[i], "-it") == 0 || strcmp(argv[i], "-ti") == 0)
                        argv[i] = "--tty";
        char *msg = NULL;
        if (args_parse(argc, argv, &idx, opts, "moat run", &msg) < 0) {
                fprintf(stderr, "%s\n", msg ? msg : "moat run: bad arguments");
                free(msg);
                return EXIT_MOAT;
        }
        if (help) {
                usage();
                return 0;
        }
        if (detach)
                return fail("--detach is not supported: moat run is for one-shot commands");
        bool vm = false;
        if (isolation && !(vm = STREQ(isolation, "vm")) && !STREQ(isolation, "container"))
                return fail("--isolation '%s': container or vm", isolation);
        if (idx >= argc)
                return fail("an image is required (moat run --help)");
        const char *image = argv[idx++];
        if (idx < argc && strcmp(argv[idx], "--") == 0)
                idx++;
        if (keep)
                rm = false;
        if (!network)
                network = net_alias;

        struct moat_run_opts ro = {
                .cmd = idx < argc ? argv + idx : NULL,
                .env = env,
                .volumes = volumes,
                .workdir = workdir,
                .user = user,
                .memory = memory,
                .cpus = cpus,
                .pids_limit = pids,
                .network = network,
                .hostname = hostname,
                .terminal = tty_seen ? tty : -1,
        };
        /* Flag errors before anything is pulled or mounted. */
        {
                struct moat_error *err = NULL;
                int64_t i64;
                uint64_t u64;
                enum moat_run_network net;
                if ((memory && moat_run_parse_memory(memory, &i64, &err) < 0) ||
                    (cpus && moat_run_parse_cpus(cpus, &i64, &u64, &err) < 0) ||
                    (pids && moat_run_parse_pids(pids, &i64, &err) < 0) ||
                    moat_run_parse_network(network, &net, &err) < 0)
                        return fail_err(err, "bad flag");
                for (size_t i = 0; volumes && volumes[i]; i++) {
                        struct moat_volume v;
                        if (moat_run_parse_volume(volumes[i], &v, &err) < 0)
                                return fail_err(err, "bad --volume");
                        moat_volume_clear(&v);
                }
                if (workdir && workdir[0] != '/')
                        return fail("--workdir '%s' must be an absolute path", workdir);
        }
        _cleanup_free_ char *id = NULL;
        int r = make_id(name, &id);
        if (r < 0)
                return fail("--name '%s' is not a valid container name", name);

        struct moat_store *store = NULL;
        struct moat_error *err = NULL;
        if (moat_store_open(g->store, &store, &err) < 0)
                return fail_err(err, "cannot open the image store");
        struct moat_image *img = NULL;
        int ret = find_image(store, image, insecure, &img);
        if (ret != 0) {
                moat_store_close(store);
                return ret;
        }

        /* From here on an interruption cleans up; while the container runs the runtime
         * forwards these signals to it, and we clean up when it is gone. */
        struct sigaction sa = { .sa_handler = on_signal }, old[3];
        const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
                sigaction(sigs[i], &sa, &old[i]);

        _cleanup_free_ char *cdir = NULL, *dir = NULL;
        ret = EXIT_MOAT;
        if (asprintf(&cdir, "%s/containers", g->store) < 0 || asprintf(&dir, "%s/%s", cdir, id) < 0) {
                fail("out of memory");
                goto out;
        }
        if (mkdir(cdir, 0700) < 0 && errno != EEXIST) {
                fprintf(stderr, "moat run: cannot make '%s': %s\n", cdir, strerror(errno));
                goto out;
        }
        if (mkdir(dir, 0700) < 0) {
                if (errno == EEXIST)
                        fprintf(stderr, "moat run: container '%s' exists ('%s')\n", id, dir);
                else
                        fprintf(stderr, "moat run: cannot make '%s': %s\n", dir, strerror(errno));
                goto out;
        }
        r = moat_bundle_from_image(store, img, &ro, dir, &err);
        if (r < 0) {
                fail_err(TAKE_PTR(err), "cannot make the container's bundle");
                cleanup_bundle(dir);
                goto out;
        }
        if (interrupted) {
                cleanup_bundle(dir);
                ret = 128 + interrupted;
                goto out;
        }
        if (vm) {
                ret = run_vm(img, id, dir);
                if (rm)
                        cleanup_bundle(dir);
                goto out;
        }
        struct moat_runtime rt = { .root = g->root };
        struct moat_create_opts co = { .id = id, .bundle = dir, .keep = !rm };
        int status = 0;
        r = moat_container_run(&rt, &co, &status, &err);
        if (r < 0) {
                fail_err(TAKE_PTR(err), "cannot run the container");
                if (rm) {
                        /* whatever the runtime left (it normally cleans up after a failed create) */
                        struct moat_error *derr = NULL;
                        moat_container_delete(&rt, id, true, &derr);
                        moat_error_free(derr);
                }
        } else {
                ret = status;
        }
        if (rm)
                cleanup_bundle(dir);
        else
                fprintf(stderr, "moat run: kept container '%s' (bundle '%s'; remove with moat runtime --root %s "
                                "delete %s, then umount '%s/rootfs' and rm -r '%s')\n",
                        id, dir, g->root, id, dir, dir);
out:
        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
                sigaction(sigs[i], &old[i], NULL);
        moat_image_free(img);
        moat_store_close(store);
        return ret;
}
