/*
 * prom: a writer of Prometheus's text exposition format, version 0.0.4 (what GET /metrics
 * serves): HELP and TYPE lines, samples with escaped label values, numbers as Prometheus reads
 * them (+Inf, -Inf, NaN, integers exactly) and histograms with cumulative buckets. Pure: it
 * writes into a bounded buffer and knows nothing of where the figures come from.
 */
#ifndef MQ_PROM_H
#define MQ_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PROM_NAME_MAX        128 /* a metric or label name */
#define PROM_LABELS_MAX      4   /* labels on one sample (a histogram's "le" besides) */
#define PROM_LABEL_VALUE_MAX 256 /* one label value, before escaping */
#define PROM_HELP_MAX        512 /* one HELP text, before escaping */
#define PROM_BUCKETS_MAX     32  /* finite bucket bounds of one histogram */
#define PROM_NUMBER_MAX      32  /* room for one formatted number with its NUL */

enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM };

struct prom_label {
	const char *name;
	const char *value;
};

/*
 * A writer over out. Every call appends or, once anything has failed, does nothing: the first
 * failure is kept (static text) and prom_finish() reports it, so a family is written without a
 * check after each line.
 */
struct prom_writer {
	struct buf *out;   /* borrowed */
	const char *error; /* the first failure, static; NULL: none */
};

void prom_init(struct prom_writer *w, struct buf *out);

/* 0, or -1 with the first failure in *error_r (static): out full, a name or label invalid, a
   value or help text over its limit, histogram bounds not increasing. */
int prom_finish(const struct prom_writer *w, const char **error_r)
        __attribute__((warn_unused_result));

/* Whether name is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, at most PROM_NAME_MAX). */
bool prom_name_valid(const char *name);
/* Whether name is a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting "__"). */
bool prom_label_name_valid(const char *name);

/*
 * v as the exposition format spells a number into dst[size] (size >= PROM_NUMBER_MAX): "+Inf",
 * "-Inf", "NaN", an integral value below 2^53 in magnitude without exponent or point, else the
 * shortest of %.15g and %.17g that reads back as v. Returns dst. Never fails.
 */
const char *prom_number(char *dst, size_t size, double v);

/* Append v with the label-value escapes (\\, \" and \n) to out: 0, or -1 when out is full or v
   is longer than PROM_LABEL_VALUE_MAX (out then unchanged). */
int prom_escape_label(struct buf *out, const char *v) __attribute__((warn_unused_result));
/* The same with the HELP escapes (\\ and \n), limit PROM_HELP_MAX. */
int prom_escape_help(struct buf *out, const char *help) __attribute__((warn_unused_result));

/* "# HELP name help\n# TYPE name type\n": once per family, before its samples. */
void prom_family(struct prom_writer *w, const char *name, enum prom_type type, const char *help);

/* One sample line: name{labels} value. labels may be NULL with n 0. */
void prom_sample(struct prom_writer *w, const char *name, const struct prom_label *labels, size_t n,
                 double value);
/* The same with an integer value, written exactly (a counter past 2^53 keeps its digits). */
void prom_sample_u64(struct prom_writer *w, const char *name, const struct prom_label *labels,
                     size_t n, uint64_t value);

/*
 * A histogram's samples: name_bucket with each le of bounds[nb] (strictly increasing, finite)
 * and le="+Inf", cumulative; then name_sum (sum) and name_count. counts[nb + 1] are NOT
 * cumulative: counts[i] observations fell in (bounds[i-1], bounds[i]], counts[nb] above the
 * last bound. The count written is their total, so it always equals the +Inf bucket.
 */
void prom_histogram(struct prom_writer *w, const char *name, const struct prom_label *labels,
                    size_t n, const double *bounds, const uint64_t *counts, size_t nb, double sum);

#endif
