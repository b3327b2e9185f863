// shim_server.cpp — the server half of the C shim: a grpc::Server whose every call is one
// reactor driven from Swift: a ServerUnaryReactor for a method registered as unary, a
// ServerBidiReactor<ByteBuffer, ByteBuffer> for any other, named or generic.

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include <grpc/support/time.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/server_callback.h>

#include "shim_internal.hpp"

using namespace vane_shim;

namespace {

class ServerCallReactor;
class ServerUnaryCallReactor;

/// Everything about one server call that outlives the reactor: the Swift handle points here, so
/// late calls from Swift (after OnDone deleted the reactor) find `done` and fail cleanly.
struct ServerCallState {
  std::mutex mu;
  vane_shim_server_callbacks callbacks{};
  void* user = nullptr;

  // Guarded by mu.
  ServerCallReactor* reactor = nullptr;  // null once the call is done
  bool read_pending = false;
  bool metadata_queued = false;  // send_initial_metadata was called (only once is allowed)
  bool message_queued = false;   // a message was written (initial metadata then went with it)
  bool finish_queued = false;    // finish was called
  bool terminal_started = false;  // Finish / WriteAndFinish issued to gRPC: reactor is off-limits
  bool write_broken = false;      // a write failed: the stream is gone
  bool done = false;
  // Single-response call: initial metadata and the message wait for the status, so that all of
  // it goes out as one batch (WriteAndFinish) rather than three.
  bool hold_until_finish = false;
  OutQueue out;

  // A unary method's call: grpc++ read the request before the call started, so reads are
  // answered from `unary_reads` (the message, then the end) on the thread that asks, once
  // Swift knows the call (`introduced`); everything written is held for the status, and Finish
  // sends it all. `reactor` stays null.
  bool is_unary = false;              // immutable once Swift has the handle
  ServerUnaryCallReactor* unary = nullptr;  // null once the call is done
  bool introduced = false;
  std::deque<std::pair<bool, grpc::ByteBuffer>> unary_reads;
  int delivering = 0;  // reads being answered outside the lock; OnDone waits for them
  std::condition_variable delivered;
};

/// Tells Swift the call was cancelled (either reactor's OnCancel).
void ReportCancel(ServerCallState& st) {
  void* user;
  {
    std::lock_guard<std::mutex> lock(st.mu);
    user = st.user;
  }
  st.callbacks.on_cancel(user);
}

/// Marks the call done and tells Swift (either reactor's OnDone, before it deletes itself). A
/// unary call's read being answered on a Swift thread ends first: no callback after on_done.
void ReportDone(ServerCallState& st) {
  void* user;
  {
    std::unique_lock<std::mutex> lock(st.mu);
    st.delivered.wait(lock, [&] { return st.delivering == 0; });
    st.done = true;
    st.reactor = nullptr;
    st.unary = nullptr;
    user = st.user;
  }
  st.callbacks.on_done(user);
}

/// What both kinds of call do when cancelled and when over.
template <class Reactor>
class ReportingReactor : public Reactor {
 public:
  explicit ReportingReactor(std::shared_ptr<ServerCallState> state) : state_(std::move(state)) {}

  void OnCancel() override {
    GuardedReaction([&] { ReportCancel(*state_); });
  }

  void OnDone() override {
    GuardedReaction([&] { ReportDone(*state_); });
    delete this;  // grpc++'s reactors have virtual destructors
  }

