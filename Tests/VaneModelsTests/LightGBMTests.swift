import Foundation
import Testing
import VaneCore
import VaneTestSupport

@testable import VaneModels

/// The LightGBM text reader and the native evaluator on its trees: equal to Python lightgbm on
/// real-feature models, exact on a hand-checked model, and refusing malformed files with the line.
@Suite("LightGBM text models")
struct LightGBMTests {
  /// Two trees over features a, b, c. Tree 0: the root splits a at 0.5 (`<=` left; NaN is
  /// missing and goes left) to node 1, a categorical split of c on categories {0, 2}
  /// (bitset 5) with leaves 0.25 / 0.125; the root's right is the leaf -0.5. Tree 1 is a single
  /// leaf, 0.0625.
  static let model = """
    tree
    version=v4
    num_class=1
    num_tree_per_iteration=1
    label_index=0
    max_feature_idx=2
    objective=binary sigmoid:0.5
    feature_names=a b c
    feature_infos=[0:1] [0:1] 0:1:2
    tree_sizes=400 300

    Tree=0
    num_leaves=3
    num_cat=1
    split_feature=0 2
    split_gain=1 1
    threshold=0.5 0
    decision_type=10 1
    left_child=1 -1
    right_child=-2 -3
    leaf_value=0.25 -0.5 0.125
    leaf_weight=1 1 1
    leaf_count=1 1 1
    internal_value=0 0
    internal_weight=0 0
    internal_count=3 2
    cat_boundaries=0 1
    cat_threshold=5
    is_linear=0
    shrinkage=1


    Tree=1
    num_leaves=1
    num_cat=0
    split_feature=
    split_gain=
    threshold=
    decision_type=
    left_child=
    right_child=
    leaf_value=0.0625
    leaf_weight=
    leaf_count=3
    internal_value=
    internal_weight=
    internal_count=
    is_linear=0
    shrinkage=1


    end of trees

    feature_importances:
    a=1
    c=1

    parameters:
    [boosting: gbdt]
    end of parameters

    pandas_categorical:null

    """

  static func parse(_ text: String) throws -> TreeEnsemble {
    try TreeEnsemble.lightgbm(text: Data(text.utf8))
  }

