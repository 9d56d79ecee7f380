/* SPDX-License-Identifier: Apache-2.0 */
/* config.json -> the guest's CONFIG (vm/config.h): the network annotations of a VM on an
 * environment's bridge become one NET TLV; broken ones are refused, named. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "oci/spec.h"
#include "tap.h"
#include "vm/config.h"
#include "vm/proto.h"

static int build(const char *annotations, struct moat_vm_config *c, struct moat_error **err)
{
        _cleanup_free_ char *json = NULL;
        struct moat_spec *s = NULL;
        if (asprintf(&json,
                     "{\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"/r\"}, \"process\": {\"args\": [\"/bin/true\"], "
                     "\"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0}}, \"annotations\": {%s}}",
                     annotations) < 0)
                abort();
        int r = moat_spec_parse(json, strlen(json), "config.json", &s, err);
        if (r >= 0)
                r = moat_vm_config_build(s, c, err);
        moat_spec_free(s);
        return r;
}

/* The NET TLV's value, or NULL. */
static const uint8_t *find_net(const struct moat_vm_config *c, size_t *len)
{
        struct moat_vm_tlv_iter it = { c->tlv, c->tlv + c->len };
        uint16_t tag;
        const uint8_t *v;
        while (moat_vm_tlv_next(&it, &tag, &v, len) > 0)
                if (tag == MOAT_VM_T_NET)
                        return v;
        return NULL;
}

static void test_net(void)
{
        struct moat_vm_config c;
        _cleanup_error_ struct moat_error *err = NULL;
        size_t len = 0;

        is_int(build("\"moat.isolation\": \"vm\"", &c, &err), 0, "no network annotations");
        ok(!c.net.present && !find_net(&c, &len), "... no network, no NET");
        moat_vm_config_free(&c);

        is_int(build("\"moat.network.environment\": \"shop\", \"moat.network.address\": \"10.89.3.7/24\", "
                     "\"moat.network.gateway\": \"10.89.3.1\"", &c, &err), 0, "the three network annotations");
        ok(c.net.present, "a network");
        is_str(c.net.env, "shop", "... of environment 'shop'");
        is_int(c.net.prefix, 24, "... /24");
        is_int((int)(ntohl(c.net.addr.s_addr) & 0xff), 7, "... the address");
        const uint8_t *v = find_net(&c, &len);
        is_int((int)len, 9, "one NET TLV of 9 bytes");
        if (v && len == 9) {
                const uint8_t want[9] = { 10, 89, 3, 7, 24, 10, 89, 3, 1 };
                ok(memcmp(v, want, 9) == 0, "address, prefix, gateway in network byte order");
        }
        moat_vm_config_free(&c);

        static const struct {
                const char *ann, *want;
        } bad[] = {
                { "\"moat.network.environment\": \"shop\"", "go together" },
                { "\"moat.network.address\": \"10.0.0.2/24\", \"moat.network.gateway\": \"10.0.0.1\"", "go together" },
                { "\"moat.network.environment\": \"\", \"moat.network.address\": \"10.0.0.2/24\", "
                  "\"moat.network.gateway\": \"10.0.0.1\"", "go together" },
                { "\"moat.network.environment\": \"e\", \"moat.network.address\": \"10.0.0.2\", "
                  "\"moat.network.gateway\": \"10.0.0.1\"", "'moat.network.address': '10.0.0.2' is not" },
                { "\"moat.network.environment\": \"e\", \"moat.network.address\": \"10.0.0.2/31\", "
                  "\"moat.network.gateway\": \"10.0.0.1\"", "'10.0.0.2/31' is not" },
                { "\"moat.network.environment\": \"e\", \"moat.network.address\": \"10.0.0.999/24\", "
                  "\"moat.network.gateway\": \"10.0.0.1\"", "is not an IPv4 address" },
                { "\"moat.network.environment\": \"e\", \"moat.network.address\": \"10.0.0.2/24\", "
                  "\"moat.network.gateway\": \"gw\"", "'moat.network.gateway': 'gw'" },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                moat_error_freep(&err);
                ok(build(bad[i].ann, &c, &err) < 0, "bad: %s", bad[i].ann);
                contains(err ? err->msg : NULL, bad[i].want, "... says %s", bad[i].want);
        }
}

int main(void)
{
        test_net();
        return done_testing();
}
