/* SPDX-License-Identifier: Apache-2.0 */
/* Bind mounts into a VM (vm/virtiofs.h): config.json binds -> shares and MOUNT SHARE TLVs in
 * order, the sources' check (missing, file, dir, neither; virtiofsd missing), virtiofsd's argv,
 * QEMU's argv with and without shares. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/util.h"
#include "oci/spec.h"
#include "tap.h"
#include "vm-test.h"
#include "vm/config.h"
#include <sys/types.h>
#include "vm/proto.h"
#include "vm/qemu.h"
#include "vm/virtiofs.h"

static char tmpdir[] = "/tmp/moat-vmshare-XXXXXX";

/* The MOUNT TLVs of a CONFIG as "kind:source:target:options" lines. */
static char *mounts_of(const struct moat_vm_config *c)
{
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);
        struct moat_vm_tlv_iter it = { .p = c->tlv, .end = c->tlv + c->len };
        uint16_t tag;
        const uint8_t *v;
        size_t l;

        while (moat_vm_tlv_next(&it, &tag, &v, &l) > 0) {
                if (tag != MOAT_VM_T_MOUNT)
                        continue;
                const uint8_t *p = v + 1;
                fprintf(f, "%u", v[0]);
                for (int i = 0; i < 3; i++) {
                        size_t n = moat_vm_get_u16(p);
                        fprintf(f, ":%.*s", (int)n, (const char *)p + 2);
                        p += 2 + n;
                }
                fprintf(f, "\n");
        }
        fclose(f);
        return s;
}

static void test_config(void)
{
        const char *json =
                "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"/r\"}, \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"},"
                " \"mounts\": ["
                "  {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},"
                "  {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"/srv/data\", \"options\": [\"rbind\"]},"
                "  {\"destination\": \"/data/tmp\", \"type\": \"tmpfs\", \"source\": \"tmpfs\"},"
                "  {\"destination\": \"/etc/hosts\", \"type\": \"bind\", \"source\": \"/h/hosts\","
                "   \"options\": [\"bind\", \"ro\", \"nosuid\", \"nodev\"]}"
                " ]}";
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_spec *s = NULL;
        struct moat_vm_config c;

        if (moat_spec_parse(json, strlen(json), "config.json", &s, &err) < 0) {
                ok(0, "config.json parses: %s", err && err->msg ? err->msg : "?");
                return;
        }
        is_int(moat_vm_config_build(s, &c, &err), 0, "CONFIG with two binds");
        is_int((int)c.n_shares, 2, "two shares");
        if (c.n_shares == 2) {
                is_str(c.shares[0].tag, "moat0", "share 0 named moat0");
                is_str(c.shares[0].source, "/srv/data", "... its source");
                ok(!c.shares[0].read_only && c.shares[0].recursive, "... rw, rbind");
                is_str(c.shares[1].target, "/etc/hosts", "share 1 onto /etc/hosts");
                ok(c.shares[1].read_only && !c.shares[1].recursive, "... ro, bind");
        }
        _cleanup_free_ char *m = mounts_of(&c);
        char want[256];
        snprintf(want, sizeof want, "%d:proc:/proc:\n%d:moat0:/data:\n%d:tmpfs:/data/tmp:\n%d:moat1:/etc/hosts:ro,nosuid,nodev\n",
                 MOAT_VM_M_PROC, MOAT_VM_M_SHARE, MOAT_VM_M_TMPFS, MOAT_VM_M_SHARE);
        is_str(m, want, "MOUNT TLVs: the shares in their place among the others, with their options");
        moat_vm_config_free(&c);
        moat_spec_free(s);
}

static void touch(const char *path)
{
        FILE *f = fopen(path, "w");
        if (f)
                fclose(f);
}

