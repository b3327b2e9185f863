// shim_client.cpp — the client half of the C shim: channels, and calls as one
// ClientBidiReactor<ByteBuffer, ByteBuffer> each, driven from Swift; a unary call goes out as
// grpc++'s callback UnaryCall instead (one batch of six operations where the reactor takes four).

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>

#include <absl/synchronization/mutex.h>
#include <grpc/support/time.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/client_callback.h>

#include "shim_internal.hpp"

using namespace vane_shim;

struct vane_shim_channel {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
};

namespace {

class ClientCallReactor;

/// Everything about one client call that outlives the reactor; the Swift handle points here.
struct ClientCallState {
  std::mutex mu;
  vane_shim_client_callbacks callbacks{};
  void* user = nullptr;

  // Guarded by mu.
  ClientCallReactor* reactor = nullptr;  // null once the call is done
  // The reactor holds one "hold" so that OnDone waits until Swift has read the response stream
  // to its end (or cancelled, or freed the call). Once it is removed, OnDone may run at any
  // moment, so no operation may be started from outside a reaction any more.
  bool hold_removed = false;
  bool read_pending = false;
  bool read_ended = false;           // a read returned ok == false
  bool writes_done_queued = false;
  // Single-request call: the message waits for the half-close, and the initial metadata (corked)
  // goes with them, so the whole request is one batch (WriteLast).
  bool hold_until_writes_done = false;
  bool write_broken = false;
  bool initial_metadata_delivered = false;
  bool done = false;
  // A read that completed before on_initial_metadata was delivered waits here, so Swift always
  // sees the initial metadata first (grpc++ may run the two reactions in either order).
  bool stashed_read = false;
  bool stashed_ok = false;
  grpc::ByteBuffer stashed_message;
  OutQueue out;

  // A unary call (options->unary) has no reactor: it is sent with grpc++'s callback UnaryCall
  // once Swift half-closes, and its response is handed out from here, one result per read, as a
  // reactor would. on_done follows the last result (or a cancellation), as the reactor's hold
  // makes OnDone wait for the end of the response stream.
  struct Unary {
    std::shared_ptr<grpc::Channel> channel;
    std::string method;
    grpc::ClientContext context;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
    bool has_request = false;
    bool started = false;
    bool completed = false;   // the status is known (or made up for a call that never went out)
    bool cancelled = false;
    bool done_delivered = false;
    bool read_pending = false;
    int delivering = 0;       // callbacks into Swift in progress (on_done waits for them)
    std::deque<std::pair<bool, grpc::ByteBuffer>> results;  // (ok, message), in order
    grpc::Status status;
  };
  std::unique_ptr<Unary> unary;  // set once at start for a unary call, never reset
};

class ClientCallReactor final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ClientCallReactor(std::shared_ptr<grpc::Channel> channel, std::string method,
                    std::shared_ptr<ClientCallState> state)
      : channel_(std::move(channel)), method_(std::move(method)), state_(std::move(state)) {}

  grpc::ClientContext* context() { return &context_; }
  const std::string& method() const { return method_; }

  void StartReadLocked() { StartRead(&read_buffer_); }

  /// Issues queued write-side operations in order, one at a time. Caller holds the lock and has
  /// established that starting operations is allowed (inside a reaction, or hold still held).
  void PumpLocked() {
    ClientCallState& st = *state_;
    OutQueue& q = st.out;
    if (st.hold_until_writes_done && !st.writes_done_queued) return;
    while (!q.in_flight && !q.items.empty()) {
      OutItem& item = q.items.front();
      if (item.kind == OutItem::Kind::kMessage) {
        if (st.write_broken) {
          q.PopFront();
          continue;
        }
        q.in_flight = true;
        if (q.items.size() == 2 && q.items[1].kind == OutItem::Kind::kWritesDone) {
          // Last message and half-close in one batch; OnWriteDone then retires both.
          last_write_closes_ = true;
          StartWriteLast(&item.buffer, grpc::WriteOptions());
        } else {
          StartWrite(&item.buffer);
        }
        return;
      }
      if (item.kind == OutItem::Kind::kWritesDone) {
        if (st.write_broken) {
          q.PopFront();
          continue;
        }
        q.in_flight = true;
        StartWritesDone();
        return;
      }
      q.PopFront();  // server-only kinds are never queued here
    }
  }

