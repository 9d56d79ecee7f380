/* SPDX-License-Identifier: Apache-2.0 */
/* cap_add / cap_drop on a config.json process, egress host names.
 * Network: only names /etc/hosts answers are resolved ("localhost"); bad names
 * are refused before any lookup. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/util.h"
#include "env/svcopts.h"
#include "oci/spec.h"
#include "tap.h"

#define DEFAULT_CAPS                                                                                              \
        "[\"CAP_CHOWN\", \"CAP_DAC_OVERRIDE\", \"CAP_FSETID\", \"CAP_FOWNER\", \"CAP_MKNOD\", \"CAP_NET_RAW\", " \
        "\"CAP_SETGID\", \"CAP_SETUID\", \"CAP_SETFCAP\", \"CAP_SETPCAP\", \"CAP_NET_BIND_SERVICE\", "          \
        "\"CAP_SYS_CHROOT\", \"CAP_KILL\", \"CAP_AUDIT_WRITE\"]"

static json_t *process(bool with_inh)
{
        const char *inh = with_inh ? ", \"inheritable\": [\"CAP_KILL\", \"CAP_NET_RAW\"], \"ambient\": [\"CAP_NET_RAW\"]"
                                   : "";
        char buf[4096];
        snprintf(buf, sizeof buf,
                 "{\"args\": [\"sh\"], \"capabilities\": {\"bounding\": %s, \"effective\": %s, \"permitted\": %s%s}}",
                 DEFAULT_CAPS, DEFAULT_CAPS, DEFAULT_CAPS, inh);
        json_error_t je;
        json_t *p = json_loads(buf, 0, &je);
        if (!p) {
                printf("# bad test json: %s\n", je.text);
                exit(1);
        }
        return p;
}

static bool has(json_t *p, const char *set, const char *cap)
{
        json_t *a = json_object_get(json_object_get(p, "capabilities"), set);
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) if (STREQ(json_string_value(v), cap)) return true;
        return false;
}

static size_t count(json_t *p, const char *set)
{
        json_t *a = json_object_get(json_object_get(p, "capabilities"), set);
        return json_is_array(a) ? json_array_size(a) : (size_t)-1;
}

static int apply(char **add, char **drop, json_t *p, char **msg)
{
        struct moat_env_service s = { .name = "web", .cap_add = add, .cap_drop = drop };
        struct moat_error *err = NULL;
        int r = moat_env_caps_apply(&s, p, &err);
        if (msg)
                *msg = err ? strdup(err->msg) : NULL;
        moat_error_free(err);
        return r;
}

static size_t n_all(void)
{
        size_t n = 0;
        for (int i = 0; i <= moat_cap_last() && i < 64; i++)
                if (moat_cap_name(i))
                        n++;
        return n;
}

static void test_caps(void)
{
        /* nothing asked: nothing changed */
        json_t *p = process(true), *orig = process(true);
        is_int(apply(NULL, NULL, p, NULL), 0, "no cap_add/cap_drop: ok");
        ok(json_equal(p, orig), "no cap_add/cap_drop: the process is unchanged");
        json_decref(p);

        /* add and drop, names without CAP_ and in lower case */
        p = process(true);
        char *add1[] = { "net_admin", NULL }, *drop1[] = { "cap_net_raw", "Mknod", NULL };
        is_int(apply(add1, drop1, p, NULL), 0, "add net_admin, drop cap_net_raw + Mknod: ok");
        static const char *const sets[] = { "bounding", "effective", "permitted" };
        for (size_t i = 0; i < 3; i++) {
                ok(has(p, sets[i], "CAP_NET_ADMIN"), "%s: CAP_NET_ADMIN added", sets[i]);
                ok(!has(p, sets[i], "CAP_NET_RAW"), "%s: CAP_NET_RAW dropped", sets[i]);
                ok(!has(p, sets[i], "CAP_MKNOD"), "%s: CAP_MKNOD dropped", sets[i]);
                ok(has(p, sets[i], "CAP_CHOWN") && has(p, sets[i], "CAP_KILL"), "%s: the others kept", sets[i]);
                is_int(count(p, sets[i]), 13, "%s: 14 - 2 + 1", sets[i]);
        }
        is_str(json_string_value(json_array_get(json_object_get(json_object_get(p, "capabilities"), "bounding"), 0)),
               "CAP_CHOWN", "lists in capability number order");
        ok(has(p, "inheritable", "CAP_KILL") && count(p, "inheritable") == 1,
           "inheritable: the dropped cap leaves, the added one does not come in");
        is_int(count(p, "ambient"), 0, "ambient: the dropped CAP_NET_RAW leaves");
        is_str(json_string_value(json_array_get(json_object_get(p, "args"), 0)), "sh", "the rest of process kept");
        json_decref(p);

        /* Docker: drop ALL, add X = only X */
        p = process(true);
        char *add2[] = { "CAP_NET_BIND_SERVICE", NULL }, *drop2[] = { "ALL", NULL };
        is_int(apply(add2, drop2, p, NULL), 0, "drop ALL + add NET_BIND_SERVICE: ok");
        for (size_t i = 0; i < 3; i++)
                ok(count(p, sets[i]) == 1 && has(p, sets[i], "CAP_NET_BIND_SERVICE"), "%s: only NET_BIND_SERVICE",
                   sets[i]);
        is_int(count(p, "inheritable"), 0, "inheritable: emptied");
        json_decref(p);

        /* add ALL */
        p = process(false);
        char *add3[] = { "all", NULL };
        is_int(apply(add3, NULL, p, NULL), 0, "add all: ok");
        is_int(count(p, "bounding"), n_all(), "add all: every capability the kernel and libcap know");
        ok(has(p, "permitted", "CAP_SYS_ADMIN"), "add all: CAP_SYS_ADMIN there");
        ok(!json_object_get(json_object_get(p, "capabilities"), "inheritable"), "inheritable not created");
        json_decref(p);
        p = process(false);
        char *drop4[] = { "SYS_ADMIN", NULL };
        is_int(apply(add3, drop4, p, NULL), 0, "add ALL + drop SYS_ADMIN: ok");
        ok(!has(p, "bounding", "CAP_SYS_ADMIN") && count(p, "bounding") == n_all() - 1, "add ALL + drop: all but it");
        json_decref(p);

        /* the same cap in both (no ALL): kept, as Docker (add after drop) */
        p = process(false);
        char *both[] = { "CAP_KILL", NULL };
        is_int(apply(both, both, p, NULL), 0, "add and drop CAP_KILL: ok");
        ok(has(p, "effective", "CAP_KILL"), "add and drop of the same cap: kept");
        json_decref(p);

        /* no capabilities in the process yet */
        p = json_pack("{s:[s]}", "args", "sh");
        char *add5[] = { "SYS_PTRACE", NULL };
        is_int(apply(add5, NULL, p, NULL), 0, "process without capabilities: ok");
        ok(count(p, "bounding") == 1 && has(p, "bounding", "CAP_SYS_PTRACE"), "the capabilities object made");
        json_decref(p);

        /* unknown names */
        static const char *const unknown[] = { "CAP_FOO", "net-admin", "", "CAP_", "12" };
        for (size_t i = 0; i < ARRAY_SIZE(unknown); i++) {
                p = process(false);
                char *bad[] = { (char *)unknown[i], NULL };
                _cleanup_free_ char *msg = NULL;
                is_int(apply(i % 2 ? NULL : bad, i % 2 ? bad : NULL, p, &msg), -EINVAL, "'%s': refused", unknown[i]);
                contains(msg, "'web'", "the message names the service");
                char q[64];
                snprintf(q, sizeof q, "'%s'", unknown[i]);
                contains(msg, q, "the message names the capability");
                json_t *fresh = process(false);
                ok(json_equal(p, fresh), "nothing changed");
                json_decref(fresh);
                json_decref(p);
        }
        json_decref(orig);
}

