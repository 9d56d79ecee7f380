/* SPDX-License-Identifier: Apache-2.0 */
/* moat_image_pull: manifest (index -> platform), config, layers fetched in parallel (curl multi),
 * each streamed through the store's blob writer (digest verified before commit) and, when the
 * layer is not unpacked yet, through a socket into a thread running moat_layer_unpack, so the
 * layer is unpacked while it downloads.  An interrupted download resumes with a Range request. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "image/image.h"
#include "image/pull.h"
#include "image/registry.h"

#define SMALL_MAX (4u << 20)
#define MANIFEST_ACCEPT                                                                                        \
        MOAT_MT_OCI_MANIFEST ", " MOAT_MT_OCI_INDEX ", " MOAT_MT_DOCKER_MANIFEST ", " MOAT_MT_DOCKER_LIST

struct job {
        struct pull *p;
        size_t idx;
        const struct moat_descriptor *desc;
        const char *diff_id; /* expected, from the config */
        bool need_blob, need_layer;
        /* transfer */
        CURL *h;
        struct curl_slist *hdrs;
        char *url;
        struct moat_blob_writer *w;
        int64_t offset, got;
        bool checked, bad_status, restart_failed, too_big;
        struct moat_error *werr;
        char errbody[2048];
        size_t errlen;
        /* unpacker */
        int sock; /* our end; the thread reads the other */
        int rfd;  /* what the thread reads: the socket's other end or the stored blob */
        int dirfd;
        char *tmpdir;
        pthread_t thr;
        bool thr_running;
        int unpack_ret;
        struct moat_error *unpack_err;
        char diff[72];
        bool unpacked; /* committed */
};

struct pull {
        struct moat_store *s;
        struct moat_registry *r;
        struct pull_progress *prog;
        struct job *jobs;
        size_t n;
};

/* ---------------------------------------------------------------- unpacker thread */

static void *unpack_thread(void *arg)
{
        struct job *j = arg;
        j->unpack_ret = moat_layer_unpack(j->rfd, j->dirfd, j->diff, &j->unpack_err);
        /* drain: the downloader must never block on a reader that stopped */
        char buf[65536];
        while (read(j->rfd, buf, sizeof(buf)) > 0)
                ;
        return NULL;
}

