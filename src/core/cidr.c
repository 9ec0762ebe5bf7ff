/*
 * cidr: parses network lists such as policy_tcp_allow and decides whether a peer is in one.
 * Pure: no allocation, no I/O. It must never accept a list it would later read differently
 * (a typo'd network is refused, not widened or narrowed).
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "strnum.h"

#define CIDR_TEXT_MAX 64 /* one network's text: "[" + IPv6 + "]/128" fits easily */

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static bool host_bits_zero(const uint8_t *a, unsigned bytes, unsigned prefix)
{
	for (unsigned bit = prefix; bit < bytes * 8; bit++)
		if (a[bit / 8] & (0x80u >> (bit % 8)))
			return false;
	return true;
}

static int parse_one(const char *s, size_t n, struct cidr *c, const char **error_r)
{
	char text[CIDR_TEXT_MAX];
	if (n >= sizeof(text)) {
		*error_r = "a network is too long";
		return -1;
	}
	memcpy(text, s, n);
	text[n] = '\0';
	char *slash = strchr(text, '/');
	const char *addr = text;
	uint64_t prefix = 0;
	bool has_prefix = slash != NULL;
	if (has_prefix) {
		*slash = '\0';
		if (strnum_u64(slash + 1, strlen(slash + 1), 128, &prefix) < 0) {
			*error_r = "a prefix length is not a number from 0 to 128";
			return -1;
		}
	}
	size_t alen = strlen(addr);
	bool bracketed = alen >= 2 && addr[0] == '[' && addr[alen - 1] == ']';
	if (bracketed) {
		text[alen - 1] = '\0'; /* "[::1]" as Postfix writes IPv6 networks */
		addr++;
	}
	memset(c, 0, sizeof(*c));
	if (!bracketed && inet_pton(AF_INET, addr, c->addr) == 1) {
		c->family = AF_INET;
		if (!has_prefix)
			prefix = 32;
		if (prefix > 32) {
			*error_r = "an IPv4 prefix length is at most 32";
			return -1;
		}
	} else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
		c->family = AF_INET6;
		if (!has_prefix)
			prefix = 128;
	} else {
		*error_r = "not an IPv4 or IPv6 address (want e.g. 127.0.0.0/8 or ::1)";
		return -1;
	}
	c->prefix = (unsigned)prefix;
	if (!host_bits_zero(c->addr, c->family == AF_INET ? 4 : 16, c->prefix)) {
		*error_r = "address bits below the prefix are set (want e.g. 192.0.2.0/24)";
		return -1;
	}
	return 0;
}

int cidr_list_parse(const char *text, struct cidr_list *list_r, const char **error_r)
{
	struct cidr_list l = { 0 };
	const char *p = text;
	p += strspn(p, " ,\t");
	while (*p != '\0') {
		size_t n = strcspn(p, " ,\t");
		if (l.n == CIDR_LIST_MAX) {
			*error_r = "more than 64 networks (CIDR_LIST_MAX)";
			return -1;
		}
		if (parse_one(p, n, &l.nets[l.n], error_r) < 0)
			return -1;
		l.n++;
		p += n;
		p += strspn(p, " ,\t");
	}
	*list_r = l;
	return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;
	if (memcmp(a, net, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xffu << (8 - rest));
	return (a[whole] & mask) == (net[whole] & mask);
}

bool cidr_list_match(const struct cidr_list *list, const struct sockaddr *sa)
{
	uint8_t a[16];
	sa_family_t family;
	if (sa->sa_family == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *b =
		        ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		if (memcmp(b, v4_mapped, sizeof(v4_mapped)) == 0) {
			memcpy(a, b + 12, 4);
			family = AF_INET;
		} else {
			memcpy(a, b, 16);
			family = AF_INET6;
		}
	} else {
		return false;
	}
	for (unsigned i = 0; i < list->n; i++)
		if (list->nets[i].family == family &&
		    prefix_equal(a, list->nets[i].addr, list->nets[i].prefix))
			return true;
	return false;
}
