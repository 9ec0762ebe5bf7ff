/* hostport: "host:port" and "[v6]:port" for listen and connect addresses. Pure. */
#include "hostport.h"

#include <string.h>

#include "strnum.h"
#include "xalloc.h"

int hostport_split(const char *s, char **host_r, char **port_r)
{
	const char *colon;
	const char *host = s;
	size_t hlen;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hlen = (size_t)(colon - s);
	}
	uint64_t port;
	if (hlen == 0 || strnum_u64(colon + 1, strlen(colon + 1), 65535, &port) < 0 || port == 0)
		return -1;
	*host_r = xstrndup(host, hlen);
	*port_r = xstrdup(colon + 1);
	return 0;
}