  @Test(
    "The hand-checked model: <= on thresholds, NaN's default, categories by truncation, single-leaf trees"
  )
  func handChecked() throws {
    let model = try Self.parse(Self.model)
    #expect(
      model.format == .lightgbm && model.objective == .binaryLogistic && model.sigmoidScale == 0.5
    )
    #expect(
      model.featureCount == 3 && model.featureNames == ["a", "b", "c"] && model.groups == 1
        && model.trees.count == 2
    )
    #expect(
      model.trees[0].split == [
        .lessOrEqual(.nan), .categories([5]), .lessThan, .lessThan, .lessThan,
      ]
    )
    let cases: [([Double], Double)] = [
      ([0.5, 0, 0], 0.25), ([0.5000001, 0, 0], -0.5), ([.nan, 0, 2], 0.25), ([0.1, 0, 1], 0.125),
      ([0.1, 0, -0.5], 0.25),
      ([0.1, 0, -1], 0.125), ([0.1, 0, .nan], 0.125), ([0.1, 0, 2.9], 0.25), ([0.1, 0, 40], 0.125),
      ([0.1, 0, 1e300], 0.125),
    ]
    for (row, leaf) in cases {
      let margin = row.withUnsafeBufferPointer { model.margins($0) }
      #expect(margin == [leaf + 0.0625], "row \(row)")
      let p = row.withUnsafeBufferPointer { model.probabilities($0) }
      let expected = 1 / (1 + Foundation.exp(-0.5 * (leaf + 0.0625)))
      #expect(abs(p[1] - expected) < 1e-15 && p[0] == 1 - p[1])
    }
  }

  @Test(
    "Missing types: None takes NaN as 0, Zero sends 0 and NaN the default way, NaN sends only NaN"
  )
  func missingTypes() throws {
    // One split on a at 0.25 with the default direction left; leaves: left 1, right 2.
    func model(_ decision: Int, threshold: String = "0.25") throws -> TreeEnsemble {
      try Self.parse(
        Self.model.replacingOccurrences(
          of: "decision_type=10 1",
          with: "decision_type=\(decision) 1"
        )
        .replacingOccurrences(of: "threshold=0.5 0", with: "threshold=\(threshold) 0")
        .replacingOccurrences(of: "leaf_value=0.25 -0.5 0.125", with: "leaf_value=1 2 1")
      )
    }
    func leaf(_ model: TreeEnsemble, _ a: Double) -> Double {
      [a, 0, 0].withUnsafeBufferPointer { model.margins($0)[0] } - 0.0625
    }
    let none = try model(2), zero = try model(2 | 4), nan = try model(2 | 8),
      noneRight = try model(0, threshold: "-0.25")
    // NaN is 0: 0 <= 0.25 left, 0 <= -0.25 right.
    #expect(leaf(none, .nan) == 1 && leaf(noneRight, .nan) == 2)
    #expect(
      leaf(zero, 0) == 1 && leaf(zero, .nan) == 1 && leaf(zero, 1e-36) == 1 && leaf(zero, 0.3) == 2
    )
    // Default right: 0 goes right although 0 <= -1 is false anyway.
    let zeroRight = try model(4, threshold: "-1")
    #expect(leaf(zeroRight, 0) == 2 && leaf(zeroRight, -2) == 1)
    #expect(leaf(nan, .nan) == 1 && leaf(nan, 0.3) == 2 && leaf(nan, 0.25) == 1)
  }

  // MARK: Python lightgbm's answers

  /// `Fixtures/lightgbm/NAME.json`, written by `scripts/lightgbm_fixtures.py` beside NAME.txt.
  struct Golden: Decodable {
    struct Tensor: Decodable {
      var shape: [Int]
      var data: [Number]
    }

    /// A number, or "NaN".
    struct Number: Decodable {
      var value: Double
      init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Double.self) {
          self.value = value
        } else {
          let text = try container.decode(String.self)
          guard text == "NaN" else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)'")
          }
          self.value = .nan
        }
      }
    }

    var inputs: [String: Tensor]
    var outputs: [String: Tensor]

    static func directory() -> URL {
      URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures/lightgbm"
      )
    }

    static func load(_ name: String) throws -> (TreeEnsemble, Golden) {
      let text = try Data(contentsOf: directory().appendingPathComponent("\(name).txt"))
      let golden = try JSONDecoder().decode(
        Golden.self,
        from: Data(contentsOf: directory().appendingPathComponent("\(name).json"))
      )
      return (try TreeEnsemble.lightgbm(text: text), golden)
    }
  }

  static let fixtures = [
    "binary_nan", "binary_zero_missing", "categorical", "multiclass", "multiclassova", "regression",
    "random_forest",
  ]

  @Test(
    "Margins and probabilities equal Python lightgbm's predict(raw_score=True) and predict() within 1e-9",
    arguments: LightGBMTests.fixtures
  )
  func golden(name: String) throws {
    let (model, golden) = try Golden.load(name)
    let x = try #require(golden.inputs["x"])
    let rows = x.shape[0], width = x.shape[1]
    #expect(width == model.featureCount)
    let values = x.data.map(\.value)
    #expect(values.contains { $0.isNaN })
    let margins = model.margins(batch: values, rows: rows)
    let expected = try #require(golden.outputs["margin"]).data.map(\.value)
    #expect(margins.count == expected.count)
    let worst = zip(margins, expected).map { abs($0 - $1) }.max() ?? .infinity
    #expect(worst <= 1e-9, "largest margin difference \(worst)")
    if let probabilities = golden.outputs["probabilities"] {
      #expect(model.classCount == probabilities.shape[1])
      let got = values.withUnsafeBufferPointer { all in
        (0 ..< rows).flatMap { r in
          model.probabilities(UnsafeBufferPointer(rebasing: all[(r * width) ..< ((r + 1) * width)]))
        }
      }
      let worstP = zip(got, probabilities.data.map(\.value)).map { abs($0 - $1) }.max() ?? .infinity
      #expect(
        got.count == probabilities.data.count && worstP <= 1e-9,
        "largest probability difference \(worstP)"
      )
    } else {
      #expect(model.objective == .margin && model.classCount == 0)
    }
  }

  @Test("The fixtures reach every split kind the format has")
  func coverage() throws {
    func splits(_ name: String) throws -> [TreeEnsemble.Split] {
      try Golden.load(name).0.trees.flatMap(\.split)
    }
    let nan = try splits("binary_nan"), zero = try splits("binary_zero_missing"),
      categorical = try splits("categorical")
    #expect(nan.contains(.lessOrEqual(.nan)) && nan.contains(.lessOrEqual(.none)))
    #expect(zero.contains(.lessOrEqual(.zero)))
    #expect(categorical.contains { if case .categories = $0 { true } else { false } })
    let (forest, _) = try Golden.load("random_forest")
    #expect(forest.averageOutput)
    let (multiclass, _) = try Golden.load("multiclass")
    #expect(
      multiclass.groups == 3 && multiclass.objective == .multiSoftprob
        && multiclass.trees.map(\.group).prefix(6) == [0, 1, 2, 0, 1, 2]
    )
  }

  // MARK: Hostile files

  /// (what is broken, text to find, its replacement, what the message must contain)
  static let defects: [(String, String, String, String)] = [
    ("not a model", "tree\nversion", "trees\nversion", "line 1: not a LightGBM text model"),
    ("unknown version", "version=v4", "version=v9", "line 2: version 'v9' is not supported"),
    ("no max_feature_idx", "max_feature_idx=2\n", "", "the header has no 'max_feature_idx=' line"),
    (
      "a header key twice", "label_index=0\n", "label_index=0\nnum_class=1\n",
      "line 6: 'num_class' is given twice"
    ),
    (
      "feature names", "feature_names=a b c", "feature_names=a b",
      "line 8: feature_names has 2 names for max_feature_idx + 1 = 3"
    ),
    (
      "binary with two groups", "num_tree_per_iteration=1", "num_tree_per_iteration=2",
      "line 7: objective binary with num_class 1 and num_tree_per_iteration 2"
    ),
    ("a bad tree index", "Tree=1", "Tree=5", "line 33: 'Tree=5' where Tree=1 belongs"),
    (
      "feature out of range", "split_feature=0 2", "split_feature=0 3",
      "line 15: Tree=0 (line 12): split_feature[1] = 3 is not a feature in 0..<3"
    ),
    (
      "child out of range", "left_child=1 -1", "left_child=1 -4",
      "line 19: Tree=0 (line 12): left_child[1] = -4"
    ),
    ("a cycle", "left_child=1 -1", "left_child=1 1", "node 1 is reached twice"),
    ("a leaf twice", "right_child=-2 -3", "right_child=-2 -1", "leaf 0 is reached twice"),
    (
      "too few leaf values", "leaf_value=0.25 -0.5 0.125", "leaf_value=0.25 -0.5",
      "line 21: Tree=0 (line 12): leaf_value has 2 values, 3 expected"
    ),
    (
      "too many values", "threshold=0.5 0", "threshold=0.5 0 7",
      "line 17: Tree=0 (line 12): threshold has more than 2 values"
    ),
    (
      "not a number", "threshold=0.5 0", "threshold=0.5x 0",
      "threshold[0] '0.5x' is not a valid number"
    ),
    (
      "a NaN leaf", "leaf_value=0.25 -0.5 0.125", "leaf_value=0.25 nan 0.125",
      "leaf_value[1] 'nan' is not a valid number"
    ),
    (
      "an invalid decision", "decision_type=10 1", "decision_type=14 1",
      "decision_type[0] = 14 is not a valid decision"
    ),
    (
      "a category set out of range", "threshold=0.5 0", "threshold=0.5 1",
      "threshold[1] = 1.0 of a categorical split is not a category set in 0..<1"
    ),
    (
      "bitset words missing", "cat_boundaries=0 1", "cat_boundaries=0 3",
      "cat_threshold has 1 values, 3 expected"
    ),
    (
      "falling boundaries", "cat_boundaries=0 1", "cat_boundaries=1 1",
      "cat_boundaries must rise from 0"
    ),
    (
      "num_leaves out of range", "num_leaves=3", "num_leaves=999999999",
      "num_leaves '999999999' is not in 1...131072"
    ),
    (
      "a linear tree", "is_linear=0\nshrinkage=1\n\n\nTree=1",
      "is_linear=1\nshrinkage=1\n\n\nTree=1",
      "line 29: Tree=0 (line 12): linear trees are not supported"
    ),
    (
      "no end marker", "end of trees", "",
      "line 54: 'feature_importances:' where a Tree= section or 'end of trees' belongs"
    ),
    (
      "truncated",
      "end of trees\n\nfeature_importances:\na=1\nc=1\n\nparameters:\n[boosting: gbdt]\nend of parameters\n\npandas_categorical:null\n",
      "", "the file ends before 'end of trees'"
    ),
    (
      "tree_sizes disagree", "tree_sizes=400 300", "tree_sizes=400",
      "line 10: tree_sizes lists 1 trees, the file has 2"
    ),
    (
      "a tree key twice", "shrinkage=1\n\n\nTree=1", "shrinkage=1\nshrinkage=1\n\n\nTree=1",
      "line 31: Tree=0: 'shrinkage' is given twice"
    ),
  ]

  @Test(
    "Malformed or unsupported files are refused with INVALID_ARGUMENT naming the line",
    arguments: LightGBMTests.defects.map(\.0)
  )
  func refuses(defect: String) throws {
    let (_, find, replace, message) = try #require(Self.defects.first { $0.0 == defect })
    #expect(Self.model.contains(find), "the model contains '\(find)'")
    let error = try #require(throws: VaneError.self) {
      try Self.parse(Self.model.replacingOccurrences(of: find, with: replace))
    }
    #expect(error.code == .invalidArgument)
    #expect(error.message.hasPrefix("lightgbm: "))
    #expect(error.message.contains(message), "message: \(error.message)")
  }

  /// Seeded mutations of the hand-made model and a real fixture: bytes flipped, lines dropped,
  /// duplicated or swapped, numbers replaced by extremes. Every one parses or is refused with
  /// INVALID_ARGUMENT, and what parses evaluates without a crash.
  /// `VANE_LIGHTGBM_FUZZ_ITERATIONS` (default 1,500) and `VANE_LIGHTGBM_FUZZ_SEED` set the run.
  @Test("Mutated files never crash the reader or the evaluator")
  func fuzz() async throws {
    let environment = ProcessInfo.processInfo.environment
    let iterations = environment["VANE_LIGHTGBM_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 1_500
    let seed = environment["VANE_LIGHTGBM_FUZZ_SEED"].flatMap(UInt64.init) ?? 0x6C67_626D
    let seeds = [
      Self.model,
      try String(
        contentsOf: Golden.directory().appendingPathComponent("regression.txt"),
        encoding: .utf8
      ),
    ]
    let (parsed, refused) = try await BlockingPool.shared.run {
      try LightGBMFuzz.run(seeds: seeds, iterations: iterations, seed: seed)
    }
    #expect(parsed + refused == iterations)
    #expect(parsed > 0 && refused > 0, "parsed \(parsed), refused \(refused)")
  }
}

