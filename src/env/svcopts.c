/* SPDX-License-Identifier: Apache-2.0 */
/* cap_add / cap_drop on a config.json process, egress host names (env/svcopts.h). */
#include "env/svcopts.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "oci/spec.h"

/* ---------------------------------------------------------------- capabilities */

#define CAP_NAME_ALL (-2)

/* A capability number, CAP_NAME_ALL, or -EINVAL (unknown) / -EOPNOTSUPP (libcap knows
 * it, this kernel does not). */
static int cap_parse(const char *name)
{
        const char *n = name;
        if (!strncasecmp(n, "CAP_", 4))
                n += 4;
        if (!strcasecmp(n, "ALL"))
                return CAP_NAME_ALL;
        if (n[0] == '\0' || strlen(n) > 60)
                return -EINVAL;
        char norm[68] = "CAP_";
        size_t j = 4;
        for (const char *p = n; *p; p++) {
                if (!isalnum((unsigned char)*p) && *p != '_')
                        return -EINVAL;
                norm[j++] = (char)toupper((unsigned char)*p);
        }
        norm[j] = '\0';
        int cap = moat_cap_from_name(norm);
        if (cap < 0)
                return -EINVAL;
        if (cap > moat_cap_last())
                return -EOPNOTSUPP;
        return cap;
}

static uint64_t caps_all(void)
{
        uint64_t m = 0;
        int last = moat_cap_last();
        for (int i = 0; i <= last && i < 64; i++)
                if (moat_cap_name(i))
                        m |= UINT64_C(1) << i;
        return m;
}

/* The mask of list (cap_add / cap_drop), *all set if it names ALL. */
static int caps_of_list(const struct moat_env_service *s, const char *key, char *const *list, uint64_t *mask,
                        bool *all, struct moat_error **err)
{
        *mask = 0;
        *all = false;
        for (char *const *p = list; p && *p; p++) {
                int c = cap_parse(*p);
                if (c == CAP_NAME_ALL) {
                        *all = true;
                        continue;
                }
                if (c == -EOPNOTSUPP)
                        return moat_error_input(err, -EINVAL, "service '%s': %s: capability '%s' is not supported by "
                                                "this kernel", s->name, key, *p);
                if (c < 0)
                        return moat_error_input(err, -EINVAL, "service '%s': %s: '%s' is not a capability", s->name,
                                                key, *p);
                *mask |= UINT64_C(1) << c;
        }
        return 0;
}

/* The known capabilities of a JSON list; the names moat does not know are kept in
 * *extra (a JSON array) so that the default case leaves them where they were. */
static uint64_t caps_of_json(json_t *arr, json_t *extra)
{
        uint64_t m = 0;
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
                const char *n = json_string_value(v);
                int c = n ? moat_cap_from_name(n) : -EINVAL;
                if (c >= 0)
                        m |= UINT64_C(1) << c;
                else if (extra)
                        json_array_append(extra, v);
        }
        return m;
}

static json_t *caps_json(uint64_t m, json_t *extra)
{
        json_t *a = json_array();
        if (!a)
                return NULL;
        for (int i = 0; i < 64; i++)
                if (m & (UINT64_C(1) << i)) {
                        const char *n = moat_cap_name(i);
                        if (n && json_array_append_new(a, json_string(n)) < 0) {
                                json_decref(a);
                                return NULL;
                        }
                }
        if (extra && json_array_extend(a, extra) < 0) {
                json_decref(a);
                return NULL;
        }
        return a;
}

static void jsonp_decref(json_t **j)
{
        json_decref(*j);
}

