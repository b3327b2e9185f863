internal import Foundation
internal import VaneCore
internal import VaneMath

/// A gradient-boosted tree ensemble, evaluated natively: the model layer's one tree evaluator,
/// for the XGBoost JSON and LightGBM text formats alike.
///
/// The readers (`TreeEnsemble+XGBoost.swift`, `TreeEnsemble+LightGBM.swift`) are defensive:
/// every shape, index and value the evaluator and the ONNX export rely on is checked, and a file
/// that is malformed or uses what is not supported is refused with INVALID_ARGUMENT naming the
/// JSON path or the line, never a crash.
///
/// Evaluation follows each library's CPU predictor exactly:
/// - XGBoost: the feature value is taken as a float; NaN goes the node's default direction,
///   otherwise `value < threshold` goes left; margins add up in float from the base margin.
/// - LightGBM: the value stays a double. A numerical split first applies its missing type
///   (None: NaN counts as 0; Zero: 0 and NaN go the default direction; NaN: NaN does), then
///   `value <= threshold` goes left. A categorical split sends the value left when its integer
///   part is a category in the node's bitset (NaN and negative values go right). Margins add up
///   in double, from 0; a random forest (`average_output`) divides them by the iteration count
///   before the logistic or softmax.
public struct TreeEnsemble: Sendable, Equatable {
  /// The file format the ensemble was read from, which fixes its split and sum semantics.
  public enum Format: String, Sendable {
    case xgboost = "XGBoost JSON"
    case lightgbm = "LightGBM text"
  }

  /// How margins become the model's output.
  public enum Objective: String, Sendable {
    /// One margin; the positive class's probability is the logistic of `sigmoidScale × margin`.
    case binaryLogistic = "binary:logistic"
    /// One margin per class; probabilities are their softmax.
    case multiSoftprob = "multi:softprob"
    /// One margin per class, each class's probability the logistic of its own margin (LightGBM's
    /// multiclassova: they need not add up to 1).
    case multiOneVsRest = "multiclassova"
    /// Margins only (a regression or ranking objective): no probabilities.
    case margin = "margin"
  }

  /// What a LightGBM numerical split does with a missing value.
  public enum Missing: UInt8, Sendable {
    /// NaN is taken as 0.
    case none = 0
    /// 0 (and NaN, taken as 0) goes the default direction.
    case zero = 1
    /// NaN goes the default direction.
    case nan = 2
  }

  /// A node's test.
  public enum Split: Sendable, Equatable {
    /// XGBoost: `Float(x) < Float(threshold)` goes left; NaN goes the default direction.
    case lessThan
    /// LightGBM numerical: `x <= threshold` goes left, after the missing type is applied.
    case lessOrEqual(Missing)
    /// LightGBM categorical: left when the integer part of `x` is set in this bitset (32
    /// categories a word, category c at bit c % 32 of word c / 32).
    case categories([UInt32])
  }

  /// One tree, nodes renumbered in pre-order from the root (0); unreachable (deleted) nodes are
  /// dropped.
  public struct Tree: Sendable, Equatable {
    /// The output group (class) the tree adds to.
    public var group: Int
    /// Per node: children (-1 for a leaf), split feature, split threshold or leaf value,
    /// whether a missing value goes left, and the split's kind (`.lessThan` for a leaf).
    public var left: [Int]
    public var right: [Int]
    public var feature: [Int]
    public var value: [Double]
    public var defaultLeft: [Bool]
    public var split: [Split]

    public func isLeaf(_ node: Int) -> Bool { self.left[node] < 0 }
  }

  public var format: Format
  public var objective: Objective
  /// The objective as the file names it (`binary:logistic`, `binary sigmoid:1`, …).
  public var objectiveName: String
  /// The factor applied to a margin before the logistic (LightGBM's `sigmoid`; 1 for XGBoost).
  public var sigmoidScale: Double
  /// Output groups: 1 for a binary model, the class count for a multiclass one.
  public var groups: Int
  /// The starting margin per group: logit(base_score) for binary:logistic, base_score for
  /// multi:softprob (XGBoost 1.7's ProbToMargin), as floats; 0 for LightGBM (its first tree
  /// holds the average).
  public var baseMargins: [Double]
  /// The trees of the kept rounds, in the file's order.
  public var trees: [Tree]
  /// Trees in the file (kept or not).
  public var totalTrees: Int
  /// Features a row has.
  public var featureCount: Int
  /// Feature names the file gives, if any (`featureCount` of them).
  public var featureNames: [String]
  /// Margins are divided by the iteration count before they become probabilities (a LightGBM
  /// random forest; its raw score stays the sum, as LightGBM's `raw_score=True` gives).
  public var averageOutput: Bool

