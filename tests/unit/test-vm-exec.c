/* SPDX-License-Identifier: Apache-2.0 */
/* Exec sessions without a VM: guest/moat-vminit in test mode (--channel-fd N) runs a main
 * process; EXEC_* frames start more (output, stdin, signals, statuses, errors, the bound of
 * MOAT_VM_MAX_EXECS, a bad request, the main process's end).  Then the host's side: a small
 * monitor (vm/exec.h's hooks, as vm.c uses them) between a real moat-vminit and
 * moat_vm_exec, the client `moat-runtime exec` uses; and a guest that breaks the rules. */
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
#include "linux/terminal.h"
#include "vm/config.h"
#include "vm/exec.h"
#include "vm/proto.h"

static char vminit[PATH_MAX + 64];

#define NS 80
struct sess {
        bool used;
        long started;
        char out[4096], err[4096], error[512];
        size_t out_len, err_len;
        int exit_code;
        int order;              /* when EXEC_EXIT came (frame counter) */
};

struct guest {
        pid_t pid;
        int fd;
        struct moat_vm_reader rd;
        long started;
        int exit_code, exit_order, frames;
        bool broken;
        struct sess s[NS + 1];  /* by session id */
};

static void tlv_process(struct moat_vm_tlv_writer *w, const char *const *args)
{
        for (; *args; args++)
                moat_vm_tlv_put_str(w, MOAT_VM_T_ARG, *args);
        moat_vm_tlv_put_str(w, MOAT_VM_T_ENV, "PATH=/usr/bin:/bin");
        moat_vm_tlv_put_u32(w, MOAT_VM_T_UMASK, 022);
}

static void send_config(int fd, const char *const *args)
{
        struct moat_vm_tlv_writer w = { 0 };
        tlv_process(&w, args);
        moat_vm_send(fd, MOAT_VM_CONFIG, w.buf, w.len);
        moat_vm_tlv_free(&w);
}

static void send_exec(struct guest *g, uint32_t id, const char *const *args)
{
        struct moat_vm_tlv_writer w = { 0 };
        uint8_t b[4];
        moat_vm_put_u32(b, id);
        tlv_process(&w, args);
        uint8_t *f = malloc(4 + w.len);
        memcpy(f, b, 4);
        memcpy(f + 4, w.buf, w.len);
        moat_vm_send(g->fd, MOAT_VM_EXEC, f, 4 + w.len);
        free(f);
        moat_vm_tlv_free(&w);
}

static void send_id(struct guest *g, uint8_t type, uint32_t id, const void *data, size_t len)
{
        uint8_t f[4 + 256];
        moat_vm_put_u32(f, id);
        memcpy(f + 4, data, len);
        moat_vm_send(g->fd, type, f, 4 + len);
}

static void pump(struct guest *g, bool (*until)(struct guest *, uint32_t), uint32_t id, double timeout)
{
        double end = vm_test_now() + timeout;
        while (g->exit_code < 0 && !g->broken && !(until && until(g, id)) && vm_test_now() < end) {
                struct pollfd p = { .fd = g->fd, .events = POLLIN };
                poll(&p, 1, 50);
                ssize_t n = moat_vm_reader_fill(&g->rd, g->fd);
                if (n == 0 || (n < 0 && n != -EAGAIN)) {
                        g->broken = true;
                        break;
                }
                uint8_t type;
                const uint8_t *pl;
                size_t len;
                while (moat_vm_reader_next(&g->rd, &type, &pl, &len) > 0) {
                        g->frames++;
                        if (type == MOAT_VM_STARTED && len == 4)
                                g->started = moat_vm_get_u32(pl);
                        if (type == MOAT_VM_EXIT && len == 4) {
                                g->exit_code = (int)moat_vm_get_u32(pl);
                                g->exit_order = g->frames;
                        }
                        if (type < MOAT_VM_EXEC_STARTED || type > MOAT_VM_EXEC_ERROR || len < 4)
                                continue;
                        uint32_t sid = moat_vm_get_u32(pl);
                        if (sid > NS)
                                continue;
                        struct sess *s = &g->s[sid];
                        pl += 4;
                        len -= 4;
                        s->used = true;
                        switch (type) {
                        case MOAT_VM_EXEC_STARTED:
                                s->started = len == 4 ? (long)moat_vm_get_u32(pl) : -2;
                                break;
                        case MOAT_VM_EXEC_STDOUT:
                                if (s->out_len + len < sizeof s->out) {
                                        memcpy(s->out + s->out_len, pl, len);
                                        s->out_len += len;
                                }
                                break;
                        case MOAT_VM_EXEC_STDERR:
                                if (s->err_len + len < sizeof s->err) {
                                        memcpy(s->err + s->err_len, pl, len);
                                        s->err_len += len;
                                }
                                break;
                        case MOAT_VM_EXEC_ERROR:
                                snprintf(s->error, sizeof s->error, "%.*s", (int)len, (const char *)pl);
                                break;
                        case MOAT_VM_EXEC_EXIT:
                                s->exit_code = len == 4 ? (int)moat_vm_get_u32(pl) : -2;
                                s->order = g->frames;
                                break;
                        }
                }
        }
}

