internal import Foundation
internal import VaneCore

/// Fits calibrations by minimising the negative log-likelihood of the labels.
public enum Calibrator {
  /// Fewest samples isotonic regression is fitted on: below this its steps follow noise.
  public static let isotonicMinimumSamples = 1_000
  /// Fewest samples any calibration is fitted on.
  public static let minimumSamples = 50

  /// Fits one method (or, with `.auto`, the one of lowest cross-validated NLL).
  /// - Throws: INVALID_ARGUMENT for a method that does not fit these predictions (Platt is
  ///   binary, vector scaling multi-class), isotonic below 1,000 samples, fewer than 50
  ///   samples or 2 of each class, or non-finite inputs.
  public static func fit(
    _ method: CalibrationMethod,
    _ predictions: Predictions
  ) throws -> Calibration {
    try Self.check(predictions)
    switch method {
    case .auto: return try Self.choose(predictions).chosen
    case .none: return .none
    case .temperature: return .temperature(Self.temperature(predictions))
    case .platt:
      guard predictions.isBinary else {
        throw VaneError.invalidArgument(
          field: "method",
          "Platt scaling is for binary models (\(predictions.classCount) classes); use vector or temperature"
        )
      }
      let (a, b) = Self.platt(predictions)
      return .platt(a: a, b: b)
    case .isotonic:
      guard predictions.count >= Self.isotonicMinimumSamples else {
        throw VaneError.invalidArgument(
          field: "method",
          "isotonic calibration needs at least \(Self.isotonicMinimumSamples) samples (got \(predictions.count)); its steps would follow noise"
        )
      }
      func map(_ c: Int) -> Calibration.IsotonicMap {
        let (x, y) = Isotonic.fit(predictions, column: c)
        return Calibration.IsotonicMap(x: x, y: y)
      }
      if predictions.isBinary {
        let up = map(1)
        return .isotonic([up.mirrored, up])
      }
      return .isotonic((0 ..< predictions.classCount).map(map))
    case .vector:
      guard !predictions.isBinary else {
        throw VaneError.invalidArgument(
          field: "method",
          "vector scaling is for multi-class models; use platt or temperature"
        )
      }
      let (w, b) = Self.vector(predictions)
      return .vector(scale: w, bias: b)
    }
  }

  /// The outcome of `auto`: the chosen calibration, and the mean held-out NLL of each
  /// candidate over 5 contiguous blocks in sample order (time order, for time series).
  public struct Choice: Sendable {
    public var chosen: Calibration
    public var crossValidatedNLL: [CalibrationMethod: Double]
    /// Each candidate's out-of-fold calibrated predictions.
    public var crossValidated: [CalibrationMethod: Predictions]
  }

  /// The methods `auto` tries on these predictions: temperature, Platt (binary) or vector
  /// (multi-class), and isotonic when each cross-validation fit (4 of 5 blocks) has 1,000 samples.
  public static func candidates(_ predictions: Predictions) -> [CalibrationMethod] {
    var candidates: [CalibrationMethod] = [.temperature]
    candidates += predictions.isBinary ? [.platt] : [.vector]
    // Each cross-validation fit sees 4 of the 5 blocks: isotonic only when those reach its minimum.
    if predictions.count * 4 / 5 >= Self.isotonicMinimumSamples { candidates.append(.isotonic) }
    return candidates
  }

  /// Chooses among ``candidates(_:)`` by 5-fold cross-validated NLL, then refits the winner on
  /// all samples.
  public static func choose(_ predictions: Predictions) throws -> Choice {
    try Self.check(predictions)
    let candidates = Self.candidates(predictions)
    let folds = (0 ..< predictions.count).map { $0 * 5 / predictions.count }
    var scores: [CalibrationMethod: Double] = [:]
    var outOfFold: [CalibrationMethod: Predictions] = [:]
    for method in candidates {
      outOfFold[method] = try Self.crossFitted(method, predictions, folds: folds)
      scores[method] = Metrics.logLoss(outOfFold[method]!)
    }
    let best = candidates.min { scores[$0]! < scores[$1]! }!
    return Choice(
      chosen: try Self.fit(best, predictions),
      crossValidatedNLL: scores,
      crossValidated: outOfFold
    )
  }

