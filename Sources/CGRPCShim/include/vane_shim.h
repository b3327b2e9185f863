// vane_shim.h — a plain-C surface over libgrpc++ (1.51).
//
// The shim moves bytes, metadata, deadlines and status codes. It knows no message types.
//
// Conventions (in the style of LightGBM's C API):
// - opaque handles; every handle has a create/free pair and is owned by exactly one caller;
// - every fallible entry point returns an `int` status: 0 on success, -1 on failure with the
//   reason written to a caller-supplied `vane_shim_error` (which may be NULL);
// - no C++ exception crosses this boundary;
// - callbacks run on gRPC's threads. They must not block and must not call back into the shim
//   for the same call synchronously in a way that waits (starting operations is fine: the shim
//   never holds a lock while it invokes a callback).
// - buffers handed to callbacks are valid only for the duration of the callback: copy them.

#ifndef VANE_SHIM_H
#define VANE_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Errors

enum { VANE_SHIM_ERROR_MESSAGE_CAPACITY = 512 };

typedef struct vane_shim_error {
  /// A gRPC status code that best describes the failure (e.g. 3 INVALID_ARGUMENT, 14 UNAVAILABLE).
  int code;
  /// NUL-terminated, truncated to fit.
  char message[VANE_SHIM_ERROR_MESSAGE_CAPACITY];
} vane_shim_error;

// MARK: - Metadata

/// One metadata entry. Keys are lower-case ASCII. Values of keys ending in "-bin" are raw bytes;
/// other values are printable ASCII. Nothing here is NUL-terminated.
typedef struct vane_shim_metadata_entry {
  const char *key;
  size_t key_length;
  const uint8_t *value;
  size_t value_length;
} vane_shim_metadata_entry;

// MARK: - Descriptors (server reflection)

/// Adds a serialized `google.protobuf.FileDescriptorProto` to the C++ generated descriptor pool,
/// so that server reflection can describe it. The bytes are copied and kept for the life of the
/// process. A file whose name the pool already knows is skipped (adding one twice would abort the
/// process). Call before starting a server that enables reflection.
int vane_shim_descriptor_pool_add_file(const uint8_t *bytes, size_t length, vane_shim_error *error);

// MARK: - Server

typedef struct vane_shim_server vane_shim_server;
typedef struct vane_shim_server_call vane_shim_server_call;

/// TLS for a server. All strings are PEM, NUL-terminated.
typedef struct vane_shim_server_tls {
  const char *certificate_chain;
  const char *private_key;
  /// NULL: no client certificates requested. Otherwise clients must present a certificate signed
  /// by one of these roots (mutual TLS).
  const char *client_ca_roots;
} vane_shim_server_tls;

typedef struct vane_shim_server_options {
  /// "host:port"; port 0 picks a free port (see vane_shim_server_port).
  const char *address;
  /// NULL for an insecure (plaintext) listener.
  const vane_shim_server_tls *tls;
  /// Bytes; 0 keeps gRPC's default (4 MiB receive, unlimited send); -1 means unlimited.
  int max_receive_message_bytes;
  int max_send_message_bytes;
  /// Milliseconds; 0 keeps gRPC's default.
  int keepalive_time_ms;
  int keepalive_timeout_ms;
  /// Smallest interval between client pings the server accepts without a GOAWAY.
  int keepalive_min_ping_interval_ms;
  int keepalive_permit_without_calls;
  /// Registers grpc++'s default grpc.health.v1.Health service.
  int enable_health;
  /// Registers grpc++'s v1alpha server reflection service.
  int enable_reflection;
} vane_shim_server_options;

/// What a new call looks like when it arrives. Valid only during `on_call`.
typedef struct vane_shim_call_info {
  /// "/package.Service/Method", not NUL-terminated.
  const char *method;
  size_t method_length;
  /// The peer as gRPC spells it ("ipv4:127.0.0.1:5555", "ipv6:[::1]:5555", "unix:..."), NUL-terminated.
  const char *peer;
  /// Nanoseconds until the call's deadline, clamped at 0; -1 when the call has no deadline.
  int64_t timeout_nanoseconds;
  const vane_shim_metadata_entry *metadata;
  size_t metadata_count;
} vane_shim_call_info;

