/* SPDX-License-Identifier: Apache-2.0 */
/* runtime-spec hooks: fork + execve with the state JSON on stdin, output
 * captured for the error message, a timeout enforced with a pidfd. */
#pragma once

#include "core/error.h"
#include "oci/spec.h"

/* Runs one hook.  kind_name ("createRuntime") only names it in messages.
 * The hook gets h->args (args[0] as given; {path} when empty) and h->env
 * (empty when none), the state JSON on stdin (a hook that doesn't read it
 * is fine), no other fd.  Errors: "createRuntime hook '/p' exited with
 * status 3: <stderr tail>" (-EIO), "... killed by signal 9" (-EIO),
 * "... timed out after 2 s" (-ETIMEDOUT), "createRuntime hook '/p': No
 * such file or directory" (-ENOENT, exec failures). */
int moat_hook_run(const struct moat_hook *h, const char *state_json, const char *kind_name,
                  struct moat_error **err);
/* Runs s->hooks[k] in order, stops at the first failure.  Poststop hooks
 * all run; failures are logged with moat_warn and 0 is returned. */
int moat_hooks_run(const struct moat_spec *s, enum moat_hook_kind k, const char *state_json,
                   struct moat_error **err);
