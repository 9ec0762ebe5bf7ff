/*
 * loadgen: a closed-loop load generator. N persistent connections, one request in flight on
 * each (as Postfix's smtpd processes do), driven by one epoll thread so it takes as little CPU
 * from the server as it can. Prints one line of figures; asserts nothing.
 *
 *   loadgen unix PATH CONNS SECONDS MAILBOXES
 *   loadgen tcp HOST:PORT CONNS SECONDS MAILBOXES
 *   loadgen http HOST:PORT CONNS SECONDS MAILBOXES
 *   loadgen propagation CONNINFO UNIX_PATH ROUNDS [pair]  (pair: another change commits with
 *                                                        each probed one, from a second session)
 *   loadgen usage HOST:PORT CONNS SECONDS MAILBOXES BATCH   (POST /v1/usage, BATCH reports each)
 *   loadgen rawupdate CONNINFO THREADS SECONDS MAILBOXES     (the plain UPDATE baseline)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUF_MAX 131072

enum mode { M_UNIX, M_TCP, M_HTTP, M_USAGE };

static unsigned usage_batch = 1; /* reports per POST /v1/usage */
/* "Authorization: Bearer <MQ_BENCH_TOKEN>\r\n", or "" without a token */
static char auth_header[256] = "";
static unsigned long key_seq;

struct conn {
	int fd;
	char out[BUF_MAX];
	size_t out_len, out_off;
	char in[BUF_MAX];
	size_t in_len;
	uint64_t started;
};

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int connect_to(enum mode m, const char *target)
{
	int fd;
	if (m == M_UNIX) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", target);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return -1;
	} else {
		char host[64];
		snprintf(host, sizeof(host), "%s", target);
		char *colon = strrchr(host, ':');
		if (colon == NULL)
			return -1;
		*colon = '\0';
		struct sockaddr_in sa = { .sin_family = AF_INET,
			                  .sin_port = htons((uint16_t)atoi(colon + 1)) };
		inet_pton(AF_INET, host, &sa.sin_addr);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return -1;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* A request as Postfix 3.7 sends it at RCPT, with a random recipient and size. */
static void make_request(enum mode m, struct conn *c, unsigned mailboxes)
{
	unsigned mb = (unsigned)(rng() % mailboxes);
	unsigned size = (unsigned)(rng() % 200000);
	int n;
	if (m == M_USAGE) {
		/* a batch of usage reports with fresh keys, over random mailboxes */
		char body[BUF_MAX - 256];
		size_t off = (size_t)snprintf(body, sizeof(body), "{\"reports\":[");
		for (unsigned i = 0; i < usage_batch; i++)
			off += (size_t)snprintf(body + off, sizeof(body) - off,
			                        "%s{\"mailbox\":\"u%u@bench.test\",\"bytes\":%u,"
			                        "\"messages\":1,\"key\":\"bench/%d/%lu\"}",
			                        i ? "," : "", (unsigned)(rng() % mailboxes),
			                        (unsigned)(rng() % 100000), (int)getpid(),
			                        ++key_seq);
		off += (size_t)snprintf(body + off, sizeof(body) - off, "]}");
		n = snprintf(c->out, sizeof(c->out),
		             "POST /v1/usage HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
		             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		             auth_header, off, body);
		c->out_len = (size_t)n;
		c->out_off = 0;
		c->in_len = 0;
		c->started = now_ns();
		return;
	}
	if (m == M_HTTP)
		n = snprintf(c->out, sizeof(c->out),
		             "GET /v1/check?recipient=u%u%%40bench.test&size=%u HTTP/1.1\r\n"
		             "Host: 127.0.0.1\r\n%s\r\n",
		             mb, size, auth_header);
	else
		n = snprintf(
		        c->out, sizeof(c->out),
		        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
		        "client_address=192.0.2.10\nclient_name=mail.example.org\n"
		        "reverse_client_name=mail.example.org\nhelo_name=mail.example.org\n"
		        "sender=alice@example.org\nrecipient=u%u@bench.test\nrecipient_count=0\n"
		        "queue_id=\ninstance=1a2b.5f3e1c9a.8d4e1.0\nsize=%u\netrn_domain=\n"
		        "stress=\nsasl_method=\nsasl_username=\nsasl_sender=\nccert_subject=\n"
		        "ccert_issuer=\nccert_fingerprint=\nencryption_protocol=TLSv1.3\n"
		        "encryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\n"
		        "policy_context=\nserver_address=192.0.2.1\nserver_port=25\n\n",
		        mb, size);
	c->out_len = (size_t)n;
	c->out_off = 0;
	c->in_len = 0;
	c->started = now_ns();
}

/* Length of a complete reply at the start of in, or 0. */
static size_t reply_len(enum mode m, const char *in, size_t len)
{
	if (m == M_UNIX || m == M_TCP) {
		for (size_t i = 1; i < len; i++)
			if (in[i] == '\n' && in[i - 1] == '\n')
				return i + 1;
		return 0;
	}
	const char *end = memmem(in, len, "\r\n\r\n", 4);
	if (end == NULL)
		return 0;
	size_t head = (size_t)(end - in) + 4;
	const char *cl = memmem(in, head, "Content-Length:", 15);
	if (cl == NULL)
		cl = memmem(in, head, "content-length:", 15);
	size_t body = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
	return len >= head + body ? head + body : 0;
}

/* Write everything, waiting while a non-blocking socket is full (requests are small). */
static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				struct timespec ts = { 0, 100000 };
				nanosleep(&ts, NULL);
				continue;
			}
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* The baseline for usage reports: THREADS connections each running
   UPDATE mailboxes SET used_bytes = used_bytes + $1 ... in autocommit, as fast as they can. */