  void OnReadInitialMetadataDone(bool ok) override {
    GuardedReaction([&] {
      void* user = state_->user;  // set before StartCall, never changed
      if (ok) {
        std::vector<vane_shim_metadata_entry> md =
            MetadataView(context_.GetServerInitialMetadata());
        state_->callbacks.on_initial_metadata(user, 1, md.empty() ? nullptr : md.data(),
                                              md.size());
      } else {
        state_->callbacks.on_initial_metadata(user, 0, nullptr, 0);
      }
      bool deliver = false;
      bool read_ok = false;
      bool remove_hold = false;
      grpc::ByteBuffer message;
      {
        std::lock_guard<std::mutex> lock(state_->mu);
        state_->initial_metadata_delivered = true;
        if (state_->stashed_read) {
          deliver = true;
          read_ok = state_->stashed_ok;
          message.Swap(&state_->stashed_message);
          state_->stashed_read = false;
          remove_hold = EndOfStreamLocked(read_ok);
        }
      }
      if (deliver) DeliverRead(user, read_ok, &message);
      if (remove_hold) RemoveHold();
    });
  }

  void OnReadDone(bool ok) override {
    GuardedReaction([&] {
      grpc::ByteBuffer message;
      bool remove_hold = false;
      void* user = state_->user;
      {
        std::lock_guard<std::mutex> lock(state_->mu);
        state_->read_pending = false;
        message.Swap(&read_buffer_);  // Swift may start the next read from inside on_read
        if (!state_->initial_metadata_delivered) {
          state_->stashed_read = true;
          state_->stashed_ok = ok;
          state_->stashed_message.Swap(&message);
          return;
        }
        remove_hold = EndOfStreamLocked(ok);
      }
      DeliverRead(user, ok, &message);
      // Inside a reaction, so OnDone cannot run before this returns even if ours was the last
      // hold.
      if (remove_hold) RemoveHold();
    });
  }

  void OnWriteDone(bool ok) override { WriteSideDone(ok); }
  void OnWritesDoneDone(bool ok) override { WriteSideDone(ok); }

  void OnDone(const grpc::Status& status) override {
    GuardedReaction([&] {
      {
        std::lock_guard<std::mutex> lock(state_->mu);
        state_->done = true;
        state_->reactor = nullptr;
      }
      std::vector<vane_shim_metadata_entry> trailers =
          MetadataView(context_.GetServerTrailingMetadata());
      const std::string& message = status.error_message();
      state_->callbacks.on_done(state_->user, static_cast<int>(status.error_code()),
                                message.data(), message.size(),
                                trailers.empty() ? nullptr : trailers.data(), trailers.size());
    });
    delete this;  // owns the ClientContext; grpc++ is done with both
  }

 private:
  /// Caller holds the lock. Marks the end of the response stream and says whether this reaction
  /// must release the reactor's hold.
  bool EndOfStreamLocked(bool ok) {
    if (ok) return false;
    state_->read_ended = true;
    if (state_->hold_removed) return false;
    state_->hold_removed = true;
    return true;
  }

  void DeliverRead(void* user, bool ok, grpc::ByteBuffer* message) {
    if (ok) {
      FlatMessage flat(message);
      state_->callbacks.on_read(user, 1, flat.data(), flat.size());
    } else {
      state_->callbacks.on_read(user, 0, nullptr, 0);
    }
  }

  void WriteSideDone(bool ok) {
    GuardedReaction([&] {
      bool wake = false;
      {
        std::lock_guard<std::mutex> lock(state_->mu);
        OutQueue& q = state_->out;
        q.in_flight = false;
        if (q.PopFront()) wake = true;
        if (last_write_closes_) {
          last_write_closes_ = false;
          if (q.PopFront()) wake = true;  // the half-close that went with the last message
        }
        if (!ok) {
          // The call is over on the wire (its status will arrive in OnDone); nothing queued can
          // be sent any more.
          state_->write_broken = true;
          if (q.DropMessages(false)) wake = true;
          q.items.clear();
        }
        PumpLocked();  // allowed: we are inside a reaction
      }
      if (wake) state_->callbacks.on_writable(state_->user);
    });
  }