  /// The nodes of every tree in one array, for evaluation: children as absolute indices.
  private var nodes: [Node]
  /// Each tree's root in `nodes`, and its group.
  private var roots: [(root: Int32, group: Int32)]
  /// The categorical splits' bitsets, end to end.
  private var bitsets: [UInt32]
  /// XGBoost's float splits laid out for walks without branches (nil for LightGBM).
  private var floatSplits: SplitForest<Float>?
  /// LightGBM's numerical splits (x ≤ t on doubles) laid out the same way; nil with a
  /// categorical split or a zero-as-missing one (a band around 0 is not one comparison).
  private var doubleSplits: SplitForest<Double>?

  private struct Node: Sendable, Equatable {
    /// Absolute index of the left child; -1 for a leaf.
    var left: Int32
    var right: Int32
    var feature: Int32
    /// 0 XGBoost `<` on floats, 1 LightGBM `<=` on doubles, 2 LightGBM categories.
    var kind: UInt8
    var missing: UInt8
    var defaultLeft: Bool
    /// Threshold, or the leaf value.
    var value: Double
    /// A categorical split's words in `bitsets`.
    var bitsetStart: Int32
    var bitsetCount: Int32
  }

  init(
    format: Format,
    objective: Objective,
    objectiveName: String,
    sigmoidScale: Double = 1,
    groups: Int,
    baseMargins: [Double],
    trees: [Tree],
    totalTrees: Int,
    featureCount: Int,
    featureNames: [String] = [],
    averageOutput: Bool = false
  ) {
    self.format = format
    self.objective = objective
    self.objectiveName = objectiveName
    self.sigmoidScale = sigmoidScale
    self.groups = groups
    self.baseMargins = baseMargins
    self.trees = trees
    self.totalTrees = totalTrees
    self.featureCount = featureCount
    self.featureNames = featureNames
    self.averageOutput = averageOutput
    var nodes: [Node] = []
    var roots: [(Int32, Int32)] = []
    var bitsets: [UInt32] = []
    for tree in trees {
      let offset = nodes.count
      roots.append((Int32(offset), Int32(tree.group)))
      for node in tree.left.indices {
        let leaf = tree.isLeaf(node)
        var entry = Node(
          left: leaf ? -1 : Int32(offset + tree.left[node]),
          right: leaf ? -1 : Int32(offset + tree.right[node]),
          feature: Int32(tree.feature[node]),
          kind: 0,
          missing: 0,
          defaultLeft: tree.defaultLeft[node],
          value: tree.value[node],
          bitsetStart: 0,
          bitsetCount: 0
        )
        switch tree.split[node] {
        case .lessThan:
          break
        case .lessOrEqual(let missing):
          entry.kind = 1
          entry.missing = missing.rawValue
        case .categories(let words):
          entry.kind = 2
          entry.bitsetStart = Int32(bitsets.count)
          entry.bitsetCount = Int32(words.count)
          bitsets.append(contentsOf: words)
        }
        nodes.append(entry)
      }
    }
    self.nodes = nodes
    self.roots = roots
    self.bitsets = bitsets
    // The readers check every feature index; the walks read rows unchecked, so once more here.
    self.floatSplits =
      format == .xgboost && nodes.allSatisfy { $0.kind == 0 }
      ? Self.floatSplits(nodes: nodes, roots: roots.map(\.0)).flatMap {
        $0.maximumFeature < featureCount ? $0 : nil
      } : nil
    self.doubleSplits =
      format == .lightgbm
      ? Self.doubleSplits(nodes: nodes, roots: roots.map(\.0)).flatMap {
        $0.maximumFeature < featureCount ? $0 : nil
      } : nil
  }

