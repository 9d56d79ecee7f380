/* SPDX-License-Identifier: Apache-2.0 */
/* The image store: blobs (verify, refuse, resume), concurrent writers, layers, the
 * images.json index, prune, and a writer killed with SIGKILL leaving nothing trusted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "image/image.h"
#include "tap.h"

static char root[256];

static int create_file(const char *path, const char *content)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        ssize_t n = write_all(fd, content, strlen(content));
        close(fd);
        return n < 0 ? -EIO : 0;
}

static int count_dir(const char *sub, const char *prefix)
{
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", root, sub);
        DIR *d = opendir(p);
        if (!d)
                return -1;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && (!prefix || strncmp(de->d_name, prefix, strlen(prefix)) == 0))
                        n++;
        closedir(d);
        return n;
}

static void digest_of(const void *data, size_t len, char out[72])
{
        struct moat_sha256 *h = moat_sha256_new();
        moat_sha256_update(h, data, len);
        moat_sha256_final(h, out);
}

static char *big_data(size_t len)
{
        char *b = malloc(len);
        for (size_t i = 0; i < len; i++)
                b[i] = (char)(i * 7 + i / 251);
        return b;
}

static int wait_ok(pid_t pid)
{
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A child: writes data as blob `digest` in chunks, pausing `us` between them. */
static pid_t spawn_writer(const char *digest, const char *data, size_t len, useconds_t us)
{
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        struct moat_store *s = NULL;
        struct moat_blob_writer *w = NULL;
        if (moat_store_open(root, &s, NULL) < 0 || moat_blob_writer_new(s, digest, &w, NULL) < 0)
                _exit(2);
        size_t off = (size_t)moat_blob_writer_offset(w);
        while (off < len) {
                size_t n = len - off < 65536 ? len - off : 65536;
                if (moat_blob_writer_write(w, data + off, n, NULL) < 0)
                        _exit(3);
                off += n;
                if (us)
                        usleep(us);
        }
        int r = moat_blob_writer_commit(w, NULL);
        moat_blob_writer_free(w, true);
        moat_store_close(s);
        _exit(r < 0 ? 4 : 0);
}

static pid_t spawn_layer(const char *diff_id, const char *content, bool hang)
{
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        struct moat_store *s = NULL;
        char *dir = NULL;
        if (moat_store_open(root, &s, NULL) < 0 || moat_store_layer_begin(s, &dir, NULL) < 0)
                _exit(2);
        char p[512];
        snprintf(p, sizeof(p), "%s/file", dir);
        if (create_file(p, content) < 0)
                _exit(3);
        if (hang)
                pause();
        int r = moat_store_layer_commit(s, dir, diff_id, NULL);
        free(dir);
        moat_store_close(s);
        _exit(r < 0 ? 4 : 0);
}

static char *put_json(struct moat_store *s, const char *json, char d[72])
{
        struct moat_error *err = NULL;
        if (moat_store_put_blob(s, json, strlen(json), d, &err) < 0) {
                printf("# put_blob: %s\n", err ? err->msg : "?");
                moat_error_free(err);
                return NULL;
        }
        return d;
}

/* Writes config + manifest for one image of the given layer digests; returns the manifest digest. */
static void make_image(struct moat_store *s, const char *layer_blob, const char *diff_id, const char *created,
                       char manifest[72], char config[72])
{
        char cfg[1024], man[2048];
        snprintf(cfg, sizeof(cfg),
                 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"%s\",\"config\":{\"Cmd\":[\"sh\"]},"
                 "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
                 created, diff_id);
        put_json(s, cfg, config);
        snprintf(man, sizeof(man),
                 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
                 "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
                 "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":1234}]}",
                 MOAT_MT_OCI_MANIFEST, config, strlen(cfg), layer_blob);
        put_json(s, man, manifest);
}

