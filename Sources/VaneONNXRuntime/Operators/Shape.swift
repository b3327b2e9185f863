extension ONNXTensor {
  /// A new tensor of `shape` whose element i is this tensor's element `indices[i]`.
  /// `run` consecutive elements from each of `starts`, end to end, as `shape`: a gather whose
  /// innermost axis stays contiguous, copied a run at a time rather than an index per element.
  func gatheringRuns(_ starts: [Int], run: Int, shape: [Int]) -> ONNXTensor {
    func runs<T>(_ v: [T]) -> [T] {
      guard run > 0, !starts.isEmpty else { return [] }
      return [T](unsafeUninitializedCapacity: starts.count * run) { out, initialized in
        v.withUnsafeBufferPointer { source in
          for (i, start) in starts.enumerated() {
            precondition(start >= 0 && start + run <= source.count)
            (out.baseAddress! + i * run).initialize(from: source.baseAddress! + start, count: run)
          }
        }
        initialized = starts.count * run
      }
    }
    switch self.values {
    case .float(let v): return ONNXTensor(unchecked: shape, self.elementType, .float(runs(v)))
    case .double(let v): return ONNXTensor(unchecked: shape, self.elementType, .double(runs(v)))
    case .integer(let v): return ONNXTensor(unchecked: shape, self.elementType, .integer(runs(v)))
    case .bool(let v): return ONNXTensor(unchecked: shape, self.elementType, .bool(runs(v)))
    case .string(let v): return ONNXTensor(unchecked: shape, self.elementType, .string(runs(v)))
    }
  }

  func gathering(_ indices: [Int], shape: [Int]) -> ONNXTensor {
    switch self.values {
    case .float(let v):
      ONNXTensor(unchecked: shape, self.elementType, .float(indices.map { v[$0] }))
    case .double(let v):
      ONNXTensor(unchecked: shape, self.elementType, .double(indices.map { v[$0] }))
    case .integer(let v):
      ONNXTensor(unchecked: shape, self.elementType, .integer(indices.map { v[$0] }))
    case .bool(let v): ONNXTensor(unchecked: shape, self.elementType, .bool(indices.map { v[$0] }))
    case .string(let v):
      ONNXTensor(unchecked: shape, self.elementType, .string(indices.map { v[$0] }))
    }
  }

  /// Tensors of one element type joined end to end, as `shape`.
  static func joined(_ parts: [ONNXTensor], shape: [Int]) throws -> ONNXTensor {
    guard let first = parts.first else { throw ONNXRuntimeError.invalid("nothing to join") }
    guard parts.allSatisfy({ $0.elementType == first.elementType }) else {
      throw ONNXRuntimeError.invalid("inputs differ in element type")
    }
    func all<T>(_ extract: (ONNXTensor.Values) -> [T]?) -> [T] {
      var out: [T] = []
      for part in parts { out += extract(part.values) ?? [] }
      return out
    }
    switch first.values {
    case .float:
      return ONNXTensor(
        unchecked: shape,
        first.elementType,
        .float(all { if case .float(let v) = $0 { v } else { nil } })
      )
    case .double:
      return ONNXTensor(
        unchecked: shape,
        first.elementType,
        .double(all { if case .double(let v) = $0 { v } else { nil } })
      )
    case .integer:
      return ONNXTensor(
        unchecked: shape,
        first.elementType,
        .integer(all { if case .integer(let v) = $0 { v } else { nil } })
      )
    case .bool:
      return ONNXTensor(
        unchecked: shape,
        first.elementType,
        .bool(all { if case .bool(let v) = $0 { v } else { nil } })
      )
    case .string:
      return ONNXTensor(
        unchecked: shape,
        first.elementType,
        .string(all { if case .string(let v) = $0 { v } else { nil } })
      )
    }
  }
}