static bool main_started(struct guest *g, uint32_t id)
{
        return g->started > 0;
}
static bool sess_exited(struct guest *g, uint32_t id)
{
        return g->s[id].exit_code >= 0;
}
static bool sess_started(struct guest *g, uint32_t id)
{
        return g->s[id].started > 0 || g->s[id].exit_code >= 0;
}
static bool sess_line(struct guest *g, uint32_t id)
{
        return memchr(g->s[id].out, '\n', g->s[id].out_len) != NULL;
}
static void guest_start(struct guest *g, const char *const *main_args)
{
        memset(g, 0, sizeof *g);
        g->exit_code = -1;
        g->started = -1;
        for (int i = 0; i <= NS; i++)
                g->s[i].exit_code = g->s[i].started = -1;
        g->pid = vm_test_spawn_vminit(vminit, &g->fd);
        moat_vm_reader_init(&g->rd, 0);
        send_config(g->fd, main_args);
        pump(g, main_started, 0, 10);
}

static void guest_end(struct guest *g)
{
        close(g->fd);
        int st;
        for (int i = 0; i < 100 && waitpid(g->pid, &st, WNOHANG) != g->pid; i++)
                usleep(50000);
        kill(g->pid, SIGKILL);
        waitpid(g->pid, &st, 0);
        moat_vm_reader_free(&g->rd);
}