  std::shared_ptr<grpc::Channel> channel_;  // keeps the channel alive while the call runs
  std::string method_;                      // outlives the call, whatever grpc++ copies
  std::shared_ptr<ClientCallState> state_;
  grpc::ClientContext context_;
  grpc::ByteBuffer read_buffer_;
  bool last_write_closes_ = false;  // guarded by state_->mu
};

}  // namespace

namespace {

/// Delivers on_done for a unary call once its status is known and its results have all been
/// read (or it was cancelled), and no other callback into Swift is running. Call unlocked.
void UnaryMaybeFinish(const std::shared_ptr<ClientCallState>& st) {
  ClientCallState::Unary& u = *st->unary;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    if (!u.completed || u.done_delivered || u.delivering > 0) return;
    if (!u.results.empty() && !u.cancelled) return;
    u.done_delivered = true;
    st->done = true;
  }
  std::vector<vane_shim_metadata_entry> trailers =
      MetadataView(u.context.GetServerTrailingMetadata());
  const std::string& message = u.status.error_message();
  st->callbacks.on_done(st->user, static_cast<int>(u.status.error_code()), message.data(),
                        message.size(), trailers.empty() ? nullptr : trailers.data(),
                        trailers.size());
}

/// Hands the next result to a pending read, if both are there. Call unlocked.
void UnaryDeliverRead(const std::shared_ptr<ClientCallState>& st) {
  ClientCallState::Unary& u = *st->unary;
  std::pair<bool, grpc::ByteBuffer> result;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    if (!u.completed || !u.read_pending || u.results.empty()) return;
    u.read_pending = false;
    result = std::move(u.results.front());
    u.results.pop_front();
    u.delivering += 1;
  }
  // Swift may start its next read from inside on_read: that read is answered there.
  if (result.first) {
    FlatMessage flat(&result.second);
    st->callbacks.on_read(st->user, 1, flat.data(), flat.size());
  } else {
    st->callbacks.on_read(st->user, 0, nullptr, 0);
  }
  {
    std::lock_guard<std::mutex> lock(st->mu);
    u.delivering -= 1;
  }
}

/// The status of a unary call is known: its initial metadata goes to Swift, then the results as
/// they are read, then on_done. Call unlocked.
void UnaryCompleted(const std::shared_ptr<ClientCallState>& st, const grpc::Status& status,
                    bool sent) {
  ClientCallState::Unary& u = *st->unary;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    if (u.completed) return;
    u.completed = true;
    u.status = status;
    if (status.ok()) u.results.emplace_back(true, std::move(u.response));
    u.results.emplace_back(false, grpc::ByteBuffer());
    u.delivering += 1;
  }
  // A failed call answered with trailers only has no initial metadata. (grpc++ asserts if the
  // initial metadata of a call that never went out is asked for.)
  std::vector<vane_shim_metadata_entry> md;
  bool initial = false;
  if (sent) {
    md = MetadataView(u.context.GetServerInitialMetadata());
    initial = status.ok() || !md.empty();
  }
  if (initial) {
    st->callbacks.on_initial_metadata(st->user, 1, md.empty() ? nullptr : md.data(), md.size());
  } else {
    st->callbacks.on_initial_metadata(st->user, 0, nullptr, 0);
  }
  {
    std::lock_guard<std::mutex> lock(st->mu);
    u.delivering -= 1;
  }
  UnaryDeliverRead(st);
  UnaryMaybeFinish(st);
}

}  // namespace

/// The handle Swift owns; it keeps the call state alive until vane_shim_client_call_free.
struct vane_shim_client_call {
  std::shared_ptr<ClientCallState> state;
};

