/*
 * metrics: the daemon's counters and its Prometheus exposition (docs/metrics.md). Counting is
 * on the check path of every front end, so it must never lock, allocate or do I/O there: each
 * count is one relaxed atomic add into a fixed array (each front end's on cache lines of its
 * own, so the policy thread and the HTTP threads never share a line), and a check's duration
 * lands in one of the buckets fixed below. A scrape reads what it finds: the figures of one
 * scrape are each exact but not one snapshot, as with every Prometheus client.
 */
#include "metrics.h"

#include <dirent.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "prom.h"
#include "store.h"
#include "usage.h"
#include "version.h"

/* The check duration buckets' upper bounds, in nanoseconds: a check answered from memory takes
   microseconds; the last bounds catch a thread that was descheduled or a lock held long. */
static const uint64_t bounds_ns[] = { 5000,     10000,    25000,    50000,   100000,
	                              250000,   500000,   1000000,  2500000, 5000000,
	                              10000000, 25000000, 100000000 };
#define NBOUNDS (sizeof(bounds_ns) / sizeof(bounds_ns[0]))

#define VERDICTS  (QUOTA_TEMPFAIL + 2) /* the quota verdicts and "invalid" */
#define V_INVALID (QUOTA_TEMPFAIL + 1)
#define REASONS   (QUOTA_REASON_SYSTEM_MAX_SIZE + 1)

struct front {
	alignas(64) _Atomic uint64_t checks[VERDICTS][REASONS];
	_Atomic uint64_t buckets[NBOUNDS + 1]; /* not cumulative; the last: above every bound */
	_Atomic uint64_t sum_ns;
};

static struct front fronts[METRICS_FRONTS];
static alignas(64) _Atomic int64_t open_conns[METRICS_LISTENERS];
static _Atomic uint64_t refusals[METRICS_LISTENERS][METRICS_REFUSALS];

static const char *const front_names[] = {
	[METRICS_POLICY] = "policy",
	[METRICS_SOCKETMAP] = "socketmap",
	[METRICS_EXIM] = "exim",
	[METRICS_HTTP] = "http",
};

/* As the log's via= names them; the HTTP API and metrics_listen after them. */
static const char *const listener_names[] = {
	[METRICS_LISTEN_POLICY_UNIX] = "unix",
	[METRICS_LISTEN_POLICY_TCP] = "tcp",
	[METRICS_LISTEN_SOCKETMAP_UNIX] = "socketmap-unix",
	[METRICS_LISTEN_SOCKETMAP_TCP] = "socketmap-tcp",
	[METRICS_LISTEN_EXIM_UNIX] = "exim-unix",
	[METRICS_LISTEN_EXIM_TCP] = "exim-tcp",
	[METRICS_LISTEN_HTTP] = "http",
	[METRICS_LISTEN_METRICS] = "metrics",
};

/* The Unix sockets, where no address can be refused by policy_tcp_allow. */
static const bool listener_unix[METRICS_LISTENERS] = {
	[METRICS_LISTEN_POLICY_UNIX] = true,
	[METRICS_LISTEN_SOCKETMAP_UNIX] = true,
	[METRICS_LISTEN_EXIM_UNIX] = true,
};

/* The limit each refusal is named for, by listener kind (policy server or HTTP). */
static const char *const refusal_names[2][METRICS_REFUSALS] = {
	{
	        [METRICS_REFUSED_MAX_CONNECTIONS] = "policy_max_connections",
	        [METRICS_REFUSED_PER_CLIENT] = "policy_max_connections_per_client",
	        [METRICS_REFUSED_TCP_ALLOW] = "policy_tcp_allow",
	        [METRICS_REFUSED_DESCRIPTORS] = "descriptors",
	},
	{
	        /* libmicrohttpd says the same of http_max_connections_per_address */
	        [METRICS_REFUSED_MAX_CONNECTIONS] = "http_max_connections",
	        [METRICS_REFUSED_DESCRIPTORS] = "descriptors",
	        [METRICS_REFUSED_QUEUE] = "http_queue_max",
	},
};

/* The (verdict, reason) pairs a check can come to: always exposed, at 0 too, so a rate over
   them never starts from an absent series. Others appear once counted. */
