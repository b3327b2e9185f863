internal import GRPCCore
internal import CGRPCShim
internal import Synchronization

/// One server call: owns its `vane_shim_server_call` handle and is the `user` of its callbacks.
final class ShimServerCall: Sendable {
  struct State {
    var read: ReadAhead
    var writable = Handoff<Bool>()
    var cancellation: ServerContext.RPCCancellationHandle?
    var cancelled = false
    var statusSent = false
    /// The handler starts once the request has been read (a single-message request).
    var handlerAwaitsRequest = false

    /// A read completed. Returns the parked reader to resume, and whether the handler that
    /// was waiting for the whole request starts now.
    mutating func readCompleted(
      _ result: ReadResult
    ) -> (reader: CheckedContinuation<ReadResult, Never>?, startHandler: Bool) {
      let reader = self.read.completed(result)
      guard self.handlerAwaitsRequest, self.read.isComplete else { return (reader, false) }
      self.handlerAwaitsRequest = false
      return (reader, true)
    }
  }

  // Immutable; the shim is safe to call from any thread.
  nonisolated(unsafe) private let handle: OpaquePointer
  let descriptor: MethodDescriptor
  let peer: String
  let metadata: Metadata
  private let state: Mutex<State>

  /// Keeps the call until on_done (for draining) and starts its handler.
  private let sink: ShimServerHandle.CallSink

  /// - Parameter readAhead: how many request reads may run ahead of the handler (see
  ///   ``ReadAhead``).
  init(
    handle: OpaquePointer,
    info: vane_shim_call_info,
    descriptor: MethodDescriptor,
    readAhead: Int,
    sink: ShimServerHandle.CallSink
  ) {
    self.handle = handle
    self.sink = sink
    self.state = Mutex(State(read: ReadAhead(limit: readAhead)))
    self.descriptor = descriptor
    self.peer = info.peer.map { String(cString: $0) } ?? ""
    // The deadline is grpc++'s to keep: when it passes, grpc++ cancels the call and
    // `cancelled()` cancels the handler. Handing it to GRPCCore as well (a grpc-timeout header)
    // would cost every call a task group and a timer task for the same cancellation.
    self.metadata = ShimMetadata.decode(info.metadata, count: info.metadata_count)
  }

  deinit {
    vane_shim_server_call_free(self.handle)
  }

  /// Runs the server's handler for this call and makes sure the call is finished exactly once.
  func run(
    localPeer: String,
    handler:
      @Sendable (
        RPCStream<ShimServerTransport.Inbound, ShimServerTransport.Outbound>, ServerContext
      ) async -> Void
  ) async {
    await withServerContextRPCCancellationHandle { cancellation in
      let alreadyCancelled = self.state.withLock { state in
        state.cancellation = cancellation
        return state.cancelled
      }
      if alreadyCancelled { cancellation.cancel() }
      let stream = RPCStream(
        descriptor: self.descriptor,
        inbound: RPCAsyncSequence(wrapping: ShimServerInbound(call: self)),
        outbound: RPCWriter.Closable(wrapping: ShimServerOutbound(call: self))
      )
      let context = ServerContext(
        descriptor: stream.descriptor,
        remotePeer: self.peer,
        localPeer: localPeer,
        cancellation: cancellation
      )
      await handler(stream, context)
      // A handler that returned without a status still ends the call.
      self.finishIfNeeded(
        Status(code: .unknown, message: "The handler ended without a status."),
        trailers: [:]
      )
    }
  }

  /// The response is a single message: hold it (and the initial metadata) for the status, so
  /// that all three go out as one batch.
  func holdUntilFinish() {
    var error = vane_shim_error()
    _ = vane_shim_server_call_hold_until_finish(self.handle, &error)
  }

  /// Ends a call that arrived while the server was draining or shutting down.
  func refuse() {
    self.finishIfNeeded(
      Status(
        code: .unavailable,
        message: "The server is draining: try another replica or retry later."
      ),
      trailers: [:]
    )
  }

  /// Ends a call the drain could not wait for any longer: its handler never ran or did not
  /// finish after it was cancelled. Whatever the handler does later fails (the first status wins).
  func abandon() {
    self.finishIfNeeded(
      Status(
        code: .unavailable,
        message: "The server shut down before the call finished: retry later."
      ),
      trailers: [:]
    )
  }

  // MARK: Operations (any task)

  func read() async throws -> ReadResult {
    let result: ReadResult = await withCheckedContinuation { continuation in
      if let ready = self.state.withLock({ $0.read.next(continuation) }) {
        continuation.resume(returning: ready)
      }
    }
    // A slot was freed (or the first read is due): keep one read ahead of the handler.
    self.readAhead()
    if case .end = result, self.state.withLock({ $0.cancelled }) {
      throw RPCError(code: .cancelled, message: "The client cancelled the call.")
    }
    return result
  }

  /// Starts the next read if the read-ahead allows one.
  func readAhead() {
    guard self.state.withLock({ $0.read.startReadIfNeeded() }) else { return }
    var error = vane_shim_error()
    if vane_shim_server_call_read(self.handle, &error) != 0 {
      // The call is over (finished or done): reading ends here.
      self.readCompleted(.end)
    }
  }

  /// The handler is started by the read that completes the request (see ``readCompleted(_:)``).
  /// Call before the first read.
  func startHandlerWhenRequestIsRead() {
    self.state.withLock { $0.handlerAwaitsRequest = true }
  }

