import Foundation
import GRPCCore
import GRPCShimTransport
import Synchronization
import Testing
import VaneTestSupport

@testable import GRPCShimTransport

/// A flag tasks can share.
private final class Flag: Sendable {
  let raised = Atomic<Bool>(false)
}

/// Shutdown always ends: on a cooperative pool that is kept busy, with handlers that ignore
/// cancellation, and when the task serving the calls is cancelled.
@Suite("Server shutdown is bounded", .timeLimit(.minutes(3)))
struct ShutdownTests {
  @Test(
    "Live calls: a call is kept until it is done; once draining, new calls are refused and not kept",
    arguments: [
      // (calls begun before draining, of which ended, begun while draining) -> live count
      (3, 1, 2, 2),
      (1, 1, 5, 0),
      (0, 0, 1, 0),
      (4, 0, 0, 4),
    ]
  )
  func liveCalls(before: Int, ended: Int, whileDraining: Int, expectedLive: Int) {
    final class Call {}
    var calls = LiveCalls<Call>()
    var begun: [Call] = []
    for _ in 0 ..< before {
      let call = Call()
      let kept = calls.begin(call, id: ObjectIdentifier(call))
      #expect(kept)
      begun.append(call)
    }
    for call in begun.prefix(ended) { calls.end(id: ObjectIdentifier(call)) }
    calls.startDraining()
    var refused: [Call] = []
    for _ in 0 ..< whileDraining {
      let call = Call()
      let kept = calls.begin(call, id: ObjectIdentifier(call))
      #expect(!kept)
      refused.append(call)
      // on_done of a refused call ends an id that was never kept: nothing changes.
      calls.end(id: ObjectIdentifier(call))
    }
    #expect(calls.count == expectedLive)
    #expect(calls.live.count == expectedLive)
    #expect(calls.draining)
  }

