/* Table tests for the field table of domains, mailboxes and aliases and its lookups (pure). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bulk.h"
#include "fields.h"
#include "resource.h"

static const struct address_rules rules = { true, "+" };

struct lookup_case {
	enum resource_kind kind;
	const char *name; /* looked up as name[len] */
	size_t len;       /* 0: strlen(name) */
	const char *api;  /* the field found, NULL: none */
};

static void test_lookup(void **state)
{
	(void)state;
	static const struct lookup_case cases[] = {
		/* short names and API names, per kind */
		{ RESOURCE_MAILBOX, "storage", 0, "storage_limit_bytes" },
		{ RESOURCE_MAILBOX, "storage_limit_bytes", 0, "storage_limit_bytes" },
		{ RESOURCE_DOMAIN, "storage", 0, "default_storage_limit_bytes" },
		{ RESOURCE_DOMAIN, "default_storage_limit_bytes", 0,
		  "default_storage_limit_bytes" },
		{ RESOURCE_DOMAIN, "storage_limit_bytes", 0, NULL }, /* a mailbox's name */
		{ RESOURCE_DOMAIN, "pool", 0, "pool_limit_bytes" },
		{ RESOURCE_MAILBOX, "pool", 0, NULL },
		{ RESOURCE_DOMAIN, "mailbox-max-size", 0, "default_max_message_size" },
		{ RESOURCE_DOMAIN, "max-size", 0, "max_message_size" },
		{ RESOURCE_MAILBOX, "max-size", 0, "max_message_size" },
		{ RESOURCE_MAILBOX, "max_message_size", 0, "max_message_size" },
		{ RESOURCE_MAILBOX, "messages", 0, "message_limit" },
		{ RESOURCE_DOMAIN, "messages", 0, "default_message_limit" },
		{ RESOURCE_MAILBOX, "grace", 0, "grace_percent" },
		{ RESOURCE_MAILBOX, "enabled", 0, "enabled" },
		{ RESOURCE_DOMAIN, "enabled", 0, NULL },
		{ RESOURCE_ALIAS, "targets", 0, "targets" },
		{ RESOURCE_ALIAS, "add_targets", 0, NULL }, /* an edit, not a field */
		/* a name followed by "=value", as the command line has it */
		{ RESOURCE_MAILBOX, "storage=1G", 7, "storage_limit_bytes" },
		{ RESOURCE_MAILBOX, "storage_limit_bytes=1G", 19, "storage_limit_bytes" },
		{ RESOURCE_MAILBOX, "storage=1G", 6, NULL }, /* a prefix is no name */
		{ RESOURCE_MAILBOX, "storage=1G", 10, NULL },
		{ RESOURCE_MAILBOX, "", 0, NULL },
		{ RESOURCE_MAILBOX, "Storage", 0, NULL }, /* names are exact */
		{ RESOURCE_MAILBOX, "address", 0, NULL }, /* the key is not settable */
		{ RESOURCE_DOMAIN, "name", 0, NULL },
		{ RESOURCE_TOKEN, "name", 0, NULL },
		{ RESOURCE_TOKEN, "scope", 0, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct lookup_case *c = &cases[i];
		size_t len = c->len != 0 ? c->len : strlen(c->name);
		const struct field *f = field_by_name(c->kind, c->name, len);
		if ((f == NULL) != (c->api == NULL) || (f != NULL && strcmp(f->api, c->api) != 0))
			fail_msg("case %zu (%s): found %s", i, c->name,
			         f != NULL ? f->api : "none");
	}
	/* by API name only */
	assert_non_null(field_by_api(RESOURCE_MAILBOX, "storage_limit_bytes"));
	assert_null(field_by_api(RESOURCE_MAILBOX, "storage"));
	assert_null(field_by_api(RESOURCE_TOKEN, "name"));
	assert_string_equal(field_by_api(RESOURCE_DOMAIN, "pool_limit_bytes")->cli, "pool");
}

static void test_table(void **state)
{
	(void)state;
	static const struct {
		enum resource_kind kind;
		size_t n;
		const char *key;
	} kinds[] = {
		{ RESOURCE_DOMAIN, 6, "name" },
		{ RESOURCE_MAILBOX, 5, "address" },
		{ RESOURCE_ALIAS, 2, "address" },
		{ RESOURCE_TOKEN, 0, NULL },
	};
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		size_t n;
		const struct field *t = field_table(kinds[k].kind, &n);
		assert_int_equal(n, kinds[k].n);
		if (kinds[k].key == NULL)
			assert_null(field_key(kinds[k].kind));
		else
			assert_string_equal(field_key(kinds[k].kind), kinds[k].key);
		for (size_t i = 0; i < n; i++) {
			assert_true(t[i].cli[0] != '\0' && t[i].api[0] != '\0');
			assert_true(t[i].help != NULL && strlen(t[i].help) > 10);
			assert_true(strchr(t[i].cli, '=') == NULL && strchr(t[i].api, '=') == NULL);
			/* every lookup finds the row itself */
			assert_ptr_equal(field_by_api(kinds[k].kind, t[i].api), &t[i]);
			assert_ptr_equal(field_by_name(kinds[k].kind, t[i].cli, strlen(t[i].cli)),
			                 &t[i]);
			assert_ptr_equal(field_by_name(kinds[k].kind, t[i].api, strlen(t[i].api)),
			                 &t[i]);
			/* no name of one field is a name of another: the command line takes both */
			for (size_t j = 0; j < n; j++) {
				if (i == j)
					continue;
				assert_true(strcmp(t[i].cli, t[j].cli) != 0);
				assert_true(strcmp(t[i].api, t[j].api) != 0);
				assert_true(strcmp(t[i].cli, t[j].api) != 0);
			}
			assert_true(strcmp(t[i].api, kinds[k].key) != 0);
		}
	}
	assert_true(field_nullable(FIELD_SIZE) && field_nullable(FIELD_COUNT) &&
	            field_nullable(FIELD_PERCENT) && field_nullable(FIELD_CHOICE));
	assert_false(field_nullable(FIELD_BOOL) || field_nullable(FIELD_TARGETS));
}

