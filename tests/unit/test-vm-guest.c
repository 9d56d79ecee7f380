/* SPDX-License-Identifier: Apache-2.0 */
/* guest/moat-vminit in test mode (--channel-fd N) driven over a socketpair: HELLO, CONFIG,
 * STARTED, STDOUT/STDERR, STDIN, SIGNAL, ERROR, EXIT, and garbage from the host.
 * The binary: $MOAT_VMINIT, else ../guest/moat-vminit next to this test's directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "vm-test.h"
#include "vm/proto.h"

static char vminit[PATH_MAX + 64];

struct session {
        pid_t pid;
        int fd;
        struct moat_vm_reader rd;
        uint32_t hello;
        long started;
        char out[8192], err[8192], error[1024];
        size_t out_len, err_len;
        int exit_code;          /* -1 none */
        bool broken;
};

static void start(struct session *s)
{
        memset(s, 0, sizeof *s);
        s->exit_code = -1;
        s->started = -1;
        s->pid = vm_test_spawn_vminit(vminit, &s->fd);
        moat_vm_reader_init(&s->rd, 0);
}

/* Reads frames until `until` returns true, EXIT, EOF or the timeout. */
static void pump(struct session *s, bool (*until)(struct session *), double timeout)
{
        double end = vm_test_now() + timeout;

        while (s->exit_code < 0 && !s->broken && !(until && until(s)) && vm_test_now() < end) {
                struct pollfd p = { .fd = s->fd, .events = POLLIN };
                poll(&p, 1, 50);
                ssize_t n = moat_vm_reader_fill(&s->rd, s->fd);
                if (n == 0 || (n < 0 && n != -EAGAIN)) {
                        s->broken = true;
                        break;
                }
                uint8_t type;
                const uint8_t *pl;
                size_t len;
                int k;
                while ((k = moat_vm_reader_next(&s->rd, &type, &pl, &len)) > 0) {
                        switch (type) {
                        case MOAT_VM_HELLO:
                                if (len == 4)
                                        s->hello = moat_vm_get_u32(pl);
                                break;
                        case MOAT_VM_STARTED:
                                if (len == 4)
                                        s->started = moat_vm_get_u32(pl);
                                break;
                        case MOAT_VM_STDOUT:
                                if (s->out_len + len < sizeof s->out) {
                                        memcpy(s->out + s->out_len, pl, len);
                                        s->out_len += len;
                                }
                                break;
                        case MOAT_VM_STDERR:
                                if (s->err_len + len < sizeof s->err) {
                                        memcpy(s->err + s->err_len, pl, len);
                                        s->err_len += len;
                                }
                                break;
                        case MOAT_VM_ERROR:
                                snprintf(s->error, sizeof s->error, "%.*s", (int)len, (const char *)pl);
                                break;
                        case MOAT_VM_EXIT:
                                if (len == 4)
                                        s->exit_code = (int)moat_vm_get_u32(pl);
                                break;
                        }
                }
                if (k < 0)
                        s->broken = true;
        }
}