 protected:
  std::shared_ptr<ServerCallState> state_;
};

/// The terminal operation picked by the pump, issued after the lock is released.
struct Terminal {
  bool present = false;
  const grpc::ByteBuffer* message = nullptr;  // non-null: WriteAndFinish
  grpc::Status status;
};

class ServerCallReactor final
    : public ReportingReactor<grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>> {
 public:
  ServerCallReactor(grpc::CallbackServerContext* ctx, std::shared_ptr<ServerCallState> state)
      : ReportingReactor(std::move(state)), ctx_(ctx) {}

  /// Starts a read; caller holds state->mu and checked the state.
  void StartReadLocked() { StartRead(&read_buffer_); }

  /// Issues queued write-side operations in order while nothing is in flight. Caller holds the
  /// lock. Returns the terminal operation (if reached) for the caller to issue after unlocking.
  Terminal PumpLocked() {
    ServerCallState& st = *state_;
    OutQueue& q = st.out;
    if (st.hold_until_finish && !st.finish_queued) return Terminal{};
    while (!q.in_flight && !q.items.empty() && !st.terminal_started && !st.done) {
      OutItem& item = q.items.front();
      switch (item.kind) {
        case OutItem::Kind::kInitialMetadata: {
          for (const auto& kv : item.metadata) ctx_->AddInitialMetadata(kv.first, kv.second);
          bool alone = q.items.size() == 1;
          q.PopFront();
          // When a message or the status is already queued behind it, the metadata simply rides
          // along with that operation (grpc++ sends it with the first write or the Finish).
          // Otherwise send it now: it need not complete before the next write is started, so it
          // does not occupy the in-flight slot.
          if (alone) StartSendInitialMetadata();
          continue;
        }
        case OutItem::Kind::kMessage: {
          if (st.write_broken) {
            q.PopFront();
            continue;
          }
          if (q.items.size() == 2 && q.items[1].kind == OutItem::Kind::kFinish) {
            // Last message followed by the status: one batch instead of two.
            Terminal t = TakeFinishLocked(q.items[1]);
            t.message = &item.buffer;
            return t;
          }
          q.in_flight = true;
          StartWrite(&item.buffer);
          return Terminal{};
        }
        case OutItem::Kind::kFinish:
          return TakeFinishLocked(item);
        case OutItem::Kind::kWritesDone:
          q.PopFront();  // client-only; never queued on a server call
          continue;
      }
    }
    return Terminal{};
  }

  /// Issues the terminal operation. After this the reactor may be deleted at any moment by
  /// OnDone on another thread, so nothing may touch `this` afterwards.
  static void IssueTerminal(ServerCallReactor* reactor, Terminal t) {
    if (!t.present) return;
    if (t.message != nullptr) {
      reactor->StartWriteAndFinish(t.message, grpc::WriteOptions(), std::move(t.status));
    } else {
      reactor->Finish(std::move(t.status));
    }
  }

  void OnReadDone(bool ok) override {
    GuardedReaction([&] {
      grpc::ByteBuffer message;
      void* user;
      {
        std::lock_guard<std::mutex> lock(state_->mu);
        state_->read_pending = false;
        // Swap out so that Swift may start the next read from inside on_read.
        message.Swap(&read_buffer_);
        user = state_->user;
      }
      if (ok) {
        FlatMessage flat(&message);
        state_->callbacks.on_read(user, 1, flat.data(), flat.size());
      } else {
        state_->callbacks.on_read(user, 0, nullptr, 0);
      }
    });
  }

  void OnSendInitialMetadataDone(bool /*ok*/) override {
    // Nothing to do: a failure shows up on the next write or as a cancellation.
  }

  void OnWriteDone(bool ok) override {
    GuardedReaction([&] {
      bool wake = false;
      Terminal t;
      void* user;
      {
        std::lock_guard<std::mutex> lock(state_->mu);
        OutQueue& q = state_->out;
        q.in_flight = false;
        if (q.PopFront()) wake = true;
        if (!ok) {
          // The stream is gone; queued messages can never be delivered. Keep the status: the
          // call must still be finished for gRPC to release it.
          state_->write_broken = true;
          if (q.DropMessages(/*keep_front=*/false)) wake = true;
        }
        t = PumpLocked();
        user = state_->user;
      }
      // This reaction holds a reference on the call, so OnDone cannot run before it returns:
      // on_writable is safe here even if the Finish issued below completes at once.
      if (wake) state_->callbacks.on_writable(user);
      IssueTerminal(this, std::move(t));
    });
  }

 private:
  Terminal TakeFinishLocked(OutItem& finish) {
    for (const auto& kv : finish.metadata) ctx_->AddTrailingMetadata(kv.first, kv.second);
    state_->terminal_started = true;
    Terminal t;
    t.present = true;
    t.status = finish.status;
    return t;
  }

  grpc::CallbackServerContext* ctx_;
  grpc::ByteBuffer read_buffer_;
};

/// A unary method's call. grpc++ hands it the request already read and a response buffer that
/// Finish sends with the status; its only reactions are the cancellation and the end.
class ServerUnaryCallReactor final : public ReportingReactor<grpc::ServerUnaryReactor> {
 public:
  ServerUnaryCallReactor(grpc::CallbackServerContext* ctx, grpc::ByteBuffer* response,
                         std::shared_ptr<ServerCallState> state)
      : ReportingReactor(std::move(state)), ctx_(ctx), response_(response) {}