/// The mutation loop, also run at scale by `scripts/fuzz_readers.sh`.
enum LightGBMFuzz {
  static let extremes = [
    "", "-", "nan", "inf", "-inf", "1e400", "-0", "2147483648", "-2147483649",
    "9223372036854775808", "131073", "-131073", "0x10", "1 2 3 4 5 6 7 8",
  ]

  static func run(
    seeds: [String],
    iterations: Int,
    seed: UInt64
  ) throws -> (parsed: Int, refused: Int) {
    var random = SplitMix64(seed: seed)
    var parsed = 0, refused = 0
    for _ in 0 ..< iterations {
      var lines = seeds[Int(random.next() % UInt64(seeds.count))].split(
        separator: "\n",
        omittingEmptySubsequences: false
      ).map(String.init)
      for _ in 0 ... (random.next() % 4) {
        let i = Int(random.next() % UInt64(lines.count))
        switch random.next() % 6 {
        case 0: lines.remove(at: i)
        case 1: lines.insert(lines[i], at: i)
        case 2: lines.swapAt(i, Int(random.next() % UInt64(lines.count)))
        case 3:
          // A value's number replaced.
          var parts = lines[i].split(separator: " ", omittingEmptySubsequences: false).map(
            String.init
          )
          let j = Int(random.next() % UInt64(parts.count))
          let extreme = extremes[Int(random.next() % UInt64(extremes.count))]
          if let equals = parts[j].firstIndex(of: "=") {
            parts[j] = String(parts[j][...equals]) + extreme
          } else {
            parts[j] = extreme
          }
          lines[i] = parts.joined(separator: " ")
        case 4:
          var bytes = Array(lines[i].utf8)
          if !bytes.isEmpty {
            bytes[Int(random.next() % UInt64(bytes.count))] ^= UInt8(
              truncatingIfNeeded: 1 << (random.next() % 8)
            )
          }
          lines[i] = String(decoding: bytes, as: UTF8.self)
        default: lines[i] = String(lines[i].prefix(Int(random.next() % UInt64(lines[i].count + 1))))
        }
        if lines.isEmpty { lines = [""] }
      }
      do {
        let model = try TreeEnsemble.lightgbm(text: Data(lines.joined(separator: "\n").utf8))
        parsed += 1
        var row = [Double](repeating: 0, count: model.featureCount)
        for j in row.indices { row[j] = [0, .nan, -1, 1e12, 0.5][Int(random.next() % 5)] }
        let margins = row.withUnsafeBufferPointer { model.margins($0) }
        if model.classCount > 0 { _ = row.withUnsafeBufferPointer { model.probabilities($0) } }
        precondition(margins.count == model.groups)
      } catch let error as VaneError {
        precondition(
          error.code == .invalidArgument && error.message.hasPrefix("lightgbm: "),
          "\(error)"
        )
        refused += 1
      }
    }
    return (parsed, refused)
  }
}
