internal import Foundation

/// A reduction's plan: for each output element, the input elements it folds.
struct ReductionPlan {
  var shape: [Int]
  /// Output element → input element indices.
  var groups: [[Int]]

  /// Reducing `input` over `axes` (nil or empty: all axes, unless `noopWhenEmpty`).
  init(input: [Int], axes requested: [Int]?, keepDims: Bool, noopWhenEmpty: Bool = false) throws {
    var axes = try Set((requested ?? []).map { try normalizedAxis($0, rank: input.count) })
    if axes.isEmpty {
      if noopWhenEmpty {
        self.shape = input
        self.groups = (0 ..< input.reduce(1, *)).map { [$0] }
        return
      }
      axes = Set(0 ..< input.count)
    }
    let kept = (0 ..< input.count).filter { !axes.contains($0) }
    let outShape =
      keepDims ? input.indices.map { axes.contains($0) ? 1 : input[$0] } : kept.map { input[$0] }
    let keptShape = kept.map { input[$0] }
    let keptStrides = strides(of: keptShape)
    // Each input element's group: its index over the kept axes (reduced axes step by 0).
    var steps = [Int](repeating: 0, count: input.count)
    for (k, axis) in kept.enumerated() { steps[axis] = keptStrides[k] }
    var groups = [[Int]](repeating: [], count: keptShape.contains(0) ? 0 : keptShape.reduce(1, *))
    for (index, group) in stridedOffsets(shape: input, steps: steps).enumerated() {
      groups[group].append(index)
    }
    self.shape = outShape
    self.groups = groups
  }
}

private enum Reduction: Sendable {
  case sum, mean, max, min, prod, sumSquare, l1, l2, logSum, logSumExp

  func fold<T: ONNXFloat>(_ values: [T]) -> T {
    switch self {
    case .sum: return values.reduce(0, +)
    case .mean: return values.isEmpty ? .nan : values.reduce(0, +) / T(values.count)
    case .max: return values.contains(where: \.isNaN) ? .nan : values.max() ?? -.infinity
    case .min: return values.contains(where: \.isNaN) ? .nan : values.min() ?? .infinity
    case .prod: return values.reduce(1, *)
    case .sumSquare: return values.reduce(0) { $0 + $1 * $1 }
    case .l1: return values.reduce(0) { $0 + abs($1) }
    case .l2: return values.reduce(0) { $0 + $1 * $1 }.squareRoot()
    case .logSum: return T.log(values.reduce(0, +))
    case .logSumExp:
      guard let top = values.max(), top.isFinite else {
        return T.log(values.reduce(0) { $0 + T.exp($1) })
      }
      return top + T.log(values.reduce(0) { $0 + T.exp($1 - top) })
    }
  }

  func fold(_ values: [Int64]) -> Int64 {
    switch self {
    case .sum, .mean:
      let s = values.reduce(0, &+)
      return self == .mean ? (values.isEmpty ? 0 : s / Int64(values.count)) : s
    case .max: return values.max() ?? .min
    case .min: return values.min() ?? .max
    case .prod: return values.reduce(1, &*)
    case .sumSquare: return values.reduce(0) { $0 &+ $1 &* $1 }
    case .l1: return values.reduce(0) { $0 &+ Swift.abs($1) }
    case .l2: return Int64(Double(values.reduce(0) { $0 &+ $1 &* $1 }).squareRoot())
    case .logSum, .logSumExp: return 0
    }
  }
}

private func reduce(
  _ name: String,
  _ reduction: Reduction,
  axesInputSince: Int
) -> (String, ONNXOperator) {
  (
    name,
    ONNXOperator(since: 1) { context in
      let x = try context.input(0)
      let axes: [Int]? =
        context.opset >= axesInputSince
        ? try context.optionalInput(1).map { try $0.integers("axes").map { Int($0) } }
        : context.ints("axes")
      let noop = context.opset >= axesInputSince && context.int("noop_with_empty_axes", 0) == 1
      let plan = try ReductionPlan(
        input: x.shape,
        axes: axes,
        keepDims: context.int("keepdims", 1) == 1,
        noopWhenEmpty: noop
      )
      switch x.values {
      case .float(let v):
        return [
          ONNXTensor(
            shape: plan.shape,
            floats: plan.groups.map { g in reduction.fold(g.map { v[$0] }) }
          )
        ]
      case .double(let v):
        return [
          ONNXTensor(
            shape: plan.shape,
            doubles: plan.groups.map { g in reduction.fold(g.map { v[$0] }) }
          )
        ]
      case .integer(let v) where reduction != .logSum && reduction != .logSumExp:
        return [
          ONNXTensor(
            shape: plan.shape,
            integers: plan.groups.map { g in reduction.fold(g.map { v[$0] }) },
            type: x.elementType
          )
        ]
      default: throw ONNXRuntimeError.unsupported("\(name) of \(x.elementType)")
      }
    }
  )
}

private func argExtreme(_ name: String, max: Bool) -> (String, ONNXOperator) {
  (
    name,
    ONNXOperator(since: 1) { context in
      let x = try context.input(0)
      let axis = try normalizedAxis(context.int("axis", 0), rank: x.rank)
      let plan = try ReductionPlan(
        input: x.shape,
        axes: [axis],
        keepDims: context.int("keepdims", 1) == 1
      )
      let last = context.int("select_last_index", 0) == 1
      guard let values = x.doubles else {
        throw ONNXRuntimeError.unsupported("\(name) of \(x.elementType)")
      }
      // The group lists the axis's elements in order, so the position in it is the index.
      let result = plan.groups.map { group -> Int64 in
        var best = 0
        for (position, index) in group.enumerated() {
          let value = values[index], current = values[group[best]]
          let better =
            max
            ? (value > current || (last && value == current))
            : (value < current || (last && value == current))
          if better { best = position }
        }
        return Int64(best)
      }
      return [ONNXTensor(shape: plan.shape, integers: result)]
    }
  )
}

extension ONNXOperators {
  static let reductions: [(String, ONNXOperator)] = [
    reduce("ReduceSum", .sum, axesInputSince: 13), reduce("ReduceMean", .mean, axesInputSince: 18),
    reduce("ReduceMax", .max, axesInputSince: 18),
    reduce("ReduceMin", .min, axesInputSince: 18), reduce("ReduceProd", .prod, axesInputSince: 18),
    reduce("ReduceSumSquare", .sumSquare, axesInputSince: 18),
    reduce("ReduceL1", .l1, axesInputSince: 18),
    reduce("ReduceL2", .l2, axesInputSince: 18),
    reduce("ReduceLogSum", .logSum, axesInputSince: 18),
    reduce("ReduceLogSumExp", .logSumExp, axesInputSince: 18),
    argExtreme("ArgMax", max: true), argExtreme("ArgMin", max: false),
  ]
}