/* A choice field takes exactly its choices (or null), case and all, and names them when it
   refuses another value. */
static void test_choice(void **state)
{
	(void)state;
	const struct field *p = field_by_api(RESOURCE_ALIAS, "policy");
	char out[FIELD_NAMES_MAX];
	assert_non_null(p);
	assert_int_equal(p->type, FIELD_CHOICE);
	assert_false(p->required);
	assert_true(field_choice_valid(p, "any") && field_choice_valid(p, "all"));
	static const char *const refused[] = { "ALL", "Any", "", "none", "default", "all ", "al" };
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		assert_false(field_choice_valid(p, refused[i]));
	assert_false(field_choice_valid(field_by_api(RESOURCE_ALIAS, "targets"), "any"));
	assert_string_equal(field_choices_text(p, "|", out, sizeof(out)), "any|all");
	assert_string_equal(field_choices_text(p, ", ", out, 5), "any,"); /* cut, still a string */
	assert_string_equal(
	        field_choices_text(field_by_api(RESOURCE_ALIAS, "targets"), ",", out, sizeof(out)),
	        "");
	struct resource_key key;
	struct resource_error e;
	json_t *fields = NULL;
	json_t *body = json_pack("{s:s}", "policy", "every");
	assert_int_equal(
	        resource_check(RESOURCE_ALIAS, RESOURCE_UPDATE, body, &rules, &key, &fields, &e),
	        -1);
	assert_string_equal(e.field, "policy");
	assert_string_equal(e.reason, "must be one of any, all, or null");
	json_decref(body);
	body = json_pack("{s:i}", "policy", 1);
	assert_int_equal(
	        resource_check(RESOURCE_ALIAS, RESOURCE_UPDATE, body, &rules, &key, &fields, &e),
	        -1);
	assert_string_equal(e.field, "policy");
	json_decref(body);
	body = json_pack("{s:s, s:[s], s:s}", "address", "team@x.test", "targets", "a@x.test",
	                 "policy", "any");
	assert_int_equal(
	        resource_check(RESOURCE_ALIAS, RESOURCE_CREATE, body, &rules, &key, &fields, &e),
	        0);
	assert_string_equal(json_string_value(json_object_get(fields, "policy")), "any");
	json_decref(fields);
	json_decref(body);
}

static void test_names_text(void **state)
{
	(void)state;
	char out[FIELD_NAMES_MAX];
	assert_string_equal(field_names_text(RESOURCE_MAILBOX, out, sizeof(out)),
	                    "storage (storage_limit_bytes), messages (message_limit), "
	                    "max-size (max_message_size), grace (grace_percent), enabled");
	assert_string_equal(field_names_text(RESOURCE_TOKEN, out, sizeof(out)), "");
	for (int k = RESOURCE_DOMAIN; k <= RESOURCE_ALIAS; k++) {
		size_t n;
		const struct field *t = field_table((enum resource_kind)k, &n);
		field_names_text((enum resource_kind)k, out, sizeof(out));
		assert_true(strlen(out) < sizeof(out) - 1); /* whole, with room */
		for (size_t i = 0; i < n; i++)
			assert_non_null(strstr(out, t[i].api));
	}
	char small[12];
	assert_string_equal(field_names_text(RESOURCE_DOMAIN, small, sizeof(small)),
	                    "pool (pool_"); /* cut, still a string */
	assert_string_equal(field_names_text(RESOURCE_DOMAIN, small, 1), "");
}

