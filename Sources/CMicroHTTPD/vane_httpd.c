#include "vane_httpd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <microhttpd.h>

struct vane_httpd {
  struct MHD_Daemon *daemon;
  vane_httpd_handler handler;
  void *context;
};

// Scrapers keep a connection or two open; anything beyond this is refused by the library.
enum { VANE_HTTPD_CONNECTIONS = 32, VANE_HTTPD_TIMEOUT_SECONDS = 10 };
// Request line and headers must fit here (the library answers 431 or closes otherwise).
enum { VANE_HTTPD_CONNECTION_MEMORY = 16 * 1024 };

static enum MHD_Result vane_httpd_queue(struct MHD_Connection *connection, unsigned status, char *body, size_t length,
                                        const char *content_type, int head) {
  struct MHD_Response *response;
  if (head) {
    free(body);
    response = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
  } else if (body != NULL) {
    response = MHD_create_response_from_buffer(length, body, MHD_RESPMEM_MUST_FREE);
  } else {
    response = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
  }
  if (response == NULL) {
    if (!head) free(body);
    return MHD_NO;
  }
  if (content_type != NULL) MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  enum MHD_Result result = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return result;
}

static enum MHD_Result vane_httpd_access(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                                         const char *version, const char *upload_data, size_t *upload_data_size,
                                         void **request_state) {
  (void)version;
  (void)upload_data;
  vane_httpd *server = cls;
  // First call: headers only. Answer on the second, once any body has been read (and ignored).
  if (*request_state == NULL) {
    *request_state = server;
    return MHD_YES;
  }
  if (*upload_data_size != 0) {
    *upload_data_size = 0;
    return MHD_YES;
  }
  int head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
  if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
    static const char message[] = "only GET and HEAD are served\n";
    char *body = malloc(sizeof message - 1);
    if (body != NULL) memcpy(body, message, sizeof message - 1);
    struct MHD_Response *response = MHD_create_response_from_buffer(body ? sizeof message - 1 : 0, body ? body : "",
                                                                    body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (response == NULL) return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    enum MHD_Result result = MHD_queue_response(connection, MHD_HTTP_METHOD_NOT_ALLOWED, response);
    MHD_destroy_response(response);
    return result;
  }
  char *body = NULL;
  size_t length = 0;
  const char *content_type = NULL;
  unsigned status = server->handler(server->context, url, &body, &length, &content_type);
  return vane_httpd_queue(connection, status, body, length, content_type, head);
}

vane_httpd *vane_httpd_start(const char *host, uint16_t port, vane_httpd_handler handler, void *context, char *error,
                             size_t error_length) {
  struct sockaddr_storage address;
  memset(&address, 0, sizeof address);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&address;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&address;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    flags |= MHD_USE_IPv6;
  } else {
    snprintf(error, error_length, "'%s' is not a numeric IPv4 or IPv6 address", host);
    return NULL;
  }
  vane_httpd *server = calloc(1, sizeof *server);
  if (server == NULL) {
    snprintf(error, error_length, "out of memory");
    return NULL;
  }
  server->handler = handler;
  server->context = context;
  server->daemon = MHD_start_daemon(flags, port, NULL, NULL, vane_httpd_access, server, MHD_OPTION_SOCK_ADDR, &address,
                                    MHD_OPTION_CONNECTION_LIMIT, (unsigned)VANE_HTTPD_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                                    (unsigned)VANE_HTTPD_TIMEOUT_SECONDS, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                    (size_t)VANE_HTTPD_CONNECTION_MEMORY, MHD_OPTION_END);
  if (server->daemon == NULL) {
    snprintf(error, error_length, "cannot listen on %s port %u (in use, or not an address of this machine)", host, (unsigned)port);
    free(server);
    return NULL;
  }
  return server;
}

uint16_t vane_httpd_port(const vane_httpd *server) {
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
  return info == NULL ? 0 : info->port;
}

void vane_httpd_stop(vane_httpd *server) {
  if (server == NULL) return;
  MHD_stop_daemon(server->daemon);
  free(server);
}