  /// Moves what Swift queued (initial metadata, the message, the trailers) into the context
  /// and the response, and returns the status to finish with. Caller holds the lock; the
  /// status is issued after it is released (see IssueTerminal).
  grpc::Status TakeFinishLocked() {
    ServerCallState& st = *state_;
    st.terminal_started = true;
    int messages = 0;
    grpc::Status status;
    for (OutItem& item : st.out.items) {
      switch (item.kind) {
        case OutItem::Kind::kInitialMetadata:
          for (const auto& kv : item.metadata) ctx_->AddInitialMetadata(kv.first, kv.second);
          break;
        case OutItem::Kind::kMessage:
          if (++messages == 1) response_->Swap(&item.buffer);
          break;
        case OutItem::Kind::kFinish:
          for (const auto& kv : item.metadata) ctx_->AddTrailingMetadata(kv.first, kv.second);
          status = item.status;
          break;
        case OutItem::Kind::kWritesDone:
          break;
      }
    }
    st.out.items.clear();
    // grpc++ sends the response with an OK status, and has nothing to send without one.
    if (status.ok() && messages == 0) {
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          "The server finished a unary call without its response message.");
    }
    return status;
  }

 private:
  grpc::CallbackServerContext* ctx_;
  grpc::ByteBuffer* response_;
};

/// Answers a unary call's pending read from its request, once Swift knows the call. Call
/// unlocked: Swift may start its next read from inside on_read, which is answered there.
void UnaryDeliverRead(std::shared_ptr<ServerCallState> st) {
  std::pair<bool, grpc::ByteBuffer> result;
  void* user;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    if (!st->introduced || !st->read_pending || st->unary_reads.empty() || st->done) return;
    st->read_pending = false;
    result = std::move(st->unary_reads.front());
    st->unary_reads.pop_front();
    st->delivering += 1;
    user = st->user;
  }
  // Nothing may throw between the count going up and coming down, or OnDone would wait for
  // ever: a message that cannot be flattened (out of memory) reads as the end of the request.
  std::optional<FlatMessage> flat;
  if (result.first) {
    try {
      flat.emplace(&result.second);
    } catch (...) {
    }
  }
  if (flat) {
    st->callbacks.on_read(user, 1, flat->data(), flat->size());
  } else {
    st->callbacks.on_read(user, 0, nullptr, 0);
  }
  {
    std::lock_guard<std::mutex> lock(st->mu);
    st->delivering -= 1;
  }
  st->delivered.notify_all();
}

}  // namespace

/// The handle Swift owns; it keeps the call state alive until vane_shim_server_call_free.
struct vane_shim_server_call {
  std::shared_ptr<ServerCallState> state;
};

namespace {

/// Introduces a new call to Swift (on_call) and stores what it returns. Runs on a gRPC thread
/// before the call's reactor is bound to its stream: operations Swift starts from inside
/// on_call are held in the reactor's backlog (a unary call's reads wait for `introduced`), so no
/// reaction can fire before `user` is stored.
void IntroduceCall(const vane_shim_server_callbacks& callbacks, grpc::CallbackServerContext* ctx,
                   const std::string& method, const std::shared_ptr<ServerCallState>& state) {
  auto* handle = new vane_shim_server_call{state};

  std::string peer = ctx->peer();
  gpr_timespec deadline = ctx->raw_deadline();
  int64_t timeout_ns = -1;
  if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) != 0) {
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
    gpr_timespec left = gpr_time_sub(gpr_convert_clock_type(deadline, GPR_CLOCK_MONOTONIC), now);
    timeout_ns = static_cast<int64_t>(left.tv_sec) * 1000000000 + left.tv_nsec;
    if (timeout_ns < 0) timeout_ns = 0;
  }
  std::vector<vane_shim_metadata_entry> metadata = MetadataView(ctx->client_metadata());

  vane_shim_call_info info;
  info.method = method.data();
  info.method_length = method.size();
  info.peer = peer.c_str();
  info.timeout_nanoseconds = timeout_ns;
  info.metadata = metadata.empty() ? nullptr : metadata.data();
  info.metadata_count = metadata.size();

  void* user = callbacks.on_call(callbacks.context, handle, &info);
  std::lock_guard<std::mutex> lock(state->mu);
  state->user = user;
  state->introduced = true;
}

