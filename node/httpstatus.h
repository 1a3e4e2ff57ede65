/* httpstatus: reads the status code off the start of an HTTP/1.x response, for the http
 * health probe. Pure; fed the bytes received so far. */
#ifndef DEVNODE_HTTPSTATUS_H
#define DEVNODE_HTTPSTATUS_H

#include <stddef.h>

/* 1: the status line is there, *code set; 0: not enough bytes yet; -1: not an HTTP response. */
int http_status_parse(const char *buf, size_t len, int *code);

#endif