struct raw_ctx {
	const char *conninfo;
	unsigned mailboxes;
	double seconds;
	unsigned long done, errors;
};

static void *raw_worker(void *arg)
{
	struct raw_ctx *c = arg;
	PGconn *pg = PQconnectdb(c->conninfo);
	uint64_t seed = (uint64_t)(uintptr_t)&seed ^ now_ns();
	if (PQstatus(pg) != CONNECTION_OK) {
		c->errors++;
		return NULL;
	}
	PGresult *r = PQprepare(pg, "up",
	                        "UPDATE mailboxes SET used_bytes = used_bytes + $1 WHERE local_part"
	                        " = $2 AND domain_id = (SELECT id FROM domains WHERE name ="
	                        " 'bench.test')",
	                        2, NULL);
	PQclear(r);
	uint64_t deadline = now_ns() + (uint64_t)(c->seconds * 1e9);
	while (now_ns() < deadline) {
		char b[16], mb[32];
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		snprintf(b, sizeof(b), "%u", (unsigned)(seed % 100000));
		snprintf(mb, sizeof(mb), "u%u", (unsigned)((seed >> 20) % c->mailboxes));
		const char *params[2] = { b, mb };
		r = PQexecPrepared(pg, "up", 2, params, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_COMMAND_OK)
			c->done++;
		else
			c->errors++;
		PQclear(r);
	}
	PQfinish(pg);
	return NULL;
}