/// Creates the reactor for a new streamed call and introduces the call to Swift.
grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* CreateCall(
    const vane_shim_server_callbacks& callbacks, grpc::CallbackServerContext* ctx,
    const std::string& method) {
  try {
    auto state = std::make_shared<ServerCallState>();
    state->callbacks = callbacks;
    auto* reactor = new ServerCallReactor(ctx, state);
    state->reactor = reactor;
    IntroduceCall(callbacks, ctx, method, state);
    return reactor;
  } catch (...) {
    // grpc++ answers UNIMPLEMENTED when no reactor comes back; nothing reached Swift unless
    // on_call itself ran, and it cannot throw (it is C).
    return nullptr;
  }
}

/// Creates the reactor for a unary method's call, its request already read, and introduces the
/// call to Swift; a read Swift started inside on_call is answered once on_call has returned.
grpc::ServerUnaryReactor* CreateUnaryCall(const vane_shim_server_callbacks& callbacks,
                                          grpc::CallbackServerContext* ctx,
                                          const std::string& method,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response) {
  try {
    auto state = std::make_shared<ServerCallState>();
    state->callbacks = callbacks;
    state->is_unary = true;
    state->hold_until_finish = true;
    // The copy shares the request's slices. A client that half-closed without its message
    // leaves no buffer (a 0-byte message is a valid empty one): the request is its end alone.
    if (request != nullptr && request->Valid()) state->unary_reads.emplace_back(true, *request);
    state->unary_reads.emplace_back(false, grpc::ByteBuffer());
    auto* reactor = new ServerUnaryCallReactor(ctx, response, state);
    state->unary = reactor;
    IntroduceCall(callbacks, ctx, method, state);
    UnaryDeliverRead(state);
    return reactor;
  } catch (...) {
    return nullptr;  // as CreateCall
  }
}

/// One grpc::Service per service name, built at run time from "/pkg.Service/Method" strings, so
/// that grpc::Server records the service name and reflection lists it.
class NamedService final : public grpc::Service {
 public:
  /// `methods`: each name with whether it is unary.
  NamedService(const vane_shim_server_callbacks* callbacks,
               const std::vector<std::pair<const std::string*, bool>>& methods) {
    int index = 0;
    for (const auto& [name, unary] : methods) {
      // RpcServiceMethod keeps the const char*; the strings live in the server object.
      if (unary) {
        AddMethod(new grpc::internal::RpcServiceMethod(
            name->c_str(), grpc::internal::RpcMethod::NORMAL_RPC, nullptr));
        MarkMethodRawCallback(
            index, new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
                       [callbacks, name = name](grpc::CallbackServerContext* ctx,
                                                const grpc::ByteBuffer* request,
                                                grpc::ByteBuffer* response) {
                         return CreateUnaryCall(*callbacks, ctx, *name, request, response);
                       }));
      } else {
        AddMethod(new grpc::internal::RpcServiceMethod(
            name->c_str(), grpc::internal::RpcMethod::BIDI_STREAMING, nullptr));
        MarkMethodRawCallback(
            index, new grpc::internal::CallbackBidiHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
                       [callbacks, name = name](grpc::CallbackServerContext* ctx) {
                         return CreateCall(*callbacks, ctx, *name);
                       }));
      }
      ++index;
    }
  }
};