static void test_sessions(void)
{
        static struct guest g;
        const char *const main_args[] = { "cat", NULL };
        guest_start(&g, main_args);
        ok(g.started > 0, "the main process runs (cat)");

        const char *const a1[] = { "/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL };
        send_exec(&g, 1, a1);
        pump(&g, sess_exited, 1, 10);
        ok(g.s[1].started > 0, "EXEC_STARTED with a pid (%ld)", g.s[1].started);
        is_str(g.s[1].out_len ? g.s[1].out : "", "out\n", "EXEC_STDOUT");
        is_str(g.s[1].err_len ? g.s[1].err : "", "err\n", "EXEC_STDERR");
        is_int(g.s[1].exit_code, 3, "EXEC_EXIT 3");

        const char *const a2[] = { "cat", NULL };
        send_exec(&g, 2, a2);
        pump(&g, sess_started, 2, 10);
        send_id(&g, MOAT_VM_EXEC_STDIN, 2, "to the exec\n", 12);
        pump(&g, sess_line, 2, 10);
        is_str(g.s[2].out_len ? g.s[2].out : "", "to the exec\n", "EXEC_STDIN reaches the session's process only");
        send_id(&g, MOAT_VM_EXEC_STDIN, 2, NULL, 0);
        pump(&g, sess_exited, 2, 10);
        is_int(g.s[2].exit_code, 0, "an empty EXEC_STDIN closes its stdin: EXIT 0");

        /* more stdin than the guest holds for a session (4 MiB) while the process does not
         * read yet: the channel waits, nothing is dropped */
        const char *const a6[] = { "/bin/sh", "-c", "sleep 1; wc -c", NULL };
        send_exec(&g, 6, a6);
        pump(&g, sess_started, 6, 10);
        static uint8_t chunk[4 + 65536];
        memset(chunk, 'x', sizeof chunk);
        moat_vm_put_u32(chunk, 6);
        for (int i = 0; i < 96; i++)    /* 6 MiB */
                moat_vm_send(g.fd, MOAT_VM_EXEC_STDIN, chunk, sizeof chunk);
        moat_vm_send(g.fd, MOAT_VM_EXEC_STDIN, chunk, 4);
        pump(&g, sess_exited, 6, 30);
        is_str(g.s[6].out_len ? g.s[6].out : "", "6291456\n", "6 MiB of stdin to a slow reader, all of it");
        is_int(g.s[6].exit_code, 0, "... EXEC_EXIT 0");

        const char *const a3[] = { "sleep", "100", NULL };
        send_exec(&g, 3, a3);
        pump(&g, sess_started, 3, 10);
        uint8_t sig[4];
        moat_vm_put_u32(sig, SIGTERM);
        send_id(&g, MOAT_VM_EXEC_SIGNAL, 3, sig, 4);
        pump(&g, sess_exited, 3, 10);
        is_int(g.s[3].exit_code, 143, "EXEC_SIGNAL 15: EXEC_EXIT 143");

        const char *const a4[] = { "no-such-command-xyz", NULL };
        send_exec(&g, 4, a4);
        pump(&g, sess_exited, 4, 10);
        is_int(g.s[4].exit_code, 127, "a missing command: EXEC_EXIT 127");
        contains(g.s[4].error, "no-such-command-xyz", "... after an EXEC_ERROR naming it");
        ok(g.s[4].started < 0, "... and no EXEC_STARTED");

        /* a request that breaks the rules: no ARG; a string with a NUL; a short frame */
        uint8_t bad[4 + 6 + 3];
        moat_vm_put_u32(bad, 5);
        moat_vm_put_u16(bad + 4, MOAT_VM_T_ARG);
        moat_vm_put_u32(bad + 6, 3);
        memcpy(bad + 10, "a\0b", 3);
        moat_vm_send(g.fd, MOAT_VM_EXEC, bad, sizeof bad);
        moat_vm_send(g.fd, MOAT_VM_EXEC, bad, 2);
        moat_vm_send(g.fd, MOAT_VM_EXEC, bad, 4);
        pump(&g, sess_exited, 5, 10);
        is_int(g.s[5].exit_code, 1, "a bad EXEC: EXEC_EXIT 1");
        contains(g.s[5].error, "bad", "... with EXEC_ERROR saying why (%s)", g.s[5].error);

        /* the bound: MOAT_VM_MAX_EXECS at once, one more is refused */
        const char *const slp[] = { "sleep", "100", NULL };
        for (uint32_t id = 10; id < 10 + MOAT_VM_MAX_EXECS; id++)
                send_exec(&g, id, slp);
        pump(&g, sess_started, 10 + MOAT_VM_MAX_EXECS - 1, 20);
        int running = 0;
        for (uint32_t id = 10; id < 10 + MOAT_VM_MAX_EXECS; id++)
                running += g.s[id].started > 0;
        is_int(running, MOAT_VM_MAX_EXECS, "%d sessions at once", MOAT_VM_MAX_EXECS);
        send_exec(&g, 10 + MOAT_VM_MAX_EXECS, slp);
        pump(&g, sess_exited, 10 + MOAT_VM_MAX_EXECS, 10);
        is_int(g.s[10 + MOAT_VM_MAX_EXECS].exit_code, 1, "one more is refused (EXEC_EXIT 1)");
        contains(g.s[10 + MOAT_VM_MAX_EXECS].error, "too many", "... saying so");
        send_exec(&g, 10, slp);
        pump(&g, NULL, 0, 0.3);
        ok(g.s[10].exit_code < 0, "a live id is not reused (the session runs on)");

        /* the main process ends: every session is killed and reported before EXIT */
        moat_vm_send(g.fd, MOAT_VM_STDIN, NULL, 0);
        pump(&g, NULL, 0, 10);
        is_int(g.exit_code, 0, "the main process exits (EXIT 0)");
        bool all = true, before = true;
        for (uint32_t id = 10; id < 10 + MOAT_VM_MAX_EXECS; id++) {
                all &= g.s[id].exit_code == 137;
                before &= g.s[id].order > 0 && g.s[id].order < g.exit_order;
        }
        ok(all, "its sessions end with EXEC_EXIT 137");
        ok(before, "... sent before EXIT");
        guest_end(&g);
}

/* ---- the host's side: a small monitor as vm.c runs it ---- */

static volatile sig_atomic_t stop;
static void on_term(int s)
{
        stop = 1;
}

static _Noreturn void monitor(const char *dir, int ready)
{
        struct moat_error *err = NULL;
        struct moat_vm_exec_host *h = NULL;
        signal(SIGTERM, on_term);
        if (moat_vm_exec_host_open(dir, &h, &err) < 0)
                _exit(2);
        int chan;
        pid_t g = vm_test_spawn_vminit(vminit, &chan);
        const char *const main_args[] = { "sleep", "100", NULL };
        send_config(chan, main_args);
        struct moat_vm_reader rd;
        moat_vm_reader_init(&rd, 0);
        bool started = false;
        int code = 0;
        (void)!write(ready, "x", 1);
        while (!stop) {
                struct pollfd p[1 + MOAT_VM_EXEC_HOST_MAX_POLL] = { { .fd = chan, .events = POLLIN } };
                size_t n = moat_vm_exec_host_poll_add(h, p + 1, MOAT_VM_EXEC_HOST_MAX_POLL, !started);
                if (poll(p, 1 + n, 200) < 0)
                        continue;
                if (p[0].revents) {
                        ssize_t k = moat_vm_reader_fill(&rd, chan);
                        if (k == 0 || (k < 0 && k != -EAGAIN))
                                break;
                        uint8_t type;
                        const uint8_t *pl;
                        size_t len;
                        while (moat_vm_reader_next(&rd, &type, &pl, &len) > 0) {
                                const char *what = NULL;
                                if (type == MOAT_VM_STARTED)
                                        started = true;
                                else if (moat_vm_exec_host_frame(h, type, pl, len, &what) < 0)
                                        code = 3;
                        }
                }
                moat_vm_exec_host_poll_done(h, p + 1, n, chan, started);
        }
        moat_vm_exec_host_free(h);
        kill(g, SIGKILL);
        waitpid(g, NULL, 0);
        _exit(code);
}

static int run_exec(const char *dir, const char *const *args, const char *input, char *out, size_t outlen,
                    int *status, struct moat_error **err, bool detach, pid_t *standin)
{
        struct moat_process p = { .args = (char **)args, .env = (char *[]){ "PATH=/usr/bin:/bin", NULL },
                                  .cwd = "/" };
        int in[2], o[2];
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(o, O_CLOEXEC) < 0)
                abort();
        if (input)
                (void)!write(in[1], input, strlen(input));
        close(in[1]);
        struct moat_vm_exec_opts vo = { .id = "t", .state_dir = dir, .process = &p, .in = in[0], .out = o[1],
                                        .err = o[1], .detach = detach };
        int r = moat_vm_exec(&vo, status, err);
        close(in[0]);
        close(o[1]);
        size_t got = 0;
        ssize_t n;
        if (!detach)
                while (got < outlen - 1 && (n = read(o[0], out + got, outlen - 1 - got)) > 0)
                        got += (size_t)n;
        out[got] = 0;
        close(o[0]);
        (void)standin;
        return r;
}