static int unpack_start(struct job *j, int rfd, struct moat_error **err)
{
        int r = moat_store_layer_begin(j->p->s, &j->tmpdir, err);
        if (r < 0) {
                close(rfd);
                return r;
        }
        j->dirfd = open(j->tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (j->dirfd < 0) {
                close(rfd);
                return moat_error_set(err, errno, "cannot open '%s'", j->tmpdir);
        }
        j->rfd = rfd;
        r = pthread_create(&j->thr, NULL, unpack_thread, j);
        if (r != 0)
                return moat_error_set(err, r, "cannot start an unpacker thread");
        j->thr_running = true;
        if (j->sock < 0) /* not streamed from a download */
                pull_progress_set(j->p->prog, j->idx, PULL_UNPACKING, -1);
        return 0;
}

/* Joins the unpacker; with ok, checks the diff id and commits the layer, else aborts it. */
static int unpack_finish(struct job *j, bool ok, struct moat_error **err)
{
        int r = 0;
        if (j->sock >= 0) {
                shutdown(j->sock, SHUT_WR);
                close(j->sock);
                j->sock = -EBADF;
        }
        if (j->thr_running) {
                pthread_join(j->thr, NULL);
                j->thr_running = false;
        }
        if (j->rfd >= 0) {
                close(j->rfd);
                j->rfd = -EBADF;
        }
        if (j->dirfd >= 0) {
                close(j->dirfd);
                j->dirfd = -EBADF;
        }
        if (!j->tmpdir)
                return 0;
        if (ok && j->unpack_ret < 0) {
                r = j->unpack_ret;
                if (err && !*err && j->unpack_err) {
                        *err = TAKE_PTR(j->unpack_err);
                        moat_error_prefix(err, r, "layer '%s'", j->desc->digest);
                } else {
                        moat_error_set(err, r, "cannot unpack layer '%s'", j->desc->digest);
                }
                ok = false;
        } else if (ok && strcmp(j->diff, j->diff_id) != 0) {
                r = moat_error_input(err, EBADMSG,
                                     "layer '%s' unpacks to '%s', but the image config says its diff id is '%s'",
                                     j->desc->digest, j->diff, j->diff_id);
                ok = false;
        }
        if (ok) {
                r = moat_store_layer_commit(j->p->s, j->tmpdir, j->diff_id, err);
                if (r >= 0)
                        j->unpacked = true;
        } else {
                moat_store_layer_abort(j->p->s, j->tmpdir);
        }
        free(j->tmpdir);
        j->tmpdir = NULL;
        return r;
}

/* Unpack from the stored blob (already present, or downloaded without streaming). */
static int unpack_from_store(struct job *j, struct moat_error **err)
{
        int fd = -EBADF;
        int r = moat_store_blob_open(j->p->s, j->desc->digest, &fd, err);
        if (r < 0)
                return r;
        return unpack_start(j, fd, err);
}

/* ---------------------------------------------------------------- transfers */

static size_t blob_write(char *data, size_t sz, size_t nm, void *ud)
{
        struct job *j = ud;
        size_t len = sz * nm;
        if (!j->checked) {
                long code = 0;
                curl_easy_getinfo(j->h, CURLINFO_RESPONSE_CODE, &code);
                j->checked = true;
                if (code == 200 && j->offset > 0) {
                        /* the server ignored our Range: start over */
                        moat_debug("'%s': no range support, downloading from the start", j->url);
                        moat_blob_writer_free(j->w, true);
                        j->w = NULL;
                        j->offset = 0;
                        if (moat_blob_writer_new(j->p->s, j->desc->digest, &j->w, &j->werr) < 0) {
                                j->restart_failed = true;
                                return 0;
                        }
                } else if (!(code == 200 || (code == 206 && j->offset > 0))) {
                        j->bad_status = true;
                }
        }
        if (j->bad_status) {
                size_t k = len < sizeof(j->errbody) - 1 - j->errlen ? len : sizeof(j->errbody) - 1 - j->errlen;
                memcpy(j->errbody + j->errlen, data, k);
                j->errlen += k;
                return len;
        }
        if (j->desc->size > 0 && j->offset + j->got + (int64_t)len > j->desc->size) {
                j->too_big = true;
                return 0;
        }
        if (moat_blob_writer_write(j->w, data, len, &j->werr) < 0)
                return 0;
        if (j->sock >= 0) {
                size_t o = 0;
                while (o < len) {
                        ssize_t n = send(j->sock, data + o, len - o, MSG_NOSIGNAL);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0) {
                                /* the unpacker is gone: it reports why; keep downloading */
                                close(j->sock);
                                j->sock = -EBADF;
                                break;
                        }
                        o += n;
                }
        }
        j->got += len;
        pull_progress_bytes(j->p->prog, j->idx, j->offset + j->got);
        return len;
}

static int job_start(struct job *j, CURLM *m, struct moat_error **err)
{
        struct pull *p = j->p;
        int r = moat_blob_writer_new(p->s, j->desc->digest, &j->w, err);
        if (r < 0)
                return r;
        j->offset = moat_blob_writer_offset(j->w);
        if (j->offset < 0)
                j->offset = 0;
        if (j->need_layer && j->offset == 0) {
                int sv[2];
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                        return moat_error_set(err, errno, "cannot make a socket pair");
                int sz = 1 << 20;
                setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
                j->sock = sv[0];
                r = unpack_start(j, sv[1], err);
                if (r < 0)
                        return r;
        }
        j->url = moat_registry_url(p->r, "blobs", j->desc->digest);
        j->h = curl_easy_init();
        if (!j->url || !j->h)
                return -ENOMEM;
        moat_registry_setup(p->r, j->h, j->url, NULL, &j->hdrs);
        curl_easy_setopt(j->h, CURLOPT_WRITEFUNCTION, blob_write);
        curl_easy_setopt(j->h, CURLOPT_WRITEDATA, j);
        curl_easy_setopt(j->h, CURLOPT_PRIVATE, j);
        if (j->offset > 0) {
                moat_debug("resuming '%s' from byte %lld", j->url, (long long)j->offset);
                curl_easy_setopt(j->h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)j->offset);
        }
        pull_progress_set(p->prog, j->idx, PULL_DOWNLOADING, j->offset);
        if (curl_multi_add_handle(m, j->h) != CURLM_OK)
                return moat_error_set(err, EIO, "cannot start the transfer of '%s'", j->url);
        return 0;
}