static int run_raw(const char *conninfo, int threads, double seconds, unsigned mailboxes)
{
	pthread_t t[256];
	struct raw_ctx ctx[256];
	if (threads > 256)
		threads = 256;
	uint64_t t0 = now_ns();
	for (int i = 0; i < threads; i++) {
		ctx[i] = (struct raw_ctx){ conninfo, mailboxes, seconds, 0, 0 };
		pthread_create(&t[i], NULL, raw_worker, &ctx[i]);
	}
	unsigned long done = 0, errors = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		done += ctx[i].done;
		errors += ctx[i].errors;
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	printf("requests=%lu seconds=%.2f rps=%.0f errors=%lu\n", done, secs, (double)done / secs,
	       errors);
	return errors ? 1 : 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int run_load(enum mode m, const char *target, int nconns, double seconds, unsigned mailboxes)
{
	struct conn *conns = calloc((size_t)nconns, sizeof(*conns));
	size_t cap = 1 << 20, nlat = 0;
	uint32_t *lat = malloc(cap * sizeof(*lat));
	unsigned long errors = 0;
	int ep = epoll_create1(0);
	for (int i = 0; i < nconns; i++) {
		conns[i].fd = connect_to(m, target);
		if (conns[i].fd < 0) {
			fprintf(stderr, "loadgen: cannot connect to %s: %s\n", target,
			        strerror(errno));
			return 1;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &conns[i] };
		epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
	}
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(seconds * 1e9);
	for (int i = 0; i < nconns; i++) {
		make_request(m, &conns[i], mailboxes);
		if (write_all(conns[i].fd, conns[i].out, conns[i].out_len) < 0)
			errors++;
	}
	struct epoll_event evs[256];
	int active = nconns;
	while (active > 0) {
		int n = epoll_wait(ep, evs, 256, 1000);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			ssize_t r = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				errors++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				active--;
				continue;
			}
			c->in_len += (size_t)r;
			size_t used = reply_len(m, c->in, c->in_len);
			if (used == 0)
				continue;
			uint64_t t = now_ns();
			if (nlat == cap) {
				cap *= 2;
				lat = realloc(lat, cap * sizeof(*lat));
			}
			uint64_t d = (t - c->started) / 1000;
			lat[nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
			if ((m == M_UNIX || m == M_TCP) && strncmp(c->in, "action=", 7) != 0)
				errors++;
			if ((m == M_HTTP || m == M_USAGE) &&
			    strncmp(c->in, "HTTP/1.1 200", 12) != 0)
				errors++;
			if (t >= deadline) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				active--;
				continue;
			}
			make_request(m, c, mailboxes);
			if (write_all(c->fd, c->out, c->out_len) < 0)
				errors++;
		}
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	qsort(lat, nlat, sizeof(*lat), cmp_u32);
	uint32_t p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[nlat * 99 / 100] : 0,
	         p999 = nlat ? lat[nlat * 999 / 1000] : 0;
	printf("requests=%zu seconds=%.2f rps=%.0f p50_us=%u p99_us=%u p999_us=%u errors=%lu\n",
	       nlat, secs, (double)nlat / secs, p50, p99, p999, errors);
	for (int i = 0; i < nconns; i++)
		close(conns[i].fd);
	free(conns);
	free(lat);
	return errors ? 1 : 0;
}

/* Ask the daemon on path about prop@bench.test once; returns 1 if refused, 0 if not, -1. */
static int probe(int fd)
{
	static const char req[] = "request=smtpd_access_policy\nprotocol_state=RCPT\n"
	                          "recipient=prop@bench.test\nsize=1\n\n";
	char in[512];
	size_t len = 0;
	if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
		return -1;
	for (;;) {
		ssize_t r = read(fd, in + len, sizeof(in) - 1 - len);
		if (r <= 0)
			return -1;
		len += (size_t)r;
		if (reply_len(M_UNIX, in, len))
			break;
	}
	return strncmp(in, "action=DUNNO", 12) != 0;
}

/* A change to another mailbox of the same domain (by the same index as the probed one). */
#define OTHER_CHANGE(local)                                                                 \
	"UPDATE mailboxes SET used_messages = used_messages + 1 WHERE local_part = '" local \
	"' AND domain_id = (SELECT id FROM domains WHERE name = 'bench.test')"