  func sendInitialMetadata(_ metadata: Metadata) throws {
    try ShimMetadata.withEntries(metadata) { entries, count in
      try ShimError.check("sending initial metadata") {
        vane_shim_server_call_send_initial_metadata(self.handle, entries, count, $0)
      }
    }
  }

  func write(_ bytes: [UInt8]) async throws {
    try await ShimWrite.send(bytes, waitWritable: self.waitWritable) {
      pointer,
      count,
      mustWait,
      error in
      vane_shim_server_call_write(self.handle, pointer, count, mustWait, error)
    }
  }

  private func waitWritable() async -> Bool {
    await withCheckedContinuation { continuation in
      if let early = self.state.withLock({ $0.writable.wait(continuation) }) {
        continuation.resume(returning: early)
      }
    }
  }

  /// Sends the status; later attempts are ignored (the first status wins).
  @discardableResult
  func finishIfNeeded(_ status: Status, trailers: Metadata) -> Bool {
    let first = self.state.withLock { state in
      defer { state.statusSent = true }
      return !state.statusSent
    }
    guard first else { return false }
    if !self.finish(status, trailers: trailers) {
      // The shim refused the status (trailers it cannot send, such as non-ASCII text values):
      // the call must still end, or its client and the server's shutdown would wait forever.
      _ = self.finish(
        Status(code: .internalError, message: "The server's trailing metadata could not be sent."),
        trailers: [:]
      )
    }
    return true
  }

  private func finish(_ status: Status, trailers: Metadata) -> Bool {
    let message = Array(status.message.utf8)
    return ShimMetadata.withEntries(trailers) { entries, count in
      message.withUnsafeBufferPointer { text in
        var error = vane_shim_error()
        return text.withMemoryRebound(to: CChar.self) { chars in
          vane_shim_server_call_finish(
            self.handle,
            Int32(status.code.rawValue),
            chars.baseAddress,
            chars.count,
            entries,
            count,
            &error
          )
        } == 0
      }
    }
  }

  // MARK: Callbacks (gRPC threads)

  func readCompleted(_ result: ReadResult) {
    let (reader, startHandler) = self.state.withLock { $0.readCompleted(result) }
    self.readAhead()
    reader?.resume(returning: result)
    if startHandler { self.sink.startHandler(self) }
  }

  func becameWritable() {
    self.state.withLock { $0.writable.deliver(true) }?.resume(returning: true)
  }

  func cancelled() {
    let handle = self.state.withLock { state in
      state.cancelled = true
      return state.cancellation
    }
    handle?.cancel()
  }

  func done() {
    let (reader, writer) = self.state.withLock { state in
      // A handler still waiting for its request never starts: the call is over.
      state.handlerAwaitsRequest = false
      return (state.read.close(), state.writable.deliver(false))
    }
    reader?.resume(returning: .end)
    writer?.resume(returning: false)
    self.sink.calls.end(self)
  }
}

/// The request parts of a server call: its metadata, then each message as it is read.
struct ShimServerInbound: AsyncSequence, Sendable {
  typealias Element = RPCRequestPart<[UInt8]>
  let call: ShimServerCall

  struct AsyncIterator: AsyncIteratorProtocol {
    let call: ShimServerCall
    var sentMetadata = false
    var ended = false

    mutating func next() async throws -> RPCRequestPart<[UInt8]>? {
      if !self.sentMetadata {
        self.sentMetadata = true
        return .metadata(self.call.metadata)
      }
      if self.ended { return nil }
      switch try await self.call.read() {
      case .message(let bytes):
        return .message(bytes)
      case .end:
        self.ended = true
        return nil
      }
    }
  }

  func makeAsyncIterator() -> AsyncIterator { AsyncIterator(call: self.call) }
}

/// The response parts of a server call, written through the shim's queue.
struct ShimServerOutbound: ClosableRPCWriterProtocol {
  typealias Element = RPCResponsePart<[UInt8]>
  let call: ShimServerCall

  func write(_ element: RPCResponsePart<[UInt8]>) async throws {
    switch element {
    case .metadata(let metadata):
      do { try self.call.sendInitialMetadata(metadata) } catch { throw error.rpcError }
    case .message(let bytes):
      try await self.call.write(bytes)
    case .status(let status, let trailers):
      self.call.finishIfNeeded(status, trailers: trailers)
    }
  }

  func write(contentsOf elements: some Sequence<RPCResponsePart<[UInt8]>>) async throws {
    for element in elements { try await self.write(element) }
  }

  func finish() async {
    self.call.finishIfNeeded(
      Status(code: .unknown, message: "The response stream closed without a status."),
      trailers: [:]
    )
  }

  func finish(throwing error: any Error) async {
    let status: Status
    if let rpcError = error as? RPCError {
      status = Status(code: Status.Code(rpcError.code), message: rpcError.message)
      self.call.finishIfNeeded(status, trailers: rpcError.metadata)
    } else {
      status = Status(code: .unknown, message: "\(error)")
      self.call.finishIfNeeded(status, trailers: [:])
    }
  }
}

extension Error {
  /// The error as an `RPCError`, for GRPCCore.
  var rpcError: RPCError {
    if let error = self as? RPCError { return error }
    if let error = self as? ShimError { return error.rpcError }
    return RPCError(code: .unknown, message: "\(self)", cause: self)
  }
}
