/// For every element of `shape` in row-major order, `base` plus the sum over axes of its index
/// along the axis times `steps[axis]`: the one walk behind broadcasting (step 0 on a broadcast
/// axis), transposes (the input's strides permuted), slices (strides times the slice step),
/// tiles and reductions' grouping.
func stridedOffsets(shape: [Int], steps: [Int], base: Int = 0) -> [Int] {
  let count = shape.reduce(1, *)
  guard count > 0 else { return [] }
  guard let inner = shape.last, let innerStep = steps.last else { return [base] }
  // The innermost axis is one run (position, position + step, …); the counter only turns over
  // the outer axes, once a run.
  let outerAxes = shape.count - 1
  var counter = [Int](repeating: 0, count: outerAxes)
  var position = base
  return [Int](unsafeUninitializedCapacity: count) { result, initialized in
    var index = 0
    while index < count {
      var offset = position
      for j in 0 ..< inner {
        result[index + j] = offset
        offset += innerStep
      }
      index += inner
      var axis = outerAxes - 1
      while axis >= 0 {
        counter[axis] += 1
        position += steps[axis]
        if counter[axis] < shape[axis] { break }
        position -= steps[axis] * counter[axis]
        counter[axis] = 0
        axis -= 1
      }
    }
    initialized = count
  }
}
