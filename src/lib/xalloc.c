/*
 * xalloc: wrappers over the C allocator that abort on exhaustion, so call sites never handle
 * NULL from our own allocations. Never used for sizes taken unchecked from the network: callers
 * bound those first (docs/style.md rule 10).
 */
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t size)
{
	fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size == 0 ? 1 : size);
	if (p == NULL)
		oom(size);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
	if (p == NULL)
		oom(n * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size == 0 ? 1 : size);
	if (p == NULL)
		oom(size);
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1); /* len < n <= SIZE_MAX, so +1 cannot wrap unless n == SIZE_MAX
	                               and the string really is that long, which no object can be */
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}