  /// Out-of-fold calibrated predictions: each fold calibrated by the method fitted on all the
  /// other folds (what "after calibration" honestly looks like on unseen data).
  /// - Parameter folds: one fold id per sample; at least two distinct ids.
  /// - Throws: what ``fit(_:_:)`` throws on a training part (naming the held-out fold).
  public static func crossFitted(
    _ method: CalibrationMethod,
    _ predictions: Predictions,
    folds: [Int]
  ) throws -> Predictions {
    precondition(folds.count == predictions.count)
    let ids = Array(Set(folds)).sorted()
    guard ids.count >= 2 else {
      throw VaneError.invalidArgument(field: "fold_ids", "cross-fitting needs at least two folds")
    }
    var probabilities = [Double](repeating: 0, count: predictions.probabilities.count)
    let k = predictions.classCount
    for id in ids {
      let train = folds.indices.filter { folds[$0] != id },
        test = folds.indices.filter { folds[$0] == id }
      let fitted: Calibration
      do {
        fitted = try Self.fit(method, predictions.subset(train))
      } catch let error as VaneError {
        throw VaneError(
          error.code,
          "fitting \(method.rawValue) without fold \(id): \(error.message)",
          cause: error
        )
      }
      let calibrated = fitted.apply(predictions.subset(test))
      for (row, i) in test.enumerated() {
        for c in 0 ..< k { probabilities[i * k + c] = calibrated.probability(row, c) }
      }
    }
    return try! Predictions(probabilities: probabilities, classCount: k, labels: predictions.labels)
  }

  static func check(_ predictions: Predictions) throws {
    guard predictions.probabilities.allSatisfy(\.isFinite),
      predictions.logits?.allSatisfy(\.isFinite) ?? true
    else {
      throw VaneError.invalidArgument(
        field: "predictions.values",
        "calibration needs finite predictions (NaN or infinite values found)"
      )
    }
    guard predictions.count >= Self.minimumSamples else {
      throw VaneError.invalidArgument(
        field: "predictions.sample_count",
        "calibration needs at least \(Self.minimumSamples) samples (got \(predictions.count))"
      )
    }
    var counts = [Int](repeating: 0, count: predictions.classCount)
    for label in predictions.labels { counts[label] += 1 }
    if predictions.isBinary, counts.contains(where: { $0 < 2 }) {
      throw VaneError.invalidArgument(
        field: "predictions.labels",
        "calibration needs at least 2 samples of each class (counts \(counts))"
      )
    }
  }

  // MARK: Temperature

