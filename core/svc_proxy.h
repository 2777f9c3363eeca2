/* Service proxy (kube-proxy's userspace mode on the libuv loop): one TCP
 * listener per Service port; each accepted connection goes to the next
 * backend (round robin, trying the others when one refuses) and bytes are
 * copied both ways with backpressure and half-close. No backends: the
 * connection is closed at once. Pure C, no Lua. */
#ifndef ML_SVC_PROXY_H
#define ML_SVC_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ml_svc_proxy_s ml_svc_proxy_t;

typedef struct {
  uint64_t accepted;  /* connections taken from the listener */
  uint64_t rejected;  /* closed at once: no backend, or none answered */
  uint64_t active;    /* connections open now */
  uint64_t bytes_in;  /* client -> backend */
  uint64_t bytes_out; /* backend -> client */
  uint64_t pauses;    /* reads stopped because the other side lagged */
} ml_svc_proxy_stats_t;

/**
 * Binds and listens on host:port (IPv4; port 0 picks a free one).
 * @return 0 and *out, or a negative UV_E* code (EACCES, EADDRINUSE, ...)
 */
int ml_svc_proxy_new(uv_loop_t *loop, const char *host, int port,
                     ml_svc_proxy_t **out);

/**
 * Replaces the backends with `n` "a.b.c.d:port" addresses. Connections in
 * flight keep theirs. @return 0, or UV_EINVAL for a bad address (then the
 * old set stays), UV_ENOMEM
 */
int ml_svc_proxy_set_backends(ml_svc_proxy_t *p, const char *const *addrs,
                              size_t n);

/** The port listened on. */
int ml_svc_proxy_port(const ml_svc_proxy_t *p);

void ml_svc_proxy_stats(const ml_svc_proxy_t *p, ml_svc_proxy_stats_t *out);

/** Stops listening and closes every connection; memory goes in the close
 *  callbacks. */
void ml_svc_proxy_free(ml_svc_proxy_t *p);

#endif
