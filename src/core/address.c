/*
 * address: turns what an MTA or API caller sends as a recipient into the keys the store is
 * searched by. Pure: no I/O, no globals, no allocation. It must never accept an address longer
 * than RFC 5321 allows, nor one whose parts could not have come from an SMTP RCPT command.
 */
#include "address.h"

#include <string.h>

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int check_domain(const char *d, size_t len, const char **error_r)
{
	if (len == 0) {
		*error_r = "empty domain";
		return -1;
	}
	if (d[0] == '[') {
		/* address literal: [1.2.3.4] or [IPv6:...]; only its shape is checked */
		if (len < 3 || d[len - 1] != ']') {
			*error_r = "malformed address literal";
			return -1;
		}
		for (size_t i = 1; i + 1 < len; i++) {
			unsigned char c = (unsigned char)d[i];
			if (c <= 0x20 || c == 0x7f || c == '[' || c == ']' || c == '\\') {
				*error_r = "malformed address literal";
				return -1;
			}
		}
		return 0;
	}
	if (d[0] == '.' || d[len - 1] == '.') {
		*error_r = "domain starts or ends with a dot";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c >= 0x80;
		if (!ok) {
			*error_r = "invalid character in domain";
			return -1;
		}
		if (c == '.' && d[i + 1] == '.') {
			*error_r = "empty domain label";
			return -1;
		}
	}
	return 0;
}

int address_normalize(const char *s, size_t len, const struct address_rules *rules,
                      struct address *addr_r, const char **error_r)
{
	if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
		s++;
		len -= 2;
	}
	if (len == 0) {
		*error_r = "empty address";
		return -1;
	}
	if (len > ADDRESS_MAX) {
		*error_r = "address longer than 254 octets";
		return -1;
	}
	const char *at = NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f) {
			*error_r = "control character in address";
			return -1;
		}
		if (c == '@')
			at = s + i; /* the last '@' separates the domain */
	}
	if (at == NULL) {
		*error_r = "address has no domain";
		return -1;
	}
	size_t llen = (size_t)(at - s);
	size_t dlen = len - llen - 1;
	if (llen == 0) {
		*error_r = "empty local part";
		return -1;
	}
	/* Postfix never splits at a leading delimiter (so "+x" or "-request" style names survive).
	 */
	size_t base_len = llen;
	if (rules->delimiters[0] != '\0') {
		for (size_t i = 1; i < llen; i++) {
			if (strchr(rules->delimiters, rules->fold_local ? lower(s[i]) : s[i]) !=
			    NULL) {
				base_len = i;
				break;
			}
		}
	}
	/* An extension may take a local part over RFC 5321's 64 octets (MTAs accept it, and a
	   sender could otherwise pass a full mailbox with a long +tag): nothing stored can have
	   such a name, so the whole local part becomes its base. A base over 64 names nothing. */
	if (base_len > ADDRESS_LOCAL_MAX) {
		*error_r = "local part longer than 64 octets";
		return -1;
	}
	size_t keep = llen > ADDRESS_LOCAL_MAX ? base_len : llen;
	if (dlen > ADDRESS_DOMAIN_MAX) {
		*error_r = "domain longer than 255 octets";
		return -1;
	}
	if (check_domain(at + 1, dlen, error_r) < 0)
		return -1;

	struct address a;
	for (size_t i = 0; i < keep; i++)
		a.local[i] = rules->fold_local ? lower(s[i]) : s[i];
	a.local[keep] = '\0';
	for (size_t i = 0; i < dlen; i++)
		a.domain[i] = lower(at[1 + i]);
	a.domain[dlen] = '\0';
	memcpy(a.base, a.local, base_len);
	a.base[base_len] = '\0';
	a.has_extension = base_len != llen;
	*addr_r = a;
	return 0;
}
