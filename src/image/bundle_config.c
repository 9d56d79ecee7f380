/* SPDX-License-Identifier: Apache-2.0 */
/* config.json for `moat run`: runc's default spec (moat_spec_default_json) edited
 * with the image's config and the flags, Docker's way:
 *   args = Entrypoint + (CMD given ? CMD : image Cmd)
 *   env  = PATH, HOSTNAME, HOME (, TERM) < image Env < --env
 *   cwd  = --workdir | image WorkingDir | "/"
 *   user = --user | image User, resolved in the image's /etc/passwd and /etc/group
 *   capabilities = Docker's default set; RLIMIT_NOFILE 1024 (never above our hard limit). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "image/bundle.h"
#include "oci/json.h"
#include "oci/spec.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define CPU_PERIOD 100000ULL
#define MIN_MEMORY ((int64_t)6 << 20)

static const char *const docker_caps[] = {
        "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",     "CAP_MKNOD",
        "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",           "CAP_SETFCAP",    "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",           "CAP_SYS_CHROOT",       "CAP_KILL",       "CAP_AUDIT_WRITE",
};

/* ---------------------------------------------------------------- flag parsers */

int moat_run_parse_memory(const char *s, int64_t *bytes, struct moat_error **err)
{
        if (!s || !*s || *s < '0' || *s > '9')
                goto bad;
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s)
                goto bad;
        uint64_t mult = 1;
        if (*end) {
                switch (*end | 0x20) {
                case 'b': mult = 1; break;
                case 'k': mult = 1ULL << 10; break;
                case 'm': mult = 1ULL << 20; break;
                case 'g': mult = 1ULL << 30; break;
                case 't': mult = 1ULL << 40; break;
                default: goto bad;
                }
                bool unit_b = (*end | 0x20) == 'b';
                end++;
                if (!unit_b) {
                        if ((*end | 0x20) == 'i')
                                end++;
                        if ((*end | 0x20) == 'b')
                                end++;
                }
                if (*end)
                        goto bad;
        }
        if (v > (uint64_t)INT64_MAX / mult)
                return moat_error_input(err, -ERANGE, "--memory '%s' is too large", s);
        if ((int64_t)(v * mult) < MIN_MEMORY)
                return moat_error_input(err, -EINVAL, "--memory '%s' is too small: at least 6m", s);
        *bytes = (int64_t)(v * mult);
        return 0;
bad:
        return moat_error_input(err, -EINVAL, "--memory '%s': expected a size such as 512m or 2g", s ? s : "");
}

int moat_run_parse_cpus(const char *s, int64_t *quota, uint64_t *period, struct moat_error **err)
{
        /* Fixed point, no floating point surprises: up to 5 decimals (1/100000 of a CPU = 1 us). */
        if (!s || !*s)
                goto bad;
        const char *p = s;
        uint64_t whole = 0, frac = 0, scale = CPU_PERIOD;
        bool digits = false;
        for (; *p >= '0' && *p <= '9'; p++) {
                whole = whole * 10 + (uint64_t)(*p - '0');
                digits = true;
                if (whole > 4096)
                        return moat_error_input(err, -ERANGE, "--cpus '%s' is too large", s);
        }
        if (*p == '.') {
                p++;
                for (; *p >= '0' && *p <= '9'; p++) {
                        digits = true;
                        if (scale > 1) {
                                scale /= 10;
                                frac += (uint64_t)(*p - '0') * scale;
                        } else if (*p != '0') {
                                return moat_error_input(err, -EINVAL, "--cpus '%s': at most 5 decimals", s);
                        }
                }
        }
        if (*p || !digits)
                goto bad;
        uint64_t q = whole * CPU_PERIOD + frac;
        if (q < 1000)
                return moat_error_input(err, -EINVAL, "--cpus '%s' is too small: at least 0.01", s);
        *quota = (int64_t)q;
        *period = CPU_PERIOD;
        return 0;
bad:
        return moat_error_input(err, -EINVAL, "--cpus '%s': expected a number of CPUs such as 1.5", s ? s : "");
}

