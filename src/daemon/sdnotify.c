/*
 * sdnotify: mailquotad's side of systemd's notification protocol (sd_notify(3)): readiness,
 * reloads, stopping, a STATUS= line and the watchdog. It must never block or fail the daemon:
 * a lost datagram costs a status line, nothing else, and without NOTIFY_SOCKET nothing is sent.
 */
#include "sdnotify.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#define STATUS_MAX 256 /* a STATUS= text; longer is cut (vsnprintf) */

static bool enabled;
static uint64_t watchdog_ms; /* ping interval: half of WATCHDOG_USEC; 0: no watchdog */
static uint64_t last_ping_ms;
static uint64_t last_status_ms; /* 0: no status line from sdnotify_tick() yet */
static char last_status[STATUS_MAX];

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void sdnotify_init(void)
{
	const char *ns = getenv("NOTIFY_SOCKET");
	enabled = ns != NULL && ns[0] != '\0';
	uint64_t usec = 0;
	/* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is this process */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		watchdog_ms = usec / 2000;
		if (watchdog_ms == 0)
			watchdog_ms = 1;
	}
	last_ping_ms = mono_ms();
}

bool sdnotify_enabled(void)
{
	return enabled;
}

/* Send "head" followed by STATUS=status when status is given; remember the status. */
static void send_with_status(const char *head, const char *status)
{
	if (!enabled)
		return;
	if (status == NULL) {
		sd_notify(0, head);
		return;
	}
	snprintf(last_status, sizeof(last_status), "%s", status);
	sd_notifyf(0, "%s\nSTATUS=%s", head, last_status);
}

void sdnotify_ready(const char *status)
{
	send_with_status("READY=1", status);
}

void sdnotify_reloading(const char *status)
{
	char head[64];
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t usec = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	snprintf(head, sizeof(head), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, usec);
	send_with_status(head, status);
}

void sdnotify_stopping(const char *status)
{
	send_with_status("STOPPING=1", status);
}

void sdnotify_status(const char *fmt, ...)
{
	if (!enabled)
		return;
	char text[STATUS_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (strcmp(text, last_status) == 0)
		return;
	memcpy(last_status, text, sizeof(text));
	sd_notifyf(0, "STATUS=%s", last_status);
}

/* The STATUS= line of a serving daemon. */
static void status_view(const struct store_status *st, unsigned policy_conns)
{
	if (!st->loaded) {
		sdnotify_status("no data yet: answering the tempfail reply; database %s; %u policy "
		                "connections",
		                st->db_up ? "up, loading" : "unreachable", policy_conns);
		return;
	}
	/* whole seconds: an age that moves by milliseconds would make every line new */
	unsigned long long age = st->age_seconds > 0 ? (unsigned long long)st->age_seconds : 0;
	sdnotify_status("%" PRIu64 " mailboxes, %" PRIu64 " aliases, %" PRIu64
	                " domains; view %llu s old; database %s; %u policy connections",
	                st->mailboxes, st->aliases, st->domains, age,
	                st->db_up ? "up" : "unreachable", policy_conns);
}

unsigned sdnotify_watchdog_interval_ms(void)
{
	/* woken this often, a ping is at most 1.5 intervals (3/4 of WATCHDOG_USEC) apart */
	uint64_t wake = watchdog_ms / 2;
	if (watchdog_ms != 0 && wake == 0)
		wake = 1;
	return wake > UINT32_MAX ? UINT32_MAX : (unsigned)wake;
}

void sdnotify_watchdog(void)
{
	if (watchdog_ms == 0)
		return;
	uint64_t now = mono_ms();
	if (now - last_ping_ms < watchdog_ms)
		return;
	last_ping_ms = now;
	sd_notify(0, "WATCHDOG=1");
}

void sdnotify_tick(struct store *store, unsigned policy_conns)
{
	sdnotify_watchdog();
	if (!enabled || store == NULL)
		return;
	uint64_t now = mono_ms();
	if (last_status_ms != 0 && now - last_status_ms < SDNOTIFY_STATUS_INTERVAL_SEC * 1000)
		return;
	last_status_ms = now;
	struct store_status st;
	store_status(store, &st);
	status_view(&st, policy_conns);
}
