import Foundation
import GRPCCore
import GRPCShimTransport
import Testing
import VaneCore
import VaneTestSupport

/// The Swift client against a server written with plain grpc++ (vane-bench-cxx): a peer that
/// answers as fast as grpc++ can, so the whole response (headers, message, trailers) is usually
/// in before the client asks for any of it.
// Three minutes, as the other suites: alone it takes under a second, but the whole suite on two cores
// can hold the cooperative pool for a minute or more before its calls get a thread.
@Suite("Swift client against a plain grpc++ server", .timeLimit(.minutes(3)))
struct InteropTests {
  static let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    .deletingLastPathComponent().appendingPathComponent("vane-bench-cxx")

  @Test("Unary calls, sequential and 1,000 at once, get the server's bytes")
  func unaryAgainstCxx() async throws {
    let server = Process()
    server.executableURL = Self.binary
    server.arguments = [
      "server", "--address", "127.0.0.1:0", "--response-bytes", "100", "--ignore-stdin",
    ]
    let output = Pipe()
    server.standardOutput = output
    try server.run()
    defer {
      server.terminate()
      server.waitForExit()
    }
    let line = FileDescriptorReader.readLine(output.fileHandleForReading.fileDescriptor) ?? ""
    let port = try #require(
      Int(line.replacingOccurrences(of: "LISTENING ", with: "")),
      "server said '\(line)'"
    )
    let transport = try ShimClientTransport(config: .init(target: "127.0.0.1:\(port)"))
    let method = MethodDescriptor(
      fullyQualifiedService: "vane.test.Any",
      method: "Call",
      type: .unary
    )
    let sizes = try await withGRPCClient(transport: transport) { client in
      var sizes: [Int] = []
      for _ in 0 ..< 50 {
        sizes.append(
          try await client.unary(
            request: ClientRequest(message: [UInt8]()),
            descriptor: method,
            serializer: BytesSerializer(),
            deserializer: BytesDeserializer(),
            options: .defaults
          ) { try $0.message.count }
        )
      }
      try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0 ..< 1000 {
          group.addTask {
            try await client.unary(
              request: ClientRequest(message: [UInt8]()),
              descriptor: method,
              serializer: BytesSerializer(),
              deserializer: BytesDeserializer(),
              options: .defaults
            ) { try $0.message.count }
          }
        }
        for try await size in group { sizes.append(size) }
      }
      return sizes
    }
    #expect(sizes.count == 1050)
    #expect(sizes.allSatisfy { $0 == 100 })
  }
}
