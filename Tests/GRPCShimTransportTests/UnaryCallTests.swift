import GRPCCore
import Testing

@testable import GRPCShimTransport

/// A unary call goes out only when its request is half-closed (grpc++'s callback unary call), so
/// the shim makes up its ending when it never goes out. Nothing listens at the target: nothing
/// here may reach the network.
@Suite("Shim transport: unary calls that never go out", .timeLimit(.minutes(1)))
struct UnaryCallTests {
  func call() throws -> ShimClientCall {
    let channel = try ShimChannel(config: .init(target: "127.0.0.1:1"))
    return ShimClientCall(
      channel: channel,
      method: "/vane.test.Echo/Unary",
      waitForReady: false,
      readAhead: 2,
      singleRequest: true
    )
  }

  @Test(
    "Cancelled before its request is sent: no initial metadata, the end of the response, CANCELLED; a later write fails"
  )
  func cancelledBeforeSending() async throws {
    let call = try self.call()
    try call.start(metadata: ["x-a": "1"])
    try await call.write([1, 2, 3])
    call.cancel()
    #expect(await call.initialMetadata() == nil)
    #expect(await call.read() == .end)
    #expect(await call.finalStatus().status.code == .cancelled)
    await #expect(throws: RPCError.self) { try await call.write([4]) }
    call.writesDone()  // harmless once the call is over
  }

  @Test("Half-closed without its request message: INTERNAL, saying so")
  func halfClosedWithoutMessage() async throws {
    let call = try self.call()
    try call.start(metadata: [:])
    call.writesDone()
    #expect(await call.initialMetadata() == nil)
    #expect(await call.read() == .end)
    let final = await call.finalStatus()
    #expect(final.status.code == .internalError)
    #expect(final.status.message.contains("without its request message"))
  }

  @Test("A second request message is refused")
  func secondMessage() async throws {
    let call = try self.call()
    try call.start(metadata: [:])
    try await call.write([1])
    await #expect(throws: RPCError.self) { try await call.write([2]) }
    call.cancel()
    #expect(await call.finalStatus().status.code == .cancelled)
  }
}
