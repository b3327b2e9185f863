public import GRPCCore
internal import CGRPCShim
internal import Synchronization
internal import Foundation

/// A `GRPCCore.ServerTransport` over grpc++ (through the C shim).
///
/// Every method the `GRPCServer` routes is registered with grpc++ as a named method, so server
/// reflection lists its service; grpc++'s default health service and v1alpha reflection are
/// served beside them. All four call kinds run as one bidirectional stream.
public final class ShimServerTransport: ServerTransport, Sendable {
  public typealias Bytes = [UInt8]

  /// How the server listens and what it serves besides the routed methods.
  public struct Config: Sendable {
    /// "host:port"; port 0 picks a free port (see ``listeningPort``).
    public var address: String
    /// nil listens in plaintext.
    public var tls: ShimServerTLS?
    public var messageLimits: ShimMessageLimits
    public var keepalive: ShimKeepalive
    /// Serves grpc.health.v1.Health (see ``setServing(_:service:)``).
    public var health: Bool
    /// Serialized `FileDescriptorProto`s to describe through server reflection; nil turns
    /// reflection off.
    public var reflectionFiles: [[UInt8]]?
    /// How long in-flight calls may run after ``beginGracefulShutdown()`` before they are
    /// cancelled.
    public var shutdownGracePeriod: Duration

    public init(
      address: String,
      tls: ShimServerTLS? = nil,
      messageLimits: ShimMessageLimits = .defaults,
      keepalive: ShimKeepalive = .defaults,
      health: Bool = true,
      reflectionFiles: [[UInt8]]? = nil,
      shutdownGracePeriod: Duration = .seconds(10)
    ) {
      self.address = address
      self.tls = tls
      self.messageLimits = messageLimits
      self.keepalive = keepalive
      self.health = health
      self.reflectionFiles = reflectionFiles
      self.shutdownGracePeriod = shutdownGracePeriod
    }
  }

  private enum Phase {
    case idle
    case listening(ShimServerHandle)
    case shuttingDown(ShimServerHandle)
    case stopped
  }

  private struct State {
    /// Every routed method path, with how each side of its calls is shaped.
    var shapes: [String: CallShape] = [:]
    var phase: Phase = .idle
    /// Health statuses set before the server started; applied once it listens.
    var pendingHealth: [String: Bool] = [:]
    var portWaiters: [CheckedContinuation<Int, any Error>] = []
    var port: Result<Int, any Error>?
  }

  public let config: Config
  private let state = Mutex(State())

  public init(config: Config) {
    self.config = config
  }

  public func configure(context: GRPCServerContext) {
    var shapes: [String: CallShape] = [:]
    for method in context.methods {
      shapes["/" + method.fullyQualifiedMethod] = CallShape(method)
    }
    self.state.withLock { $0.shapes = shapes }
  }

  /// The port the server listens on, once it does. Throws if the server failed to start.
  public var listeningPort: Int {
    get async throws {
      try await withCheckedThrowingContinuation { continuation in
        let ready: Result<Int, any Error>? = self.state.withLock { state in
          if let port = state.port { return port }
          state.portWaiters.append(continuation)
          return nil
        }
        if let ready { continuation.resume(with: ready) }
      }
    }
  }

  /// Sets the health status of `service` ("" is the server as a whole). Before the server
  /// starts, the status is remembered and applied when it does.
  public func setServing(_ serving: Bool, service: String) throws {
    let handle: ShimServerHandle? = self.state.withLock { state in
      switch state.phase {
      case .idle:
        state.pendingHealth[service] = serving
        return nil
      case .listening(let handle):
        return handle
      case .shuttingDown(let handle):
        // Draining owns health from here on: nothing turns it back to SERVING.
        return serving ? nil : handle
      case .stopped:
        return nil
      }
    }
    try handle?.setServing(serving, service: service)
  }

