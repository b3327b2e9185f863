internal import VaneCore

/// How walk-forward cross-validation cuts a time-ordered dataset into folds: fold k tests on
/// `[testStart_k, testStart_k + testBars)` and trains on the window before it, ending
/// `purgeBars + embargoBars` bars before the test start, with every training row whose label
/// resolves after that end purged as well. Nothing a model is tested on ever informs it.
public struct WalkForwardPlan: Sendable, Equatable {
  /// Whether the training window grows from the start of the data or slides.
  public enum Window: String, Sendable { case expanding, rolling }

  public var window: Window
  /// Rolling: the training window's length. Expanding: the minimum before the first fold.
  public var trainBars: Int
  /// Test fold length.
  public var testBars: Int
  /// Step between fold starts (≤ testBars; smaller gives overlapping test folds).
  public var retrainEveryBars: Int
  /// Bars dropped from the end of each training window (at least the longest label horizon,
  /// so that no training label resolves inside the test fold).
  public var purgeBars: Int
  /// Further bars between the purged training end and the test start.
  public var embargoBars: Int
  /// Tail of each training window held out for early stopping (0: none).
  public var validationBars: Int
  /// Keep only the most recent this-many folds (0: all).
  public var maxFolds: Int

  /// - Throws: INVALID_ARGUMENT naming the field: non-positive lengths, a negative gap, a
  ///   retrain step of 0 or longer than the test fold, a validation tail that leaves no
  ///   training rows.
  public init(
    window: Window = .expanding,
    trainBars: Int,
    testBars: Int,
    retrainEveryBars: Int? = nil,
    purgeBars: Int,
    embargoBars: Int = 0,
    validationBars: Int = 0,
    maxFolds: Int = 0
  ) throws {
    let step = retrainEveryBars ?? testBars
    guard trainBars > 0 else {
      throw VaneError.invalidArgument(field: "walk_forward.train_bars", "must be positive")
    }
    guard testBars > 0 else {
      throw VaneError.invalidArgument(field: "walk_forward.test_bars", "must be positive")
    }
    guard step > 0, step <= testBars else {
      throw VaneError.invalidArgument(
        field: "walk_forward.retrain_every_bars",
        "must be between 1 and test_bars (\(testBars)); got \(step)"
      )
    }
    guard purgeBars >= 0 else {
      throw VaneError.invalidArgument(field: "walk_forward.purge_bars", "must not be negative")
    }
    guard embargoBars >= 0 else {
      throw VaneError.invalidArgument(field: "walk_forward.embargo_bars", "must not be negative")
    }
    guard validationBars >= 0, validationBars < trainBars else {
      throw VaneError.invalidArgument(
        field: "walk_forward.validation_bars",
        "must be at least 0 and below train_bars (\(trainBars))"
      )
    }
    guard maxFolds >= 0 else {
      throw VaneError.invalidArgument(field: "walk_forward.max_folds", "must not be negative")
    }
    self.window = window
    self.trainBars = trainBars
    self.testBars = testBars
    self.retrainEveryBars = step
    self.purgeBars = purgeBars
    self.embargoBars = embargoBars
    self.validationBars = validationBars
    self.maxFolds = maxFolds
  }

  /// One fold: row indices (ascending) into the dataset, and the time ranges they were cut from.
  public struct Fold: Sendable, Equatable {
    /// 1-based.
    public var number: Int
    public var trainRows: [Int]
    /// Rows of the validation tail (early stopping), after the training rows.
    public var validationRows: [Int]
    public var testRows: [Int]
    /// [start, end) in ms of the training window (validation tail included) and the test fold.
    public var trainRange: Range<Int64>
    public var testRange: Range<Int64>
  }

