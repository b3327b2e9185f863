// shim_common.cpp — errors, metadata, buffers, the outbound queue, and the descriptor pool.

#include <cstring>
#include <mutex>
#include <set>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>

#include "shim_internal.hpp"

namespace vane_shim {

void SetError(vane_shim_error* error, int code, const std::string& message) {
  if (error == nullptr) return;
  error->code = code;
  size_t n = message.size();
  if (n > VANE_SHIM_ERROR_MESSAGE_CAPACITY - 1) n = VANE_SHIM_ERROR_MESSAGE_CAPACITY - 1;
  std::memcpy(error->message, message.data(), n);
  error->message[n] = '\0';
}

bool CopyMetadata(const vane_shim_metadata_entry* entries, size_t count, MetadataList* out,
                  vane_shim_error* error) {
  out->clear();
  if (count == 0) return true;
  if (entries == nullptr) {
    SetError(error, kInvalidArgument, "metadata is NULL but its count is not 0");
    return false;
  }
  out->reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const vane_shim_metadata_entry& e = entries[i];
    if ((e.key == nullptr && e.key_length != 0) || (e.value == nullptr && e.value_length != 0)) {
      SetError(error, kInvalidArgument, "metadata entry with a NULL pointer");
      return false;
    }
    // gRPC core validates these when the batch starts and fails the call (or asserts in debug
    // builds); checking here turns that into a plain INVALID_ARGUMENT for the caller.
    grpc_slice key = grpc_slice_from_static_buffer(e.key == nullptr ? "" : e.key, e.key_length);
    if (e.key_length == 0 || !grpc_header_key_is_legal(key)) {
      SetError(error, kInvalidArgument,
               "illegal metadata key \"" + std::string(e.key == nullptr ? "" : e.key, e.key_length) +
                   "\" (keys are lower-case ASCII letters, digits, '-', '_' and '.')");
      return false;
    }
    std::string value(reinterpret_cast<const char*>(e.value), e.value_length);
    if (!grpc_is_binary_header(key)) {
      grpc_slice v = grpc_slice_from_static_buffer(value.data(), value.size());
      if (!grpc_header_nonbin_value_is_legal(v)) {
        SetError(error, kInvalidArgument,
                 "illegal value for metadata key \"" + std::string(e.key, e.key_length) +
                     "\" (non -bin values are printable ASCII)");
        return false;
      }
    }
    out->emplace_back(std::string(e.key, e.key_length), std::move(value));
  }
  return true;
}

std::vector<vane_shim_metadata_entry> MetadataView(
    const std::multimap<grpc::string_ref, grpc::string_ref>& map) {
  std::vector<vane_shim_metadata_entry> view;
  view.reserve(map.size());
  for (const auto& kv : map) {
    vane_shim_metadata_entry e;
    e.key = kv.first.data();
    e.key_length = kv.first.size();
    e.value = reinterpret_cast<const uint8_t*>(kv.second.data());
    e.value_length = kv.second.size();
    view.push_back(e);
  }
  return view;
}

grpc::ByteBuffer CopyToByteBuffer(const uint8_t* bytes, size_t length) {
  // A ByteBuffer must hold at least one slice to be valid for sending, even when empty.
  grpc::Slice slice = (length == 0) ? grpc::Slice() : grpc::Slice(bytes, length);
  return grpc::ByteBuffer(&slice, 1);
}

namespace {
// Non-NULL pointer for empty messages: Swift builds buffers from it, and NULL plus 0 is a needless
// special case on that side.
const uint8_t kEmpty[1] = {0};
}  // namespace

FlatMessage::FlatMessage(grpc::ByteBuffer* buffer) : data_(kEmpty) {
  if (buffer == nullptr || !buffer->Valid()) return;
  if (!buffer->Dump(&slices_).ok()) return;
  if (slices_.size() == 1) {
    data_ = slices_[0].begin();
    size_ = slices_[0].size();
    return;
  }
  size_t total = 0;
  for (const auto& s : slices_) total += s.size();
  if (total == 0) return;
  joined_.reserve(total);
  for (const auto& s : slices_) joined_.append(reinterpret_cast<const char*>(s.begin()), s.size());
  data_ = reinterpret_cast<const uint8_t*>(joined_.data());
  size_ = joined_.size();
}

grpc::StatusCode ToStatusCode(int code) {
  if (code < 0 || code > 16) return grpc::StatusCode::UNKNOWN;
  return static_cast<grpc::StatusCode>(code);
}