  public func listen(
    streamHandler:
      @escaping @Sendable (
        _ stream: RPCStream<Inbound, Outbound>,
        _ context: ServerContext
      ) async -> Void
  ) async throws {
    // Shut down before it started listening: there is nothing to serve.
    if self.state.withLock({ if case .stopped = $0.phase { true } else { false } }) { return }
    let (stopped, stoppedSink) = AsyncStream<Never>.makeStream()
    let handle: ShimServerHandle
    do {
      if let files = self.config.reflectionFiles {
        for file in files { try ShimDescriptorPool.add(file) }
      }
      let shapes = self.state.withLock { $0.shapes }
      // Building can block: grpc++ starts servers one at a time behind a process-wide lock, and
      // a failed bind shuts down and waits. Sixteen servers starting at once must not hold the
      // cooperative pool while they queue.
      let config = self.config
      handle = try await ShimThread.run(name: "vane-shim-start") {
        Result {
          try ShimServerHandle(
            config: config,
            shapes: shapes,
            handler: streamHandler,
            stopped: stoppedSink
          )
        }
      }.get()
    } catch {
      self.resolvePort(.failure(error))
      throw error
    }

    let (pending, stoppedMeanwhile) = self.state.withLock { state in
      if case .stopped = state.phase { return (state.pendingHealth, true) }
      state.phase = .listening(handle)
      return (state.pendingHealth, false)
    }
    if stoppedMeanwhile {
      // A shutdown arrived while the server was being built: it never serves a call.
      await ShimThread.run(name: "vane-shim-shutdown") { handle.drain(grace: .zero) }
      return
    }
    for (service, serving) in pending { try? handle.setServing(serving, service: service) }
    self.resolvePort(.success(handle.port))

    await withTaskCancellationHandler {
      // Calls start their handlers from the shim's callbacks; this waits for the drain.
      for await _ in stopped {}
      // The drain is over: every call was finished, by its handler or for it. Handlers still
      // running answer no one; they are cancelled, and one that ignores it is left to end on
      // its own after a short wait rather than holding the server's shutdown.
      _ = await handle.handlers.cancelAll(waitingAtMost: Self.handlerExitWait)
    } onCancel: {
      // Cancelling `listen` closes connections abruptly: no grace.
      self.shutdown(grace: .zero)
    }
    self.state.withLock { $0.phase = .stopped }
  }

  /// How long `listen` waits, once the drain is over, for cancelled handlers to return.
  static let handlerExitWait: Duration = .seconds(1)

  public func beginGracefulShutdown() {
    self.shutdown(grace: self.config.shutdownGracePeriod)
  }

  private func shutdown(grace: Duration) {
    let handle: ShimServerHandle? = self.state.withLock { state in
      switch state.phase {
      case .listening(let handle):
        state.phase = .shuttingDown(handle)
        return handle
      case .idle:
        state.phase = .stopped
        return nil
      case .shuttingDown, .stopped:
        return nil
      }
    }
    if let handle {
      // Draining blocks (grpc++'s Shutdown waits until every call is finished from Swift), so
      // it must not hold a thread of the cooperative pool that those finishes may need.
      ShimThread.detach(name: "vane-shim-shutdown") {
        handle.drain(grace: grace)
        handle.finishAccepting()
      }
    } else {
      self.resolvePort(
        .failure(
          RPCError(code: .unavailable, message: "The server was shut down before it started.")
        )
      )
    }
  }

  /// Settles the listening port once (the first result wins) and wakes everyone waiting for it.
  private func resolvePort(_ result: Result<Int, any Error>) {
    let (settled, waiters) = self.state.withLock { state in
      if state.port == nil { state.port = result }
      defer { state.portWaiters.removeAll() }
      return (state.port!, state.portWaiters)
    }
    for waiter in waiters { waiter.resume(with: settled) }
  }

  static func peerName(address: String, port: Int) -> String {
    let host = address.split(separator: ":", omittingEmptySubsequences: false).dropLast().joined(
      separator: ":"
    )
    if host.hasPrefix("[") { return "ipv6:\(host):\(port)" }
    return "ipv4:\(host.isEmpty ? "0.0.0.0" : host):\(port)"
  }
}

/// Adds descriptors to the C++ generated pool, for server reflection.
enum ShimDescriptorPool {
  static func add(_ file: [UInt8]) throws {
    try file.withUnsafeBufferPointer { buffer in
      try ShimError.check("adding a descriptor for reflection") {
        vane_shim_descriptor_pool_add_file(buffer.baseAddress, buffer.count, $0)
      }
    }
  }
}

/// Owns one `vane_shim_server` and the context its callbacks receive.
final class ShimServerHandle: Sendable {
  // The shim is thread-safe; the pointer is immutable for the life of this object.
  nonisolated(unsafe) private let server: OpaquePointer
  private let sink: Unmanaged<CallSink>
  let port: Int

  /// What `on_call` hands new calls to. Retained by the handle for the server's lifetime.
  final class CallSink: Sendable {
    typealias Handler =
      @Sendable (
        RPCStream<ShimServerTransport.Inbound, ShimServerTransport.Outbound>, ServerContext
      ) async -> Void

    let shapes: [String: CallShape]
    let handler: Handler
    /// Finished once no call can arrive any more; `listen` waits for it.
    let stopped: AsyncStream<Never>.Continuation
    /// Calls between on_call and on_done, and whether new calls are being turned away.
    let calls = CallRegistry()
    /// The handler of each call, in a task of its own.
    let handlers = RunningHandlers()
    /// The server's own address as a peer name; known once it has bound its port.
    let localPeer = Mutex("")

