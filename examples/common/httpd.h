/* httpd: the small HTTP/1.1 server the example services (demo_web, bookshelf's last_read) share:
 * it accepts on the listening socket the node passes down, parses requests with http_parser,
 * hands each whole request to one callback and writes its answer, with keep-alive, pipelining
 * and a graceful stop. It knows no route, and never shutdown(2)s the shared socket: the node
 * and the other workers of the service hold it too. */
#ifndef EXAMPLES_COMMON_HTTPD_H
#define EXAMPLES_COMMON_HTTPD_H

#include <stddef.h>

#include <http_parser.h>
#include <uv.h>

struct httpd;      /* the server: one listening socket and its connections */
struct httpd_conn; /* one client connection; valid for the length of on_request */

struct httpd_request {
    enum http_method method;    /* HTTP_GET, HTTP_HEAD, ... */
    const char *path;           /* "/greet": NUL-terminated, not decoded */
    const char *query;          /* "name=joe" without the '?', or "": not decoded */
    const char *trace_id;       /* X-Trace-Id (the first with a value), end blanks cut, or "" */
};

struct httpd_callbacks {
    /* Must answer with httpd_respond before it returns: pipelined requests are answered in
     * their order because each is answered at once. */
    void (*on_request)(struct httpd_conn *conn, const struct httpd_request *req, void *ctx);
    void *ctx;
};

/* The listening fd the service was given: LISTEN_FDS (systemd: fd 3, if LISTEN_PID is ours or
 * unset), then lymph's LYMPH_SHARED_SOCKET_FDS ({"4080": 3}), then $PORT bound on 127.0.0.1
 * for running it by hand. LISTEN_* are removed from the environment either way; the fd gets
 * FD_CLOEXEC. -1 when there is none: err says why when $PORT could not be bound, else is "". */
int httpd_listen_fd(char *err, size_t err_size);

/* Serves HTTP on listen_fd (TCP or a unix stream socket) in loop, taking the fd over. 0, or
 * -ENOTSOCK when it is not a stream socket, another -errno otherwise; err says why. */
int httpd_open(struct httpd **out, uv_loop_t *loop, int listen_fd, const struct httpd_callbacks *callbacks,
               char *err, size_t err_size);

/* Answers the request on_request was given: the reason phrase follows status; content_type NULL
 * is text/plain; charset=utf-8; headers are whole lines ("Name: value\r\n"), or NULL; a HEAD
 * gets the headers alone. The connection is kept open when the client asked for it and the
 * server is not stopping. */
void httpd_respond(struct httpd_conn *conn, int status, const char *content_type, const char *headers,
                   const char *body);

/* A graceful stop: closes our listening fd (the other workers keep accepting) and the idle
 * connections; the others get their answer with `Connection: close`. Once the last
 * connection has closed it stops the loop (uv_stop). */
void httpd_stop(struct httpd *h);

/* Closes the listener and every connection; h is freed once the loop has run their close
 * callbacks. NULL is fine. */
void httpd_close(struct httpd *h);

#endif
