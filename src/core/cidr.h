/* cidr: lists of networks in CIDR notation (Postfix mynetworks style) and matching a peer. */
#ifndef MQ_CIDR_H
#define MQ_CIDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define CIDR_LIST_MAX 64 /* networks in one list */

struct cidr {
	sa_family_t family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];   /* network address; 4 bytes used for AF_INET */
	unsigned prefix;    /* 0..32 or 0..128 */
};

struct cidr_list {
	unsigned n;
	struct cidr nets[CIDR_LIST_MAX];
};

/*
 * Parse a list of networks separated by spaces or commas: "127.0.0.0/8 ::1 [fd00::]/8
 * 192.0.2.7". An address without a prefix is one host. Host bits below the prefix must be zero
 * (192.0.2.1/24 is refused: it is probably a typo). Returns 0 with *list_r, or -1 with a static
 * *error_r and *list_r untouched. Pure.
 */
int cidr_list_parse(const char *text, struct cidr_list *list_r, const char **error_r)
        __attribute__((warn_unused_result));

/* Whether the peer address sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as its
   IPv4 address) lies in one of the list's networks. Anything else: false. Pure. */
bool cidr_list_match(const struct cidr_list *list, const struct sockaddr *sa);

#endif
