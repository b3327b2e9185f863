/// For every element of `shape` in row-major order, `base` plus the sum over axes of its index
/// along the axis times `steps[axis]`: the one walk behind broadcasting (step 0 on a broadcast
/// axis), transposes (the input's strides permuted), slices (strides times the slice step),
/// tiles and reductions' grouping.
func stridedOffsets(shape: [Int], steps: [Int], base: Int = 0) -> [Int] {
  let count = shape.reduce(1, *)
  var result = [Int](repeating: 0, count: count)
  guard count > 0 else { return result }
  var counter = [Int](repeating: 0, count: shape.count)
  var position = base
  for index in 0 ..< count {
    result[index] = position
    var axis = shape.count - 1
    while axis >= 0 {
      counter[axis] += 1
      position += steps[axis]
      if counter[axis] < shape[axis] { break }
      position -= steps[axis] * counter[axis]
      counter[axis] = 0
      axis -= 1
    }
  }
  return result
}