/// Any method not registered by name lands here.
class FallbackService final : public grpc::CallbackGenericService {
 public:
  explicit FallbackService(const vane_shim_server_callbacks* callbacks) : callbacks_(callbacks) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    grpc::ServerGenericBidiReactor* reactor = CreateCall(*callbacks_, ctx, ctx->method());
    if (reactor != nullptr) return reactor;
    // Unlike method handlers, the generic path does not replace a null reactor.
    class Failed final : public grpc::ServerGenericBidiReactor {
     public:
      Failed() { Finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot start the call")); }
      void OnDone() override { delete this; }
    };
    return new Failed;
  }

 private:
  const vane_shim_server_callbacks* callbacks_;
};

/// Turns reflection on or off for one builder. libgrpc++_reflection registers its plugin globally
/// at load time (and InitProtoReflectionServerBuilderPlugin does the same), which would give every
/// server reflection; this option adds or removes it per server instead.
class ReflectionOption final : public grpc::ServerBuilderOption {
 public:
  explicit ReflectionOption(bool enable) : enable_(enable) {}
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    bool present = false;
    for (auto it = plugins->begin(); it != plugins->end();) {
      if ((*it)->name() == kName) {
        if (!enable_ || present) {
          it = plugins->erase(it);
          continue;
        }
        present = true;
      }
      ++it;
    }
    if (enable_ && !present) {
      plugins->push_back(std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>());
    }
  }

 private:
  static constexpr const char* kName = "proto_server_reflection";
  bool enable_;
};

bool ParseMethod(const std::string& m, std::string* service) {
  // "/pkg.Service/Method": a leading slash, a non-empty service, a slash, a non-empty method.
  if (m.size() < 4 || m[0] != '/') return false;
  size_t slash = m.find('/', 1);
  if (slash == std::string::npos || slash == 1 || slash + 1 >= m.size()) return false;
  if (m.find('/', slash + 1) != std::string::npos) return false;
  *service = m.substr(1, slash - 1);
  return true;
}

}  // namespace

struct vane_shim_server {
  vane_shim_server_callbacks callbacks{};
  bool health = false;
  int port = 0;
  // Declared before `server` so they are destroyed after it (the server uses them until then).
  std::deque<std::string> method_names;  // deque: stable addresses for RpcMethod's const char*
  std::vector<std::unique_ptr<NamedService>> services;
  std::unique_ptr<FallbackService> fallback;
  std::unique_ptr<grpc::Server> server;
  std::mutex shutdown_mu;
  bool shut_down = false;
};

namespace {

int ShutdownServer(vane_shim_server* s, int64_t grace_ms) {
  std::lock_guard<std::mutex> lock(s->shutdown_mu);  // a second caller waits, then returns 0
  if (s->shut_down) return 0;
  if (s->health && s->server->GetHealthCheckService() != nullptr) {
    // Every service reports NOT_SERVING (and stays so) while the server drains.
    s->server->GetHealthCheckService()->Shutdown();
  }
  if (grace_ms < 0) grace_ms = 0;
  s->server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  s->server->Wait();
  s->shut_down = true;
  return 0;
}

// EnableDefaultHealthCheckService is a process-wide flag read inside BuildAndStart; building one
// server at a time keeps each server's choice its own.
std::mutex g_build_mu;

}  // namespace