static const struct {
	int verdict;
	enum quota_reason reason;
} usual[] = {
	{ QUOTA_ACCEPT, QUOTA_REASON_NONE },
	{ QUOTA_OVER_QUOTA, QUOTA_REASON_STORAGE },
	{ QUOTA_OVER_QUOTA, QUOTA_REASON_MESSAGES },
	{ QUOTA_OVER_QUOTA, QUOTA_REASON_DOMAIN_POOL },
	{ QUOTA_TOO_BIG_MAILBOX, QUOTA_REASON_MAILBOX_MAX_SIZE },
	{ QUOTA_TOO_BIG_SYSTEM, QUOTA_REASON_DOMAIN_MAX_SIZE },
	{ QUOTA_TOO_BIG_SYSTEM, QUOTA_REASON_SYSTEM_MAX_SIZE },
	{ QUOTA_UNKNOWN, QUOTA_REASON_NONE },
	{ QUOTA_TEMPFAIL, QUOTA_REASON_NONE },
	{ V_INVALID, QUOTA_REASON_NONE },
};

#define relaxed memory_order_relaxed

uint64_t metrics_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void metrics_check(enum metrics_front fe, const struct check_result *res, uint64_t start)
{
	struct front *f = &fronts[fe];
	uint64_t now = metrics_now(), ns = now > start ? now - start : 0;
	int v = res != NULL ? (int)res->verdict : V_INVALID;
	int r = res != NULL ? (int)res->reason : QUOTA_REASON_NONE;
	if (v < 0 || v >= VERDICTS || r < 0 || r >= REASONS)
		abort(); /* an enum this table does not know: a bug */
	size_t b = 0;
	while (b < NBOUNDS && ns > bounds_ns[b])
		b++;
	atomic_fetch_add_explicit(&f->checks[v][r], 1, relaxed);
	atomic_fetch_add_explicit(&f->buckets[b], 1, relaxed);
	atomic_fetch_add_explicit(&f->sum_ns, ns, relaxed);
}

enum metrics_listener metrics_policy_listener(enum answer_protocol proto, bool unix_socket)
{
	static const enum metrics_listener by_proto[][2] = {
		[ANSWER_POLICY] = { METRICS_LISTEN_POLICY_TCP, METRICS_LISTEN_POLICY_UNIX },
		[ANSWER_SOCKETMAP] = { METRICS_LISTEN_SOCKETMAP_TCP,
		                       METRICS_LISTEN_SOCKETMAP_UNIX },
		[ANSWER_EXIM] = { METRICS_LISTEN_EXIM_TCP, METRICS_LISTEN_EXIM_UNIX },
	};
	return by_proto[proto][unix_socket];
}

void metrics_connection_opened(enum metrics_listener l)
{
	atomic_fetch_add_explicit(&open_conns[l], 1, relaxed);
}

void metrics_connection_closed(enum metrics_listener l)
{
	atomic_fetch_sub_explicit(&open_conns[l], 1, relaxed);
}

void metrics_refused(enum metrics_listener l, enum metrics_refusal why)
{
	atomic_fetch_add_explicit(&refusals[l][why], 1, relaxed);
}

/* ---- the exposition ---- */

#define NL(a) (sizeof(a) / sizeof((a)[0]))

static void write_checks(struct prom_writer *w)
{
	prom_family(w, "mailquota_checks_total", PROM_COUNTER,
	            "Recipient checks answered, by front end, verdict and the limit that decided.");
	for (int fe = 0; fe < METRICS_FRONTS; fe++)
		for (int v = 0; v < VERDICTS; v++)
			for (int r = 0; r < REASONS; r++) {
				uint64_t n =
				        atomic_load_explicit(&fronts[fe].checks[v][r], relaxed);
				bool always = false;
				for (size_t i = 0; i < NL(usual) && !always; i++)
					always = usual[i].verdict == v && (int)usual[i].reason == r;
				if (n == 0 && !always)
					continue;
				struct prom_label l[] = {
					{ "front_end", front_names[fe] },
					{ "verdict",
					  v == V_INVALID
					          ? "invalid"
					          : quota_verdict_name((enum quota_verdict)v) },
					{ "reason", quota_reason_name((enum quota_reason)r) },
				};
				prom_sample_u64(w, "mailquota_checks_total", l, NL(l), n);
			}
	double bounds[NBOUNDS];
	for (size_t i = 0; i < NBOUNDS; i++)
		bounds[i] = (double)bounds_ns[i] / 1e9;
	prom_family(w, "mailquota_check_duration_seconds", PROM_HISTOGRAM,
	            "Time from a parsed request to its verdict, by front end.");
	for (int fe = 0; fe < METRICS_FRONTS; fe++) {
		uint64_t counts[NBOUNDS + 1];
		for (size_t i = 0; i <= NBOUNDS; i++)
			counts[i] = atomic_load_explicit(&fronts[fe].buckets[i], relaxed);
		struct prom_label l[] = { { "front_end", front_names[fe] } };
		double sum = (double)atomic_load_explicit(&fronts[fe].sum_ns, relaxed) / 1e9;
		prom_histogram(w, "mailquota_check_duration_seconds", l, NL(l), bounds, counts,
		               NBOUNDS, sum);
	}
}

