/* policy_client: one milter session's connection to mailquotad's policy service. */
#ifndef MQ_POLICY_CLIENT_H
#define MQ_POLICY_CLIENT_H

#include <stddef.h>

#include "milter_reply.h"

struct policy_client;

/* The action text of one answer, NUL-terminated (at most MILTER_ANSWER_MAX octets). */
struct policy_action {
	char text[MILTER_ANSWER_MAX + 1]; /* NUL-terminated; a NUL inside counts, see len */
	size_t len;
};

/*
 * A client for target: an absolute Unix socket path or host:port (the policy TCP listener).
 * Connects lazily, on the first question. timeout_ms bounds each policy_client_ask() as a
 * whole. Never fails; free with policy_client_destroy().
 */
struct policy_client *policy_client_new(const char *target, unsigned long timeout_ms);
/* Close the connection, free *pc and set it to NULL. NULL is fine. */
void policy_client_destroy(struct policy_client **pc);

/*
 * Send one request (req[len], as milter_request_append() wrote it) and read the answer's
 * action into *action_r. Connects when not connected; when a kept connection turns out to have
 * been closed by the daemon (an idle timeout, a restart), reconnects and asks once more. Blocks
 * the calling thread for at most the timeout. Returns 0, or -1 with *error_r (a message owned
 * by pc, valid until its next call) when the daemon cannot be reached, does not answer in
 * time, or answers something that is not a policy answer; the connection is then closed.
 */
int policy_client_ask(struct policy_client *pc, const char *req, size_t len,
                      struct policy_action *action_r, const char **error_r)
        __attribute__((warn_unused_result));

#endif
