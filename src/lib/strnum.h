/* strnum: strict number parsing (docs/style.md rule 11). */
#ifndef MQ_STRNUM_H
#define MQ_STRNUM_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse s[len] as a decimal uint64: digits only (no sign, no spaces, no empty string), value
 * <= max. Returns 0 and sets *out_r, or -1 leaving *out_r untouched.
 */
int strnum_u64(const char *s, size_t len, uint64_t max, uint64_t *out_r)
        __attribute__((warn_unused_result));

/*
 * Like strnum_u64 on a NUL-terminated string, also accepting one binary suffix K, M, G or T
 * (case-insensitive, powers of 1024) as admins write sizes. Overflow is an error.
 */
int strnum_size(const char *s, uint64_t max, uint64_t *out_r) __attribute__((warn_unused_result));

/*
 * A duration in seconds as admins write it: digits with one optional unit s, m, h, d or w
 * (lower case: "90", "30m", "1h", "7d"), at most max seconds. Overflow is an error; 0 or -1.
 */
int strnum_duration(const char *s, uint64_t max, uint64_t *out_r)
        __attribute__((warn_unused_result));

#endif
