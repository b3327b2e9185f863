import GRPCCore
import VaneTestSupport
import Synchronization

/// UTF-8 strings as messages: the transport tests need no generated code.
struct UTF8Serializer: MessageSerializer {
  func serialize<Bytes: GRPCContiguousBytes>(_ message: String) throws -> Bytes {
    Bytes(Array(message.utf8))
  }
}

struct UTF8Deserializer: MessageDeserializer {
  func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> String {
    bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
  }
}

/// Raw bytes as messages, for the large-message tests.
struct BytesSerializer: MessageSerializer {
  func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
}

struct BytesDeserializer: MessageDeserializer {
  func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] {
    bytes.withUnsafeBytes { Array($0) }
  }
}

/// What the server side observed, for tests that check a client action reached the handler.
final class Observations: Sendable {
  private struct State {
    var started = 0
    var cancelled = 0
    var waiters:
      [(predicate: @Sendable (Int, Int) -> Bool, continuation: CheckedContinuation<Void, Never>)] =
        []
  }
  private let state = Mutex(State())
  /// Handlers of `Hold` wait for this before they answer.
  let release = Mutex<[CheckedContinuation<Void, Never>]>([])
  let released = Mutex(false)
  /// What refused a handler's write (`Twice`), if anything did.
  let refusals = Mutex<[String]>([])

  func recordRefusal(_ error: String) { self.refusals.withLock { $0.append(error) } }
  func recordStart() { self.update { $0.started += 1 } }
  func recordCancel() { self.update { $0.cancelled += 1 } }

  var counts: (started: Int, cancelled: Int) { self.state.withLock { ($0.started, $0.cancelled) } }

  private func update(_ change: (inout State) -> Void) {
    let ready = self.state.withLock { state in
      change(&state)
      let (started, cancelled) = (state.started, state.cancelled)
      let ready = state.waiters.filter { $0.predicate(started, cancelled) }.map(\.continuation)
      state.waiters.removeAll { $0.predicate(started, cancelled) }
      return ready
    }
    ready.forEach { $0.resume() }
  }

  /// Waits until the counts satisfy `predicate`.
  func wait(until predicate: @escaping @Sendable (_ started: Int, _ cancelled: Int) -> Bool) async {
    await withCheckedContinuation { continuation in
      let now = self.state.withLock { state in
        if predicate(state.started, state.cancelled) { return true }
        state.waiters.append((predicate, continuation))
        return false
      }
      if now { continuation.resume() }
    }
  }

  /// Lets every `Hold` handler (waiting now or later) answer.
  func releaseHolds() {
    self.released.withLock { $0 = true }
    let waiting = self.release.withLock { list in
      defer { list.removeAll() }
      return list
    }
    waiting.forEach { $0.resume() }
  }

  func waitForRelease() async {
    await withCheckedContinuation { continuation in
      let go = self.released.withLock { released in
        if released { return true }
        self.release.withLock { $0.append(continuation) }
        return false
      }
      if go { continuation.resume() }
    }
  }
}

/// A service with one method per behaviour the transport must carry.
struct EchoService: RegistrableRPCService {
  static let service = "vane.test.Echo"
  // Typed as they are in generated code: the shim's server serves a unary method through
  // grpc++'s unary handler, any other one streamed both ways.
  static let get = MethodDescriptor(fullyQualifiedService: service, method: "Get", type: .unary)
  static let collect = MethodDescriptor(
    fullyQualifiedService: service,
    method: "Collect",
    type: .clientStreaming
  )
  static let expand = MethodDescriptor(
    fullyQualifiedService: service,
    method: "Expand",
    type: .serverStreaming
  )
  static let update = MethodDescriptor(
    fullyQualifiedService: service,
    method: "Update",
    type: .bidirectionalStreaming
  )
  static let fail = MethodDescriptor(fullyQualifiedService: service, method: "Fail", type: .unary)
  static let waitForCancel = MethodDescriptor(
    fullyQualifiedService: service,
    method: "WaitForCancel",
    type: .unary
  )
  static let hold = MethodDescriptor(fullyQualifiedService: service, method: "Hold", type: .unary)
  static let size = MethodDescriptor(fullyQualifiedService: service, method: "Size", type: .unary)
  static let large = MethodDescriptor(fullyQualifiedService: service, method: "Large", type: .unary)
  static let badTrailers = MethodDescriptor(
    fullyQualifiedService: service,
    method: "BadTrailers",
    type: .unary
  )
  /// Unary, but answers OK without a message.
  static let silent = MethodDescriptor(
    fullyQualifiedService: service,
    method: "Silent",
    type: .unary
  )
  /// Unary, but tries to answer twice; records whether the second write was refused.
  static let twice = MethodDescriptor(fullyQualifiedService: service, method: "Twice", type: .unary)
  /// "Get" registered without a type: the server streams it both ways.
  static let untypedGet = MethodDescriptor(fullyQualifiedService: service, method: "UntypedGet")

  let observations: Observations

