import Foundation
import Testing
import VaneCore

@testable import VaneModels

/// The XGBoost JSON reader: what it keeps from a well-formed model, and how it refuses
/// malformed or unsupported ones (a VaneError naming the path, never a crash).
@Suite("XGBoost JSON reader")
struct TreeEnsembleTests {
  /// A binary:logistic model over 3 features, two rounds. Tree 0 lists its root's children as
  /// (2, 1), so pre-order renumbers them; tree 1 is a single leaf.
  static let binary = #"""
    {"learner": {
      "attributes": {},
      "feature_names": [], "feature_types": [],
      "gradient_booster": {"name": "gbtree", "model": {
        "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": "2"},
        "tree_info": [0, 0],
        "trees": [
          {"id": 0, "base_weights": [0, 0, 0, 0, 0], "categories": [], "categories_nodes": [], "categories_segments": [],
           "categories_sizes": [], "loss_changes": [1, 0, 1, 0, 0], "parents": [2147483647, 0, 0, 2, 2],
           "sum_hessian": [4, 1, 3, 1, 2],
           "left_children": [2, -1, 3, -1, -1], "right_children": [1, -1, 4, -1, -1],
           "split_indices": [1, 0, 2, 0, 0], "split_conditions": [0.5, -0.25, 1.5, 0.125, 0.375],
           "default_left": [1, 0, 0, 0, 0], "split_type": [0, 0, 0, 0, 0],
           "tree_param": {"num_deleted": "0", "num_feature": "3", "num_nodes": "5", "size_leaf_vector": "0"}},
          {"id": 1, "left_children": [-1], "right_children": [-1], "split_indices": [0], "split_conditions": [0.0625],
           "default_left": [0], "split_type": [0],
           "tree_param": {"num_deleted": "0", "num_feature": "3", "num_nodes": "1", "size_leaf_vector": "0"}}
        ]}},
      "learner_model_param": {"base_score": "2.5E-1", "boost_from_average": "1", "num_class": "0", "num_feature": "3", "num_target": "1"},
      "objective": {"name": "binary:logistic", "reg_loss_param": {"scale_pos_weight": "1"}}
    },
    "version": [1, 7, 4]}
    """#

  static func parse(
    _ text: String,
    classCount: Int = 2,
    featureCount: Int = 3,
    rounds: Int = 0
  ) throws -> TreeEnsemble {
    try TreeEnsemble.xgboost(
      Data(text.utf8),
      classCount: classCount,
      featureCount: featureCount,
      rounds: rounds
    )
  }

  @Test(
    "A well-formed model: kept rounds, pre-order node ids, default directions, logit(base_score)"
  )
  func wellFormed() throws {
    let all = try Self.parse(Self.binary)
    #expect(all.objective == .binaryLogistic)
    #expect(all.trees.count == 2 && all.totalTrees == 2)
    #expect(all.baseMargins == [Double(-Foundation.log(Float(1) / 0.25 - 1))])
    let tree = all.trees[0]
    // Old ids in pre-order: 0, 2, 3, 4, 1.
    #expect(tree.left == [1, 2, -1, -1, -1])
    #expect(tree.right == [4, 3, -1, -1, -1])
    #expect(tree.feature == [1, 2, 0, 0, 0])
    #expect(tree.value == [0.5, 1.5, 0.125, 0.375, -0.25])
    #expect(tree.defaultLeft == [true, false, false, false, false])
    #expect(all.trees[1].left == [-1] && all.trees[1].value == [0.0625])

    let first = try Self.parse(Self.binary, rounds: 1)
    #expect(first.trees.count == 1 && first.totalTrees == 2)
    // Booleans for default_left (older writers) read the same.
    let booleans = try Self.parse(
      Self.binary.replacingOccurrences(
        of: #""default_left": [1, 0, 0, 0, 0]"#,
        with: #""default_left": [true, false, false, false, false]"#
      )
    )
    #expect(booleans == all)
  }

  /// (what is broken, the replacement in the JSON, what the message must contain)
  static let defects: [(String, String, String, String)] = [
    ("truncated JSON", #""version": [1, 7, 4]}"#, #""version": [1, 7"#, "not valid JSON"),
    ("no learner", #"{"learner": {"#, #"{"learnr": {"#, "learner is missing"),
    (
      "a string for an array", #""left_children": [-1], "#, #""left_children": "none", "#,
      "learner.gradient_booster.model.trees[1].left_children"
    ),
    (
      "unsupported objective", #""name": "binary:logistic""#, #""name": "reg:squarederror""#,
      "'reg:squarederror' is not supported"
    ),
    ("unsupported booster", #""name": "gbtree""#, #""name": "dart""#, "'dart' is not supported"),
    (
      "child out of range", #""left_children": [2, -1, 3, -1, -1]"#,
      #""left_children": [2, -1, 9, -1, -1]"#, "trees[0].left_children[2] = 9"
    ),
    (
      "a cycle", #""left_children": [2, -1, 3, -1, -1]"#, #""left_children": [2, -1, 2, -1, -1]"#,
      "node 2 is reached twice"
    ),
    (
      "the root as a child", #""right_children": [1, -1, 4, -1, -1]"#,
      #""right_children": [1, -1, 0, -1, -1]"#, "right_children[2] = 0"
    ),
    (
      "a leaf with a right child", #""right_children": [1, -1, 4, -1, -1]"#,
      #""right_children": [1, 3, 4, -1, -1]"#, "right_children[1] = 3 but the node is a leaf"
    ),
    (
      "feature out of range", #""split_indices": [1, 0, 2, 0, 0]"#,
      #""split_indices": [1, 0, 3, 0, 0]"#, "split_indices[2] = 3 is not a feature in 0..<3"
    ),
    (
      "short array", #""split_conditions": [0.5, -0.25, 1.5, 0.125, 0.375]"#,
      #""split_conditions": [0.5, -0.25]"#, "split_conditions has 2 entries"
    ),
    (
      "number too large for float", #""split_conditions": [0.5, -0.25, 1.5, 0.125, 0.375]"#,
      #""split_conditions": [0.5, -0.25, 1e39, 0.125, 0.375]"#, "a number does not fit its field"
    ),
    (
      "categorical split", #""split_type": [0, 0, 0, 0, 0]"#, #""split_type": [0, 0, 1, 0, 0]"#,
      "categorical splits are not supported"
    ),
    (
      "tree_info out of range", #""tree_info": [0, 0]"#, #""tree_info": [0, 1]"#,
      "tree_info[1] = 1 is not a group"
    ),
    (
      "num_trees disagrees", #""num_trees": "2""#, #""num_trees": "3""#,
      "num_trees is 3 but trees has 2"
    ),
    (
      "base_score outside (0, 1)", #""base_score": "2.5E-1""#, #""base_score": "1.5E0""#,
      "not a probability in (0, 1)"
    ),
    (
      "base_score not a number", #""base_score": "2.5E-1""#, #""base_score": "half""#,
      "'half' is not a finite number"
    ),
    (
      "num_feature disagrees", #""num_feature": "3", "num_target""#,
      #""num_feature": "4", "num_target""#, "num_feature is 4"
    ),
    (
      "vector leaves", #""num_nodes": "1", "size_leaf_vector": "0""#,
      #""num_nodes": "1", "size_leaf_vector": "3""#, "vector leaves are not supported"
    ),
  ]

  @Test(
    "Malformed or unsupported JSON is refused with INVALID_ARGUMENT naming what is wrong",
    arguments: TreeEnsembleTests.defects.map(\.0)
  )
  func refuses(defect: String) throws {
    let (_, find, replace, message) = try #require(Self.defects.first { $0.0 == defect })
    #expect(Self.binary.contains(find), "the fixture contains '\(find)'")
    let broken = Self.binary.replacingOccurrences(of: find, with: replace)
    let error = try #require(throws: VaneError.self) { try Self.parse(broken) }
    #expect(error.code == .invalidArgument)
    #expect(error.message.hasPrefix("xgboost.json: "))
    #expect(error.message.contains(message), "message: \(error.message)")
  }

  @Test("Rounds beyond the trees, a class count that disagrees, and hostile nesting are refused")
  func refusesShapes() throws {
    let tooMany = try #require(throws: VaneError.self) { try Self.parse(Self.binary, rounds: 3) }
    #expect(tooMany.message.contains("3 rounds need 3 trees"))
    let classes = try #require(throws: VaneError.self) {
      try Self.parse(Self.binary, classCount: 3)
    }
    #expect(classes.message.contains("binary:logistic but the model has 3 classes"))
    for text in [
      "", "null", "[]", "{\"learner\": 7}",
      String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000),
    ] {
      let error = try #require(throws: VaneError.self) { try Self.parse(text) }
      #expect(error.code == .invalidArgument)
    }
  }

  /// `Fixtures/tree_margins.json`, made by `scripts/tree_fixture.py` with Python xgboost 1.7.4.
  struct Golden: Decodable {
    struct Case: Decodable {
      var name: String
      var classes: Int
      var features: Int
      var model_json: String
      var rows: [[Double?]]
      var margins: [[Double]]
    }
    var xgboost_version: String
    var cases: [Case]

    static func load(_ file: String = "tree_margins.json") throws -> Golden {
      let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures/\(file)"
      )
      return try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
    }
  }

  /// The same models and rows saved by xgboost 1.7.4 (the version the trainer links), 2.1.4 and
  /// 3.1.2 (whose base_score is a bracketed list: one probability for binary:logistic, one
  /// margin per class for multi:softprob).
  @Test(
    "Native margins equal Python xgboost's predict(output_margin=True) within 1e-6, with NaN and on-threshold values",
    arguments: ["tree_margins.json", "tree_margins_xgboost2.json", "tree_margins_xgboost3.json"],
    ["binary", "three_class"]
  )
  func goldenMargins(file: String, name: String) throws {
    let golden = try Golden.load(file)
    let fixture = try #require(golden.cases.first { $0.name == name })
    let ensemble = try TreeEnsemble.xgboost(
      Data(fixture.model_json.utf8),
      classCount: fixture.classes,
      featureCount: fixture.features,
      rounds: 0
    )
    #expect(fixture.rows.contains { $0.contains(nil) })
    var worst = 0.0
    for (row, expected) in zip(fixture.rows, fixture.margins) {
      let values = row.map { $0 ?? .nan }
      let margins = values.withUnsafeBufferPointer { ensemble.margins($0) }
      #expect(margins.count == expected.count)
      for (got, want) in zip(margins, expected) { worst = max(worst, abs(Double(got) - want)) }
    }
    #expect(worst <= 1e-6, "largest difference \(worst)")
    // The batch form is the row form, row by row.
    let batch = fixture.rows.flatMap { $0.map { $0 ?? .nan } }
    let batched = ensemble.margins(batch: batch, rows: fixture.rows.count)
    let single = fixture.rows.flatMap { row in
      row.map { $0 ?? .nan }.withUnsafeBufferPointer { ensemble.margins($0) }
    }
    #expect(batched == single)
  }

  @Test("A value exactly on a threshold goes right; NaN goes the default direction")
  func thresholdsAndMissing() throws {
    // Tree 0: root splits feature 1 at 0.5 (missing left) → node 1 splits feature 2 at 1.5
    // (missing right) → leaves 0.125 / 0.375; the root's right leaf is -0.25. Tree 1 adds 0.0625.
    let ensemble = try Self.parse(Self.binary)
    let base = ensemble.baseMargins[0]
    func margin(_ row: [Double]) -> Float {
      Float(row.withUnsafeBufferPointer { ensemble.margins($0)[0] }) - Float(base)
    }
    #expect(margin([0, 0.5, 0]) == -0.25 + 0.0625)  // on the threshold: right
    #expect(margin([0, 0.4999, 1.5]) == 0.375 + 0.0625)  // left, then on 1.5: right
    #expect(margin([0, 0.4999, 1.4999]) == 0.125 + 0.0625)
    #expect(margin([0, .nan, .nan]) == 0.375 + 0.0625)  // missing: left at the root, right below
    let p = [0.0, 0.5, 0.0].withUnsafeBufferPointer { ensemble.probabilities($0) }
    let m = Double(Float(base) + Float(-0.25 + 0.0625))
    #expect(abs(p[1] - 1 / (1 + Foundation.exp(-m))) < 1e-12 && abs(p[0] + p[1] - 1) < 1e-15)
  }

  @Test(
    "Batches of any size equal the rows one by one, bit for bit (margins and probabilities), with NaN and on-threshold values",
    arguments: [1, 7, 8, 9, 63, 64, 65, 200]
  )
  func batchSizes(rows: Int) throws {
    let golden = try Golden.load()
    for name in ["binary", "three_class"] {
      let fixture = try #require(golden.cases.first { $0.name == name })
      let ensemble = try TreeEnsemble.xgboost(
        Data(fixture.model_json.utf8),
        classCount: fixture.classes,
        featureCount: fixture.features,
        rounds: 0
      )
      // The fixture's rows (NaN, values on thresholds) cycled, and perturbed copies.
      var random = SeededRandom(seed: UInt64(rows))
      let batch = (0 ..< rows).flatMap { r -> [Double] in
        let row = fixture.rows[r % fixture.rows.count].map { $0 ?? .nan }
        return r < fixture.rows.count ? row : row.map { $0 + (random.uniform() - 0.5) * 0.1 }
      }
      let single = (0 ..< rows).map { r in
        Array(batch[(r * fixture.features) ..< ((r + 1) * fixture.features)])
      }
      #expect(
        ensemble.margins(batch: batch, rows: rows)
          == single.flatMap { row in row.withUnsafeBufferPointer { ensemble.margins($0) } },
        "\(name)"
      )
      #expect(
        ensemble.probabilities(batch: batch, rows: rows)
          == single.flatMap { row in row.withUnsafeBufferPointer { ensemble.probabilities($0) } },
        "\(name)"
      )
    }
  }
}
