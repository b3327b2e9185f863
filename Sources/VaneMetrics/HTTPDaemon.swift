internal import CMicroHTTPD
internal import Foundation
internal import Synchronization
internal import VaneCore

/// One libmicrohttpd server (through the C shim): listening from `init` until `stop()` or
/// deinit. `handler` answers each GET or HEAD on the library's polling thread.
final class HTTPDaemon: Sendable {
  struct Response: Sendable {
    var status: UInt32
    var body: [UInt8]
    var contentType: String
  }

  /// The handler, kept alive for as long as the C server may call it.
  private final class Context: Sendable {
    let handler: @Sendable (String) -> Response
    init(_ handler: @escaping @Sendable (String) -> Response) { self.handler = handler }
  }

  /// The C server; only ever passed to the shim, which is safe to call from any thread.
  private struct Handle: @unchecked Sendable { let pointer: OpaquePointer }

  // Owned here: freed exactly once, by stop() or deinit.
  private let handle: Mutex<Handle?>
  private let context: Unmanaged<Context>
  /// The port it listens on (the one picked when asked for port 0).
  let port: Int

  /// - Throws: ``VaneError`` (`.invalidArgument`) naming the address when it cannot listen.
  init(host: String, port: Int, handler: @escaping @Sendable (String) -> Response) throws {
    let context = Unmanaged.passRetained(Context(handler))
    var message = [CChar](repeating: 0, count: 256)
    let server = vane_httpd_start(
      host,
      UInt16(port),
      { context, path, body, length, contentType in
        let handler = Unmanaged<Context>.fromOpaque(context!).takeUnretainedValue().handler
        let response = handler(path.map { String(cString: $0) } ?? "/")
        // The shim frees the body with free(): hand it a malloc'ed copy.
        if response.body.isEmpty {
          body!.pointee = nil
        } else {
          let buffer = malloc(response.body.count)!.assumingMemoryBound(to: CChar.self)
          response.body.withUnsafeBytes {
            buffer.update(
              from: $0.bindMemory(to: CChar.self).baseAddress!,
              count: response.body.count
            )
          }
          body!.pointee = buffer
        }
        length!.pointee = response.body.count
        contentType!.pointee = HTTPDaemon.staticContentType(response.contentType)
        return response.status
      },
      context.toOpaque(),
      &message,
      message.count
    )
    guard let server else {
      context.release()
      throw VaneError(
        .invalidArgument,
        String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      )
    }
    self.handle = Mutex(Handle(pointer: server))
    self.context = context
    self.port = Int(vane_httpd_port(server))
  }

  /// Closes the socket and waits for the polling thread; idempotent.
  func stop() {
    let server = self.handle.withLock { handle in
      defer { handle = nil }
      return handle
    }
    guard let server else { return }
    vane_httpd_stop(server.pointer)
    self.context.release()
  }

  deinit { self.stop() }

  /// Content types outlive the call as C string literals.
  private static func staticContentType(_ type: String) -> UnsafePointer<CChar> {
    switch type {
    case PrometheusText.contentType: return PrometheusText.contentTypeC
    default: return PrometheusText.plainTextC
    }
  }
}

/// The text exposition format's content type.
enum PrometheusText {
  static let contentType = "text/plain; version=0.0.4; charset=utf-8"
  static let plainText = "text/plain; charset=utf-8"
  // Made once and never freed: the C side may read them after the handler returns.
  nonisolated(unsafe) static let contentTypeC: UnsafePointer<CChar> = UnsafePointer(
    strdup(contentType)!
  )
  nonisolated(unsafe) static let plainTextC: UnsafePointer<CChar> = UnsafePointer(
    strdup(plainText)!
  )
}