    init(
      shapes: [String: CallShape],
      handler: @escaping Handler,
      stopped: AsyncStream<Never>.Continuation
    ) {
      self.shapes = shapes
      self.handler = handler
      self.stopped = stopped
    }

    /// Starts the call's handler: one task, scheduled from the callback thread that has the
    /// call's request (or, for a streaming request, the call itself).
    func startHandler(_ call: ShimServerCall) {
      let localPeer = self.localPeer.withLock { $0 }
      let handler = self.handler
      let started = self.handlers.start {
        await call.run(localPeer: localPeer, handler: handler)
      }
      // `listen` is over: nothing serves the call.
      if !started { call.refuse() }
    }
  }

  /// The services the server routes, as health knows them.
  private let services: [String]

  /// Handlers of the server's calls, for `listen` to cancel once the drain is over.
  var handlers: RunningHandlers { self.sink.takeUnretainedValue().handlers }

  init(
    config: ShimServerTransport.Config,
    shapes: [String: CallShape],
    handler: @escaping CallSink.Handler,
    stopped: AsyncStream<Never>.Continuation
  ) throws {
    let methods = shapes.keys.sorted()
    let sinkBox = Unmanaged.passRetained(
      CallSink(shapes: shapes, handler: handler, stopped: stopped)
    )
    var callbacks = vane_shim_server_callbacks()
    callbacks.context = sinkBox.toOpaque()
    callbacks.on_call = { context, call, info in
      let sink = Unmanaged<CallSink>.fromOpaque(context!).takeUnretainedValue()
      let info = info!.pointee
      let method = String(
        decoding: UnsafeRawBufferPointer(start: info.method, count: info.method_length),
        as: UTF8.self
      )
      let shape = sink.shapes[method] ?? CallShape(unroutedPath: method)
      let serverCall = ShimServerCall(
        handle: call!,
        info: info,
        descriptor: shape.descriptor,
        readAhead: shape.requestReadAhead,
        sink: sink
      )
      if shape.singleResponse { serverCall.holdUntilFinish() }
      let user = Unmanaged.passRetained(serverCall).toOpaque()
      // Draining or shut down: refuse the call (its on_done releases `user`). Refused calls
      // are not kept: the drain waits only for real work.
      if !sink.calls.begin(serverCall) {
        serverCall.refuse()
        return user
      }
      if shape.singleRequest {
        // The handler can do nothing before its one message and the end of the request have
        // arrived: it starts from the callback that completes them, so that it never parks
        // on a read (each park and resume is a thread hop).
        serverCall.startHandlerWhenRequestIsRead()
        serverCall.readAhead()
      } else {
        // The request is read while the handler's task is being scheduled.
        serverCall.readAhead()
        sink.startHandler(serverCall)
      }
      return user
    }
    callbacks.on_read = { user, ok, bytes, length in
      let call = Unmanaged<ShimServerCall>.fromOpaque(user!).takeUnretainedValue()
      call.readCompleted(
        ok != 0 ? .message(Array(UnsafeBufferPointer(start: bytes, count: length))) : .end
      )
    }
    callbacks.on_writable = { user in
      Unmanaged<ShimServerCall>.fromOpaque(user!).takeUnretainedValue().becameWritable()
    }
    callbacks.on_cancel = { user in
      Unmanaged<ShimServerCall>.fromOpaque(user!).takeUnretainedValue().cancelled()
    }
    callbacks.on_done = { user in
      let call = Unmanaged<ShimServerCall>.fromOpaque(user!)
      call.takeUnretainedValue().done()
      call.release()
    }

    var error = vane_shim_error()
    let created: OpaquePointer? = withOptionalCStrings(
      config.tls?.certificateChainPEM,
      config.tls?.privateKeyPEM,
      config.tls?.clientCARootsPEM,
      nil
    ) { chain, key, roots, _ in
      var tls = vane_shim_server_tls(
        certificate_chain: chain,
        private_key: key,
        client_ca_roots: roots
      )
      return config.address.withCString { address in
        withUnsafePointer(to: &tls) { tlsPointer in
          var options = vane_shim_server_options()
          options.address = address
          options.tls = config.tls == nil ? nil : tlsPointer
          options.max_receive_message_bytes = ShimMessageLimits.cValue(
            config.messageLimits.maxReceiveBytes
          )
          options.max_send_message_bytes = ShimMessageLimits.cValue(
            config.messageLimits.maxSendBytes
          )
          options.keepalive_time_ms = ShimKeepalive.milliseconds(config.keepalive.time)
          options.keepalive_timeout_ms = ShimKeepalive.milliseconds(config.keepalive.timeout)
          options.keepalive_min_ping_interval_ms = ShimKeepalive.milliseconds(
            config.keepalive.minimumPingInterval
          )
          options.keepalive_permit_without_calls = config.keepalive.permitWithoutCalls ? 1 : 0
          options.enable_health = config.health ? 1 : 0
          options.enable_reflection = config.reflectionFiles == nil ? 0 : 1
          let cMethods = methods.map { strdup($0) }
          defer { cMethods.forEach { free($0) } }
          // A unary method's calls take grpc++'s unary path (see vane_shim_server_create).
          let unary = methods.map {
            shapes[$0].map { $0.singleRequest && $0.singleResponse } == true ? Int32(1) : 0
          }
          return cMethods.map { UnsafePointer($0) }.withUnsafeBufferPointer { methodPointers in
            unary.withUnsafeBufferPointer { unaryFlags in
              vane_shim_server_create(
                &options,
                methodPointers.baseAddress,
                unaryFlags.baseAddress,
                methodPointers.count,
                &callbacks,
                &error
              )
            }
          }
        }
      }
    }
    guard let created else {
      sinkBox.release()
      throw ShimError(operation: "starting a server on \(config.address)", error).rpcError
    }
    self.server = created
    self.sink = sinkBox
    self.port = Int(vane_shim_server_port(created))
    let localPeer = ShimServerTransport.peerName(address: config.address, port: self.port)
    sinkBox.takeUnretainedValue().localPeer.withLock { $0 = localPeer }
    var seen = Set<String>()
    self.services = methods.compactMap { path in
      path.split(separator: "/").first.map(String.init)
    }.filter { seen.insert($0).inserted }
  }