/// `axis` (negative counts from the end) as an index into `rank` axes.
func normalizedAxis(_ axis: Int, rank: Int, inclusive: Bool = false) throws -> Int {
  // Inclusive ranges (Flatten's [-r, r]) still count negative axes from the rank.
  let limit = inclusive ? rank + 1 : rank
  guard axis >= -rank, axis < limit else {
    throw ONNXRuntimeError.invalid("axis \(axis) is out of range for rank \(rank)")
  }
  return axis < 0 ? axis + rank : axis
}

/// The product of `dims`, or an error when it overflows or passes `limit`.
func checkedProduct(_ dims: [Int], limit: Int = Int.max) throws -> Int {
  var product = 1
  for dim in dims {
    guard dim >= 0 else { throw ONNXRuntimeError.invalid("shape \(dims) has a negative dimension") }
    let (next, overflow) = product.multipliedReportingOverflow(by: dim)
    guard !overflow, next <= limit else {
      throw ONNXRuntimeError.invalid("shape \(dims) holds too many elements")
    }
    product = next
  }
  return product
}

/// Transposes `x` by `perm`.
func transpose(_ x: ONNXTensor, _ perm: [Int]) throws -> ONNXTensor {
  guard perm.count == x.rank, Set(perm) == Set(0 ..< x.rank) else {
    throw ONNXRuntimeError.invalid("perm \(perm) is not a permutation of \(x.rank) axes")
  }
  let shape = perm.map { x.shape[$0] }
  // Axes of length 1 moved among the others leave every value where it was (a one-row
  // sequence made step-first, say): a new shape, no copy.
  let moved = perm.filter { x.shape[$0] != 1 }
  if moved == moved.sorted() { return x.reshaped(shape) }
  let inputStrides = strides(of: x.shape)
  // The last axis kept last (a batch-first sequence made step-first, say): whole rows move.
  if x.rank >= 2, perm.last == x.rank - 1 {
    return x.gatheringRuns(
      stridedOffsets(
        shape: Array(shape.dropLast()),
        steps: perm.dropLast().map { inputStrides[$0] }
      ),
      run: x.shape[x.rank - 1],
      shape: shape
    )
  }
  return x.gathering(
    stridedOffsets(shape: shape, steps: perm.map { inputStrides[$0] }),
    shape: shape
  )
}

/// Concatenates along `axis`.
func concatenate(_ parts: [ONNXTensor], axis rawAxis: Int) throws -> ONNXTensor {
  guard let first = parts.first else {
    throw ONNXRuntimeError.invalid("Concat needs at least one input")
  }
  let axis = try normalizedAxis(rawAxis, rank: first.rank)
  for part in parts
  where part.rank != first.rank
    || (0 ..< first.rank).contains(where: { $0 != axis && part.shape[$0] != first.shape[$0] })
  {
    throw ONNXRuntimeError.invalid(
      "shapes \(parts.map(\.shape)) do not concatenate along axis \(rawAxis)"
    )
  }
  var shape = first.shape
  shape[axis] = parts.reduce(0) { $0 + $1.shape[axis] }
  let outer = first.shape[..<axis].reduce(1, *), inner = first.shape[(axis + 1)...].reduce(1, *)
  // Element i of the joined parts, laid out so that each outer block takes each part's slab in turn.
  var offsets: [Int] = []
  var base = 0
  for part in parts {
    offsets.append(base)
    base += part.count
  }
  var indices: [Int] = []
  indices.reserveCapacity(shape.reduce(1, *))
  for o in 0 ..< outer {
    for (p, part) in parts.enumerated() {
      let slab = part.shape[axis] * inner
      for i in 0 ..< slab { indices.append(offsets[p] + o * slab + i) }
    }
  }
  return try ONNXTensor.joined(parts, shape: [parts.reduce(0) { $0 + $1.count }]).gathering(
    indices,
    shape: shape
  )
}

