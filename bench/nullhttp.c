/*
 * nullhttp: the baseline for the HTTP benchmark. libmicrohttpd with the same flags and limits
 * as mailquotad's http module (internal poll thread, keep-alive, answering from the second
 * callback), answering a fixed small JSON body. Usage: nullhttp PORT [epoll] (epoll: the event
 * loop mailquotad used before, to measure what poll costs).
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"

static const char body[] = "{\"verdict\":\"accept\",\"action\":\"DUNNO\"}\n";

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;
	static int marker;
	if (*req_cls == NULL) {
		*req_cls = &marker;
		return MHD_YES;
	}
	*upload_data_size = 0;
	struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
	                                                         MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(conn, 200, r);
	MHD_destroy_response(r);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: nullhttp PORT [epoll]\n");
		return 2;
	}
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only */
	unsigned loop = argc > 2 && strcmp(argv[2], "epoll") == 0 ? MHD_USE_EPOLL : MHD_USE_POLL;
	struct MHD_Daemon *d = MHD_start_daemon(
	        MHD_USE_INTERNAL_POLLING_THREAD | loop, 0, NULL, NULL, on_request, NULL,
	        MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_LIMIT, 256u,
	        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	        (size_t)HTTP_MEMORY_LIMIT, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "nullhttp: cannot listen on %s\n", argv[1]);
		return 1;
	}
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	int sig;
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigwait(&mask, &sig);
	MHD_stop_daemon(d);
	return 0;
}
