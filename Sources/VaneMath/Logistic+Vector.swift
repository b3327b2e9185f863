/// The LSTM's gate activations over whole rows of single-precision values, eight lanes at a
/// time.
///
/// libm's scalar `expf` and `tanhf` were most of a float32 LSTM epoch's time outside the GEMMs.
/// The exponential here is the classic range reduction, x = n·ln 2 + r with |r| ≤ ln 2 / 2, a
/// degree-6 polynomial for eʳ and 2ⁿ built in the exponent bits; tanh uses an odd polynomial
/// below 0.625 (where 1 − e⁻²ˣ would lose relative accuracy) and the exponential above. Both are
/// within a few units in the last place of the double-precision functions rounded to float
/// (checked over a dense grid in the tests).
extension Logistic {
  typealias Lanes = SIMD8<Float>
  typealias LaneBits = SIMD8<UInt32>
  typealias LaneIntegers = SIMD8<Int32>

  /// Applies `f` to `count` values from `source` into `target` (which may be `source`).
  @inline(__always)
  static func map(
    _ source: UnsafePointer<Float>,
    into target: UnsafeMutablePointer<Float>,
    count: Int,
    _ f: (Lanes) -> Lanes
  ) {
    var i = 0
    while i + 8 <= count {
      let v = UnsafeRawPointer(source + i).loadUnaligned(as: Lanes.self)
      UnsafeMutableRawPointer(target + i).storeBytes(of: f(v), as: Lanes.self)
      i += 8
    }
    if i < count {
      var v = Lanes()
      for k in 0 ..< (count - i) { v[k] = source[i + k] }
      let y = f(v)
      for k in 0 ..< (count - i) { target[i + k] = y[k] }
    }
  }

  /// σ of `count` values, from `source` into `target` (which may be `source`).
  public static func sigmoid(
    _ source: UnsafePointer<Float>,
    into target: UnsafeMutablePointer<Float>,
    count: Int
  ) {
    map(source, into: target, count: count, sigmoid)
  }

  /// tanh of `count` values, from `source` into `target` (which may be `source`).
  public static func tanh(
    _ source: UnsafePointer<Float>,
    into target: UnsafeMutablePointer<Float>,
    count: Int
  ) {
    map(source, into: target, count: count, tanh)
  }
}

/// The same over double-precision rows, four lanes at a time: one reduction, x = n·ln 2 + r,
/// gives both eˣ = 2ⁿ(1 + q) and eˣ − 1 = 2ⁿq + (2ⁿ − 1) with q = eʳ − 1 from its Taylor series
/// to degree 13 (below an ulp for |r| ≤ ln 2 / 2). tanh takes −m / (2 + m) with m = e⁻²ᵃ − 1,
/// which keeps its relative accuracy for tiny arguments; σ takes e⁻ᵃ itself, which keeps it for
/// very negative ones.
extension Logistic {
  typealias WideLanes = SIMD4<Double>

  /// (2ⁿ, eʳ − 1) for x = n·ln 2 + r, x ≤ 0 (clamped at −708, where 2ⁿ is still normal).
  @inline(__always)
  static func reduced(_ x: WideLanes) -> (scale: WideLanes, q: WideLanes) {
    let x = x.replacing(with: -708, where: x .< -708)
    let magic: Double = 6_755_399_441_055_744  // 1.5·2⁵², n lands in the low mantissa bits
    let shifted = x * 1.442_695_040_888_963_4 + magic
    let n = shifted - magic
    let r = (x - n * 6.931_471_803_691_238_164_90e-01) - n * 1.908_214_929_270_587_700_02e-10
    var p = WideLanes(repeating: 1.0 / 6_227_020_800)  // 1/13!
    p = p * r + 1.0 / 479_001_600
    p = p * r + 1.0 / 39_916_800
    p = p * r + 1.0 / 3_628_800
    p = p * r + 1.0 / 362_880
    p = p * r + 1.0 / 40_320
    p = p * r + 1.0 / 5_040
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    let q: WideLanes = p * r
    let nBits = unsafeBitCast(shifted, to: SIMD4<Int64>.self) &- 0x4338_0000_0000_0000
    let scale = unsafeBitCast((nBits &+ 1023) &<< 52, to: WideLanes.self)
    return (scale, q)
  }

  @inline(__always)
  static func magnitude(_ x: WideLanes) -> WideLanes {
    unsafeBitCast(
      unsafeBitCast(x, to: SIMD4<UInt64>.self) & 0x7FFF_FFFF_FFFF_FFFF,
      to: WideLanes.self
    )
  }

  @inline(__always)
  static func sigmoid(_ x: WideLanes) -> WideLanes {
    let (scale, q) = reduced(-magnitude(x))
    let e: WideLanes = scale + scale * q
    let s: WideLanes = 1 / (1 + e)
    return s.replacing(with: e * s, where: x .< 0)
  }

