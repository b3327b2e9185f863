public import Foundation
import Synchronization
import VaneCore

#if canImport(Glibc)
public import Glibc
#endif

/// Loopback ports for tests that start servers: drawn so that tests running at once never get
/// the same one.
public enum LoopbackPorts {
  /// `count` consecutive ports that are free now, below the kernel's ephemeral range (so that
  /// no outgoing connection takes one meanwhile).
  ///
  /// A port handed out once is never handed out again in this process: free when checked is
  /// not enough, since a test that has not bound its port yet leaves it free for the next
  /// caller (a stack's fifteen ports once took one that another test was about to serve on).
  public static func freeConsecutive(_ count: Int) throws -> Int {
    for _ in 0 ..< 200 {
      let base = Int.random(in: 20_000 ... (32_000 - count))
      let ports = base ..< (base + count)
      let taken = Self.handedOut.withLock { handedOut in
        guard ports.allSatisfy({ !handedOut.contains($0) }) else { return false }
        handedOut.formUnion(ports)
        return true
      }
      guard taken else { continue }
      if ports.allSatisfy({ Self.isFree($0) }) { return base }
    }
    throw VaneError(.unavailable, "no \(count) consecutive free ports")
  }

  private static let handedOut = Mutex<Set<Int>>([])

  public static func isFree(_ port: Int) -> Bool {
    Self.withLoopbackSocket(port) { fd, address, length in bind(fd, address, length) == 0 }
  }

  /// Whether a server accepts connections on the loopback port.
  public static func isListening(_ port: Int) -> Bool {
    Self.withLoopbackSocket(port) { fd, address, length in connect(fd, address, length) == 0 }
  }

  /// A new TCP socket and 127.0.0.1:`port`, for `body` (the socket is closed after).
  public static func withLoopbackSocket(
    _ port: Int,
    _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool
  ) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
  }

  /// A port that is free now, drawn at random below the kernel's ephemeral range: two tests
  /// asking at once get different ports (bind(0) hands a port just closed to the next caller,
  /// and two servers started on it would make one test talk to the other's server).
  public static func free() throws -> Int {
    try Self.freeConsecutive(1)
  }
}
