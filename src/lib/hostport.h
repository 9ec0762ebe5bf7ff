/* hostport: splitting listen and connect addresses. */
#ifndef MQ_HOSTPORT_H
#define MQ_HOSTPORT_H

/* Split "host:port" or "[v6]:port" (port 1..65535); 0 or -1. *host_r and *port_r are allocated. */
int hostport_split(const char *s, char **host_r, char **port_r) __attribute__((warn_unused_result));

#endif
