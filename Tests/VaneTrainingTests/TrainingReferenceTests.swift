import Foundation
import Testing
import VaneBundle
import VaneCore
import VaneFeatures
import VaneModels
import VaneQuality
import VaneServing

@testable import VaneTraining

/// The reference statistics the trainer writes into a bundle and the predictor's trust checks
/// on them (expiry, z bound, dissimilarity).
@Suite("Training reference and trust checks", .timeLimit(.minutes(5)))
struct TrainingReferenceTests {
  static let served: (data: TrainingData, final: FinalFit, bundle: ModelBundle) = {
    let (data, final, bundle, _) = try! ServableModelTests.bundle(
      [ModelSpec(name: "logreg", kind: .logisticRegression(.init()))],
      stack: false
    )
    return (data, final, bundle)
  }()

  static func trained() async throws -> (data: TrainingData, final: FinalFit, bundle: ModelBundle) {
    try await BlockingPool.shared.run { Self.served }
  }

  @Test(
    "The bundle records the final fit's data range, per-column statistics, a fixed-size sample and the served score deciles"
  )
  func written() async throws {
    let (data, final, bundle) = try await Self.trained()
    let reference = try #require(try ServableModel(bundle: bundle).reference)
    let rows = (final.window.trainRows + final.window.validationRows).sorted()
    #expect(reference.dataStart == data.openTimes[rows[0]])
    #expect(reference.dataEnd == data.openTimes[rows.last!] + data.barMs)
    #expect(reference.rows == rows.count)
    #expect(reference.sampleRows == min(TrainingReference.sampleSize, rows.count))
    #expect(reference.sample.count == reference.sampleRows * data.columns.count)
    #expect(reference.meanPairwiseDistance > 0)
    // Column 0's mean and deciles, recomputed.
    let width = data.columns.count
    let scaler = try #require(final.scaler)
    let scaled = scaler.transform(batch: data.rows(rows))
    let column = (0 ..< rows.count).map { scaled[$0 * width] }.filter(\.isFinite)
    #expect(
      abs(try #require(reference.columns[0].mean) - column.reduce(0, +) / Double(column.count))
        < 1e-12
    )
    let raw = (0 ..< rows.count).map { data.features[rows[$0] * width] }
    #expect(reference.columns[0].distribution == DecileDistribution(raw))
    #expect(reference.scores.map(\.horizon) == data.horizons)
    // Out-of-fold rows carry their bar times.
    let oof = try bundle.outOfFold()
    let times = try #require(oof.barTimes)
    #expect(times.count == oof.labels.count)
    #expect(zip(times, times.dropFirst()).allSatisfy { $0 <= $1 })
  }

  @Test(
    "Write then read is the identity; a reference for other columns or a bad decile table is refused naming the key"
  )
  func roundTrip() throws {
    let reference = TrainingReference.summarise(
      columns: ["a", "b"],
      raw: [1, 2, 3, 4, 5, .nan],
      scaled: [0.1, 0.2, 0.3, 0.4, 0.5, .nan],
      rows: 3,
      dataStart: 0,
      dataEnd: 3_600_000,
      classCount: 2,
      scores: [(1, [0.4, 0.6, 0.7, 0.3, 0.5, 0.5])]
    )
    let data = try BundleJSON.encoder().encode(reference)
    #expect(
      try TrainingReference.decode(data, columns: ["a", "b"], classCount: 2, name: "b") == reference
    )
    #expect(reference.sample.allSatisfy { $0.isFinite })
    #expect(throws: VaneError.self) {
      try TrainingReference.decode(data, columns: ["b", "a"], classCount: 2, name: "b")
    }
    var broken = reference
    broken.columns[0].distribution?.edges.reverse()
    broken.columns[0].distribution?.edges[0] = 99
    let error = #expect(throws: VaneError.self) {
      try TrainingReference.decode(
        try BundleJSON.encoder().encode(broken),
        columns: ["a", "b"],
        classCount: 2,
        name: "b"
      )
    }
    #expect(error?.message.contains("columns[0].distribution") == true)
  }

  @Test(
    "PSI: a sample against itself is 0, a shifted one is large; the decile table agrees with the gatekeeper's PSI"
  )
  func psi() {
    var random = SeededRandom(seed: 3)
    let reference = (0 ..< 2_000).map { _ in Double.random(in: 0 ..< 1, using: &random) }
    let same = DecileDistribution(reference)!
    #expect(same.psi(reference) < 1e-12)
    let shifted = reference.map { $0 + 0.5 }
    #expect(same.psi(shifted) > 1)
    #expect(abs(same.psi(shifted) - Metrics.psi(scores: shifted, reference: reference)) < 1e-12)
    #expect(same.psi(counts: [Int](repeating: 0, count: 10)).isNaN)
  }

  @Test(
    "A training row passes; a row with one column 50 training deviations out names that column and is dissimilar"
  )
  func outOfDistribution() async throws {
    let (data, final, bundle) = try await Self.trained()
    let model = try ServableModel(bundle: bundle)
    let reference = try #require(model.reference)
    let width = data.columns.count
    let row = Array(
      data.features[
        (final.window.trainRows[10] * width) ..< ((final.window.trainRows[10] + 1) * width)
      ]
    )
    let clean = model.assess(row, count: 1, now: Date())[0]
    #expect(!clean.outOfDistribution, "\(clean)")
    #expect(try #require(clean.dissimilarity) < TrustPolicy.defaultDissimilarityThreshold)
    // Column 2, 50 standard deviations above the training mean, in raw units.
    let scaler = try #require(final.scaler)
    var far = row
    let c = 2
    let target =
      try #require(reference.columns[c].mean) + 50 * (try #require(reference.columns[c].std))
    far[c] = target * scaler.scale[c] + scaler.center[c]
    let flagged = model.assess(far, count: 1, now: Date())[0]
    #expect(flagged.outOfBoundColumns == [data.columns[c]])
    #expect(abs(try #require(flagged.maximumZ) - 50) < 1e-6)
    #expect(flagged.dissimilar)
    // Without the checks nothing is flagged.
    var lenient = model
    lenient.policy = TrustPolicy(zBound: nil, dissimilarityThreshold: nil)
    #expect(!lenient.assess(far, count: 1, now: Date())[0].outOfDistribution)
  }

  @Test(
    "Expiry: older than max_model_age since the training data ended is expired, younger is not",
    arguments: [(1.0, false), (25.0, true)]
  )
  func expiry(hours: Double, expired: Bool) async throws {
    let (_, _, bundle) = try await Self.trained()
    var model = try ServableModel(bundle: bundle)
    model.policy = TrustPolicy(maxModelAge: .seconds(24 * 3600))
    let end = try #require(model.dataEnd)
    let report = model.assess(
      model.warmUpRows.values,
      count: 1,
      now: end.addingTimeInterval(hours * 3600)
    )[0]
    #expect(report.expired == expired)
    model.policy.maxModelAge = nil
    #expect(
      !model.assess(model.warmUpRows.values, count: 1, now: end.addingTimeInterval(hours * 3600))[0]
        .expired
    )
  }
}