static int job_done(struct job *j, CURLM *m, CURLcode res, struct moat_error **err)
{
        struct pull *p = j->p;
        long code = 0;
        int r = 0;
        curl_easy_getinfo(j->h, CURLINFO_RESPONSE_CODE, &code);
        curl_multi_remove_handle(m, j->h);
        if (j->bad_status)
                r = moat_registry_http_error(err, code, j->url, j->errbody, j->errlen);
        else if (j->too_big)
                r = moat_error_input(err, EBADMSG, "blob '%s' from '%s' is larger than the %lld bytes the manifest says",
                                     j->desc->digest, j->url, (long long)j->desc->size);
        else if (j->restart_failed || j->werr) {
                r = -EIO;
                if (err && !*err) {
                        *err = TAKE_PTR(j->werr);
                        r = moat_error_prefix(err, -((*err)->code ? (*err)->code : EIO), "'%s'", j->url);
                }
        } else if (res != CURLE_OK)
                r = moat_error_input(err, EIO, "cannot GET '%s': %s (HTTP status %ld)", j->url,
                                     curl_easy_strerror(res), code);
        if (r < 0) {
                unpack_finish(j, false, NULL);
                /* keep what arrived for a resume unless the content itself is bad */
                moat_blob_writer_free(j->w, j->bad_status || j->too_big);
                j->w = NULL;
                pull_progress_set(p->prog, j->idx, PULL_FAILED, -1);
                return r;
        }
        /* close the stream so the unpacker finishes, but commit the layer only after the blob verified */
        if (j->sock >= 0) {
                shutdown(j->sock, SHUT_WR);
                close(j->sock);
                j->sock = -EBADF;
        }
        if (j->thr_running) {
                pthread_join(j->thr, NULL);
                j->thr_running = false;
        }
        r = moat_blob_writer_commit(j->w, err);
        moat_blob_writer_free(j->w, true);
        j->w = NULL;
        if (r < 0) {
                unpack_finish(j, false, NULL);
                pull_progress_set(p->prog, j->idx, PULL_FAILED, -1);
                return moat_error_prefix(err, r, "blob '%s' from registry '%s' ('%s')", j->desc->digest,
                                         moat_registry_host(p->r), j->url);
        }
        if (j->tmpdir) {
                r = unpack_finish(j, true, err);
                if (r < 0) {
                        pull_progress_set(p->prog, j->idx, PULL_FAILED, -1);
                        return r;
                }
                pull_progress_set(p->prog, j->idx, PULL_DONE, j->desc->size);
        } else if (j->need_layer) {
                /* resumed download: unpack from the stored blob, in parallel with the rest */
                r = unpack_from_store(j, err);
                if (r < 0)
                        return r;
        } else {
                pull_progress_set(p->prog, j->idx, PULL_DONE, j->desc->size);
        }
        return 0;
}

static void job_clear(struct job *j)
{
        unpack_finish(j, false, NULL);
        if (j->w)
                moat_blob_writer_free(j->w, false);
        if (j->h)
                curl_easy_cleanup(j->h);
        curl_slist_free_all(j->hdrs);
        free(j->url);
        moat_error_free(j->werr);
        moat_error_free(j->unpack_err);
}

static int fetch_layers(struct pull *p, int parallel, struct moat_error **err)
{
        CURLM *m = curl_multi_init();
        if (!m)
                return -ENOMEM;
        size_t next = 0, active = 0;
        int r = 0;

        for (;;) {
                while (r >= 0 && active < (size_t)parallel && next < p->n) {
                        struct job *j = &p->jobs[next++];
                        if (!j->need_blob)
                                continue;
                        r = job_start(j, m, err);
                        if (r >= 0)
                                active++;
                }
                if (r < 0 || active == 0)
                        break;
                int running = 0;
                CURLMcode mc = curl_multi_perform(m, &running);
                if (mc != CURLM_OK) {
                        r = moat_error_input(err, EIO, "transfer failed: %s", curl_multi_strerror(mc));
                        break;
                }
                CURLMsg *msg;
                int left;
                while ((msg = curl_multi_info_read(m, &left))) {
                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        struct job *j = NULL;
                        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
                        active--;
                        int q = job_done(j, m, msg->data.result, err);
                        if (q < 0 && r >= 0)
                                r = q;
                }
                if (r < 0)
                        break;
                pull_progress_render(p->prog, false);
                if (running > 0)
                        curl_multi_poll(m, NULL, 0, 100, NULL);
        }
        /* on error: the transfers still running are dropped (their partial blobs stay for a resume) */
        for (size_t i = 0; i < p->n; i++)
                if (p->jobs[i].h)
                        curl_multi_remove_handle(m, p->jobs[i].h);
        curl_multi_cleanup(m);
        return r;
}

/* ---------------------------------------------------------------- manifests */