static int run_propagation(const char *conninfo, const char *path, int rounds, int pair)
{
	PGconn *pg = PQconnectdb(conninfo);
	PGconn *other = pair ? PQconnectdb(conninfo) : NULL;
	if (PQstatus(pg) != CONNECTION_OK || (pair && PQstatus(other) != CONNECTION_OK)) {
		fprintf(stderr, "loadgen: %s", PQerrorMessage(pg));
		return 1;
	}
	int fd = connect_to(M_UNIX, path);
	if (fd < 0) {
		fprintf(stderr, "loadgen: cannot connect to %s\n", path);
		return 1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	uint32_t *lat = calloc((size_t)rounds, sizeof(*lat));
	uint32_t *commit = calloc((size_t)rounds, sizeof(*commit));
	for (int i = 0; i < rounds; i++) {
		int full = i % 2 == 0;
		char sql[200];
		snprintf(sql, sizeof(sql),
		         "UPDATE mailboxes SET used_bytes = %d WHERE local_part = 'prop' AND "
		         "domain_id"
		         " = (SELECT id FROM domains WHERE name = 'bench.test')",
		         full ? 1000 : 0);
		/* the other change is sent first, so its notification is the one that wakes the
		   daemon and the probed one arrives while it fetches the first */
		if (pair && !PQsendQuery(other, i % 2 ? OTHER_CHANGE("u0") : OTHER_CHANGE("u1"))) {
			fprintf(stderr, "loadgen: %s", PQerrorMessage(other));
			return 1;
		}
		uint64_t t0 = now_ns();
		PGresult *r = PQexec(pg, sql);
		uint64_t t1 = now_ns();
		if (pair) {
			PGresult *o;
			while ((o = PQgetResult(other)) != NULL)
				PQclear(o);
		}
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			fprintf(stderr, "loadgen: %s", PQresultErrorMessage(r));
			return 1;
		}
		PQclear(r);
		int got;
		uint64_t t2;
		do {
			got = probe(fd);
			t2 = now_ns();
			if (got < 0) {
				fprintf(stderr, "loadgen: probe failed\n");
				return 1;
			}
		} while (got != full && t2 - t1 < 10000000000ULL);
		commit[i] = (uint32_t)((t1 - t0) / 1000);
		lat[i] = (uint32_t)((t2 - t1) / 1000);
		usleep(20000);
	}
	qsort(lat, (size_t)rounds, sizeof(*lat), cmp_u32);
	qsort(commit, (size_t)rounds, sizeof(*commit), cmp_u32);
	printf("rounds=%d commit_p50_us=%u visible_p50_us=%u visible_p90_us=%u visible_p99_us=%u "
	       "visible_max_us=%u\n",
	       rounds, commit[rounds / 2], lat[rounds / 2], lat[rounds * 9 / 10],
	       lat[rounds * 99 / 100], lat[rounds - 1]);
	PQfinish(pg);
	if (other != NULL)
		PQfinish(other);
	close(fd);
	free(lat);
	free(commit);
	return 0;
}

int main(int argc, char **argv)
{
	const char *tok = getenv("MQ_BENCH_TOKEN");
	if (tok != NULL && tok[0] != '\0' &&
	    (size_t)snprintf(auth_header, sizeof(auth_header), "Authorization: Bearer %s\r\n",
	                     tok) >= sizeof(auth_header)) {
		fprintf(stderr, "loadgen: MQ_BENCH_TOKEN too long\n");
		return 2;
	}
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "propagation") == 0)
		return run_propagation(argv[2], argv[3], atoi(argv[4]),
		                       argc == 6 && strcmp(argv[5], "pair") == 0);
	if (argc == 6 && strcmp(argv[1], "rawupdate") == 0)
		return run_raw(argv[2], atoi(argv[3]), atof(argv[4]), (unsigned)atoi(argv[5]));
	if (argc == 7 && strcmp(argv[1], "usage") == 0) {
		usage_batch = (unsigned)atoi(argv[6]);
		if (usage_batch < 1 || usage_batch > 1000)
			return 2;
		return run_load(M_USAGE, argv[2], atoi(argv[3]), atof(argv[4]),
		                (unsigned)atoi(argv[5]));
	}
	if (argc != 6) {
		fprintf(stderr, "usage: loadgen unix|tcp|http TARGET CONNS SECONDS MAILBOXES\n"
		                "       loadgen propagation CONNINFO UNIX_PATH ROUNDS\n");
		return 2;
	}
	enum mode m = strcmp(argv[1], "unix") == 0  ? M_UNIX
	              : strcmp(argv[1], "tcp") == 0 ? M_TCP
	                                            : M_HTTP;
	return run_load(m, argv[2], atoi(argv[3]), atof(argv[4]), (unsigned)atoi(argv[5]));
}
