/* SPDX-License-Identifier: Apache-2.0 */
/* Internal interface between the parts of the config.json parser. */
#pragma once

#include <stdbool.h>

#include "oci/json.h"
#include "oci/spec.h"

#define SPEC_OOM(c) moat_error_set((c)->err, ENOMEM, "out of memory")

/* names.c */
int spec_ns_from_name(const char *name);
/* Tests: pretend the kernel's last capability is `last` (-1: read /proc again). */
void spec_cap_set_last_for_tests(int last);

/* spec_process.c: v is the "process" object at the current path. */
int spec_parse_process(struct jctx *c, json_t *v, struct moat_process **out);

/* spec_linux.c */
int spec_parse_linux(struct jctx *c, json_t *v, struct moat_spec *s);
/* Cross-field checks (namespaces vs. hostname, sysctl, mappings). */
int spec_check_linux(struct jctx *c, struct moat_spec *s);
void spec_linux_free(struct moat_linux *l);
/* Parses "uidMappings"/"gidMappings" (key) of obj, checks sizes and overlaps. */
int spec_parse_idmaps(struct jctx *c, json_t *obj, const char *key, struct moat_idmap **out, size_t *n);
/* Absolute, no NUL (already), for container-side paths. */
int spec_check_abs(struct jctx *c, const char *path);

/* spec_resources.c */
int spec_parse_resources(struct jctx *c, json_t *v, struct moat_resources *r);
void spec_resources_free(struct moat_resources *r);

/* spec_mount.c */
int spec_parse_mounts(struct jctx *c, json_t *arr, struct moat_spec *s);
int spec_mount_options(struct jctx *c, struct moat_mount *m);
void spec_mount_free(struct moat_mount *m);
/* "private", "rshared", ... -> MS_* (with MS_REC); -EINVAL if unknown. */
int spec_propagation_from_name(const char *name, unsigned long *out);

/* spec_seccomp.c */
int spec_seccomp_parse(struct jctx *c, json_t *v, struct moat_seccomp **out);
void spec_seccomp_free(struct moat_seccomp *s);