  /// The NLL-optimal temperature. The mean NLL of softmax(β z) is convex in β = 1/T, so its
  /// minimum is the root of the slope: Newton's method on the slope (slope and curvature in one
  /// pass, one exp per sample for binary models), kept inside a bracket where the slope changes
  /// sign and bisecting when a step leaves it. β is kept within [e⁻⁵, e⁵].
  static func temperature(_ predictions: Predictions) -> Double {
    let z = predictions.logitsOrImplied(clip: Calibration.clip)
    let k = predictions.classCount
    let labels = predictions.labels
    let n = Double(labels.count)
    // Binary: the logit signed by the label, so the NLL is Σ −log σ(β·signed).
    let signed = k == 2 ? labels.indices.map { labels[$0] == 1 ? z[$0] : -z[$0] } : []
    /// Slope and curvature of the mean NLL at β.
    func slope(_ beta: Double) -> (Double, Double) {
      var d1 = 0.0, d2 = 0.0
      if k == 2 {
        signed.withUnsafeBufferPointer { signed in
          for x in signed {
            let tail = 1 / (1 + Foundation.exp(beta * x))  // σ(−βx)
            d1 -= x * tail
            d2 += x * x * tail * (1 - tail)
          }
        }
      } else {
        for i in labels.indices {
          var top = -Double.infinity
          for c in 0 ..< k { top = max(top, beta * z[i * k + c]) }
          var sum = 0.0, mean = 0.0, second = 0.0
          for c in 0 ..< k {
            let v = z[i * k + c]
            let e = Foundation.exp(beta * v - top)
            sum += e
            mean += e * v
            second += e * v * v
          }
          mean /= sum
          second /= sum
          d1 += mean - z[i * k + labels[i]]
          d2 += second - mean * mean
        }
      }
      return (d1 / n, d2 / n)
    }
    var low = Foundation.exp(-5.0), high = Foundation.exp(5.0)
    if slope(low).0 >= 0 { return 1 / low }
    if slope(high).0 <= 0 { return 1 / high }
    var beta = 1.0
    for _ in 0 ..< 100 {
      let (d1, d2) = slope(beta)
      if d1 < 0 { low = beta } else { high = beta }
      var next = d2 > 0 ? beta - d1 / d2 : (low + high) / 2
      if !(next > low && next < high) { next = (low + high) / 2 }
      let moved = abs(next - beta)
      beta = next
      // 1e-10 relative: far under any effect on probabilities.
      if moved <= 1e-10 * beta || high - low <= 1e-12 * beta { break }
    }
    return 1 / beta
  }

  // MARK: Platt

  /// Unregularised logistic regression of the label on the logit: Newton's method on (a, b),
  /// value, gradient and Hessian in one pass, halving a step that raised the NLL (a full step
  /// can overshoot where the sigmoid saturates).
  static func platt(_ predictions: Predictions) -> (Double, Double) {
    let z = predictions.logitsOrImplied(clip: Calibration.clip)
    let labels = predictions.labels
    /// NLL, gradient (a, b) and Hessian (aa, ab, bb) at (a, b).
    func evaluate(
      _ a: Double,
      _ b: Double
    ) -> (f: Double, ga: Double, gb: Double, haa: Double, hab: Double, hbb: Double) {
      var f = 0.0, ga = 0.0, gb = 0.0, haa = 0.0, hab = 0.0, hbb = 0.0
      for i in z.indices {
        let x = z[i]
        let t = a * x + b
        let e = Foundation.exp(-abs(t))
        let p = t >= 0 ? 1 / (1 + e) : e / (1 + e)  // σ(t)
        let y = labels[i] == 1
        // −log σ(t) for y = 1, −log σ(−t) for y = 0.
        f += (y ? (t >= 0 ? 0 : -t) : (t >= 0 ? t : 0)) + Foundation.log1p(e)
        let r = p - (y ? 1 : 0)
        ga += r * x
        gb += r
        let w = p * (1 - p)
        haa += w * x * x
        hab += w * x
        hbb += w
      }
      return (f, ga, gb, haa, hab, hbb)
    }
    var a = 1.0, b = 0.0
    var current = evaluate(a, b)
    for _ in 0 ..< 100 {
      let det = current.haa * current.hbb - current.hab * current.hab
      guard det > 0 else { break }
      var da = (current.hbb * current.ga - current.hab * current.gb) / det
      var db = (current.haa * current.gb - current.hab * current.ga) / det
      // Converged: the step is below 1e-10 relative (smaller ones only chase rounding).
      if max(abs(da), abs(db)) < 1e-10 * max(1, abs(a), abs(b)) { break }
      var next = evaluate(a - da, b - db)
      var halvings = 0
      while next.f > current.f + 1e-15 * abs(current.f), halvings < 30 {
        da /= 2
        db /= 2
        halvings += 1
        next = evaluate(a - da, b - db)
      }
      a -= da
      b -= db
      current = next
      if max(abs(da), abs(db)) < 1e-10 * max(1, abs(a), abs(b)) { break }
    }
    return (a, b)
  }

  // MARK: Vector scaling

