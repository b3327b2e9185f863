internal import Synchronization

/// The id of the request a piece of work belongs to: it travels in `x-request-id` metadata from
/// `vane` through every service call that request causes, into each log line (see
/// ``VaneLogging``) and the prediction log.
public enum RequestID {
  /// The metadata key that carries it.
  public static let metadataKey = "x-request-id"
  /// Longest id accepted from a caller; a longer or non-printable one is replaced.
  public static let maximumLength = 128

  /// The current task's request id, if it serves one.
  @TaskLocal public static var current: String?

  /// A new id: a random-looking version-4 UUID in lower case.
  ///
  /// Foundation's `UUID()` opens, reads and closes /dev/urandom for every id and formats it
  /// through `snprintf`, which cost a server about a tenth of each call. An id needs to be
  /// unique, not secret: two random keys drawn once per process, and a counter put through
  /// a bijective mixer under each of them, give distinct ids within the process (the mixers
  /// are bijections of the counter) and unrelated ones across processes.
  public static func make() -> String {
    let n = Self.counter.add(1, ordering: .relaxed).newValue
    let high = SeededRandom.mix(Self.keys.0 &+ n)
    let low = SeededRandom.mix(Self.keys.1 ^ (n &* SeededRandom.gamma))
    // Version 4 in the 13th hex digit, variant 10xx in the 17th.
    let versioned = (high & ~0xF000) | 0x4000
    let variant = (low & ~(0xC000 << 48)) | (0x8000 << 48)
    return Self.format(versioned, variant)
  }

  /// A new id whose leading digits are the time: a version-7 UUID (RFC 9562) in lower case,
  /// for keys of a log written in time order.
  ///
  /// Random keys land all over a B-tree, so every batch written dirties pages across it; these
  /// sort by `unixMilliseconds` and then by the process's counter (42 bits of it, in place of
  /// the RFC's random `rand_a` and the head of `rand_b`), so a batch lands at the right edge.
  /// The counter keeps ids distinct within the process whatever the clock does; 32 mixed bits
  /// keep them unrelated across processes.
  /// - Parameter prefix: an ASCII character put before the id (a prediction's "p"), written with
  ///   it rather than joined to it after.
  public static func makeTimeOrdered(
    unixMilliseconds: Int64,
    prefix: Unicode.Scalar? = nil
  ) -> String {
    let n = Self.counter.add(1, ordering: .relaxed).newValue
    let time = UInt64(truncatingIfNeeded: unixMilliseconds) & 0xFFFF_FFFF_FFFF
    // 48 bits of time, version 7, then the counter's bits 30–41.
    let high = time << 16 | 0x7000 | (n >> 30 & 0xFFF)
    // Variant 10, the counter's bits 0–29, then 32 mixed bits.
    let low =
      0x8000_0000_0000_0000 | (n & 0x3FFF_FFFF) << 32
      | SeededRandom.mix(Self.keys.1 ^ (n &* SeededRandom.gamma)) & 0xFFFF_FFFF
    return Self.format(high, low, prefix: prefix)
  }

  private static let keys: (UInt64, UInt64) = {
    var generator = SystemRandomNumberGenerator()
    return (generator.next(), generator.next())
  }()

  private static let counter = Atomic<UInt64>(0)

  /// 8-4-4-4-12 lower-case hex of the two words, after `prefix` (ASCII) when there is one.
  static func format(_ high: UInt64, _ low: UInt64, prefix: Unicode.Scalar? = nil) -> String {
    let start = prefix == nil ? 0 : 1
    precondition(prefix.map(\.isASCII) ?? true, "an id's prefix is one ASCII character")
    return String(unsafeUninitializedCapacity: start + 36) { buffer in
      if let prefix { buffer[0] = UInt8(truncatingIfNeeded: prefix.value) }
      // Nibble by nibble from the top, without a table (a served Predict makes one id; the
      // table and range loop took 2k instructions of it).
      var index = start
      func put(_ word: UInt64) {
        var shift = 60
        while shift >= 0 {
          if index == start + 8 || index == start + 13 || index == start + 18
            || index == start + 23
          {
            buffer[index] = UInt8(ascii: "-")
            index += 1
          }
          let digit = UInt8(truncatingIfNeeded: word >> UInt64(shift)) & 0xF
          buffer[index] = digit < 10 ? 0x30 &+ digit : 0x57 &+ digit
          index += 1
          shift -= 4
        }
      }
      put(high)
      put(low)
      return start + 36
    }
  }

  /// `text` when it is a usable id (1–128 printable ASCII characters), else nil.
  public static func validated(_ text: String?) -> String? {
    guard let text, !text.isEmpty, text.utf8.count <= Self.maximumLength,
      text.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E })
    else { return nil }
    return text
  }
}
