/*
 * Tests for reload.c, the SIGHUP path: a reload applies the live parameters of a configuration
 * file to the running configuration, refuses a file that fails its checks, leaves restart-only
 * parameters alone, and never waits for a reader: while another thread holds the read lock the
 * step returns 1 (call again) with nothing applied.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "reload.h"

static char path[] = "/tmp/mq-test-reload-XXXXXX";

static void write_config(const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* A thread that holds the read lock until told to let go. */
struct holder {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool holding, release;
};

static void *hold(void *arg)
{
	struct holder *h = arg;
	reload_read_lock();
	pthread_mutex_lock(&h->lock);
	h->holding = true;
	pthread_cond_broadcast(&h->cond);
	while (!h->release)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);
	reload_read_unlock();
	return NULL;
}

static void test_reload(void **state)
{
	(void)state;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	write_config("reply_profile = conventional\n");
	struct config run;
	const char *err = "";
	char *overrides[] = { "log_level=warn" };
	config_init(&run);
	assert_int_equal(config_load_all(&run, path, overrides, 1, &err), 0);
	struct reload *r = reload_new(&run, path, overrides, 1, NULL);

	/* live and restart-only parameters change: only the live ones are applied, and the -o
	   options still win over the file */
	write_config("reply_profile = strict\nhttp_threads = 4\nlog_level = debug\n"
	             "policy_tcp_allow = 10.0.0.0/8\n");
	assert_int_equal(reload_step(r, true), 0);
	assert_string_equal(run.replies.over_quota, "452 4.2.2 Mailbox full");
	assert_int_equal(run.policy_tcp_allow_list.n, 1);
	assert_true(run.http_threads == 1);
	assert_int_equal(run.level, LOG_LEVEL_WARN);
	assert_true(log_enabled(LOG_LEVEL_WARN) && !log_enabled(LOG_LEVEL_INFO));

	/* a file that fails its checks changes nothing */
	static const char *const bad[] = {
		"reply_profile = no452\npolcy_socket = /tmp/x\n",
		"reply_profile = no452\nreply_over_quota = 250 ok\n",
		"reply_profile = no452\nwarning_mail_command = /bin/true\n", /* no warning_mail_from
		                                                              */
		"reply_profile = no452\nwarning_webhook_url = https://h.example/\n"
		"warning_webhook_secret_file = /nonexistent/secret\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_config(bad[i]);
		assert_int_equal(reload_step(r, true), 0);
		assert_int_equal(reload_step(r, false), 0); /* nothing waits */
		assert_string_equal(run.reply_profile, "strict");
		assert_string_equal(run.replies.over_quota, "452 4.2.2 Mailbox full");
	}

	/* a reader holds the lock: the reload waits without blocking, and applies once it is
	   released */
	struct holder h = { .holding = false, .release = false };
	pthread_mutex_init(&h.lock, NULL);
	pthread_cond_init(&h.cond, NULL);
	assert_int_equal(pthread_create(&h.thread, NULL, hold, &h), 0);
	pthread_mutex_lock(&h.lock);
	while (!h.holding)
		pthread_cond_wait(&h.cond, &h.lock);
	pthread_mutex_unlock(&h.lock);
	write_config("reply_profile = no452\n");
	assert_int_equal(reload_step(r, true), 1);
	assert_int_equal(reload_step(r, false), 1);
	assert_string_equal(run.reply_profile, "strict");
	pthread_mutex_lock(&h.lock);
	h.release = true;
	pthread_cond_broadcast(&h.cond);
	pthread_mutex_unlock(&h.lock);
	pthread_join(h.thread, NULL);
	assert_int_equal(reload_step(r, false), 0);
	assert_string_equal(run.reply_profile, "no452");
	assert_string_equal(run.replies.over_quota, "450 4.2.2 Mailbox full");

	/* a reload still waiting is dropped with the reloader */
	h.release = false;
	h.holding = false;
	assert_int_equal(pthread_create(&h.thread, NULL, hold, &h), 0);
	pthread_mutex_lock(&h.lock);
	while (!h.holding)
		pthread_cond_wait(&h.cond, &h.lock);
	pthread_mutex_unlock(&h.lock);
	write_config("reply_profile = strict\n");
	assert_int_equal(reload_step(r, true), 1);
	reload_destroy(&r);
	assert_null(r);
	pthread_mutex_lock(&h.lock);
	h.release = true;
	pthread_cond_broadcast(&h.cond);
	pthread_mutex_unlock(&h.lock);
	pthread_join(h.thread, NULL);
	assert_string_equal(run.reply_profile, "no452");

	pthread_mutex_destroy(&h.lock);
	pthread_cond_destroy(&h.cond);
	config_free(&run);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
