// Reading XGBoost's JSON model format (1.x to 3.x) into the native ensemble.

public import Foundation
internal import VaneCore

extension TreeEnsemble {
  /// Reads an XGBoost JSON model file on its own, taking its class and feature counts from its
  /// `learner_model_param` (every round kept): a file a user brings, with no manifest beside it.
  public static func xgboost(file json: Data) throws -> TreeEnsemble {
    let file: File
    do { file = try JSONDecoder().decode(File.self, from: json) } catch {
      // The full reader names what is wrong.
      return try Self.xgboost(json, classCount: 2, featureCount: 1, rounds: 0)
    }
    let numClass = try Self.integer(
      file.learner.learnerModelParam.numClass,
      "learner.learner_model_param.num_class"
    )
    let numFeature = try Self.integer(
      file.learner.learnerModelParam.numFeature,
      "learner.learner_model_param.num_feature"
    )
    return try Self.xgboost(json, classCount: max(2, numClass), featureCount: numFeature, rounds: 0)
  }

  /// Reads XGBoost's JSON, keeping the trees of the first `rounds` boosting rounds (0: all, as
  /// XGBoost's `iteration_end = 0`).
  /// - Throws: INVALID_ARGUMENT (field `xgboost.json`) naming what is wrong.
  public static func xgboost(
    _ json: Data,
    classCount: Int,
    featureCount: Int,
    rounds: Int
  ) throws -> TreeEnsemble {
    guard classCount >= 2 else { throw Self.invalid("class count \(classCount) is below 2") }
    guard featureCount > 0 else {
      throw Self.invalid("feature count \(featureCount) is not positive")
    }
    guard rounds >= 0 else { throw Self.invalid("rounds \(rounds) is negative") }
    let file: File
    do {
      file = try JSONDecoder().decode(File.self, from: json)
    } catch let error as DecodingError {
      if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
        (try? JSONSerialization.jsonObject(with: json)) != nil
      {
        // Valid JSON the decoder still refused (it names no path then): a number out of range.
        throw Self.invalid(
          "a number does not fit its field (a float beyond ±3.4e38 or below its smallest magnitude, or an integer beyond Int)",
          cause: error
        )
      }
      throw Self.invalid(Self.describe(error), cause: error)
    } catch {
      throw Self.invalid("not readable as JSON (\(error))", cause: error)
    }
    let learner = file.learner
    let parameters = learner.learnerModelParam

    guard let objective = Objective(rawValue: learner.objective.name),
      objective == .binaryLogistic || objective == .multiSoftprob
    else {
      throw Self.invalid(
        "learner.objective.name '\(learner.objective.name)' is not supported (binary:logistic or multi:softprob)"
      )
    }
    let groups: Int
    switch objective {
    case .binaryLogistic:
      guard classCount == 2 else {
        throw Self.invalid(
          "learner.objective.name is binary:logistic but the model has \(classCount) classes"
        )
      }
      groups = 1
    default:
      guard classCount > 2 else {
        throw Self.invalid(
          "learner.objective.name is multi:softprob but the model has \(classCount) classes (need 3 or more)"
        )
      }
      groups = classCount
    }
    let numClass = try Self.integer(parameters.numClass, "learner.learner_model_param.num_class")
    guard
      numClass == (objective == .binaryLogistic ? 0 : classCount)
        || (objective == .binaryLogistic && numClass == 1)
    else {
      throw Self.invalid(
        "learner.learner_model_param.num_class is \(numClass) for \(classCount) classes"
      )
    }
    let numFeature = try Self.integer(
      parameters.numFeature,
      "learner.learner_model_param.num_feature"
    )
    guard numFeature == featureCount else {
      throw Self.invalid(
        "learner.learner_model_param.num_feature is \(numFeature), the model has \(featureCount) features"
      )
    }
    if let numTarget = parameters.numTarget {
      let targets = try Self.integer(numTarget, "learner.learner_model_param.num_target")
      guard targets == 1 else {
        throw Self.invalid("learner.learner_model_param.num_target \(targets) is not supported (1)")
      }
    }
    let baseMargins = try Self.baseMargins(
      parameters.baseScore,
      objective: objective,
      groups: groups
    )

    let booster = learner.gradientBooster
    guard booster.name == "gbtree", let model = booster.model else {
      throw Self.invalid(
        "learner.gradient_booster.name '\(booster.name)' is not supported (gbtree)"
      )
    }
    let parallel =
      try model.gbtreeModelParam.numParallelTree.map {
        try Self.integer($0, "learner.gradient_booster.model.gbtree_model_param.num_parallel_tree")
      } ?? 1
    guard parallel >= 1 else {
      throw Self.invalid(
        "learner.gradient_booster.model.gbtree_model_param.num_parallel_tree \(parallel) is below 1"
      )
    }
    let numTrees = try Self.integer(
      model.gbtreeModelParam.numTrees,
      "learner.gradient_booster.model.gbtree_model_param.num_trees"
    )
    guard numTrees == model.trees.count else {
      throw Self.invalid(
        "learner.gradient_booster.model.gbtree_model_param.num_trees is \(numTrees) but trees has \(model.trees.count)"
      )
    }
    guard model.treeInfo.count == model.trees.count else {
      throw Self.invalid(
        "learner.gradient_booster.model.tree_info has \(model.treeInfo.count) entries for \(model.trees.count) trees"
      )
    }
    if let bad = model.treeInfo.firstIndex(where: { !(0 ..< groups).contains($0) }) {
      throw Self.invalid(
        "learner.gradient_booster.model.tree_info[\(bad)] = \(model.treeInfo[bad]) is not a group in 0..<\(groups)"
      )
    }
    let (perRound, overflow) = groups.multipliedReportingOverflow(by: parallel)
    let (wanted, overflow2) = rounds.multipliedReportingOverflow(by: perRound)
    guard !overflow, !overflow2 else {
      throw Self.invalid("rounds \(rounds) × \(perRound) trees per round overflows")
    }
    let kept = rounds == 0 ? model.trees.count : wanted
    guard kept <= model.trees.count else {
      throw Self.invalid(
        "\(rounds) rounds need \(kept) trees (\(perRound) per round), learner.gradient_booster.model.trees has \(model.trees.count)"
      )
    }
    guard kept > 0 else { throw Self.invalid("learner.gradient_booster.model.trees is empty") }
    var trees: [Tree] = []
    trees.reserveCapacity(kept)
    for index in 0 ..< kept {
      trees.append(
        try Self.tree(
          model.trees[index],
          group: model.treeInfo[index],
          featureCount: featureCount,
          path: "learner.gradient_booster.model.trees[\(index)]"
        )
      )
    }
    return TreeEnsemble(
      format: .xgboost,
      objective: objective,
      objectiveName: objective.rawValue,
      groups: groups,
      baseMargins: baseMargins.map(Double.init),
      trees: trees,
      totalTrees: model.trees.count,
      featureCount: featureCount
    )
  }

