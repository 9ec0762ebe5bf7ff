/*
 * prom: the Prometheus text exposition format (0.0.4), written into a bounded buffer. It must
 * never write a line Prometheus would misread: names are checked, label values and help texts
 * escaped, numbers spelled as the format reads them, histogram buckets cumulative with the
 * count equal to the +Inf bucket. Pure.
 */
#include "prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTOGRAM_NAME_MAX (PROM_NAME_MAX + sizeof("_bucket")) /* a name with its suffix */

void prom_init(struct prom_writer *w, struct buf *out)
{
	w->out = out;
	w->error = NULL;
}

int prom_finish(const struct prom_writer *w, const char **error_r)
{
	if (w->error == NULL)
		return 0;
	*error_r = w->error;
	return -1;
}

static void fail(struct prom_writer *w, const char *why)
{
	if (w->error == NULL)
		w->error = why;
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool prom_name_valid(const char *name)
{
	size_t len = strnlen(name, PROM_NAME_MAX + 1);
	if (len == 0 || len > PROM_NAME_MAX || !(is_alpha(name[0]) || name[0] == ':'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_alpha(name[i]) && !is_digit(name[i]) && name[i] != ':')
			return false;
	return true;
}

bool prom_label_name_valid(const char *name)
{
	size_t len = strnlen(name, PROM_NAME_MAX + 1);
	if (len == 0 || len > PROM_NAME_MAX || !is_alpha(name[0]) ||
	    (name[0] == '_' && name[1] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_alpha(name[i]) && !is_digit(name[i]))
			return false;
	return true;
}

const char *prom_number(char *dst, size_t size, double v)
{
	if (isnan(v))
		snprintf(dst, size, "NaN");
	else if (isinf(v))
		snprintf(dst, size, v > 0 ? "+Inf" : "-Inf");
	else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v)
		/* below 2^53 an integral double is exactly its int64; never "-0" */
		snprintf(dst, size, "%" PRId64, (int64_t)v);
	else {
		snprintf(dst, size, "%.15g", v);
		if (strtod(dst, NULL) != v)
			snprintf(dst, size, "%.17g", v);
	}
	return dst;
}

/* Append s with the escapes of the format: backslash and newline always, the double quote in
   label values; at most max bytes of s. */
static int escape(struct buf *out, const char *s, size_t max, bool quote)
{
	size_t len = strnlen(s, max + 1), start = out->len;
	if (len > max)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *e = s[i] == '\\'           ? "\\\\"
		                : s[i] == '\n'         ? "\\n"
		                : quote && s[i] == '"' ? "\\\""
		                                       : NULL;
		if (e != NULL ? buf_puts(out, e) < 0 : buf_append(out, &s[i], 1) < 0) {
			out->len = start; /* unchanged, as promised */
			out->data[start] = '\0';
			return -1;
		}
	}
	return 0;
}

int prom_escape_label(struct buf *out, const char *v)
{
	return escape(out, v, PROM_LABEL_VALUE_MAX, true);
}

int prom_escape_help(struct buf *out, const char *help)
{
	return escape(out, help, PROM_HELP_MAX, false);
}

static const char *const type_names[] = {
	[PROM_COUNTER] = "counter",
	[PROM_GAUGE] = "gauge",
	[PROM_HISTOGRAM] = "histogram",
};

static void put(struct prom_writer *w, const char *s)
{
	if (w->error == NULL && buf_puts(w->out, s) < 0)
		fail(w, "the exposition outgrew its buffer");
}

void prom_family(struct prom_writer *w, const char *name, enum prom_type type, const char *help)
{
	if (!prom_name_valid(name)) {
		fail(w, "invalid metric name");
		return;
	}
	put(w, "# HELP ");
	put(w, name);
	put(w, " ");
	if (w->error == NULL && prom_escape_help(w->out, help) < 0)
		fail(w, "a help text is too long or the exposition outgrew its buffer");
	put(w, "\n# TYPE ");
	put(w, name);
	put(w, " ");
	put(w, type_names[type]);
	put(w, "\n");
}

/* name{labels[,extra]}: the part of a sample line before its value. extra (a histogram's le)
   may be NULL. */
static void sample_head(struct prom_writer *w, const char *name, const struct prom_label *labels,
                        size_t n, const struct prom_label *extra)
{
	if (!prom_name_valid(name) || n > PROM_LABELS_MAX) {
		fail(w, n > PROM_LABELS_MAX ? "too many labels" : "invalid metric name");
		return;
	}
	put(w, name);
	if (n == 0 && extra == NULL)
		return;
	put(w, "{");
	for (size_t i = 0; i <= n; i++) {
		const struct prom_label *l = i < n ? &labels[i] : extra;
		if (l == NULL)
			break;
		if (!prom_label_name_valid(l->name)) {
			fail(w, "invalid label name");
			return;
		}
		put(w, i > 0 ? "," : "");
		put(w, l->name);
		put(w, "=\"");
		if (w->error == NULL && prom_escape_label(w->out, l->value) < 0)
			fail(w, "a label value is too long or the exposition outgrew its buffer");
		put(w, "\"");
	}
	put(w, "}");
}

void prom_sample(struct prom_writer *w, const char *name, const struct prom_label *labels, size_t n,
                 double value)
{
	char num[PROM_NUMBER_MAX];
	sample_head(w, name, labels, n, NULL);
	put(w, " ");
	put(w, prom_number(num, sizeof(num), value));
	put(w, "\n");
}

void prom_sample_u64(struct prom_writer *w, const char *name, const struct prom_label *labels,
                     size_t n, uint64_t value)
{
	char num[PROM_NUMBER_MAX];
	snprintf(num, sizeof(num), "%" PRIu64, value);
	sample_head(w, name, labels, n, NULL);
	put(w, " ");
	put(w, num);
	put(w, "\n");
}

void prom_histogram(struct prom_writer *w, const char *name, const struct prom_label *labels,
                    size_t n, const double *bounds, const uint64_t *counts, size_t nb, double sum)
{
	char bucket[HISTOGRAM_NAME_MAX], other[HISTOGRAM_NAME_MAX], le[PROM_NUMBER_MAX];
	if (nb > PROM_BUCKETS_MAX || strnlen(name, PROM_NAME_MAX + 1) > PROM_NAME_MAX) {
		fail(w, nb > PROM_BUCKETS_MAX ? "too many buckets" : "invalid metric name");
		return;
	}
	for (size_t i = 0; i < nb; i++)
		if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
			fail(w, "histogram bounds must be finite and increasing");
			return;
		}
	snprintf(bucket, sizeof(bucket), "%s_bucket", name); /* fits: sized for the suffix */
	uint64_t total = 0;
	for (size_t i = 0; i <= nb; i++) {
		/* a wrapped total cannot happen before 2^64 observations; saturate all the same */
		total = UINT64_MAX - total < counts[i] ? UINT64_MAX : total + counts[i];
		struct prom_label l = { "le",
			                i < nb ? prom_number(le, sizeof(le), bounds[i]) : "+Inf" };
		sample_head(w, bucket, labels, n, &l);
		snprintf(le, sizeof(le), " %" PRIu64 "\n", total);
		put(w, le);
	}
	snprintf(other, sizeof(other), "%s_sum", name);
	prom_sample(w, other, labels, n, sum);
	snprintf(other, sizeof(other), "%s_count", name);
	prom_sample_u64(w, other, labels, n, total);
}