namespace vane_shim {

// grpc++ 1.51 shares one callback completion queue (with its "nexting" threads) among every
// channel and server in the process, refcounted: the last one destroyed shuts it down and the
// next one created starts a new one. That teardown races with the queue's own threads (seen as
// "assertion failed: prior > 0" in grpc_cq_internal_unref when processes open and drop one
// channel per health probe). A channel that is never destroyed, and that has made one callback
// call, holds a reference for the life of the process, so the shared queue is never torn down.
void AnchorCallbackQueue() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Debian builds abseil with mutex deadlock detection on (it is off in NDEBUG builds, as
    // grpc++ is usually shipped); grpc takes absl mutexes on every call, and the detection's
    // bookkeeping makes each lock several times dearer. Turn it off before grpc starts.
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    auto* channel = new std::shared_ptr<grpc::Channel>(
        grpc::CreateCustomChannel("unix:/nonexistent/vane-shim-anchor", grpc::InsecureChannelCredentials(), args));
    auto* stub = new grpc::GenericStub(*channel);
    struct Pending {
      grpc::ClientContext context;
      grpc::ByteBuffer request;
      grpc::ByteBuffer response;
    };
    auto* pending = new Pending();
    grpc::Slice empty("", 0);
    pending->request = grpc::ByteBuffer(&empty, 1);  // a default ByteBuffer is not a message
    pending->context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1));
    // The call fails at once (nothing listens there); what matters is that it was a callback
    // call, which makes the channel take its reference on the shared queue. The channel and
    // stub are deliberately never freed.
    stub->UnaryCall(&pending->context, "/vane.shim.Anchor/Hold", grpc::StubOptions(), &pending->request,
                    &pending->response, [pending](grpc::Status) { delete pending; });
  });
}

}  // namespace vane_shim

extern "C" vane_shim_channel* vane_shim_channel_create(const vane_shim_channel_options* options,
                                                       vane_shim_error* error) {
  try {
    vane_shim::AnchorCallbackQueue();
  } catch (...) {
  }
  vane_shim_channel* result = nullptr;
  Guarded(error, [&]() -> int {
    if (options == nullptr || options->target == nullptr || options->target[0] == '\0') {
      SetError(error, kInvalidArgument, "options and options->target are required");
      return -1;
    }
    grpc::ChannelArguments args;
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (options->tls != nullptr) {
      const vane_shim_channel_tls* tls = options->tls;
      if ((tls->certificate_chain == nullptr) != (tls->private_key == nullptr)) {
        SetError(error, kInvalidArgument,
                 "a client certificate chain and private key come together or not at all");
        return -1;
      }
      grpc::SslCredentialsOptions ssl;
      if (tls->ca_roots != nullptr) ssl.pem_root_certs = tls->ca_roots;
      if (tls->private_key != nullptr) ssl.pem_private_key = tls->private_key;
      if (tls->certificate_chain != nullptr) ssl.pem_cert_chain = tls->certificate_chain;
      creds = grpc::SslCredentials(ssl);
      if (tls->server_name_override != nullptr && tls->server_name_override[0] != '\0')
        args.SetSslTargetNameOverride(tls->server_name_override);
    } else {
      creds = grpc::InsecureChannelCredentials();
    }
    if (creds == nullptr) {
      SetError(error, kInvalidArgument, "cannot create channel credentials");
      return -1;
    }
    if (options->max_receive_message_bytes != 0)
      args.SetMaxReceiveMessageSize(options->max_receive_message_bytes);
    if (options->max_send_message_bytes != 0)
      args.SetMaxSendMessageSize(options->max_send_message_bytes);
    if (options->keepalive_time_ms > 0)
      args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, options->keepalive_time_ms);
    if (options->keepalive_timeout_ms > 0)
      args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, options->keepalive_timeout_ms);
    if (options->keepalive_permit_without_calls != 0)
      args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    if (options->max_reconnect_backoff_ms > 0) {
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, options->max_reconnect_backoff_ms);
      // The first retry must not wait longer than the cap.
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(options->max_reconnect_backoff_ms, 1000));
    }

    auto channel = grpc::CreateCustomChannel(options->target, creds, args);
    if (channel == nullptr) {
      SetError(error, kInvalidArgument, std::string("cannot create a channel to ") + options->target);
      return -1;
    }
    auto c = std::make_unique<vane_shim_channel>();
    c->channel = std::move(channel);
    c->stub = std::make_unique<grpc::GenericStub>(c->channel);
    result = c.release();
    return 0;
  });
  return result;
}