int moat_run_parse_pids(const char *s, int64_t *limit, struct moat_error **err)
{
        int64_t v;
        if (!s || parse_i64(s, &v) < 0 || v < -1)
                return moat_error_input(err, -EINVAL, "--pids-limit '%s': expected a positive number (0 or -1: no limit)",
                                        s ? s : "");
        *limit = v > 0 ? v : 0;
        return 0;
}

int moat_run_parse_network(const char *s, enum moat_run_network *out, struct moat_error **err)
{
        if (!s || strcmp(s, "default") == 0 || strcmp(s, "bridge") == 0)
                *out = MOAT_RUN_NET_DEFAULT;
        else if (strcmp(s, "none") == 0)
                *out = MOAT_RUN_NET_NONE;
        else if (strcmp(s, "host") == 0)
                *out = MOAT_RUN_NET_HOST;
        else
                return moat_error_input(err, -EINVAL, "--network '%s': expected none, host or default", s);
        return 0;
}

void moat_volume_clear(struct moat_volume *v)
{
        free(v->source);
        free(v->destination);
        *v = (struct moat_volume){ 0 };
}

static bool has_dotdot(const char *p)
{
        for (const char *c = p; (c = strstr(c, "..")); c += 2)
                if ((c == p || c[-1] == '/') && (c[2] == '\0' || c[2] == '/'))
                        return true;
        return false;
}

int moat_run_parse_volume(const char *s, struct moat_volume *out, struct moat_error **err)
{
        *out = (struct moat_volume){ 0 };
        _cleanup_free_ char *copy = strdup(s ? s : "");
        if (!copy)
                return -ENOMEM;
        char *dst = strchr(copy, ':');
        if (!dst || dst == copy || !dst[1])
                return moat_error_input(err, -EINVAL, "--volume '%s': expected SRC:DST[:ro|:rw]", s ? s : "");
        *dst++ = '\0';
        char *mode = strchr(dst, ':');
        bool ro = false;
        if (mode) {
                *mode++ = '\0';
                if (strcmp(mode, "ro") == 0)
                        ro = true;
                else if (strcmp(mode, "rw") != 0)
                        return moat_error_input(err, -EINVAL, "--volume '%s': unknown mode '%s' (ro or rw)", s,
                                                mode);
        }
        if (dst[0] != '/')
                return moat_error_input(err, -EINVAL, "--volume '%s': the destination '%s' must be an absolute path",
                                        s, dst);
        if (has_dotdot(dst))
                return moat_error_input(err, -EINVAL, "--volume '%s': the destination '%s' may not contain '..'", s,
                                        dst);
        bool root = true;
        for (const char *c = dst; *c; c++)
                root &= *c == '/';
        if (root)
                return moat_error_input(err, -EINVAL, "--volume '%s': cannot mount over the container's '/'", s);
        char *src = realpath(copy, NULL);
        if (!src) {
                int e = errno;
                if (e == ENOENT || e == ENOTDIR)
                        return moat_error_input(err, -e, "--volume '%s': the source '%s' does not exist on the host",
                                                s, copy);
                return moat_error_set(err, e, "--volume '%s': the source '%s'", s, copy);
        }
        out->source = src;
        out->destination = strdup(dst);
        out->readonly = ro;
        if (!out->destination) {
                moat_volume_clear(out);
                return -ENOMEM;
        }
        return 0;
}

/* ---------------------------------------------------------------- config.json */