  /// LightGBM's numerical splits as a ``SplitForest``: left when x ≤ t. A missing value goes
  /// the default way for a NaN-as-missing split, and as 0 would (0 ≤ t) for one without.
  private static func doubleSplits(nodes: [Node], roots: [Int32]) -> SplitForest<Double>? {
    var compact: [SplitForest<Double>.Node] = []
    compact.reserveCapacity(nodes.count)
    for (i, node) in nodes.enumerated() {
      if node.left < 0 {
        compact.append(.leaf(at: Int32(i)))
        continue
      }
      guard node.kind == 1, node.missing != Missing.zero.rawValue else { return nil }
      compact.append(
        .split(
          feature: node.feature,
          threshold: node.value,
          strict: false,
          missingGoesYes: node.missing == Missing.nan.rawValue ? node.defaultLeft : 0 <= node.value,
          yes: node.left,
          no: node.right
        )
      )
    }
    return SplitForest(nodes: compact, roots: roots)
  }

  /// XGBoost's splits as a ``SplitForest``: left when the float value is below the float
  /// threshold, or missing and the default is left.
  private static func floatSplits(nodes: [Node], roots: [Int32]) -> SplitForest<Float>? {
    SplitForest(
      nodes: nodes.indices.map { i in
        let node = nodes[i]
        return node.left < 0
          ? .leaf(at: Int32(i))
          : .split(
            feature: node.feature,
            threshold: Float(node.value),
            strict: true,
            missingGoesYes: node.defaultLeft,
            yes: node.left,
            no: node.right
          )
      },
      roots: roots
    )
  }

  public static func == (a: TreeEnsemble, b: TreeEnsemble) -> Bool {
    a.format == b.format && a.objective == b.objective && a.objectiveName == b.objectiveName
      && a.sigmoidScale == b.sigmoidScale
      && a.groups == b.groups && a.baseMargins == b.baseMargins && a.trees == b.trees
      && a.totalTrees == b.totalTrees
      && a.featureCount == b.featureCount && a.featureNames == b.featureNames
      && a.averageOutput == b.averageOutput
  }

  /// Classes the probabilities cover: 2 for a binary model, the group count for a multiclass
  /// one, 0 for a margin-only objective.
  public var classCount: Int {
    switch self.objective {
    case .binaryLogistic: 2
    case .multiSoftprob, .multiOneVsRest: self.groups
    case .margin: 0
    }
  }

  // MARK: Evaluation

  /// LightGBM's kZeroThreshold (a float): |x| at or below it counts as zero.
  private static let zeroThreshold = Double(Float(1e-35))

  /// The margins of one row (`featureCount` values; NaN is missing), one per output group.
  public func margins(_ row: UnsafeBufferPointer<Double>) -> [Double] {
    precondition(
      row.count == self.featureCount,
      "a row of \(row.count) values for \(self.featureCount) features"
    )
    var out = self.baseMargins
    if let floatSplits = self.floatSplits, self.featureCount > 0 {
      // XGBoost compares the value as a float: converted once, not at every node.
      withUnsafeTemporaryAllocation(of: Float.self, capacity: self.featureCount) { floats in
        for c in 0 ..< self.featureCount { floats[c] = Float(row[c]) }
        self.forestMargins(floatSplits, row: floats.baseAddress!, into: &out)
      }
      return out
    }
    if let doubleSplits = self.doubleSplits, self.featureCount > 0 {
      self.forestMargins(doubleSplits, row: row.baseAddress!, into: &out)
      return out
    }
    self.nodes.withUnsafeBufferPointer { nodes in
      self.bitsets.withUnsafeBufferPointer { bitsets in
        out.withUnsafeMutableBufferPointer { out in
          for (root, group) in self.roots {
            self.add(
              Self.leaf(root: root, row: row.baseAddress!, nodes: nodes, bitsets: bitsets),
              to: &out[Int(group)]
            )
          }
        }
      }
    }
    return out
  }