int main(void)
{
        snprintf(root, sizeof(root), "%s/moat-store-test.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(root))
                return skip_all("cannot create a temp dir");
        struct moat_store *s = NULL;
        struct moat_error *err = NULL;
        if (!ok(moat_store_open(root, &s, &err) == 0, "store opens"))
                return done_testing();
        ok(count_dir("blobs/sha256", NULL) == 0 && count_dir("layers/sha256", NULL) == 0 && count_dir("tmp", NULL) == 0,
           "blobs/, layers/ and tmp/ are created empty");

        /* ------------------------------------------------ blobs */
        char d[72], d2[72];
        ok(moat_store_put_blob(s, "hello", 5, d, &err) == 0, "put_blob");
        is_str(d, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "its digest");
        ok(moat_store_has_blob(s, d), "has_blob");
        char *buf = NULL;
        size_t len = 0;
        ok(moat_store_blob_read(s, d, &buf, &len, &err) == 0 && len == 5 && memcmp(buf, "hello", 5) == 0, "blob_read");
        free(buf);
        ok(moat_store_put_blob(s, "hello", 5, d2, &err) == 0 && strcmp(d, d2) == 0, "put_blob again is a no-op");

        /* a wrong digest is refused and leaves nothing */
        char wrong[72];
        digest_of("other", 5, wrong);
        struct moat_blob_writer *w = NULL;
        ok(moat_blob_writer_new(s, wrong, &w, &err) == 0, "writer for a digest");
        moat_blob_writer_write(w, "not other", 9, &err);
        int r = moat_blob_writer_commit(w, &err);
        is_int(r, -EBADMSG, "commit of the wrong content fails with EBADMSG");
        contains(err ? err->msg : NULL, wrong, "the error names the expected digest");
        moat_error_free(err);
        err = NULL;
        moat_blob_writer_free(w, false);
        ok(!moat_store_has_blob(s, wrong), "the blob is not in the store");
        is_int(count_dir("tmp", NULL), 0, "and nothing is left in tmp/");
        is_int(count_dir("blobs/sha256", NULL), 1, "blobs/ holds only the good blob");
        ok(moat_blob_writer_new(s, "sha256:xyz", &w, &err) == -EINVAL, "a writer refuses a malformed digest");
        moat_error_free(err);
        err = NULL;

        /* resume after an abandoned writer */
        size_t blen = 3 * 65536 + 123;
        char *data = big_data(blen);
        char bd[72];
        digest_of(data, blen, bd);
        ok(moat_blob_writer_new(s, bd, &w, &err) == 0, "writer for a big blob");
        moat_blob_writer_write(w, data, 100000, &err);
        is_int(moat_blob_writer_offset(w), 100000, "offset after a partial write");
        moat_blob_writer_free(w, false); /* interrupted download */
        ok(!moat_store_has_blob(s, bd), "an abandoned writer stores nothing");
        ok(moat_blob_writer_new(s, bd, &w, &err) == 0, "a new writer for the same digest");
        is_int(moat_blob_writer_offset(w), 100000, "resumes at the offset the abandoned one reached");
        moat_blob_writer_write(w, data + 100000, blen - 100000, &err);
        ok(moat_blob_writer_commit(w, &err) == 0, "the resumed blob commits (the digest covers both parts)");
        moat_blob_writer_free(w, true);
        ok(moat_store_has_blob(s, bd), "and is in the store");
        int fd = -1;
        char check[72] = "";
        if (moat_store_blob_open(s, bd, &fd, &err) == 0) {
                moat_digest_file(fd, check);
                close(fd);
        }
        is_str(check, bd, "its content hashes to its name");
        is_int(count_dir("tmp", NULL), 0, "no partial file is left");
        ok(moat_store_blob_open(s, wrong, &fd, &err) == -ENOENT, "blob_open of a missing blob: ENOENT");
        contains(err ? err->msg : NULL, wrong, "naming the digest");
        moat_error_free(err);
        err = NULL;
        ok(moat_blob_writer_new(s, d, &w, &err) == 0, "a discarded writer");
        moat_blob_writer_write(w, "x", 1, &err);
        moat_blob_writer_free(w, true);
        is_int(count_dir("tmp", NULL), 0, "leaves nothing behind");

        /* two processes write the same blob at once */
        size_t clen = 40 * 65536;
        char *cdata = big_data(clen);
        cdata[0] = 'C';
        char cd[72];
        digest_of(cdata, clen, cd);
        pid_t a = spawn_writer(cd, cdata, clen, 2000), b = spawn_writer(cd, cdata, clen, 2000);
        int ra = wait_ok(a), rb = wait_ok(b);
        ok(ra == 0 && rb == 0, "two concurrent writers of one blob both succeed (%d, %d)", ra, rb);
        check[0] = '\0';
        if (moat_store_blob_open(s, cd, &fd, &err) == 0) {
                moat_digest_file(fd, check);
                close(fd);
        }
        is_str(check, cd, "the blob they wrote is one good copy");
        is_int(count_dir("tmp", NULL), 0, "neither left a temp file");

        /* ------------------------------------------------ layers */
        char lid[72];
        digest_of("layer-one", 9, lid);
        ok(!moat_store_has_layer(s, lid), "no layer yet");
        char *dir = NULL;
        ok(moat_store_layer_begin(s, &dir, &err) == 0, "layer_begin");
        ok(dir && strncmp(dir, root, strlen(root)) == 0 && strstr(dir, "/tmp/"), "the layer dir is under tmp/: %s",
           dir ? dir : "");
        moat_store_layer_abort(s, dir);
        struct stat st;
        ok(stat(dir, &st) < 0 && errno == ENOENT, "layer_abort removes it");
        free(dir);
        ok(moat_store_layer_commit(s, "/etc", lid, &err) == -EINVAL, "commit refuses a dir it did not begin");
        moat_error_free(err);
        err = NULL;
        a = spawn_layer(lid, "A", false);
        b = spawn_layer(lid, "B", false);
        ra = wait_ok(a);
        rb = wait_ok(b);
        ok(ra == 0 && rb == 0, "two processes committing the same layer both succeed (%d, %d)", ra, rb);
        ok(moat_store_has_layer(s, lid), "the layer is in the store");
        char *lp = moat_store_layer_path(s, lid), *content = NULL;
        char fp[512];
        snprintf(fp, sizeof(fp), "%s/file", lp ? lp : "");
        ok(read_file_at(AT_FDCWD, fp, &content, &len) == 0 && (STREQ(content, "A") || STREQ(content, "B")),
           "with one writer's whole content");
        free(content);
        free(lp);
        is_int(count_dir("layers/sha256", NULL), 1, "one copy");
        is_int(count_dir("tmp", NULL), 0, "the loser's dir was removed");

        /* ------------------------------------------------ images.json */
        char lblob[72], man[72], cfg[72], man2[72], cfg2[72];
        put_json(s, "layer blob", lblob);
        make_image(s, lblob, lid, "2024-01-02T03:04:05Z", man, cfg);
        ok(moat_store_tag(s, "test/img:1", man, &err) == 0, "tag");
        struct moat_image *img = NULL;
        if (ok(moat_store_lookup(s, "test/img:1", &img, &err) == 0, "lookup by name")) {
                is_str(img->name, "docker.io/test/img:1", "the name is canonical");
                is_str(img->manifest_digest, man, "manifest digest");
                is_str(img->config_digest, cfg, "config digest");
                ok(img->n_layers == 1 && STREQ(img->layers[0], lid), "layers are the diff ids");
                is_int(img->size, 1234, "size is the sum of the layer sizes");
                is_str(img->created, "2024-01-02T03:04:05Z", "created");
                moat_image_free(img);
        }
        img = NULL;
        ok(moat_store_lookup(s, "docker.io/test/img:1", &img, &err) == 0, "lookup by canonical name");
        moat_image_free(img);
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "%.12s", cfg + 7);
        img = NULL;
        ok(moat_store_lookup(s, prefix, &img, &err) == 0 && img && STREQ(img->manifest_digest, man),
           "lookup by id prefix");
        moat_image_free(img);
        img = NULL;
        ok(moat_store_lookup(s, man, &img, &err) == 0 && img && STREQ(img->name, "docker.io/test/img:1"),
           "lookup by manifest digest");
        moat_image_free(img);
        img = NULL;
        r = moat_store_lookup(s, "nope:1", &img, &err);
        is_int(r, -ENOENT, "lookup of an unknown name: ENOENT");
        contains(err ? err->msg : NULL, "'nope:1'", "the error names it");
        moat_error_free(err);
        err = NULL;
        ok(moat_store_tag(s, "test/img:1", lblob, &err) < 0, "tag refuses a blob that is not a manifest");
        moat_error_free(err);
        err = NULL;
        ok(moat_store_tag(s, "Bad Name", man, &err) == -EINVAL, "tag refuses a bad name");
        moat_error_free(err);
        err = NULL;
        ok(moat_store_tag(s, "test/img:2", man, &err) == 0, "a second name for the same image");

        /* a second image sharing nothing */
        char lid2[72], lblob2[72];
        digest_of("layer-two", 9, lid2);
        put_json(s, "layer blob 2", lblob2);
        make_image(s, lblob2, lid2, "2024-02-02T03:04:05Z", man2, cfg2);
        ok(moat_store_tag(s, "localhost:5000/other", man2, &err) == 0, "tag a second image");
        struct moat_image **v = NULL;
        size_t n = 0;
        if (ok(moat_store_list(s, &v, &n, &err) == 0, "list")) {
                is_int(n, 3, "three names");
                ok(n == 3 && STREQ(v[0]->name, "docker.io/test/img:1") && STREQ(v[2]->name, "localhost:5000/other:latest"),
                   "sorted by name");
                moat_images_free(v, n);
        }
        ok(moat_store_untag(s, "test/img:2", &err) == 0, "untag");
        img = NULL;
        ok(moat_store_lookup(s, "test/img:2", &img, &err) == -ENOENT, "the name is gone");
        moat_error_free(err);
        err = NULL;
        r = moat_store_untag(s, "never/was", &err);
        is_int(r, -ENOENT, "untag of an unknown name: ENOENT");
        contains(err ? err->msg : NULL, "'never/was'", "naming it");
        moat_error_free(err);
        err = NULL;

        /* ------------------------------------------------ prune */
        char junk[72];
        put_json(s, "unreferenced", junk);
        char lid3[72];
        digest_of("layer-three", 11, lid3);
        ok(moat_store_layer_begin(s, &dir, &err) == 0 && moat_store_layer_commit(s, dir, lid3, &err) == 0,
           "an unreferenced layer");
        free(dir);
        char debris[512];
        snprintf(debris, sizeof(debris), "%s/tmp/blob-debris.partial", root);
        create_file(debris, "debris");
        /* a live writer's partial file must survive prune */
        char live[72];
        digest_of("live", 4, live);
        struct moat_blob_writer *lw = NULL;
        moat_blob_writer_new(s, live, &lw, &err);
        moat_blob_writer_write(lw, "li", 2, &err);
        uint64_t freed = 0;
        size_t items = 0;
        ok(moat_store_prune(s, &freed, &items, &err) == 0, "prune");
        is_int(items, 6, "removed the unreferenced blobs (3 from above + 1), layer and tmp debris");
        ok(freed >= strlen("unreferenced") + strlen("debris"), "and reports the bytes freed (%llu)",
           (unsigned long long)freed);
        ok(!moat_store_has_blob(s, junk) && !moat_store_has_layer(s, lid3), "they are gone");
        ok(stat(debris, &st) < 0, "the debris is gone");
        ok(moat_store_has_blob(s, man) && moat_store_has_blob(s, cfg) && moat_store_has_blob(s, lblob),
           "the first image's manifest, config and layer blob stay");
        ok(moat_store_has_layer(s, lid), "its layer stays");
        ok(moat_store_has_blob(s, man2) && moat_store_has_blob(s, cfg2) && moat_store_has_blob(s, lblob2),
           "the second image's blobs stay");
        moat_blob_writer_write(lw, "ve", 2, &err);
        ok(moat_blob_writer_commit(lw, &err) == 0, "the live writer was not disturbed by prune");
        moat_blob_writer_free(lw, true);
        ok(moat_store_untag(s, "localhost:5000/other", &err) == 0, "untag the second image");
        items = 0;
        moat_store_prune(s, &freed, &items, &err);
        is_int(items, 4, "prune now removes its manifest, config, layer blob, and the live blob");
        ok(moat_store_has_layer(s, lid) && !moat_store_has_layer(s, lid2), "the first image's layer stays");

        /* ------------------------------------------------ kill -9 in the middle of writing */
        size_t klen = 200 * 65536;
        char *kdata = big_data(klen);
        kdata[1] = 'K';
        char kd[72];
        digest_of(kdata, klen, kd);
        pid_t k = spawn_writer(kd, kdata, klen, 5000);
        usleep(100000);
        kill(k, SIGKILL);
        is_int(wait_ok(k), 128 + SIGKILL, "the writer was killed mid-blob");
        ok(!moat_store_has_blob(s, kd), "a blob killed mid-write is not in the store");
        is_int(count_dir("blobs/sha256", NULL), 3, "blobs/ holds only the complete blobs");
        is_int(count_dir("tmp", "blob-"), 1, "its partial file is in tmp/");
        ok(moat_blob_writer_new(s, kd, &w, &err) == 0, "a new writer after the kill");
        int64_t off = moat_blob_writer_offset(w);
        ok(off > 0 && off < (int64_t)klen, "resumes from what the killed one wrote (%lld)", (long long)off);
        moat_blob_writer_write(w, kdata + off, klen - (size_t)off, &err);
        ok(moat_blob_writer_commit(w, &err) == 0, "and completes it with a verified digest");
        moat_blob_writer_free(w, true);

        char kl[72];
        digest_of("killed layer", 12, kl);
        k = spawn_layer(kl, "half", true);
        usleep(200000);
        kill(k, SIGKILL);
        wait_ok(k);
        ok(!moat_store_has_layer(s, kl), "a layer killed mid-unpack is not in the store");
        is_int(count_dir("tmp", "layer-"), 1, "its dir is debris in tmp/");
        moat_store_close(s);
        ok(moat_store_open(root, &s, &err) == 0, "reopen");
        is_int(count_dir("tmp", "layer-"), 1, "open keeps debris younger than an hour");
        /* age it: open removes tmp entries older than an hour */
        char old[512];
        snprintf(old, sizeof(old), "%s/tmp/old-debris", root);
        create_file(old, "x");
        struct timespec ts[2] = { { time(NULL) - 7200, 0 }, { time(NULL) - 7200, 0 } };
        utimensat(AT_FDCWD, old, ts, 0);
        moat_store_close(s);
        moat_store_open(root, &s, &err);
        ok(stat(old, &st) < 0, "open removed debris older than an hour");
        items = 0;
        moat_store_prune(s, &freed, &items, &err);
        is_int(count_dir("tmp", NULL), 0, "prune removed the killed layer's dir");
        moat_store_close(s);

        free(data);
        free(cdata);
        free(kdata);
        moat_error_free(err);
        if (!getenv("MOAT_KEEP")) {
                char cmd[600];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
                if (system(cmd) != 0)
                        printf("# could not remove %s\n", root);
        }
        return done_testing();
}
