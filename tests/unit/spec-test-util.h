/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for the config.json tests: JSON written with ' for " in C strings. */
#pragma once

#include <stdlib.h>
#include <string.h>

/* Returns a malloc'd copy of s with every ' turned into ". */
static inline char *q(const char *s)
{
        char *d = strdup(s);
        for (char *p = d; p && *p; p++)
                if (*p == '\'')
                        *p = '"';
        return d;
}

#include <stdio.h>
/* Creates or truncates path with text; 0 or -1. */
static inline int write_text(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");
        if (!f)
                return -1;
        int r = fputs(text, f) < 0 ? -1 : 0;
        return fclose(f) == 0 ? r : -1;
}