  /// The margins of `rows` rows laid out row-major (`rows × featureCount`), `rows × groups`
  /// row-major.
  ///
  /// Rows go through the trees a block at a time, tree by tree: one tree's nodes stay in the
  /// first-level cache while a block of rows walks it, where a row walking every tree in turn
  /// would take the whole ensemble through the cache for each row. Each row's margins still add
  /// up tree by tree in the model's order, so they equal ``margins(_:)``'s bit for bit.
  public func margins(batch: [Double], rows: Int) -> [Double] {
    precondition(
      batch.count == rows * self.featureCount,
      "\(batch.count) values are not \(rows) rows of \(self.featureCount)"
    )
    let groups = self.groups, width = self.featureCount
    var out = [Double](repeating: 0, count: rows * groups)
    for r in 0 ..< rows {
      for g in 0 ..< groups { out[r * groups + g] = self.baseMargins[g] }
    }
    guard rows > 0 else { return out }
    if let floatSplits = self.floatSplits {
      // XGBoost compares the value as a float: converted once, not at every node.
      batch.map(Float.init).withUnsafeBufferPointer {
        self.forestMargins(floatSplits, batch: $0, rows: rows, into: &out)
      }
      return out
    }
    if let doubleSplits = self.doubleSplits {
      batch.withUnsafeBufferPointer {
        self.forestMargins(doubleSplits, batch: $0, rows: rows, into: &out)
      }
      return out
    }
    let block = 64
    batch.withUnsafeBufferPointer { all in
      self.nodes.withUnsafeBufferPointer { nodes in
        self.bitsets.withUnsafeBufferPointer { bitsets in
          out.withUnsafeMutableBufferPointer { out in
            for first in stride(from: 0, to: rows, by: block) {
              let end = min(rows, first + block)
              for (root, group) in self.roots {
                for r in first ..< end {
                  let value = Self.leaf(
                    root: root,
                    row: all.baseAddress! + r * width,
                    nodes: nodes,
                    bitsets: bitsets
                  )
                  self.add(value, to: &out[r * groups + Int(group)])
                }
              }
            }
          }
        }
      }
    }
    return out
  }

  /// ``margins(batch:rows:)`` through a ``SplitForest``: a block of rows at a time through
  /// every tree, eight rows in step, each row's margins adding up in the trees' order.
  private func forestMargins<Value>(
    _ splits: SplitForest<Value>,
    batch all: UnsafeBufferPointer<Value>,
    rows: Int,
    into out: inout [Double]
  ) {
    let groups = self.groups, width = self.featureCount
    let block = 64
    var rowStarts = [UnsafePointer<Value>](repeating: all.baseAddress!, count: block)
    var leaves = [Int32](repeating: 0, count: block)
    self.nodes.withUnsafeBufferPointer { values in
      out.withUnsafeMutableBufferPointer { out in
        for first in stride(from: 0, to: rows, by: block) {
          let count = min(rows, first + block) - first
          for i in 0 ..< count { rowStarts[i] = all.baseAddress! + (first + i) * width }
          for (t, (_, group)) in self.roots.enumerated() {
            rowStarts.withUnsafeBufferPointer { row in
              leaves.withUnsafeMutableBufferPointer { leaves in
                splits.leaves(
                  tree: t,
                  rows: row.baseAddress!,
                  count: count,
                  into: leaves.baseAddress!
                )
              }
            }
            for i in 0 ..< count {
              self.add(
                values[Int(leaves[i])].value,
                to: &out[(first + i) * groups + Int(group)]
              )
            }
          }
        }
      }
    }
  }

  /// ``margins(_:)`` through a ``SplitForest``: the row goes through eight trees in step, and
  /// their leaves are added in the trees' order.
  private func forestMargins<Value>(
    _ splits: SplitForest<Value>,
    row: UnsafePointer<Value>,
    into out: inout [Double]
  ) {
    let trees = self.roots.count
    guard trees > 0 else { return }
    withUnsafeTemporaryAllocation(of: Int32.self, capacity: trees) { leaves in
      splits.leaves(row: row, into: leaves.baseAddress!)
      self.nodes.withUnsafeBufferPointer { values in
        for t in 0 ..< trees {
          self.add(values[Int(leaves[t])].value, to: &out[Int(self.roots[t].group)])
        }
      }
    }
  }

