internal import CZlib

/// gzip (zlib): candle files that arrive as `.csv.gz`, model bundles as `.tar.gz`.
public enum Gzip {
  /// The two bytes every gzip stream starts with.
  public static func isCompressed(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
  }

  /// Inflates a whole gzip stream (concatenated members too). `limit` bounds the output, so a
  /// hostile file cannot exhaust memory.
  public static func decompress(
    _ input: [UInt8],
    limit: Int = 4 << 30,
    name: String
  ) throws -> [UInt8] {
    let inflater = try GzipInflater(name: name)
    var output: [UInt8] = []
    output.reserveCapacity(min(limit, max(input.count * 6, 1 << 16)))
    try input.withUnsafeBytes { source in
      try inflater.inflate(source) { produced in
        if output.count + produced.count > limit {
          throw VaneError(.resourceExhausted, "\(name): decompresses to more than \(limit) bytes")
        }
        output.append(contentsOf: produced)
      }
    }
    try inflater.finish()
    return output
  }

  /// Compresses bytes into one gzip member (default level).
  public static func compress(_ input: [UInt8], name: String) throws -> [UInt8] {
    var stream = z_stream()
    // 15 window bits + 16: write a gzip header and trailer.
    guard
      deflateInit2_(
        &stream,
        Z_DEFAULT_COMPRESSION,
        Z_DEFLATED,
        15 + 16,
        8,
        Z_DEFAULT_STRATEGY,
        ZLIB_VERSION,
        Int32(MemoryLayout<z_stream>.size)
      ) == Z_OK
    else { throw VaneError(.internalError, "\(name): zlib could not start") }
    defer { deflateEnd(&stream) }
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 18)
    try input.withUnsafeBufferPointer { source in
      stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
      stream.avail_in = UInt32(source.count)
      while true {
        let status: Int32 = chunk.withUnsafeMutableBufferPointer { buffer in
          stream.next_out = buffer.baseAddress
          stream.avail_out = UInt32(buffer.count)
          return deflate(&stream, Z_FINISH)
        }
        output.append(contentsOf: chunk[0 ..< (chunk.count - Int(stream.avail_out))])
        if status == Z_STREAM_END { return }
        guard status == Z_OK || status == Z_BUF_ERROR else {
          throw VaneError(.internalError, "\(name): deflate failed (status \(status))")
        }
      }
    }
    return output
  }
}

/// A gzip stream inflated piece by piece, so a reader can judge what arrives before the rest is
/// inflated (a bundle's tar headers are checked before their members' bytes exist). Owns its
/// zlib stream.
public final class GzipInflater {
  private var stream = z_stream()
  private var chunk = [UInt8](repeating: 0, count: 1 << 16)
  /// Whether the last member ended exactly where the input so far ends.
  private var atMemberEnd = false
  private let name: String

  /// - Throws: INTERNAL when zlib cannot start.
  public init(name: String) throws {
    self.name = name
    // 15 window bits + 32: accept gzip or zlib headers.
    guard
      inflateInit2_(&self.stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        == Z_OK
    else {
      throw VaneError(.internalError, "\(name): zlib could not start")
    }
  }

  deinit { inflateEnd(&self.stream) }

  /// Inflates `input` (the next piece of the compressed stream), handing each inflated piece to
  /// `output` as it is produced (at most 64 KiB; valid only during the call). Concatenated
  /// members are inflated one after another.
  /// - Throws: INVALID_ARGUMENT for corrupt data; what `output` throws.
  public func inflate(
    _ input: UnsafeRawBufferPointer,
    output: (UnsafeRawBufferPointer) throws -> Void
  ) throws {
    guard let base = input.baseAddress, !input.isEmpty else { return }
    self.stream.next_in = UnsafeMutablePointer(
      mutating: base.assumingMemoryBound(to: UInt8.self)
    )
    self.stream.avail_in = UInt32(input.count)
    defer { self.stream.next_in = nil }
    var more = true
    while more {
      if self.atMemberEnd {
        // Another member follows (gzip files can be concatenated).
        guard inflateReset(&self.stream) == Z_OK else {
          throw VaneError(.invalidArgument, "\(self.name): corrupt gzip stream")
        }
        self.atMemberEnd = false
      }
      let count = self.chunk.count
      let status: Int32 = self.chunk.withUnsafeMutableBufferPointer { buffer in
        self.stream.next_out = buffer.baseAddress
        self.stream.avail_out = UInt32(count)
        return zlibInflate(&self.stream, Z_NO_FLUSH)
      }
      let produced = count - Int(self.stream.avail_out)
      if produced > 0 {
        try self.chunk.withUnsafeBytes {
          try output(UnsafeRawBufferPointer(rebasing: $0[..<produced]))
        }
      }
      switch status {
      case Z_STREAM_END:
        self.atMemberEnd = true
        more = self.stream.avail_in > 0
      case Z_OK:
        // A full output buffer may leave inflated bytes inside zlib: ask again.
        more = self.stream.avail_in > 0 || self.stream.avail_out == 0
      case Z_BUF_ERROR where self.stream.avail_in == 0:
        more = false
      default:
        let message = self.stream.msg.map { String(cString: $0) } ?? "status \(status)"
        throw VaneError(.invalidArgument, "\(self.name): corrupt gzip data (\(message))")
      }
    }
  }

  /// Checks that the stream ended with a complete member.
  /// - Throws: INVALID_ARGUMENT for a truncated (or empty) stream.
  public func finish() throws {
    guard self.atMemberEnd else {
      throw VaneError(.invalidArgument, "\(self.name): gzip stream is truncated")
    }
  }
}

/// zlib's `inflate`, named apart from ``GzipInflater/inflate(_:output:)``.
private func zlibInflate(_ stream: UnsafeMutablePointer<z_stream>, _ flush: Int32) -> Int32 {
  inflate(stream, flush)
}
