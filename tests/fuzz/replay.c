/* SPDX-License-Identifier: Apache-2.0 */
/* Replay main for fuzz targets built without -fsanitize=fuzzer: feeds every
 * file of the given directories (or the files themselves) to
 * LLVMFuzzerTestOneInput once, and prints TAP. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int n_run;

static int run_file(const char *path)
{
        char *buf = NULL;
        size_t len = 0;
        int r = read_file_at(AT_FDCWD, path, &buf, &len);
        if (r < 0) {
                printf("not ok %d - cannot read %s: %s\n", ++n_run, path, strerror(-r));
                return -1;
        }
        /* An exact-size copy so that ASan sees reads past the end. */
        uint8_t *exact = malloc(len ? len : 1);
        if (len)
                memcpy(exact, buf, len);
        free(buf);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
        printf("ok %d - %s\n", ++n_run, path);
        return 0;
}

static int cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir)
{
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (!d) {
                printf("not ok %d - cannot open %s: %s\n", ++n_run, dir, strerror(errno));
                return -1;
        }
        _cleanup_strv_ char **names = NULL;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && strv_push(&names, de->d_name) < 0)
                        return -1;
        size_t n = strv_length(names);
        if (n)
                qsort(names, n, sizeof(char *), cmp);
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                if (run_file(path) < 0)
                        bad = -1;
        }
        return bad;
}

int main(int argc, char **argv)
{
        int bad = 0;
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
                        bad |= run_dir(argv[i]);
                else
                        bad |= run_file(argv[i]);
        }
        printf("1..%d\n", n_run);
        if (n_run == 0) {
                printf("# no input given\n");
                return 1;
        }
        return bad ? 1 : 0;
}
