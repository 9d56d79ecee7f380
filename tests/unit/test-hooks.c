/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "linux/hooks.h"
#include "tap.h"

static char dir[] = "/tmp/moat-test-hooks-XXXXXX";

static char *path_in_dir(const char *name)
{
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, name) < 0)
                abort();
        return p;
}

static char *script(const char *name, const char *body)
{
        char *p = path_in_dir(name);
        _cleanup_free_ char *text = NULL;
        if (asprintf(&text, "#!/bin/sh\n%s\n", body) < 0)
                abort();
        if (write_string_at(AT_FDCWD, p, text) < 0)
                abort();
        chmod(p, 0755);
        return p;
}

/* write_file_at only writes existing files: create them first. */
static void touch(const char *p)
{
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
        if (fd >= 0)
                close(fd);
}

static char *make_script(const char *name, const char *body)
{
        _cleanup_free_ char *p = path_in_dir(name);
        touch(p);
        return script(name, body);
}

static char *slurp(const char *name)
{
        _cleanup_free_ char *p = path_in_dir(name);
        char *s = NULL;
        if (read_file_at(AT_FDCWD, p, &s, NULL) < 0)
                return NULL;
        return s;
}

static void test_stdin_args_env(void)
{
        _cleanup_free_ char *h = make_script("copy.sh",
                                             "cat > \"$OUT/stdin\"\n"
                                             "printf '%s|' \"$#\" \"$1\" \"$2\" > \"$OUT/args\"\n"
                                             "printf '%s' \"$GREETING\" > \"$OUT/env\"\n");
        _cleanup_free_ char *outenv = NULL, *state = NULL;
        if (asprintf(&outenv, "OUT=%s", dir) < 0)
                abort();
        /* Bigger than a pipe buffer, so the write has to be interleaved with the hook's reading. */
        size_t big = 200 * 1024;
        state = malloc(big + 64);
        strcpy(state, "{\"ociVersion\":\"1.2.0\",\"id\":\"c1\",\"pad\":\"");
        size_t l = strlen(state);
        memset(state + l, 'x', big);
        strcpy(state + l + big, "\"}");

        char *args[] = { "hook-argv0", "first", "second arg", NULL };
        char *env[] = { outenv, "GREETING=hi there", "PATH=/usr/bin:/bin", NULL };
        struct moat_hook hk = { .path = h, .args = args, .env = env, .timeout = 10 };
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_hook_run(&hk, state, "createRuntime", &err);
        is_int(r, 0, "hook ran: %s", err ? err->msg : "ok");
        _cleanup_free_ char *got = slurp("stdin");
        ok(got && strcmp(got, state) == 0, "hook got the %zu-byte state JSON on stdin", strlen(state));
        _cleanup_free_ char *a = slurp("args");
        is_str(a, "2|first|second arg|", "args reach the hook");
        _cleanup_free_ char *e = slurp("env");
        is_str(e, "hi there", "env reaches the hook");
}

static void test_empty_env_no_fds(void)
{
        /* An fd of ours without O_CLOEXEC must not reach the hook. */
        int leak = fcntl(STDOUT_FILENO, F_DUPFD, 57);
        setenv("MOAT_TEST_LEAK", "1", 1);
        _cleanup_free_ char *out = path_in_dir("envdump");
        _cleanup_free_ char *h = make_script("env.sh",
                                             "/usr/bin/env > \"$1\"\n"
                                             "if [ -e /proc/self/fd/57 ]; then echo leaked >> \"$1\"; fi\n");
        char *args[] = { h, out, NULL };
        struct moat_hook hk = { .path = h, .args = args };
        _cleanup_error_ struct moat_error *err = NULL;
        is_int(moat_hook_run(&hk, "{}", "prestart", &err), 0, "hook with no env: %s", err ? err->msg : "ok");
        _cleanup_free_ char *got = slurp("envdump");
        ok(got != NULL, "hook wrote its env");
        ok(got && strstr(got, "MOAT_TEST_LEAK"), "a hook without env inherits ours, as with runc");
        ok(got && !strstr(got, "leaked"), "fd 57 (not O_CLOEXEC in the runtime) is closed in the hook");
        if (leak >= 0)
                close(leak);
        unsetenv("MOAT_TEST_LEAK");
}

static void test_not_reading(void)
{
        _cleanup_free_ char *h = make_script("noread.sh", "exit 0");
        size_t big = 1024 * 1024;
        _cleanup_free_ char *state = malloc(big + 1);
        memset(state, 'y', big);
        state[big] = '\0';
        struct moat_hook hk = { .path = h, .timeout = 10 };
        _cleanup_error_ struct moat_error *err = NULL;
        int64_t t0 = now_ns();
        is_int(moat_hook_run(&hk, state, "poststart", &err), 0, "a hook that does not read its stdin: %s",
               err ? err->msg : "ok");
        ok(now_ns() - t0 < 5000000000LL, "and it does not block us");
}

