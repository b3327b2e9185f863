import Foundation
import Testing
import VaneCore
import VaneMath
import VaneTestSupport

@testable import VaneModels

@Suite("Logistic regression")
struct LogisticRegressionTests {
  struct Case: Decodable, Sendable {
    var name: String
    var l2: Double
    var classes: Int
    var features: [Double]
    var rows: Int
    var columns: Int
    var labels: [Int]
    var sample_weights: [Double]
    var coef: [[Double]]
    var intercept: [Double]
    var proba_first_10: [[Double]]
    var objective: Double
  }

  struct File: Decodable, Sendable { var cases: [Case] }

  /// The loss of a fit with these data and settings (one logit for two classes).
  static func objective(
    _ x: [Double],
    rows: Int,
    columns: Int,
    classes: Int,
    labels: [Int],
    weights: [Double],
    l2: Double,
    intercept: Bool
  ) -> LogisticRegression.Objective {
    LogisticRegression.Objective(
      features: x,
      count: rows,
      featureCount: columns,
      outputs: classes == 2 ? 1 : classes,
      classCount: classes,
      labels: labels,
      sampleWeights: weights,
      l2: l2,
      fitIntercept: intercept
    )
  }

  static let fixture: File = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
      "Fixtures/sklearn_logreg.json"
    )
    return try! JSONDecoder().decode(File.self, from: Data(contentsOf: url))
  }()

  @Test(
    "Equals scikit-learn's LogisticRegression (same objective) on each case",
    arguments: LogisticRegressionTests.fixture.cases.map(\.name)
  )
  func sklearn(name: String) throws {
    let c = try #require(Self.fixture.cases.first { $0.name == name })
    let model = try LogisticRegression.fit(
      features: c.features,
      count: c.rows,
      featureCount: c.columns,
      labels: c.labels,
      classCount: c.classes,
      sampleWeights: c.sample_weights,
      parameters: .init(l2: c.l2, maxIterations: 10_000, tolerance: 1e-10)
    )
    let objective = LogisticRegression.Objective(
      features: c.features,
      count: c.rows,
      featureCount: c.columns,
      outputs: model.outputs,
      classCount: c.classes,
      labels: c.labels,
      sampleWeights: c.sample_weights,
      l2: c.l2,
      fitIntercept: true
    )
    let ours = objective.valueAndGradient(model.weights + model.intercepts).0
    // The optimum itself: our objective is no higher than scikit-learn's (to rounding).
    #expect(ours <= c.objective + 1e-9 * max(1, abs(c.objective)), "\(ours) vs \(c.objective)")
    let probabilities = model.probabilities(Array(c.features[0 ..< (10 * c.columns)]), count: 10)
    for i in 0 ..< 10 {
      for k in 0 ..< c.classes {
        #expect(abs(probabilities[i * c.classes + k] - c.proba_first_10[i][k]) < 1e-6)
      }
    }
    // Coefficients: sklearn's coef_ is outputs × features; ours features × outputs.
    for (o, row) in c.coef.enumerated() {
      for (j, value) in row.enumerated() {
        #expect(abs(model.weights[j * model.outputs + o] - value) < 1e-6, "w[\(j)][\(o)]")
      }
    }
    for (o, value) in c.intercept.enumerated() { #expect(abs(model.intercepts[o] - value) < 1e-6) }
  }

  @Test(
    "The gradient equals central finite differences, binary and multinomial, weighted",
    arguments: [2, 3]
  )
  func gradient(classes: Int) throws {
    var rng = SplitMix64(seed: UInt64(40 + classes))
    let n = 50, d = 4
    let x = (0 ..< (n * d)).map { _ in rng.uniform() * 4 - 2 }
    let y = (0 ..< n).map { _ in Int(rng.uniform() * Double(classes)) }
    let w = (0 ..< n).map { _ in 0.5 + rng.uniform() }
    let objective = Self.objective(
      x,
      rows: n,
      columns: d,
      classes: classes,
      labels: y,
      weights: w,
      l2: 0.7,
      intercept: true
    )
    let theta = (0 ..< objective.parameterCount).map { _ in rng.uniform() - 0.5 }
    let (_, gradient) = objective.valueAndGradient(theta)
    for j in theta.indices {
      var plus = theta, minus = theta
      plus[j] += 1e-6
      minus[j] -= 1e-6
      let numeric =
        (objective.valueAndGradient(plus).0 - objective.valueAndGradient(minus).0) / 2e-6
      #expect(
        abs(numeric - gradient[j]) < 1e-6 * max(1, abs(numeric)),
        "θ[\(j)]: \(gradient[j]) vs \(numeric)"
      )
    }
  }

  @Test("Bad inputs are refused naming the field")
  func refused() {
    #expect {
      _ = try LogisticRegression.fit(
        features: [1, 2, 3],
        count: 2,
        featureCount: 2,
        labels: [0, 1],
        classCount: 2
      )
    } throws: {
      ($0 as? VaneError)?.message.hasPrefix("features") == true
    }
    #expect {
      _ = try LogisticRegression.fit(
        features: [1, 2],
        count: 2,
        featureCount: 1,
        labels: [0, 2],
        classCount: 2
      )
    } throws: {
      ($0 as? VaneError)?.message.hasPrefix("labels[1]") == true
    }
    #expect {
      _ = try LogisticRegression.fit(
        features: [1, .nan],
        count: 2,
        featureCount: 1,
        labels: [0, 1],
        classCount: 2
      )
    } throws: {
      ($0 as? VaneError)?.message.hasPrefix("features[1][0]") == true
    }
  }

  @Test(
    "The Hessian equals central differences of the gradient, binary and multinomial, weighted",
    arguments: [(2, true), (3, true), (3, false)]
  )
  func hessian(classes: Int, intercept: Bool) throws {
    var rng = SplitMix64(seed: UInt64(70 + classes))
    let n = 60, d = 3
    let x = (0 ..< (n * d)).map { _ in rng.uniform() * 4 - 2 }
    let y = (0 ..< n).map { _ in Int(rng.uniform() * Double(classes)) }
    let w = (0 ..< n).map { _ in 0.5 + rng.uniform() }
    let objective = Self.objective(
      x,
      rows: n,
      columns: d,
      classes: classes,
      labels: y,
      weights: w,
      l2: 0.3,
      intercept: intercept
    )
    let size = objective.parameterCount
    let theta = (0 ..< size).map { _ in rng.uniform() - 0.5 }
    let hessian = objective.hessian(theta)
    let largest = (0 ..< size).map { hessian[$0 * size + $0] }.max() ?? 0
    let interceptRows = Set((0 ..< objective.outputs).map { objective.index(d, $0) })
    for k in 0 ..< size where intercept || !interceptRows.contains(k) {
      var plus = theta, minus = theta
      plus[k] += 1e-5
      minus[k] -= 1e-5
      let (gPlus, gMinus) = (
        objective.valueAndGradient(plus).1, objective.valueAndGradient(minus).1
      )
      for m in 0 ..< size where intercept || !interceptRows.contains(m) {
        let numeric = (gPlus[m] - gMinus[m]) / 2e-5
        // Free softmax directions carry a ridge of 1e-8 of the largest curvature.
        #expect(
          abs(numeric - hessian[m * size + k]) < 1e-6 * max(1, abs(numeric)) + 1e-8 * largest,
          "H[\(m)][\(k)]: \(hessian[m * size + k]) vs \(numeric)"
        )
      }
    }
  }

  @Test("Newton's optimum is L-BFGS's, and it takes a few steps", arguments: [2, 3])
  func newtonAgreesWithLBFGS(classes: Int) throws {
    var rng = SplitMix64(seed: UInt64(90 + classes))
    let n = 2_000, d = 8
    let x = (0 ..< (n * d)).map { _ in rng.uniform() * 2 - 1 }
    let y = (0 ..< n).map { i in
      let signal = x[i * d] * 2 - x[i * d + 1] + (rng.uniform() - 0.5)
      return classes == 2 ? (signal > 0 ? 1 : 0) : (signal < -0.4 ? 0 : signal < 0.4 ? 1 : 2)
    }
    let objective = Self.objective(
      x,
      rows: n,
      columns: d,
      classes: classes,
      labels: y,
      weights: [Double](repeating: 1, count: n),
      l2: 1,
      intercept: true
    )
    let newton = try #require(objective.newton(maxIterations: 100, gradientTolerance: 1e-9 * 2_000))
    #expect(newton.iterations <= 15)
    let (lbfgs, _) = LBFGS.minimize(
      [Double](repeating: 0, count: objective.parameterCount),
      maxIterations: 10_000,
      gradientTolerance: 1e-9 * 2_000
    ) { objective.valueAndGradient($0) }
    for (a, b) in zip(newton.theta, lbfgs) { #expect(abs(a - b) < 1e-6, "\(a) vs \(b)") }
  }

  @Test(
    "One row alone (a served request's sums in place) equals the row in a batch",
    arguments: [2, 3]
  )
  func oneRowEqualsBatch(classes: Int) throws {
    var rng = SplitMix64(seed: UInt64(40 + classes))
    let n = 300, d = 78
    let x = (0 ..< (n * d)).map { _ in rng.uniform() * 4 - 2 }
    let y = (0 ..< n).map { i in x[i * d] > 0.5 ? classes - 1 : x[i * d] > -0.5 ? 0 : 1 }
    let model = try LogisticRegression.fit(
      features: x,
      count: n,
      featureCount: d,
      labels: y,
      classCount: classes
    )
    let batch = model.probabilities(x, count: n)
    for r in [0, 1, 17, 299] {
      let row = Array(x[(r * d) ..< ((r + 1) * d)])
      // The one-pass sums are the per-output sums written out, bit for bit.
      let logits = model.logits(row, count: 1)
      for o in 0 ..< model.outputs {
        var sum = 0.0
        for c in 0 ..< d { sum += row[c] * model.weights[c * model.outputs + o] }
        #expect(
          logits[o].bitPattern == (sum + model.intercepts[o]).bitPattern,
          "row \(r), output \(o)"
        )
      }
      let one = model.probabilities(row, count: 1)
      for c in 0 ..< classes {
        #expect(abs(one[c] - batch[r * classes + c]) <= 1e-12, "row \(r), class \(c)")
      }
    }
  }
}
