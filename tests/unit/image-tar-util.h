/* SPDX-License-Identifier: Apache-2.0 */
/* Test helper: builds layer tars with libarchive's writer. */
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

enum tent_kind { T_DIR, T_FILE, T_LINK, T_HARD, T_CHR, T_BLK, T_FIFO, T_END };

struct tent {
        enum tent_kind kind;
        const char *path;
        const char *arg;  /* file data, symlink or hardlink target */
        int mode;         /* 0: default */
        int uid, gid;
        int maj, min;
        const char *xname; /* one xattr */
        const void *xval;
        size_t xlen;
};

/* Writes the entries to path with filter "none", "gzip" or "zstd"; returns 0 or -1. */
static inline int tar_write(const char *path, const char *filter, const struct tent *ents)
{
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        if (strcmp(filter, "gzip") == 0)
                archive_write_add_filter_gzip(a);
        else if (strcmp(filter, "zstd") == 0)
                archive_write_add_filter_zstd(a);
        if (archive_write_open_filename(a, path) != ARCHIVE_OK) {
                archive_write_free(a);
                return -1;
        }
        for (const struct tent *t = ents; t->kind != T_END; t++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, t->path);
                archive_entry_set_uid(e, t->uid);
                archive_entry_set_gid(e, t->gid);
                archive_entry_set_mtime(e, 1000000 + (t - ents), 500);
                switch (t->kind) {
                case T_DIR:
                        archive_entry_set_filetype(e, AE_IFDIR);
                        archive_entry_set_perm(e, t->mode ? t->mode : 0755);
                        break;
                case T_FILE:
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_perm(e, t->mode ? t->mode : 0644);
                        archive_entry_set_size(e, t->arg ? (la_int64_t)strlen(t->arg) : 0);
                        break;
                case T_LINK:
                        archive_entry_set_filetype(e, AE_IFLNK);
                        archive_entry_set_perm(e, 0777);
                        archive_entry_set_symlink(e, t->arg);
                        break;
                case T_HARD:
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_perm(e, 0644);
                        archive_entry_set_hardlink(e, t->arg);
                        archive_entry_set_size(e, 0);
                        break;
                case T_CHR:
                case T_BLK:
                        archive_entry_set_filetype(e, t->kind == T_CHR ? AE_IFCHR : AE_IFBLK);
                        archive_entry_set_perm(e, t->mode ? t->mode : 0600);
                        archive_entry_set_rdev(e, makedev(t->maj, t->min));
                        break;
                case T_FIFO:
                        archive_entry_set_filetype(e, AE_IFIFO);
                        archive_entry_set_perm(e, t->mode ? t->mode : 0600);
                        break;
                case T_END:
                        break;
                }
                if (t->xname)
                        archive_entry_xattr_add_entry(e, t->xname, t->xval, t->xlen);
                if (archive_write_header(a, e) != ARCHIVE_OK) {
                        archive_entry_free(e);
                        archive_write_free(a);
                        return -1;
                }
                if (t->kind == T_FILE && t->arg)
                        archive_write_data(a, t->arg, strlen(t->arg));
                archive_entry_free(e);
        }
        int r = archive_write_close(a);
        archive_write_free(a);
        return r == ARCHIVE_OK ? 0 : -1;
}