extern "C" void vane_shim_channel_free(vane_shim_channel* channel) {
  // Running calls keep their own reference to the grpc::Channel.
  delete channel;
}

extern "C" int vane_shim_channel_state(vane_shim_channel* channel, int try_to_connect) {
  if (channel == nullptr) return 4;  // GRPC_CHANNEL_SHUTDOWN
  try {
    return static_cast<int>(channel->channel->GetState(try_to_connect != 0));
  } catch (...) {
    return 4;
  }
}

extern "C" int vane_shim_channel_wait_for_connected(vane_shim_channel* channel, int64_t timeout_milliseconds) {
  if (channel == nullptr) return 4;  // GRPC_CHANNEL_SHUTDOWN
  try {
    // WaitForStateChange polls a completion queue, which is what drives an idle channel's
    // connection attempt forward; GetState alone only asks for one.
    const auto deadline =
        std::chrono::system_clock::now() + std::chrono::milliseconds(std::max<int64_t>(timeout_milliseconds, 0));
    auto state = channel->channel->GetState(true);
    while (state != GRPC_CHANNEL_READY && state != GRPC_CHANNEL_TRANSIENT_FAILURE &&
           state != GRPC_CHANNEL_SHUTDOWN) {
      if (!channel->channel->WaitForStateChange(state, deadline)) break;  // deadline passed
      state = channel->channel->GetState(true);
    }
    return static_cast<int>(state);
  } catch (...) {
    return 4;
  }
}

extern "C" vane_shim_client_call* vane_shim_client_call_start(
    vane_shim_channel* channel, const char* method, size_t method_length,
    const vane_shim_metadata_entry* metadata, size_t metadata_count,
    const vane_shim_call_options* options, const vane_shim_client_callbacks* callbacks, void* user,
    vane_shim_error* error) {
  vane_shim_client_call* result = nullptr;
  Guarded(error, [&]() -> int {
    if (channel == nullptr || method == nullptr || method_length == 0) {
      SetError(error, kInvalidArgument, "channel and method are required");
      return -1;
    }
    if (callbacks == nullptr || callbacks->on_initial_metadata == nullptr ||
        callbacks->on_read == nullptr || callbacks->on_writable == nullptr ||
        callbacks->on_done == nullptr) {
      SetError(error, kInvalidArgument, "every client callback is required");
      return -1;
    }
    MetadataList md;
    if (!CopyMetadata(metadata, metadata_count, &md, error)) return -1;

    auto state = std::make_shared<ClientCallState>();
    state->callbacks = *callbacks;
    state->user = user;
    if (options != nullptr && options->unary != 0) {
      // Nothing goes out before writes_done (see vane_shim_call_options.unary).
      state->unary = std::make_unique<ClientCallState::Unary>();
      ClientCallState::Unary& u = *state->unary;
      u.channel = channel->channel;
      u.method.assign(method, method_length);
      for (const auto& kv : md) u.context.AddMetadata(kv.first, kv.second);
      if (options->timeout_nanoseconds >= 0) {
        u.context.set_deadline(gpr_time_add(
            gpr_now(GPR_CLOCK_MONOTONIC),
            gpr_time_from_nanos(options->timeout_nanoseconds, GPR_TIMESPAN)));
      }
      u.context.set_wait_for_ready(options->wait_for_ready != 0);
      auto handle = std::make_unique<vane_shim_client_call>();
      handle->state = state;
      result = handle.release();
      return 0;
    }
    auto reactor = std::make_unique<ClientCallReactor>(
        channel->channel, std::string(method, method_length), state);
    grpc::ClientContext* ctx = reactor->context();
    for (const auto& kv : md) ctx->AddMetadata(kv.first, kv.second);
    if (options != nullptr) {
      if (options->timeout_nanoseconds >= 0) {
        ctx->set_deadline(gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                       gpr_time_from_nanos(options->timeout_nanoseconds,
                                                           GPR_TIMESPAN)));
      }
      ctx->set_wait_for_ready(options->wait_for_ready != 0);
      if (options->single_request != 0) {
        ctx->set_initial_metadata_corked(true);
        state->hold_until_writes_done = true;
      }
    }
    auto handle = std::make_unique<vane_shim_client_call>();
    handle->state = state;

    ClientCallReactor* r = reactor.release();  // owned by grpc++ until OnDone deletes it
    {
      std::lock_guard<std::mutex> lock(state->mu);
      state->reactor = r;
    }
    channel->stub->PrepareBidiStreamingCall(ctx, r->method(), grpc::StubOptions(), r);
    r->AddHold();
    r->StartCall();
    result = handle.release();
    return 0;
  });
  return result;
}

