public import VaneBundle

extension TrainingReference {
  /// A reference that holds only a sample of `rows` rows of `width` scaled values (each column
  /// mean 0, deviation 1), for the nearest-sample distance tests.
  public static func sampleOnly(width: Int, rows: Int, sample: [Double]) -> TrainingReference {
    TrainingReference(
      dataStart: 0,
      dataEnd: 1,
      rows: rows,
      columns: (0 ..< width).map { .init(name: "c\($0)", mean: 0, std: 1, distribution: nil) },
      sample: sample,
      sampleRows: rows,
      meanPairwiseDistance: 1,
      scores: []
    )
  }
}