/// Slices `x`: per axis a start, an end and a step (ends clamped as numpy does).
func slice(
  _ x: ONNXTensor,
  starts: [Int64],
  ends: [Int64],
  axes: [Int]?,
  steps: [Int64]?
) throws -> ONNXTensor {
  let axes = try (axes ?? Array(0 ..< starts.count)).map { try normalizedAxis($0, rank: x.rank) }
  guard starts.count == ends.count, axes.count == starts.count,
    steps.map({ $0.count == starts.count }) ?? true, Set(axes).count == axes.count
  else {
    throw ONNXRuntimeError.invalid(
      "starts, ends, axes and steps differ in length or repeat an axis"
    )
  }
  var begin = [Int](repeating: 0, count: x.rank), step = [Int](repeating: 1, count: x.rank),
    shape = x.shape
  for (k, axis) in axes.enumerated() {
    let dim = Int64(x.shape[axis])
    let s = steps?[k] ?? 1
    guard s != 0 else { throw ONNXRuntimeError.invalid("a step of 0") }
    func clampIndex(_ value: Int64, forStart: Bool) -> Int64 {
      var v = value < 0 ? value &+ dim : value
      if s > 0 { v = min(max(v, 0), dim) } else { v = min(max(v, -1), dim - 1) }
      return v
    }
    let start = clampIndex(starts[k], forStart: true), end = clampIndex(ends[k], forStart: false)
    // Written so that no step, however large, overflows.
    let magnitude = s == .min ? Int64.max : Swift.abs(s)
    let length: Int64 =
      s > 0
      ? (end > start ? (end - start - 1) / magnitude + 1 : 0)
      : (start > end ? (start - end - 1) / magnitude + 1 : 0)
    begin[axis] = Int(start)
    step[axis] = Int(s)
    shape[axis] = Int(length)
  }
  let inputStrides = strides(of: x.shape)
  let base = (0 ..< x.rank).reduce(0) { $0 + begin[$1] * inputStrides[$1] }
  return x.gathering(
    stridedOffsets(
      shape: shape,
      steps: (0 ..< x.rank).map { step[$0] * inputStrides[$0] },
      base: base
    ),
    shape: shape
  )
}

/// The new shape of a Reshape: 0 copies the input's dimension (unless `allowZero`), -1 is
/// inferred.
func reshapeTarget(_ input: [Int], _ requested: [Int64], allowZero: Bool) throws -> [Int] {
  var shape = try requested.enumerated().map { index, dim -> Int in
    if dim == 0 && !allowZero {
      guard index < input.count else {
        throw ONNXRuntimeError.invalid(
          "shape \(requested) copies dimension \(index) the input does not have"
        )
      }
      return input[index]
    }
    guard dim >= -1, dim <= Int64(Int32.max) else {
      throw ONNXRuntimeError.invalid("shape \(requested) has dimension \(dim)")
    }
    return Int(dim)
  }
  let count = input.reduce(1, *)
  let inferred = shape.indices.filter { shape[$0] == -1 }
  guard inferred.count <= 1 else {
    throw ONNXRuntimeError.invalid("shape \(requested) has more than one -1")
  }
  let known = shape.filter { $0 != -1 }.reduce(1, *)
  if let index = inferred.first {
    guard known > 0, count % known == 0 else {
      throw ONNXRuntimeError.invalid("cannot reshape \(input) to \(requested)")
    }
    shape[index] = count / known
  }
  guard try checkedProduct(shape) == count else {
    throw ONNXRuntimeError.invalid("cannot reshape \(input) (\(count) elements) to \(requested)")
  }
  return shape
}

/// Axes from the attribute (before `inputSince`) or from input `index`.
private func axesArgument(
  _ context: ONNXNodeContext,
  inputSince: Int,
  index: Int = 1
) throws -> [Int]? {
  if context.opset < inputSince { return context.ints("axes") }
  return try context.optionalInput(index).map { try $0.integers("axes").map { Int($0) } }
}

private func broadcastTo(_ x: ONNXTensor, _ shape: [Int]) throws -> ONNXTensor {
  let target = try Broadcast.shape([x.shape, shape])
  guard let indices = Broadcast.indices(of: x.shape, in: target) else { return x }
  return x.gathering(indices, shape: target)
}