  /// The folds over rows opened at `openTimes` (non-decreasing: pooled symbols share bars; on a
  /// grid of `barMs`, gaps allowed)
  /// whose labels resolve at `labelEnds`. A fold without training or test rows is left out.
  /// - Throws: INVALID_ARGUMENT when the times are not ascending or the lengths differ;
  ///   FAILED_PRECONDITION when the data is too short for one fold.
  public func folds(openTimes: [Int64], labelEnds: [Int64], barMs: Int64) throws -> [Fold] {
    guard openTimes.count == labelEnds.count else {
      throw VaneError.invalidArgument(
        field: "label_ends",
        "\(labelEnds.count) for \(openTimes.count) rows"
      )
    }
    guard barMs > 0 else { throw VaneError.invalidArgument(field: "interval", "must be positive") }
    if let i = openTimes.indices.dropFirst().first(where: { openTimes[$0] < openTimes[$0 - 1] }) {
      throw VaneError.invalidArgument(field: "open_times[\(i)]", "rows must be in time order")
    }
    guard let first = openTimes.first, let last = openTimes.last else {
      throw VaneError(.failedPrecondition, "no rows to cut folds from")
    }
    let gap = Int64(self.purgeBars + self.embargoBars) * barMs
    var folds: [Fold] = []
    var testStart = first + Int64(self.trainBars) * barMs + gap
    while testStart <= last {
      let testEnd = testStart + Int64(self.testBars) * barMs
      let trainEnd = testStart - gap
      let trainStart = self.window == .expanding ? first : trainEnd - Int64(self.trainBars) * barMs
      let validationStart = trainEnd - Int64(self.validationBars) * barMs
      // Training rows: in the window, before the validation tail, and resolved before it (so
      // that no training label reaches into validation, let alone the test fold).
      let fitEnd = self.validationBars > 0 ? validationStart : trainEnd
      let train = Self.rows(openTimes, from: trainStart, to: fitEnd).filter {
        labelEnds[$0] <= fitEnd
      }
      let validation =
        self.validationBars > 0
        ? Self.rows(openTimes, from: validationStart, to: trainEnd).filter {
          labelEnds[$0] <= trainEnd
        } : []
      let test = Self.rows(openTimes, from: testStart, to: testEnd)
      if !train.isEmpty, !test.isEmpty {
        folds.append(
          Fold(
            number: 0,
            trainRows: train,
            validationRows: validation,
            testRows: test,
            trainRange: trainStart ..< trainEnd,
            testRange: testStart ..< testEnd
          )
        )
      }
      testStart += Int64(self.retrainEveryBars) * barMs
    }
    if self.maxFolds > 0, folds.count > self.maxFolds {
      folds.removeFirst(folds.count - self.maxFolds)
    }
    guard !folds.isEmpty else {
      throw VaneError(
        .failedPrecondition,
        "the data (\(openTimes.count) rows) is too short for one fold: it needs \(self.trainBars) training bars, a \(self.purgeBars + self.embargoBars)-bar gap and test bars after them"
      )
    }
    for index in folds.indices { folds[index].number = index + 1 }
    return folds
  }

  /// The window the final model is refitted on once the folds are done: the last `trainBars`
  /// bars (rolling) or all the data (expanding), ending at the end of the data, with the same
  /// validation tail and label purging as a fold's training window. Its `testRows` are empty.
  /// - Throws: as ``folds(openTimes:labelEnds:barMs:)`` for bad inputs; FAILED_PRECONDITION
  ///   when no row's label resolves inside it.
  public func finalWindow(openTimes: [Int64], labelEnds: [Int64], barMs: Int64) throws -> Fold {
    guard openTimes.count == labelEnds.count, barMs > 0 else {
      throw VaneError.invalidArgument(
        field: "label_ends",
        "\(labelEnds.count) for \(openTimes.count) rows"
      )
    }
    guard let first = openTimes.first, let last = openTimes.last else {
      throw VaneError(.failedPrecondition, "no rows to fit on")
    }
    // The window ends when the last label resolves (labels may look past the last bar).
    let trainEnd = max(labelEnds.max() ?? last, last) + 1
    let trainStart =
      self.window == .expanding ? first : max(first, trainEnd - Int64(self.trainBars) * barMs)
    let validationStart = trainEnd - Int64(self.validationBars) * barMs
    let fitEnd = self.validationBars > 0 ? validationStart : trainEnd
    let train = Self.rows(openTimes, from: trainStart, to: fitEnd).filter {
      labelEnds[$0] <= fitEnd
    }
    let validation =
      self.validationBars > 0
      ? Self.rows(openTimes, from: validationStart, to: trainEnd).filter {
        labelEnds[$0] <= trainEnd
      } : []
    guard !train.isEmpty else {
      throw VaneError(.failedPrecondition, "no labelled rows to refit the final model on")
    }
    return Fold(
      number: 0,
      trainRows: train,
      validationRows: validation,
      testRows: [],
      trainRange: trainStart ..< trainEnd,
      testRange: trainEnd ..< trainEnd
    )
  }

  /// Indices of rows opened in [from, to) (binary search: rows are sorted).
  static func rows(_ times: [Int64], from: Int64, to: Int64) -> [Int] {
    func lowerBound(_ value: Int64) -> Int {
      var low = 0, high = times.count
      while low < high {
        let mid = (low + high) / 2
        if times[mid] < value { low = mid + 1 } else { high = mid }
      }
      return low
    }
    return Array(lowerBound(from) ..< lowerBound(to))
  }

  /// Which fold's prediction each row's out-of-fold value comes from: the most recent fold
  /// whose test range covers it (folds overlap when retraining more often than the test length);
  /// nil for rows no fold tests.
  public static func outOfFoldSource(rowCount: Int, folds: [Fold]) -> [Int?] {
    var source = [Int?](repeating: nil, count: rowCount)
    for (index, fold) in folds.enumerated() {
      for row in fold.testRows { source[row] = index }
    }
    return source
  }
}