static size_t key_len(const char *kv)
{
        const char *eq = strchr(kv, '=');
        return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* Sets KEY=VAL in the env array, replacing an entry with the same key. */
static int env_set(json_t *env, const char *kv)
{
        size_t kl = key_len(kv), i;
        json_t *v;
        json_array_foreach (env, i, v) {
                const char *e = json_string_value(v);
                if (e && key_len(e) == kl && strncmp(e, kv, kl) == 0)
                        return json_array_set_new(env, i, json_string(kv)) < 0 ? -ENOMEM : 0;
        }
        return json_array_append_new(env, json_string(kv)) < 0 ? -ENOMEM : 0;
}

static bool env_has(json_t *env, const char *key)
{
        size_t kl = strlen(key), i;
        json_t *v;
        json_array_foreach (env, i, v) {
                const char *e = json_string_value(v);
                if (e && key_len(e) == kl && strncmp(e, key, kl) == 0)
                        return true;
        }
        return false;
}

static int build_env(json_t *process, const struct moat_image_config *ic, const struct moat_run_opts *o,
                     const char *hostname, const char *home, bool terminal, struct moat_error **err)
{
        json_t *env = json_array();
        if (!env || json_object_set_new(process, "env", env) < 0)
                return -ENOMEM;
        char buf[512];
        int r = env_set(env, DEFAULT_PATH);
        snprintf(buf, sizeof(buf), "HOSTNAME=%s", hostname);
        if (r >= 0)
                r = env_set(env, buf);
        if (r >= 0 && terminal)
                r = env_set(env, "TERM=xterm");
        for (size_t i = 0; r >= 0 && ic && ic->env && ic->env[i]; i++)
                if (key_len(ic->env[i]) > 0 && strchr(ic->env[i], '='))
                        r = env_set(env, ic->env[i]);
        for (size_t i = 0; r >= 0 && o->env && o->env[i]; i++) {
                const char *e = o->env[i];
                if (key_len(e) == 0)
                        return moat_error_input(err, -EINVAL, "--env '%s': expected KEY=VALUE or KEY", e);
                if (strchr(e, '=')) {
                        r = env_set(env, e);
                        continue;
                }
                const char *val = getenv(e); /* KEY alone: ours, when we have it (Docker's way) */
                if (!val)
                        continue;
                _cleanup_free_ char *kv = NULL;
                if (asprintf(&kv, "%s=%s", e, val) < 0)
                        return -ENOMEM;
                r = env_set(env, kv);
        }
        if (r >= 0 && !env_has(env, "HOME")) {
                _cleanup_free_ char *kv = NULL;
                if (asprintf(&kv, "HOME=%s", home) < 0)
                        return -ENOMEM;
                r = env_set(env, kv);
        }
        return r;
}

static int build_args(json_t *process, const struct moat_image_config *ic, const char *image_name,
                      const struct moat_run_opts *o, struct moat_error **err)
{
        json_t *args = json_array();
        if (!args || json_object_set_new(process, "args", args) < 0)
                return -ENOMEM;
        char *const *cmd = o->cmd && o->cmd[0] ? o->cmd : ic ? ic->cmd : NULL;
        for (size_t i = 0; ic && ic->entrypoint && ic->entrypoint[i]; i++)
                if (json_array_append_new(args, json_string(ic->entrypoint[i])) < 0)
                        return -ENOMEM;
        for (size_t i = 0; cmd && cmd[i]; i++)
                if (json_array_append_new(args, json_string(cmd[i])) < 0)
                        return -ENOMEM;
        if (json_array_size(args) == 0)
                return moat_error_input(err, -EINVAL,
                                        "image '%s' has neither an entrypoint nor a cmd: give the command after "
                                        "the image name",
                                        image_name);
        return 0;
}

static json_t *caps_array(void)
{
        json_t *a = json_array();
        for (size_t i = 0; a && i < ARRAY_SIZE(docker_caps); i++)
                json_array_append_new(a, json_string(docker_caps[i]));
        return a;
}

static int build_user(json_t *process, int rootfd, const char *user, struct moat_run_user *u,
                      struct moat_error **err)
{
        int r = moat_run_resolve_user(rootfd, user, u, err);
        if (r < 0)
                return r;
        json_t *ju = json_pack("{s:I, s:I}", "uid", (json_int_t)u->uid, "gid", (json_int_t)u->gid);
        if (!ju)
                return -ENOMEM;
        if (u->n_additional_gids > 0) {
                json_t *g = json_array();
                for (size_t i = 0; g && i < u->n_additional_gids; i++)
                        json_array_append_new(g, json_integer((json_int_t)u->additional_gids[i]));
                json_object_set_new(ju, "additionalGids", g);
        }
        return json_object_set_new(process, "user", ju) < 0 ? -ENOMEM : 0;
}

static int build_rlimits(json_t *process)
{
        struct rlimit rl;
        json_int_t lim = 1024;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && (json_int_t)rl.rlim_max < lim)
                lim = (json_int_t)rl.rlim_max;
        json_t *r = json_pack("[{s:s, s:I, s:I}]", "type", "RLIMIT_NOFILE", "hard", lim, "soft", lim);
        return r && json_object_set_new(process, "rlimits", r) == 0 ? 0 : -ENOMEM;
}