/// Server-side events. `context` is the value given in vane_shim_server_callbacks; `user` is the
/// value `on_call` returned for that call.
typedef struct vane_shim_server_callbacks {
  void *context;
  /// A new call. Return a per-call pointer handed back to every later callback of this call.
  /// `call` is a new handle owned by the callee, who frees it with vane_shim_server_call_free
  /// (any time; after `on_done` it only releases memory).
  void *(*on_call)(void *context, vane_shim_server_call *call, const vane_shim_call_info *info);
  /// A read started with vane_shim_server_call_read finished: `ok` != 0 with a message, or `ok`
  /// == 0 when the client half-closed or the call ended. On a unary method's call the request is
  /// already there, so the read is answered inside vane_shim_server_call_read, on the thread
  /// that called it (or, for a read started inside `on_call`, right after `on_call` returns).
  void (*on_read)(void *user, int ok, const uint8_t *bytes, size_t length);
  /// The outbound queue drained below its low-water mark after a write reported it full.
  void (*on_writable)(void *user);
  /// The client cancelled, the deadline passed, or the connection broke. The call must still be
  /// finished with vane_shim_server_call_finish.
  void (*on_cancel)(void *user);
  /// The call is over: no callback for `user` follows. Release `user` here.
  void (*on_done)(void *user);
} vane_shim_server_callbacks;

/// Creates and starts a server that routes every method in `methods` (each "/pkg.Service/Method")
/// as a named raw-callback method, so that reflection lists their services, plus a generic
/// fallback for any other method. Returns NULL and fills `error` on failure.
///
/// `unary` is NULL or holds one flag per method: non-zero marks a unary method (one request
/// message, one response message). grpc++ reads such a call's request before the call starts,
/// and its response's initial metadata, message and status go out together when it is
/// finished: two operations where a streamed call takes four or more. Its calls take the same
/// functions; a second response message is refused, and an OK status without a message ends the
/// call with INTERNAL. Every other method, and any unrouted one, is streamed both ways.
vane_shim_server *vane_shim_server_create(const vane_shim_server_options *options,
                                          const char *const *methods, const int *unary,
                                          size_t method_count,
                                          const vane_shim_server_callbacks *callbacks,
                                          vane_shim_error *error);

/// The port the server bound (useful with port 0).
int vane_shim_server_port(const vane_shim_server *server);

/// Sets the health status reported for `service` ("" is the whole server). Requires enable_health.
int vane_shim_server_set_serving(vane_shim_server *server, const char *service, int serving,
                                 vane_shim_error *error);

/// Stops accepting calls and waits until every call has been finished (blocking). Calls still
/// running after `grace_milliseconds` are cancelled (their on_cancel fires); each must still be
/// finished by the caller, so never call this from a thread that those finishes need. Health
/// turns NOT_SERVING for every service first. Idempotent.
int vane_shim_server_shutdown(vane_shim_server *server, int64_t grace_milliseconds,
                              vane_shim_error *error);

/// Shuts down (with no grace) if needed, then frees the server.
void vane_shim_server_free(vane_shim_server *server);

// Server calls. Any thread may call these; operations after `finish` fail with an error.

/// Starts reading the next message; the result arrives in on_read. One read at a time.
int vane_shim_server_call_read(vane_shim_server_call *call, vane_shim_error *error);

/// Queues the response's initial metadata (sent before the first message, or with the status).
int vane_shim_server_call_send_initial_metadata(vane_shim_server_call *call,
                                                const vane_shim_metadata_entry *metadata,
                                                size_t count, vane_shim_error *error);

/// Queues a message (copied). `*must_wait` is set to 1 when the queue is now full: the caller
/// should wait for on_writable before writing more.
int vane_shim_server_call_write(vane_shim_server_call *call, const uint8_t *bytes, size_t length,
                                int *must_wait, vane_shim_error *error);

/// For a call whose response is a single message: the initial metadata and the message are
/// held and sent together with the status, as one batch. Call before any response part. Writes
/// never report must_wait on such a call.
int vane_shim_server_call_hold_until_finish(vane_shim_server_call *call, vane_shim_error *error);

/// Queues the status (after every queued message). `message` may be NULL. Exactly once per call.
int vane_shim_server_call_finish(vane_shim_server_call *call, int code, const char *message,
                                 size_t message_length, const vane_shim_metadata_entry *trailers,
                                 size_t trailer_count, vane_shim_error *error);

void vane_shim_server_call_free(vane_shim_server_call *call);

// MARK: - Client

typedef struct vane_shim_channel vane_shim_channel;
typedef struct vane_shim_client_call vane_shim_client_call;

typedef struct vane_shim_channel_tls {
  /// PEM roots that sign the server's certificate; NULL uses the system roots.
  const char *ca_roots;
  /// Client certificate chain and key for mutual TLS; both NULL for none.
  const char *certificate_chain;
  const char *private_key;
  /// Checks the server certificate against this name instead of the target's host; may be NULL.
  const char *server_name_override;
} vane_shim_channel_tls;