extern "C" vane_shim_server* vane_shim_server_create(const vane_shim_server_options* options,
                                                     const char* const* methods,
                                                     const int* unary,
                                                     size_t method_count,
                                                     const vane_shim_server_callbacks* callbacks,
                                                     vane_shim_error* error) {
  try {
    vane_shim::AnchorCallbackQueue();
  } catch (...) {
  }
  vane_shim_server* result = nullptr;
  Guarded(error, [&]() -> int {
    if (options == nullptr || options->address == nullptr) {
      SetError(error, kInvalidArgument, "options and options->address are required");
      return -1;
    }
    if (callbacks == nullptr || callbacks->on_call == nullptr || callbacks->on_read == nullptr ||
        callbacks->on_writable == nullptr || callbacks->on_cancel == nullptr ||
        callbacks->on_done == nullptr) {
      SetError(error, kInvalidArgument, "every server callback is required");
      return -1;
    }
    if (method_count != 0 && methods == nullptr) {
      SetError(error, kInvalidArgument, "methods is NULL but method_count is not 0");
      return -1;
    }

    auto s = std::make_unique<vane_shim_server>();
    s->callbacks = *callbacks;
    s->health = options->enable_health != 0;

    // Group the methods by service, keeping first-seen order and dropping duplicates.
    std::vector<std::string> service_order;
    std::map<std::string, std::vector<std::pair<const std::string*, bool>>> by_service;
    std::set<std::string> seen;
    for (size_t i = 0; i < method_count; ++i) {
      if (methods[i] == nullptr) {
        SetError(error, kInvalidArgument, "methods contains NULL");
        return -1;
      }
      std::string name(methods[i]);
      std::string service;
      if (!ParseMethod(name, &service)) {
        SetError(error, kInvalidArgument,
                 "method \"" + name + "\" is not of the form /package.Service/Method");
        return -1;
      }
      if (!seen.insert(name).second) continue;
      s->method_names.push_back(name);
      if (by_service.find(service) == by_service.end()) service_order.push_back(service);
      by_service[service].emplace_back(&s->method_names.back(), unary != nullptr && unary[i] != 0);
    }
    for (const auto& service : service_order) {
      s->services.push_back(std::make_unique<NamedService>(&s->callbacks, by_service[service]));
    }
    s->fallback = std::make_unique<FallbackService>(&s->callbacks);

    grpc::ServerBuilder builder;
    std::shared_ptr<grpc::ServerCredentials> creds;
    if (options->tls != nullptr) {
      const vane_shim_server_tls* tls = options->tls;
      if (tls->certificate_chain == nullptr || tls->private_key == nullptr) {
        SetError(error, kInvalidArgument, "TLS needs a certificate chain and a private key");
        return -1;
      }
      grpc::SslServerCredentialsOptions ssl(
          tls->client_ca_roots != nullptr
              ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
              : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
      if (tls->client_ca_roots != nullptr) ssl.pem_root_certs = tls->client_ca_roots;
      ssl.pem_key_cert_pairs.push_back({tls->private_key, tls->certificate_chain});
      creds = grpc::SslServerCredentials(ssl);
    } else {
      creds = grpc::InsecureServerCredentials();
    }
    int selected_port = 0;
    builder.AddListeningPort(options->address, creds, &selected_port);

    // gRPC sets SO_REUSEPORT by default, so a second server on a busy port would "succeed" and
    // silently share its traffic. A port in use must be an error.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    if (options->max_receive_message_bytes != 0)
      builder.SetMaxReceiveMessageSize(options->max_receive_message_bytes);
    if (options->max_send_message_bytes != 0)
      builder.SetMaxSendMessageSize(options->max_send_message_bytes);
    if (options->keepalive_time_ms > 0)
      builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, options->keepalive_time_ms);
    if (options->keepalive_timeout_ms > 0)
      builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, options->keepalive_timeout_ms);
    if (options->keepalive_min_ping_interval_ms > 0)
      builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                                 options->keepalive_min_ping_interval_ms);
    if (options->keepalive_permit_without_calls != 0)
      builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);

    builder.SetOption(std::make_unique<ReflectionOption>(options->enable_reflection != 0));
    for (auto& service : s->services) builder.RegisterService(service.get());
    builder.RegisterCallbackGenericService(s->fallback.get());

    {
      std::lock_guard<std::mutex> lock(g_build_mu);
      grpc::EnableDefaultHealthCheckService(s->health);
      s->server = builder.BuildAndStart();
    }
    if (s->server == nullptr) {
      SetError(error, kUnavailable,
               std::string("cannot start a server on ") + options->address +
                   " (address in use or invalid, bad TLS material, or a method registered twice)");
      return -1;
    }
    if (selected_port == 0) {
      // BuildAndStart succeeds without a listener when binding failed; treat it as the failure
      // it is, after stopping the half-made server.
      s->server->Shutdown(std::chrono::system_clock::now());
      s->server->Wait();
      s->server.reset();
      SetError(error, kUnavailable, std::string("cannot bind ") + options->address);
      return -1;
    }
    s->port = selected_port;
    result = s.release();
    return 0;
  });
  return result;
}

