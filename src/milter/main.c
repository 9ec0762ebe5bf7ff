/*
 * mailquota-milter: a milter (libmilter) that asks the running mailquotad, over its policy
 * socket, about each recipient of each SMTP transaction. main.c only wires: arguments, the
 * configuration, the socket (its group and mode), then smfi_main() until a signal.
 *
 * libmilter owns this process's signals: smfi_main() starts a thread that sigwait()s for
 * SIGHUP, SIGTERM and SIGINT and stops the milter for good on any of them. That is why the
 * milter is a program of its own rather than a part of mailquotad (docs/milter.md). Every
 * one of those signals therefore ends this program cleanly (exit 0, socket removed); the
 * systemd unit restarts it. Only start-up failures are fatal.
 */
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "filter.h"
#include "log.h"
#include "milter_reply.h"
#include "version.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: mailquota-milter [-c config] [-o name=value]... [-n] [-f] [-V]\n"
	        "  -c FILE        configuration file (default " CONFIG_DEFAULT_PATH ")\n"
	        "  -o NAME=VALUE  override one parameter (repeatable)\n"
	        "  -n             check the configuration, print \"configuration OK\" and exit\n"
	        "  -f             stay in the foreground (always so; for init scripts)\n"
	        "  -V             print the version and exit\n");
}

/* Whether something accepts connections on the Unix socket at path (another milter). */
static bool socket_live(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return false; /* config_finish() refused such a path */
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return live;
}

/* Give the Unix socket libmilter created its configured group and mode. */
static void socket_access(const struct config *cfg, const char *path)
{
	if (cfg->milter_socket_group[0] != '\0') {
		struct group *g = getgrnam(cfg->milter_socket_group);
		if (g == NULL)
			log_fatal("event=start_failed error=\"milter_socket_group: no group %s\"",
			          cfg->milter_socket_group);
		if (chown(path, (uid_t)-1, g->gr_gid) < 0)
			log_fatal("event=start_failed error=\"chown %s: %m\"", path);
	}
	if (chmod(path, (mode_t)cfg->milter_socket_mode) < 0)
		log_fatal("event=start_failed error=\"chmod %s: %m\"", path);
}

int main(int argc, char **argv)
{
	const char *path = NULL, *err = "";
	bool check_only = false;
	struct config cfg;
	char *overrides[64];
	int noverrides = 0, opt;

	while ((opt = getopt(argc, argv, "c:o:nfVh")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'o':
			if (noverrides == 64) {
				fprintf(stderr, "mailquota-milter: too many -o options\n");
				return 2;
			}
			overrides[noverrides++] = optarg;
			break;
		case 'n':
			check_only = true;
			break;
		case 'f':
			break;
		case 'V':
			printf("mailquota-milter %s\n", MAILQUOTA_VERSION);
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
	if (config_load_all(&cfg, path, overrides, (size_t)noverrides, &err) < 0)
		goto config_error;
	if (cfg.milter_socket[0] == '\0') {
		err = "milter_socket is empty: say where the milter listens (e.g. "
		      "unix:/run/mailquota-milter/milter.sock)";
		goto config_error;
	}
	struct smfiDesc *desc;
	if (filter_setup(&cfg, &desc, &err) < 0)
		goto config_error;
	if (check_only) {
		printf("configuration OK\n");
		config_free(&cfg);
		return 0;
	}

	log_setup("mailquota-milter", cfg.level);
	signal(SIGPIPE, SIG_IGN);
	const char *sock;
	if (milter_spec_check(cfg.milter_socket, &sock, &err) < 0)
		abort(); /* config_finish() checked it */
	if (smfi_setconn(cfg.milter_socket) != MI_SUCCESS)
		log_fatal("event=start_failed error=\"smfi_setconn %s failed\"", cfg.milter_socket);
	if (smfi_register(*desc) != MI_SUCCESS)
		log_fatal("event=start_failed error=\"smfi_register failed\"");
	/* create the socket now (removing a stale one), so its access is set before the MTA can
	   connect and a start-up failure is reported at once */
	/* libmilter removes whatever is at the path: a socket another milter still answers on
	   must not be taken from it (a stale one left by a crash is replaced) */
	if (sock != NULL && socket_live(sock))
		log_fatal("event=start_failed error=\"%s: another process answers on it\"", sock);
	mode_t old_mask = umask(0177); /* nobody can connect before its group and mode are set */
	if (smfi_opensocket(true) != MI_SUCCESS)
		log_fatal("event=start_failed error=\"cannot listen on %s\"", cfg.milter_socket);
	umask(old_mask);
	if (sock != NULL)
		socket_access(&cfg, sock);
	log_info("event=start version=%s listen=%s daemon=%s timeout=%llu", MAILQUOTA_VERSION,
	         cfg.milter_socket,
	         cfg.milter_connect[0] != '\0' ? cfg.milter_connect : cfg.policy_socket,
	         (unsigned long long)cfg.milter_timeout);
	int rc = smfi_main();
	/* libmilter removes its Unix socket on the way out; make sure of it */
	if (sock != NULL)
		(void)unlink(sock);
	log_info("event=stop result=%s", rc == MI_SUCCESS ? "ok" : "failed");
	config_free(&cfg);
	return rc == MI_SUCCESS ? 0 : 1;

config_error:
	fprintf(stderr, "mailquota-milter: %s\n", err);
	config_free(&cfg);
	return 1;
}
