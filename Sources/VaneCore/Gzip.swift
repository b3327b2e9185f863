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
    var stream = z_stream()
    // 15 window bits + 32: accept gzip or zlib headers.
    guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK
    else {
      throw VaneError(.internalError, "\(name): zlib could not start")
    }
    defer { inflateEnd(&stream) }
    var output: [UInt8] = []
    output.reserveCapacity(min(limit, max(input.count * 6, 1 << 16)))
    var chunk = [UInt8](repeating: 0, count: 1 << 18)
    try input.withUnsafeBufferPointer { source in
      stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
      stream.avail_in = UInt32(source.count)
      while true {
        let status: Int32 = chunk.withUnsafeMutableBufferPointer { buffer in
          stream.next_out = buffer.baseAddress
          stream.avail_out = UInt32(buffer.count)
          return inflate(&stream, Z_NO_FLUSH)
        }
        let produced = chunk.count - Int(stream.avail_out)
        if output.count + produced > limit {
          throw VaneError(.resourceExhausted, "\(name): decompresses to more than \(limit) bytes")
        }
        output.append(contentsOf: chunk[0 ..< produced])
        switch status {
        case Z_STREAM_END:
          // Another member may follow (gzip files can be concatenated).
          if stream.avail_in == 0 { return }
          guard inflateReset(&stream) == Z_OK else {
            throw VaneError(.invalidArgument, "\(name): corrupt gzip stream")
          }
        case Z_OK:
          if stream.avail_in == 0 && produced == 0 {
            throw VaneError(.invalidArgument, "\(name): gzip stream is truncated")
          }
        case Z_BUF_ERROR:
          if stream.avail_in == 0 {
            throw VaneError(.invalidArgument, "\(name): gzip stream is truncated")
          }
        default:
          let message = stream.msg.map { String(cString: $0) } ?? "status \(status)"
          throw VaneError(.invalidArgument, "\(name): corrupt gzip data (\(message))")
        }
      }
    }
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
