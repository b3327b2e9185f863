// shim_internal.hpp — shared pieces of the C shim's implementation (not part of the C surface).
//
// Threading model, in one place, because every file relies on it:
// - gRPC runs reactions (OnReadDone, OnWriteDone, OnCancel, OnDone, ...) on its own threads,
//   possibly concurrently for one call. Swift calls into the shim from any thread.
// - Each call has one std::mutex guarding its state. grpc++ operations (StartRead, StartWrite, ...)
//   are started while holding it, so "check state, then start" is atomic with respect to the
//   reaction that ends the call. That is safe because grpc++ never runs a reaction inline inside
//   a Start* call (their tags are non-inlineable, and OnDone is scheduled on an executor when it
//   is triggered from outside a reaction).
// - Terminal operations (server Finish, client RemoveHold) are the exception: once issued, OnDone
//   may run and delete the reactor at any moment, so they are issued after the lock is released,
//   with a flag set under the lock first so that nothing else touches the reactor afterwards.
// - Swift callbacks are only ever invoked from reactions and never under the lock, so Swift may
//   start operations from inside a callback. gRPC runs OnDone only after every other reaction of
//   the call returned, which is what guarantees "no callback after on_done". Unary calls are the
//   exception: their results are already in when Swift reads, so a read is answered on the
//   thread that starts it (still unlocked), and on_done waits for any such answer in progress.

#ifndef VANE_SHIM_INTERNAL_HPP
#define VANE_SHIM_INTERNAL_HPP

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include "vane_shim.h"

namespace vane_shim {

// gRPC status codes used for shim errors (kept numeric: this is what the C surface promises).
enum Code : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kNotFound = 5,
  kAlreadyExists = 6,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kInternal = 13,
  kUnavailable = 14,
};

/// Writes `code` and `message` (truncated, NUL-terminated) into `error` when it is non-NULL.
void SetError(vane_shim_error* error, int code, const std::string& message);

/// Runs `body` and turns any escaping exception into -1 plus an error, so that no exception can
/// cross the C boundary (which would be undefined behaviour for the Swift caller).
template <class Body>
int Guarded(vane_shim_error* error, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    SetError(error, kResourceExhausted, "out of memory");
  } catch (const std::exception& e) {
    SetError(error, kInternal, std::string("internal error: ") + e.what());
  } catch (...) {
    SetError(error, kInternal, "internal error: unknown exception");
  }
  return -1;
}

/// Runs a reaction body on a gRPC thread. An exception escaping into gRPC would terminate the
/// process; swallowing it (only bad_alloc is realistic here) is the lesser evil.
template <class Body>
void GuardedReaction(Body&& body) noexcept {
  try {
    body();
  } catch (...) {
  }
}

using MetadataList = std::vector<std::pair<std::string, std::string>>;

/// Copies C metadata entries, rejecting keys/values gRPC would refuse (it would otherwise fail the
/// whole call later, or assert). Returns false with `error` filled on bad input.
bool CopyMetadata(const vane_shim_metadata_entry* entries, size_t count, MetadataList* out,
                  vane_shim_error* error);

/// Views a grpc++ metadata multimap as C entries. The entries point into `map`, which must stay
/// alive (and unchanged) while they are used.
std::vector<vane_shim_metadata_entry> MetadataView(
    const std::multimap<grpc::string_ref, grpc::string_ref>& map);

/// Makes a ByteBuffer holding a copy of `bytes`.
grpc::ByteBuffer CopyToByteBuffer(const uint8_t* bytes, size_t length);

/// A received message flattened to one contiguous run of bytes. Keeps the slices referenced, so a
/// single-slice message is passed without copying.
class FlatMessage {
 public:
  explicit FlatMessage(grpc::ByteBuffer* buffer);
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  std::vector<grpc::Slice> slices_;
  std::string joined_;
  const uint8_t* data_;
  size_t size_ = 0;
};

/// Maps an int from Swift to a grpc::StatusCode; anything outside 0...16 becomes UNKNOWN.
grpc::StatusCode ToStatusCode(int code);

/// Keeps grpc++'s shared callback completion queue alive for the life of the process (see the
/// definition for the grpc++ 1.51 race this avoids). Idempotent.
void AnchorCallbackQueue();

/// One entry of a call's outbound queue. Messages, the server's initial metadata and status, and
/// the client's half-close all go through one FIFO so that gRPC sees them in the order Swift
/// issued them, one write in flight at a time (grpc++ allows only one).
struct OutItem {
  enum class Kind { kMessage, kInitialMetadata, kFinish, kWritesDone };
  Kind kind = Kind::kMessage;
  grpc::ByteBuffer buffer;  // kMessage
  size_t bytes = 0;         // kMessage
  MetadataList metadata;    // kInitialMetadata, kFinish (trailers)
  grpc::Status status;      // kFinish
};

/// Outbound queue with flow-control marks. Not thread-safe: guarded by the owning call's mutex.
/// std::deque keeps references to existing elements valid across push_back, so the in-flight
/// front element's ByteBuffer stays put while more messages are queued behind it.
struct OutQueue {
  // High-water mark: past it the writer is told to wait. Low-water mark (half): the writer is
  // woken. Messages counted include the one in flight.
  static constexpr size_t kHighMessages = 16;
  static constexpr size_t kHighBytes = 4u << 20;

  std::deque<OutItem> items;
  bool in_flight = false;       // a write-side operation is running in gRPC
  bool writer_waiting = false;  // a write returned must_wait and on_writable is owed
  size_t pending_messages = 0;
  size_t pending_bytes = 0;

  /// Queues a message; returns true when the writer must now wait for on_writable.
  bool PushMessage(grpc::ByteBuffer buffer, size_t bytes);
  /// Removes the front item (a message's counters are released). Returns true when a waiting
  /// writer should now be woken (and clears the wait).
  bool PopFront();
  /// Drops every queued message that is not in flight (the stream broke). Returns true when a
  /// waiting writer should be woken.
  bool DropMessages(bool keep_front);
  bool BelowLowWater() const {
    return pending_messages <= kHighMessages / 2 && pending_bytes <= kHighBytes / 2;
  }
};

}  // namespace vane_shim

#endif  // VANE_SHIM_INTERNAL_HPP
