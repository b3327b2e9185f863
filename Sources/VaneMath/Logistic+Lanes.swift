// This file is compiled twice: by VaneMath for eight float lanes (AVX2) and, through a
// symbolic link, by VaneMathAVX512 for sixteen (AVX-512). Each module says what `Lanes`,
// `LaneBits` and `LaneIntegers` are; the arithmetic is written once, on concrete SIMD types,
// because Swift's generic SIMD operations do not compile to vector instructions.

#if VANE_WIDE_LANES
import VaneMath
#endif

/// The LSTM's gate activations on single-precision lanes (`Lanes`: eight here, sixteen in
/// VaneMathAVX512).
///
/// libm's scalar `expf` and `tanhf` were most of a float32 LSTM epoch's time outside the GEMMs.
/// The exponential here is the classic range reduction, x = n·ln 2 + r with |r| ≤ ln 2 / 2, a
/// degree-6 polynomial for eʳ and 2ⁿ built in the exponent bits; tanh uses an odd polynomial
/// below 0.625 (where 1 − e⁻²ˣ would lose relative accuracy) and the exponential above. Both are
/// within a few units in the last place of the double-precision functions rounded to float
/// (checked over a dense grid in the tests).
extension Logistic {
  /// eˣ for x ≤ 0, lane by lane (x below −87 gives e⁻⁸⁷, which is all a sigmoid needs).
  @inline(__always)
  static func expNonPositive(_ x: Lanes) -> Lanes {
    let x = x.replacing(with: -87, where: x .< -87)
    // n = round(x / ln 2) by the 1.5·2²³ trick: adding it leaves n in the low mantissa bits.
    let magic: Float = 12_582_912
    let shifted = x * 1.442_695_04 + magic
    let n = shifted - magic
    // r = x − n·ln 2, with ln 2 in two parts so that n·ln2High is exact.
    var r = x - n * 0.693_359_375
    r = r + n * 2.121_944_4e-4
    let r2 = r * r
    // Horner's steps as fused multiply-adds (one instruction, one rounding each).
    var p: Lanes = Lanes(repeating: 1.987_569_15e-4)
    p = Lanes(repeating: 1.398_199_950_7e-3).addingProduct(p, r)
    p = Lanes(repeating: 8.333_451_907_3e-3).addingProduct(p, r)
    p = Lanes(repeating: 4.166_579_589_4e-2).addingProduct(p, r)
    p = Lanes(repeating: 1.666_666_545_9e-1).addingProduct(p, r)
    p = Lanes(repeating: 5.000_000_120_1e-1).addingProduct(p, r)
    p = (r + 1).addingProduct(p, r2)
    // 2ⁿ: n + 127 in the exponent field (n ≥ −126 here, so always a normal number).
    let nBits = unsafeBitCast(shifted, to: LaneIntegers.self) &- 0x4B40_0000
    let scale = unsafeBitCast((nBits &+ 127) &<< 23, to: Lanes.self)
    return p * scale
  }

  /// |x|, lane by lane (the sign bit cleared).
  @inline(__always)
  static func magnitude(_ x: Lanes) -> Lanes {
    unsafeBitCast(unsafeBitCast(x, to: LaneBits.self) & 0x7FFF_FFFF, to: Lanes.self)
  }

  @inline(__always)
  static func sigmoid(_ x: Lanes) -> Lanes {
    let e: Lanes = expNonPositive(-magnitude(x))
    let s: Lanes = 1 / (1 + e)
    return s.replacing(with: e * s, where: x .< 0)
  }

  @inline(__always)
  static func tanh(_ x: Lanes) -> Lanes {
    let a: Lanes = magnitude(x)
    // Large: (1 − e⁻²ᵃ) / (1 + e⁻²ᵃ), the sign put back.
    let e: Lanes = expNonPositive(-2 * a)
    var large = (1 - e) / (1 + e)
    large = large.replacing(with: -large, where: x .< 0)
    // Small: x + x³·P(x²).
    let z = x * x
    var p: Lanes = Lanes(repeating: -5.704_988_727_45e-3)
    p = Lanes(repeating: 2.063_908_879_54e-2).addingProduct(p, z)
    p = Lanes(repeating: -5.373_971_555_31e-2).addingProduct(p, z)
    p = Lanes(repeating: 1.333_144_220_36e-1).addingProduct(p, z)
    p = Lanes(repeating: -3.333_328_194_22e-1).addingProduct(p, z)
    let small = x.addingProduct(p * z, x)
    return large.replacing(with: small, where: a .< 0.625)
  }
}

