/// Sorting doubles by their bit patterns: an LSD radix sort on keys that order like the values
/// (sign bit flipped for positives, all bits for negatives), 16 bits per pass. Linear time,
/// which is what makes AUC and equal-mass binning on a million predictions fast. Stable, so equal
/// values keep their input order.
enum RadixSort {
  /// The permutation that sorts `values` ascending (NaN last), as 32-bit indices.
  static func ascendingOrder(_ values: [Double]) -> [UInt32] {
    let n = values.count
    precondition(n <= Int(UInt32.max))
    var keys = [UInt64](repeating: 0, count: n)
    var order = [UInt32](repeating: 0, count: n)
    var scratchKeys = keys
    var scratchOrder = order
    for i in 0..<n {
      let bits = values[i].bitPattern
      // Positive: flip the sign bit; negative: flip all bits. -0.0 and 0.0 become adjacent.
      keys[i] = values[i].isNaN ? .max : bits & (1 << 63) == 0 ? bits | (1 << 63) : ~bits
      order[i] = UInt32(i)
    }
    var counts = [Int](repeating: 0, count: 1 << 16)
    for pass in 0..<4 {
      let shift = UInt64(pass * 16)
      // Skip a pass whose digit is the same for every key (common for the high digits).
      let first = (keys.first ?? 0) >> shift & 0xFFFF
      if keys.allSatisfy({ $0 >> shift & 0xFFFF == first }) { continue }
      for b in counts.indices { counts[b] = 0 }
      for key in keys { counts[Int(key >> shift & 0xFFFF)] += 1 }
      var total = 0
      for b in counts.indices {
        let c = counts[b]
        counts[b] = total
        total += c
      }
      for i in 0..<n {
        let digit = Int(keys[i] >> shift & 0xFFFF)
        let slot = counts[digit]
        counts[digit] = slot + 1
        scratchKeys[slot] = keys[i]
        scratchOrder[slot] = order[i]
      }
      swap(&keys, &scratchKeys)
      swap(&order, &scratchOrder)
    }
    return order
  }
}
