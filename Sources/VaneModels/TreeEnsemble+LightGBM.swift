// Reading LightGBM's text model format (`Booster.save_model`, versions v2 to v4) into the
// native ensemble.
//
// The file is a header of `key=value` lines, then one section per tree (`Tree=N`, its arrays
// as space-separated `key=value` lines), then `end of trees` and what the evaluator does not
// need (feature importances, parameters). Each array is checked against the tree's
// `num_leaves` and every index against what it refers to before anything is built; a cycle in
// the children is found by a walk that visits each node once.

public import Foundation
internal import VaneCore

extension TreeEnsemble {
  /// Bounds on what a LightGBM file may declare (a hostile file cannot make the reader allocate
  /// beyond what its own bytes justify, or beyond these).
  public enum LightGBMLimits {
    /// Trees in one model.
    public static let trees = 1_000_000
    /// Leaves in one tree (LightGBM's own cap on `num_leaves`).
    public static let leaves = 131_072
    /// Features (`max_feature_idx + 1`).
    public static let features = 1_000_000
    /// Classes (`num_class`, `num_tree_per_iteration`).
    public static let classes = 10_000
    /// 32-bit words in one tree's categorical bitsets.
    public static let categoryWords = 1 << 20
  }

  /// Reads a LightGBM text model.
  /// - Throws: INVALID_ARGUMENT (`lightgbm: line N: …`) naming the line and what is wrong, or
  ///   what is not supported (linear trees, a version other than v2–v4).
  public static func lightgbm(text data: Data) throws -> TreeEnsemble {
    var reader = LightGBMReader(data)
    return try reader.read()
  }
}

/// One pass over the lines of a LightGBM text model.
private struct LightGBMReader {
  typealias Limits = TreeEnsemble.LightGBMLimits

  let lines: [Substring]
  var index = 0