namespace {

ClientCallState* StateOf(vane_shim_client_call* call) {
  return call == nullptr ? nullptr : call->state.get();
}

/// Caller holds the lock. Starting an operation from outside a reaction is only safe while the
/// reactor's hold keeps OnDone away.
bool CheckStartable(ClientCallState* st, vane_shim_error* error) {
  if (st->done || st->hold_removed) {
    SetError(error, kFailedPrecondition,
             st->read_ended ? "the response stream has ended" : "the call is over or cancelled");
    return false;
  }
  return true;
}

/// Releases the reactor's hold after cancelling, so OnDone (with CANCELLED, unless the status was
/// already in) follows even if Swift never reads to the end.
void CancelAndRelease(const std::shared_ptr<ClientCallState>& shared) {
  ClientCallState* st = shared.get();
  if (st->unary) {
    ClientCallState::Unary& u = *st->unary;
    bool in_flight = false;
    bool never_sent = false;
    {
      std::lock_guard<std::mutex> lock(st->mu);
      if (u.done_delivered) return;
      u.cancelled = true;
      in_flight = u.started && !u.completed;
      never_sent = !u.started && !u.completed;
    }
    if (in_flight) {
      // on_done follows from the completion, with CANCELLED unless the status was in.
      u.context.TryCancel();
    } else if (never_sent) {
      UnaryCompleted(shared,
                     grpc::Status(grpc::StatusCode::CANCELLED, "The call was cancelled."), false);
    } else {
      UnaryMaybeFinish(shared);
    }
    return;
  }
  ClientCallReactor* reactor = nullptr;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    if (st->done || st->hold_removed) return;
    st->hold_removed = true;
    reactor = st->reactor;
  }
  // Unlocked: the hold we still own keeps the reactor alive until RemoveHold, and RemoveHold can
  // lead to OnDone, which takes the lock.
  reactor->context()->TryCancel();
  reactor->RemoveHold();
}

}  // namespace

extern "C" int vane_shim_client_call_read(vane_shim_client_call* call, vane_shim_error* error) {
  return Guarded(error, [&]() -> int {
    ClientCallState* st = StateOf(call);
    if (st == nullptr) {
      SetError(error, kInvalidArgument, "call is NULL");
      return -1;
    }
    if (st->unary) {
      {
        std::lock_guard<std::mutex> lock(st->mu);
        ClientCallState::Unary& u = *st->unary;
        if (u.done_delivered || (u.completed && u.results.empty())) {
          SetError(error, kFailedPrecondition, "the response stream has ended");
          return -1;
        }
        if (u.read_pending) {
          SetError(error, kFailedPrecondition, "a read is already pending");
          return -1;
        }
        u.read_pending = true;
      }
      UnaryDeliverRead(call->state);
      UnaryMaybeFinish(call->state);
      return 0;
    }
    std::lock_guard<std::mutex> lock(st->mu);
    if (!CheckStartable(st, error)) return -1;
    if (st->read_pending) {
      SetError(error, kFailedPrecondition, "a read is already pending");
      return -1;
    }
    st->read_pending = true;
    st->reactor->StartReadLocked();
    return 0;
  });
}

