internal import GRPCCore
internal import CGRPCShim
internal import Synchronization

/// One client call: starts when GRPCCore writes the request metadata, owns the
/// `vane_shim_client_call` handle, and is the `user` of its callbacks.
final class ShimClientCall: Sendable {
  struct Final: Sendable {
    var status: Status
    var trailers: Metadata
  }

  struct State {
    /// Set once the call has started; freed with the call.
    var handle: ShimPointer?
    /// The final status is known (or the call was cancelled before it started).
    var finished = false
    var initialMetadata = Handoff<Metadata?>()
    var read: ReadAhead
    var writable = Handoff<Bool>()
    var final = Handoff<Final>()
  }

  private let channel: ShimChannel
  let method: String
  private let waitForReady: Bool
  /// ``ShimCallDeadline``'s timeout where the caller set one, in nanoseconds.
  private let timeout: Int64?
  private let state: Mutex<State>
  /// Whether the request is one message (sent with the metadata and half-close as one batch).
  private let singleRequest: Bool
  /// Whether the response is one message: its parts are taken together once the status is
  /// here, so that the consumer is resumed once (a thread hop) rather than once per part.
  let singleResponse: Bool

  /// - Parameter readAhead: how many response reads may run ahead of the consumer (see
  ///   ``ReadAhead``).
  init(
    channel: ShimChannel,
    method: String,
    waitForReady: Bool,
    timeout: Duration? = nil,
    readAhead: Int,
    singleRequest: Bool
  ) {
    self.channel = channel
    self.method = method
    self.waitForReady = waitForReady
    self.timeout = timeout.map(GRPCTimeout.nanoseconds)
    self.singleRequest = singleRequest
    self.singleResponse = readAhead > 1
    self.state = Mutex(State(read: ReadAhead(limit: readAhead)))
  }

  deinit {
    let handle = self.state.withLock { $0.handle }
    if let handle { vane_shim_client_call_free(handle.raw) }
  }

  private var handle: OpaquePointer? { self.state.withLock { $0.handle?.raw } }

  // MARK: Operations

  func start(metadata: Metadata) throws {
    var metadata = metadata
    let timeout = metadata[stringValues: "grpc-timeout"].first(where: { _ in true }).flatMap(
      GRPCTimeout.decode
    )
    metadata.removeAllValues(forKey: "grpc-timeout")
    var options = vane_shim_call_options(
      timeout_nanoseconds: timeout ?? self.timeout ?? -1,
      wait_for_ready: self.waitForReady ? 1 : 0,
      single_request: self.singleRequest ? 1 : 0,
      unary: self.singleRequest && self.singleResponse ? 1 : 0
    )
    var callbacks = vane_shim_client_callbacks()
    callbacks.on_initial_metadata = { user, ok, entries, count in
      let call = Unmanaged<ShimClientCall>.fromOpaque(user!).takeUnretainedValue()
      call.initialMetadataArrived(ok != 0 ? ShimMetadata.decode(entries, count: count) : nil)
    }
    callbacks.on_read = { user, ok, bytes, length in
      let call = Unmanaged<ShimClientCall>.fromOpaque(user!).takeUnretainedValue()
      call.readCompleted(
        ok != 0 ? .message(Array(UnsafeBufferPointer(start: bytes, count: length))) : .end
      )
    }
    callbacks.on_writable = { user in
      Unmanaged<ShimClientCall>.fromOpaque(user!).takeUnretainedValue().becameWritable()
    }
    callbacks.on_done = { user, code, message, messageLength, trailers, trailerCount in
      let call = Unmanaged<ShimClientCall>.fromOpaque(user!)
      let text =
        message.map {
          String(decoding: UnsafeRawBufferPointer(start: $0, count: messageLength), as: UTF8.self)
        } ?? ""
      let status = Status(code: Status.Code(shimCode: code), message: text)
      call.takeUnretainedValue().done(
        Final(status: status, trailers: ShimMetadata.decode(trailers, count: trailerCount))
      )
      call.release()
    }

    let user = Unmanaged.passRetained(self)
    var error = vane_shim_error()
    let method = Array(self.method.utf8)
    let created: OpaquePointer? = ShimMetadata.withEntries(metadata) { entries, count in
      method.withUnsafeBufferPointer { methodBytes in
        methodBytes.withMemoryRebound(to: CChar.self) { methodChars in
          vane_shim_client_call_start(
            self.channel.pointer,
            methodChars.baseAddress,
            methodChars.count,
            entries,
            count,
            &options,
            &callbacks,
            user.toOpaque(),
            &error
          )
        }
      }
    }
    guard let created else {
      user.release()
      let failure = ShimError(operation: "starting \(self.method)", error)
      self.done(
        Final(status: Status(code: failure.code, message: failure.description), trailers: [:])
      )
      throw failure.rpcError
    }
    // The pointer only crosses into the lock; the shim itself is thread-safe.
    let handle = ShimPointer(created)
    let cancelledBeforeStart = self.state.withLock { state -> Bool in
      state.handle = handle
      return state.finished
    }
    if cancelledBeforeStart {
      vane_shim_client_call_cancel(created)
    } else {
      // The response is read while GRPCCore gets round to asking for it.
      self.readAhead()
    }
  }

  func write(_ bytes: [UInt8]) async throws {
    guard let handle = self.handle else {
      throw RPCError(
        code: .internalError,
        message: "A message was written before the request metadata."
      )
    }
    try await ShimWrite.send(bytes, waitWritable: self.waitWritable) {
      pointer,
      count,
      mustWait,
      error in
      vane_shim_client_call_write(handle, pointer, count, mustWait, error)
    }
  }

  private func waitWritable() async -> Bool {
    await withCheckedContinuation { continuation in
      if let early = self.state.withLock({ $0.writable.wait(continuation) }) {
        continuation.resume(returning: early)
      }
    }
  }

