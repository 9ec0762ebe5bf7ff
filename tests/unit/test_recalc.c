/* Table tests for the checks of a batch of recalculations (POST /v1/usage/recalculations):
   the body as a whole, each item, and the CSV records `mailquota usage load` reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "recalc.h"

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &e);
	if (doc == NULL)
		fail_msg("bad test JSON %s: %s", text, e.text);
	return doc;
}

struct batch_case {
	const char *body;
	int rc;
	enum recalc_problem problem;
	const char *field;
};

static const struct batch_case batches[] = {
	{ "{\"source\": \"doveadm\", \"items\": [{}]}", 0, 0, "" },
	{ "{\"source\": \"d\", \"measured_at\": \"2026-11-22T03:00:00Z\", \"items\": [1]}", 0, 0,
	  "" },
	{ "[]", -1, RECALC_INVALID_BODY, "" },
	{ "{\"source\": \"d\", \"items\": [{}], \"dry_run\": true}", -1, RECALC_INVALID_BODY, "" },
	{ "{\"source\": \"d\"}", -1, RECALC_INVALID_BODY, "items" },
	{ "{\"source\": \"d\", \"items\": []}", -1, RECALC_INVALID_BODY, "items" },
	{ "{\"source\": \"d\", \"items\": {}}", -1, RECALC_INVALID_BODY, "items" },
	{ "{\"items\": [{}]}", -1, RECALC_INVALID_FIELD, "source" },
	{ "{\"source\": \"\", \"items\": [{}]}", -1, RECALC_INVALID_FIELD, "source" },
	{ "{\"source\": 7, \"items\": [{}]}", -1, RECALC_INVALID_FIELD, "source" },
	{ "{\"source\": \"d\", \"measured_at\": \"yesterday\", \"items\": [{}]}", -1,
	  RECALC_INVALID_FIELD, "measured_at" },
	{ "{\"source\": \"d\", \"measured_at\": \"\", \"items\": [{}]}", -1, RECALC_INVALID_FIELD,
	  "measured_at" },
	{ "{\"source\": \"d\", \"measured_at\": null, \"items\": [{}]}", -1, RECALC_INVALID_FIELD,
	  "measured_at" },
};

static void test_batches(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
		const struct batch_case *c = &batches[i];
		json_t *doc = parse(c->body);
		struct recalc_batch b;
		enum recalc_problem p = RECALC_TOO_MANY;
		const char *field = NULL, *why = NULL;
		int rc = recalc_check_batch(doc, &b, &p, &field, &why);
		if (rc != c->rc)
			fail_msg("case %zu %s: rc %d (%s)", i, c->body, rc, why ? why : "");
		if (rc == 0) {
			assert_true(json_is_array(b.items));
			assert_non_null(b.source);
		} else {
			assert_int_equal(p, c->problem);
			assert_string_equal(field, c->field);
			assert_non_null(why);
		}
		json_decref(doc);
	}
}

static void test_source_and_item_limits(void **state)
{
	(void)state;
	struct recalc_batch b;
	enum recalc_problem p;
	const char *field, *why;
	/* a source of exactly USAGE_SOURCE_MAX (100) characters, then 101 */
	char src[102];
	memset(src, 's', sizeof(src));
	src[100] = '\0';
	json_t *doc = json_pack("{s:s, s:[{}]}", "source", src, "items");
	assert_int_equal(recalc_check_batch(doc, &b, &p, &field, &why), 0);
	json_decref(doc);
	src[100] = 's';
	src[101] = '\0';
	doc = json_pack("{s:s, s:[{}]}", "source", src, "items");
	assert_int_equal(recalc_check_batch(doc, &b, &p, &field, &why), -1);
	assert_string_equal(field, "source");
	json_decref(doc);
	/* RECALC_ITEMS_MAX items, then one more: too many */
	json_t *items = json_array();
	for (size_t i = 0; i < RECALC_ITEMS_MAX; i++)
		json_array_append_new(items, json_object());
	doc = json_pack("{s:s, s:O}", "source", "d", "items", items);
	assert_int_equal(recalc_check_batch(doc, &b, &p, &field, &why), 0);
	json_decref(doc);
	json_array_append_new(items, json_object());
	doc = json_pack("{s:s, s:o}", "source", "d", "items", items);
	assert_int_equal(recalc_check_batch(doc, &b, &p, &field, &why), -1);
	assert_int_equal(p, RECALC_TOO_MANY);
	json_decref(doc);
}

struct item_case {
	const char *item;
	int rc;
	const char *field; /* with rc -1 */
	bool has_bytes, has_messages;
	uint64_t bytes, messages;
	const char *measured_at;
};

#define BAD_ITEM(j, f)                             \
	{                                          \
		j, -1, f, false, false, 0, 0, NULL \
	}

