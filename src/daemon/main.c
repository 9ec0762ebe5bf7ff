/*
 * mailquotad: wires the configuration, the store, the service and the two front ends together,
 * then serves until SIGTERM or SIGINT. Only start-up failures are fatal.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "policy_server.h"
#include "reload.h"
#include "sdlisten.h"
#include "sdnotify.h"
#include "service.h"
#include "usage.h"
#include "version.h"
#include "view.h"
#include "warn_worker.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: mailquotad [-c config] [-o name=value]... [-n | -p | -P] [-V]\n"
	        "  -c FILE        configuration file (default " CONFIG_DEFAULT_PATH ")\n"
	        "  -o NAME=VALUE  override one parameter (repeatable)\n"
	        "  -n             check the configuration, print \"configuration OK\" and exit\n"
	        "  -p             print every parameter with its effective value and exit\n"
	        "  -P             print only parameters that differ from the defaults and exit\n"
	        "  -V             print the version and exit\n");
}

/* Descriptors the daemon needs besides its client connections: listeners, epoll, signalfd,
   libmicrohttpd's internal pipes (per thread), the view's connection, logs, spare. */
#define FD_RESERVE 64

/*
 * Raise the soft descriptor limit to the hard one, and refuse to start when the connection
 * limits cannot fit in it: running out at run time would refuse clients at random.
 */
static void fit_descriptors(const struct config *cfg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_fatal("event=start_failed error=\"getrlimit: %m\"");
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_fatal("event=start_failed error=\"setrlimit: %m\"");
	}
	unsigned long long need = cfg->policy_max_connections + FD_RESERVE + 2 * cfg->http_threads +
	                          2 * cfg->database_pool_size + HTTP_STREAMS_MAX;
	if (cfg->http_listen[0] != '\0')
		need += cfg->http_max_connections;
	if (cfg->metrics_listen[0] != '\0')
		need += HTTP_METRICS_CONNECTIONS_MAX;
	if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur)
		log_fatal(
		        "event=start_failed error=\"the connection limits need %llu descriptors "
		        "(policy_max_connections %llu + http_max_connections %llu + 2 x "
		        "database_pool_size %llu + %d others) but RLIMIT_NOFILE is %llu: raise "
		        "LimitNOFILE (systemd) or lower the limits\"",
		        need, (unsigned long long)cfg->policy_max_connections,
		        cfg->http_listen[0] != '\0' ? (unsigned long long)cfg->http_max_connections
		                                    : 0ULL,
		        (unsigned long long)cfg->database_pool_size,
		        FD_RESERVE + (int)(2 * cfg->http_threads) + HTTP_STREAMS_MAX +
		                (cfg->metrics_listen[0] != '\0' ? HTTP_METRICS_CONNECTIONS_MAX : 0),
		        (unsigned long long)rl.rlim_cur);
}

static bool http_idle(void *ctx)
{
	return http_server_idle(ctx);
}

/*
 * Match the sockets systemd passed (socket activation) to the configured listeners, before any
 * thread starts; a socket that fits none is a start-up error (sdlisten.h).
 */
static void take_inherited_sockets(const struct config *cfg)
{
	const struct sdlisten_want wants[] = {
		{ "policy_socket", cfg->policy_socket, SDLISTEN_UNIX },
		{ "policy_tcp_listen", cfg->policy_tcp_listen, SDLISTEN_TCP },
		{ "socketmap_socket", cfg->socketmap_socket, SDLISTEN_UNIX },
		{ "socketmap_tcp_listen", cfg->socketmap_tcp_listen, SDLISTEN_TCP },
		{ "exim_socket", cfg->exim_socket, SDLISTEN_UNIX },
		{ "exim_tcp_listen", cfg->exim_tcp_listen, SDLISTEN_TCP },
		{ "http_listen", cfg->http_listen, SDLISTEN_TCP },
		{ "metrics_listen", cfg->metrics_listen, SDLISTEN_TCP },
	};
	const char *err;
	if (sdlisten_init(wants, sizeof(wants) / sizeof(wants[0]), &err) < 0)
		log_fatal("event=start_failed error=\"%s\"", err);
}

