/* config_internal: what config.c and config_check.c share (not for other modules). */
#ifndef MQ_CONFIG_INTERNAL_H
#define MQ_CONFIG_INTERNAL_H

#include "config.h"

/* Write a message into *err (cut to CONFIG_ERROR_MAX, which is harmless for a message). */
void config_seterr(config_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Check the values together once every parameter is set, and derive what the rest of the
 * program reads (the reply set, the address rules, the allow list, the alias rule). Returns 0,
 * or -1 with the message in *err. Pure but for allocation.
 */
int config_check(struct config *cfg, config_error *err) __attribute__((warn_unused_result));

#endif
