/* SPDX-License-Identifier: Apache-2.0 */
/* sha256 digests through OpenSSL's EVP interface, streaming. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "image/image.h"

struct moat_sha256 {
        EVP_MD_CTX *ctx;
        bool failed;
};

struct moat_sha256 *moat_sha256_new(void)
{
        struct moat_sha256 *h = calloc(1, sizeof(*h));
        if (!h)
                return NULL;
        h->ctx = EVP_MD_CTX_new();
        if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(h->ctx);
                free(h);
                return NULL;
        }
        return h;
}

void moat_sha256_update(struct moat_sha256 *h, const void *data, size_t len)
{
        if (h && len && EVP_DigestUpdate(h->ctx, data, len) != 1)
                h->failed = true;
}

void moat_sha256_final(struct moat_sha256 *h, char out[72])
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        out[0] = '\0';
        if (!h)
                return;
        if (!h->failed && EVP_DigestFinal_ex(h->ctx, md, &n) == 1 && n == 32) {
                static const char hex[] = "0123456789abcdef";
                memcpy(out, "sha256:", 7);
                for (unsigned int i = 0; i < n; i++) {
                        out[7 + 2 * i] = hex[md[i] >> 4];
                        out[7 + 2 * i + 1] = hex[md[i] & 15];
                }
                out[7 + 64] = '\0';
        }
        EVP_MD_CTX_free(h->ctx);
        free(h);
}

int moat_digest_validate(const char *digest)
{
        if (!digest || strncmp(digest, "sha256:", 7) != 0)
                return -EINVAL;
        const char *hx = digest + 7;
        size_t i;
        for (i = 0; hx[i]; i++)
                if (!((hx[i] >= '0' && hx[i] <= '9') || (hx[i] >= 'a' && hx[i] <= 'f')))
                        return -EINVAL;
        return i == 64 ? 0 : -EINVAL;
}

int moat_digest_file(int fd, char out[72])
{
        struct moat_sha256 *h = moat_sha256_new();
        if (!h)
                return -ENOMEM;
        _cleanup_free_ char *buf = malloc(1 << 17);
        if (!buf) {
                moat_sha256_final(h, out);
                return -ENOMEM;
        }
        for (;;) {
                ssize_t n = read(fd, buf, 1 << 17);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int e = errno;
                        moat_sha256_final(h, out);
                        out[0] = '\0';
                        return -e;
                }
                if (n == 0)
                        break;
                moat_sha256_update(h, buf, (size_t)n);
        }
        moat_sha256_final(h, out);
        return out[0] ? 0 : -EIO;
}