static const struct item_case items[] = {
	{ "{\"mailbox\": \"bob@x\", \"bytes\": 1024, \"messages\": 3}", 0, "", true, true, 1024, 3,
	  NULL },
	{ "{\"mailbox\": \"bob@x\", \"bytes\": 0}", 0, "", true, false, 0, 0, NULL },
	{ "{\"mailbox\": \"bob@x\", \"messages\": 9223372036854775807}", 0, "", false, true, 0,
	  INT64_MAX, NULL },
	{ "{\"mailbox\": \"bob@x\", \"bytes\": 1, \"measured_at\": "
	  "\"2026-11-22T03:00:00.5+01:00\"}",
	  0, "", true, false, 1, 0, "2026-11-22T03:00:00.5+01:00" },
	{ "{\"mailbox\": \"b\", \"bytes\": 1}", 0, "", true, false, 1, 0,
	  NULL }, /* checked later */
	BAD_ITEM("[]", ""),
	BAD_ITEM("{\"mailbox\": \"bob@x\"}", ""),
	BAD_ITEM("{\"mailbox\": \"bob@x\", \"bytes\": 1, \"key\": \"k\"}", ""),
	BAD_ITEM("{\"bytes\": 1}", "mailbox"),
	BAD_ITEM("{\"mailbox\": 5, \"bytes\": 1}", "mailbox"),
	BAD_ITEM("{\"mailbox\": null, \"bytes\": 1}", "mailbox"),
	BAD_ITEM("{\"mailbox\": \"bob@x\", \"bytes\": -1}", "bytes"),
	BAD_ITEM("{\"mailbox\": \"bob@x\", \"bytes\": 1.0}", "bytes"),
	BAD_ITEM("{\"mailbox\": \"bob@x\", \"bytes\": \"1\"}", "bytes"),
	BAD_ITEM("{\"mailbox\": \"bob@x\", \"bytes\": null}", "bytes"),
	BAD_ITEM("{\"mailbox\": \"bob@x\", \"bytes\": 1, \"messages\": -5}", "messages"),
	BAD_ITEM(
	        "{\"mailbox\": \"bob@x\", \"bytes\": 1, \"measured_at\": \"2026-02-30T00:00:00Z\"}",
	        "measured_at"),
	BAD_ITEM("{\"mailbox\": \"bob@x\", \"bytes\": 1, \"measured_at\": 0}", "measured_at"),
};

static void test_items(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		const struct item_case *c = &items[i];
		json_t *doc = parse(c->item);
		struct recalc_item it;
		const char *field = NULL, *why = NULL;
		int rc = recalc_check_item(doc, &it, &field, &why);
		if (rc != c->rc)
			fail_msg("case %zu %s: rc %d (%s)", i, c->item, rc, why ? why : "");
		if (rc < 0) {
			assert_string_equal(field, c->field);
			assert_non_null(why);
		} else {
			assert_non_null(it.mailbox);
			assert_int_equal(it.has_bytes, c->has_bytes);
			assert_int_equal(it.has_messages, c->has_messages);
			assert_true(it.bytes == c->bytes);
			assert_true(it.messages == c->messages);
			if (c->measured_at == NULL)
				assert_null(it.measured_at);
			else
				assert_string_equal(it.measured_at, c->measured_at);
		}
		json_decref(doc);
	}
}

struct csv_case {
	const char *line;
	int rc;
	size_t n;
	const char *cells[RECALC_CSV_CELLS];
};

static const struct csv_case csvs[] = {
	{ "mailbox,bytes,messages", 0, 3, { "mailbox", "bytes", "messages" } },
	{ "bob@x,1024,3\r", 0, 3, { "bob@x", "1024", "3" } },
	{ "bob@x,,3", 0, 3, { "bob@x", "", "3" } },
	{ "bob@x,", 0, 2, { "bob@x", "" } },
	{ "", 0, 1, { "" } },
	{ "\"bob@x\",\"1\"", 0, 2, { "bob@x", "1" } },
	{ "\"a,\"\"b\"\"\",2", 0, 2, { "a,\"b\"", "2" } },
	{ "\"\",x", 0, 2, { "", "x" } },
	{ "1,2,3,4,5,6,7,8", 0, 8, { "1", "2", "3", "4", "5", "6", "7", "8" } },
	{ "1,2,3,4,5,6,7,8,9", -1, 0, { NULL } },
	{ "a\"b,1", -1, 0, { NULL } },
	{ "\"ab,1", -1, 0, { NULL } },
	{ "\"ab\"x,1", -1, 0, { NULL } },
};

static void test_csv(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(csvs) / sizeof(csvs[0]); i++) {
		const struct csv_case *c = &csvs[i];
		size_t len = strlen(c->line), n = 0;
		/* exactly len + 1 bytes: ASan finds any write past them */
		char *out = malloc(len + 1);
		const char *cells[RECALC_CSV_CELLS], *why = NULL;
		int rc = recalc_csv_split(c->line, len, out, cells, &n, &why);
		if (rc != c->rc)
			fail_msg("case %zu %s: rc %d (%s)", i, c->line, rc, why ? why : "");
		if (rc == 0) {
			assert_int_equal(n, c->n);
			for (size_t k = 0; k < n; k++)
				assert_string_equal(cells[k], c->cells[k]);
		} else {
			assert_non_null(why);
		}
		free(out);
	}
	static const char nul[] = "a\0b,1";
	char out[sizeof(nul)];
	const char *cells[RECALC_CSV_CELLS], *why;
	size_t n;
	assert_int_equal(recalc_csv_split(nul, sizeof(nul) - 1, out, cells, &n, &why), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_source_and_item_limits),
		cmocka_unit_test(test_items),
		cmocka_unit_test(test_csv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
