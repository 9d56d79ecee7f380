/* SPDX-License-Identifier: Apache-2.0 */
/* The mount option table: every option maps to the right flags. */
#include <errno.h>
#include <stdio.h>
#include <sys/mount.h>

#include "core/error.h"
#include "core/util.h"
#include "oci/spec.h"
#include "spec-test-util.h"
#include "tap.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

static const struct {
        const char *opt;
        unsigned long flags, clear, propagation;
        uint64_t attr_set, attr_clr;
} table[] = {
        { "defaults", 0, 0, 0, 0, 0 },
        { "ro", MS_RDONLY, 0, 0, 0, 0 },
        { "rw", 0, MS_RDONLY, 0, 0, 0 },
        { "suid", 0, MS_NOSUID, 0, 0, 0 },
        { "nosuid", MS_NOSUID, 0, 0, 0, 0 },
        { "dev", 0, MS_NODEV, 0, 0, 0 },
        { "nodev", MS_NODEV, 0, 0, 0, 0 },
        { "exec", 0, MS_NOEXEC, 0, 0, 0 },
        { "noexec", MS_NOEXEC, 0, 0, 0, 0 },
        { "sync", MS_SYNCHRONOUS, 0, 0, 0, 0 },
        { "async", 0, MS_SYNCHRONOUS, 0, 0, 0 },
        { "dirsync", MS_DIRSYNC, 0, 0, 0, 0 },
        { "remount", MS_REMOUNT, 0, 0, 0, 0 },
        { "mand", MS_MANDLOCK, 0, 0, 0, 0 },
        { "nomand", 0, MS_MANDLOCK, 0, 0, 0 },
        { "atime", 0, MS_NOATIME, 0, 0, 0 },
        { "noatime", MS_NOATIME, 0, 0, 0, 0 },
        { "diratime", 0, MS_NODIRATIME, 0, 0, 0 },
        { "nodiratime", MS_NODIRATIME, 0, 0, 0, 0 },
        { "relatime", MS_RELATIME, 0, 0, 0, 0 },
        { "norelatime", 0, MS_RELATIME, 0, 0, 0 },
        { "strictatime", MS_STRICTATIME, 0, 0, 0, 0 },
        { "nostrictatime", 0, MS_STRICTATIME, 0, 0, 0 },
        { "lazytime", MS_LAZYTIME, 0, 0, 0, 0 },
        { "nolazytime", 0, MS_LAZYTIME, 0, 0, 0 },
        { "iversion", MS_I_VERSION, 0, 0, 0, 0 },
        { "noiversion", 0, MS_I_VERSION, 0, 0, 0 },
        { "nosymfollow", MS_NOSYMFOLLOW, 0, 0, 0, 0 },
        { "bind", MS_BIND, 0, 0, 0, 0 },
        { "rbind", MS_BIND | MS_REC, 0, 0, 0, 0 },
        { "private", 0, 0, MS_PRIVATE, 0, 0 },
        { "rprivate", 0, 0, MS_PRIVATE | MS_REC, 0, 0 },
        { "shared", 0, 0, MS_SHARED, 0, 0 },
        { "rshared", 0, 0, MS_SHARED | MS_REC, 0, 0 },
        { "slave", 0, 0, MS_SLAVE, 0, 0 },
        { "rslave", 0, 0, MS_SLAVE | MS_REC, 0, 0 },
        { "unbindable", 0, 0, MS_UNBINDABLE, 0, 0 },
        { "runbindable", 0, 0, MS_UNBINDABLE | MS_REC, 0, 0 },
        { "rro", 0, 0, 0, MOUNT_ATTR_RDONLY, 0 },
        { "rrw", 0, 0, 0, 0, MOUNT_ATTR_RDONLY },
        { "rnosuid", 0, 0, 0, MOUNT_ATTR_NOSUID, 0 },
        { "rsuid", 0, 0, 0, 0, MOUNT_ATTR_NOSUID },
        { "rnodev", 0, 0, 0, MOUNT_ATTR_NODEV, 0 },
        { "rdev", 0, 0, 0, 0, MOUNT_ATTR_NODEV },
        { "rnoexec", 0, 0, 0, MOUNT_ATTR_NOEXEC, 0 },
        { "rexec", 0, 0, 0, 0, MOUNT_ATTR_NOEXEC },
        { "rnodiratime", 0, 0, 0, MOUNT_ATTR_NODIRATIME, 0 },
        { "rdiratime", 0, 0, 0, 0, MOUNT_ATTR_NODIRATIME },
        { "rrelatime", 0, 0, 0, MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME },
        { "rnorelatime", 0, 0, 0, 0, MOUNT_ATTR_RELATIME },
        { "rnoatime", 0, 0, 0, MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME },
        { "ratime", 0, 0, 0, 0, MOUNT_ATTR_NOATIME },
        { "rstrictatime", 0, 0, 0, MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME },
        { "rnostrictatime", 0, 0, 0, 0, MOUNT_ATTR_STRICTATIME },
        { "rnosymfollow", 0, 0, 0, MOUNT_ATTR_NOSYMFOLLOW, 0 },
        { "rsymfollow", 0, 0, 0, 0, MOUNT_ATTR_NOSYMFOLLOW },
        { "tmpcopyup", 0, 0, 0, 0, 0 },
        { "idmap", 0, 0, 0, 0, 0 },
        { "ridmap", 0, 0, 0, 0, 0 },
};

