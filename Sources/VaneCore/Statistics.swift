/// Small statistics the domain libraries share.
public enum Statistics {
  /// The q-quantile of ascending values with linear interpolation between order statistics
  /// (NumPy's default method): position q·(n − 1), interpolated between its neighbours.
  public static func quantile(sorted: [Double], _ q: Double) -> Double {
    precondition(!sorted.isEmpty && (0 ... 1).contains(q))
    let position = q * Double(sorted.count - 1)
    let low = Int(position.rounded(.down))
    let high = min(low + 1, sorted.count - 1)
    return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
  }
}

extension Sequence where Element == UInt8 {
  /// Lower-case hexadecimal, two digits per byte (how digests are written everywhere in Vane).
  public var hexString: String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    for byte in self {
      text.append(digits[Int(byte >> 4)])
      text.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: text, as: UTF8.self)
  }
}