  /// Keeps every thread of the cooperative pool busy (work that yields now and then, as real
  /// handlers' numeric loops would) until `body` returns.
  private func whileCooperativePoolIsBusy<R: Sendable>(
    _ body: @Sendable () async throws -> R
  ) async throws -> R {
    let stop = Flag()
    return try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0 ..< (2 * ProcessInfo.processInfo.activeProcessorCount) {
        group.addTask {
          var x: UInt64 = 1
          while !stop.raised.load(ordering: .relaxed) {
            // About a millisecond of arithmetic, then give way.
            for i in 0 ..< 200_000 { x = x &* 6364136223846793005 &+ UInt64(i) }
            await Task.yield()
          }
          _ = x
        }
      }
      defer { stop.raised.store(true, ordering: .relaxed) }
      let result = try await body()
      stop.raised.store(true, ordering: .relaxed)
      try await group.waitForAll()
      return result
    }
  }

  @Test(
    "Sixteen servers started and stopped at once, with calls in flight, on a busy cooperative pool"
  )
  func manyServersBusyPool() async throws {
    let answers = try await self.whileCooperativePoolIsBusy {
      try await withThrowingTaskGroup(of: Int.self) { group in
        for index in 0 ..< 16 {
          group.addTask {
            let observations = Observations()
            return try await withServer(
              .shim,
              services: [EchoService(observations: observations)],
              serverConfig: { $0.shutdownGracePeriod = .milliseconds(200) }
            ) { client, server in
              // Whatever happens below, the held handler must end, or the server's task never does.
              defer { observations.releaseHolds() }
              // A call that is still running when the shutdown starts, whose handler only
              // ends once released: the drain must end it for the client.
              let held = Task {
                await statusCode {
                  _ = try await client.unary(
                    request: ClientRequest(message: ""),
                    descriptor: EchoService.hold,
                    serializer: UTF8Serializer(),
                    deserializer: UTF8Deserializer(),
                    options: .defaults
                  ) { try $0.message }
                }
              }
              var answered = 0
              for call in 0 ..< 5 {
                let echo = try await client.unary(
                  request: ClientRequest(message: "\(index)-\(call)"),
                  descriptor: EchoService.get,
                  serializer: UTF8Serializer(),
                  deserializer: UTF8Deserializer(),
                  options: .defaults
                ) { try $0.message }
                if echo == "\(index)-\(call)" { answered += 1 }
              }
              await observations.wait { started, _ in started >= 1 }
              server.shutdown()
              let code = await held.value
              // The client saw the call end (UNAVAILABLE from the drain) while its handler was
              // still waiting; now let the handler return so the server's task can end.
              observations.releaseHolds()
              return code == .unavailable ? answered : -1
            }
          }
        }
        return try await group.reduce(into: [Int]()) { $0.append($1) }
      }
    }
    #expect(answers == Array(repeating: 5, count: 16))
  }

  @Test("Cancelling the task that serves ends every call in flight and returns")
  func cancelledServe() async throws {
    let observations = Observations()
    let transport = ShimServerTransport(
      config: .init(address: "127.0.0.1:0", shutdownGracePeriod: .seconds(30))
    )
    let server = GRPCServer(
      transport: transport,
      services: [EchoService(observations: observations)]
    )
    let serving = Task { try await server.serve() }
    defer { observations.releaseHolds() }
    let port = try await transport.listeningPort
    let client = try ShimClientTransport(config: .init(target: "127.0.0.1:\(port)"))
    let codes = try await withShortLivedClient(client) { client in
      try await withThrowingTaskGroup(of: Status.Code.self) { group in
        for _ in 0 ..< 8 {
          group.addTask {
            await statusCode {
              _ = try await client.unary(
                request: ClientRequest(message: ""),
                descriptor: EchoService.hold,
                serializer: UTF8Serializer(),
                deserializer: UTF8Deserializer(),
                options: .defaults
              ) { try $0.message }
            }
          }
        }
        await observations.wait { started, _ in started >= 8 }
        // No grace: the 30 s of the configuration are not waited for.
        serving.cancel()
        return try await group.reduce(into: [Status.Code]()) { $0.append($1) }
      }
    }
    observations.releaseHolds()
    _ = try? await serving.value
    #expect(codes.count == 8)
    #expect(codes.allSatisfy { $0 == .unavailable || $0 == .cancelled }, "\(codes)")
  }

  @Test(
    "A handler that never returns does not hold the drain: its call is ended for it and grpc++ shuts down"
  )
  func handlerThatNeverReturns() async throws {
    let transport = ShimServerTransport(
      config: .init(address: "127.0.0.1:0", shutdownGracePeriod: .milliseconds(100))
    )
    let entered = Observations()
    let gate = Observations()
    // A raw stream handler that neither reads, writes, nor notices cancellation until released:
    // nothing on the Swift side ever finishes its call.
    let listening = Task {
      try await transport.listen { _, _ in
        entered.recordStart()
        await gate.waitForRelease()
      }
    }
    defer { gate.releaseHolds() }
    let port = try await transport.listeningPort
    let client = try ShimClientTransport(config: .init(target: "127.0.0.1:\(port)"))
    let code = try await withShortLivedClient(client) { client in
      let call = Task {
        await statusCode {
          _ = try await client.unary(
            request: ClientRequest(message: "x"),
            descriptor: EchoService.get,
            serializer: UTF8Serializer(),
            deserializer: UTF8Deserializer(),
            options: .defaults
          ) { try $0.message }
        }
      }
      await entered.wait { started, _ in started >= 1 }
      transport.beginGracefulShutdown()
      return await call.value
    }
    #expect(code == .unavailable)
    // `listen` ends although the handler is still held: it is cancelled, waited for briefly,
    // and left to end on its own.
    let returned = Flag()
    let waiter = Task {
      try await listening.value
      returned.raised.store(true, ordering: .relaxed)
    }
    let deadline = ContinuousClock.now + .seconds(30)
    while !returned.raised.load(ordering: .relaxed), ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(10))
    }
    let ended = returned.raised.load(ordering: .relaxed)
    #expect(ended, "listen still waits for a handler that ignores cancellation")
    gate.releaseHolds()
    try await waiter.value
  }

  /// One step of the running-handler set: reserve an id, record its task, the task ends, or the
  /// set closes.
  enum HandlerStep: Sendable {
    case reserve, add, finish, close
  }

  @Test(
    "Running handlers' state: a task is kept from its recording to its end, in either order, and one recorded after the close is cancelled",
    arguments: [
      // (steps, kept at the end, cancelled by its recording, reserved)
      ([HandlerStep.reserve, .add], 1, false, true),
      ([.reserve, .add, .finish], 0, false, true),
      ([.reserve, .finish, .add], 0, false, true),
      ([.reserve, .close, .add], 1, true, true),
      ([.reserve, .close, .add, .finish], 0, true, true),
      ([.close, .reserve], 0, false, false),
    ]
  )
  func runningHandlerState(
    steps: [HandlerStep],
    kept: Int,
    cancelled: Bool,
    reserved: Bool
  ) {
    var state = RunningHandlers.State<Int>()
    var id: Int?
    var mustCancel = false
    let task = Task<Void, Never> {}
    for step in steps {
      switch step {
      case .reserve: id = state.reserve()
      case .add: mustCancel = state.add(id!, task)
      case .finish: _ = state.finished(id!)
      case .close: state.close()
      }
    }
    #expect(state.tasks.count == kept)
    #expect(state.finishedEarly.isEmpty)
    #expect(mustCancel == cancelled)
    #expect((id != nil) == reserved)
  }

  enum WaitStep: Sendable { case start, wait, finish, expire, expireOther }

  @Test(
    "Running handlers: cancelAll's wait is resumed once, by the last handler to return or by its own time limit",
    arguments: [
      // No handler running: no wait.
      ([.wait], nil, []),
      ([.start, .finish, .wait], nil, [nil]),
      // The last handler resumes the waiter; the expiry after it finds none.
      ([.start, .start, .wait, .finish, .finish, .expire], 1, [nil, 7, nil]),
      // The time limit resumes it; the handler returning later finds none.
      ([.start, .wait, .expire, .finish], 1, [7, nil]),
      // Another wait's time limit leaves it waiting.
      ([.start, .wait, .expireOther, .finish], 1, [nil, 7]),
    ] as [([WaitStep], Int?, [Int?])]
  )
  func cancelAllWait(steps: [WaitStep], number: Int?, resumed: [Int?]) {
    var state = RunningHandlers.State<Int>()
    let task = Task<Void, Never> {}
    var ids: [Int] = [], waited: Int?, results: [Int?] = []
    for step in steps {
      switch step {
      case .start:
        let id = state.reserve()!
        _ = state.add(id, task)
        ids.append(id)
      case .wait: waited = state.wait(7)
      case .finish: results.append(state.finished(ids.removeFirst()))
      case .expire: results.append(state.expire(waited ?? 1))
      case .expireOther: results.append(state.expire((waited ?? 1) + 1))
      }
    }
    #expect(waited == number)
    #expect(results.count == resumed.count && zip(results, resumed).allSatisfy { $0 == $1 })
  }

  @Test(
    "Running handlers: cancelAll from a cancelled task returns when the last handler does, not at its limit"
  )
  func cancelAllWhenCancelled() async throws {
    let handlers = RunningHandlers()
    handlers.start {
      // Returns a while after its cancellation.
      while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(2)) }
      try? await Task.sleep(for: .milliseconds(50))
    }
    let started = ContinuousClock.now
    let waiting = Task {
      withUnsafeCurrentTask { $0?.cancel() }
      return await handlers.cancelAll(waitingAtMost: .seconds(30))
    }
    #expect(await waiting.value == 0)
    #expect(ContinuousClock.now - started < .seconds(20))
  }

  @Test(
    "Running handlers: each is kept until it returns; cancelAll cancels and waits a bounded time"
  )
  func runningHandlers() async throws {
    let handlers = RunningHandlers()
    let gate = Observations()
    defer { gate.releaseHolds() }
    let noticed = Flag()
    // One returns at once, one notices cancellation, one ignores it until released.
    handlers.start {}
    handlers.start {
      while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(2)) }
      noticed.raised.store(true, ordering: .relaxed)
    }
    handlers.start { await gate.waitForRelease() }
    let started = ContinuousClock.now
    let left = await handlers.cancelAll(waitingAtMost: .milliseconds(300))
    let cancelled = noticed.raised.load(ordering: .relaxed)
    #expect(left == 1 && cancelled)
    #expect(ContinuousClock.now - started >= .milliseconds(300))
    gate.releaseHolds()
    #expect(await handlers.cancelAll(waitingAtMost: .seconds(30)) == 0)
  }
}