static void test_host(void)
{
        char dir[] = "/tmp/moat-vm-exec-XXXXXX";
        if (!mkdtemp(dir))
                abort();
        int rp[2];
        if (pipe2(rp, O_CLOEXEC) < 0)
                abort();
        pid_t m = fork();
        if (m == 0)
                monitor(dir, rp[1]);
        close(rp[1]);
        char c;
        (void)!read(rp[0], &c, 1);
        close(rp[0]);
        /* at once: a request before the main process runs waits for it */

        char out[4096];
        int st = -1;
        struct moat_error *err = NULL;
        const char *const a1[] = { "/bin/sh", "-c", "cat; echo done; exit 5", NULL };
        int r = run_exec(dir, a1, "piped in\n", out, sizeof out, &st, &err, false, NULL);
        is_int(r, 0, "moat_vm_exec through the monitor's socket");
        is_str(out, "piped in\ndone\n", "stdin in, stdout out");
        is_int(st, 5, "the exit status comes back (5)");

        const char *const a2[] = { "no-such-command-xyz", NULL };
        moat_error_free(err);
        err = NULL;
        r = run_exec(dir, a2, NULL, out, sizeof out, &st, &err, false, NULL);
        is_int(r, -ENOENT, "a missing command: an error (-ENOENT)");
        contains(err && err->msg ? err->msg : "", "no-such-command-xyz", "... naming it");
        moat_error_free(err);
        err = NULL;

        const char *const a3[] = { "/bin/sh", "-c", "exit 9", NULL };
        r = run_exec(dir, a3, NULL, out, sizeof out, &st, &err, true, NULL);
        is_int(r, 0, "--detach returns once started");
        int ws = 0;
        pid_t w = wait(&ws);
        ok(w > 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 9, "... and a child of ours stands for it (exits 9)");

        /* a guest frame for a session the host did not open breaks the protocol */
        struct moat_vm_exec_host *h = NULL;
        char dir2[] = "/tmp/moat-vm-exec-XXXXXX";
        if (!mkdtemp(dir2))
                abort();
        ok(moat_vm_exec_host_open(dir2, &h, &err) == 0, "a second exec host");
        uint8_t f[8] = { 0 };
        const char *what = NULL;
        moat_vm_put_u32(f, 42);
        is_int(moat_vm_exec_host_frame(h, MOAT_VM_EXEC_STDOUT, f, 8, &what), -EPROTO,
               "EXEC_STDOUT for no session: the guest broke the protocol");
        is_int(moat_vm_exec_host_frame(h, MOAT_VM_EXEC_EXIT, f, 2, &what), -EPROTO, "a short exec frame too");
        is_int(moat_vm_exec_host_frame(h, MOAT_VM_STDOUT, f, 8, &what), 1, "other frames are not its own");
        moat_vm_exec_host_free(h);
        rmdir(dir2);

        kill(m, SIGTERM);
        int ms = 0;
        waitpid(m, &ms, 0);
        is_int(WIFEXITED(ms) ? WEXITSTATUS(ms) : -1, 0, "the monitor saw no protocol breach");
        ok(access(dir, F_OK) == 0 && rmdir(dir) == 0, "the socket is gone with the monitor (dir empty)");
}