static void write_connections(struct prom_writer *w)
{
	prom_family(w, "mailquota_connections", PROM_GAUGE, "Connections open, by listener.");
	for (int i = 0; i < METRICS_LISTENERS; i++) {
		int64_t n = atomic_load_explicit(&open_conns[i], relaxed);
		struct prom_label l[] = { { "listener", listener_names[i] } };
		prom_sample(w, "mailquota_connections", l, NL(l), n > 0 ? (double)n : 0);
	}
	prom_family(w, "mailquota_connections_refused_total", PROM_COUNTER,
	            "Connections refused (http_queue_max: requests answered 503 busy), by "
	            "listener and the limit that refused them.");
	for (int i = 0; i < METRICS_LISTENERS; i++)
		for (int r = 0; r < METRICS_REFUSALS; r++) {
			const char *why = refusal_names[i >= METRICS_LISTEN_HTTP][r];
			if (why == NULL || (listener_unix[i] && r == METRICS_REFUSED_TCP_ALLOW) ||
			    (i == METRICS_LISTEN_METRICS && r == METRICS_REFUSED_QUEUE))
				continue; /* refusals that listener cannot make (no worker queue) */
			struct prom_label l[] = { { "listener", listener_names[i] },
				                  { "reason", why } };
			prom_sample_u64(w, "mailquota_connections_refused_total", l, NL(l),
			                atomic_load_explicit(&refusals[i][r], relaxed));
		}
}

static void gauge(struct prom_writer *w, const char *name, const char *help, double v)
{
	prom_family(w, name, PROM_GAUGE, help);
	prom_sample(w, name, NULL, 0, v);
}

static void counter(struct prom_writer *w, const char *name, const char *help, uint64_t v)
{
	prom_family(w, name, PROM_COUNTER, help);
	prom_sample_u64(w, name, NULL, 0, v);
}

static void write_store(struct prom_writer *w, const struct metrics_sources *src)
{
	struct store_status st;
	store_status(src->store, &st);
	gauge(w, "mailquota_view_loaded", "1 once the in-memory view holds data to answer from.",
	      st.loaded);
	gauge(w, "mailquota_view_age_seconds",
	      "How long since the view was last known to match PostgreSQL (about 0 in sync).",
	      st.age_seconds);
	gauge(w, "mailquota_view_domains", "Domains held in the view.", (double)st.domains);
	gauge(w, "mailquota_view_mailboxes", "Mailboxes held in the view.", (double)st.mailboxes);
	gauge(w, "mailquota_view_aliases", "Aliases held in the view.", (double)st.aliases);
	counter(w, "mailquota_view_full_loads_total",
	        "Full loads of the view (start, sweeps, resyncs after a reconnect, large batches).",
	        st.full_loads);
	gauge(w, "mailquota_view_last_load_duration_seconds", "How long the last full load took.",
	      st.last_load_seconds);
	counter(w, "mailquota_view_notifications_total",
	        "Change notifications applied to the view.", st.notifications);
	gauge(w, "mailquota_database_up", "1 while the view's listener is connected to PostgreSQL.",
	      st.db_up);
	counter(w, "mailquota_database_reconnects_total",
	        "Connections the view's listener made to PostgreSQL after its first.",
	        st.reconnects);
}