  /// softmax(w ⊙ z + b) fitted by Newton's method with a line search on the 2k parameters
  /// (the NLL is convex in them).
  static func vector(_ predictions: Predictions) -> ([Double], [Double]) {
    let z = predictions.logitsOrImplied(clip: Calibration.clip)
    let k = predictions.classCount, n = predictions.count
    let labels = predictions.labels
    var theta = [Double](repeating: 1, count: k) + [Double](repeating: 0, count: k)
    func nll(_ theta: [Double]) -> Double {
      var total = 0.0
      for i in 0 ..< n {
        var top = -Double.infinity
        for c in 0 ..< k { top = max(top, theta[c] * z[i * k + c] + theta[k + c]) }
        var sum = 0.0
        for c in 0 ..< k { sum += Foundation.exp(theta[c] * z[i * k + c] + theta[k + c] - top) }
        total +=
          top + Foundation.log(sum)
          - (theta[labels[i]] * z[i * k + labels[i]] + theta[k + labels[i]])
      }
      return total / Double(n)
    }
    for _ in 0 ..< 50 {
      // Gradient and Hessian of the mean NLL; features per class c: (z_c for w_c, 1 for b_c).
      let m = 2 * k
      var gradient = [Double](repeating: 0, count: m)
      var hessian = [Double](repeating: 0, count: m * m)
      var p = [Double](repeating: 0, count: k)
      for i in 0 ..< n {
        var top = -Double.infinity
        for c in 0 ..< k { top = max(top, theta[c] * z[i * k + c] + theta[k + c]) }
        var sum = 0.0
        for c in 0 ..< k {
          p[c] = Foundation.exp(theta[c] * z[i * k + c] + theta[k + c] - top)
          sum += p[c]
        }
        for c in 0 ..< k { p[c] /= sum }
        func feature(_ j: Int) -> (Int, Double) { j < k ? (j, z[i * k + j]) : (j - k, 1) }
        for j in 0 ..< m {
          let (cj, xj) = feature(j)
          gradient[j] += (p[cj] - (labels[i] == cj ? 1 : 0)) * xj / Double(n)
          for l in 0 ..< m {
            let (cl, xl) = feature(l)
            hessian[j * m + l] += p[cj] * ((cj == cl ? 1 : 0) - p[cl]) * xj * xl / Double(n)
          }
        }
      }
      // The biases are defined up to a common shift: a small ridge keeps the system solvable.
      for j in 0 ..< m { hessian[j * m + j] += 1e-9 }
      guard let step = Minimize.solve(hessian, gradient, size: m) else { break }
      var scale = 1.0
      let current = nll(theta)
      var next = theta
      while scale > 1e-8 {
        next = zip(theta, step).map { $0 - scale * $1 }
        if nll(next) <= current { break }
        scale /= 2
      }
      let moved = zip(theta, next).map { abs($0 - $1) }.max() ?? 0
      theta = next
      if moved < 1e-12 { break }
    }
    return (Array(theta[0 ..< k]), Array(theta[k...]))
  }
}

/// Pool-adjacent-violators isotonic regression.
enum Isotonic {
  /// Fits a non-decreasing step function of `scores` to `labels`: equal scores are pooled first
  /// (their mean label), then adjacent violating blocks are merged. Returns the points (block
  /// start and end x, with the block's value) to interpolate between, clipped to [0, 1].
  static func fit(scores: [Double], labels: [Double]) -> (x: [Double], y: [Double]) {
    Self.fit(count: scores.count, score: { scores[$0] }, label: { labels[$0] })
  }

  /// One-vs-rest: P(class c) against whether the label is c, read straight from the predictions.
  static func fit(_ predictions: Predictions, column c: Int) -> (x: [Double], y: [Double]) {
    Self.fit(
      count: predictions.count,
      score: { predictions.probability($0, c) },
      label: { predictions.labels[$0] == c ? 1 : 0 }
    )
  }