int moat_env_caps_apply(const struct moat_env_service *s, json_t *process, struct moat_error **err)
{
        if (!s || !json_is_object(process))
                return -EINVAL;
        if (!strv_length(s->cap_add) && !strv_length(s->cap_drop))
                return 0;
        uint64_t add, drop;
        bool add_all, drop_all;
        int r = caps_of_list(s, "cap_add", s->cap_add, &add, &add_all, err);
        if (r < 0)
                return r;
        r = caps_of_list(s, "cap_drop", s->cap_drop, &drop, &drop_all, err);
        if (r < 0)
                return r;
        json_t *caps = json_object_get(process, "capabilities");
        if (!json_is_object(caps)) {
                caps = json_object();
                if (!caps || json_object_set_new(process, "capabilities", caps) < 0)
                        return -ENOMEM;
        }
        static const char *const main_sets[] = { "bounding", "effective", "permitted" };
        uint64_t result[3];
        for (size_t i = 0; i < ARRAY_SIZE(main_sets); i++) {
                _cleanup_(jsonp_decref) json_t *extra = json_array();
                if (!extra)
                        return -ENOMEM;
                uint64_t have = caps_of_json(json_object_get(caps, main_sets[i]), extra);
                uint64_t m;
                bool keep_extra = false;
                if (add_all) {
                        m = caps_all() & ~drop;
                } else if (drop_all) {
                        m = add;
                } else {
                        m = (have & ~drop) | add;
                        keep_extra = true;
                }
                result[i] = m;
                json_t *a = caps_json(m, keep_extra ? extra : NULL);
                if (!a || json_object_set_new(caps, main_sets[i], a) < 0)
                        return -ENOMEM;
        }
        uint64_t bounding = result[0], permitted = result[2];
        uint64_t inheritable = bounding;
        json_t *inh = json_object_get(caps, "inheritable");
        if (inh) {
                inheritable = caps_of_json(inh, NULL) & bounding;
                json_t *a = caps_json(inheritable, NULL);
                if (!a || json_object_set_new(caps, "inheritable", a) < 0)
                        return -ENOMEM;
        }
        json_t *amb = json_object_get(caps, "ambient");
        if (amb) {
                uint64_t m = caps_of_json(amb, NULL) & bounding & permitted & inheritable;
                json_t *a = caps_json(m, NULL);
                if (!a || json_object_set_new(caps, "ambient", a) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* ---------------------------------------------------------------- egress host names */

bool moat_env_hostname_ok(const char *host)
{
        if (!host)
                return false;
        size_t n = strlen(host);
        if (n > 0 && host[n - 1] == '.')
                n--;
        if (n == 0 || n > 253)
                return false;
        size_t len = 0;
        bool digits = true;
        for (size_t i = 0; i <= n; i++) {
                char c = i < n ? host[i] : '.';
                if (c == '.') {
                        if (len == 0 || len > 63 || host[i - 1] == '-')
                                return false;
                        if (i == n && digits)
                                return false; /* an all-numeric last label: an address, not a name */
                        len = 0;
                        digits = true;
                        continue;
                }
                if (!isalnum((unsigned char)c) && c != '-')
                        return false;
                if (len == 0 && c == '-')
                        return false;
                if (!isdigit((unsigned char)c))
                        digits = false;
                len++;
        }
        return true;
}

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return x < y ? -1 : x > y;
}

static void addrinfop(struct addrinfo **ai)
{
        if (*ai)
                freeaddrinfo(*ai);
}

int moat_env_egress_resolve(const struct moat_env_service *s, const struct moat_env_egress *x, char ***out,
                            struct moat_error **err)
{
        if (!s || !x || !out)
                return -EINVAL;
        if (x->is_cidr)
                return moat_error_input(err, -EINVAL, "service '%s': egress '%s' is an address, not a host name",
                                        s->name, x->host ? x->host : "");
        if (!moat_env_hostname_ok(x->host))
                return moat_error_input(err, -EINVAL, "service '%s': egress '%s' is not a valid host name (RFC 1123 "
                                        "labels of letters, digits and '-', at most 253 characters)", s->name,
                                        x->host ? x->host : "");
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
        _cleanup_(addrinfop) struct addrinfo *res = NULL;
        int g = getaddrinfo(x->host, NULL, &hints, &res);
        if (g != 0) {
                int e;
                switch (g) {
                case EAI_AGAIN:
                        e = -EAGAIN;
                        break;
                case EAI_MEMORY:
                        return -ENOMEM;
                case EAI_SYSTEM:
                        e = errno ? -errno : -EIO;
                        break;
                default: /* EAI_NONAME, EAI_NODATA, EAI_FAIL, EAI_ADDRFAMILY */
                        e = -ENOENT;
                        break;
                }
                return moat_error_input(err, e, "service '%s': egress host '%s' does not resolve to an IPv4 address: %s",
                                        s->name, x->host, g == EAI_SYSTEM ? strerror(-e) : gai_strerror(g));
        }
        size_t n = 0;
        for (struct addrinfo *a = res; a; a = a->ai_next)
                n++;
        _cleanup_free_ uint32_t *addrs = calloc(n ? n : 1, sizeof(*addrs));
        if (!addrs)
                return -ENOMEM;
        size_t k = 0;
        for (struct addrinfo *a = res; a; a = a->ai_next)
                if (a->ai_family == AF_INET && a->ai_addr && a->ai_addrlen >= sizeof(struct sockaddr_in))
                        addrs[k++] = ntohl(((const struct sockaddr_in *)a->ai_addr)->sin_addr.s_addr);
        if (k == 0)
                return moat_error_input(err, -ENOENT, "service '%s': egress host '%s' has no IPv4 address", s->name,
                                        x->host);
        qsort(addrs, k, sizeof(*addrs), cmp_u32);
        _cleanup_strv_ char **v = calloc(1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < k; i++) {
                if (i > 0 && addrs[i] == addrs[i - 1])
                        continue;
                struct in_addr ia = { .s_addr = htonl(addrs[i]) };
                char buf[INET_ADDRSTRLEN + 3];
                if (!inet_ntop(AF_INET, &ia, buf, INET_ADDRSTRLEN))
                        return -errno;
                strcat(buf, "/32");
                if (strv_push(&v, buf) < 0)
                        return -ENOMEM;
        }
        *out = TAKE_PTR(v);
        return 0;
}
