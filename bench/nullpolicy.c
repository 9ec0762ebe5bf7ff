/*
 * nullpolicy: the baseline for the policy benchmark. The project's own policy socket code
 * (policy_server: epoll loop, buffers, limits; policy: the parser and the answer formatter)
 * with a handler that answers DUNNO without applying the state rules or looking anything up.
 * Usage: nullpolicy UNIX_PATH HOST:PORT
 */
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "policy_server.h"

static const char *dunno(void *ctx, const struct policy_request *req)
{
	(void)ctx;
	(void)req;
	return "DUNNO";
}

int main(int argc, char **argv)
{
	struct config cfg;
	const char *err = "";
	if (argc != 3) {
		fprintf(stderr, "usage: nullpolicy UNIX_PATH HOST:PORT\n");
		return 2;
	}
	config_init(&cfg);
	if (config_set(&cfg, "policy_socket", argv[1], &err) < 0 ||
	    config_set(&cfg, "policy_tcp_listen", argv[2], &err) < 0 ||
	    config_set(&cfg, "policy_socket_mode", "0666", &err) < 0 ||
	    config_finish(&cfg, &err) < 0) {
		fprintf(stderr, "nullpolicy: %s\n", err);
		return 1;
	}
	log_setup("nullpolicy", LOG_LEVEL_WARN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	const char *why;
	struct policy_server *ps = policy_server_new(&cfg, NULL, &why);
	if (ps == NULL) {
		fprintf(stderr, "nullpolicy: %s\n", why);
		return 1;
	}
	policy_server_set_handler(ps, dunno, NULL);
	policy_server_run(ps, sfd);
	policy_server_destroy(&ps);
	close(sfd);
	config_free(&cfg);
	return 0;
}