  func writesDone() {
    guard let handle = self.handle else { return }
    var error = vane_shim_error()
    _ = vane_shim_client_call_writes_done(handle, &error)
  }

  /// Waits for the server's initial metadata; nil when the call ended without any.
  func initialMetadata() async -> Metadata? {
    await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        if let early = self.state.withLock({ $0.initialMetadata.wait(continuation) }) {
          continuation.resume(returning: early)
        }
      }
    } onCancel: {
      self.cancel()
    }
  }

  func read() async -> ReadResult {
    let result = await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        if let ready = self.state.withLock({ $0.read.next(continuation) }) {
          continuation.resume(returning: ready)
        }
      }
    } onCancel: {
      self.cancel()
    }
    self.readAhead()
    return result
  }

  /// Starts the next read if the call has started and the read-ahead allows one.
  private func readAhead() {
    let handle: ShimPointer? = self.state.withLock { state in
      guard let handle = state.handle, !state.finished, state.read.startReadIfNeeded() else {
        return nil
      }
      return handle
    }
    guard let handle else { return }
    var error = vane_shim_error()
    if vane_shim_client_call_read(handle.raw, &error) != 0 {
      self.state.withLock { $0.read.completed(.end) }?.resume(returning: .end)
    }
  }

  func finalStatus() async -> Final {
    await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        if let early = self.state.withLock({ $0.final.wait(continuation) }) {
          continuation.resume(returning: early)
        }
      }
    } onCancel: {
      self.cancel()
    }
  }

  /// Cancels the call unless it is over; if it never started, it ends here with CANCELLED.
  func cancel() {
    enum Action {
      case cancel(ShimPointer)
      case endUnstarted, none
    }
    let action = self.state.withLock { state -> Action in
      if state.finished { return .none }
      if let handle = state.handle { return .cancel(handle) }
      state.finished = true
      return .endUnstarted
    }
    switch action {
    case .cancel(let handle):
      vane_shim_client_call_cancel(handle.raw)
    case .endUnstarted:
      self.done(
        Final(
          status: Status(code: .cancelled, message: "The call was cancelled before it started."),
          trailers: [:]
        )
      )
    case .none:
      break
    }
  }

  // MARK: Callbacks (gRPC threads)

  private func initialMetadataArrived(_ metadata: Metadata?) {
    self.state.withLock { $0.initialMetadata.deliver(metadata) }?.resume(returning: metadata)
  }

  private func readCompleted(_ result: ReadResult) {
    let waiter = self.state.withLock { $0.read.completed(result) }
    self.readAhead()
    waiter?.resume(returning: result)
  }

  private func becameWritable() {
    self.state.withLock { $0.writable.deliver(true) }?.resume(returning: true)
  }

  private func done(_ final: Final) {
    let waiters = self.state.withLock { state in
      state.finished = true
      return (
        state.initialMetadata.deliverUnlessReady(nil), state.read.close(),
        state.writable.deliver(false), state.final.deliver(final)
      )
    }
    waiters.0?.resume(returning: nil)
    waiters.1?.resume(returning: .end)
    waiters.2?.resume(returning: false)
    waiters.3?.resume(returning: final)
  }
}

/// The response parts of a client call: initial metadata (unless the response is
/// trailers-only), each message, then the status.
struct ShimClientInbound: AsyncSequence, Sendable {
  typealias Element = RPCResponsePart<[UInt8]>
  let call: ShimClientCall

  struct AsyncIterator: AsyncIteratorProtocol {
    enum Phase { case metadata, messages, status, finished }
    let call: ShimClientCall
    var phase = Phase.metadata
    /// The status, when it was awaited first (a single-message response).
    var final: ShimClientCall.Final?

    mutating func next() async throws -> RPCResponsePart<[UInt8]>? {
      while true {
        switch self.phase {
        case .metadata:
          // Messages are read even after a trailers-only response: the shim delivers the
          // status only once the response stream has been read to its end. So once the
          // status of a single-message response is here, so is everything before it.
          if self.call.singleResponse { self.final = await self.call.finalStatus() }
          self.phase = .messages
          if let metadata = await self.call.initialMetadata() {
            return .metadata(metadata)
          }
        case .messages:
          switch await self.call.read() {
          case .message(let bytes): return .message(bytes)
          case .end: self.phase = .status
          }
        case .status:
          let final: ShimClientCall.Final
          if let early = self.final { final = early } else { final = await self.call.finalStatus() }
          self.phase = .finished
          return .status(final.status, final.trailers)
        case .finished:
          return nil
        }
      }
    }
  }

  func makeAsyncIterator() -> AsyncIterator { AsyncIterator(call: self.call) }
}

/// The request parts of a client call: the metadata starts the call, then messages, then the
/// half-close.
struct ShimClientOutbound: ClosableRPCWriterProtocol {
  typealias Element = RPCRequestPart<[UInt8]>
  let call: ShimClientCall

  func write(_ element: RPCRequestPart<[UInt8]>) async throws {
    switch element {
    case .metadata(let metadata):
      try self.call.start(metadata: metadata)
    case .message(let bytes):
      try await self.call.write(bytes)
    }
  }

  func write(contentsOf elements: some Sequence<RPCRequestPart<[UInt8]>>) async throws {
    for element in elements { try await self.write(element) }
  }

  func finish() async {
    self.call.writesDone()
  }

  func finish(throwing error: any Error) async {
    self.call.cancel()
  }
}

/// A shim handle that may cross threads: the shim's entry points are thread-safe, and the one
/// object that owns the handle frees it.
struct ShimPointer: @unchecked Sendable {
  let raw: OpaquePointer
  init(_ raw: OpaquePointer) { self.raw = raw }
}