static int verify_digest(const char *data, size_t len, const char *want, const char *url, struct moat_error **err)
{
        char got[72];
        struct moat_sha256 *h = moat_sha256_new();
        if (!h)
                return -ENOMEM;
        moat_sha256_update(h, data, len);
        moat_sha256_final(h, got);
        if (want && strcmp(got, want) != 0)
                return moat_error_input(err, EBADMSG, "'%s' does not match its digest '%s' (got '%s')", url, want,
                                        got);
        return 0;
}

static bool looks_like_index(const struct moat_http_reply *rep)
{
        if (rep->content_type && moat_media_is_index(rep->content_type))
                return true;
        json_t *j = json_loadb(rep->body, rep->len, 0, NULL);
        const char *mt = json_string_value(json_object_get(j, "mediaType"));
        bool ix = mt ? moat_media_is_index(mt) : json_is_array(json_object_get(j, "manifests"));
        json_decref(j);
        return ix;
}

/* Fetches the manifest for ref (through an index when it names one); rep holds the manifest. */
static int fetch_manifest(struct pull *p, const struct moat_ref *ref, const struct moat_pull_opts *o,
                          struct moat_http_reply *rep, char digest[72], struct moat_error **err)
{
        _cleanup_free_ char *url = moat_registry_url(p->r, "manifests", ref->digest ? ref->digest : ref->tag);
        if (!url)
                return -ENOMEM;
        int r = moat_registry_get(p->r, url, MANIFEST_ACCEPT, SMALL_MAX, rep, err);
        if (r < 0)
                return r;
        if (!rep->body)
                return moat_error_input(err, EPROTO, "'%s': empty answer", url);
        r = verify_digest(rep->body, rep->len, ref->digest, url, err);
        if (r < 0)
                return r;
        if (looks_like_index(rep)) {
                struct moat_index ix = { 0 };
                const struct moat_descriptor *d = NULL;
                r = moat_index_parse(rep->body, rep->len, &ix, err);
                if (r < 0)
                        return moat_error_prefix(err, r, "image index '%s'", url);
                r = moat_index_select(&ix, o->os, o->arch, o->variant, &d, err);
                if (r < 0) {
                        moat_index_clear(&ix);
                        return moat_error_prefix(err, r, "image index '%s'", url);
                }
                _cleanup_free_ char *want = strdup(d->digest);
                moat_index_clear(&ix);
                free(url);
                url = moat_registry_url(p->r, "manifests", want);
                if (!url || !want)
                        return -ENOMEM;
                r = moat_registry_get(p->r, url, MANIFEST_ACCEPT, SMALL_MAX, rep, err);
                if (r < 0)
                        return r;
                r = verify_digest(rep->body ? rep->body : "", rep->len, want, url, err);
                if (r < 0)
                        return r;
                if (looks_like_index(rep))
                        return moat_error_input(err, EPROTO, "'%s': an index inside an index", url);
        }
        struct moat_sha256 *h = moat_sha256_new();
        if (!h)
                return -ENOMEM;
        moat_sha256_update(h, rep->body, rep->len);
        moat_sha256_final(h, digest);
        return 0;
}

/* The config blob: from the store, or fetched, verified and stored. */
static int fetch_config(struct pull *p, const struct moat_descriptor *d, char **data, size_t *len,
                        struct moat_error **err)
{
        if (moat_store_has_blob(p->s, d->digest))
                return moat_store_blob_read(p->s, d->digest, data, len, err);
        _cleanup_free_ char *url = moat_registry_url(p->r, "blobs", d->digest);
        struct moat_http_reply rep = { 0 };
        char got[72];
        if (!url)
                return -ENOMEM;
        int r = moat_registry_get(p->r, url, NULL, SMALL_MAX, &rep, err);
        if (r >= 0)
                r = verify_digest(rep.body ? rep.body : "", rep.len, d->digest, url, err);
        if (r >= 0)
                r = moat_store_put_blob(p->s, rep.body ? rep.body : "", rep.len, got, err);
        if (r >= 0) {
                *data = TAKE_PTR(rep.body);
                *len = rep.len;
        }
        moat_http_reply_clear(&rep);
        return r;
}

/* ---------------------------------------------------------------- the pull */

static int pull_image(struct pull *p, const struct moat_ref *ref, const struct moat_pull_opts *o, char mdigest[72],
                      struct moat_error **err)
{
        struct moat_http_reply rep = { 0 };
        struct moat_manifest man = { 0 };
        struct moat_image_config cfg = { 0 };
        _cleanup_free_ char *cfgdata = NULL;
        size_t cfglen = 0;
        char got[72];
        int r;