static int add_bind(json_t *mounts, const char *src, const char *dst, bool ro)
{
        json_t *opts = ro ? json_pack("[sss]", "rbind", "rprivate", "ro") : json_pack("[ss]", "rbind", "rprivate");
        json_t *m = opts ? json_pack("{s:s, s:s, s:s, s:o}", "destination", dst, "type", "bind", "source", src,
                                     "options", opts)
                         : NULL;
        return m && json_array_append_new(mounts, m) == 0 ? 0 : -ENOMEM;
}

static int build_linux(json_t *doc, const struct moat_run_opts *o, struct moat_error **err)
{
        enum moat_run_network net;
        int r = moat_run_parse_network(o->network, &net, err);
        if (r < 0)
                return r;
        json_t *lx = json_object_get(doc, "linux");
        json_t *ns = json_object_get(lx, "namespaces");
        if (!json_is_object(lx) || !json_is_array(ns))
                return -EINVAL;
        if (net == MOAT_RUN_NET_HOST) {
                size_t i;
                json_t *v;
                json_array_foreach (ns, i, v)
                        if (strcmp(json_string_value(json_object_get(v, "type")) ?: "", "network") == 0) {
                                json_array_remove(ns, i);
                                break;
                        }
                /* the host's name service, as Docker does with --network host */
                json_t *mounts = json_object_get(doc, "mounts");
                static const char *const files[] = { "/etc/resolv.conf", "/etc/hosts" };
                for (size_t k = 0; k < ARRAY_SIZE(files); k++) {
                        struct stat st;
                        if (stat(files[k], &st) == 0 && S_ISREG(st.st_mode) && (r = add_bind(mounts, files[k], files[k], true)) < 0)
                                return r;
                }
        }
        json_t *res = json_object_get(lx, "resources");
        if (!json_is_object(res)) {
                res = json_object();
                if (!res || json_object_set_new(lx, "resources", res) < 0)
                        return -ENOMEM;
        }
        if (o->memory) {
                int64_t bytes;
                if ((r = moat_run_parse_memory(o->memory, &bytes, err)) < 0)
                        return r;
                json_object_set_new(res, "memory", json_pack("{s:I}", "limit", (json_int_t)bytes));
        }
        if (o->cpus) {
                int64_t quota;
                uint64_t period;
                if ((r = moat_run_parse_cpus(o->cpus, &quota, &period, err)) < 0)
                        return r;
                json_object_set_new(res, "cpu", json_pack("{s:I, s:I}", "quota", (json_int_t)quota, "period",
                                                          (json_int_t)period));
        }
        if (o->pids_limit) {
                int64_t lim;
                if ((r = moat_run_parse_pids(o->pids_limit, &lim, err)) < 0)
                        return r;
                if (lim > 0)
                        json_object_set_new(res, "pids", json_pack("{s:I}", "limit", (json_int_t)lim));
        }
        return 0;
}