typedef struct vane_shim_channel_options {
  /// A gRPC target: "host:port", "dns:///host:port", "unix:/path", ...
  const char *target;
  /// NULL for plaintext.
  const vane_shim_channel_tls *tls;
  int max_receive_message_bytes;
  int max_send_message_bytes;
  int keepalive_time_ms;
  int keepalive_timeout_ms;
  int keepalive_permit_without_calls;
  /// Longest wait between reconnection attempts (0: grpc's default, 120 s).
  int max_reconnect_backoff_ms;
} vane_shim_channel_options;

vane_shim_channel *vane_shim_channel_create(const vane_shim_channel_options *options,
                                            vane_shim_error *error);
void vane_shim_channel_free(vane_shim_channel *channel);

/// grpc_connectivity_state: 0 IDLE, 1 CONNECTING, 2 READY, 3 TRANSIENT_FAILURE, 4 SHUTDOWN.
int vane_shim_channel_state(vane_shim_channel *channel, int try_to_connect);

/// Starts connecting and blocks until the channel is READY, has failed (TRANSIENT_FAILURE), is
/// shut down, or `timeout_milliseconds` passed; returns the state then. Blocking: call it from a
/// thread of its own.
int vane_shim_channel_wait_for_connected(vane_shim_channel *channel, int64_t timeout_milliseconds);

typedef struct vane_shim_client_callbacks {
  /// The server's initial metadata arrived (or the call ended without any: count 0, ok 0).
  void (*on_initial_metadata)(void *user, int ok, const vane_shim_metadata_entry *metadata,
                              size_t count);
  /// A read finished: ok != 0 with a message, ok == 0 at the end of the response stream.
  void (*on_read)(void *user, int ok, const uint8_t *bytes, size_t length);
  /// The outbound queue drained below its low-water mark after a write reported it full.
  void (*on_writable)(void *user);
  /// The call's final status. Last callback for `user`: release it here.
  void (*on_done)(void *user, int code, const char *message, size_t message_length,
                  const vane_shim_metadata_entry *trailers, size_t trailer_count);
} vane_shim_client_callbacks;

typedef struct vane_shim_call_options {
  /// Nanoseconds from now; -1 for no deadline.
  int64_t timeout_nanoseconds;
  int wait_for_ready;
  /// The request is a single message (unary and server-streaming calls): the initial metadata,
  /// the message and the half-close are held until writes_done and go out as one batch. Writes
  /// never report must_wait on such a call.
  int single_request;
  /// The response is a single message too (a unary call): the call goes out once writes_done
  /// is called, through grpc++'s callback unary call (the whole exchange is one batch). The
  /// callbacks are as for any call: on_initial_metadata (ok = 0 for a trailers-only answer),
  /// on_read for the message and then the end, each in answer to a read, then on_done.
  int unary;
} vane_shim_call_options;

/// Starts a call: a unary call (options->unary) goes out with its request at writes_done;
/// every other kind is one bidi stream on the wire, whose initial request metadata goes out at
/// once. Returns a handle the caller frees with vane_shim_client_call_free; `user` is
/// passed to every callback, ending with exactly one on_done.
vane_shim_client_call *vane_shim_client_call_start(vane_shim_channel *channel, const char *method,
                                                   size_t method_length,
                                                   const vane_shim_metadata_entry *metadata,
                                                   size_t metadata_count,
                                                   const vane_shim_call_options *options,
                                                   const vane_shim_client_callbacks *callbacks,
                                                   void *user, vane_shim_error *error);

/// Starts reading the next response message; the result arrives in on_read. One at a time.
int vane_shim_client_call_read(vane_shim_client_call *call, vane_shim_error *error);

/// Queues a request message (copied); see vane_shim_server_call_write for `must_wait`.
int vane_shim_client_call_write(vane_shim_client_call *call, const uint8_t *bytes, size_t length,
                                int *must_wait, vane_shim_error *error);

/// Half-closes the request stream after the queued messages.
int vane_shim_client_call_writes_done(vane_shim_client_call *call, vane_shim_error *error);

/// Cancels the call; on_done follows with CANCELLED (unless the status already arrived).
void vane_shim_client_call_cancel(vane_shim_client_call *call);

void vane_shim_client_call_free(vane_shim_client_call *call);

#ifdef __cplusplus
}
#endif

#endif  // VANE_SHIM_H
