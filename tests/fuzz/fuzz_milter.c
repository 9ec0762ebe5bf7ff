/* libFuzzer target: mailquota-milter's pure part (milter_reply.c). The input is read four ways:
   as a milter_socket setting, as the daemon's answers (a pipeline of "action=...\n\n"), each
   action and the whole input mapped to a milter reply, and as MAIL FROM's ESMTP parameters and
   a recipient (split at spaces). A socket setting's path must lie inside it; answer framing
   must stay inside the input and its limit; a mapped reply must have a 4xx/5xx code whose
   class its enhanced code shares, the kind that goes with the code, and a text of printable
   ASCII in which every '%' is doubled; a request must be exactly its attribute lines, none
   with a control character, or be refused with out unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "milter_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(const char *action, size_t len)
{
	struct milter_reply r;
	const char *err = NULL;
	if (milter_reply_from_action(action, len, &r, &err) < 0) {
		if (err == NULL)
			abort();
		return;
	}
	if (r.kind == MILTER_CONTINUE)
		return;
	if (strlen(r.code) != 3 || (r.code[0] != '4' && r.code[0] != '5') ||
	    r.xcode[0] != r.code[0] || r.xcode[1] != '.' ||
	    (r.kind == MILTER_REJECT) != (r.code[0] == '5'))
		abort();
	size_t tl = strlen(r.text);
	if (tl == 0 || tl > 2 * MILTER_TEXT_MAX)
		abort();
	for (size_t i = 0; i < tl; i++) {
		unsigned char c = (unsigned char)r.text[i];
		if (c < 0x20 || c >= 0x7f)
			abort();
		if (c == '%') {
			if (r.text[i + 1] != '%')
				abort();
			i++;
		}
	}
}

static void check_answers(const char *p, size_t left)
{
	for (;;) {
		const char *action = NULL, *err = NULL;
		size_t alen = 0, used = 0;
		int rc = milter_answer_parse(p, left, &action, &alen, &used, &err);
		if (rc <= 0) {
			if (rc < 0 && err == NULL)
				abort();
			if (rc == 0 && left > MILTER_ANSWER_MAX &&
			    memchr(p, '\n', MILTER_ANSWER_MAX) == NULL)
				abort(); /* more than the limit with no line end must be refused */
			return;
		}
		if (used == 0 || used > left || used > MILTER_ANSWER_MAX || action < p ||
		    action + alen > p + used)
			abort();
		check_reply(action, alen);
		p += used;
		left -= used;
	}
}

static void check_request(char *text)
{
	/* words: the first is the recipient, the rest ESMTP parameters */
	const char *args[MILTER_ESMTP_ARGS_MAX + 8];
	size_t n = 0;
	for (char *w = strtok(text, " "); w != NULL && n < sizeof(args) / sizeof(args[0]);
	     w = strtok(NULL, " "))
		args[n++] = w;
	uint64_t size = 1;
	const char *err = NULL;
	int rc = n > 1 ? milter_size_parse(args + 1, n - 1, &size, &err) : 1;
	if (rc < -1 || rc > 1 || (rc < 0 && err == NULL) || (rc != 0 && size != 0 && n > 1))
		abort();
	struct milter_query q = {
		n > 0 ? args[0] : NULL, n > 1 ? args[1] : NULL, NULL, NULL, "fuzz", size
	};
	struct buf out;
	buf_init(&out, 8 * 1024);
	if (milter_request_append(&out, &q, &err) < 0) {
		if (err == NULL || out.len != 0)
			abort();
		buf_free(&out);
		return;
	}
	/* request, protocol_state, protocol_name, recipient, [sender,] instance, size, "" */
	size_t lines = 0;
	for (size_t i = 0; i < out.len; i++) {
		unsigned char c = (unsigned char)out.data[i];
		if (c == '\n')
			lines++;
		else if (c < 0x20 || c == 0x7f)
			abort();
	}
	if (lines < 7 || lines > 8 || out.len < 2 || memcmp(out.data + out.len - 2, "\n\n", 2) != 0)
		abort();
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_answers((const char *)data, size);
	check_reply((const char *)data, size);
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	const char *path = NULL, *err = NULL;
	if (milter_spec_check(text, &path, &err) == 0) {
		if (path != NULL && (path < text || path > text + size || path[0] != '/'))
			abort();
	} else if (err == NULL || path != NULL) {
		abort();
	}
	check_request(text);
	free(text);
	return 0;
}
