import Testing
import VaneMath

/// `AlignedFloats`: every allocation starts on a cache line and keeps what its initializer wrote.
@Suite("AlignedFloats")
struct AlignedFloatsTests {
  @Test(
    "Starts on a 64-byte line and reads back what was written",
    arguments: [0, 1, 15, 16, 1_000]
  )
  func alignedAndKept(count: Int) {
    // Several at once, so that a lucky malloc alignment cannot pass for the real thing.
    let buffers = (0 ..< 8).map { n in
      AlignedFloats(count: count) { out in
        for i in out.indices { out[i] = Float(i * 8 + n) }
      }
    }
    for (n, buffer) in buffers.enumerated() {
      #expect(buffer.count == count)
      buffer.withUnsafeBufferPointer { values in
        #expect(Int(bitPattern: values.baseAddress) % AlignedFloats.alignment == 0)
        #expect(values.enumerated().allSatisfy { $1 == Float($0 * 8 + n) })
      }
    }
  }
}
