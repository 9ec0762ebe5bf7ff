/* address: recipient address normalisation (pure). */
#ifndef MQ_ADDRESS_H
#define MQ_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 5321 §4.5.3.1: local part 64 octets, domain 255, path 256 with the angle brackets. */
#define ADDRESS_LOCAL_MAX  64
#define ADDRESS_DOMAIN_MAX 255
#define ADDRESS_MAX        254
/* recipient_delimiter may name several characters, as in Postfix. */
#define ADDRESS_DELIMITERS_MAX 16

struct address_rules {
	bool fold_local;                             /* lower-case the local part (ASCII) */
	char delimiters[ADDRESS_DELIMITERS_MAX + 1]; /* empty: no extension stripping */
};

struct address {
	/* whole local part, folded if the rules say so; only its base when an extension takes it
	   over ADDRESS_LOCAL_MAX (nothing stored has such a name) */
	char local[ADDRESS_LOCAL_MAX + 1];
	char base[ADDRESS_LOCAL_MAX + 1]; /* local part without its extension (== local if none) */
	char domain[ADDRESS_DOMAIN_MAX + 1]; /* lower case */
	bool has_extension;                  /* the local part had an extension */
};

/*
 * Normalise the recipient s[len] (without angle brackets; a pair of them is tolerated and
 * removed). Domain lower-cased; local part folded when rules->fold_local; the extension starts at
 * the first delimiter character that is not the first character of the local part.
 * Returns 0 and fills *addr_r, or -1 with a static *error_r (too long, no '@', empty part,
 * control characters, malformed domain). Pure.
 */
int address_normalize(const char *s, size_t len, const struct address_rules *rules,
                      struct address *addr_r, const char **error_r)
        __attribute__((warn_unused_result));

#endif
