/* filter: mailquota-milter's libmilter callbacks (one SMTP session per libmilter thread). */
#ifndef MQ_FILTER_H
#define MQ_FILTER_H

#include <libmilter/mfapi.h>

#include "config.h"

/*
 * The filter description for smfi_register(), bound to cfg (which must outlive smfi_main()):
 * the daemon asked is cfg->milter_connect, or cfg->policy_socket when that is empty. Fails
 * (-1, static *error_r) when neither is set or milter_tempfail_reply cannot be used.
 */
int filter_setup(const struct config *cfg, struct smfiDesc **desc_r, const char **error_r)
        __attribute__((warn_unused_result));

#endif
