public import Foundation
internal import VaneBundle
internal import VaneCore
internal import VaneMath

extension ServableModel {
  /// When the bundle's training data ended (nil: the bundle does not record it).
  public var dataEnd: Date? {
    self.reference.map { Date(timeIntervalSince1970: Double($0.dataEnd) / 1000) }
  }

  /// The trust checks of ``policy`` on `count` raw inputs at `now` (each checked on the bar it
  /// is answered for), one report per input.
  public func assess(_ features: [Double], count: Int, now: Date) -> [TrustReport] {
    self.assess(self.uncheckedInputs(features, count: count), now: now)
  }

  /// The trust checks of ``policy`` on prepared inputs at `now` (each checked on the bar it is
  /// answered for, as the models read it), one report per input.
  public func assess(_ inputs: Inputs, now: Date) -> [TrustReport] {
    let count = inputs.count
    var expired = false
    if let age = self.policy.maxModelAge, let end = self.dataEnd {
      expired =
        now.timeIntervalSince(end) > Double(age.components.seconds) + Double(
          age.components.attoseconds
        ) / 1e18
    }
    let width = self.columns.count
    let scaled = inputs.scaled
    // Without reference statistics only expiry is checked; inputs made by a model of another
    // width (which ``predict(_:horizons:)`` refuses) are not read either.
    guard let reference = self.reference, count > 0, scaled.count == count * width else {
      var report = TrustReport()
      report.expired = expired
      return [TrustReport](repeating: report, count: max(count, 0))
    }
    let bound = self.policy.zBound ?? .infinity
    return (0 ..< count).map { r in
      var report = TrustReport()
      report.expired = expired
      let values = r * width
      // A column without moments (NaN) gives a NaN z, which compares false: no z.
      let (largest, above) = scaled.withUnsafeBufferPointer { scaled in
        BLAS.largestZ(
          scaled.baseAddress! + values,
          means: self.columnMeans,
          deviations: self.columnDeviations,
          count: width,
          bound: bound
        )
      }
      if above {
        let columns = self.columns
        report.outOfBoundColumns = (0 ..< width).filter { c in
          let value = scaled[values + c]
          return value.isFinite
            && abs(value - self.columnMeans[c]) / self.columnDeviations[c] > bound
        }.map { columns[$0] }
      }
      report.maximumZ = largest
      if reference.sampleRows > 0, reference.meanPairwiseDistance > 0 {
        // As the models read it: a missing value is the scaled mean, 0.
        let nearest = withUnsafeTemporaryAllocation(of: Double.self, capacity: width) { row in
          for c in 0 ..< width {
            let value = scaled[values + c]
            row[c] = value.isFinite ? value : 0
          }
          return self.nearestSamples?.nearestDistance(row.baseAddress!)
            ?? reference.nearestSampleDistance(row.baseAddress!)
        }
        let index = nearest / reference.meanPairwiseDistance
        report.dissimilarity = index
        if let threshold = self.policy.dissimilarityThreshold {
          report.dissimilar = index > threshold
        }
      }
      return report
    }
  }
}

extension ServableModel {
  /// When a manifest's `created` says the bundle was made (nil when unreadable).
  static func creationDate(_ created: String) -> Date? {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = formatter.date(from: created) { return date }
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.date(from: created)
  }
}