  /// Adds a leaf's value to a margin: in float for XGBoost (as its predictor sums), in double
  /// for LightGBM.
  @inline(__always)
  private func add(_ value: Double, to margin: inout Double) {
    if self.format == .xgboost {
      margin = Double(Float(margin) + Float(value))
    } else {
      margin += value
    }
  }

  /// The value of the leaf a row reaches in the tree rooted at `root`.
  @inline(__always)
  private static func leaf(
    root: Int32,
    row: UnsafePointer<Double>,
    nodes: UnsafeBufferPointer<Node>,
    bitsets: UnsafeBufferPointer<UInt32>
  ) -> Double {
    var index = Int(root)
    while true {
      let node = nodes[index]
      if node.left < 0 { return node.value }
      let goLeft: Bool
      switch node.kind {
      case 0:
        let x = Float(row[Int(node.feature)])
        // The threshold is a float held exactly in a double.
        goLeft = x.isNaN ? node.defaultLeft : Double(x) < node.value
      case 1:
        var x = row[Int(node.feature)]
        if x.isNaN && node.missing != Missing.nan.rawValue { x = 0 }
        if (node.missing == Missing.zero.rawValue && x >= -Self.zeroThreshold
          && x <= Self.zeroThreshold)
          || (node.missing == Missing.nan.rawValue && x.isNaN)
        {
          goLeft = node.defaultLeft
        } else {
          goLeft = x <= node.value
        }
      default:
        let x = row[Int(node.feature)]
        // C++'s int conversion: NaN and values beyond Int32 become INT_MIN (right),
        // a fraction truncates toward zero (-0.5 is category 0).
        if x.isNaN || x <= -2_147_483_649 || x >= 2_147_483_648 {
          goLeft = false
        } else {
          let category = Int(x.rounded(.towardZero))
          let word = category >> 5
          goLeft =
            category >= 0 && word < Int(node.bitsetCount)
            && (bitsets[Int(node.bitsetStart) + word] >> UInt32(category & 31)) & 1 == 1
        }
      }
      index = Int(goLeft ? node.left : node.right)
    }
  }

  /// Class probabilities of one row from its margins: `[1 − p, p]` with p the logistic of the
  /// scaled margin for a binary model, the softmax of the margins for multi:softprob, each
  /// class's logistic for one-vs-rest; empty for a margin-only objective.
  public func probabilities(_ row: UnsafeBufferPointer<Double>) -> [Double] {
    self.probabilities(margins: self.margins(row))
  }

  /// Class probabilities of `rows` rows (`rows × featureCount`, row-major), `rows ×
  /// classCount` row-major: ``probabilities(_:)`` of each row, through the blocked
  /// ``margins(batch:rows:)``.
  public func probabilities(batch: [Double], rows: Int) -> [Double] {
    self.probabilities(margins: self.margins(batch: batch, rows: rows), rows: rows)
  }

  /// Class probabilities from ``margins(batch:rows:)``'s `rows × groups` margins.
  public func probabilities(margins: [Double], rows: Int) -> [Double] {
    precondition(margins.count == rows * self.groups, "\(margins.count) margins for \(rows) rows")
    var out: [Double] = []
    out.reserveCapacity(rows * self.classCount)
    for r in 0 ..< rows {
      out += self.probabilities(
        margins: Array(margins[(r * self.groups) ..< ((r + 1) * self.groups)])
      )
    }
    return out
  }

  /// Probabilities from one row's margins (see ``probabilities(_:)``).
  private func probabilities(margins: [Double]) -> [Double] {
    var margins = margins
    if self.averageOutput {
      // A random forest's raw score is the sum (LightGBM's PredictRaw); its prediction averages.
      let iterations = Double(max(1, self.trees.count / self.groups))
      for g in margins.indices { margins[g] /= iterations }
    }
    switch self.objective {
    case .binaryLogistic:
      let p = 1 / (1 + Foundation.exp(-self.sigmoidScale * margins[0]))
      return [1 - p, p]
    case .multiSoftprob:
      let top = margins.max() ?? 0
      let e = margins.map { Foundation.exp($0 - top) }
      let total = e.reduce(0, +)
      return e.map { $0 / total }
    case .multiOneVsRest:
      return margins.map { 1 / (1 + Foundation.exp(-self.sigmoidScale * $0)) }
    case .margin:
      return []
    }
  }
}