  init(_ data: Data) {
    let text = String(decoding: data, as: UTF8.self)
    self.lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
      $0.hasSuffix("\r") ? $0.dropLast() : $0
    }
  }

  static func fail(_ line: Int, _ reason: String) -> VaneError {
    VaneError(.invalidArgument, "lightgbm: line \(line): \(reason)")
  }

  static func fail(_ reason: String) -> VaneError {
    VaneError(.invalidArgument, "lightgbm: \(reason)")
  }

  /// A `key=value` line (a bare word is a flag with an empty value).
  static func split(_ line: Substring) -> (key: Substring, value: Substring) {
    guard let equals = line.firstIndex(of: "=") else { return (line, "") }
    return (line[..<equals], line[line.index(after: equals)...])
  }

  // MARK: The file

  mutating func read() throws -> TreeEnsemble {
    guard let first = lines.first, first.trimmingCharacters(in: .whitespaces) == "tree" else {
      throw Self.fail(1, "not a LightGBM text model (its first line is 'tree')")
    }
    index = 1
    var header: [Substring: (value: Substring, line: Int)] = [:]
    while index < lines.count, !lines[index].hasPrefix("Tree="), lines[index] != "end of trees" {
      let line = lines[index]
      index += 1
      if line.isEmpty { continue }
      let (key, value) = Self.split(line)
      guard header[key] == nil else { throw Self.fail(index, "'\(key)' is given twice") }
      header[key] = (value, index)
    }

    func required(_ key: Substring) throws -> (value: Substring, line: Int) {
      guard let entry = header[key] else { throw Self.fail("the header has no '\(key)=' line") }
      return entry
    }
    func integer(_ key: Substring, in range: ClosedRange<Int>) throws -> Int {
      let (text, line) = try required(key)
      guard let value = Int(text), range.contains(value) else {
        throw Self.fail(
          line,
          "\(key) '\(text.prefix(40))' is not an integer in \(range.lowerBound)...\(range.upperBound)"
        )
      }
      return value
    }

    let version = try required("version")
    guard ["v2", "v3", "v4"].contains(version.value) else {
      throw Self.fail(
        version.line,
        "version '\(version.value.prefix(40))' is not supported (v2, v3 or v4)"
      )
    }
    let classes = try integer("num_class", in: 1 ... Limits.classes)
    let groups = try integer("num_tree_per_iteration", in: 1 ... Limits.classes)
    let featureCount = try integer("max_feature_idx", in: 0 ... (Limits.features - 1)) + 1
    var names: [String] = []
    if let (text, line) = header["feature_names"] {
      names = text.split(separator: " ").map(String.init)
      guard names.count == featureCount else {
        throw Self.fail(
          line,
          "feature_names has \(names.count) names for max_feature_idx + 1 = \(featureCount) features"
        )
      }
    }
    if let (text, line) = header["linear_tree"], text != "0" {
      throw Self.fail(line, "linear trees are not supported")
    }
    let (objective, objectiveName, scale) = try Self.objective(
      required("objective"),
      classes: classes,
      groups: groups
    )

    var trees: [TreeEnsemble.Tree] = []
    while index < lines.count, lines[index].hasPrefix("Tree=") {
      guard trees.count < Limits.trees else {
        throw Self.fail(index + 1, "more than \(Limits.trees) trees")
      }
      trees.append(
        try self.tree(number: trees.count, featureCount: featureCount, group: trees.count % groups)
      )
    }
    guard index < lines.count, lines[index] == "end of trees" else {
      throw Self.fail(
        min(index + 1, lines.count),
        index < lines.count
          ? "'\(lines[index].prefix(40))' where a Tree= section or 'end of trees' belongs"
          : "the file ends before 'end of trees' (truncated?)"
      )
    }
    guard !trees.isEmpty else { throw Self.fail(index + 1, "the model has no trees") }
    guard trees.count % groups == 0 else {
      throw Self.fail(
        index + 1,
        "\(trees.count) trees are not whole iterations of num_tree_per_iteration = \(groups)"
      )
    }
    if let (text, line) = header["tree_sizes"] {
      let sizes = text.split(separator: " ").count
      guard sizes == trees.count else {
        throw Self.fail(line, "tree_sizes lists \(sizes) trees, the file has \(trees.count)")
      }
    }
    return TreeEnsemble(
      format: .lightgbm,
      objective: objective,
      objectiveName: objectiveName,
      sigmoidScale: scale,
      groups: groups,
      baseMargins: [Double](repeating: 0, count: groups),
      trees: trees,
      totalTrees: trees.count,
      featureCount: featureCount,
      featureNames: names,
      averageOutput: header["average_output"] != nil
    )
  }

  /// The objective line: its name decides how margins become probabilities.
  static func objective(
    _ entry: (value: Substring, line: Int),
    classes: Int,
    groups: Int
  ) throws -> (TreeEnsemble.Objective, String, Double) {
    let words = entry.value.split(separator: " ")
    guard let name = words.first else { throw fail(entry.line, "objective is empty") }
    var scale = 1.0
    for word in words.dropFirst() where word.hasPrefix("sigmoid:") {
      guard let value = Double(word.dropFirst("sigmoid:".count)), value.isFinite, value > 0 else {
        throw fail(entry.line, "objective's '\(word.prefix(40))' is not a positive number")
      }
      scale = value
    }
    let objective: TreeEnsemble.Objective
    switch name {
    case "binary", "cross_entropy", "xentropy":
      guard groups == 1, classes == 1 else {
        throw fail(
          entry.line,
          "objective \(name) with num_class \(classes) and num_tree_per_iteration \(groups) (a binary model has 1 and 1)"
        )
      }
      objective = .binaryLogistic
    case "multiclass", "softmax", "multiclassova", "multiclass_ova", "ova", "ovr":
      guard classes >= 2, groups == classes else {
        throw fail(
          entry.line,
          "objective \(name) with num_class \(classes) and num_tree_per_iteration \(groups) (they must agree, 2 or more)"
        )
      }
      objective = name == "multiclass" || name == "softmax" ? .multiSoftprob : .multiOneVsRest
    default:
      guard groups == classes else {
        throw fail(
          entry.line,
          "num_class \(classes) disagrees with num_tree_per_iteration \(groups)"
        )
      }
      objective = .margin
    }
    return (objective, String(entry.value), scale)
  }

  // MARK: One tree

  /// Reads the `Tree=N` section at the cursor and checks it.
  mutating func tree(number: Int, featureCount: Int, group: Int) throws -> TreeEnsemble.Tree {
    let start = index + 1
    guard Int(lines[index].dropFirst("Tree=".count)) == number else {
      throw Self.fail(
        start,
        "'\(lines[index].prefix(40))' where Tree=\(number) belongs (tree indices run 0, 1, 2, … in order)"
      )
    }
    index += 1
    var fields: [Substring: (value: Substring, line: Int)] = [:]
    while index < lines.count, !lines[index].isEmpty, !lines[index].hasPrefix("Tree="),
      lines[index] != "end of trees"
    {
      let (key, value) = Self.split(lines[index])
      index += 1
      guard fields[key] == nil else {
        throw Self.fail(index, "Tree=\(number): '\(key)' is given twice")
      }
      fields[key] = (value, index)
    }
    while index < lines.count, lines[index].isEmpty { index += 1 }

    let context = "Tree=\(number) (line \(start))"
    func field(_ key: Substring) throws -> (value: Substring, line: Int) {
      guard let entry = fields[key] else { throw Self.fail("\(context) has no '\(key)=' line") }
      return entry
    }
    func numbers<T>(_ key: Substring, count: Int, _ parse: (Substring) -> T?) throws -> [T] {
      let (text, line) = try field(key)
      var values: [T] = []
      values.reserveCapacity(min(count, Limits.leaves))
      for part in text.split(separator: " ", omittingEmptySubsequences: true) {
        guard values.count < count else {
          throw Self.fail(line, "\(context): \(key) has more than \(count) values")
        }
        guard let value = parse(part) else {
          throw Self.fail(
            line,
            "\(context): \(key)[\(values.count)] '\(part.prefix(40))' is not a valid number"
          )
        }
        values.append(value)
      }
      guard values.count == count else {
        throw Self.fail(line, "\(context): \(key) has \(values.count) values, \(count) expected")
      }
      return values
    }

    let leavesEntry = try field("num_leaves")
    guard let leaves = Int(leavesEntry.value), (1 ... Limits.leaves).contains(leaves) else {
      throw Self.fail(
        leavesEntry.line,
        "\(context): num_leaves '\(leavesEntry.value.prefix(40))' is not in 1...\(Limits.leaves)"
      )
    }
    if let (text, line) = fields["is_linear"], text != "0" {
      throw Self.fail(line, "\(context): linear trees are not supported")
    }
    let leafValues = try numbers("leaf_value", count: leaves) {
      Double($0).flatMap { $0.isFinite ? $0 : nil }
    }
    var tree = TreeEnsemble.Tree(
      group: group,
      left: [],
      right: [],
      feature: [],
      value: [],
      defaultLeft: [],
      split: []
    )
    if leaves == 1 {
      tree.left = [-1]
      tree.right = [-1]
      tree.feature = [0]
      tree.value = leafValues
      tree.defaultLeft = [false]
      tree.split = [.lessThan]
      return tree
    }

    let inner = leaves - 1
    let features = try numbers("split_feature", count: inner) { Int($0) }
    let thresholds = try numbers("threshold", count: inner) {
      Double($0).flatMap { $0.isNaN ? nil : $0 }
    }
    let decisions = try numbers("decision_type", count: inner) { Int($0) }
    let lefts = try numbers("left_child", count: inner) { Int($0) }
    let rights = try numbers("right_child", count: inner) { Int($0) }
    var categories = 0
    if let (text, line) = fields["num_cat"] {
      guard let count = Int(text), (0 ... inner).contains(count) else {
        throw Self.fail(line, "\(context): num_cat '\(text.prefix(40))' is not in 0...\(inner)")
      }
      categories = count
    }
    var boundaries: [Int] = []
    var words: [UInt32] = []
    if categories > 0 {
      boundaries = try numbers("cat_boundaries", count: categories + 1) { Int($0) }
      let line = try field("cat_boundaries").line
      guard boundaries[0] == 0, zip(boundaries, boundaries.dropFirst()).allSatisfy({ $0 <= $1 }),
        boundaries[categories] <= Limits.categoryWords
      else {
        throw Self.fail(
          line,
          "\(context): cat_boundaries must rise from 0 to at most \(Limits.categoryWords)"
        )
      }
      words = try numbers("cat_threshold", count: boundaries[categories]) { UInt32($0) }
    }

    // Check every node's split before the walk, each error naming its line.
    for node in 0 ..< inner {
      guard (0 ..< featureCount).contains(features[node]) else {
        throw Self.fail(
          try field("split_feature").line,
          "\(context): split_feature[\(node)] = \(features[node]) is not a feature in 0..<\(featureCount)"
        )
      }
      let decision = decisions[node]
      guard decision & ~0b1111 == 0, (decision >> 2) & 3 != 3 else {
        throw Self.fail(
          try field("decision_type").line,
          "\(context): decision_type[\(node)] = \(decision) is not a valid decision (bits: categorical 1, default left 2, missing type 4–8)"
        )
      }
      if decision & 1 == 1 {
        let cat = thresholds[node]
        guard cat >= 0, cat < Double(categories), cat.rounded() == cat else {
          throw Self.fail(
            try field("threshold").line,
            "\(context): threshold[\(node)] = \(cat) of a categorical split is not a category set in 0..<\(categories)"
          )
        }
      }
      for (key, child) in [("left_child", lefts[node]), ("right_child", rights[node])] {
        guard (child >= 1 && child < inner) || (child < 0 && ~child < leaves) else {
          throw Self.fail(
            try field(Substring(key)).line,
            "\(context): \(key)[\(node)] = \(child) is neither a node in 1..<\(inner) nor a leaf -1...-\(leaves)"
          )
        }
      }
    }

    // Pre-order walk from the root; children are ≥ 0 for a split node and ~leaf for a leaf.
    var seenNode = [Bool](repeating: false, count: inner)
    var seenLeaf = [Bool](repeating: false, count: leaves)
    var stack = [0]
    var order: [Int] = []  // encoded as in the file
    order.reserveCapacity(2 * leaves - 1)
    while let child = stack.popLast() {
      if child >= 0 {
        guard !seenNode[child] else {
          throw Self.fail(
            start,
            "\(context): node \(child) is reached twice (the children do not form a tree)"
          )
        }
        seenNode[child] = true
        stack.append(rights[child])
        stack.append(lefts[child])
      } else {
        guard !seenLeaf[~child] else {
          throw Self.fail(
            start,
            "\(context): leaf \(~child) is reached twice (the children do not form a tree)"
          )
        }
        seenLeaf[~child] = true
      }
      order.append(child)
    }
    guard order.count == 2 * leaves - 1 else {
      throw Self.fail(
        start,
        "\(context): \(2 * leaves - 1 - order.count) nodes or leaves are not reachable from the root"
      )
    }
    // Where each split node and leaf lands in pre-order.
    var nodePosition = [Int](repeating: 0, count: inner)
    var leafPosition = [Int](repeating: 0, count: leaves)
    for (i, child) in order.enumerated() {
      if child >= 0 { nodePosition[child] = i } else { leafPosition[~child] = i }
    }
    func position(_ child: Int) -> Int { child >= 0 ? nodePosition[child] : leafPosition[~child] }
    for child in order {
      if child < 0 {
        tree.left.append(-1)
        tree.right.append(-1)
        tree.feature.append(0)
        tree.value.append(leafValues[~child])
        tree.defaultLeft.append(false)
        tree.split.append(.lessThan)
        continue
      }
      let decision = decisions[child]
      tree.left.append(position(lefts[child]))
      tree.right.append(position(rights[child]))
      tree.feature.append(features[child])
      tree.defaultLeft.append(decision & 2 != 0)
      if decision & 1 == 1 {
        let set = Int(thresholds[child])
        tree.value.append(thresholds[child])
        tree.split.append(.categories(Array(words[boundaries[set] ..< boundaries[set + 1]])))
      } else {
        tree.value.append(thresholds[child])
        tree.split.append(.lessOrEqual(TreeEnsemble.Missing(rawValue: UInt8((decision >> 2) & 3))!))
      }
    }
    return tree
  }
}
