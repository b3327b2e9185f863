internal import Synchronization

/// The calls a server has between on_call and on_done, and whether it turns new ones away.
///
/// A plain struct so that its transitions are tested without I/O; ``CallRegistry`` holds it in
/// a `Mutex`. The drain needs the calls themselves, not only their number: a call whose handler
/// never ran (its task was dropped with a cancelled `listen`) or ignores cancellation would
/// otherwise keep grpc++'s `Server::Wait` waiting forever.
struct LiveCalls<Call> {
  private var calls: [ObjectIdentifier: Call] = [:]
  private(set) var draining = false

  init() {}

  /// A call arrived. Returns true and keeps it, unless the server is draining: the call is
  /// then refused and not kept (the drain waits only for real work).
  mutating func begin(_ call: Call, id: ObjectIdentifier) -> Bool {
    if self.draining { return false }
    self.calls[id] = call
    return true
  }

  /// The call is done (grpc++ released it). Unknown ids (refused calls) are ignored.
  mutating func end(id: ObjectIdentifier) {
    self.calls[id] = nil
  }

  /// From here on new calls are refused.
  mutating func startDraining() {
    self.draining = true
  }

  var count: Int { self.calls.count }

  /// The calls still live, in no particular order.
  var live: [Call] { Array(self.calls.values) }
}

/// ``LiveCalls`` of a server, shared by its callbacks and its drain.
final class CallRegistry: Sendable {
  private let state = Mutex(LiveCalls<ShimServerCall>())

  func begin(_ call: ShimServerCall) -> Bool {
    self.state.withLock { $0.begin(call, id: ObjectIdentifier(call)) }
  }

  func end(_ call: ShimServerCall) {
    self.state.withLock { $0.end(id: ObjectIdentifier(call)) }
  }

  func startDraining() {
    self.state.withLock { $0.startDraining() }
  }

  var count: Int { self.state.withLock { $0.count } }

  var live: [ShimServerCall] { self.state.withLock { $0.live } }
}