static void write_writes(struct prom_writer *w, const struct metrics_sources *src)
{
	if (src->usage != NULL) {
		uint64_t c[USAGE_OUTCOMES];
		usage_counts(src->usage, c);
		prom_family(
		        w, "mailquota_usage_reports_total", PROM_COUNTER,
		        "Usage reports given to the database, by outcome (failed: the batch was "
		        "not committed and answered 503).");
		for (int i = 0; i < USAGE_OUTCOMES; i++) {
			struct prom_label l[] = { { "outcome",
				                    usage_outcome_name((enum usage_outcome)i) } };
			prom_sample_u64(w, "mailquota_usage_reports_total", l, NL(l), c[i]);
		}
	}
	if (src->admin != NULL) {
		uint64_t c[RESOURCE_ALIAS + 1][ADMIN_CODES + 1];
		admin_change_counts(src->admin, c);
		prom_family(
		        w, "mailquota_admin_changes_total", PROM_COUNTER,
		        "Creations, updates and deletions of domains, mailboxes and aliases, by "
		        "kind and outcome (failed: the database could not be reached).");
		for (int k = 0; k <= RESOURCE_ALIAS; k++)
			for (int o = 0; o <= ADMIN_CODES; o++) {
				/* the codes a change can answer, and any other once counted */
				bool usual_code = o == ADMIN_OK || o == ADMIN_CREATED ||
				                  o == ADMIN_NOT_FOUND || o == ADMIN_EXISTS ||
				                  o == ADMIN_VERSION_MISMATCH ||
				                  o == ADMIN_INVALID_VALUE || o == ADMIN_CODES;
				if (c[k][o] == 0 && !usual_code)
					continue;
				struct prom_label l[] = {
					{ "kind", resource_kind_name((enum resource_kind)k) },
					{ "outcome",
					  o == ADMIN_CODES ? "failed"
					                   : admin_code_name((enum admin_code)o) },
				};
				prom_sample_u64(w, "mailquota_admin_changes_total", l, NL(l),
				                c[k][o]);
			}
	}
}

/* The start time since the epoch, taken once before main() (a value that moved between
   scrapes would look like a restart to changes()); not from /proc/stat's btime, which a unit's
   ProcSubset=pid hides. */
static double start_time;

__attribute__((constructor)) static void take_start_time(void)
{
	struct timespec real;
	if (clock_gettime(CLOCK_REALTIME, &real) == 0)
		start_time = (double)real.tv_sec;
}

/* The process facts every Prometheus client exposes: CPU time and resident memory from
   /proc/self/stat (left out when it cannot be read), the start time, the descriptors. */
static void write_process(struct prom_writer *w)
{
	char line[1024];
	unsigned long utime, stime, rss_pages;
	FILE *f = fopen("/proc/self/stat", "re");
	if (f == NULL)
		return;
	char *p = fgets(line, sizeof(line), f);
	fclose(f);
	p = p != NULL ? strrchr(line, ')') : NULL; /* the command name may hold anything */
	if (p == NULL || sscanf(p + 1,
	                        " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d "
	                        "%*d %*d %*d %*d %*u %*u %lu",
	                        &utime, &stime, &rss_pages) != 3)
		return;
	double tick = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
	prom_family(w, "process_cpu_seconds_total", PROM_COUNTER,
	            "Total user and system CPU time spent in seconds.");
	prom_sample(w, "process_cpu_seconds_total", NULL, 0, (double)(utime + stime) / tick);
	gauge(w, "process_resident_memory_bytes", "Resident memory size in bytes.",
	      (double)rss_pages * page);
	if (start_time > 0)
		gauge(w, "process_start_time_seconds",
		      "Start time of the process since unix epoch in seconds.", start_time);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		gauge(w, "process_max_fds", "Maximum number of open file descriptors.",
		      (double)rl.rlim_cur);
	DIR *d = opendir("/proc/self/fd");
	if (d != NULL) {
		unsigned long n = 0;
		for (struct dirent *e; (e = readdir(d)) != NULL;)
			n += e->d_name[0] != '.';
		closedir(d);
		gauge(w, "process_open_fds", "Number of open file descriptors.",
		      (double)(n > 0 ? n - 1 : 0)); /* not the one reading the directory */
	}
}

int metrics_write(const struct metrics_sources *src, struct buf *out, const char **error_r)
{
	struct prom_writer w;
	prom_init(&w, out);
	prom_family(&w, "mailquota_build_info", PROM_GAUGE,
	            "Always 1; the version of mailquotad is its label.");
	struct prom_label version[] = { { "version", MAILQUOTA_VERSION } };
	prom_sample(&w, "mailquota_build_info", version, NL(version), 1);
	write_checks(&w);
	write_connections(&w);
	if (src->store != NULL)
		write_store(&w, src);
	write_writes(&w, src);
	if (prom_finish(&w, error_r) == 0)
		write_process(&w);
	return prom_finish(&w, error_r);
}
