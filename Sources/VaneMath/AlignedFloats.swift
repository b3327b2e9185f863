/// Single-precision values in memory aligned to a cache line, written once and then only read.
///
/// An array's elements start 32 bytes into a block that malloc aligns to 16, so where a
/// 64-byte line begins relative to them changes from one allocation to the next. A kernel that
/// streams a matrix with 32- or 64-byte loads (``BLAS/rowCombination(_:rowBlocked:rows:columns:into:descending:)``)
/// then splits some or all of its loads across two lines, and its speed changed from process to
/// process by up to a quarter. Here every 64-byte group of values is one line.
public final class AlignedFloats: @unchecked Sendable {
  // @unchecked: the memory is written only by `init`'s closure, before the object is shared,
  // and freed only by `deinit`.
  private let storage: UnsafeMutablePointer<Float>
  /// How many values.
  public let count: Int

  /// The alignment of ``values``, in bytes.
  public static let alignment = 64

  /// Allocates `count` values and lets `initialize` write every one of them.
  public init(count: Int, initializingWith initialize: (UnsafeMutableBufferPointer<Float>) -> Void)
  {
    let raw = UnsafeMutableRawPointer.allocate(
      byteCount: max(count, 1) * MemoryLayout<Float>.stride,
      alignment: Self.alignment
    )
    self.storage = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    self.count = count
    initialize(UnsafeMutableBufferPointer(start: self.storage, count: count))
  }

  deinit {
    self.storage.deallocate()
  }

  /// The values, for reading while the object is alive.
  public func withUnsafeBufferPointer<R>(
    _ body: (UnsafeBufferPointer<Float>) throws -> R
  ) rethrows
    -> R
  {
    try withExtendedLifetime(self) {
      try body(UnsafeBufferPointer(start: self.storage, count: self.count))
    }
  }
}
