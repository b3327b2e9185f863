/// Numpy-style broadcasting of shapes, and for each output element the element of each input
/// it reads.
enum Broadcast {
  /// The shape `shapes` broadcast to.
  static func shape(_ shapes: [[Int]]) throws -> [Int] {
    let rank = shapes.map { $0.count }.max() ?? 0
    var out = [Int](repeating: 1, count: rank)
    for shape in shapes {
      let offset = rank - shape.count
      for (axis, dim) in shape.enumerated() {
        let current = out[offset + axis]
        if current == dim || dim == 1 { continue }
        if current == 1 {
          out[offset + axis] = dim
          continue
        }
        throw ONNXRuntimeError.invalid(
          "shapes \(shapes.map { "\($0)" }.joined(separator: " and ")) do not broadcast"
        )
      }
    }
    return out
  }

  /// For each element of `output` (row-major), the index of the element of `input` it reads;
  /// nil when `input` is `output` itself.
  static func indices(of input: [Int], in output: [Int]) -> [Int]? {
    if input == output { return nil }
    if input.reduce(1, *) == 1 { return [Int](repeating: 0, count: output.reduce(1, *)) }
    let offset = output.count - input.count
    let inputStrides = strides(of: input)
    // Stride of each output axis in the input (0 where the input broadcasts).
    var steps = [Int](repeating: 0, count: output.count)
    for axis in 0 ..< input.count where input[axis] != 1 {
      steps[offset + axis] = inputStrides[axis]
    }
    return stridedOffsets(shape: output, steps: steps)
  }

  /// Whether `input`, its leading 1s dropped, is the trailing axes of `output`.
  static func isTrailing(_ input: [Int], of output: [Int]) -> Bool {
    let core = input.drop { $0 == 1 }
    return core.count <= output.count && Array(core) == Array(output.suffix(core.count))
  }

  /// `f` over `a` and `b` broadcast together.
  static func map<A, B, R>(
    _ a: [A],
    _ shapeA: [Int],
    _ b: [B],
    _ shapeB: [Int],
    _ f: (A, B) throws -> R
  ) throws -> (values: [R], shape: [Int]) {
    let shape = try Self.shape([shapeA, shapeB])
    if shapeA == shapeB { return (try zip(a, b).map(f), shape) }
    if b.count == 1, shapeA == shape {
      let y = b[0]
      return (try a.map { try f($0, y) }, shape)
    }
    if a.count == 1, shapeB == shape {
      let x = a[0]
      return (try b.map { try f(x, $0) }, shape)
    }
    // One operand a block of trailing axes repeated over the other's leading ones (a bias row
    // added to a matrix, the common case): by rows, without an index per element.
    if shapeA == shape, b.count > 0, Self.isTrailing(shapeB, of: shape) {
      var out: [R] = []
      out.reserveCapacity(a.count)
      for start in stride(from: 0, to: a.count, by: b.count) {
        for j in 0 ..< b.count { out.append(try f(a[start + j], b[j])) }
      }
      return (out, shape)
    }
    if shapeB == shape, a.count > 0, Self.isTrailing(shapeA, of: shape) {
      var out: [R] = []
      out.reserveCapacity(b.count)
      for start in stride(from: 0, to: b.count, by: a.count) {
        for j in 0 ..< a.count { out.append(try f(a[j], b[start + j])) }
      }
      return (out, shape)
    }
    let ia = Self.indices(of: shapeA, in: shape), ib = Self.indices(of: shapeB, in: shape)
    let count = shape.reduce(1, *)
    var out: [R] = []
    out.reserveCapacity(count)
    for index in 0 ..< count { out.append(try f(a[ia?[index] ?? index], b[ib?[index] ?? index])) }
    return (out, shape)
  }
}
