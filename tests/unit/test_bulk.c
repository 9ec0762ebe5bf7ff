/* Table tests for the import/export formats and the admin body checks (pure modules). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bulk.h"
#include "resource.h"
#include "token.h"

static const struct address_rules rules = { true, "+" };

struct csv_case {
	const char *in;
	int rc;                /* bulk_parse's result */
	size_t rows;           /* rows parsed */
	size_t errors;         /* problems reported */
	size_t err_line;       /* line of the first problem */
	const char *last_addr; /* address of the last row */
};

static void test_csv(void **state)
{
	(void)state;
	static const struct csv_case cases[] = {
		{ "address\na@x.test\nb@x.test\n", 0, 2, 0, 0, "b@x.test" },
		{ "address\r\na@x.test\r\nb@x.test", 0, 2, 0, 0,
		  "b@x.test" }, /* CRLF, no last EOL */
		{ "\xef\xbb\xbf"
		  "address\na@x.test\n",
		  0, 1, 0, 0, "a@x.test" }, /* BOM */
		{ "address,storage_limit_bytes\n\"a,b\"\"c@x.test\",5\n", 0, 1, 0, 0,
		  "a,b\"c@x.test" },
		{ "address,enabled\n\"multi\nline@x.test\",true\nz@x.test,no\n", 0, 2, 0, 0,
		  "z@x.test" },
		{ "address\n\na@x.test\n\n", 0, 1, 0, 0, "a@x.test" }, /* blank lines */
		{ "address,storage_limit_bytes\na@x.test,5,6\nb@x.test,7\n", 0, 1, 1, 2,
		  "b@x.test" },
		{ "address,storage_limit_bytes\na@x.test,-5\nb@x.test,\n", 0, 1, 1, 2, "b@x.test" },
		{ "address,enabled\na@x.test,maybe\n", 0, 0, 1, 2, NULL },
		{ "address\n\"open@x.test\n", -1, 0, 1, 2, NULL },
		{ "address\nab\"c@x.test\n", -1, 0, 1, 2, NULL },
		{ "address\n\"a\"b@x.test\n", -1, 0, 1, 2, NULL },
		{ "", -1, 0, 1, 1, NULL },
		{ "address,address\na,b\n", -1, 0, 1, 1, NULL },
		{ "address\n\xff@x.test\nok@x.test\n", 0, 1, 1, 2, "ok@x.test" }, /* not UTF-8 */
		{ "addr\xfe\na\n", -1, 0, 1, 1, NULL },
		/* a column of another kind's file is read by its type all the same */
		{ "address,pool_limit_bytes\na@x.test,abc\n", 0, 0, 1, 2, NULL },
		{ "address,pool_limit_bytes\na@x.test,5\n", 0, 1, 0, 0, "a@x.test" },
		{ "address,bogus\na@x.test,abc\n", 0, 1, 0, 0, "a@x.test" },
		/* an alias's policy: a choice (checked by resource_check), empty for the default */
		{ "address,targets,policy\nl@x.test,a@x.test,all\nm@x.test,a@x.test,\n", 0, 2, 0, 0,
		  "m@x.test" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct csv_case *c = &cases[i];
		struct bulk_errors *e = calloc(1, sizeof(*e));
		struct bulk_row *rows;
		size_t n;
		int rc = bulk_parse(BULK_CSV, RESOURCE_MAILBOX, c->in, strlen(c->in), &rows, &n, e);
		if (rc != c->rc || n != c->rows || e->total != c->errors)
			fail_msg("case %zu: rc %d rows %zu errors %zu", i, rc, n, e->total);
		if (c->errors > 0)
			assert_int_equal(e->list[0].line, c->err_line);
		if (c->last_addr != NULL)
			assert_string_equal(
			        json_string_value(json_object_get(rows[n - 1].obj, "address")),
			        c->last_addr);
		bulk_rows_free(rows, n);
		free(e);
	}
}

static void test_ndjson_and_round_trip(void **state)
{
	(void)state;
	const char *in =
	        "{\"type\":\"domain\",\"name\":\"x.test\",\"grace_percent\":5}\n"
	        "\n"
	        "{\"type\":\"mailbox\",\"address\":\"a@x.test\",\"enabled\":false}\n"
	        "[1]\n"
	        "{\"type\":\"token\",\"name\":\"t\"}\n"
	        "{\"type\":\"alias\",\"address\":\"l@x.test\",\"targets\":[\"a@x.test\"]}\n"
	        "{\"type\":\"alias\",\"address\":\"m@x.test\",\"targets\":[\"a@x.test\"],"
	        "\"policy\":\"all\"}\n"
	        "{\"type\":\"alias\",\"address\":\"n@x.test\",\"targets\":[\"a@x.test\"],"
	        "\"policy\":null}\n"
	        "{\"a\":1,\"a\":2}\n";
	struct bulk_errors *e = calloc(1, sizeof(*e));
	struct bulk_row *rows;
	size_t n;
	assert_int_equal(bulk_parse(BULK_NDJSON, RESOURCE_DOMAIN, in, strlen(in), &rows, &n, e), 0);
	assert_int_equal(n, 5);
	assert_int_equal(e->total, 3);
	assert_int_equal(e->list[0].line, 4);
	assert_int_equal(e->list[1].line, 5); /* tokens are not imported */
	assert_int_equal(e->list[2].line, 9); /* duplicate keys */
	assert_string_equal(json_string_value(json_object_get(rows[3].obj, "policy")), "all");
	assert_true(json_is_null(json_object_get(rows[4].obj, "policy")));
	assert_int_equal(rows[1].line, 3);
	assert_int_equal(rows[2].kind, RESOURCE_ALIAS);
	/* what export writes, import reads back the same */
	for (int fmt = 0; fmt < 2; fmt++) {
		for (size_t i = 0; i < n; i++) {
			struct buf out;
			buf_init(&out, 1 << 20);
			if (fmt == BULK_CSV)
				assert_int_equal(bulk_csv_header(rows[i].kind, &out), 0);
			assert_int_equal(
			        bulk_write((enum bulk_format)fmt, rows[i].kind, rows[i].obj, &out),
			        0);
			struct bulk_errors *e2 = calloc(1, sizeof(*e2));
			struct bulk_row *back;
			size_t m;
			assert_int_equal(bulk_parse((enum bulk_format)fmt, rows[i].kind, out.data,
			                            out.len, &back, &m, e2),
			                 0);
			assert_int_equal(m, 1);
			assert_int_equal(e2->total, 0);
			const char *k;
			json_t *v;
			json_object_foreach(rows[i].obj, k, v)
			        assert_true(json_equal(v, json_object_get(back[0].obj, k)));
			bulk_rows_free(back, m);
			free(e2);
			buf_free(&out);
		}
	}
	bulk_rows_free(rows, n);
	free(e);
}

struct check_case {
	enum resource_kind kind;
	enum resource_mode mode;
	const char *body;
	const char *code; /* NULL: accepted */
	const char *field;
};

static const struct {
	enum resource_problem problem;
	const char *code;
} problems[] = {
	{ RESOURCE_INVALID_BODY, "invalid_body" },   { RESOURCE_UNKNOWN_FIELD, "unknown_field" },
	{ RESOURCE_INVALID_FIELD, "invalid_field" }, { RESOURCE_MISSING_FIELD, "missing_field" },
	{ RESOURCE_TOO_MANY, "too_many" },
};

static void test_resource_check(void **state)
{
	(void)state;
	static const struct check_case cases[] = {
		{ RESOURCE_DOMAIN, RESOURCE_CREATE, "{\"name\":\"A.Test\"}", NULL, NULL },
		{ RESOURCE_DOMAIN, RESOURCE_CREATE, "{}", "missing_field", "name" },
		{ RESOURCE_DOMAIN, RESOURCE_CREATE, "{\"name\":\"a..test\"}", "invalid_field",
		  "name" },
		{ RESOURCE_DOMAIN, RESOURCE_CREATE, "{\"name\":\"-a.test\"}", "invalid_field",
		  "name" },
		{ RESOURCE_DOMAIN, RESOURCE_CREATE, "{\"name\":\"\xc3\xa9.test\"}", "invalid_field",
		  "name" },
		{ RESOURCE_DOMAIN, RESOURCE_CREATE, "{\"name\":\"xn--e1a.test\"}", NULL, NULL },
		{ RESOURCE_DOMAIN, RESOURCE_UPDATE, "{\"name\":\"b.test\"}", "invalid_field",
		  "name" },
		{ RESOURCE_DOMAIN, RESOURCE_UPDATE, "{}", "invalid_body", "" },
		{ RESOURCE_DOMAIN, RESOURCE_UPDATE, "{\"pool_limit_bytes\":9223372036854775807}",
		  NULL, NULL },
		{ RESOURCE_DOMAIN, RESOURCE_UPDATE, "{\"pool_limit_bytes\":-1}", "invalid_field",
		  "pool_limit_bytes" },
		{ RESOURCE_DOMAIN, RESOURCE_UPDATE, "{\"grace_percent\":1001}", "invalid_field",
		  "grace_percent" },
		{ RESOURCE_DOMAIN, RESOURCE_UPDATE, "{\"grace_percent\":null}", NULL, NULL },
		{ RESOURCE_MAILBOX, RESOURCE_UPDATE, "{\"enabled\":null}", "invalid_field",
		  "enabled" },
		{ RESOURCE_MAILBOX, RESOURCE_UPDATE, "{\"used_bytes\":1}", "unknown_field",
		  "used_bytes" },
		{ RESOURCE_MAILBOX, RESOURCE_CREATE, "{\"address\":\"a b@x.test\"}",
		  "invalid_field", "address" },
		{ RESOURCE_MAILBOX, RESOURCE_CREATE, "{\"address\":\"a@b@x.test\"}",
		  "invalid_field", "address" },
		{ RESOURCE_MAILBOX, RESOURCE_CREATE, "{\"address\":\"x'OR'1@x.test\"}", NULL,
		  NULL },
		{ RESOURCE_ALIAS, RESOURCE_CREATE,
		  "{\"address\":\"@x.test\",\"targets\":[\"a@x.test\"]}", NULL, NULL },
		{ RESOURCE_ALIAS, RESOURCE_CREATE, "{\"address\":\"l@x.test\",\"targets\":[]}",
		  "invalid_field", "targets" },
		{ RESOURCE_ALIAS, RESOURCE_CREATE,
		  "{\"address\":\"l@x.test\",\"targets\":[\"a@x.test\"],\"add_targets\":[]}",
		  "unknown_field", "add_targets" },
		{ RESOURCE_ALIAS, RESOURCE_UPDATE, "{\"remove_targets\":[\"nope\"]}",
		  "invalid_field", "remove_targets" },
		{ RESOURCE_TOKEN, RESOURCE_CREATE, "{\"name\":\"n\",\"scope\":\"self\"}",
		  "invalid_field", "mailbox" },
		{ RESOURCE_TOKEN, RESOURCE_CREATE,
		  "{\"name\":\"n\",\"scope\":\"self\",\"mailbox\":\"a@x.test\"}", NULL, NULL },
		{ RESOURCE_TOKEN, RESOURCE_CREATE, "{\"name\":\"a\\u0001\",\"scope\":\"read\"}",
		  "invalid_field", "name" },
		{ RESOURCE_TOKEN, RESOURCE_CREATE, "{\"scope\":\"read\"}", "missing_field",
		  "name" },
		{ RESOURCE_ALIAS, RESOURCE_CREATE, "{\"address\":\"l@x.test\"}", "missing_field",
		  "targets" },
		{ RESOURCE_ALIAS, RESOURCE_UPDATE, "{\"add_targets\":[]}", NULL, NULL },
		{ RESOURCE_ALIAS, RESOURCE_CREATE,
		  "{\"address\":\"l@x.test\",\"targets\":[\"a@x.test\"],\"policy\":\"every\"}",
		  "invalid_field", "policy" },
		{ RESOURCE_ALIAS, RESOURCE_CREATE,
		  "{\"address\":\"l@x.test\",\"targets\":[\"a@x.test\"],\"policy\":\"all\"}", NULL,
		  NULL },
		{ RESOURCE_ALIAS, RESOURCE_UPDATE, "{\"policy\":null}", NULL, NULL },
		{ RESOURCE_ALIAS, RESOURCE_UPDATE, "{\"policy\":\"any\"}", NULL, NULL },
		{ RESOURCE_ALIAS, RESOURCE_UPDATE, "{\"policy\":\"ALL\"}", "invalid_field",
		  "policy" },
		{ RESOURCE_ALIAS, RESOURCE_UPDATE, "{\"policy\":true}", "invalid_field", "policy" },
		{ RESOURCE_MAILBOX, RESOURCE_UPDATE, "{\"policy\":\"all\"}", "unknown_field",
		  "policy" },
		{ RESOURCE_ALIAS, RESOURCE_UPDATE, "{\"address\":\"m@x.test\"}", "invalid_field",
		  "address" },
		{ RESOURCE_MAILBOX, RESOURCE_UPDATE, "{\"storage\":1}", "unknown_field",
		  "storage" },
		{ RESOURCE_MAILBOX, RESOURCE_UPDATE, "[]", "invalid_body", "" },
		{ RESOURCE_DOMAIN, RESOURCE_UPDATE,
		  "{\"a_field_name_far_longer_than_anyone_would_quote_back_in_an_error_message\":"
		  "1}",
		  "unknown_field",
		  "a_field_name_far_longer_than_anyone_would_quote_back_in_an_error" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct check_case *c = &cases[i];
		json_t *body = json_loads(c->body, 0, NULL), *fields = NULL;
		struct resource_key key;
		struct resource_error e;
		assert_non_null(body);
		int rc = resource_check(c->kind, c->mode, body, &rules, &key, &fields, &e);
		if (c->code == NULL) {
			if (rc != 0)
				fail_msg("case %zu refused: %s %s", i, e.field, e.reason);
			json_decref(fields);
		} else {
			if (rc == 0)
				fail_msg("case %zu accepted", i);
			assert_string_equal(e.code, c->code);
			assert_string_equal(e.field, c->field);
			for (size_t p = 0; p < sizeof(problems) / sizeof(problems[0]); p++)
				if (strcmp(problems[p].code, c->code) == 0)
					assert_int_equal(e.problem, problems[p].problem);
		}
		json_decref(body);
	}
	struct resource_key k;
	const char *why;
	assert_int_equal(resource_key_parse(RESOURCE_MAILBOX, "User+Tag@X.Test", &rules, &k, &why),
	                 0);
	assert_string_equal(k.text, "user+tag@x.test"); /* stored names keep their extension */
}

static void test_tokens(void **state)
{
	(void)state;
	char text[TOKEN_TEXT_MAX];
	uint8_t h1[TOKEN_HASH_LEN], h2[TOKEN_HASH_LEN];
	int64_t id = 0;
	assert_int_equal(token_generate(42, text, sizeof(text), h1), 0);
	assert_int_equal(strlen(text), 4 + 2 + 1 + TOKEN_SECRET_LEN);
	assert_int_equal(token_parse(text, strlen(text), &id), 0);
	assert_true(id == 42);
	token_hash(text, strlen(text), h2);
	assert_true(token_hash_equal(h1, h2));
	text[10] ^= 1;
	token_hash(text, strlen(text), h2);
	assert_false(token_hash_equal(h1, h2));
	static const char *const bad[] = {
		"",
		"mqt_",
		"mqt_1_",
		"mqt_0_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"mqt_01_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"mqt_1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* 42 */
		"mqt_1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 44 */
		"mqt_1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"xqt_1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"mqt_99999999999999999999_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (token_parse(bad[i], strlen(bad[i]), &id) == 0)
			fail_msg("accepted %s", bad[i]);
	assert_int_equal(token_parse("mqt_7_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 49, &id),
	                 0);
	assert_true(id == 7);
	enum token_scope s;
	assert_int_equal(token_scope_parse("self", &s), 0);
	assert_int_equal(s, TOKEN_SELF);
	assert_int_equal(token_scope_parse("Admin", &s), -1);
	/* the hash in pieces is the hash of the whole: the one content hash of the project */
	struct token_hasher h;
	token_hash_init(&h);
	token_hash_update(&h, text, 10);
	token_hash_update(&h, "", 0);
	token_hash_update(&h, text + 10, strlen(text) - 10);
	token_hash_final(&h, h1);
	token_hash(text, strlen(text), h2);
	assert_true(token_hash_equal(h1, h2));
	static const uint8_t abc[TOKEN_HASH_LEN] = { /* SHA-256("abc"), FIPS 180-2 */
		                                     0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
		                                     0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		                                     0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
		                                     0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad
	};
	token_hash_init(&h);
	token_hash_update(&h, "ab", 2);
	token_hash_update(&h, "c", 1);
	token_hash_final(&h, h1);
	assert_memory_equal(h1, abc, TOKEN_HASH_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_ndjson_and_round_trip),
		cmocka_unit_test(test_resource_check),
		cmocka_unit_test(test_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