        r = fetch_manifest(p, ref, o, &rep, mdigest, err);
        if (r < 0)
                goto out;
        r = moat_manifest_parse(rep.body, rep.len, &man, err);
        if (r < 0) {
                moat_error_prefix(err, r, "manifest '%s' of '%s'", mdigest, moat_registry_host(p->r));
                goto out;
        }
        r = fetch_config(p, &man.config, &cfgdata, &cfglen, err);
        if (r < 0)
                goto out;
        r = moat_image_config_parse(cfgdata, cfglen, &cfg, err);
        if (r < 0) {
                moat_error_prefix(err, r, "image config '%s'", man.config.digest);
                goto out;
        }
        if (cfg.n_diff_ids != man.n_layers) {
                r = moat_error_input(err, EBADMSG, "image config '%s' lists %zu diff ids for %zu layers",
                                     man.config.digest, cfg.n_diff_ids, man.n_layers);
                goto out;
        }
        if (o->arch && cfg.arch && strcmp(o->arch, cfg.arch) != 0)
                moat_warn("image '%s' is for '%s', not '%s'", ref->repository, cfg.arch, o->arch);

        p->n = man.n_layers;
        p->jobs = calloc(p->n ? p->n : 1, sizeof(*p->jobs));
        if (!p->jobs) {
                r = -ENOMEM;
                goto out;
        }
        p->prog = pull_progress_new(o->progress_fd, p->n);
        for (size_t i = 0; i < p->n; i++) {
                struct job *j = &p->jobs[i];
                j->p = p;
                j->idx = i;
                j->desc = &man.layers[i];
                j->diff_id = cfg.diff_ids[i];
                j->sock = j->rfd = j->dirfd = -EBADF;
                j->need_layer = !moat_store_has_layer(p->s, j->diff_id);
                j->need_blob = !moat_store_has_blob(p->s, j->desc->digest);
                pull_progress_item(p->prog, i, j->desc->digest, j->desc->size);
        }
        for (size_t i = 0; i < p->n; i++) {
                struct job *j = &p->jobs[i];
                if (!j->need_blob && !j->need_layer)
                        pull_progress_set(p->prog, i, PULL_PRESENT, j->desc->size);
                else if (!j->need_blob && (r = unpack_from_store(j, err)) < 0)
                        goto jobs;
        }
        r = fetch_layers(p, o->parallel > 0 ? o->parallel : 4, err);
jobs:
        /* the unpackers of stored blobs (present before, or resumed) */
        for (size_t i = 0; i < p->n; i++) {
                struct job *j = &p->jobs[i];
                if (j->tmpdir && r >= 0) {
                        int q = unpack_finish(j, true, err);
                        pull_progress_set(p->prog, i, q < 0 ? PULL_FAILED : PULL_DONE, j->desc->size);
                        if (q < 0)
                                r = q;
                }
                job_clear(j);
        }
        pull_progress_free(p->prog);
        p->prog = NULL;
        free(p->jobs);
        p->jobs = NULL;
        if (r < 0)
                goto out;
        /* the manifest last: an image is only recorded once all its parts are in */
        r = moat_store_put_blob(p->s, rep.body, rep.len, got, err);
        if (r >= 0 && strcmp(got, mdigest) != 0)
                r = moat_error_input(err, EIO, "stored manifest digest '%s' differs from '%s'", got, mdigest);
out:
        moat_image_config_clear(&cfg);
        moat_manifest_clear(&man);
        moat_http_reply_clear(&rep);
        return r;
}

int moat_image_pull(struct moat_store *s, const char *refstr, const struct moat_pull_opts *o, struct moat_image **out,
                    struct moat_error **err)
{
        static const struct moat_pull_opts defaults = { .progress_fd = -1, .parallel = 4 };
        struct moat_ref ref = { 0 };
        struct pull p = { .s = s };
        char mdigest[72] = "";
        int r;

        if (!o)
                o = &defaults;
        r = moat_ref_parse(refstr, &ref, err);
        if (r < 0)
                return r;
        r = moat_registry_new(&ref, o->insecure, o->auth_file, &p.r, err);
        if (r >= 0)
                r = pull_image(&p, &ref, o, mdigest, err);
        _cleanup_free_ char *name = r >= 0 ? moat_ref_string(&ref) : NULL;
        if (r >= 0 && !name)
                r = -ENOMEM;
        if (r >= 0)
                r = moat_store_tag(s, name, mdigest, err);
        if (r >= 0 && out)
                r = moat_store_lookup(s, name, out, err);
        if (r < 0)
                moat_error_prefix(err, r, "pulling '%s'", refstr);
        moat_registry_free(p.r);
        moat_ref_clear(&ref);
        return r;
}
