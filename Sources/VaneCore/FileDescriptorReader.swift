#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Blocking reads from a file descriptor that retry when a signal interrupts them.
///
/// Processes that start children get SIGCHLD, and Foundation's FileHandle traps on EINTR; these
/// reads are for the places that read a child's pipe or standard input.
public enum FileDescriptorReader {
  /// Reads until end of file.
  public static func readAll(_ descriptor: Int32) -> [UInt8] {
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
      let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
      if count > 0 {
        result.append(contentsOf: buffer[0 ..< count])
      } else if count == 0 || errno != EINTR {
        return result
      }
    }
  }

  /// Reads one line (without its newline); nil at end of file before any byte.
  public static func readLine(_ descriptor: Int32) -> String? {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    while true {
      let count = read(descriptor, &byte, 1)
      if count == 1 {
        if byte == UInt8(ascii: "\n") { break }
        bytes.append(byte)
      } else if count == 0 || errno != EINTR {
        if bytes.isEmpty { return nil }
        break
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// Reads whatever is available now (blocking until something is, or end of file: empty).
  public static func readSome(_ descriptor: Int32, upTo maximum: Int = 64 * 1024) -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: maximum)
    while true {
      let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
      if count >= 0 { return Array(buffer[0 ..< count]) }
      if errno != EINTR { return [] }
    }
  }
}