  @inline(__always)
  static func tanh(_ x: WideLanes) -> WideLanes {
    let (scale, q) = reduced(-2 * magnitude(x))
    let m: WideLanes = scale * q + (scale - 1)
    let t: WideLanes = -m / (2 + m)
    return t.replacing(with: -t, where: x .< 0)
  }

  @inline(__always)
  static func map(
    _ source: UnsafePointer<Double>,
    into target: UnsafeMutablePointer<Double>,
    count: Int,
    _ f: (WideLanes) -> WideLanes
  ) {
    var i = 0
    while i + 4 <= count {
      let v = UnsafeRawPointer(source + i).loadUnaligned(as: WideLanes.self)
      UnsafeMutableRawPointer(target + i).storeBytes(of: f(v), as: WideLanes.self)
      i += 4
    }
    if i < count {
      var v = WideLanes()
      for k in 0 ..< (count - i) { v[k] = source[i + k] }
      let y = f(v)
      for k in 0 ..< (count - i) { target[i + k] = y[k] }
    }
  }

  /// σ of `count` values, from `source` into `target` (which may be `source`).
  public static func sigmoid(
    _ source: UnsafePointer<Double>,
    into target: UnsafeMutablePointer<Double>,
    count: Int
  ) {
    map(source, into: target, count: count, sigmoid)
  }

  /// tanh of `count` values, from `source` into `target` (which may be `source`).
  public static func tanh(
    _ source: UnsafePointer<Double>,
    into target: UnsafeMutablePointer<Double>,
    count: Int
  ) {
    map(source, into: target, count: count, tanh)
  }
}

extension Logistic {
  /// Where each gate's `hidden` values sit in a row of four gates.
  public enum LSTMGateOrder: Sendable {
    /// Input, forget, cell, output (PyTorch's and Vane's).
    case inputForgetCellOutput
    /// Input, output, forget, cell (ONNX's LSTM operator).
    case inputOutputForgetCell

    /// The blocks of input, forget, cell and output.
    @inline(__always)
    public var blocks: (input: Int, forget: Int, cell: Int, output: Int) {
      switch self {
      case .inputForgetCellOutput: (0, 1, 2, 3)
      case .inputOutputForgetCell: (0, 2, 3, 1)
      }
    }
  }

  /// One sample's LSTM step: adds `bias` to the gates' pre-activations in `gates` (`hidden`
  /// each, in `order`) and activates them in place, then c = f·c₋₁ + i·g, tanh(c) and
  /// h = o·tanh(c). `previousCell` may be `cell` and `cellTanh` may be `output`.
  /// `keepingActivations`: false writes only `cell` and `output` (inference), leaving the
  /// gates' pre-activations in `gates` and `cellTanh` untouched.
  ///
  /// Never inlined: a caller's module may be compiled without this one's AVX2 target.
  @inline(never)
  public static func lstmCell(
    gates: UnsafeMutablePointer<Float>,
    bias: UnsafePointer<Float>,
    hidden: Int,
    previousCell: UnsafePointer<Float>,
    cell: UnsafeMutablePointer<Float>,
    cellTanh: UnsafeMutablePointer<Float>,
    output: UnsafeMutablePointer<Float>,
    order: LSTMGateOrder = .inputForgetCellOutput,
    keepingActivations: Bool = true
  ) {
    lstmCell(
      gates: gates,
      bias: bias,
      hidden: hidden,
      previousCell: previousCell,
      cell: cell,
      cellTanh: cellTanh,
      output: output,
      order: order,
      keepingActivations: keepingActivations,
      lanes: Lanes.self
    )
  }

  /// The double-precision ``lstmCell(gates:bias:hidden:previousCell:cell:cellTanh:output:)``.
  public static func lstmCell(
    gates: UnsafeMutablePointer<Double>,
    bias: UnsafePointer<Double>,
    hidden: Int,
    previousCell: UnsafePointer<Double>,
    cell: UnsafeMutablePointer<Double>,
    cellTanh: UnsafeMutablePointer<Double>,
    output: UnsafeMutablePointer<Double>,
    order: LSTMGateOrder = .inputForgetCellOutput,
    keepingActivations: Bool = true
  ) {
    lstmCell(
      gates: gates,
      bias: bias,
      hidden: hidden,
      previousCell: previousCell,
      cell: cell,
      cellTanh: cellTanh,
      output: output,
      order: order,
      keepingActivations: keepingActivations,
      lanes: WideLanes.self
    )
  }
}

extension SIMD4: ActivationLanes where Scalar == Double {
  static var laneCount: Int { Self.scalarCount }

  @inline(__always)
  static func load(_ p: UnsafePointer<Scalar>) -> Self {
    UnsafeRawPointer(p).loadUnaligned(as: Self.self)
  }

  @inline(__always)
  func store(_ p: UnsafeMutablePointer<Scalar>) {
    UnsafeMutableRawPointer(p).storeBytes(of: self, as: Self.self)
  }

  @inline(__always)
  static func sigmoid(_ x: Self) -> Self { Logistic.sigmoid(x) }

  @inline(__always)
  static func tanh(_ x: Self) -> Self { Logistic.tanh(x) }
}