  func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
    // Unary: echoes the message; echoes "x-echo" metadata back as initial and trailing metadata.
    router.registerHandler(
      forMethod: Self.get,
      deserializer: UTF8Deserializer(),
      serializer: UTF8Serializer()
    ) {
      request,
      _ in
      let message = try await request.messages.reduce(into: [String]()) { $0.append($1) }
      var echoed: Metadata = [:]
      for value in request.metadata[stringValues: "x-echo"] {
        echoed.addString(value, forKey: "x-echo")
      }
      for value in request.metadata[binaryValues: "x-echo-bin"] {
        echoed.addBinary(value, forKey: "x-echo-bin")
      }
      let reply = echoed
      return StreamingServerResponse(metadata: reply) { writer in
        try await writer.write(message.joined(separator: "|"))
        return reply
      }
    }
    // Client streaming: joins every message.
    router.registerHandler(
      forMethod: Self.collect,
      deserializer: UTF8Deserializer(),
      serializer: UTF8Serializer()
    ) {
      request,
      _ in
      var parts: [String] = []
      for try await message in request.messages { parts.append(message) }
      let joined = parts.joined(separator: " ")
      return StreamingServerResponse { writer in
        try await writer.write(joined)
        return [:]
      }
    }
    // Server streaming: one message per word of the request.
    router.registerHandler(
      forMethod: Self.expand,
      deserializer: UTF8Deserializer(),
      serializer: UTF8Serializer()
    ) {
      request,
      _ in
      var words: [String] = []
      for try await message in request.messages {
        words += message.split(separator: " ").map(String.init)
      }
      let allWords = words
      return StreamingServerResponse { writer in
        for word in allWords { try await writer.write(word) }
        return [:]
      }
    }
    // Bidirectional: answers each message as it arrives.
    router.registerHandler(
      forMethod: Self.update,
      deserializer: UTF8Deserializer(),
      serializer: UTF8Serializer()
    ) {
      request,
      _ in
      StreamingServerResponse { writer in
        for try await message in request.messages { try await writer.write("echo:" + message) }
        return [:]
      }
    }
    // Fails with the code, message and trailing metadata the request asks for.
    router.registerHandler(
      forMethod: Self.fail,
      deserializer: UTF8Deserializer(),
      serializer: UTF8Serializer()
    ) {
      request,
      _ in
      var trailers: Metadata = ["x-reason": "asked-to-fail"]
      trailers.addBinary([0, 1, 2, 255], forKey: "x-detail-bin")
      throw RPCError(
        code: .failedPrecondition,
        message: "gate 'min_auc' failed: 0.51 < 0.55",
        metadata: trailers
      )
    }
    // Fails with trailing metadata that HTTP/2 cannot carry (a non-ASCII text value).
    router.registerHandler(
      forMethod: Self.badTrailers,
      deserializer: UTF8Deserializer(),
      serializer: UTF8Serializer()
    ) {
      _,
      _ in
      throw RPCError(code: .aborted, message: "conflict", metadata: ["x-note": "café\n"])
    }
    router.registerHandler(
      forMethod: Self.silent,
      deserializer: UTF8Deserializer(),
      serializer: UTF8Serializer()
    ) {
      _,
      _ in
      StreamingServerResponse { _ in [:] }
    }
    router.registerHandler(
      forMethod: Self.twice,
      deserializer: UTF8Deserializer(),
      serializer: UTF8Serializer()
    ) {
      request,
      _ in
      let message = try await request.messages.reduce(into: "") { $0 += $1 }
      let observations = self.observations
      return StreamingServerResponse { writer in
        try await writer.write(message)
        do {
          try await writer.write(message)
        } catch {
          observations.recordRefusal("\(error)")
          throw error
        }
        return [:]
      }
    }
    router.registerHandler(
      forMethod: Self.untypedGet,
      deserializer: UTF8Deserializer(),
      serializer: UTF8Serializer()
    ) {
      request,
      _ in
      let message = try await request.messages.reduce(into: [String]()) { $0.append($1) }
      return StreamingServerResponse(metadata: ["x-shape": "streamed"]) { writer in
        try await writer.write(message.joined(separator: "|"))
        return ["x-end": "streamed"]
      }
    }
    // Waits until the call is cancelled, and records that the handler saw it.
    router.registerHandler(
      forMethod: Self.waitForCancel,
      deserializer: UTF8Deserializer(),
      serializer: UTF8Serializer()
    ) {
      request,
      context in
      let observations = self.observations
      observations.recordStart()
      await withRPCCancellationHandler {
        while !context.cancellation.isCancelled, !Task.isCancelled {
          try? await Task.sleep(for: .milliseconds(5))
        }
      } onCancelRPC: {
        observations.recordCancel()
      }
      return StreamingServerResponse(error: RPCError(code: .cancelled, message: "cancelled"))
    }
    // Answers only once the test releases it (for graceful-shutdown tests).
    router.registerHandler(
      forMethod: Self.hold,
      deserializer: UTF8Deserializer(),
      serializer: UTF8Serializer()
    ) {
      request,
      _ in
      let observations = self.observations
      observations.recordStart()
      await observations.waitForRelease()
      return StreamingServerResponse { writer in
        try await writer.write("released")
        return [:]
      }
    }
    // Replies with the size of the request.
    router.registerHandler(
      forMethod: Self.size,
      deserializer: BytesDeserializer(),
      serializer: UTF8Serializer()
    ) {
      request,
      _ in
      var total = 0
      for try await message in request.messages { total += message.count }
      let size = total
      return StreamingServerResponse { writer in
        try await writer.write("\(size)")
        return [:]
      }
    }
    // Replies with as many bytes as the request's number says.
    router.registerHandler(
      forMethod: Self.large,
      deserializer: UTF8Deserializer(),
      serializer: BytesSerializer()
    ) {
      request,
      _ in
      var count = 0
      for try await message in request.messages { count = Int(message) ?? 0 }
      let wanted = count
      return StreamingServerResponse { writer in
        try await writer.write([UInt8](repeating: 0x5A, count: wanted))
        return [:]
      }
    }
  }
}
