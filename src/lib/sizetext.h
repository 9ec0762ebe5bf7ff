/* sizetext: byte counts for people ("7.5 MiB"), as doveadm and df -h show them. */
#ifndef MQ_SIZETEXT_H
#define MQ_SIZETEXT_H

#include <stdint.h>

/* Room for any text: the longest is "1023.9 KiB" (the compiler wants room for any 64-bit
   number). */
struct size_text {
	char s[48];
};

/*
 * bytes in the largest binary unit (B, KiB, MiB, GiB, TiB, PiB, EiB) that keeps the number
 * at least 1, with one decimal that is dropped when it is 0 ("512 B", "1 KiB", "1.5 MiB",
 * "15.9 EiB" for UINT64_MAX); rounded down, so a mailbox shown "10 MiB" full is never short of 10
 * MiB. Returns out->s. Pure.
 */
const char *size_text(uint64_t bytes, struct size_text *out);

#endif