static void test_hostnames(void)
{
        static const char *const good[] = { "localhost", "a", "example.com", "x-1.example.org.", "123abc.com",
                                            "xn--bcher-kva.example", "A.B.C" };
        for (size_t i = 0; i < ARRAY_SIZE(good); i++)
                ok(moat_env_hostname_ok(good[i]), "'%s' is a host name", good[i]);
        char l63[64], l64[65], n253[254], n254[255];
        memset(l63, 'a', 63);
        l63[63] = '\0';
        memset(l64, 'a', 64);
        l64[64] = '\0';
        /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
        snprintf(n253, sizeof n253, "%s.%s.%s.%.61s", l63, l63, l63, l63);
        snprintf(n254, sizeof n254, "%s.%s.%s.%.62s", l63, l63, l63, l63);
        ok(moat_env_hostname_ok(l63), "a 63-character label");
        ok(!moat_env_hostname_ok(l64), "a 64-character label: refused");
        ok(strlen(n253) == 253 && moat_env_hostname_ok(n253), "253 characters");
        ok(strlen(n254) == 254 && !moat_env_hostname_ok(n254), "254 characters: refused");
        static const char *const bad[] = { "",          ".",        "-bad.com",   "bad-.com", "a..b",  "under_score.com",
                                           "host name", "1.2.3.4",  "10.1",       "a.b/c",    "..",    "exa$mple.com",
                                           "é.com",     "a.-b.com", "localhost.." };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                ok(!moat_env_hostname_ok(bad[i]), "'%s' is not a host name", bad[i]);
        ok(!moat_env_hostname_ok(NULL), "NULL is not a host name");
}

static void test_resolve(void)
{
        struct moat_env_service s = { .name = "web" };
        /* /etc/hosts answers localhost: no DNS query */
        struct moat_env_egress x = { .host = "localhost", .port = 443 };
        _cleanup_strv_ char **v = NULL;
        struct moat_error *err = NULL;
        int r = moat_env_egress_resolve(&s, &x, &v, &err);
        is_int(r, 0, "localhost resolves (%s)", err ? err->msg : "");
        is_int(strv_length(v), 1, "one address (sorted, unique)");
        is_str(v ? v[0] : NULL, "127.0.0.1/32", "localhost -> 127.0.0.1/32");
        moat_error_free(err);

        /* refused before any lookup */
        static const char *const bad[] = { "-evil.example", "bad_name.example", "a..b", "1.2.3.4" };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct moat_env_egress b = { .host = (char *)bad[i] };
                char **o = NULL;
                err = NULL;
                r = moat_env_egress_resolve(&s, &b, &o, &err);
                is_int(r, -EINVAL, "'%s': an input error", bad[i]);
                ok(o == NULL, "'%s': no output", bad[i]);
                contains(err ? err->msg : NULL, bad[i], "the message names the host");
                contains(err ? err->msg : NULL, "'web'", "the message names the service");
                moat_error_free(err);
        }
        struct moat_env_egress c = { .host = "10.0.0.0/8", .is_cidr = true };
        char **o = NULL;
        is_int(moat_env_egress_resolve(&s, &c, &o, NULL), -EINVAL, "a CIDR entry: not for the resolver");
}

int main(void)
{
        test_caps();
        test_hostnames();
        test_resolve();
        return done_testing();
}