bool OutQueue::PushMessage(grpc::ByteBuffer buffer, size_t bytes) {
  OutItem item;
  item.kind = OutItem::Kind::kMessage;
  item.buffer = std::move(buffer);
  item.bytes = bytes;
  items.push_back(std::move(item));
  pending_messages += 1;
  pending_bytes += bytes;
  if (pending_messages >= kHighMessages || pending_bytes >= kHighBytes) {
    writer_waiting = true;
    return true;
  }
  return false;
}

bool OutQueue::PopFront() {
  if (items.empty()) return false;
  if (items.front().kind == OutItem::Kind::kMessage) {
    pending_messages -= 1;
    pending_bytes -= items.front().bytes;
  }
  items.pop_front();
  if (writer_waiting && BelowLowWater()) {
    writer_waiting = false;
    return true;
  }
  return false;
}

bool OutQueue::DropMessages(bool keep_front) {
  std::deque<OutItem> kept;
  bool first = true;
  for (auto& item : items) {
    bool keep = (first && keep_front) || item.kind != OutItem::Kind::kMessage;
    first = false;
    if (keep) {
      kept.push_back(std::move(item));
    } else {
      pending_messages -= 1;
      pending_bytes -= item.bytes;
    }
  }
  items.swap(kept);
  if (writer_waiting && BelowLowWater()) {
    writer_waiting = false;
    return true;
  }
  return false;
}

}  // namespace vane_shim

using namespace vane_shim;

namespace {

// Symbols a file adds to the generated database's index. EncodedDescriptorDatabase::Add (which
// InternalAddGeneratedFile CHECKs) fails when any of them is already taken, so they are checked
// beforehand to turn a process abort into an error.
bool FindConflict(google::protobuf::DescriptorDatabase* db,
                  const google::protobuf::FileDescriptorProto& file, std::string* conflict) {
  const std::string prefix = file.package().empty() ? "" : file.package() + ".";
  google::protobuf::FileDescriptorProto found;
  auto taken = [&](const std::string& name) {
    found.Clear();
    if (db->FindFileContainingSymbol(prefix + name, &found)) {
      *conflict = "symbol " + prefix + name + " is already defined in " + found.name();
      return true;
    }
    return false;
  };
  for (const auto& m : file.message_type())
    if (taken(m.name())) return true;
  for (const auto& e : file.enum_type())
    if (taken(e.name())) return true;
  for (const auto& s : file.service())
    if (taken(s.name())) return true;
  for (const auto& x : file.extension()) {
    if (taken(x.name())) return true;
    if (!x.extendee().empty() && x.extendee()[0] == '.') {
      found.Clear();
      if (db->FindFileContainingExtension(x.extendee().substr(1), x.number(), &found)) {
        *conflict = "extension " + std::to_string(x.number()) + " of " + x.extendee() +
                    " is already defined in " + found.name();
        return true;
      }
    }
  }
  return false;
}

}  // namespace

extern "C" int vane_shim_descriptor_pool_add_file(const uint8_t* bytes, size_t length,
                                                  vane_shim_error* error) {
  return Guarded(error, [&]() -> int {
    if (bytes == nullptr && length != 0) {
      SetError(error, kInvalidArgument, "descriptor bytes are NULL");
      return -1;
    }
    if (length > static_cast<size_t>(INT32_MAX)) {
      SetError(error, kInvalidArgument, "descriptor is too large");
      return -1;
    }
    google::protobuf::FileDescriptorProto file;
    if (!file.ParseFromArray(bytes, static_cast<int>(length)) || file.name().empty()) {
      SetError(error, kInvalidArgument, "bytes are not a serialized FileDescriptorProto");
      return -1;
    }

    // The generated pool is process-global, and so is this bookkeeping.
    static std::mutex mu;
    static std::set<std::string> added;
    std::lock_guard<std::mutex> lock(mu);
    if (added.count(file.name()) != 0) return 0;

    // Ask the database, not generated_pool()->FindFileByName: a failed pool lookup records the
    // name as "known bad" and the pool would then never load the file after we add it.
    google::protobuf::DescriptorDatabase* db =
        google::protobuf::DescriptorPool::internal_generated_database();
    google::protobuf::FileDescriptorProto existing;
    if (db->FindFileByName(file.name(), &existing)) {
      added.insert(file.name());
      return 0;
    }
    std::string conflict;
    if (FindConflict(db, file, &conflict)) {
      SetError(error, kAlreadyExists, "cannot add " + file.name() + ": " + conflict);
      return -1;
    }

    // InternalAddGeneratedFile keeps the pointer, so the copy lives for the rest of the process.
    char* copy = new char[length == 0 ? 1 : length];
    if (length != 0) std::memcpy(copy, bytes, length);
    google::protobuf::DescriptorPool::InternalAddGeneratedFile(copy, static_cast<int>(length));
    added.insert(file.name());
    return 0;
  });
}
