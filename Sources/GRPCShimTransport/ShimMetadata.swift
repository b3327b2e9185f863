internal import GRPCCore
internal import CGRPCShim

/// Conversions between `GRPCCore.Metadata` and the shim's C metadata arrays.
enum ShimMetadata {
  /// Keys that gRPC itself owns on the wire: grpc++ sets them, and adding them as custom
  /// metadata would either be rejected or corrupt the call.
  static func isReserved(_ key: String) -> Bool {
    if key.hasPrefix(":") || key.hasPrefix("grpc-") { return true }
    switch key {
    case "content-type", "te", "host", "user-agent", "content-length", "connection":
      return true
    default:
      return false
    }
  }

  /// Builds `Metadata` from a C array that is valid only for the current callback.
  static func decode(_ entries: UnsafePointer<vane_shim_metadata_entry>?, count: Int) -> Metadata {
    var metadata = Metadata()
    guard let entries, count > 0 else { return metadata }
    metadata.reserveCapacity(count)
    for index in 0 ..< count {
      let entry = entries[index]
      let key = String(
        decoding: UnsafeRawBufferPointer(start: entry.key, count: entry.key_length),
        as: UTF8.self
      )
      let value = UnsafeRawBufferPointer(start: entry.value, count: entry.value_length)
      if key.hasSuffix("-bin") {
        metadata.addBinary(Array(value), forKey: key)
      } else {
        metadata.addString(String(decoding: value, as: UTF8.self), forKey: key)
      }
    }
    return metadata
  }

  /// Calls `body` with a C array of `metadata`, leaving out reserved keys. The pointers are
  /// valid only inside `body`.
  static func withEntries<R>(
    _ metadata: Metadata,
    _ body: (UnsafePointer<vane_shim_metadata_entry>?, Int) throws -> R
  ) rethrows -> R {
    // One flat byte buffer for every key and value keeps this to two allocations.
    var bytes: [UInt8] = []
    var ranges: [(key: Range<Int>, value: Range<Int>)] = []
    for (key, value) in metadata {
      let lowered = key.lowercased()
      if Self.isReserved(lowered) { continue }
      let keyStart = bytes.count
      bytes.append(contentsOf: lowered.utf8)
      let valueStart = bytes.count
      switch value {
      case .string(let string): bytes.append(contentsOf: string.utf8)
      case .binary(let binary): bytes.append(contentsOf: binary)
      }
      ranges.append((keyStart ..< valueStart, valueStart ..< bytes.count))
    }
    if ranges.isEmpty { return try body(nil, 0) }
    return try bytes.withUnsafeBufferPointer { buffer in
      let base = buffer.baseAddress!
      let entries = ranges.map { range in
        vane_shim_metadata_entry(
          key: UnsafeRawPointer(base + range.key.lowerBound).assumingMemoryBound(to: CChar.self),
          key_length: range.key.count,
          value: base + range.value.lowerBound,
          value_length: range.value.count
        )
      }
      return try entries.withUnsafeBufferPointer { try body($0.baseAddress, $0.count) }
    }
  }
}

/// The `grpc-timeout` header value (gRPC over HTTP/2: at most eight digits and a unit), which is
/// how GRPCCore carries a call's deadline in metadata on both sides.
enum GRPCTimeout {
  private static let units: [(suffix: Character, nanoseconds: Int64)] = [
    ("n", 1), ("u", 1_000), ("m", 1_000_000), ("S", 1_000_000_000),
    ("M", 60_000_000_000), ("H", 3_600_000_000_000),
  ]

  /// Encodes a non-negative duration, rounding up so that a deadline is never brought forward.
  static func encode(nanoseconds: Int64) -> String {
    let value = max(nanoseconds, 0)
    for unit in Self.units {
      let amount = (value + unit.nanoseconds - 1) / unit.nanoseconds
      if amount < 100_000_000 { return "\(amount)\(unit.suffix)" }
    }
    return "99999999H"
  }

  /// Decodes a header value; nil when it is not a valid timeout.
  static func decode(_ text: String) -> Int64? {
    guard let suffix = text.last, text.count >= 2, text.count <= 9,
      let unit = Self.units.first(where: { $0.suffix == suffix }),
      let amount = Int64(text.dropLast()), amount >= 0
    else { return nil }
    let (product, overflow) = amount.multipliedReportingOverflow(by: unit.nanoseconds)
    return overflow ? Int64.max : product
  }

  static func nanoseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    if overflow { return seconds < 0 ? 0 : Int64.max }
    return max(0, whole &+ attoseconds / 1_000_000_000)
  }
}