static void test_check(void)
{
        _cleanup_free_ char *dir = NULL, *file = NULL, *fifo = NULL, *link = NULL, *fake = NULL;
        _cleanup_error_ struct moat_error *err = NULL;

        if (asprintf(&dir, "%s/d", tmpdir) < 0 || asprintf(&file, "%s/f", tmpdir) < 0 ||
            asprintf(&fifo, "%s/p", tmpdir) < 0 || asprintf(&link, "%s/l", tmpdir) < 0 ||
            asprintf(&fake, "%s/virtiofsd", tmpdir) < 0)
                abort();
        mkdir(dir, 0755);
        touch(file);
        mkfifo(fifo, 0600);
        (void)!symlink("d", link);
        touch(fake);
        chmod(fake, 0755);
        setenv("MOAT_VM_VIRTIOFSD", fake, 1);

        struct moat_vm_share sh[2] = {
                { .tag = "moat0", .source = strdup(link), .target = "/a" },
                { .tag = "moat1", .source = strdup(file), .target = "/b" },
        };
        is_int(moat_vm_shares_check(sh, 2, &err), 0, "a dir (through a symlink) and a file");
        is_str(sh[0].source, dir, "the symlink resolved");
        ok(!sh[0].is_file && sh[1].is_file, "dir and file told apart");
        free(sh[0].source);
        free(sh[1].source);

        struct moat_vm_share miss = { .tag = "moat0", .source = strdup("/nonexistent/src"), .target = "/x" };
        is_int(moat_vm_shares_check(&miss, 1, &err), -ENOENT, "a missing source: -ENOENT");
        contains(err ? err->msg : "", "'/nonexistent/src' (for '/x') does not exist", "... naming it and its target");
        moat_error_freep(&err);
        free(miss.source);

        struct moat_vm_share odd = { .tag = "moat0", .source = strdup(fifo), .target = "/x" };
        is_int(moat_vm_shares_check(&odd, 1, &err), -EINVAL, "a fifo: -EINVAL");
        contains(err ? err->msg : "", "neither a directory nor a regular file", "... said so");
        moat_error_freep(&err);
        free(odd.source);

        setenv("MOAT_VM_VIRTIOFSD", "/nonexistent/virtiofsd", 1);
        struct moat_vm_share one = { .tag = "moat0", .source = strdup(dir), .target = "/a" };
        is_int(moat_vm_shares_check(&one, 1, &err), -ENOENT, "virtiofsd missing: -ENOENT");
        contains(err ? err->msg : "", "'/nonexistent/virtiofsd' does not exist", "... naming it");
        contains(err ? err->msg : "", "qemu-system-common", "... and its package");
        moat_error_freep(&err);
        free(one.source);
        is_int(moat_vm_shares_check(NULL, 0, &err), 0, "no share: virtiofsd not needed");
        unsetenv("MOAT_VM_VIRTIOFSD");
        is_str(moat_vm_virtiofsd_path(), "/usr/lib/qemu/virtiofsd", "the default virtiofsd");
}

static void test_vfsd_argv(void)
{
        _cleanup_strv_ char **v = NULL;
        _cleanup_free_ char *s = NULL;

        is_int(moat_vm_vfsd_argv("/usr/lib/qemu/virtiofsd", "/st/c1/shares", &v), 0, "virtiofsd argv");
        s = vm_test_join(v);
        is_str(s, "/usr/lib/qemu/virtiofsd --fd=3 -o source=/st/c1/shares -o cache=none -o sandbox=namespace "
                  "-o log_level=warn --rlimit-nofile=0", "the socket as fd 3, the staging dir, cache=none, sandboxed");
        strv_free(TAKE_PTR(v));
        is_int(moat_vm_vfsd_argv("x", "/a,b/shares", &v), -EINVAL, "a comma in the path: -EINVAL");
}

static void test_qemu_argv(void)
{
        struct moat_vm_qemu_opts o = {
                .accel = MOAT_VM_ACCEL_KVM, .mem_mib = 300, .kernel = "/k", .ctl_socket = "/s",
                .root_disk = "/d/root.ext4", .fs_socket = "/st/a,b/vfs.sock", .fs_tag = MOAT_VM_SHARES_TAG,
        };
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_strv_ char **v = NULL;
        _cleanup_free_ char *s = NULL;

        is_int(moat_vm_qemu_argv(&o, &v, &err), 0, "argv with shares");
        s = vm_test_join(v);
        printf("# %s\n", s);
        contains(s, "-M microvm,x-option-roms=off,isa-serial=off,pcie=on,rtc=on,memory-backend=mem ",
                 "microvm's memory from the backend");
        contains(s, "-object memory-backend-memfd,id=mem,size=300M,share=on ", "a shared memfd of -m's size");
        contains(s, "-chardev socket,id=vfs,path=/st/a,,b/vfs.sock -device vhost-user-fs-pci,chardev=vfs,tag=moat-shares",
                 "vhost-user-fs on the socket (comma doubled), with the tag");
        contains(s, "-sandbox on,", "QEMU's sandbox still on");
        strv_free(TAKE_PTR(v));
        free(TAKE_PTR(s));

        o.fs_tag = "a,b";
        is_int(moat_vm_qemu_argv(&o, &v, &err), -EINVAL, "a tag with a comma: -EINVAL");
        moat_error_freep(&err);

        o.fs_socket = NULL;
        is_int(moat_vm_qemu_argv(&o, &v, &err), 0, "argv without shares");
        s = vm_test_join(v);
        ok(!strstr(s, "memory-backend") && !strstr(s, "vhost-user") && !strstr(s, "id=vfs"),
           "no shared memory and no vhost-user-fs without shares");
}

int main(void)
{
        if (!mkdtemp(tmpdir))
                return skip_all("mkdtemp failed");
        test_config();
        test_check();
        test_vfsd_argv();
        test_qemu_argv();
        rm_rf_at(AT_FDCWD, tmpdir);
        return done_testing();
}