  @inline(__always)
  static func fit(
    count n: Int,
    score: (Int) -> Double,
    label: (Int) -> Double
  ) -> (x: [Double], y: [Double]) {
    var keys = (0 ..< n).map { RadixSort.key(score($0)) }
    var order = (0 ..< n).map { UInt32($0) }
    RadixSort.sort(keys: &keys, payload: &order)
    // Blocks on a stack, each with its label sum, weight, and first and last x. Each run of
    // equal scores (equal keys, adjacent once sorted) becomes one block; violating blocks are
    // then merged backwards. The sorted keys are read in order; only the labels are gathered.
    // Means are compared by cross-multiplication, which keeps divisions (a long dependent
    // chain) out of the loop; the stack is raw memory, so slots it never reaches are never
    // touched.
    struct Block { var sum: Double, weight: Double, start: Double, end: Double }
    let stack = UnsafeMutablePointer<Block>.allocate(capacity: max(n, 1))
    defer { stack.deallocate() }
    var top = 0
    keys.withUnsafeBufferPointer { keys in
      order.withUnsafeBufferPointer { order in
        var j = 0
        while j < n {
          let key = keys[j]
          var sum = 0.0, weight = 0.0
          repeat {
            sum += label(Int(order[j]))
            weight += 1
            j += 1
          } while j < n && keys[j] == key
          let x = RadixSort.value(key)
          var start = x
          // The previous block's mean ≥ this one's: a violation, pool them.
          while top > 0, stack[top - 1].sum * weight >= sum * stack[top - 1].weight {
            sum += stack[top - 1].sum
            weight += stack[top - 1].weight
            start = stack[top - 1].start
            top -= 1
          }
          (stack + top).initialize(to: Block(sum: sum, weight: weight, start: start, end: x))
          top += 1
        }
      }
    }
    let blocks = UnsafeBufferPointer(start: stack, count: top)
    var x: [Double] = [], y: [Double] = []
    x.reserveCapacity(2 * blocks.count)
    y.reserveCapacity(2 * blocks.count)
    for block in blocks {
      let v = min(max(block.sum / block.weight, 0), 1)
      x.append(block.start)
      y.append(v)
      if block.end != block.start {
        x.append(block.end)
        y.append(v)
      }
    }
    return (x, y)
  }

  /// Linear interpolation between the points, clipped to the end values outside them.
  static func interpolate(x: [Double], y: [Double], at value: Double) -> Double {
    guard let first = x.first, let last = x.last else { return .nan }
    if value <= first { return y[0] }
    if value >= last { return y[y.count - 1] }
    var low = 0, high = x.count - 1
    while high - low > 1 {
      let mid = (low + high) / 2
      if x[mid] <= value { low = mid } else { high = mid }
    }
    let span = x[high] - x[low]
    return span > 0 ? y[low] + (y[high] - y[low]) * (value - x[low]) / span : y[high]
  }
}

/// Small numerical routines the calibrators share.
enum Minimize {
  /// Solves the symmetric system A x = b (Gaussian elimination with partial pivoting); nil
  /// when singular.
  static func solve(_ matrix: [Double], _ rhs: [Double], size m: Int) -> [Double]? {
    var a = matrix, b = rhs
    for column in 0 ..< m {
      var pivot = column
      for row in column ..< m where abs(a[row * m + column]) > abs(a[pivot * m + column]) {
        pivot = row
      }
      guard abs(a[pivot * m + column]) > 1e-300 else { return nil }
      if pivot != column {
        for j in 0 ..< m { a.swapAt(pivot * m + j, column * m + j) }
        b.swapAt(pivot, column)
      }
      for row in (column + 1) ..< m {
        let factor = a[row * m + column] / a[column * m + column]
        for j in column ..< m { a[row * m + j] -= factor * a[column * m + j] }
        b[row] -= factor * b[column]
      }
    }
    var x = [Double](repeating: 0, count: m)
    for row in stride(from: m - 1, through: 0, by: -1) {
      var s = b[row]
      for j in (row + 1) ..< m { s -= a[row * m + j] * x[j] }
      x[row] = s / a[row * m + row]
    }
    return x
  }
}