static void parse_one(struct moat_mount *m, const char *type, char **opts)
{
        memset(m, 0, sizeof(*m));
        m->type = (char *)type;
        m->options = opts;
}

static void test_table(void)
{
        for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
                char *opts[] = { (char *)table[i].opt, NULL };
                struct moat_mount m;
                _cleanup_error_ struct moat_error *err = NULL;
                parse_one(&m, "tmpfs", opts);
                int r = moat_mount_parse_options(&m, "mounts[0].options", &err);
                ok(r == 0 && m.flags == table[i].flags && m.clear_flags == table[i].clear &&
                           m.propagation == table[i].propagation && m.attr_set == table[i].attr_set &&
                           m.attr_clr == table[i].attr_clr && m.data == NULL,
                   "option '%s'", table[i].opt);
                if (STREQ(table[i].opt, "bind") || STREQ(table[i].opt, "rbind"))
                        ok(m.bind, "'%s' sets bind", table[i].opt);
                if (STREQ(table[i].opt, "tmpcopyup"))
                        ok(m.tmpcopyup, "tmpcopyup flag");
                if (STREQ(table[i].opt, "idmap"))
                        ok(m.idmap && !m.ridmap, "idmap flag");
                if (STREQ(table[i].opt, "ridmap"))
                        ok(m.ridmap && !m.idmap, "ridmap flag");
                free(m.data);
        }
}

static void test_combinations(void)
{
        struct moat_mount m;
        _cleanup_error_ struct moat_error *err = NULL;

        char *o1[] = { "nosuid", "mode=755", "ro", "size=65536k", "rw", "", NULL };
        parse_one(&m, "tmpfs", o1);
        is_int(moat_mount_parse_options(&m, "x", &err), 0, "mixed options parse");
        is_str(m.data, "mode=755,size=65536k", "unknown options joined into data");
        ok(m.flags == MS_NOSUID && m.clear_flags == MS_RDONLY, "rw after ro clears MS_RDONLY");
        free(m.data);

        char *o2[] = { "ro", NULL };
        parse_one(&m, "bind", o2);
        moat_mount_parse_options(&m, "x", &err);
        ok(m.bind && m.flags == (MS_BIND | MS_RDONLY), "type bind sets MS_BIND");
        free(m.data);

        char *o3[] = { "shared", "rslave", NULL };
        parse_one(&m, "none", o3);
        moat_mount_parse_options(&m, "x", &err);
        ok(m.propagation == (MS_SLAVE | MS_REC), "last propagation wins");
        ok(!m.bind, "no bind");
        free(m.data);

        char *o4[] = { "rro", "rrw", "rnoatime", "rnosuid", NULL };
        parse_one(&m, "bind", o4);
        moat_mount_parse_options(&m, "x", &err);
        ok(m.attr_set == (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOATIME | MOUNT_ATTR_NOSUID) &&
                   m.attr_clr == (MOUNT_ATTR_RDONLY | MOUNT_ATTR__ATIME),
           "recursive attributes accumulate as runc");
        free(m.data);

        char *o5[] = { "uid=1000", "gid=1000", "context=\"system_u:object_r:x:s0\"", NULL };
        parse_one(&m, "tmpfs", o5);
        moat_mount_parse_options(&m, "x", &err);
        is_str(m.data, "uid=1000,gid=1000,context=\"system_u:object_r:x:s0\"", "data keeps order and quoting");
        free(m.data);

        parse_one(&m, NULL, NULL);
        is_int(moat_mount_parse_options(&m, "x", &err), 0, "no options, no type");
        ok(m.flags == 0 && !m.data, "nothing set");
}

static void test_in_config(void)
{
        _cleanup_free_ char *json = q("{'ociVersion': '1.2.0', 'root': {'path': 'r'}, 'mounts': ["
                                      " {'destination': '/a', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['tmpcopyup', 'nodev', 'mode=700']},"
                                      " {'destination': '/b', 'source': '/x', 'options': ['rbind', 'idmap'],"
                                      "  'uidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 10}],"
                                      "  'gidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 10}]}]}");
        struct moat_spec *s = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        if (!is_int(moat_spec_parse(json, strlen(json), "config.json", &s, &err), 0, "mounts in a config"))
                return;
        ok(s->mounts[0].tmpcopyup && s->mounts[0].flags == MS_NODEV, "tmpcopyup mount");
        is_str(s->mounts[0].data, "mode=700", "its data");
        ok(s->mounts[1].bind && s->mounts[1].idmap && s->mounts[1].flags == (MS_BIND | MS_REC), "idmapped rbind");
        ok(!s->mounts[1].type, "type may be absent");
        moat_spec_free(s);
}

int main(void)
{
        test_table();
        test_combinations();
        test_in_config();
        return done_testing();
}