extern "C" int vane_shim_server_port(const vane_shim_server* server) {
  return server == nullptr ? 0 : server->port;
}

extern "C" int vane_shim_server_set_serving(vane_shim_server* server, const char* service,
                                            int serving, vane_shim_error* error) {
  return Guarded(error, [&]() -> int {
    if (server == nullptr || server->server == nullptr) {
      SetError(error, kInvalidArgument, "server is NULL");
      return -1;
    }
    grpc::HealthCheckServiceInterface* health = server->server->GetHealthCheckService();
    if (!server->health || health == nullptr) {
      SetError(error, kFailedPrecondition, "the server was created without enable_health");
      return -1;
    }
    health->SetServingStatus(service == nullptr ? "" : service, serving != 0);
    return 0;
  });
}

extern "C" int vane_shim_server_shutdown(vane_shim_server* server, int64_t grace_milliseconds,
                                         vane_shim_error* error) {
  return Guarded(error, [&]() -> int {
    if (server == nullptr || server->server == nullptr) {
      SetError(error, kInvalidArgument, "server is NULL");
      return -1;
    }
    return ShutdownServer(server, grace_milliseconds);
  });
}

extern "C" void vane_shim_server_free(vane_shim_server* server) {
  if (server == nullptr) return;
  try {
    if (server->server != nullptr) ShutdownServer(server, 0);
    server->server.reset();  // before the services it routes to
  } catch (...) {
  }
  delete server;
}

// MARK: - Calls

namespace {

ServerCallState* StateOf(vane_shim_server_call* call) {
  return call == nullptr ? nullptr : call->state.get();
}

bool CheckOpen(ServerCallState* st, vane_shim_error* error) {
  if (st->done) {
    SetError(error, kFailedPrecondition, "the call is over");
    return false;
  }
  if (st->finish_queued) {
    SetError(error, kFailedPrecondition, "the call was already finished");
    return false;
  }
  return true;
}

/// The common prologue of an operation on an open call: a non-null handle, the call's lock
/// held, and the call neither finished nor done. `body` runs under the lock.
template <class Body>
int WithOpenCall(vane_shim_server_call* call, vane_shim_error* error, Body&& body) {
  return Guarded(error, [&]() -> int {
    ServerCallState* st = StateOf(call);
    if (st == nullptr) {
      SetError(error, kInvalidArgument, "call is NULL");
      return -1;
    }
    std::lock_guard<std::mutex> lock(st->mu);
    if (!CheckOpen(st, error)) return -1;
    return body(st);
  });
}

}  // namespace

extern "C" int vane_shim_server_call_read(vane_shim_server_call* call, vane_shim_error* error) {
  int started = WithOpenCall(call, error, [&](ServerCallState* st) -> int {
    if (st->read_pending) {
      SetError(error, kFailedPrecondition, "a read is already pending");
      return -1;
    }
    st->read_pending = true;
    if (!st->is_unary) st->reactor->StartReadLocked();
    return 0;
  });
  if (started != 0 || !call->state->is_unary) return started;
  // A unary call's request is already here: the read is answered now, on this thread.
  return Guarded(error, [&]() -> int {
    UnaryDeliverRead(call->state);
    return 0;
  });
}

extern "C" int vane_shim_server_call_send_initial_metadata(vane_shim_server_call* call,
                                                           const vane_shim_metadata_entry* metadata,
                                                           size_t count, vane_shim_error* error) {
  return Guarded(error, [&]() -> int {
    ServerCallState* st = StateOf(call);
    if (st == nullptr) {
      SetError(error, kInvalidArgument, "call is NULL");
      return -1;
    }
    OutItem item;
    item.kind = OutItem::Kind::kInitialMetadata;
    if (!CopyMetadata(metadata, count, &item.metadata, error)) return -1;
    std::lock_guard<std::mutex> lock(st->mu);
    if (!CheckOpen(st, error)) return -1;
    if (st->metadata_queued || st->message_queued) {
      SetError(error, kFailedPrecondition,
               st->metadata_queued ? "initial metadata was already sent"
                                   : "initial metadata must come before the first message");
      return -1;
    }
    st->metadata_queued = true;
    st->out.items.push_back(std::move(item));
    // No finish is queued yet, so the pump cannot reach a terminal operation here.
    if (!st->is_unary) st->reactor->PumpLocked();
    return 0;
  });
}

