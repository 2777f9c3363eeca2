/* HTTP/1.1 server on the moonlet loop: listeners on unix sockets, TCP and
 * TCP with TLS (core/tls.h, decrypted before the parser and encrypted at
 * flush; unix sockets and plain TCP pay nothing for it), keep-alive
 * connections that handle one request at a time, and responses
 * written in an end-of-turn hook (after the store committed the turn).
 * Complete requests are posted as ML_EV_HTTPD_REQUEST events; the answer
 * comes back by request id (ml_httpd_respond / ml_httpd_stream_*). The core
 * never calls Lua.
 *
 *   read ─► parser ─► event(REQUEST) ··· Lua ··· respond(id) ─► out buffer
 *                          end of turn (and the commit's sync) ─► write
 *
 * A request may instead be upgraded to a WebSocket (ml_httpd_ws_accept):
 * its frames then go to C callbacks (core/ws_frame.h decodes them; pings
 * and closes are answered here) and the request id names the session.
 */
#ifndef ML_HTTP_SERVER_H
#define ML_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durable.h"
#include "http_parse.h"
#include "loop.h"
#include "tls.h"

typedef struct ml_httpd_s ml_httpd_t;
typedef struct ml_httpd_listener_s ml_httpd_listener_t;

typedef struct {
  size_t max_header_bytes;    /* 0: 1 MiB (431 above) */
  size_t max_body_bytes;      /* 0: 3 MiB (413 above) */
  uint64_t idle_timeout_ms;   /* 0: 5 minutes; never applies to streams */
  uint64_t shutdown_grace_ms; /* 0: 30 s to finish after a listener closes */
} ml_httpd_opts_t;

/**
 * The payload of ML_EV_HTTPD_REQUEST (ev.id = the listener's event id). One
 * allocation holds the struct, the field array and every string; all
 * strings are NUL-terminated. Freed by the loop after delivery.
 */
typedef struct {
  ml_event_t ev;
  uint64_t req_id;       /* answer with ml_httpd_respond(srv, req_id, ...) */
  const char *transport; /* "unix" or "tcp" (with or without TLS) */
  bool tls;              /* arrived over TLS */
  const char *method;
  int http_major, http_minor;
  bool keep_alive;
  const char *url, *path, *query; /* raw; query "" when absent */
  size_t url_len, path_len, query_len;
  bool has_query;
  const ml_http_field_t *fields; /* lower-case names, arrival order */
  size_t nfields;
  const char *body;
  size_t body_len;
} ml_httpd_request_t;

/**
 * The payload of ML_EV_HTTPD_CLOSED (ev.id = the listener's event id): the
 * peer of an unanswered or streaming request went away (EOF, reset, write
 * error), or the listener is stopping and the request is a stream. The
 * request must still be finished (respond / stream_end): after an EOF the
 * answer is written if the socket takes it, after a reset the call returns
 * ML_ENOTFOUND. Posted at most once per request.
 */
typedef struct {
  ml_event_t ev;
  uint64_t req_id;
} ml_httpd_closed_t;

typedef struct {
  size_t listeners;   /* open listeners */
  size_t connections; /* open connections (any listener) */
  size_t requests;    /* requests delivered and not yet answered */
  size_t streams;     /* streaming responses and WebSockets in progress */
  uint64_t served;    /* responses completed since start */
} ml_httpd_stats_t;

/**
 * Creates a server on `loop`; the response-flush hook is added to the loop
 * when the first listener starts (after the store's commit hook).
 * @param opts NULL for defaults
 * @return 0, or ML_ENOMEM
 */
int ml_httpd_new(ml_loop_t *loop, const ml_httpd_opts_t *opts,
                 ml_httpd_t **out);

/**
 * Closes everything now: listeners, connections (posting CLOSED for open
 * requests). Memory is released in close callbacks, so run the uv loop
 * afterwards until it is empty. The flush hook stays registered on the loop
 * but does nothing once the server is gone.
 */
void ml_httpd_free(ml_httpd_t *srv);

/**
 * Starts listening.
 * @param url "unix:PATH" (a stale socket file is removed; the socket gets
 *   `mode` before listen()) or "tcp://HOST:PORT" (PORT 0 picks one)
 * @param mode permission bits of a unix socket (0: 0600)
 * @param ev_id id that this listener's REQUEST and CLOSED events carry
 * @return 0, ML_EINVALID for a bad url, or a libuv error
 */
int ml_httpd_listen(ml_httpd_t *srv, const char *url, int mode,
                    uint64_t ev_id, ml_httpd_listener_t **out);

/**
 * Starts listening with TLS: every connection is a TLS server session of
 * `tls` (the listener takes its own reference). A peer that speaks plain
 * HTTP is answered "400 Bad Request" in plain text, as Go's server does.
 * @param url "tcp://HOST:PORT" or "https://HOST:PORT"; the listener's url
 *   reads "https://HOST:PORT"
 * @return as ml_httpd_listen
 */
int ml_httpd_listen_tls(ml_httpd_t *srv, const char *url, ml_tls_ctx_t *tls,
                        uint64_t ev_id, ml_httpd_listener_t **out);

/** @return the bound TCP port, 0 for a unix socket. */
int ml_httpd_listener_port(const ml_httpd_listener_t *l);

/** @return the listener's url with the bound port filled in. */
const char *ml_httpd_listener_url(const ml_httpd_listener_t *l);

