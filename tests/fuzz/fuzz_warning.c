/* libFuzzer target: warnings. The input's first byte picks what it is: a settings change body
   (any JSON an admin may send: what is accepted must be normalised into values the database
   constraints take), or a mail template (what passes warning_template_check() must render for
   any event with no header of its own making and no line break from a value). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_input.h"
#include "warning.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct address_rules rules = { .delimiters = "+", .fold_local = true };

/* An accepted thresholds array is what sql/013's mq_warn_thresholds_ok() takes. */
static void check_thresholds(json_t *t)
{
	if (t == NULL || json_is_null(t))
		return;
	if (!json_is_array(t) || json_array_size(t) > WARNING_THRESHOLDS_MAX)
		abort();
	json_int_t prev = 0;
	size_t i;
	json_t *v;
	json_array_foreach(t, i, v)
	{
		json_int_t n = json_integer_value(v);
		if (!json_is_integer(v) || n <= prev || n > WARNING_THRESHOLD_MAX)
			abort();
		prev = n;
	}
}

static void settings(const char *text)
{
	json_t *body = json_loads(text, JSON_REJECT_DUPLICATES, NULL), *fields = NULL;
	if (body == NULL)
		return;
	const char *field = NULL, *why = NULL;
	if (warning_settings_check(body, &rules, &fields, &field, &why) == 0) {
		check_thresholds(json_object_get(fields, "thresholds"));
		json_t *doms = json_object_get(fields, "domains");
		const char *name;
		json_t *d;
		json_object_foreach(doms, name, d)
		        check_thresholds(json_object_get(d, "thresholds"));
		json_decref(fields);
	} else if (field == NULL || why == NULL) {
		abort();
	}
	json_decref(body);
}

/* The header lines of a rendered message (up to its first empty line). */
static size_t header_lines(const char *msg)
{
	const char *end = strstr(msg, "\n\n");
	size_t n = 0;
	for (const char *p = msg; end != NULL && p < end; p++)
		n += *p == '\n';
	return n;
}

static void template(const char *text)
{
	const char *why;
	unsigned line;
	if (warning_template_check(text, &why, &line) < 0)
		return;
	struct warning_event plain = { .event_id = "0b6c8f8e-1d2a-4c55-9f0e-3f2d1c0b9a87",
		                       .address = "a@b.test",
		                       .resource = WARNING_STORAGE,
		                       .threshold = 80,
		                       .percent = "80.5",
		                       .used = 805,
		                       .limit = 1000 };
	struct warning_event hostile = plain;
	snprintf(hostile.address, sizeof(hostile.address), "a\nBcc: x@y\n\nbody");
	snprintf(hostile.percent, sizeof(hostile.percent), "\r\n\n");
	hostile.resource = WARNING_MESSAGES;
	hostile.used = UINT64_MAX;
	hostile.limit = 0;
	struct buf a, b;
	buf_init(&a, WARNING_MAIL_MAX);
	buf_init(&b, WARNING_MAIL_MAX);
	int ra = warning_mail_render(&plain, text, "p@b.test", "d", &a);
	int rb = warning_mail_render(&hostile, text, "p@b\nX: y", "d\r\n", &b);
	/* values never add or end header lines, and never bring a CR (a template cannot have one)
	 */
	if (ra == 0 && rb == 0 &&
	    (header_lines(a.data) != header_lines(b.data) || strchr(b.data, '\r') != NULL))
		abort();
	buf_free(&a);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	char *text = fuzz_cstring(data + 1, size - 1);
	if (text == NULL)
		return 0;
	if (data[0] & 1)
		template(text);
	else
		settings(text);
	free(text);
	return 0;
}
