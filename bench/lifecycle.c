/* SPDX-License-Identifier: Apache-2.0 */
/* lifecycle-bench: the full lifecycle of a container (create, start, wait for
 * its init, delete) N times for several OCI runtimes, alternating between them
 * every iteration so drift hits all alike. Prints per-runtime median and p90 of
 * the whole lifecycle and of each phase, peak RSS (max ru_maxrss over every
 * invocation, from wait4) and the ratios of "moat" to the others.
 *
 *   lifecycle-bench -n N -b BUNDLE -s STATEDIR [-H] [-F] NAME=PATH[:GLOBAL-FLAG...] ...
 *     -H  in a private mount namespace, replace /sys/fs/cgroup by a tmpfs with
 *         bind mounts of the v1 hierarchies only, so every runtime sees a pure
 *         cgroup v1 host (crun refuses hybrid hosts whose cgroup2 has
 *         controllers; no crun flag avoids that check)
 *     -F  also time the floor: unshare --pid --mount --uts --ipc --net --fork /bin/true
 *
 * We are the child subreaper: after `create` exits, the container's init is
 * reparented to us and we wait for it by the pid from --pid-file. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RT 8
#define MAX_GLOBALS 8
#define WARMUP 3

enum { PH_CREATE, PH_START, PH_WAIT, PH_DELETE, PH_TOTAL, PH_N };

struct runtime {
        char name[64];
        char *path;
        char *globals[MAX_GLOBALS];
        int nglobals;
        char root[4096];
        double *samples[PH_N];
        int n;
        long maxrss_kb;
        bool failed;
        char errlog[4096];
};

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* run argv with stdio on /dev/null (stderr to errlog); returns exit status or -1 */
static int run(char *const argv[], const char *errlog, long *maxrss_kb)
{
        struct rusage ru;
        int st;
        pid_t pid = fork();

        if (pid < 0)
                return -1;
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                int err = errlog ? open(errlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
                dup2(devnull, 0);
                dup2(devnull, 1);
                dup2(err >= 0 ? err : devnull, 2);
                execv(argv[0], argv);
                _exit(127);
        }
        if (wait4(pid, &st, 0, &ru) < 0)
                return -1;
        if (maxrss_kb && ru.ru_maxrss > *maxrss_kb)
                *maxrss_kb = ru.ru_maxrss;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void reap_orphans(void)
{
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
}

/* build "RT globals... --root ROOT VERB args..." */
static int rt_argv(struct runtime *r, char **argv, const char *verb)
{
        int n = 0;
        argv[n++] = r->path;
        for (int i = 0; i < r->nglobals; i++)
                argv[n++] = r->globals[i];
        argv[n++] = "--root";
        argv[n++] = r->root;
        argv[n++] = (char *)verb;
        return n;
}

static void report_failure(struct runtime *r, const char *what, int status)
{
        char buf[2048];
        FILE *f = fopen(r->errlog, "re");
        size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;

        if (f)
                fclose(f);
        buf[len] = 0;
        fprintf(stderr, "%s: %s failed (status %d)%s%s", r->name, what, status, len ? ": " : "\n", buf);
        if (len && buf[len - 1] != '\n')
                fputc('\n', stderr);
        r->failed = true;
}

/* a failed create can leave cgroups named after the (unique, ours) id behind */
static void remove_cgroups(const char *id)
{
        static const char *const ctrl[] = { "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer",
                                            "blkio", "pids", "systemd", "unified", "net_cls", "hugetlb" };
        char path[512];

        for (size_t i = 0; i < sizeof ctrl / sizeof ctrl[0]; i++) {
                snprintf(path, sizeof path, "/sys/fs/cgroup/%s/%s", ctrl[i], id);
                rmdir(path);
        }
        snprintf(path, sizeof path, "/sys/fs/cgroup/%s", id);
        rmdir(path);
}

static int one_lifecycle(struct runtime *r, const char *bundle, int iter, bool record)
{
        char id[128], pidfile[4200], pidbuf[32] = "";
        char *argv[32];
        double t[PH_N + 1];
        int n, st, fd;
        pid_t init;

        snprintf(id, sizeof id, "bench-%s-%d-%d", r->name, (int)getpid(), iter);
        if (snprintf(pidfile, sizeof pidfile, "%s/%s.pid", r->root, id) >= (int)sizeof pidfile)
                return -1;
        unlink(pidfile);

        t[0] = now_ms();
        n = rt_argv(r, argv, "create");
        argv[n++] = "--bundle";
        argv[n++] = (char *)bundle;
        argv[n++] = "--pid-file";
        argv[n++] = pidfile;
        argv[n++] = id;
        argv[n] = NULL;
        if ((st = run(argv, r->errlog, &r->maxrss_kb)) != 0) {
                report_failure(r, "create", st);
                goto force_delete;
        }
        t[1] = now_ms();
        fd = open(pidfile, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, pidbuf, sizeof pidbuf - 1) <= 0) {
                fprintf(stderr, "%s: cannot read --pid-file %s\n", r->name, pidfile);
                r->failed = true;
                if (fd >= 0)
                        close(fd);
                goto force_delete;
        }
        close(fd);
        init = (pid_t)atoi(pidbuf);

        n = rt_argv(r, argv, "start");
        argv[n++] = id;
        argv[n] = NULL;
        if ((st = run(argv, r->errlog, &r->maxrss_kb)) != 0) {
                report_failure(r, "start", st);
                goto force_delete;
        }
        t[2] = now_ms();
        if (waitpid(init, &st, 0) < 0) {
                fprintf(stderr, "%s: init %d is not our child (%s): is the harness the subreaper?\n", r->name,
                        (int)init, strerror(errno));
                r->failed = true;
                goto force_delete;
        }
        t[3] = now_ms();
        n = rt_argv(r, argv, "delete");
        argv[n++] = id;
        argv[n] = NULL;
        if ((st = run(argv, r->errlog, &r->maxrss_kb)) != 0) {
                report_failure(r, "delete", st);
                goto force_delete;
        }
        t[4] = now_ms();
        unlink(pidfile);
        reap_orphans();
        if (record) {
                for (int p = 0; p < PH_TOTAL; p++)
                        r->samples[p][r->n] = t[p + 1] - t[p];
                r->samples[PH_TOTAL][r->n] = t[4] - t[0];
                r->n++;
        }
        return 0;

force_delete:
        n = rt_argv(r, argv, "delete");
        argv[n++] = "--force";
        argv[n++] = id;
        argv[n] = NULL;
        run(argv, NULL, NULL);
        unlink(pidfile);
        reap_orphans();
        remove_cgroups(id);
        return -1;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double percentile(double *v, int n, double p)
{
        double *s;
        double r;
        int i;

        if (n == 0)
                return 0;
        s = malloc(sizeof *s * (size_t)n);
        if (!s)
                return 0;
        memcpy(s, v, sizeof *s * (size_t)n);
        qsort(s, (size_t)n, sizeof *s, cmp_double);
        if (p == 50 && n % 2 == 0)
                r = (s[n / 2 - 1] + s[n / 2]) / 2;
        else {
                i = (int)(p / 100.0 * (n - 1) + 0.5);
                r = s[i];
        }
        free(s);
        return r;
}

/* Make the host look like a pure cgroup v1 host, in our own private mount
 * namespace only: a fresh tmpfs on /sys/fs/cgroup holding bind mounts of the v1
 * hierarchies and no "unified" cgroup2. Returns 1 if done, 0 if not needed. */
static int hide_unified(const char *scratch)
{
        struct statfs sf;
        char line[4096], names[32][256];
        int n = 0;
        FILE *f;

        if (statfs("/sys/fs/cgroup/unified", &sf) < 0 || sf.f_type != 0x63677270 /* CGROUP2 */)
                return 0;
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                goto fail;
        f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                goto fail;
        while (fgets(line, sizeof line, f) && n < 32) {
                char mp[4096], *dash = strstr(line, " - ");
                if (!dash || strncmp(dash, " - cgroup ", 10) != 0)
                        continue;
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 || strncmp(mp, "/sys/fs/cgroup/", 15) != 0 ||
                    strchr(mp + 15, '/') || strlen(mp + 15) >= sizeof names[0])
                        continue;
                strcpy(names[n++], mp + 15);
        }
        fclose(f);
        if (mkdir(scratch, 0755) < 0 || mount("none", scratch, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") < 0)
                goto fail;
        for (int i = 0; i < n; i++) {
                char src[512], dst[4400];
                snprintf(src, sizeof src, "/sys/fs/cgroup/%s", names[i]);
                if (snprintf(dst, sizeof dst, "%s/%s", scratch, names[i]) >= (int)sizeof dst)
                        goto fail;
                if (mkdir(dst, 0755) < 0 || mount(src, dst, NULL, MS_BIND, NULL) < 0)
                        goto fail;
        }
        if (mount(scratch, "/sys/fs/cgroup", NULL, MS_MOVE, NULL) < 0)
                goto fail;
        rmdir(scratch);
        return 1;
fail:
        fprintf(stderr, "cannot make a pure cgroup v1 view: %s\n", strerror(errno));
        return -1;
}

static void usage(void)
{
        fprintf(stderr, "usage: lifecycle-bench -n N -b BUNDLE -s STATEDIR [-H] [-F] NAME=PATH[:FLAG...] ...\n");
        exit(2);
}

int main(int argc, char **argv)
{
        struct runtime rts[MAX_RT + 1] = { 0 };
        const char *bundle = NULL, *statedir = NULL;
        int n = 100, nrt = 0, opt, hidden = 0;
        bool hide = false, floor_ = false;

        while ((opt = getopt(argc, argv, "n:b:s:HF")) != -1) {
                switch (opt) {
                case 'n': n = atoi(optarg); break;
                case 'b': bundle = optarg; break;
                case 's': statedir = optarg; break;
                case 'H': hide = true; break;
                case 'F': floor_ = true; break;
                default: usage();
                }
        }
        if (!bundle || !statedir || n <= 0 || optind >= argc || argc - optind > MAX_RT)
                usage();
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
                perror("PR_SET_CHILD_SUBREAPER");
                return 1;
        }
        if (hide) {
                char scratch[4200];
                snprintf(scratch, sizeof scratch, "%s.cgroupfs", statedir);
                if ((hidden = hide_unified(scratch)) < 0)
                        return 1;
        }

        for (int i = optind; i < argc; i++) {
                struct runtime *r = &rts[nrt++];
                char *eq = strchr(argv[i], '='), *tok, *save = NULL;
                if (!eq || eq - argv[i] >= (long)sizeof r->name)
                        usage();
                memcpy(r->name, argv[i], (size_t)(eq - argv[i]));
                r->path = strtok_r(eq + 1, ":", &save);
                while ((tok = strtok_r(NULL, ":", &save)) && r->nglobals < MAX_GLOBALS)
                        r->globals[r->nglobals++] = tok;
                if (!r->path || access(r->path, X_OK) < 0) {
                        fprintf(stderr, "%s: '%s' is not executable: skipped\n", r->name, r->path ? r->path : "");
                        r->failed = true;
                }
                char name[sizeof r->name]; /* a copy: gcc cannot tell r->name from r->root apart */
                memcpy(name, r->name, sizeof name);
                if (snprintf(r->root, sizeof r->root, "%s/%s", statedir, name) >= (int)sizeof r->root ||
                    snprintf(r->errlog, sizeof r->errlog, "%s/%s.stderr", statedir, name) >= (int)sizeof r->errlog)
                        usage();
                mkdir(statedir, 0700);
                mkdir(r->root, 0700);
                for (int p = 0; p < PH_N; p++)
                        r->samples[p] = calloc((size_t)n, sizeof(double));
        }

        /* the floor: namespaces + fork + exec of /bin/true, no runtime */
        double *floor_samples = calloc((size_t)n, sizeof(double));
        int floor_n = 0;
        char *floor_argv[] = { "/usr/bin/unshare", "--pid", "--mount", "--uts", "--ipc", "--net", "--fork",
                               "/bin/true", NULL };

        for (int it = -WARMUP; it < n; it++) {
                for (int k = 0; k < nrt; k++) {
                        struct runtime *r = &rts[(k + (it < 0 ? 0 : it)) % nrt]; /* rotate who goes first */
                        if (!r->failed)
                                one_lifecycle(r, bundle, it + WARMUP, it >= 0);
                }
                if (floor_) {
                        double t0 = now_ms();
                        if (run(floor_argv, NULL, NULL) == 0 && it >= 0)
                                floor_samples[floor_n++] = now_ms() - t0;
                        reap_orphans();
                }
        }

        printf("cgroups: %s\n", hidden ? "cgroup v1 (cgroupfs) for every runtime; in the harness's private mount "
                                         "namespace /sys/fs/cgroup holds the v1 hierarchies only (no unified)"
                                       : "as the host has them");
        printf("%-8s %5s %9s %9s %9s %9s %9s %9s %10s\n", "runtime", "n", "median", "p90", "create", "start",
               "wait", "delete", "peak-rss");
        double med[MAX_RT] = { 0 };
        for (int k = 0; k < nrt; k++) {
                struct runtime *r = &rts[k];
                if (r->n == 0) {
                        printf("%-8s %5d   (failed: no complete lifecycle)\n", r->name, 0);
                        continue;
                }
                med[k] = percentile(r->samples[PH_TOTAL], r->n, 50);
                printf("%-8s %5d %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms %7.1fMiB%s\n", r->name, r->n,
                       med[k], percentile(r->samples[PH_TOTAL], r->n, 90),
                       percentile(r->samples[PH_CREATE], r->n, 50), percentile(r->samples[PH_START], r->n, 50),
                       percentile(r->samples[PH_WAIT], r->n, 50), percentile(r->samples[PH_DELETE], r->n, 50),
                       (double)r->maxrss_kb / 1024.0, r->failed ? "  (failed part way)" : "");
        }
        if (floor_ && floor_n)
                printf("%-8s %5d %7.2fms %7.2fms   (unshare --pid --mount --uts --ipc --net --fork /bin/true)\n",
                       "floor", floor_n, percentile(floor_samples, floor_n, 50),
                       percentile(floor_samples, floor_n, 90));
        for (int k = 0; k < nrt; k++) {
                if (strcmp(rts[k].name, "moat") || med[k] == 0)
                        continue;
                for (int j = 0; j < nrt; j++)
                        if (j != k && med[j] > 0)
                                printf("ratio moat/%s: %.2f\n", rts[j].name, med[k] / med[j]);
        }
        for (int k = 0; k < nrt; k++) {
                rmdir(rts[k].root);
                unlink(rts[k].errlog);
        }
        int any_failed = 0;
        for (int k = 0; k < nrt; k++)
                any_failed |= rts[k].failed;
        return any_failed ? 1 : 0;
}