/**
 * Graceful stop of one listener: no new connections; unanswered requests
 * may still be answered, streams get a CLOSED event, idle connections close
 * now and busy ones after their response (or after shutdown_grace_ms). The
 * listener record is released once its last connection is gone; `l` must
 * not be used after this call.
 */
void ml_httpd_listener_close(ml_httpd_listener_t *l);

/**
 * Answers request `id` with a complete response; Content-Length, Date and
 * (when closing) Connection: close are added by the server.
 * @param headers extra header fields (names as given)
 * @return 0, ML_ENOTFOUND for an unknown or finished id, ML_EINVALID if a
 *   response was already started, ML_ENOMEM
 */
int ml_httpd_respond(ml_httpd_t *srv, uint64_t id, int status,
                     const ml_http_field_t *headers, size_t nheaders,
                     const char *body, size_t body_len);

/** Starts a chunked response. @return as ml_httpd_respond. */
int ml_httpd_stream_begin(ml_httpd_t *srv, uint64_t id, int status,
                          const ml_http_field_t *headers, size_t nheaders);

/**
 * Queues one chunk (empty data is ignored, it would end the stream). A
 * stream more than 16 MiB behind its peer is closed (CLOSED is posted).
 * @return bytes queued on the connection and not yet written (>= 0), or
 *   ML_ENOTFOUND / ML_EINVALID / ML_ENOMEM / ML_ECLOSED (cut off)
 */
long ml_httpd_stream_write(ml_httpd_t *srv, uint64_t id, const char *data,
                           size_t len);

/**
 * Queues one chunk made of `nbufs` pieces, copied in order (a watch frame
 * around an object text shared by every watcher, without joining them
 * first). @return as ml_httpd_stream_write.
 */
long ml_httpd_stream_writev(ml_httpd_t *srv, uint64_t id, const uv_buf_t *bufs,
                            size_t nbufs);

/** Ends a chunked response. @return 0, ML_ENOTFOUND or ML_EINVALID. */
int ml_httpd_stream_end(ml_httpd_t *srv, uint64_t id);

/* {====== WebSocket sessions */

/* The callbacks of a session; they run on the loop, in C, from the read or
 * write path: they must not call ml_httpd_free. */
typedef struct {
  /** A whole data message (ML_WS_TEXT or ML_WS_BINARY). */
  void (*on_message)(void *ud, int opcode, const uint8_t *data, size_t len);
  /** What was queued went out after a send reported a backlog. */
  void (*on_drain)(void *ud);
  /** The session is over (the peer's close or EOF, a protocol error, our
   * close written, the server stopping): called once, nothing after. The
   * request gets its CLOSED event too. */
  void (*on_end)(void *ud);
} ml_httpd_ws_ops_t;

/* A send that leaves more than this unsent sets up an on_drain call. */
#define ML_HTTPD_WS_HIGH_WATER (256 * 1024)

/**
 * Upgrades request `id` (a GET with Upgrade: websocket, Connection:
 * upgrade, Sec-WebSocket-Version: 13 and a key) to a WebSocket session:
 * answers 101 with the accept key and `protocol` (NULL: none), and from
 * then on feeds frames to `ops`. Client frames must be masked; messages
 * are limited to 1 MiB (close 1009 above).
 * @return 0, ML_ENOTFOUND, ML_EINVALID (not a valid upgrade request or
 *   already answered), ML_ENOMEM
 */
int ml_httpd_ws_accept(ml_httpd_t *srv, uint64_t id, const char *protocol,
                       const ml_httpd_ws_ops_t *ops, void *ud);

/**
 * Queues one message made of `nbufs` pieces (a channel byte and its data).
 * @return bytes not yet written to the peer (above ML_HTTPD_WS_HIGH_WATER
 *   an on_drain follows), or ML_ENOTFOUND / ML_ECLOSED (closing) /
 *   ML_ENOMEM
 */
long ml_httpd_ws_send(ml_httpd_t *srv, uint64_t id, int opcode,
                      const uv_buf_t *bufs, size_t nbufs);

/**
 * Sends a close frame; the connection closes once it is written (and
 * on_end runs then). Later calls do nothing. @return 0 or ML_ENOTFOUND
 */
int ml_httpd_ws_close(ml_httpd_t *srv, uint64_t id, int code,
                      const char *reason);

/** Stops (or resumes) reading the peer's messages: backpressure from the
 * consumer. @return 0 or ML_ENOTFOUND */
int ml_httpd_ws_pause(ml_httpd_t *srv, uint64_t id, bool paused);

/**
 * Forgets the callbacks (their owner is going away): on_end will not run.
 * The session is closed with 1001 when still open.
 */
void ml_httpd_ws_detach(ml_httpd_t *srv, uint64_t id);

/* }====== */

/**
 * Makes the server's output wait for `d`: a byte goes out only once every
 * commit made up to the end of the turn that produced it is durable; while
 * nothing is unsynced, bytes go at the end of their turn as without a gate.
 * After a sync failure, connections holding bytes that depend on it are
 * closed. NULL detaches. The gate must outlive the server or be detached.
 */
void ml_httpd_set_durable(ml_httpd_t *srv, ml_durable_t *d);

/** Writes every queued response now (the end-of-turn hook calls this). */
void ml_httpd_flush(ml_httpd_t *srv);

/** @return counters for tests and metrics. */
ml_httpd_stats_t ml_httpd_stats(const ml_httpd_t *srv);

#endif
