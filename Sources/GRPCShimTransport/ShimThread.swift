internal import Foundation

/// Threads of the transport's own for the shim's few blocking calls (grpc++'s server shutdown
/// and wait, the channel's connect wait).
///
/// These calls can block until Swift tasks finish calls; run on the cooperative pool (two
/// threads on two cores) they would hold the very threads those tasks need. Each call gets a
/// fresh thread: they are rare (a server's shutdown, a client's first connect), and a thread
/// that is stuck cannot hold up another.
enum ShimThread {
  /// Runs `body` on a new thread and returns without waiting for it.
  static func detach(name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread {
      // Named from inside: on Linux a name set before start() does not reach the thread.
      Thread.current.name = name
      body()
    }
    thread.start()
  }

  /// Runs `body` on a new thread and waits, without holding a thread of the cooperative pool,
  /// for what it returns.
  static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
      Self.detach(name: name) { continuation.resume(returning: body()) }
    }
  }
}
