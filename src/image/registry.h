/* SPDX-License-Identifier: Apache-2.0 */
/* The client side of the OCI distribution protocol (internal to src/image):
 * the registry's base URL, its auth (anonymous, Bearer token from the
 * WWW-Authenticate challenge, Basic from the containers/docker auth files),
 * small GETs (manifests, configs) and the headers a blob transfer needs. */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "image/image.h"

/* ---- WWW-Authenticate: `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."` */
struct moat_auth_challenge {
        char *scheme; /* "bearer", "basic" (lowercased) */
        char *realm, *service, *scope;
};
/* Parses the first challenge of one header value; -EINVAL when it is not one. */
int moat_www_authenticate_parse(const char *value, struct moat_auth_challenge *out);
void moat_auth_challenge_clear(struct moat_auth_challenge *c);

/* ---- auth files: {"auths": {"host[:port]": {"auth": base64("user:pass")}}}
 * Keys may carry a scheme and path ("https://index.docker.io/v1/"). */
int moat_auth_json_lookup(const char *json, size_t len, const char *host, char **user, char **pass,
                          struct moat_error **err); /* -ENOENT: no entry for host */
/* The file list: auth_file if given; else $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json,
 * ~/.docker/config.json.  The first file with an entry for host wins; *source names it. */
int moat_auth_find(const char *auth_file, const char *host, char **user, char **pass, char **source,
                   struct moat_error **err);
int moat_base64_decode(const char *in, char **out, size_t *len);
char *moat_base64_encode(const void *data, size_t len);

/* ---- a registry (one repository of it) */
struct moat_registry;
/* insecure: http:// (refused unless the host is loopback). */
int moat_registry_new(const struct moat_ref *ref, bool insecure, const char *auth_file, struct moat_registry **out,
                      struct moat_error **err);
void moat_registry_free(struct moat_registry *r);
const char *moat_registry_host(const struct moat_registry *r); /* "127.0.0.1:5000" */
char *moat_registry_url(const struct moat_registry *r, const char *kind, const char *ref); /* kind: manifests|blobs */

struct moat_http_reply {
        long status;
        char *body;
        size_t len;
        char *content_type;
        char *docker_digest;
};
void moat_http_reply_clear(struct moat_http_reply *rep);
/* GET url (manifests/blobs of the repository) into memory (at most max bytes), doing the auth
 * dance on a 401.  accept may be NULL.  Any status but 200 is an error naming the URL and status. */
int moat_registry_get(struct moat_registry *r, const char *url, const char *accept, size_t max,
                      struct moat_http_reply *rep, struct moat_error **err);
/* Sets on a fresh easy handle what every request needs: auth header, redirects, protocols, timeouts.
 * *headers is owned by the caller (curl_slist_free_all) and must outlive the transfer. */
int moat_registry_setup(struct moat_registry *r, CURL *h, const char *url, const char *accept,
                        struct curl_slist **headers);
/* "registry answered HTTP 404 (...) for 'URL'" style message from a status and an error body. */
int moat_registry_http_error(struct moat_error **err, long status, const char *url, const char *body, size_t len);