/// An LSTM cell's step over one sample's gate row, fused: each group of lanes takes its four
/// gates' pre-activations and biases, activates them, and goes on to the cell and hidden state
/// while they are in registers, where separate row functions would make a pass (and a call)
/// per gate. Lane by lane it is the same arithmetic as the row functions, so the results are
/// equal bit for bit.
extension Logistic {
  @inline(__always)
  static func lstmCell<V: ActivationLanes>(
    gates row: UnsafeMutablePointer<V.Scalar>,
    bias: UnsafePointer<V.Scalar>,
    hidden H: Int,
    previousCell: UnsafePointer<V.Scalar>,
    cell: UnsafeMutablePointer<V.Scalar>,
    cellTanh: UnsafeMutablePointer<V.Scalar>,
    output: UnsafeMutablePointer<V.Scalar>,
    order: LSTMGateOrder,
    keepingActivations keep: Bool,
    lanes _: V.Type
  ) {
    let lanes = V.laneCount
    // Whole groups run straight through: loads and stores without per-lane branches keep the
    // activations in full vector registers (a merged short-group path scalarised them).
    @inline(__always) func group(
      _ g: UnsafeMutablePointer<V.Scalar>,
      _ b: UnsafePointer<V.Scalar>,
      at: (input: Int, forget: Int, cell: Int, output: Int),
      _ previous: UnsafePointer<V.Scalar>,
      _ cell: UnsafeMutablePointer<V.Scalar>,
      _ cellTanh: UnsafeMutablePointer<V.Scalar>,
      _ output: UnsafeMutablePointer<V.Scalar>
    ) {
      @inline(__always) func load(_ p: UnsafePointer<V.Scalar>) -> V { V.load(p) }
      @inline(__always) func store(_ v: V, _ p: UnsafeMutablePointer<V.Scalar>) { v.store(p) }
      let i = V.sigmoid(load(g + at.input) + load(b + at.input))
      let f = V.sigmoid(load(g + at.forget) + load(b + at.forget))
      let gate = V.tanh(load(g + at.cell) + load(b + at.cell))
      let o = V.sigmoid(load(g + at.output) + load(b + at.output))
      // The activated gates and tanh(c) are kept for training's backward pass; inference
      // writes only c and h (the gate rows' stores were half a batch's memory traffic).
      if keep {
        store(i, g + at.input)
        store(f, g + at.forget)
        store(gate, g + at.cell)
        store(o, g + at.output)
      }
      let c = f * load(previous) + i * gate
      store(c, cell)
      let t = V.tanh(c)
      if keep { store(t, cellTanh) }
      store(o * t, output)
    }
    let blocks = order.blocks
    let rowAt = (blocks.input * H, blocks.forget * H, blocks.cell * H, blocks.output * H)
    // A short last group runs on copies padded with zeros (as the row functions' tails read
    // zeros past the row's end); only its own lanes are copied back. Scratch slots, `lanes`
    // each: the four gates in the row's order, their biases, then the previous cell, the
    // cell, its tanh and the output. One call site of `group` keeps the activations inlined.
    withUnsafeTemporaryAllocation(of: V.Scalar.self, capacity: 12 * lanes) { scratch in
      let s = scratch.baseAddress!
      let slotAt = (
        blocks.input * lanes, blocks.forget * lanes, blocks.cell * lanes, blocks.output * lanes
      )
      var j = 0
      while j < H {
        let count = min(lanes, H - j)
        let whole = count == lanes
        if !whole {
          s.initialize(repeating: 0, count: 12 * lanes)
          for block in 0 ..< 4 {
            (s + block * lanes).update(from: row + block * H + j, count: count)
            (s + (4 + block) * lanes).update(from: bias + block * H + j, count: count)
          }
          (s + 8 * lanes).update(from: previousCell + j, count: count)
        }
        group(
          whole ? row + j : s,
          whole ? bias + j : UnsafePointer(s + 4 * lanes),
          at: whole ? rowAt : slotAt,
          whole ? previousCell + j : UnsafePointer(s + 8 * lanes),
          whole ? cell + j : s + 9 * lanes,
          whole ? cellTanh + j : s + 10 * lanes,
          whole ? output + j : s + 11 * lanes
        )
        if !whole {
          if keep {
            for block in 0 ..< 4 {
              (row + block * H + j).update(from: s + block * lanes, count: count)
            }
            (cellTanh + j).update(from: s + 10 * lanes, count: count)
          }
          (cell + j).update(from: s + 9 * lanes, count: count)
          (output + j).update(from: s + 11 * lanes, count: count)
        }
        j += lanes
      }
    }
  }
}

/// The lane types the fused cell runs on, with their activations as static requirements:
/// a generic body calls them directly, so they inline into it (closures passed in did not, and
/// each call went through memory).
///
/// Loads, stores and the lane count are requirements too, so that even the unspecialised
/// generic body (which the compiler emits beside the specialisations) calls only these
/// witnesses and no generic standard-library function: a generic function compiled under
/// VaneMathAVX512's target would be a shared (weak) symbol, and the linker might pick that copy
/// for callers on a CPU without AVX-512. `WideLanesTests` checks the module defines none.
protocol ActivationLanes: SIMD where Scalar: BinaryFloatingPoint {
  static var laneCount: Int { get }
  static func load(_ p: UnsafePointer<Scalar>) -> Self
  func store(_ p: UnsafeMutablePointer<Scalar>)
  static func sigmoid(_ x: Self) -> Self
  static func tanh(_ x: Self) -> Self
}

/// This module's float lanes (eight or sixteen).
extension Logistic.Lanes: ActivationLanes {
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
