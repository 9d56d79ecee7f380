/* SPDX-License-Identifier: Apache-2.0 */
/* `moat-runtime features`: the runtime-spec features document (features.md,
 * features-linux.md) as JSON text. */
#pragma once

/* Malloc'ed, pretty-printed JSON; NULL on ENOMEM. */
char *moat_features_json(void);