static void test_request_tlv(void)
{
        struct moat_process p = { .args = (char *[]){ "echo", "x", NULL }, .uid = 5, .gid = 6, .terminal = false };
        uint8_t *tlv = NULL;
        size_t len = 0;
        struct moat_error *err = NULL;
        is_int(moat_vm_exec_tlv(NULL, &p, -1, &tlv, &len, &err), 0, "the process as EXEC TLVs");
        struct moat_vm_tlv_iter it = { tlv, tlv + len };
        uint16_t tag;
        const uint8_t *v;
        size_t l;
        int args = 0, user = 0, cwd = 0;
        while (moat_vm_tlv_next(&it, &tag, &v, &l) > 0) {
                args += tag == MOAT_VM_T_ARG;
                user += tag == MOAT_VM_T_USER && l == 8 && moat_vm_get_u32(v) == 5 && moat_vm_get_u32(v + 4) == 6;
                cwd += tag == MOAT_VM_T_CWD && l == 1 && v[0] == '/';
        }
        ok(args == 2 && user == 1 && cwd == 1, "ARG x2, USER 5:6, CWD / (default)");
        free(tlv);
        struct moat_process empty = { 0 };
        ok(moat_vm_exec_tlv(NULL, &empty, -1, &tlv, &len, &err) < 0, "no args: refused");
        moat_error_free(err);
        err = NULL;

        /* a terminal: TERMINAL, and the size of ours as WINSIZE */
        int m = -1, sl = -1;
        if (moat_pty_open(&m, &sl, NULL, &err) < 0) {
                skip("no pty");
                moat_error_free(err);
                return;
        }
        ok(moat_pty_set_size(m, 37, 111, &err) == 0, "a pty of 37x111");
        p.terminal = true;
        tlv = NULL;
        is_int(moat_vm_exec_tlv(NULL, &p, sl, &tlv, &len, &err), 0, "the process with a terminal");
        it = (struct moat_vm_tlv_iter){ tlv, tlv + len };
        int term = 0, size = 0;
        while (moat_vm_tlv_next(&it, &tag, &v, &l) > 0) {
                term += tag == MOAT_VM_T_TERMINAL && l == 0;
                size += tag == MOAT_VM_T_WINSIZE && l == 4 && moat_vm_get_u16(v) == 37 &&
                        moat_vm_get_u16(v + 2) == 111;
        }
        ok(term == 1 && size == 1, "TERMINAL and WINSIZE 37x111");
        free(tlv);
        close(m);
        close(sl);
}

/* The process part is the one of CONFIG (vm/config.h): the same bytes, CONFIG has more. */
static void test_same_as_config(void)
{
        struct moat_process p = { .args = (char *[]){ "sh", NULL }, .env = (char *[]){ "A=b", NULL }, .uid = 1,
                                  .cwd = "/w", .has_umask = true, .umask = 077, .no_new_privileges = true,
                                  .has_caps = true };
        p.caps[MOAT_CAP_BOUNDING] = 5;
        struct moat_spec s = { .process = &p };
        struct moat_vm_config cfg;
        struct moat_error *err = NULL;
        uint8_t *tlv = NULL;
        size_t len = 0;
        is_int(moat_vm_config_build(&s, &cfg, &err), 0, "CONFIG of the same process");
        is_int(moat_vm_exec_tlv(&s, &p, -1, &tlv, &len, &err), 0, "EXEC of it");
        ok(tlv && cfg.len > len && memcmp(cfg.tlv, tlv, len) == 0, "EXEC is CONFIG's process part, to the byte");
        free(tlv);
        moat_vm_config_free(&cfg);
        moat_error_free(err);
}

int main(void)
{
        if (vm_test_find_vminit(vminit, sizeof vminit) < 0)
                return skip_all("moat-vminit not built (set MOAT_VMINIT)");
        signal(SIGPIPE, SIG_IGN);
        test_request_tlv();
        test_same_as_config();
        test_sessions();
        test_host();
        return done_testing();
}