extern "C" int vane_shim_server_call_write(vane_shim_server_call* call, const uint8_t* bytes,
                                           size_t length, int* must_wait, vane_shim_error* error) {
  return Guarded(error, [&]() -> int {
    if (must_wait != nullptr) *must_wait = 0;
    ServerCallState* st = StateOf(call);
    if (st == nullptr) {
      SetError(error, kInvalidArgument, "call is NULL");
      return -1;
    }
    if (bytes == nullptr && length != 0) {
      SetError(error, kInvalidArgument, "bytes is NULL");
      return -1;
    }
    grpc::ByteBuffer buffer = CopyToByteBuffer(bytes, length);  // copy outside the lock
    std::lock_guard<std::mutex> lock(st->mu);
    if (!CheckOpen(st, error)) return -1;
    if (st->write_broken) {
      SetError(error, kCancelled, "the call was cancelled or its stream broke");
      return -1;
    }
    if (st->is_unary && st->message_queued) {
      SetError(error, kFailedPrecondition, "a unary call takes one response message");
      return -1;
    }
    st->message_queued = true;
    bool wait = st->out.PushMessage(std::move(buffer), length);
    if (st->hold_until_finish) {
      // Held messages only move with the status, so a writer told to wait would wait forever.
      st->out.writer_waiting = false;
      wait = false;
    }
    if (must_wait != nullptr && wait) *must_wait = 1;
    // No finish is queued yet, so the pump cannot reach a terminal operation here.
    if (!st->is_unary) st->reactor->PumpLocked();
    return 0;
  });
}

extern "C" int vane_shim_server_call_hold_until_finish(vane_shim_server_call* call,
                                                      vane_shim_error* error) {
  return WithOpenCall(call, error, [&](ServerCallState* st) -> int {
    if (st->metadata_queued || st->message_queued) {
      SetError(error, kFailedPrecondition, "hold_until_finish must come before any response part");
      return -1;
    }
    st->hold_until_finish = true;
    return 0;
  });
}

extern "C" int vane_shim_server_call_finish(vane_shim_server_call* call, int code,
                                            const char* message, size_t message_length,
                                            const vane_shim_metadata_entry* trailers,
                                            size_t trailer_count, vane_shim_error* error) {
  return Guarded(error, [&]() -> int {
    ServerCallState* st = StateOf(call);
    if (st == nullptr) {
      SetError(error, kInvalidArgument, "call is NULL");
      return -1;
    }
    OutItem item;
    item.kind = OutItem::Kind::kFinish;
    if (!CopyMetadata(trailers, trailer_count, &item.metadata, error)) return -1;
    std::string text = (message == nullptr) ? std::string() : std::string(message, message_length);
    item.status = grpc::Status(ToStatusCode(code), text);
    Terminal t;
    ServerCallReactor* reactor = nullptr;
    ServerUnaryCallReactor* unary = nullptr;
    grpc::Status unary_status;
    std::shared_ptr<ServerCallState> keep = call->state;  // outlive a racing OnDone
    {
      std::lock_guard<std::mutex> lock(st->mu);
      if (!CheckOpen(st, error)) return -1;
      st->finish_queued = true;
      st->out.items.push_back(std::move(item));
      if (st->is_unary) {
        unary = st->unary;
        unary_status = unary->TakeFinishLocked();
      } else {
        reactor = st->reactor;
        t = reactor->PumpLocked();
      }
    }
    // Issued unlocked: OnDone may follow immediately and takes the lock (see shim_internal.hpp).
    if (unary != nullptr) {
      unary->Finish(std::move(unary_status));
    } else {
      ServerCallReactor::IssueTerminal(reactor, std::move(t));
    }
    return 0;
  });
}

extern "C" void vane_shim_server_call_free(vane_shim_server_call* call) {
  // Only releases the handle's reference; the reactor keeps its own until OnDone.
  delete call;
}