/* A value of type that the API takes, and one it refuses. */
static void samples(enum field_type type, json_t **good, json_t **bad)
{
	*good = *bad = NULL;
	switch (type) {
	case FIELD_SIZE:
	case FIELD_COUNT:
		*good = json_integer(INT64_MAX);
		*bad = json_integer(-1);
		return;
	case FIELD_PERCENT:
		*good = json_integer(FIELD_PERCENT_MAX);
		*bad = json_integer(FIELD_PERCENT_MAX + 1);
		return;
	case FIELD_BOOL:
		*good = json_false();
		*bad = json_null();
		return;
	case FIELD_TARGETS:
		*good = json_pack("[s]", "a@x.test");
		*bad = json_array();
		return;
	case FIELD_CHOICE:
		*good = json_string("all");
		*bad = json_string("every");
		return;
	}
	fail_msg("no samples of type %d", (int)type);
}

/* What the table says is what the API checks: every field by its type, null where nullable. */
static void test_table_is_what_the_api_takes(void **state)
{
	(void)state;
	for (int k = RESOURCE_DOMAIN; k <= RESOURCE_ALIAS; k++) {
		size_t n;
		const struct field *t = field_table((enum resource_kind)k, &n);
		for (size_t i = 0; i < n; i++) {
			json_t *good, *bad, *fields = NULL;
			struct resource_key key;
			struct resource_error e;
			samples(t[i].type, &good, &bad);
			json_t *body = json_pack("{s:o}", t[i].api, good);
			if (resource_check((enum resource_kind)k, RESOURCE_UPDATE, body, &rules,
			                   &key, &fields, &e) != 0)
				fail_msg("%s refused: %s", t[i].api, e.reason);
			json_decref(fields);
			json_decref(body);
			body = json_pack("{s:o}", t[i].api, bad);
			assert_int_equal(resource_check((enum resource_kind)k, RESOURCE_UPDATE,
			                                body, &rules, &key, &fields, &e),
			                 -1);
			assert_int_equal(e.problem, RESOURCE_INVALID_FIELD);
			assert_string_equal(e.code, "invalid_field");
			assert_string_equal(e.field, t[i].api);
			json_decref(body);
			body = json_pack("{s:n}", t[i].api);
			int rc = resource_check((enum resource_kind)k, RESOURCE_UPDATE, body,
			                        &rules, &key, &fields, &e);
			assert_int_equal(rc == 0, field_nullable(t[i].type));
			if (rc == 0)
				json_decref(fields);
			json_decref(body);
			/* the short name is the command line's, never the API's */
			if (strcmp(t[i].cli, t[i].api) != 0) {
				body = json_pack("{s:n}", t[i].cli);
				assert_int_equal(resource_check((enum resource_kind)k,
				                                RESOURCE_UPDATE, body, &rules, &key,
				                                &fields, &e),
				                 -1);
				assert_int_equal(e.problem, RESOURCE_UNKNOWN_FIELD);
				json_decref(body);
			}
		}
	}
}

/* The export columns: the key, then the table's API names in its order (files depend on it). */
static void test_export_columns(void **state)
{
	(void)state;
	static const char *const want[] = {
		[RESOURCE_DOMAIN] = "name,pool_limit_bytes,default_storage_limit_bytes,"
		                    "default_message_limit,default_max_message_size,"
		                    "max_message_size,grace_percent\r\n",
		[RESOURCE_MAILBOX] = "address,storage_limit_bytes,message_limit,max_message_size,"
		                     "grace_percent,enabled\r\n",
		[RESOURCE_ALIAS] = "address,targets,policy\r\n",
	};
	for (int k = RESOURCE_DOMAIN; k <= RESOURCE_ALIAS; k++) {
		struct buf out;
		buf_init(&out, 4096);
		assert_int_equal(bulk_csv_header((enum resource_kind)k, &out), 0);
		assert_string_equal(out.data, want[k]);
		buf_free(&out);
	}
	/* NDJSON: the same order after the type, every column present */
	json_t *doc = json_pack("{s:b, s:s, s:i}", "enabled", 1, "address", "a@x.test",
	                        "storage_limit_bytes", 5);
	struct buf out;
	buf_init(&out, 4096);
	assert_int_equal(bulk_write(BULK_NDJSON, RESOURCE_MAILBOX, doc, &out), 0);
	assert_string_equal(out.data,
	                    "{\"type\":\"mailbox\",\"address\":\"a@x.test\","
	                    "\"storage_limit_bytes\":5,\"message_limit\":null,"
	                    "\"max_message_size\":null,\"grace_percent\":null,\"enabled\":true}\n");
	buf_free(&out);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_choice),
		cmocka_unit_test(test_names_text),
		cmocka_unit_test(test_table_is_what_the_api_takes),
		cmocka_unit_test(test_export_columns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
