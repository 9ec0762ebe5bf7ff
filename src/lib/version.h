/* version: the one place the release number lives. */
#ifndef MQ_VERSION_H
#define MQ_VERSION_H

#define MAILQUOTA_VERSION "0.1.0"

#endif