static void test_exit_status(void)
{
        _cleanup_free_ char *h = make_script("fail.sh", "echo some stdout\necho 'boom: it broke' >&2\nexit 3");
        struct moat_hook hk = { .path = h };
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_hook_run(&hk, "{}", "createRuntime", &err);
        ok(r < 0, "exit 3 is an error (%d)", r);
        _cleanup_free_ char *want = NULL;
        if (asprintf(&want, "createRuntime hook '%s' exited with status 3: boom: it broke", h) < 0)
                abort();
        is_str(err ? err->msg : NULL, want, "message has the kind, path, status and stderr");

        _cleanup_free_ char *h2 = make_script("sig.sh", "kill -9 $$");
        struct moat_hook hk2 = { .path = h2 };
        _cleanup_error_ struct moat_error *err2 = NULL;
        ok(moat_hook_run(&hk2, "{}", "poststart", &err2) < 0, "a hook killed by a signal is an error");
        contains(err2 ? err2->msg : NULL, "killed by signal 9", "message names the signal");

        /* Output beyond the tail size is cut from the front. */
        _cleanup_free_ char *h3 = make_script("noisy.sh", "i=0; while [ $i -lt 2000 ]; do echo line$i >&2; "
                                                          "i=$((i+1)); done; exit 1");
        struct moat_hook hk3 = { .path = h3 };
        _cleanup_error_ struct moat_error *err3 = NULL;
        ok(moat_hook_run(&hk3, "{}", "poststart", &err3) < 0, "noisy failing hook");
        contains(err3 ? err3->msg : NULL, "line1999", "message keeps the end of stderr");
        ok(err3 && !strstr(err3->msg, "line10\n") && strlen(err3->msg) < 4096 + 200, "and is bounded (%zu bytes)",
           err3 ? strlen(err3->msg) : 0);
}

static void test_timeout(void)
{
        _cleanup_free_ char *h = make_script("sleep.sh", "sleep 5");
        struct moat_hook hk = { .path = h, .timeout = 1 };
        _cleanup_error_ struct moat_error *err = NULL;
        int64_t t0 = now_ns();
        int r = moat_hook_run(&hk, "{}", "createContainer", &err);
        int64_t ms = (now_ns() - t0) / 1000000;
        is_int(r, -ETIMEDOUT, "a sleeping hook with timeout 1 times out");
        ok(ms >= 900 && ms < 2500, "killed after %lld ms (want ~1000)", (long long)ms);
        contains(err ? err->msg : NULL, "timed out after 1 s", "message says so");
        contains(err ? err->msg : NULL, "createContainer hook '", "message names the kind");
}

static void test_missing(void)
{
        struct moat_hook hk = { .path = "/nonexistent/moat-hook" };
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_hook_run(&hk, "{}", "prestart", &err);
        is_int(r, -ENOENT, "missing hook: -ENOENT");
        contains(err ? err->msg : NULL, "hook '/nonexistent/moat-hook': No such file", "message");

        _cleanup_free_ char *h = path_in_dir("notexec");
        touch(h);
        chmod(h, 0644);
        struct moat_hook hk2 = { .path = h };
        _cleanup_error_ struct moat_error *err2 = NULL;
        is_int(moat_hook_run(&hk2, "{}", "prestart", &err2), -EACCES, "non-executable hook: -EACCES");

        struct moat_hook hk3 = { .path = "relative/hook" };
        _cleanup_error_ struct moat_error *err3 = NULL;
        is_int(moat_hook_run(&hk3, "{}", "prestart", &err3), -EINVAL, "relative hook path refused");
}

static void test_hooks_run(void)
{
        _cleanup_free_ char *ok_h = make_script("mark.sh", "echo x >> \"$1\"");
        _cleanup_free_ char *bad_h = make_script("bad.sh", "echo nope >&2; exit 2");
        _cleanup_free_ char *m1 = path_in_dir("mark1"), *m2 = path_in_dir("mark2"), *m3 = path_in_dir("mark3");
        char *a1[] = { ok_h, m1, NULL }, *a2[] = { ok_h, m2, NULL }, *a3[] = { ok_h, m3, NULL };
        struct moat_hook create[] = { { .path = ok_h, .args = a1 }, { .path = bad_h }, { .path = ok_h, .args = a2 } };
        struct moat_hook poststop[] = { { .path = bad_h }, { .path = ok_h, .args = a3 } };
        struct moat_spec s;
        memset(&s, 0, sizeof(s));
        s.hooks[MOAT_HOOK_CREATE_RUNTIME] = create;
        s.n_hooks[MOAT_HOOK_CREATE_RUNTIME] = 3;
        s.hooks[MOAT_HOOK_POSTSTOP] = poststop;
        s.n_hooks[MOAT_HOOK_POSTSTOP] = 2;

        _cleanup_error_ struct moat_error *err = NULL;
        ok(moat_hooks_run(&s, MOAT_HOOK_CREATE_RUNTIME, "{}", &err) < 0, "createRuntime: the 2nd hook fails");
        contains(err ? err->msg : NULL, "createRuntime hook", "error names the kind");
        ok(access(m1, F_OK) == 0, "the 1st hook ran");
        ok(access(m2, F_OK) < 0, "the 3rd hook did not run");

        _cleanup_error_ struct moat_error *err2 = NULL;
        is_int(moat_hooks_run(&s, MOAT_HOOK_POSTSTOP, "{}", &err2), 0, "poststop: failures are not fatal");
        ok(access(m3, F_OK) == 0, "poststop: the hook after the failing one ran");
        is_int(moat_hooks_run(&s, MOAT_HOOK_PRESTART, "{}", NULL), 0, "no hooks of a kind: nothing to do");
}

int main(void)
{
        if (!mkdtemp(dir))
                return skip_all("cannot create a temporary directory");
        if (access("/bin/sh", X_OK) < 0)
                return skip_all("no /bin/sh for the hook scripts");
        test_stdin_args_env();
        test_empty_env_no_fds();
        test_not_reading();
        test_exit_status();
        test_timeout();
        test_missing();
        test_hooks_run();
        rm_rf_at(AT_FDCWD, dir);
        return done_testing();
}
