internal import CGRPCShim
internal import GRPCCore

/// One message written through the shim's outbound queue, with its flow control: when the
/// queue reports itself full, the writer waits until it drains (or the call ends).
enum ShimWrite {
  static func send(
    _ bytes: [UInt8],
    waitWritable: () async -> Bool,
    _ write: (
      UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<Int32>, UnsafeMutablePointer<vane_shim_error>
    ) -> Int32
  ) async throws {
    var mustWait: Int32 = 0
    do {
      try bytes.withUnsafeBufferPointer { buffer in
        try ShimError.check("writing a message") {
          write(buffer.baseAddress, buffer.count, &mustWait, $0)
        }
      }
    } catch {
      throw error.rpcError
    }
    if mustWait != 0, !(await waitWritable()) {
      throw RPCError(code: .cancelled, message: "The call ended while a write was waiting.")
    }
  }
}