  /// base_score (a number as a string, or "[v, …]" as later versions write it) as margins.
  static func baseMargins(_ text: String, objective: Objective, groups: Int) throws -> [Float] {
    let path = "learner.learner_model_param.base_score"
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    let parts =
      trimmed.hasPrefix("[") && trimmed.hasSuffix("]")
      ? trimmed.dropFirst().dropLast().split(separator: ",").map {
        $0.trimmingCharacters(in: .whitespaces)
      } : [trimmed]
    var scores: [Float] = []
    for part in parts {
      guard let value = Float(part), value.isFinite else {
        throw Self.invalid("\(path) '\(text)' is not a finite number")
      }
      scores.append(value)
    }
    guard scores.count == 1 || scores.count == groups else {
      throw Self.invalid("\(path) has \(scores.count) values for \(groups) output groups")
    }
    if scores.count == 1 { scores = [Float](repeating: scores[0], count: groups) }
    switch objective {
    case .binaryLogistic:
      // XGBoost's LogisticRegression::ProbToMargin, in float: −log(1 / p − 1).
      return try scores.map { p in
        guard p > 0, p < 1 else {
          throw Self.invalid("\(path) \(p) is not a probability in (0, 1) as binary:logistic needs")
        }
        return -Foundation.log(1 / p - 1)
      }
    default:
      return scores
    }
  }

