/* xalloc: allocation that never fails at the call site (docs/style.md rule 7). */
#ifndef MQ_XALLOC_H
#define MQ_XALLOC_H

#include <stddef.h>

/* Each aborts the process with a message when memory is exhausted; none returns NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
