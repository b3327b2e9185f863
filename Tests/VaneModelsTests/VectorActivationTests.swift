import Foundation
import Testing
import VaneCore
import VaneMath

/// The single-precision gate activations against libm's double-precision functions rounded to
/// float: every value of a dense grid, tiny and huge ones, and a row length that leaves a tail.
@Suite("Eight-lane sigmoid and tanh")
struct VectorActivationTests {
  /// −30 … 30 in steps of 1/1024, ±2⁻¹⁰⁰ … ±1 in factors of 1.07, the extremes, and zeros.
  static let inputs: [Float] = {
    var values = (-30_720 ... 30_720).map { Float($0) / 1024 }
    var tiny: Float = 0x1p-100
    while tiny < 1 {
      values += [tiny, -tiny]
      tiny *= 1.07
    }
    values += [0, -0, 87, -87, 88.7, -88.7, 100, -100, 1e6, -1e6, .greatestFiniteMagnitude]
    values.append(-.greatestFiniteMagnitude)
    return values
  }()

  /// The largest error in units of the reference's last place (references at least 1e-30;
  /// below that the absolute error is what counts), and the largest absolute error.
  static func errors(
    _ f: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
    reference: (Double) -> Double
  ) -> (ulps: Float, absolute: Float) {
    var output = [Float](repeating: .nan, count: Self.inputs.count)
    Self.inputs.withUnsafeBufferPointer { source in
      output.withUnsafeMutableBufferPointer {
        f(source.baseAddress!, $0.baseAddress!, source.count)
      }
    }
    var ulps: Float = 0, absolute: Float = 0
    for (x, y) in zip(Self.inputs, output) {
      let expected = Float(reference(Double(x)))
      let error = abs(y - expected)
      absolute = max(absolute, error)
      if abs(expected) >= 1e-30 { ulps = max(ulps, error / expected.ulp) }
    }
    return (ulps, absolute)
  }

  @Test("σ is within 2 units in the last place, and never more than 1e-7 off")
  func sigmoid() {
    let (ulps, absolute) = Self.errors({ Logistic.sigmoid($0, into: $1, count: $2) }) {
      Logistic.sigmoid($0)
    }
    #expect(ulps <= 2, "\(ulps) ulps")
    #expect(absolute <= 1e-7, "\(absolute)")
  }

  @Test("tanh is within 3 units in the last place everywhere, tiny arguments included")
  func tanh() {
    let (ulps, absolute) = Self.errors({ Logistic.tanh($0, into: $1, count: $2) }) {
      Foundation.tanh($0)
    }
    #expect(ulps <= 3, "\(ulps) ulps")
    #expect(absolute <= 1e-7, "\(absolute)")
  }

  @Test(
    "A row whose length leaves a tail shorter than eight lanes is computed whole, in place",
    arguments: [1, 7, 8, 13]
  )
  func tail(count: Int) {
    let source = (0 ..< count).map { Float($0) / 3 - 1 }
    var tanh = source, sigmoid = source
    tanh.withUnsafeMutableBufferPointer {
      Logistic.tanh($0.baseAddress!, into: $0.baseAddress!, count: count)
    }
    sigmoid.withUnsafeMutableBufferPointer {
      Logistic.sigmoid($0.baseAddress!, into: $0.baseAddress!, count: count)
    }
    for (index, x) in source.enumerated() {
      let expectedTanh = Float(Foundation.tanh(Double(x)))
      let expectedSigmoid = Float(Logistic.sigmoid(Double(x)))
      #expect(abs(tanh[index] - expectedTanh) <= 3 * expectedTanh.ulp, "tanh(\(x))")
      #expect(abs(sigmoid[index] - expectedSigmoid) <= 2 * expectedSigmoid.ulp, "σ(\(x))")
    }
  }

  /// The double-precision functions against libm's (and the scalar σ) over the same grid.
  static func wideErrors(
    _ f: (UnsafePointer<Double>, UnsafeMutablePointer<Double>, Int) -> Void,
    reference: (Double) -> Double
  ) -> (ulps: Double, absolute: Double) {
    let inputs = Self.inputs.map(Double.init) + [-709, -745, -1e300, 1e300, 0x1p-1000]
    var output = [Double](repeating: .nan, count: inputs.count)
    inputs.withUnsafeBufferPointer { source in
      output.withUnsafeMutableBufferPointer {
        f(source.baseAddress!, $0.baseAddress!, source.count)
      }
    }
    var ulps = 0.0, absolute = 0.0
    for (x, y) in zip(inputs, output) {
      let expected = reference(x)
      let error = abs(y - expected)
      absolute = max(absolute, error)
      if abs(expected) >= 1e-300 { ulps = max(ulps, error / expected.ulp) }
    }
    return (ulps, absolute)
  }