  /// Checks one tree and renumbers its reachable nodes in pre-order.
  static func tree(_ json: TreeJSON, group: Int, featureCount: Int, path: String) throws -> Tree {
    let n = json.leftChildren.count
    guard n > 0 else { throw Self.invalid("\(path).left_children is empty") }
    for (name, count) in [
      ("right_children", json.rightChildren.count), ("split_indices", json.splitIndices.count),
      ("split_conditions", json.splitConditions.count),
      ("default_left", json.defaultLeft.values.count),
    ] where count != n {
      throw Self.invalid("\(path).\(name) has \(count) entries, left_children has \(n)")
    }
    if let types = json.splitType, !types.isEmpty {
      guard types.count == n else {
        throw Self.invalid("\(path).split_type has \(types.count) entries, left_children has \(n)")
      }
      if let bad = types.firstIndex(where: { $0 != 0 }) {
        throw Self.invalid(
          "\(path).split_type[\(bad)] = \(types[bad]): categorical splits are not supported"
        )
      }
    }
    if let parameters = json.treeParam {
      if let text = parameters.numNodes {
        let nodes = try Self.integer(text, "\(path).tree_param.num_nodes")
        guard nodes == n else {
          throw Self.invalid("\(path).tree_param.num_nodes is \(nodes), left_children has \(n)")
        }
      }
      if let text = parameters.sizeLeafVector {
        let size = try Self.integer(text, "\(path).tree_param.size_leaf_vector")
        guard size <= 1 else {
          throw Self.invalid(
            "\(path).tree_param.size_leaf_vector \(size): vector leaves are not supported"
          )
        }
      }
    }
    // Pre-order walk from the root with an explicit stack (hostile depth cannot overflow the
    // call stack); a node reached twice means the children arrays do not form a tree.
    var newIndex = [Int](repeating: -1, count: n)
    var order: [Int] = []
    var stack = [0]
    while let node = stack.popLast() {
      guard newIndex[node] < 0 else {
        throw Self.invalid(
          "\(path): node \(node) is reached twice (the children do not form a tree)"
        )
      }
      newIndex[node] = order.count
      order.append(node)
      let left = json.leftChildren[node], right = json.rightChildren[node]
      guard json.splitConditions[node].isFinite else {
        throw Self.invalid("\(path).split_conditions[\(node)] is not a finite float")
      }
      if left == -1 {
        guard right == -1 else {
          throw Self.invalid(
            "\(path).right_children[\(node)] = \(right) but the node is a leaf (left child -1)"
          )
        }
        continue
      }
      guard (1 ..< n).contains(left) else {
        throw Self.invalid(
          "\(path).left_children[\(node)] = \(left) is not a node in 1..<\(n) or -1"
        )
      }
      guard (1 ..< n).contains(right) else {
        throw Self.invalid("\(path).right_children[\(node)] = \(right) is not a node in 1..<\(n)")
      }
      let feature = json.splitIndices[node]
      guard (0 ..< featureCount).contains(feature) else {
        throw Self.invalid(
          "\(path).split_indices[\(node)] = \(feature) is not a feature in 0..<\(featureCount)"
        )
      }
      stack.append(right)
      stack.append(left)
    }
    var tree = Tree(
      group: group,
      left: [],
      right: [],
      feature: [],
      value: [],
      defaultLeft: [],
      split: []
    )
    for node in order {
      let isLeaf = json.leftChildren[node] == -1
      tree.left.append(isLeaf ? -1 : newIndex[json.leftChildren[node]])
      tree.right.append(isLeaf ? -1 : newIndex[json.rightChildren[node]])
      tree.feature.append(isLeaf ? 0 : json.splitIndices[node])
      tree.value.append(Double(json.splitConditions[node]))
      tree.defaultLeft.append(isLeaf ? false : json.defaultLeft.values[node])
      tree.split.append(.lessThan)
    }
    return tree
  }

  // MARK: Errors

  static func invalid(_ reason: String, cause: (any Error)? = nil) -> VaneError {
    VaneError(.invalidArgument, "xgboost.json: \(reason)", cause: cause)
  }