static int random_hex(char *out, size_t bytes)
{
        unsigned char b[32];
        if (bytes > sizeof(b))
                return -EINVAL;
        if (getrandom(b, bytes, 0) != (ssize_t)bytes)
                return -errno;
        for (size_t i = 0; i < bytes; i++)
                sprintf(out + 2 * i, "%02x", b[i]);
        return 0;
}

int moat_bundle_config(const struct moat_image_config *ic, const char *image_name, const char *rootfs,
                       const struct moat_run_opts *o, json_t **out, struct moat_error **err)
{
        *out = NULL;
        if (!image_name)
                image_name = "";
        _cleanup_free_ char *text = moat_spec_default_json(false);
        if (!text)
                return -ENOMEM;
        json_error_t jerr;
        _cleanup_json_ json_t *doc = json_loads(text, 0, &jerr);
        json_t *process = json_object_get(doc, "process");
        if (!doc || !json_is_object(process))
                return moat_error_input(err, -EINVAL, "the default config.json does not parse: %s", jerr.text);

        char host[16] = "";
        const char *hostname = o->hostname;
        if (!hostname) {
                int r = random_hex(host, 6);
                if (r < 0)
                        return moat_error_set(err, r, "cannot make a host name");
                hostname = host;
        }
        bool terminal = o->terminal < 0 ? isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) : o->terminal > 0;

        /* cwd */
        const char *cwd = o->workdir ? o->workdir : ic && ic->workdir && *ic->workdir ? ic->workdir : "/";
        if (o->workdir && o->workdir[0] != '/')
                return moat_error_input(err, -EINVAL, "--workdir '%s' must be an absolute path", o->workdir);
        _cleanup_free_ char *cwd_abs = NULL;
        if (cwd[0] != '/' && asprintf(&cwd_abs, "/%s", cwd) < 0)
                return -ENOMEM;

        /* user */
        _cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return moat_error_set(err, errno, "cannot open the root filesystem '%s'", rootfs);
        struct moat_run_user u = { 0 };
        const char *user = o->user ? o->user : ic ? ic->user : NULL;
        int r = build_user(process, rootfd, user, &u, err);
        if (r < 0) {
                moat_run_user_clear(&u);
                return r;
        }
        const char *home = u.home ? u.home : u.uid == 0 ? "/root" : "/";
        r = build_env(process, ic, o, hostname, home, terminal, err);
        moat_run_user_clear(&u);
        if (r < 0)
                return r;
        if ((r = build_args(process, ic, image_name, o, err)) < 0)
                return r;
        json_t *caps = json_pack("{s:o, s:o, s:o}", "bounding", caps_array(), "effective", caps_array(),
                                 "permitted", caps_array());
        if (!caps || json_object_set_new(process, "capabilities", caps) < 0 ||
            json_object_set_new(process, "terminal", json_boolean(terminal)) < 0 ||
            json_object_set_new(process, "cwd", json_string(cwd_abs ? cwd_abs : cwd)) < 0 || build_rlimits(process) < 0)
                return -ENOMEM;

        if (json_object_set_new(doc, "root", json_pack("{s:s, s:b}", "path", "rootfs", "readonly", 0)) < 0 ||
            json_object_set_new(doc, "hostname", json_string(hostname)) < 0)
                return -ENOMEM;
        if (*image_name &&
            json_object_set_new(doc, "annotations", json_pack("{s:s}", "moat.image", image_name)) < 0)
                return -ENOMEM;

        json_t *mounts = json_object_get(doc, "mounts");
        for (size_t i = 0; o->volumes && o->volumes[i]; i++) {
                struct moat_volume v;
                if ((r = moat_run_parse_volume(o->volumes[i], &v, err)) < 0)
                        return r;
                r = add_bind(mounts, v.source, v.destination, v.readonly);
                moat_volume_clear(&v);
                if (r < 0)
                        return r;
        }
        if ((r = build_linux(doc, o, err)) < 0)
                return r;
        *out = TAKE_PTR(doc);
        return 0;
}
