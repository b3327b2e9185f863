import Foundation
import GRPCCore
import GRPCShimTransport
import Testing
import VaneTestSupport
import VaneCore
import VaneProto
import VaneRuntime

/// `x-request-id`: a call runs under the caller's id (or a new one), answers with it, and a
/// client inside a request passes it on.
@Suite("Request ids")
struct RequestIDTests {
  @Test(
    "A served call answers with the caller's x-request-id, a new one when it sent none or a bad one, and a client passes the current id on"
  )
  func overTheWire() async throws {
    let server = try await ServeProcess(.feature)
    defer { server.stop() }
    let transport = try ShimClientTransport(config: .init(target: server.address))
    let ids = try await withGRPCClient(
      transport: transport,
      interceptors: [RequestIDClientInterceptor()]
    ) { grpc -> [String?] in
      let client = Vane_V1_FeatureService.Client(wrapping: grpc)
      func answered(_ metadata: Metadata) async throws -> String? {
        try await client.getServiceInfo(.init(), metadata: metadata) { response in
          response.metadata[stringValues: RequestID.metadataKey].first(where: { _ in true })
        }
      }
      let given = try await answered([RequestID.metadataKey: "job-42"])
      let none = try await answered([:])
      let bad = try await answered([
        RequestID.metadataKey: .string(String(repeating: "x", count: 500))
      ])
      // Inside a request, the client interceptor sends the current id.
      let passed = try await RequestID.$current.withValue("pipeline-run-7") {
        try await answered([:])
      }
      return [given, none, bad, passed]
    }
    #expect(ids[0] == "job-42")
    #expect(
      ids[1].map { RequestID.validated($0) != nil && $0.count == 36 } == true,
      "\(String(describing: ids[1]))"
    )
    #expect(
      ids[2].map { $0.count == 36 } == true,
      "an unusable id is replaced: \(String(describing: ids[2]))"
    )
    #expect(ids[3] == "pipeline-run-7")
  }

  @Test(
    "Ids are 1-128 printable ASCII characters",
    arguments: [
      ("abc-123", true), ("", false), (String(repeating: "a", count: 128), true),
      (String(repeating: "a", count: 129), false), ("a b", false),
      ("é", false), ("line\nbreak", false),
    ]
  )
  func validation(text: String, valid: Bool) {
    #expect((RequestID.validated(text) != nil) == valid)
  }
}

@Suite("New request ids", .computeBound)
struct NewRequestIDTests {
  @Test("A new id is a lower-case version-4 UUID that Foundation reads back")
  func shape() throws {
    for _ in 0 ..< 1_000 {
      let id = RequestID.make()
      #expect(id.count == 36)
      #expect(id == id.lowercased())
      let uuid = try #require(UUID(uuidString: id), "\(id)")
      #expect(uuid.uuidString.lowercased() == id)
      let bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
      #expect(bytes[6] >> 4 == 4, "version nibble of \(id)")
      #expect(bytes[8] >> 6 == 0b10, "variant bits of \(id)")
    }
  }

  @Test("A time-ordered id is a version-7 UUID whose order is the time's, then the call order")
  func timeOrdered() throws {
    let start: Int64 = 1_765_000_000_000
    var previous = ""
    for step in 0 ..< 2_000 {
      // Several ids per millisecond, then the next millisecond.
      let millisecond = start + Int64(step / 7)
      let id = RequestID.makeTimeOrdered(unixMilliseconds: millisecond)
      let uuid = try #require(UUID(uuidString: id), "\(id)")
      #expect(uuid.uuidString.lowercased() == id)
      let bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
      #expect(bytes[6] >> 4 == 7, "version nibble of \(id)")
      #expect(bytes[8] >> 6 == 0b10, "variant bits of \(id)")
      #expect(bytes[0 ..< 6].reduce(Int64(0)) { $0 << 8 | Int64($1) } == millisecond)
      #expect(id > previous, "\(id) after \(previous)")
      previous = id
    }
    // The counter keeps ids apart even when the clock stands still or goes back.
    let frozen = (0 ..< 10_000).map { _ in RequestID.makeTimeOrdered(unixMilliseconds: start) }
    #expect(Set(frozen).count == frozen.count)
    #expect(frozen == frozen.sorted())
    // A prefix is written before the same form of id.
    let prefixed = RequestID.makeTimeOrdered(unixMilliseconds: start, prefix: "p")
    #expect(prefixed.count == 37 && prefixed.first == "p")
    let rest = String(prefixed.dropFirst())
    #expect(UUID(uuidString: rest)?.uuidString.lowercased() == rest)
    #expect(rest > frozen.last!)
  }

  @Test("New ids do not repeat, from one task or many")
  func unique() async {
    let batches = await withTaskGroup(of: [String].self) { group in
      for _ in 0 ..< 4 {
        group.addTask { (0 ..< 50_000).map { _ in RequestID.make() } }
      }
      return await group.reduce(into: [[String]]()) { $0.append($1) }
    }
    let all = batches.flatMap { $0 }
    #expect(Set(all).count == all.count)
  }
}

@Suite("Process-wide draws", .computeBound)
struct ProcessRandomTests {
  @Test("Draws from many tasks do not repeat, and their uniforms look uniform (mean, deciles)")
  func draws() async {
    let batches = await withTaskGroup(of: [UInt64].self) { group in
      for _ in 0 ..< 4 {
        group.addTask {
          var random = ProcessRandom()
          return (0 ..< 50_000).map { _ in random.next() }
        }
      }
      return await group.reduce(into: [[UInt64]]()) { $0.append($1) }
    }
    let all = batches.flatMap { $0 }
    #expect(Set(all).count == all.count)
    let uniforms = all.map { Double($0 >> 11) * 0x1p-53 }
    let mean = uniforms.reduce(0, +) / Double(uniforms.count)
    #expect(abs(mean - 0.5) < 0.005)
    var deciles = [Int](repeating: 0, count: 10)
    for u in uniforms { deciles[Int(u * 10)] += 1 }
    // 20,000 expected per decile; a binomial standard deviation is about 134.
    let widest = deciles.map { abs($0 - 20_000) }.max() ?? 0
    #expect(widest < 1_000, "\(deciles)")
  }
}