  /// An integer written as a JSON string (XGBoost writes its parameters so).
  static func integer(_ text: String, _ path: String) throws -> Int {
    guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
      throw Self.invalid("\(path) '\(text)' is not an integer")
    }
    return value
  }

  /// A decoding error as "path: what".
  static func describe(_ error: DecodingError) -> String {
    func path(_ keys: [any CodingKey]) -> String {
      var text = ""
      for key in keys {
        if let index = key.intValue {
          text += "[\(index)]"
        } else {
          text += (text.isEmpty ? "" : ".") + key.stringValue
        }
      }
      return text.isEmpty ? "the document" : text
    }
    switch error {
    case .keyNotFound(let key, let context):
      let parent = path(context.codingPath)
      return
        "\(parent == "the document" ? key.stringValue : parent + "." + key.stringValue) is missing"
    case .typeMismatch(let type, let context):
      return
        "\(path(context.codingPath)) is not \(Self.typeName(type)) (\(context.debugDescription))"
    case .valueNotFound(let type, let context):
      return "\(path(context.codingPath)) is null, expected \(Self.typeName(type))"
    case .dataCorrupted(let context):
      return context.codingPath.isEmpty
        ? "not valid JSON (\(context.debugDescription))"
        : "\(path(context.codingPath)): \(context.debugDescription)"
    @unknown default:
      return "\(error)"
    }
  }

  static func typeName(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Int.Type: "an integer"
    case is Float.Type, is Double.Type: "a number"
    case is Bool.Type: "a boolean"
    default: "\(type)"
    }
  }

  // MARK: The JSON's shape (the parts read)

  struct File: Decodable {
    var learner: Learner
  }

  struct Learner: Decodable {
    var learnerModelParam: ModelParameters
    var gradientBooster: Booster
    var objective: ObjectiveJSON

    enum CodingKeys: String, CodingKey {
      case learnerModelParam = "learner_model_param"
      case gradientBooster = "gradient_booster"
      case objective
    }
  }

  struct ModelParameters: Decodable {
    var baseScore: String
    var numClass: String
    var numFeature: String
    var numTarget: String?

    enum CodingKeys: String, CodingKey {
      case baseScore = "base_score"
      case numClass = "num_class"
      case numFeature = "num_feature"
      case numTarget = "num_target"
    }
  }

  struct ObjectiveJSON: Decodable {
    var name: String
  }

  struct Booster: Decodable {
    var name: String
    var model: GBTree?
  }

  struct GBTree: Decodable {
    var gbtreeModelParam: GBTreeParameters
    var treeInfo: [Int]
    var trees: [TreeJSON]

    enum CodingKeys: String, CodingKey {
      case gbtreeModelParam = "gbtree_model_param"
      case treeInfo = "tree_info"
      case trees
    }
  }

  struct GBTreeParameters: Decodable {
    var numTrees: String
    var numParallelTree: String?

    enum CodingKeys: String, CodingKey {
      case numTrees = "num_trees"
      case numParallelTree = "num_parallel_tree"
    }
  }

  struct TreeJSON: Decodable {
    var leftChildren: [Int]
    var rightChildren: [Int]
    var splitIndices: [Int]
    var splitConditions: [Float]
    var defaultLeft: Flags
    var splitType: [Int]?
    var treeParam: TreeParameters?

    enum CodingKeys: String, CodingKey {
      case leftChildren = "left_children"
      case rightChildren = "right_children"
      case splitIndices = "split_indices"
      case splitConditions = "split_conditions"
      case defaultLeft = "default_left"
      case splitType = "split_type"
      case treeParam = "tree_param"
    }
  }

  struct TreeParameters: Decodable {
    var numNodes: String?
    var sizeLeafVector: String?

    enum CodingKeys: String, CodingKey {
      case numNodes = "num_nodes"
      case sizeLeafVector = "size_leaf_vector"
    }
  }

  /// default_left: 0/1 integers (XGBoost 1.6+) or booleans (earlier).
  struct Flags: Decodable {
    var values: [Bool]

    init(from decoder: any Decoder) throws {
      let container = try decoder.singleValueContainer()
      if let integers = try? container.decode([Int].self) {
        self.values = integers.map { $0 != 0 }
      } else {
        self.values = try container.decode([Bool].self)
      }
    }
  }
}