  func setServing(_ serving: Bool, service: String) throws {
    try service.withCString { name in
      try ShimError.check("setting health of '\(service)'") {
        vane_shim_server_set_serving(self.server, name, serving ? 1 : 0, $0)
      }
    }
  }

  /// How long handlers may take to end after the drain cancelled them, before their calls are
  /// ended for them.
  static let cancellationGrace: Duration = .seconds(1)

  /// Drains, blocking (call it on a ``ShimThread``, never on the cooperative pool): health turns
  /// NOT_SERVING and new calls are refused (UNAVAILABLE) while health and reflection keep
  /// answering. Once the calls in flight have finished, or `grace` has passed, what is left is
  /// cancelled; a call still not finished ``cancellationGrace`` later (its handler never ran,
  /// or ignores cancellation) is ended with UNAVAILABLE here. Only then does grpc++ shut down,
  /// so its wait for every call to be finished from Swift is bounded.
  func drain(grace: Duration) {
    for service in [""] + self.services { try? self.setServing(false, service: service) }
    let calls = self.sink.takeUnretainedValue().calls
    calls.startDraining()
    let clock = ContinuousClock()
    func waitUntilIdle(_ limit: Duration) -> Bool {
      let deadline = clock.now + limit
      while calls.count > 0 {
        if clock.now >= deadline { return false }
        usleep(2_000)
      }
      return true
    }
    if !waitUntilIdle(grace) {
      // As grpc++'s own Shutdown would, but while Swift can still be waited for.
      for call in calls.live { call.cancelled() }
      if !waitUntilIdle(Self.cancellationGrace) {
        for call in calls.live { call.abandon() }
      }
    }
    var error = vane_shim_error()
    _ = vane_shim_server_shutdown(self.server, 0, &error)
  }

  /// No more calls can arrive: `listen` may end.
  func finishAccepting() {
    self.sink.takeUnretainedValue().stopped.finish()
  }

  deinit {
    vane_shim_server_free(self.server)
    self.sink.release()
  }
}

/// How a method's two sides are shaped, which decides how the transport batches them.
struct CallShape: Sendable {
  /// The method, parsed once rather than from its path on every call.
  var descriptor: MethodDescriptor
  /// Request reads that may run ahead of the handler: 2 for a single request (its message and
  /// its end), 1 for a stream.
  var requestReadAhead: Int
  /// The request is one message: the handler starts once it and the end have been read.
  var singleRequest: Bool
  /// The response is one message: it is sent with the status as one batch.
  var singleResponse: Bool

  init(_ method: MethodDescriptor) {
    self.descriptor = method
    let type = method.type
    self.requestReadAhead = type.map { $0.isRequestStreaming ? 1 : 2 } ?? 1
    self.singleRequest = type.map { !$0.isRequestStreaming } ?? false
    self.singleResponse = type.map { !$0.isResponseStreaming } ?? false
  }

  /// A method the server does not route ("/pkg.Service/Method"): streamed both ways, so that
  /// the router can answer it (UNIMPLEMENTED) however the client shaped it.
  init(unroutedPath path: String) {
    let parts = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: true)
    self.init(
      MethodDescriptor(
        fullyQualifiedService: parts.first.map(String.init) ?? "",
        method: parts.count > 1 ? String(parts[1]) : ""
      )
    )
  }
}
