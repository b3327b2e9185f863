import Foundation
import GRPCCore
import Testing
import VaneCore
import VaneMath
import VaneRuntime

@Suite("Core: errors at the service edge, BLAS")
struct CoreTests {
  @Test(
    "Domain errors become the gRPC status their code names, keeping message and cause",
    arguments: [
      (VaneError.Code.invalidArgument, RPCError.Code.invalidArgument), (.notFound, .notFound),
      (.failedPrecondition, .failedPrecondition), (.unavailable, .unavailable),
      (.unimplemented, .unimplemented),
      (.permissionDenied, .permissionDenied), (.unauthenticated, .unauthenticated),
      (.internalError, .internalError),
    ]
  )
  func errorMapping(code: VaneError.Code, expected: RPCError.Code) async {
    struct Underlying: Error {}
    let error = VaneError(code, "something about it", cause: Underlying())
    await #expect {
      try await serviceEdge { () async throws -> Int in throw error }
    } throws: { thrown in
      guard let rpc = thrown as? RPCError else { return false }
      return rpc.code == expected && rpc.message == "something about it" && rpc.cause is Underlying
    }
  }

  @Test("Bad input names the field and the reason")
  func invalidArgumentWording() {
    let error = VaneError.invalidArgument(field: "spec.walk_forward.test_bars", "must be > 0")
    #expect(error.code == .invalidArgument)
    #expect(error.message == "spec.walk_forward.test_bars: must be > 0")
  }

  @Test("Errors that are not domain errors pass the edge unchanged")
  func otherErrorsPass() async {
    await #expect {
      try await serviceEdge { () async throws -> Int in throw RPCError(code: .aborted, message: "x")
      }
    } throws: { ($0 as? RPCError)?.code == .aborted }
  }

  @Test("BLAS: dot, axpy and matmul against closed forms")
  func blas() {
    BLAS.setThreadCount(1)
    #expect(BLAS.threadCount == 1)
    #expect(BLAS.dot([1, 2, 3], [4, 5, 6]) == 32)
    var y: [Double] = [1, 1, 1]
    BLAS.axpy(2, [1, 2, 3], &y)
    #expect(y == [3, 5, 7])
    // [[1, 2], [3, 4]] · [[5, 6], [7, 8]] = [[19, 22], [43, 50]]
    #expect(BLAS.matmul([1, 2, 3, 4], [5, 6, 7, 8], m: 2, k: 2, n: 2) == [19, 22, 43, 50])
    // A 2×3 by 3×1 product exercises non-square leading dimensions.
    #expect(BLAS.matmul([1, 0, 2, 0, 1, 1], [3, 4, 5], m: 2, k: 3, n: 1) == [13, 9])
  }
}

@Suite("Blocking pool")
struct BlockingPoolTests {
  @Test("Work runs on the pool's own threads, results and errors come back, many jobs at once")
  func runs() async throws {
    let pool = BlockingPool(threads: 2)
    let name = try await pool.run { Thread.current.name ?? "" }
    #expect(name.hasPrefix("vane-blocking-"))
    await #expect(throws: VaneError.self) {
      _ = try await pool.run { throw VaneError(.internalError, "boom") }
    }
    let sums = try await withThrowingTaskGroup(of: Int.self) { group in
      for i in 0 ..< 64 { group.addTask { try await pool.run { (0 ... i).reduce(0, +) } } }
      return try await group.reduce(into: [Int]()) { $0.append($1) }
    }
    #expect(Set(sums) == Set((0 ..< 64).map { $0 * ($0 + 1) / 2 }))
  }
}
