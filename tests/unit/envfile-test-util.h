/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for the environment-file tests: parse a string with a fixed
 * environment, capture warnings. */
#pragma once

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "env/envfile.h"
#include "env/plan.h"

static char *test_env[] = { "HOME=/home/t", "TAG=1.2", "EMPTY=", "PORT=8080", NULL };
static char test_dir[] = "/tmp/moat-envfile-XXXXXX";
static int warn_fd = -1;

static inline void envtest_setup(void)
{
        if (!mkdtemp(test_dir)) {
                perror("mkdtemp");
                exit(1);
        }
        warn_fd = memfd_create("warnings", MFD_CLOEXEC);
        moat_log_setup(warn_fd, MOAT_LOG_TEXT, MOAT_LOG_WARNING);
}

static inline void envtest_cleanup(void)
{
        rm_rf_at(AT_FDCWD, test_dir);
}

/* The warnings since the last call (caller frees). */
static inline char *warnings(void)
{
        off_t n = lseek(warn_fd, 0, SEEK_CUR);
        char *b = calloc(1, n + 1);
        if (n > 0 && pread(warn_fd, b, n, 0) < 0)
                b[0] = '\0';
        if (ftruncate(warn_fd, 0) < 0 || lseek(warn_fd, 0, SEEK_SET) < 0)
                perror("warnings");
        return b;
}

static inline void write_test_file(const char *name, const char *data)
{
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", test_dir, name);
        FILE *f = fopen(p, "we");
        if (!f || fputs(data, f) < 0 || fclose(f) != 0)
                perror(p);
}

/* Parses yaml; on failure NULL and *msg (if msg) the message. */
static inline struct moat_envfile *parse_ex(const char *yaml, bool dotenv, char **msg)
{
        struct moat_envfile_options o = { .environ = test_env, .no_dotenv = !dotenv };
        struct moat_envfile *f = NULL;
        struct moat_error *err = NULL;
        int r = moat_envfile_parse(yaml, strlen(yaml), "compose.yaml", test_dir, &o, &f, &err);
        if (msg)
                *msg = r < 0 && err ? strdup(err->msg) : NULL;
        moat_error_free(err);
        return r < 0 ? NULL : f;
}

static inline struct moat_envfile *parse(const char *yaml)
{
        return parse_ex(yaml, false, NULL);
}

static inline char *parse_error(const char *yaml)
{
        char *msg = NULL;
        struct moat_envfile *f = parse_ex(yaml, false, &msg);
        moat_envfile_free(f);
        return msg ? msg : strdup("(parsed without error)");
}

static inline const char *env_of(const struct moat_env_service *s, const char *key)
{
        size_t l = strlen(key);
        for (char **e = s->environment; e && *e; e++)
                if (!strncmp(*e, key, l) && (*e)[l] == '=')
                        return *e + l + 1;
        return NULL;
}