extern "C" int vane_shim_client_call_write(vane_shim_client_call* call, const uint8_t* bytes,
                                           size_t length, int* must_wait, vane_shim_error* error) {
  return Guarded(error, [&]() -> int {
    if (must_wait != nullptr) *must_wait = 0;
    ClientCallState* st = StateOf(call);
    if (st == nullptr) {
      SetError(error, kInvalidArgument, "call is NULL");
      return -1;
    }
    if (bytes == nullptr && length != 0) {
      SetError(error, kInvalidArgument, "bytes is NULL");
      return -1;
    }
    grpc::ByteBuffer buffer = CopyToByteBuffer(bytes, length);  // copy outside the lock
    if (st->unary) {
      std::lock_guard<std::mutex> lock(st->mu);
      ClientCallState::Unary& u = *st->unary;
      if (u.started || u.completed) {
        SetError(error, u.cancelled ? kCancelled : kFailedPrecondition,
                 "the call is over or its request was sent");
        return -1;
      }
      if (u.has_request) {
        SetError(error, kFailedPrecondition, "a unary call takes one request message");
        return -1;
      }
      u.request = std::move(buffer);
      u.has_request = true;
      return 0;
    }
    std::lock_guard<std::mutex> lock(st->mu);
    if (!CheckStartable(st, error)) return -1;
    if (st->writes_done_queued) {
      SetError(error, kFailedPrecondition, "writes_done was already called");
      return -1;
    }
    if (st->write_broken) {
      SetError(error, kCancelled, "the call ended; its status follows in on_done");
      return -1;
    }
    bool wait = st->out.PushMessage(std::move(buffer), length);
    if (st->hold_until_writes_done) {
      // Held messages only move with the half-close, so a writer told to wait would wait forever.
      st->out.writer_waiting = false;
      wait = false;
    }
    if (must_wait != nullptr && wait) *must_wait = 1;
    st->reactor->PumpLocked();
    return 0;
  });
}

extern "C" int vane_shim_client_call_writes_done(vane_shim_client_call* call,
                                                 vane_shim_error* error) {
  return Guarded(error, [&]() -> int {
    ClientCallState* st = StateOf(call);
    if (st == nullptr) {
      SetError(error, kInvalidArgument, "call is NULL");
      return -1;
    }
    if (st->unary) {
      ClientCallState::Unary& u = *st->unary;
      bool missing = false;
      {
        std::lock_guard<std::mutex> lock(st->mu);
        if (st->writes_done_queued) {
          SetError(error, kFailedPrecondition, "writes_done was already called");
          return -1;
        }
        st->writes_done_queued = true;
        // Cancelled before it went out: the cancellation ends it (or has), and the request must
        // not go out after all (its ending reads the context the call would be filling).
        if (u.completed || u.cancelled) return 0;
        missing = !u.has_request;
        u.started = !missing;
      }
      if (missing) {
        UnaryCompleted(call->state,
                       grpc::Status(grpc::StatusCode::INTERNAL,
                                    "A unary call was half-closed without its request message."),
                       false);
        return 0;
      }
      // Unlocked: grpc++ may complete the call (and run the callback) before UnaryCall returns.
      // The callback keeps the state, and with it the context, alive until grpc++ is done.
      std::shared_ptr<ClientCallState> keep = call->state;
      grpc::GenericStub stub(u.channel);
      stub.UnaryCall(&u.context, u.method, grpc::StubOptions(), &u.request, &u.response,
                     [keep](grpc::Status status) {
                       try {
                         UnaryCompleted(keep, status, true);
                       } catch (...) {
                       }
                     });
      return 0;
    }
    std::lock_guard<std::mutex> lock(st->mu);
    if (st->writes_done_queued) {
      SetError(error, kFailedPrecondition, "writes_done was already called");
      return -1;
    }
    // Half-closing a call that is over (or whose stream broke) is harmless: nothing to do.
    if (st->done || st->hold_removed || st->write_broken) {
      st->writes_done_queued = true;
      return 0;
    }
    st->writes_done_queued = true;
    OutItem item;
    item.kind = OutItem::Kind::kWritesDone;
    st->out.items.push_back(std::move(item));
    st->reactor->PumpLocked();
    return 0;
  });
}

extern "C" void vane_shim_client_call_cancel(vane_shim_client_call* call) {
  if (StateOf(call) == nullptr) return;
  try {
    CancelAndRelease(call->state);
  } catch (...) {
  }
}

extern "C" void vane_shim_client_call_free(vane_shim_client_call* call) {
  if (call == nullptr) return;
  try {
    // A call dropped before its end is cancelled; on_done still follows exactly once.
    CancelAndRelease(call->state);
  } catch (...) {
  }
  delete call;
}