extension ONNXOperators {
  static let shapeOperators: [(String, ONNXOperator)] = [
    ("Identity", ONNXOperator(since: 1) { [try $0.input(0)] }),
    (
      "Dropout",
      ONNXOperator(since: 1) { context in
        // Inference: the input unchanged, and a mask of ones when asked for. Training mode draws
        // random masks, which a served model never does.
        let x = try context.input(0)
        let ratio = context.optionalInput(1)?.doubles?.first ?? context.float("ratio", 0.5)
        if let training = context.optionalInput(2), case .bool(let flag) = training.values,
          flag.first == true, ratio != 0
        {
          throw ONNXRuntimeError.unsupported("Dropout in training mode")
        }
        if context.outputCount > 1 {
          return [x, ONNXTensor(shape: x.shape, bools: [Bool](repeating: true, count: x.count))]
        }
        return [x]
      }
    ),
    (
      "Constant",
      ONNXOperator(since: 1) { context in
        if let tensor = try context.tensor("value") { return [tensor] }
        if context.has("value_float") {
          return [ONNXTensor(shape: [], floats: [Float(context.float("value_float", 0))])]
        }
        if let floats = context.floats("value_floats") {
          return [ONNXTensor(shape: [floats.count], floats: floats.map(Float.init))]
        }
        if context.has("value_int") {
          return [ONNXTensor(shape: [], integers: [Int64(context.int("value_int", 0))])]
        }
        if let ints = context.ints("value_ints") {
          return [ONNXTensor(shape: [ints.count], integers: ints.map(Int64.init))]
        }
        if context.has("value_string") {
          return [ONNXTensor(shape: [], strings: [context.string("value_string", "")])]
        }
        if let strings = context.strings("value_strings") {
          return [ONNXTensor(shape: [strings.count], strings: strings)]
        }
        throw ONNXRuntimeError.unsupported("a Constant without a dense value")
      }
    ),
    (
      "Shape",
      ONNXOperator(since: 1) { context in
        let shape = try context.input(0).shape
        let rank = shape.count
        func clamp(_ value: Int) -> Int { min(max(value < 0 ? value + rank : value, 0), rank) }
        let start = clamp(context.int("start", 0)),
          end = context.has("end") ? clamp(context.int("end", rank)) : rank
        let dims = start < end ? Array(shape[start ..< end]) : []
        return [ONNXTensor(shape: [dims.count], integers: dims.map(Int64.init))]
      }
    ),
    (
      "Size",
      ONNXOperator(since: 1) { [ONNXTensor(shape: [], integers: [Int64(try $0.input(0).count)])] }
    ),
    (
      "Reshape",
      ONNXOperator(since: 5) { context in
        let x = try context.input(0)
        let shape = try reshapeTarget(
          x.shape,
          try context.input(1).integers("shape"),
          allowZero: context.int("allowzero", 0) == 1
        )
        return [x.reshaped(shape)]
      }
    ),
    (
      "Flatten",
      ONNXOperator(since: 1) { context in
        let x = try context.input(0)
        let axis = try normalizedAxis(context.int("axis", 1), rank: x.rank, inclusive: true)
        return [x.reshaped([x.shape[..<axis].reduce(1, *), x.shape[axis...].reduce(1, *)])]
      }
    ),
    (
      "Squeeze",
      ONNXOperator(since: 1) { context in
        let x = try context.input(0)
        let axes = try
          (try axesArgument(context, inputSince: 13) ?? x.shape.indices.filter { x.shape[$0] == 1 })
          .map { try normalizedAxis($0, rank: x.rank) }
        for axis in axes where x.shape[axis] != 1 {
          throw ONNXRuntimeError.invalid("axis \(axis) has size \(x.shape[axis]), not 1")
        }
        return [x.reshaped(x.shape.indices.filter { !axes.contains($0) }.map { x.shape[$0] })]
      }
    ),
    (
      "Unsqueeze",
      ONNXOperator(since: 1) { context in
        let x = try context.input(0)
        guard let requested = try axesArgument(context, inputSince: 13) else {
          throw ONNXRuntimeError.invalid("axes are required")
        }
        let rank = x.rank + requested.count
        let axes = Set(try requested.map { try normalizedAxis($0, rank: rank) })
        guard axes.count == requested.count else {
          throw ONNXRuntimeError.invalid("axes \(requested) repeat")
        }
        var dims = x.shape.makeIterator()
        return [x.reshaped((0 ..< rank).map { axes.contains($0) ? 1 : dims.next()! })]
      }
    ),
    (
      "Transpose",
      ONNXOperator(since: 1) { context in
        let x = try context.input(0)
        return [try transpose(x, context.ints("perm") ?? Array((0 ..< x.rank).reversed()))]
      }
    ),
    (
      "Concat",
      ONNXOperator(since: 1) { context in
        [
          try concatenate(
            context.inputs.compactMap { $0 },
            axis: context.int("axis", context.opset < 4 ? 1 : 0)
          )
        ]
      }
    ),
    (
      "Split",
      ONNXOperator(since: 1) { context in
        let x = try context.input(0)
        let axis = try normalizedAxis(context.int("axis", 0), rank: x.rank)
        var sizes: [Int]
        if context.opset >= 13, let given = context.optionalInput(1) {
          sizes = try given.integers("split").map { value in
            guard value >= 0, value <= Int64(x.shape[axis]) else {
              throw ONNXRuntimeError.invalid(
                "split size \(value) for a dimension of \(x.shape[axis])"
              )
            }
            return Int(value)
          }
        } else if context.opset < 13, let given = context.ints("split") {
          guard given.allSatisfy({ $0 >= 0 && $0 <= x.shape[axis] }) else {
            throw ONNXRuntimeError.invalid(
              "split sizes \(given) for a dimension of \(x.shape[axis])"
            )
          }
          sizes = given
        } else {
          let parts =
            context.opset >= 18 && context.has("num_outputs")
            ? context.int("num_outputs", 1) : context.outputCount
          guard parts > 0, parts <= 65_536 else {
            throw ONNXRuntimeError.invalid("cannot split into \(parts) outputs")
          }
          let chunk = (x.shape[axis] + parts - 1) / parts
          sizes = (0 ..< parts).map { min(chunk, max(0, x.shape[axis] - $0 * chunk)) }
        }
        guard sizes.reduce(0, +) == x.shape[axis], sizes.allSatisfy({ $0 >= 0 }) else {
          throw ONNXRuntimeError.invalid("split sizes \(sizes) do not add up to \(x.shape[axis])")
        }
        var start: Int64 = 0
        return try sizes.map { size in
          defer { start += Int64(size) }
          return try slice(
            x,
            starts: [start],
            ends: [start + Int64(size)],
            axes: [axis],
            steps: nil
          )
        }
      }
    ),
    (
      "Slice",
      ONNXOperator(since: 1) { context in
        let x = try context.input(0)
        if context.opset < 10 {
          guard let starts = context.ints("starts"), let ends = context.ints("ends") else {
            throw ONNXRuntimeError.invalid("starts and ends are required")
          }
          return [
            try slice(
              x,
              starts: starts.map(Int64.init),
              ends: ends.map(Int64.init),
              axes: context.ints("axes"),
              steps: nil
            )
          ]
        }
        return [
          try slice(
            x,
            starts: try context.input(1).integers("starts"),
            ends: try context.input(2).integers("ends"),
            axes: try context.optionalInput(3).map { try $0.integers("axes").map { Int($0) } },
            steps: try context.optionalInput(4)?.integers("steps")
          )
        ]
      }
    ),
    (
      "Gather",
      ONNXOperator(since: 1) { context in
        let x = try context.input(0), indexTensor = try context.input(1)
        let axis = try normalizedAxis(context.int("axis", 0), rank: x.rank)
        let dim = x.shape[axis]
        let indices = try indexTensor.integers("indices").map { value -> Int in
          guard value >= -Int64(dim), value < Int64(dim) else {
            throw ONNXRuntimeError.invalid(
              "index \(value) is out of range for a dimension of \(dim)"
            )
          }
          return value < 0 ? Int(value) + dim : Int(value)
        }
        let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *)
        let shape = Array(x.shape[..<axis]) + indexTensor.shape + Array(x.shape[(axis + 1)...])
        var positions: [Int] = []
        positions.reserveCapacity(try context.checkedCount(shape))
        for o in 0 ..< outer {
          for i in indices { for j in 0 ..< inner { positions.append((o * dim + i) * inner + j) } }
        }
        return [x.gathering(positions, shape: shape)]
      }
    ),
    (
      "Expand",
      ONNXOperator(since: 8) { context in
        let x = try context.input(0)
        let shape = try context.input(1).integers("shape").map { Int($0) }
        _ = try context.checkedCount(try Broadcast.shape([x.shape, shape]))
        return [try broadcastTo(x, shape)]
      }
    ),
    (
      "Tile",
      ONNXOperator(since: 6) { context in
        let x = try context.input(0)
        let repeats = try context.input(1).integers("repeats").map { Int($0) }
        guard repeats.count == x.rank, repeats.allSatisfy({ $0 >= 0 }) else {
          throw ONNXRuntimeError.invalid("repeats \(repeats) for rank \(x.rank)")
        }
        let shape = try zip(x.shape, repeats).map {
          try checkedProduct([$0, $1], limit: context.limits.maximumTensorElements)
        }
        _ = try context.checkedCount(shape)
        // Each output axis as (repeat, position) pairs: the repeat steps by 0, the position by the stride.
        let inputStrides = strides(of: x.shape)
        let indices = stridedOffsets(
          shape: (0 ..< x.rank).flatMap { [repeats[$0], x.shape[$0]] },
          steps: (0 ..< x.rank).flatMap { [0, inputStrides[$0]] }
        )
        return [x.gathering(indices, shape: shape)]
      }
    ),
    (
      "ConstantOfShape",
      ONNXOperator(since: 9) { context in
        let shape = try context.input(0).integers("shape").map { Int($0) }
        let count = try context.checkedCount(shape)
        let value = try context.tensor("value") ?? ONNXTensor(shape: [1], floats: [0])
        return [value.gathering([Int](repeating: 0, count: count), shape: shape)]
      }
    ),
    (
      "Range",
      ONNXOperator(since: 11) { context in
        let start = try context.input(0), limit = try context.input(1), delta = try context.input(2)
        guard let s = start.doubles?.first, let l = limit.doubles?.first,
          let d = delta.doubles?.first, d != 0
        else {
          throw ONNXRuntimeError.invalid("start, limit and delta must be scalars, delta nonzero")
        }
        let steps = ((l - s) / d).rounded(.up)
        guard steps.isFinite || steps < 0, steps <= Double(context.limits.maximumTensorElements)
        else {
          throw ONNXRuntimeError.invalid("a range of \(steps) elements is over the limit")
        }
        let count = steps.isNaN ? 0 : max(0, Int(steps))
        _ = try context.checkedCount([count])
        switch start.values {
        case .float(let v):
          return [
            ONNXTensor(shape: [count], floats: (0 ..< count).map { v[0] + Float($0) * Float(d) })
          ]
        case .integer(let v):
          let step = try delta.integers("delta")[0]
          return [
            ONNXTensor(
              shape: [count],
              integers: (0 ..< count).map { v[0] + Int64($0) * step },
              type: start.elementType
            )
          ]
        default:
          return [
            ONNXTensor.from(
              doubles: (0 ..< count).map { s + Double($0) * d },
              shape: [count],
              type: start.elementType
            )
          ]
        }
      }
    ),
  ]
}