static int on_sighup(void *ctx, bool request)
{
	return reload_step(ctx, request);
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	bool check_only = false, print_all = false, print_changed = false;
	const char *err = "";
	struct config cfg;
	char *overrides[64];
	int noverrides = 0;
	int opt;

	while ((opt = getopt(argc, argv, "c:o:npPVh")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'o':
			if (noverrides == 64) {
				fprintf(stderr, "mailquotad: too many -o options\n");
				return 2;
			}
			overrides[noverrides++] = optarg;
			break;
		case 'n':
			check_only = true;
			break;
		case 'p':
			print_all = true;
			break;
		case 'P':
			print_changed = true;
			break;
		case 'V':
			printf("mailquotad %s\n", MAILQUOTA_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	config_init(&cfg);
	if (config_load_all(&cfg, path, overrides, (size_t)noverrides, &err) < 0) {
		fprintf(stderr, "mailquotad: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	struct warn_worker *ww = warn_worker_new(&cfg, &err);
	if (ww == NULL) {
		fprintf(stderr, "mailquotad: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	if (check_only || print_all || print_changed)
		warn_worker_destroy(&ww);
	if (check_only) {
		printf("configuration OK\n");
		config_free(&cfg);
		return 0;
	}
	if (print_all || print_changed) {
		config_print(&cfg, stdout, print_changed);
		config_free(&cfg);
		return 0;
	}

	log_setup("mailquotad", cfg.level);
	signal(SIGPIPE, SIG_IGN);
	fit_descriptors(&cfg);
	sdnotify_init();
	take_inherited_sockets(&cfg);
	sdnotify_status("loading the view from PostgreSQL");
	/* block before any thread starts, so every thread inherits the mask and only the
	   signalfd sees these signals */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		log_fatal("event=start_failed error=\"sigprocmask: %m\"");
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		log_fatal("event=start_failed error=\"signalfd: %m\"");

	struct view_options vo = { cfg.database_url, (unsigned)cfg.view_sweep_interval,
		                   (unsigned)cfg.view_ping_interval };
	struct store *store = view_new(&vo);
	struct db_limits limits = { (unsigned)cfg.database_connect_timeout,
		                    (unsigned)cfg.database_statement_timeout,
		                    (unsigned)cfg.database_lock_timeout };
	struct usage *usage = usage_new(cfg.database_url, (unsigned)cfg.database_pool_size,
	                                (unsigned)cfg.usage_key_retention, &limits);
	struct admin *admin = admin_new(cfg.database_url, (unsigned)cfg.database_pool_size, &limits,
	                                (unsigned)cfg.database_bulk_timeout);
	struct admin_folder *folder =
	        admin_folder_start(admin, (unsigned)cfg.domain_usage_fold_interval);
	struct service svc = { &cfg, store };

	/* bind first, so a socket in use fails start-up at once; clients queue in the backlog
	   while the first load completes */
	const char *why;
	struct policy_server *ps = policy_server_new(&cfg, &svc, &why);
	if (ps == NULL) {
		store_destroy(&store);
		log_fatal("event=start_failed error=\"%s\"", why);
	}
	/* READY=1 either way: without a view the daemon answers the tempfail reply, which is
	   right while the database is away, and systemd's start timeout must not kill it */
	const char *ready = "serving";
	if (view_wait_loaded(store, (unsigned)cfg.view_load_timeout * 1000) < 0) {
		log_warn("event=view_not_loaded note=\"checks answer the tempfail reply until the "
		         "database is reachable and the view is loaded\"");
		ready = "no data yet (database unreachable?): answering the tempfail reply until "
		        "the view loads";
	}
	struct http_server *hs = NULL;
	if (cfg.http_listen[0] != '\0') {
		hs = http_server_open(&cfg, &svc, admin, usage, &why);
		if (hs == NULL) {
			policy_server_destroy(&ps);
			store_destroy(&store);
			log_fatal("event=start_failed error=\"%s\"", why);
		}
	}
	if (warn_worker_start(ww, &why) < 0)
		log_fatal("event=start_failed error=\"%s\"", why);
	if (sdlisten_close_untaken() > 0)
		log_warn("event=inherited_socket_unused note=\"a socket systemd passed matches a "
		         "listener no module serves: closed\"");
	log_info("event=started version=%s policy_socket=\"%s\" policy_tcp=\"%s\" "
	         "socketmap_socket=\"%s\" socketmap_tcp=\"%s\" exim_socket=\"%s\" exim_tcp=\"%s\" "
	         "http=\"%s\" reply_profile=%s",
	         MAILQUOTA_VERSION, cfg.policy_socket, cfg.policy_tcp_listen, cfg.socketmap_socket,
	         cfg.socketmap_tcp_listen, cfg.exim_socket, cfg.exim_tcp_listen, cfg.http_listen,
	         cfg.reply_profile);

	/* SIGHUP: the same file and -o options again (reload.h) */
	struct reload *rl = reload_new(&cfg, path, overrides, (size_t)noverrides, ww);
	policy_server_set_reload(ps, on_sighup, rl);
	sdnotify_ready(ready);
	int sig = policy_server_run(ps, sfd);
	/* no reload while stopping: the warning worker it would hand channels to goes first */
	policy_server_set_reload(ps, NULL, NULL);
	sdnotify_stopping("stopping: answering what was asked, up to shutdown_timeout");
	/* first, while the database may still be used: a delivery sent meanwhile is recorded */
	warn_worker_destroy(&ww);
	/* drain: no new connections; requests already read are answered (policy checks go on
	   on the connections already open) until the HTTP side is idle or shutdown_timeout */
	log_info("event=stopping signal=%s shutdown_timeout=%llu", strsignal(sig),
	         (unsigned long long)cfg.shutdown_timeout);
	http_server_quiesce(hs);
	sig = policy_server_drain(ps, sfd, (unsigned)cfg.shutdown_timeout * 1000, http_idle, hs);
	if (sig != 0)
		log_info("event=stopping_now signal=%s", strsignal(sig));
	http_server_stop(&hs);
	policy_server_destroy(&ps);
	reload_destroy(&rl);
	store_destroy(&store);
	usage_destroy(&usage);
	admin_folder_stop(&folder);
	admin_destroy(&admin);
	close(sfd);
	log_info("event=stopped");
	config_free(&cfg);
	return 0;
}