static int finish(struct session *s)
{
        int st = 0;

        close(s->fd);
        for (int i = 0; i < 100; i++) {
                if (waitpid(s->pid, &st, WNOHANG) == s->pid)
                        goto done;
                usleep(50000);
        }
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
        moat_vm_reader_free(&s->rd);
        return -1;
done:
        moat_vm_reader_free(&s->rd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool got_started(struct session *s)
{
        return s->started >= 0;
}

static bool got_out_line(struct session *s)
{
        return memchr(s->out, '\n', s->out_len) != NULL;
}

static void send_config(struct session *s, const char *const *args, const char *const *env, const char *cwd)
{
        struct moat_vm_tlv_writer w = { 0 };

        for (; *args; args++)
                moat_vm_tlv_put_str(&w, MOAT_VM_T_ARG, *args);
        for (; env && *env; env++)
                moat_vm_tlv_put_str(&w, MOAT_VM_T_ENV, *env);
        if (cwd)
                moat_vm_tlv_put_str(&w, MOAT_VM_T_CWD, cwd);
        moat_vm_tlv_put_u32(&w, MOAT_VM_T_UMASK, 022);
        moat_vm_send(s->fd, MOAT_VM_CONFIG, w.buf, w.len);
        moat_vm_tlv_free(&w);
}

static const char *const path_env[] = { "PATH=/usr/bin:/bin", NULL };

static void test_basic(void)
{
        struct session s;
        const char *const args[] = { "/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL };

        start(&s);
        pump(&s, got_started, 0.0);     /* nothing yet: just HELLO when it comes */
        send_config(&s, args, path_env, NULL);
        pump(&s, NULL, 10);
        is_int(s.hello, MOAT_VM_PROTO_VERSION, "HELLO carries the protocol version");
        ok(s.started > 0, "STARTED with a pid (%ld)", s.started);
        is_str(s.out_len ? s.out : "", "out\n", "STDOUT 'out\\n'");
        is_str(s.err_len ? s.err : "", "err\n", "STDERR 'err\\n'");
        is_int(s.exit_code, 3, "EXIT 3");
        is_int(finish(&s), 3, "the init exits with the status too");
}

static void test_env_cwd(void)
{
        struct session s;
        const char *const args[] = { "sh", "-c", "echo \"$FOO:$(pwd):$(umask)\"", NULL };
        const char *const env[] = { "PATH=/usr/bin:/bin", "FOO=bar baz", NULL };

        start(&s);
        send_config(&s, args, env, "/tmp");
        pump(&s, NULL, 10);
        is_str(s.out_len ? s.out : "", "bar baz:/tmp:0022\n", "env, cwd, umask applied; PATH searched");
        is_int(s.exit_code, 0, "EXIT 0");
        finish(&s);
}

static void test_stdin(void)
{
        struct session s;
        const char *const args[] = { "cat", NULL };

        start(&s);
        send_config(&s, args, path_env, NULL);
        pump(&s, got_started, 10);
        ok(s.started > 0, "cat STARTED");
        moat_vm_send(s.fd, MOAT_VM_STDIN, "hello cat\n", 10);
        pump(&s, got_out_line, 10);
        is_str(s.out_len ? s.out : "", "hello cat\n", "STDIN forwarded, echoed back");
        moat_vm_send(s.fd, MOAT_VM_STDIN, NULL, 0);
        pump(&s, NULL, 10);
        is_int(s.exit_code, 0, "empty STDIN closes it: EXIT 0");
        finish(&s);
}

static void test_signal(void)
{
        struct session s;
        const char *const args[] = { "sleep", "100", NULL };
        uint8_t sig[4];

        start(&s);
        send_config(&s, args, path_env, NULL);
        pump(&s, got_started, 10);
        ok(s.started > 0, "sleep STARTED");
        moat_vm_put_u32(sig, SIGTERM);
        double t0 = vm_test_now();
        moat_vm_send(s.fd, MOAT_VM_SIGNAL, sig, 4);
        pump(&s, NULL, 10);
        is_int(s.exit_code, 143, "SIGNAL 15: EXIT 143");
        ok(vm_test_now() - t0 < 5, "promptly");
        finish(&s);
}

static void test_missing(void)
{
        struct session s;
        const char *const args[] = { "no-such-command-xyz", NULL };
        const char *const args2[] = { "/dev/null", NULL };

        start(&s);
        send_config(&s, args, path_env, NULL);
        pump(&s, NULL, 10);
        contains(s.error, "no-such-command-xyz", "ERROR names the command");
        is_int(s.started, -1, "no STARTED");
        is_int(s.exit_code, 127, "EXIT 127");
        finish(&s);

        start(&s);
        send_config(&s, args2, path_env, NULL);
        pump(&s, NULL, 10);
        ok(s.error[0] != 0, "not executable: ERROR (%s)", s.error);
        is_int(s.exit_code, 126, "EXIT 126");
        finish(&s);

        start(&s);
        send_config(&s, (const char *const[]){ "true", NULL }, path_env, "/no/such/dir");
        pump(&s, NULL, 10);
        contains(s.error, "/no/such/dir", "a missing cwd: ERROR names it");
        is_int(s.exit_code, 1, "EXIT 1");
        finish(&s);
}

static void test_garbage(void)
{
        struct session s;
        uint8_t bad[8] = { 0xff, 0xff, 0xff, 0x7f, MOAT_VM_CONFIG, 0, 0, 0 };

        /* a bad length instead of CONFIG */
        start(&s);
        (void)!write(s.fd, bad, sizeof bad);
        pump(&s, NULL, 10);
        contains(s.error, "bad frame", "bad frame length before CONFIG: ERROR");
        is_int(s.exit_code, 1, "and EXIT 1");
        is_int(finish(&s), 1, "the init exits 1, no crash");

        /* a CONFIG of broken TLVs */
        start(&s);
        uint8_t tlv[6] = { MOAT_VM_T_ARG, 0, 0xff, 0xff, 0, 0 };
        moat_vm_send(s.fd, MOAT_VM_CONFIG, tlv, sizeof tlv);
        pump(&s, NULL, 10);
        contains(s.error, "TLV", "truncated TLV: ERROR (%s)", s.error);
        is_int(finish(&s), 1, "the init exits 1");

        /* NET of the wrong size, or with a prefix out of range: refused, named */
        static const struct {
                uint8_t v[10];
                size_t len;
        } nets[] = { { { 10, 0, 0, 2, 24, 10, 0, 0 }, 8 }, { { 10, 0, 0, 2, 31, 10, 0, 0, 1 }, 9 },
                     { { 10, 0, 0, 2, 0, 10, 0, 0, 1 }, 9 }, { { 10, 0, 0, 2, 24, 10, 0, 0, 1, 0 }, 10 } };
        for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++) {
                struct moat_vm_tlv_writer w = { 0 };
                moat_vm_tlv_put_str(&w, MOAT_VM_T_ARG, "/bin/true");
                moat_vm_tlv_put(&w, MOAT_VM_T_NET, nets[i].v, nets[i].len);
                start(&s);
                moat_vm_send(s.fd, MOAT_VM_CONFIG, w.buf, w.len);
                moat_vm_tlv_free(&w);
                pump(&s, NULL, 10);
                contains(s.error, "bad NET", "NET case %zu (%zu bytes): ERROR names it", i, nets[i].len);
                is_int(finish(&s), 1, "... and the init exits 1");
        }
        {
                /* a good NET parses (test mode configures no network: the process just runs) */
                struct moat_vm_tlv_writer w = { 0 };
                const uint8_t v[9] = { 10, 0, 0, 2, 24, 10, 0, 0, 1 };
                moat_vm_tlv_put_str(&w, MOAT_VM_T_ARG, "/bin/true");
                moat_vm_tlv_put(&w, MOAT_VM_T_NET, v, sizeof v);
                start(&s);
                moat_vm_send(s.fd, MOAT_VM_CONFIG, w.buf, w.len);
                moat_vm_tlv_free(&w);
                pump(&s, NULL, 10);
                is_str(s.error, "", "a good NET is taken");
                is_int(finish(&s), 0, "... and the process runs");
        }

        /* garbage while the process runs: it is killed, the init ends without crashing */
        start(&s);
        send_config(&s, (const char *const[]){ "sleep", "100", NULL }, path_env, NULL);
        pump(&s, got_started, 10);
        ok(s.started > 0, "sleep STARTED");
        (void)!write(s.fd, bad, sizeof bad);
        int code = finish(&s);
        is_int(code, 1, "bad frame length mid-run: the init exits 1 (not a crash)");
        ok(kill((pid_t)s.started, 0) < 0 && errno == ESRCH, "and the process is gone");

        /* the host goes away */
        start(&s);
        send_config(&s, (const char *const[]){ "sleep", "100", NULL }, path_env, NULL);
        pump(&s, got_started, 10);
        shutdown(s.fd, SHUT_WR);
        is_int(finish(&s), 1, "host EOF mid-run: the init exits 1");
}

static void test_terminal(void)
{
        struct session s;
        struct moat_vm_tlv_writer w = { 0 };

        start(&s);
        moat_vm_tlv_put_str(&w, MOAT_VM_T_ARG, "/bin/sh");
        moat_vm_tlv_put_str(&w, MOAT_VM_T_ARG, "-c");
        moat_vm_tlv_put_str(&w, MOAT_VM_T_ARG, "read x; stty size; test -t 0 && echo tty");
        moat_vm_tlv_put_str(&w, MOAT_VM_T_ENV, "PATH=/usr/bin:/bin");
        moat_vm_tlv_put(&w, MOAT_VM_T_TERMINAL, NULL, 0);
        moat_vm_send(s.fd, MOAT_VM_CONFIG, w.buf, w.len);
        moat_vm_tlv_free(&w);
        pump(&s, got_started, 10);
        uint8_t rs[4] = { 33, 0, 101, 0 };
        moat_vm_send(s.fd, MOAT_VM_RESIZE, rs, 4);
        moat_vm_send(s.fd, MOAT_VM_STDIN, "go\n", 3);
        pump(&s, NULL, 10);
        s.out[s.out_len] = 0;
        contains(s.out, "33 101", "TERMINAL: a pty, RESIZE applied (stty size: 33 101)");
        contains(s.out, "tty", "stdout through the pty");
        is_int(s.exit_code, 0, "EXIT 0");
        finish(&s);
}

static void put_insn(struct moat_vm_tlv_writer *w, uint8_t *prog, int *n, uint16_t code, uint8_t jt, uint8_t jf,
                     uint32_t k)
{
        (void)w;
        uint8_t *p = prog + 8 * (*n)++;
        moat_vm_put_u16(p, code);
        p[2] = jt;
        p[3] = jf;
        moat_vm_put_u32(p + 4, k);
}

static void test_creds(void)
{
        struct session s;
        struct moat_vm_tlv_writer w = { 0 };
        uint8_t user[8], rl[20], caps[40] = { 0 }, prog[64];
        int n = 0;

        if (geteuid() != 0) {
                ok(1, "# SKIP USER/CAPS need root");
                return;
        }
        start(&s);
        moat_vm_tlv_put_str(&w, MOAT_VM_T_ARG, "/bin/sh");
        moat_vm_tlv_put_str(&w, MOAT_VM_T_ARG, "-c");
        moat_vm_tlv_put_str(&w, MOAT_VM_T_ARG,
                            "echo $(id -u) $(id -g) $(id -G) $(ulimit -n); grep -E '^(CapBnd|CapAmb|CapEff|NoNewPrivs)' "
                            "/proc/self/status; uname >/dev/null 2>&1 || echo uname-EPERM");
        moat_vm_tlv_put_str(&w, MOAT_VM_T_ENV, "PATH=/usr/bin:/bin");
        moat_vm_put_u32(user, 65534);
        moat_vm_put_u32(user + 4, 65533);
        moat_vm_tlv_put(&w, MOAT_VM_T_USER, user, 8);
        moat_vm_tlv_put_u32(&w, MOAT_VM_T_GROUP, 4242);
        moat_vm_put_u32(rl, 7);         /* RLIMIT_NOFILE */
        moat_vm_put_u64(rl + 4, 123);
        moat_vm_put_u64(rl + 12, 456);
        moat_vm_tlv_put(&w, MOAT_VM_T_RLIMIT, rl, 20);
        moat_vm_put_u64(caps, 1ULL << 13 | 1ULL << 10);       /* bounding: NET_RAW, NET_BIND_SERVICE */
        for (int i = 1; i < 5; i++)
                moat_vm_put_u64(caps + 8 * i, 1ULL << 10);    /* NET_BIND_SERVICE everywhere */
        moat_vm_tlv_put(&w, MOAT_VM_T_CAPS, caps, 40);
        moat_vm_tlv_put(&w, MOAT_VM_T_NO_NEW_PRIVS, NULL, 0);
        /* uname -> EPERM, everything else allowed */
        put_insn(&w, prog, &n, 0x20, 0, 0, 0);                       /* ld [nr] */
        put_insn(&w, prog, &n, 0x15, 0, 1, 63);                      /* jeq __NR_uname */
        put_insn(&w, prog, &n, 0x06, 0, 0, 0x00050000u | EPERM);     /* ret ERRNO(EPERM) */
        put_insn(&w, prog, &n, 0x06, 0, 0, 0x7fff0000u);             /* ret ALLOW */
        moat_vm_tlv_put(&w, MOAT_VM_T_SECCOMP, prog, (size_t)n * 8);
        moat_vm_send(s.fd, MOAT_VM_CONFIG, w.buf, w.len);
        moat_vm_tlv_free(&w);
        pump(&s, NULL, 10);
        s.out[s.out_len] = 0;
        contains(s.out, "65534 65533 65533 4242 123\n", "USER, GROUP, RLIMIT applied (%s)", s.error);
        contains(s.out, "CapEff:\t0000000000000400", "CAPS: effective");
        contains(s.out, "CapBnd:\t0000000000002400", "CAPS: bounding");
        contains(s.out, "CapAmb:\t0000000000000400", "CAPS: ambient");
        contains(s.out, "NoNewPrivs:\t1", "NO_NEW_PRIVS");
        contains(s.out, "uname-EPERM", "SECCOMP installed");
        is_int(s.exit_code, 0, "EXIT 0");
        finish(&s);
}

int main(void)
{
        if (vm_test_find_vminit(vminit, sizeof vminit) < 0)
                return skip_all("moat-vminit not built (set MOAT_VMINIT)");
        test_basic();
        test_env_cwd();
        test_stdin();
        test_signal();
        test_missing();
        test_garbage();
        test_terminal();
        test_creds();
        return done_testing();
}
