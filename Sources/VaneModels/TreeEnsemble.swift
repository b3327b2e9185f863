internal import Foundation
internal import VaneCore

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
  /// XGBoost's float splits in a compact form for batches (nil for LightGBM): see
  /// ``FloatSplits``.
  private var floatSplits: FloatSplits?

  /// An XGBoost ensemble laid out for walking several rows through a tree in step: each tree
  /// runs exactly its depth in levels, a leaf's children being the leaf itself, so no row leaves
  /// the loop early and the only branches are the loop's own; the direction is a select, not a
  /// branch a random feature value would mispredict half the time.
  private struct FloatSplits: Sendable {
    struct Node: Sendable {
      var feature: Int32
      /// The float threshold; NaN for a leaf (no comparison holds, and both children are it).
      var threshold: Float
      var left: Int32
      var right: Int32
      var defaultLeft: Bool
    }
    var nodes: [Node]
    /// Each tree's depth (edges on its longest root-to-leaf path).
    var depths: [Int32]

    /// Eight walks in step, `depth` levels down, walk k from `roots[k]` for the row at
    /// `rows[k]`: the leaves they reach (a walk at its leaf early stays there). Eight rows of
    /// a batch through one tree, or one row through eight trees: the walks are independent,
    /// so they overlap in the core (indices in registers, not in a vector spilled lane by lane).
    @inline(__always)
    static func walk(
      _ nodes: UnsafeBufferPointer<Node>,
      roots: UnsafePointer<Int32>,
      rows: UnsafePointer<UnsafePointer<Float>>,
      depth: Int
    ) -> SIMD8<Int32> {
      var i0 = roots[0], i1 = roots[1], i2 = roots[2], i3 = roots[3]
      var i4 = roots[4], i5 = roots[5], i6 = roots[6], i7 = roots[7]
      let r0 = rows[0], r1 = rows[1], r2 = rows[2], r3 = rows[3]
      let r4 = rows[4], r5 = rows[5], r6 = rows[6], r7 = rows[7]
      for _ in 0 ..< depth {
        i0 = step(nodes, i0, r0)
        i1 = step(nodes, i1, r1)
        i2 = step(nodes, i2, r2)
        i3 = step(nodes, i3, r3)
        i4 = step(nodes, i4, r4)
        i5 = step(nodes, i5, r5)
        i6 = step(nodes, i6, r6)
        i7 = step(nodes, i7, r7)
      }
      return SIMD8<Int32>(i0, i1, i2, i3, i4, i5, i6, i7)
    }

    /// One level down from node `index` for a row: left when `Float(x) < threshold` or x is
    /// missing and the default is left; a leaf stays where it is.
    @inline(__always)
    static func step(
      _ nodes: UnsafeBufferPointer<Node>,
      _ index: Int32,
      _ row: UnsafePointer<Float>
    ) -> Int32 {
      let node = nodes[Int(index)]
      let x = row[Int(node.feature)]
      // Without branches: which way a row goes is a coin toss to the branch predictor, and
      // eight walks in step lost their overlap at each misprediction. `!(x >= t)` is `x < t`
      // or x missing; the node's default picks which comparison holds.
      let below = unsafeBitCast(x < node.threshold, to: UInt8.self)
      let belowOrMissing = unsafeBitCast(!(x >= node.threshold), to: UInt8.self)
      let missingLeft = unsafeBitCast(node.defaultLeft, to: UInt8.self)
      let left = (missingLeft & belowOrMissing) | (~missingLeft & below)
      // All ones when left, then the child picked by masking: right ^ ((left ^ right) & mask).
      let mask = 0 &- Int32(truncatingIfNeeded: left & 1)
      return node.right ^ ((node.left ^ node.right) & mask)
    }
  }

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
    self.floatSplits =
      format == .xgboost && nodes.allSatisfy { $0.kind == 0 }
      ? Self.floatSplits(nodes: nodes, roots: roots.map(\.0)) : nil
  }

  private static func floatSplits(nodes: [Node], roots: [Int32]) -> FloatSplits {
    let compact = nodes.indices.map { i in
      let node = nodes[i]
      return node.left < 0
        ? FloatSplits.Node(
          feature: 0,
          threshold: .nan,
          left: Int32(i),
          right: Int32(i),
          defaultLeft: false
        )
        : FloatSplits.Node(
          feature: node.feature,
          threshold: Float(node.value),
          left: node.left,
          right: node.right,
          defaultLeft: node.defaultLeft
        )
    }
    let depths = roots.map { root -> Int32 in
      var deepest: Int32 = 0
      var stack: [(Int32, Int32)] = [(root, 0)]
      while let (index, depth) = stack.popLast() {
        let node = nodes[Int(index)]
        if node.left < 0 {
          deepest = max(deepest, depth)
        } else {
          stack.append((node.left, depth + 1))
          stack.append((node.right, depth + 1))
        }
      }
      return deepest
    }
    return FloatSplits(nodes: compact, depths: depths)
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
      self.floatMargins(floatSplits, row: row.baseAddress!, into: &out)
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
    if let floatSplits = self.floatSplits {
      self.floatMargins(floatSplits, batch: batch, rows: rows, into: &out)
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

  /// ``margins(batch:rows:)`` for an XGBoost ensemble: eight rows walk each tree in step, a
  /// block of rows at a time through every tree.
  private func floatMargins(
    _ splits: FloatSplits,
    batch: [Double],
    rows: Int,
    into out: inout [Double]
  ) {
    let groups = self.groups, width = self.featureCount
    let lanes = 8, block = 64
    // XGBoost compares the value as a float: converted once, not at every node.
    let floats = batch.map(Float.init)
    floats.withUnsafeBufferPointer { all in
      // The block's rows; past the last row, copies of it (their results are dropped).
      var rowStarts = [UnsafePointer<Float>](repeating: all.baseAddress!, count: block)
      splits.nodes.withUnsafeBufferPointer { nodes in
        self.nodes.withUnsafeBufferPointer { values in
          out.withUnsafeMutableBufferPointer { out in
            for first in stride(from: 0, to: rows, by: block) {
              let count = min(rows, first + block) - first
              for i in 0 ..< block {
                rowStarts[i] = all.baseAddress! + (first + min(i, count - 1)) * width
              }
              rowStarts.withUnsafeBufferPointer { row in
                for (t, (root, group)) in self.roots.enumerated() {
                  let depth = Int(splits.depths[t])
                  var roots = SIMD8<Int32>(repeating: root)
                  for start in stride(from: 0, to: count, by: lanes) {
                    let index = withUnsafePointer(to: &roots) {
                      FloatSplits.walk(
                        nodes,
                        roots: UnsafeRawPointer($0).assumingMemoryBound(to: Int32.self),
                        rows: row.baseAddress! + start,
                        depth: depth
                      )
                    }
                    for lane in 0 ..< min(lanes, count - start) {
                      self.add(
                        values[Int(index[lane])].value,
                        to: &out[(first + start + lane) * groups + Int(group)]
                      )
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }

  /// ``margins(_:)`` for an XGBoost ensemble: the row goes through eight trees in step, and
  /// their leaves are added in the trees' order.
  private func floatMargins(
    _ splits: FloatSplits,
    row: UnsafePointer<Double>,
    into out: inout [Double]
  ) {
    let width = self.featureCount, trees = self.roots.count
    withUnsafeTemporaryAllocation(of: Float.self, capacity: width) { floats in
      // XGBoost compares the value as a float: converted once, not at every node.
      for c in 0 ..< width { floats[c] = Float(row[c]) }
      let x = UnsafePointer(floats.baseAddress!)
      var rows = (x, x, x, x, x, x, x, x)
      // The next eight trees' roots; past the last tree, copies of its root.
      var roots = SIMD8<Int32>()
      splits.nodes.withUnsafeBufferPointer { nodes in
        self.nodes.withUnsafeBufferPointer { values in
          withUnsafePointer(to: &rows) { rowsTuple in
            let rows = UnsafeRawPointer(rowsTuple).assumingMemoryBound(
              to: UnsafePointer<Float>.self
            )
            for first in stride(from: 0, to: trees, by: 8) {
              let count = min(8, trees - first)
              var depth: Int32 = 0
              for lane in 0 ..< 8 {
                let t = first + min(lane, count - 1)
                roots[lane] = self.roots[t].root
                depth = max(depth, splits.depths[t])
              }
              let index = withUnsafePointer(to: &roots) {
                FloatSplits.walk(
                  nodes,
                  roots: UnsafeRawPointer($0).assumingMemoryBound(to: Int32.self),
                  rows: rows,
                  depth: Int(depth)
                )
              }
              for lane in 0 ..< count {
                self.add(
                  values[Int(index[lane])].value,
                  to: &out[Int(self.roots[first + lane].group)]
                )
              }
            }
          }
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