  @Test(
    "Four lanes of doubles: σ within 2 units in the last place, tanh within 3 (a few ulps of 1 at most, absolutely)"
  )
  func wide() {
    let sigmoid = Self.wideErrors({ Logistic.sigmoid($0, into: $1, count: $2) }) {
      Logistic.sigmoid($0)
    }
    #expect(sigmoid.ulps <= 2 && sigmoid.absolute <= 4.5e-16, "\(sigmoid)")
    let tanh = Self.wideErrors({ Logistic.tanh($0, into: $1, count: $2) }) { Foundation.tanh($0) }
    #expect(tanh.ulps <= 3 && tanh.absolute <= 6.7e-16, "\(tanh)")
  }

  /// The cell step a row function at a time: the arithmetic the fused step must reproduce.
  static func rowwiseCell<T: BinaryFloatingPoint>(
    gates: [T],
    bias: [T],
    previous: [T],
    sigmoid: (UnsafePointer<T>, UnsafeMutablePointer<T>, Int) -> Void,
    tanh: (UnsafePointer<T>, UnsafeMutablePointer<T>, Int) -> Void
  ) -> (gates: [T], cell: [T], tanh: [T], output: [T]) {
    let H = previous.count
    var row = zip(gates, bias).map { $0 + $1 }
    var cell = [T](repeating: 0, count: H), cellTanh = cell, output = cell
    row.withUnsafeMutableBufferPointer { r in
      let a = r.baseAddress!
      sigmoid(a, a, 2 * H)
      tanh(a + 2 * H, a + 2 * H, H)
      sigmoid(a + 3 * H, a + 3 * H, H)
    }
    for j in 0 ..< H { cell[j] = row[H + j] * previous[j] + row[j] * row[2 * H + j] }
    cell.withUnsafeBufferPointer { c in
      cellTanh.withUnsafeMutableBufferPointer { tanh(c.baseAddress!, $0.baseAddress!, H) }
    }
    for j in 0 ..< H { output[j] = row[3 * H + j] * cellTanh[j] }
    return (row, cell, cellTanh, output)
  }

  @Test(
    "The fused LSTM cell step equals the row functions' step bit for bit, in both precisions, with tails",
    arguments: [1, 3, 4, 8, 13, 32]
  )
  func fusedCell(hidden H: Int) {
    var random = SeededRandom(seed: UInt64(H))
    let gates = (0 ..< (4 * H)).map { _ in (random.uniform() - 0.5) * 12 }
    let bias = (0 ..< (4 * H)).map { _ in random.uniform() - 0.5 }
    let previous = (0 ..< H).map { _ in (random.uniform() - 0.5) * 4 }

    func fused<T: BinaryFloatingPoint>(
      _ gates: [T],
      _ bias: [T],
      _ previous: [T],
      _ step: (
        UnsafeMutablePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>,
        UnsafeMutablePointer<T>
      ) -> Void
    ) -> (gates: [T], cell: [T], output: [T]) {
      var row = gates
      // The cell updated in place and tanh(c) written over the output, as the LSTM does.
      var cell = previous, output = [T](repeating: 0, count: H)
      row.withUnsafeMutableBufferPointer { r in
        bias.withUnsafeBufferPointer { b in
          cell.withUnsafeMutableBufferPointer { c in
            output.withUnsafeMutableBufferPointer { o in
              step(r.baseAddress!, b.baseAddress!, c.baseAddress!, o.baseAddress!)
            }
          }
        }
      }
      return (row, cell, output)
    }

    let floats = fused(gates.map(Float.init), bias.map(Float.init), previous.map(Float.init)) {
      Logistic.lstmCell(
        gates: $0,
        bias: $1,
        hidden: H,
        previousCell: $2,
        cell: $2,
        cellTanh: $3,
        output: $3
      )
    }
    let floatReference = Self.rowwiseCell(
      gates: gates.map(Float.init),
      bias: bias.map(Float.init),
      previous: previous.map(Float.init),
      sigmoid: { Logistic.sigmoid($0, into: $1, count: $2) },
      tanh: { Logistic.tanh($0, into: $1, count: $2) }
    )
    #expect(floats.gates == floatReference.gates)
    #expect(floats.cell == floatReference.cell)
    #expect(floats.output == floatReference.output)

    let doubles = fused(gates, bias, previous) {
      Logistic.lstmCell(
        gates: $0,
        bias: $1,
        hidden: H,
        previousCell: $2,
        cell: $2,
        cellTanh: $3,
        output: $3
      )
    }
    let doubleReference = Self.rowwiseCell(
      gates: gates,
      bias: bias,
      previous: previous,
      sigmoid: { Logistic.sigmoid($0, into: $1, count: $2) },
      tanh: { Logistic.tanh($0, into: $1, count: $2) }
    )
    #expect(doubles.gates == doubleReference.gates)
    #expect(doubles.cell == doubleReference.cell)
    #expect(doubles.output == doubleReference.output)
  }
}
