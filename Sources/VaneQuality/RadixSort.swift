/// Sorting doubles by their bit patterns: an LSD radix sort on keys that order like the values
/// (sign bit flipped for positives, all bits for negatives; -0.0 taken as 0.0; NaN last).
/// Linear time, which is what makes AUC and equal-mass binning on a million predictions fast.
/// Stable, so equal values keep their input order. One pass counts every digit's histogram;
/// passes whose digit is the same for all keys (the exponent bits of probabilities) are skipped.
enum RadixSort {
  /// The order-preserving key of a double.
  @inline(__always)
  static func key(_ value: Double) -> UInt64 {
    if value.isNaN { return .max }
    let bits = (value == 0 ? 0.0 : value).bitPattern
    return bits & (1 << 63) == 0 ? bits | (1 << 63) : ~bits
  }

  /// From this many keys on, 16-bit digits.
  static let wideDigitsFrom = 200_000

  /// The double a key was made from (0.0 for -0.0; NaN for the NaN key).
  @inline(__always)
  static func value(_ key: UInt64) -> Double {
    if key == .max { return .nan }
    return Double(bitPattern: key & (1 << 63) != 0 ? key & ~(1 << 63) : ~key)
  }

  /// Sorts `keys` ascending, carrying `payload` along.
  static func sort(keys: inout [UInt64], payload: inout [UInt32]) {
    let n = keys.count
    precondition(payload.count == n)
    guard n > 1 else { return }
    // 16-bit digits (4 passes) for large inputs; below ~200,000 keys 11-bit digits (6 passes,
    // 2,048 buckets that stay in L1) (measured: `vane bench quality`).
    let bits = n >= Self.wideDigitsFrom ? 16 : 11
    let buckets = 1 << bits
    let passes = (64 + bits - 1) / bits
    let mask = UInt64(buckets - 1)
    var histograms = [Int](repeating: 0, count: buckets * passes)
    keys.withUnsafeBufferPointer { keys in
      histograms.withUnsafeMutableBufferPointer { h in
        for key in keys {
          var k = key
          for pass in 0 ..< passes {
            h[pass * buckets + Int(k & mask)] += 1
            k >>= UInt64(bits)
          }
        }
      }
    }
    // Every slot is written by the first pass that runs before anything reads it.
    var scratchKeys = [UInt64](unsafeUninitializedCapacity: n) { _, count in count = n }
    var scratchPayload = [UInt32](unsafeUninitializedCapacity: n) { _, count in count = n }
    for pass in 0 ..< passes {
      let base = pass * buckets
      // A digit every key shares leaves the order as it is.
      if histograms[base + Int((keys[0] >> UInt64(pass * bits)) & mask)] == n { continue }
      var total = 0
      for b in 0 ..< buckets {
        let count = histograms[base + b]
        histograms[base + b] = total
        total += count
      }
      let shift = UInt64(pass * bits)
      keys.withUnsafeBufferPointer { source in
        payload.withUnsafeBufferPointer { sourcePayload in
          scratchKeys.withUnsafeMutableBufferPointer { target in
            scratchPayload.withUnsafeMutableBufferPointer { targetPayload in
              histograms.withUnsafeMutableBufferPointer { h in
                for i in 0 ..< n {
                  let key = source[i]
                  let slot = base + Int((key >> shift) & mask)
                  let position = h[slot]
                  h[slot] = position + 1
                  target[position] = key
                  targetPayload[position] = sourcePayload[i]
                }
              }
            }
          }
        }
      }
      swap(&keys, &scratchKeys)
      swap(&payload, &scratchPayload)
    }
  }

  /// The permutation that sorts `values` ascending (NaN last), as 32-bit indices.
  static func ascendingOrder(_ values: [Double]) -> [UInt32] {
    precondition(values.count <= Int(UInt32.max))
    var keys = values.map(Self.key)
    var order = (0 ..< values.count).map { UInt32($0) }
    Self.sort(keys: &keys, payload: &order)
    return order
  }
}
