import Testing
import VaneCore

@testable import VaneMath

/// `BLAS.rowCombination` (xᵀ·A for an LSTM step's one row, through the blocked layout, and
/// every sample row's dot product in the nearest-sample screen) against the sum written out,
/// for widths around its steps (64 and 8 columns in float, 32 and 4 in double).
@Suite("BLAS.rowCombination")
struct RowCombinationTests {
  @Test(
    "Equal to Σ_k x[k]·A[k, j] within float rounding",
    arguments: [(1, 1), (3, 7), (16, 8), (16, 63), (64, 64), (64, 256), (5, 129), (64, 200)]
  )
  func matchesTheSum(rows: Int, columns: Int) {
    var random = SeededRandom(seed: UInt64(rows * 1000 + columns))
    let a = (0 ..< rows * columns).map { _ in Float(Double.random(in: -1 ... 1, using: &random)) }
    let x = (0 ..< rows).map { _ in Float(Double.random(in: -1 ... 1, using: &random)) }
    let y = Self.product(x, a, rows: rows, columns: columns, descending: false)
    for j in 0 ..< columns {
      var exact = 0.0, magnitude = 0.0
      for k in 0 ..< rows {
        exact += Double(x[k]) * Double(a[k * columns + j])
        magnitude += abs(Double(x[k]) * Double(a[k * columns + j]))
      }
      // Float32 accumulation over `rows` terms.
      #expect(
        abs(Double(y[j]) - exact) <= Double(rows) * 1.2e-7 * magnitude + 1e-30,
        "column \(j): \(y[j]) vs \(exact)"
      )
    }
  }

  @Test(
    "In double, equal to Σ_k x[k]·A[k, j] within double rounding",
    arguments: [(1, 1), (3, 3), (78, 4), (78, 31), (78, 32), (78, 256), (5, 37), (16, 100)]
  )
  func matchesTheSumInDouble(rows: Int, columns: Int) {
    var random = SeededRandom(seed: UInt64(rows * 1000 + columns))
    let a = (0 ..< rows * columns).map { _ in Double.random(in: -1 ... 1, using: &random) }
    let x = (0 ..< rows).map { _ in Double.random(in: -1 ... 1, using: &random) }
    var y = [Double](repeating: .nan, count: columns)
    a.withUnsafeBufferPointer { a in
      x.withUnsafeBufferPointer { x in
        y.withUnsafeMutableBufferPointer { y in
          BLAS.rowCombination(
            x.baseAddress!,
            a.baseAddress!,
            rows: rows,
            columns: columns,
            into: y.baseAddress!
          )
        }
      }
    }
    for j in 0 ..< columns {
      // Summed exactly enough: in pairs of (sum, error) (Kahan–Babuška), magnitudes alongside.
      var exact = 0.0, compensation = 0.0, magnitude = 0.0
      for k in 0 ..< rows {
        let term = x[k] * a[k * columns + j]
        let sum = exact + term
        compensation += abs(exact) >= abs(term) ? (exact - sum) + term : (term - sum) + exact
        exact = sum
        magnitude += abs(term)
      }
      exact += compensation
      #expect(
        abs(y[j] - exact) <= Double(rows + 2) * 1.2e-16 * magnitude + 1e-300,
        "column \(j): \(y[j]) vs \(exact)"
      )
    }
  }

  @Test(
    "Taking the blocks of columns last to first gives the same values bit for bit",
    arguments: [(64, 256), (16, 200), (5, 64), (3, 7)]
  )
  func descendingIsTheSame(rows: Int, columns: Int) {
    var random = SeededRandom(seed: UInt64(rows * 7 + columns))
    let a = (0 ..< rows * columns).map { _ in Float(Double.random(in: -1 ... 1, using: &random)) }
    let x = (0 ..< rows).map { _ in Float(Double.random(in: -1 ... 1, using: &random)) }
    let forward = Self.product(x, a, rows: rows, columns: columns, descending: false)
    let backward = Self.product(x, a, rows: rows, columns: columns, descending: true)
    #expect(forward.map(\.bitPattern) == backward.map(\.bitPattern))
    #expect(!forward.contains { $0.isNaN })
  }

  @Test(
    "A half-precision matrix gives the single-precision kernel's values on it, bit for bit",
    arguments: [(1, 1), (3, 7), (16, 8), (16, 63), (78, 256), (5, 129), (64, 200), (78, 17)]
  )
  func halvesEqualWidened(rows: Int, columns: Int) {
    var random = SeededRandom(seed: UInt64(rows * 131 + columns))
    // Normal, subnormal and zero halves alike.
    let halves = (0 ..< rows * columns).map { i -> Float16 in
      let value = Double.random(in: -3 ... 3, using: &random)
      return Float16(i % 11 == 0 ? value * 1e-6 : i % 13 == 0 ? 0 : value)
    }
    let x = (0 ..< rows).map { _ in Float(Double.random(in: -3 ... 3, using: &random)) }
    let widened = Self.product(
      x,
      halves.map(Float.init),
      rows: rows,
      columns: columns,
      descending: false
    )
    let y = Self.combination(x, Self.blocked(halves, rows: rows, columns: columns), columns) {
      BLAS.rowCombination($0, rowBlockedHalves: $1, rows: rows, columns: columns, into: $2)
    }
    #expect(y.map(\.bitPattern) == widened.map(\.bitPattern))
    #expect(!y.contains { $0.isNaN })
  }

  /// A, `[rows, columns]`, laid out in blocks.
  static func blocked<Element: BinaryFloatingPoint>(
    _ a: [Element],
    rows: Int,
    columns: Int
  ) -> [Element] {
    var blocked = [Element](repeating: .nan, count: a.count)
    a.withUnsafeBufferPointer { a in
      blocked.withUnsafeMutableBufferPointer { out in
        BLAS.rowBlocked(a.baseAddress!, rows: rows, columns: columns, into: out.baseAddress!)
      }
    }
    return blocked
  }

  /// What `kernel` writes for `x` and a blocked matrix: `columns` values.
  static func combination<Element>(
    _ x: [Float],
    _ blocked: [Element],
    _ columns: Int,
    _ kernel: (UnsafePointer<Float>, UnsafePointer<Element>, UnsafeMutablePointer<Float>) -> Void
  ) -> [Float] {
    var y = [Float](repeating: .nan, count: columns)
    blocked.withUnsafeBufferPointer { a in
      x.withUnsafeBufferPointer { x in
        y.withUnsafeMutableBufferPointer { y in
          kernel(x.baseAddress!, a.baseAddress!, y.baseAddress!)
        }
      }
    }
    return y
  }

  /// xᵀ·A through the blocked layout.
  static func product(
    _ x: [Float],
    _ a: [Float],
    rows: Int,
    columns: Int,
    descending: Bool
  ) -> [Float] {
    let blocked = Self.blocked(a, rows: rows, columns: columns)
    #expect(Set(blocked.map(\.bitPattern)) == Set(a.map(\.bitPattern)), "a permutation of A")
    let y = Self.combination(x, blocked, columns) {
      BLAS.rowCombination(
        $0,
        rowBlocked: $1,
        rows: rows,
        columns: columns,
        into: $2,
        descending: descending
      )
    }
    return y
  }
}
