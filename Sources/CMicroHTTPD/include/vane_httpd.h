// A small HTTP/1.1 server for Vane's Prometheus endpoint, on libmicrohttpd (Debian's
// libmicrohttpd-dev). The library owns the listening socket, one polling thread and the
// request parsing; the shim bounds what a client may send and answers only GET and HEAD.
#ifndef VANE_HTTPD_H
#define VANE_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vane_httpd vane_httpd;

// Produces the answer to a GET or HEAD of `path` (query string removed). Returns the HTTP
// status; `*body` is a malloc'ed buffer of `*length` bytes the shim frees (or NULL for an
// empty body) and `*content_type` a string that outlives the call. Called on the library's
// polling thread, one request at a time.
typedef unsigned (*vane_httpd_handler)(void *context, const char *path, char **body, size_t *length, const char **content_type);

// Listens on `host` (a numeric IPv4 or IPv6 address) and `port` (0: any free port). Returns
// NULL with a message in `error` when it cannot.
vane_httpd *vane_httpd_start(const char *host, uint16_t port, vane_httpd_handler handler, void *context, char *error, size_t error_length);
// The port it listens on.
uint16_t vane_httpd_port(const vane_httpd *server);
// Closes the socket, waits for the polling thread and frees the server.
void vane_httpd_stop(vane_httpd *server);

#ifdef __cplusplus
}
#endif

#endif
