internal import Foundation
internal import VaneMath

/// The rows of a [N, C] (or [C]) float input as doubles.
private func rows(_ x: ONNXTensor) throws -> (values: [Double], count: Int, width: Int) {
  guard let values = x.doubles, x.elementType != .string else {
    throw ONNXRuntimeError.invalid("X must be numeric, not \(x.elementType)")
  }
  switch x.rank {
  case 1: return (values, 1, x.shape[0])
  case 2: return (values, x.shape[0], x.shape[1])
  default: throw ONNXRuntimeError.invalid("X must be [N, C], not \(x.shape)")
  }
}

/// The classes a classifier labels with: int64 labels or strings.
private struct ClassLabels: Sendable {
  var ints: [Int64]?
  var strings: [String]?
  var count: Int { self.ints?.count ?? self.strings?.count ?? 0 }

  init(_ context: ONNXNodeContext, intsName: String) throws {
    self.ints = context.ints(intsName).map { $0.map(Int64.init) }
    self.strings = context.strings("classlabels_strings")
    guard self.count > 0 else { throw ONNXRuntimeError.invalid("no class labels") }
  }

  func tensor(_ picks: [Int]) -> ONNXTensor {
    if let strings { return ONNXTensor(shape: [picks.count], strings: picks.map { strings[$0] }) }
    return ONNXTensor(shape: [picks.count], integers: picks.map { self.ints![$0] })
  }
}

/// A node's post_transform, read once per run (a string compared per row was most of a
/// linear classifier's batch).
private enum PostTransform: Sendable {
  case none, logistic, softmax, softmaxZero, probit

  init(_ context: ONNXNodeContext) throws {
    switch context.string("post_transform", "NONE") {
    case "NONE": self = .none
    case "LOGISTIC": self = .logistic
    case "SOFTMAX": self = .softmax
    case "SOFTMAX_ZERO": self = .softmaxZero
    case "PROBIT": self = .probit
    case let name: throw ONNXRuntimeError.unsupported("post_transform \(name)")
    }
  }

  /// ai.onnx.ml opset 5's enumeration: NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO, PROBIT.
  init(index: Int) throws {
    let all: [Self] = [.none, .softmax, .logistic, .softmaxZero, .probit]
    guard all.indices.contains(index) else {
      throw ONNXRuntimeError.invalid("post_transform \(index)")
    }
    self = all[index]
  }

  /// Over one row of scores, in place.
  func apply(_ scores: inout [Double]) {
    scores.withUnsafeMutableBufferPointer { self.apply($0) }
  }

  /// Over one row of scores, in place.
  func apply(_ scores: UnsafeMutableBufferPointer<Double>) {
    switch self {
    case .none: break
    case .logistic: for i in scores.indices { scores[i] = 1 / (1 + exp(-scores[i])) }
    case .softmax, .softmaxZero:
      // In place: the largest score (zeros left out for SOFTMAX_ZERO), the exponentials, then
      // their share of the sum.
      let zero = self == .softmaxZero
      var top: Double?
      for value in scores where !zero || value != 0 {
        if let current = top, !(current < value) { continue }
        top = value
      }
      let shift = top ?? 0
      var sum = 0.0
      for i in scores.indices {
        scores[i] = zero && scores[i] == 0 ? 0 : exp(scores[i] - shift)
        sum += scores[i]
      }
      if sum > 0 { for i in scores.indices { scores[i] /= sum } }
    case .probit:
      for i in scores.indices { scores[i] = 2.0.squareRoot() * erfInverse(2 * scores[i] - 1) }
    }
  }

  /// Over rows of `columns` scores each, in place; LOGISTIC takes every score at once, eight
  /// lanes at a time.
  func apply(rows scores: UnsafeMutableBufferPointer<Double>, columns: Int) {
    guard columns > 0, !scores.isEmpty else { return }
    if self == .logistic {
      Logistic.sigmoid(scores.baseAddress!, into: scores.baseAddress!, count: scores.count)
      return
    }
    guard self != .none else { return }
    for start in stride(from: 0, to: scores.count, by: columns) {
      self.apply(UnsafeMutableBufferPointer(rebasing: scores[start ..< (start + columns)]))
    }
  }
}

/// The inverse error function by Newton's method from Giles' approximation.
private func erfInverse(_ y: Double) -> Double {
  guard y > -1, y < 1 else { return y <= -1 ? -.infinity : .infinity }
  var x = y * 0.886226925452758  // √π/2 · y
  for _ in 0 ..< 60 {
    let error = erf(x) - y
    x -= error / (2 / Double.pi.squareRoot() * exp(-x * x))
    if abs(error) < 1e-15 { break }
  }
  return x
}

/// The trees of TreeEnsembleClassifier or TreeEnsembleRegressor, walked per row.
private struct Trees: Sendable {
  enum Mode { case leq, lt, gte, gt, eq, neq, member, leaf }
  struct Node: Sendable {
    var feature: Int
    var value: Double
    var mode: Mode
    var yes: Int
    var no: Int
    var missingGoesYes: Bool
    /// Where this leaf's votes are in ``Trees/votes`` (the nodes stay plain values, so a walk
    /// copies no arrays).
    var firstVote = 0
    var voteCount = 0
    /// A BRANCH_MEMBER node's set in ``Trees/sets``.
    var set = 0
  }

  var nodes: [Node] = []
  var roots: [Int] = []
  /// The BRANCH_MEMBER nodes' sets (opset-5 TreeEnsemble).
  var sets: [Set<Double>] = []
  /// (target or class, weight), grouped by leaf.
  var votes: [(target: Int, weight: Double)] = []

  /// The votes of the leaves at `leaves` (node positions), leaf by leaf in order, to `body`
  /// (target or class, weight); through the arrays' buffers, with no slice (and retain) per
  /// leaf.
  @inline(__always)
  func forEachVote(of leaves: ArraySlice<Int32>, _ body: (Int, Double) -> Void) {
    self.nodes.withUnsafeBufferPointer { nodes in
      self.votes.withUnsafeBufferPointer { votes in
        for leaf in leaves {
          let node = nodes[Int(leaf)]
          for v in node.firstVote ..< (node.firstVote + node.voteCount) {
            body(votes[v].target, votes[v].weight)
          }
        }
      }
    }
  }

  init(_ context: ONNXNodeContext, votePrefix: String) throws {
    guard let treeIDs = context.ints("nodes_treeids"), let nodeIDs = context.ints("nodes_nodeids"),
      let features = context.ints("nodes_featureids"), let modes = context.strings("nodes_modes"),
      let yes = context.ints("nodes_truenodeids"), let no = context.ints("nodes_falsenodeids")
    else { throw ONNXRuntimeError.invalid("the nodes_* attributes are incomplete") }
    let values =
      try context.tensor("nodes_values_as_tensor")?.doubles ?? context.floats("nodes_values") ?? []
    let n = treeIDs.count
    guard
      [nodeIDs.count, features.count, modes.count, yes.count, no.count, values.count].allSatisfy({
        $0 == n
      }), n > 0
    else {
      throw ONNXRuntimeError.invalid("the nodes_* attributes differ in length")
    }
    let missing = context.ints("nodes_missing_value_tracks_true") ?? []
    var index: [Int64: Int] = [:]  // (tree << 32 | node) → position
    func key(_ tree: Int, _ node: Int) -> Int64 { Int64(tree) << 32 | Int64(node & 0xffff_ffff) }
    for i in 0 ..< n {
      guard index.updateValue(i, forKey: key(treeIDs[i], nodeIDs[i])) == nil else {
        throw ONNXRuntimeError.invalid("node \(nodeIDs[i]) of tree \(treeIDs[i]) is listed twice")
      }
    }
    for i in 0 ..< n {
      let mode: Mode
      switch modes[i] {
      case "BRANCH_LEQ": mode = .leq
      case "BRANCH_LT": mode = .lt
      case "BRANCH_GTE": mode = .gte
      case "BRANCH_GT": mode = .gt
      case "BRANCH_EQ": mode = .eq
      case "BRANCH_NEQ": mode = .neq
      case "LEAF": mode = .leaf
      default: throw ONNXRuntimeError.invalid("node mode '\(modes[i])'")
      }
      var node = Node(
        feature: features[i],
        value: values[i],
        mode: mode,
        yes: -1,
        no: -1,
        missingGoesYes: i < missing.count && missing[i] != 0
      )
      if mode != .leaf {
        guard let a = index[key(treeIDs[i], yes[i])], let b = index[key(treeIDs[i], no[i])],
          features[i] >= 0
        else {
          throw ONNXRuntimeError.invalid(
            "node \(nodeIDs[i]) of tree \(treeIDs[i]) branches to a node the tree does not have"
          )
        }
        node.yes = a
        node.no = b
      }
      self.nodes.append(node)
    }
    guard let voteTrees = context.ints("\(votePrefix)_treeids"),
      let voteNodes = context.ints("\(votePrefix)_nodeids"),
      let voteIDs = context.ints("\(votePrefix)_ids")
    else { throw ONNXRuntimeError.invalid("the \(votePrefix)_* attributes are incomplete") }
    let weights =
      try context.tensor("\(votePrefix)_weights_as_tensor")?.doubles ?? context.floats(
        "\(votePrefix)_weights"
      ) ?? []
    guard voteNodes.count == voteTrees.count, voteIDs.count == voteTrees.count,
      weights.count == voteTrees.count
    else {
      throw ONNXRuntimeError.invalid("the \(votePrefix)_* attributes differ in length")
    }
    var byNode = [[(target: Int, weight: Double)]](repeating: [], count: n)
    for v in 0 ..< voteTrees.count {
      guard let position = index[key(voteTrees[v], voteNodes[v])], voteIDs[v] >= 0 else {
        throw ONNXRuntimeError.invalid(
          "a vote names node \(voteNodes[v]) of tree \(voteTrees[v]), which does not exist"
        )
      }
      byNode[position].append((voteIDs[v], weights[v]))
    }
    for position in 0 ..< n {
      self.nodes[position].firstVote = self.votes.count
      self.nodes[position].voteCount = byNode[position].count
      self.votes += byNode[position]
    }
    // A root is node 0 of each tree (or, failing that, its first listed node).
    var seen = Set<Int>()
    for i in 0 ..< n where seen.insert(treeIDs[i]).inserted {
      self.roots.append(index[key(treeIDs[i], 0)] ?? i)
    }
    // Cycles would walk forever: a tree's walk may visit at most its node count.
    self.maximumDepth = n
    self.voted = Set(self.votes.map(\.target))
    self.positiveWeights = self.votes.allSatisfy { $0.weight >= 0 }
    self.forest = Self.forest(self.nodes, roots: self.roots)
  }

  /// The opset-5 TreeEnsemble's layout: interior nodes in `nodes_*`, each branch naming a node or
  /// (with `nodes_trueleafs` / `nodes_falseleafs`) a leaf of `leaf_*`, trees by `tree_roots`.
  /// Leaves become nodes after the interior ones, each with its one vote.
  init(opset5 context: ONNXNodeContext) throws {
    guard let features = context.ints("nodes_featureids"),
      let yes = context.ints("nodes_truenodeids"),
      let yesLeaf = context.ints("nodes_trueleafs"), let no = context.ints("nodes_falsenodeids"),
      let noLeaf = context.ints("nodes_falseleafs"),
      let modes = try context.tensor("nodes_modes"),
      let splits = try context.tensor("nodes_splits")?.doubles,
      let targets = context.ints("leaf_targetids"),
      let weights = try context.tensor("leaf_weights")?.doubles,
      let roots = context.ints("tree_roots")
    else {
      throw ONNXRuntimeError.invalid("the nodes_*, leaf_* and tree_roots attributes are incomplete")
    }
    guard case .integer(let modeValues) = modes.values else {
      throw ONNXRuntimeError.invalid("nodes_modes must be a uint8 tensor")
    }
    let n = features.count, leaves = targets.count
    guard n > 0,
      [yes.count, yesLeaf.count, no.count, noLeaf.count, modeValues.count, splits.count].allSatisfy(
        { $0 == n })
    else {
      throw ONNXRuntimeError.invalid("the nodes_* attributes differ in length")
    }
    guard weights.count == leaves, leaves > 0 else {
      throw ONNXRuntimeError.invalid("leaf_targetids and leaf_weights differ in length")
    }
    let missing = context.ints("nodes_missing_value_tracks_true") ?? []
    guard missing.isEmpty || missing.count == n else {
      throw ONNXRuntimeError.invalid("nodes_missing_value_tracks_true differs in length")
    }
    let members = try context.tensor("membership_values")?.doubles ?? []
    var memberSets: [Set<Double>] = []
    var current: Set<Double> = []
    for value in members {
      if value.isNaN {
        memberSets.append(current)
        current = []
      } else {
        current.insert(value)
      }
    }
    if !current.isEmpty { memberSets.append(current) }
    func target(_ index: Int, leaf: Int) throws -> Int {
      if leaf != 0 {
        guard (0 ..< leaves).contains(index) else {
          throw ONNXRuntimeError.invalid("a branch names leaf \(index) of \(leaves)")
        }
        return n + index
      }
      guard (0 ..< n).contains(index) else {
        throw ONNXRuntimeError.invalid("a branch names node \(index) of \(n)")
      }
      return index
    }
    let table: [Mode] = [.leq, .lt, .gte, .gt, .eq, .neq, .member]
    var memberNodes = 0
    for i in 0 ..< n {
      guard (0 ..< Int64(table.count)).contains(modeValues[i]) else {
        throw ONNXRuntimeError.invalid("node \(i): mode \(modeValues[i])")
      }
      guard features[i] >= 0 else {
        throw ONNXRuntimeError.invalid("node \(i): feature \(features[i])")
      }
      var node = Node(
        feature: features[i],
        value: splits[i],
        mode: table[Int(modeValues[i])],
        yes: try target(yes[i], leaf: yesLeaf[i]),
        no: try target(no[i], leaf: noLeaf[i]),
        missingGoesYes: !missing.isEmpty && missing[i] != 0
      )
      if node.mode == .member {
        guard memberNodes < memberSets.count else {
          throw ONNXRuntimeError.invalid(
            "membership_values has fewer sets than the BRANCH_MEMBER nodes"
          )
        }
        node.set = memberNodes
        memberNodes += 1
      }
      self.nodes.append(node)
    }
    self.sets = memberSets
    for l in 0 ..< leaves {
      guard targets[l] >= 0 else {
        throw ONNXRuntimeError.invalid("leaf \(l): target \(targets[l])")
      }
      self.nodes.append(
        Node(
          feature: 0,
          value: 0,
          mode: .leaf,
          yes: -1,
          no: -1,
          missingGoesYes: false,
          firstVote: self.votes.count,
          voteCount: 1
        )
      )
      self.votes.append((targets[l], weights[l]))
    }
    guard !roots.isEmpty, roots.allSatisfy({ (0 ..< n).contains($0) }) else {
      throw ONNXRuntimeError.invalid("tree_roots names a node outside 0..<\(n)")
    }
    self.roots = roots
    self.maximumDepth = self.nodes.count
    self.voted = Set(self.votes.map(\.target))
    self.positiveWeights = self.votes.allSatisfy { $0.weight >= 0 }
    self.forest = Self.forest(self.nodes, roots: self.roots)
  }

  let maximumDepth: Int
  /// The targets or classes some leaf votes for, and whether every vote is non-negative.
  let voted: Set<Int>
  let positiveWeights: Bool
  /// The trees walked without branches, when every split is LEQ, LT, GTE or GT (GTE and GT
  /// as LT and LEQ with the children swapped, and a missing value's way with them).
  let forest: SplitForest<Double>?

  static func forest(_ nodes: [Node], roots: [Int]) -> SplitForest<Double>? {
    guard nodes.count < Int(Int32.max), roots.allSatisfy({ $0 < Int(Int32.max) }) else {
      return nil
    }
    var compact: [SplitForest<Double>.Node] = []
    compact.reserveCapacity(nodes.count)
    for (i, node) in nodes.enumerated() {
      let m = node.missingGoesYes
      guard node.mode == .leaf || node.feature < Int(Int32.max) else { return nil }
      let feature = Int32(truncatingIfNeeded: node.feature)
      let yes = Int32(truncatingIfNeeded: node.yes), no = Int32(truncatingIfNeeded: node.no)
      switch node.mode {
      case .leaf: compact.append(.leaf(at: Int32(i)))
      case .leq, .lt:
        compact.append(
          .split(
            feature: feature,
            threshold: node.value,
            strict: node.mode == .lt,
            missingGoesYes: m,
            yes: yes,
            no: no
          )
        )
      case .gte, .gt:
        compact.append(
          .split(
            feature: feature,
            threshold: node.value,
            strict: node.mode == .gte,
            missingGoesYes: !m,
            yes: no,
            no: yes
          )
        )
      case .eq, .neq, .member: return nil
      }
    }
    return SplitForest(nodes: compact, roots: roots.map { Int32($0) })
  }

  /// The node of the leaf `row` reaches in each tree, in the trees' order, into `leaves` (one
  /// per tree).
  func leaves(_ row: ArraySlice<Double>, into leaves: inout [Int32]) throws {
    if let forest = self.forest, forest.maximumFeature < row.count {
      row.withUnsafeBufferPointer { row in
        leaves.withUnsafeMutableBufferPointer {
          forest.leaves(row: row.baseAddress!, into: $0.baseAddress!)
        }
      }
      return
    }
    for (t, root) in self.roots.enumerated() {
      leaves[t] = Int32(truncatingIfNeeded: try self.leaf(root, row))
    }
  }

  /// The leaves of a batch's rows (`count` rows of `width` in `values`), found a block of rows
  /// at a time: tree by tree, eight rows in step, so one tree's nodes serve the whole block
  /// and no walk waits on a deeper tree; a block of fewer than eight rows goes a row at a time.
  struct Batch {
    let trees: Trees
    let values: [Double]
    let count: Int
    let width: Int
    static let block = 64
    private var first = -1
    private var buffer: [Int32]
    private var column: [Int32]

    init(_ trees: Trees, _ values: [Double], count: Int, width: Int) {
      self.trees = trees
      self.values = values
      self.count = count
      self.width = width
      self.buffer = [Int32](repeating: 0, count: min(count, Self.block) * trees.roots.count)
      self.column = [Int32](repeating: 0, count: Self.block)
    }

    /// Row `r`'s leaves (node positions), one per tree in the trees' order.
    mutating func leaves(ofRow r: Int) throws -> ArraySlice<Int32> {
      let treeCount = self.trees.roots.count
      if self.first < 0 || r < self.first || r >= self.first + Self.block {
        self.first = r - r % Self.block
        try self.fill()
      }
      let at = (r - self.first) * treeCount
      return self.buffer[at ..< (at + treeCount)]
    }

    private mutating func fill() throws {
      let rows = min(Self.block, self.count - self.first), treeCount = self.trees.roots.count
      let width = self.width, first = self.first
      guard let forest = self.trees.forest, forest.maximumFeature < width, rows >= 8 else {
        var one = [Int32](repeating: 0, count: treeCount)
        for i in 0 ..< rows {
          let start = (first + i) * width
          try self.trees.leaves(self.values[start ..< (start + width)], into: &one)
          for t in 0 ..< treeCount { self.buffer[i * treeCount + t] = one[t] }
        }
        return
      }
      self.values.withUnsafeBufferPointer { values in
        let starts = (0 ..< rows).map { values.baseAddress! + (first + $0) * width }
        starts.withUnsafeBufferPointer { starts in
          for t in 0 ..< treeCount {
            self.column.withUnsafeMutableBufferPointer {
              forest.leaves(tree: t, rows: starts.baseAddress!, count: rows, into: $0.baseAddress!)
            }
            for i in 0 ..< rows { self.buffer[i * treeCount + t] = self.column[i] }
          }
        }
      }
    }
  }

  /// The node of the leaf a row reaches in the tree rooted at `root`.
  func leaf(_ root: Int, _ row: ArraySlice<Double>) throws -> Int {
    var position = root
    for _ in 0 ... self.maximumDepth {
      let node = self.nodes[position]
      if node.mode == .leaf { return position }
      guard node.feature < row.count else {
        throw ONNXRuntimeError.invalid("a split reads feature \(node.feature) of \(row.count)")
      }
      let x = row[row.startIndex + node.feature]
      let yes: Bool
      if x.isNaN && node.missingGoesYes {
        yes = true
      } else {
        switch node.mode {
        case .leq: yes = x <= node.value
        case .lt: yes = x < node.value
        case .gte: yes = x >= node.value
        case .gt: yes = x > node.value
        case .eq: yes = x == node.value
        case .neq: yes = x != node.value
        case .member: yes = self.sets[node.set].contains(x)
        case .leaf: yes = false
        }
      }
      position = yes ? node.yes : node.no
    }
    throw ONNXRuntimeError.invalid("a tree walk does not end (a cycle in the nodes)")
  }
}

private func treeRegressor(_ context: ONNXNodeContext) throws -> [ONNXTensor] {
  let x = try context.input(0)
  let (values, count, width) = try rows(x)
  let trees = try context.prepared as? Trees ?? Trees(context, votePrefix: "target")
  let targets = context.int("n_targets", 1)
  let base =
    try context.tensor("base_values_as_tensor")?.doubles ?? context.floats("base_values") ?? []
  let out = try regress(
    trees,
    values,
    count: count,
    width: width,
    targets: targets,
    base: base,
    aggregate: context.string("aggregate_function", "SUM"),
    post: try PostTransform(context)
  )
  return [ONNXTensor.from(doubles: out, shape: [count, targets], type: .float)]
}

/// ai.onnx.ml TreeEnsemble (opset 5): TreeEnsembleRegressor's sums, its enumerations as
/// integers, its output the input's type.
private func treeEnsemble(_ context: ONNXNodeContext) throws -> [ONNXTensor] {
  let x = try context.input(0)
  let (values, count, width) = try rows(x)
  let trees = try context.prepared as? Trees ?? Trees(opset5: context)
  let targets = context.int("n_targets", 1)
  let aggregates = ["AVERAGE", "SUM", "MIN", "MAX"]
  let aggregate = context.int("aggregate_function", 1)
  guard aggregates.indices.contains(aggregate) else {
    throw ONNXRuntimeError.invalid("aggregate_function \(aggregate)")
  }
  let post = try PostTransform(index: context.int("post_transform", 0))
  let out = try regress(
    trees,
    values,
    count: count,
    width: width,
    targets: targets,
    base: [],
    aggregate: aggregates[aggregate],
    post: post
  )
  return [
    ONNXTensor.from(
      doubles: out,
      shape: [count, targets],
      type: x.elementType == .double ? .double : .float
    )
  ]
}

/// Each row's per-target scores: the leaves' votes aggregated, the base values added, the
/// post-transform applied.
private func regress(
  _ trees: Trees,
  _ values: [Double],
  count: Int,
  width: Int,
  targets: Int,
  base: [Double],
  aggregate: String,
  post: PostTransform
) throws -> [Double] {
  guard targets > 0, targets <= 1 << 20 else {
    throw ONNXRuntimeError.invalid("n_targets \(targets)")
  }
  var out: [Double] = []
  out.reserveCapacity(count * targets)
  var batch = Trees.Batch(trees, values, count: count, width: width)
  // Compared once, not per vote.
  let isMin = aggregate == "MIN", isMax = aggregate == "MAX"
  for r in 0 ..< count {
    var scores = [Double](
      repeating: isMin ? .infinity : isMax ? -.infinity : 0,
      count: targets
    )
    var seen = [Bool](repeating: false, count: targets)
    let leaves = try batch.leaves(ofRow: r)
    trees.forEachVote(of: leaves) { target, weight in
      guard target < targets else { return }
      if isMin {
        scores[target] = min(scores[target], weight)
      } else if isMax {
        scores[target] = max(scores[target], weight)
      } else {
        scores[target] += weight
      }
      seen[target] = true
    }
    for t in 0 ..< targets {
      if !seen[t] && (aggregate == "MIN" || aggregate == "MAX") { scores[t] = 0 }
      if aggregate == "AVERAGE" { scores[t] /= Double(trees.roots.count) }
      scores[t] += t < base.count ? base[t] : 0
    }
    post.apply(&scores)
    out += scores
  }
  return out
}

/// A TreeEnsembleClassifier's trees and attributes, read once at load: reading the labels, base
/// values and post_transform by name on every run cost a single row as much as 40 trees.
private struct TreeClassifierParts: Sendable {
  var trees: Trees
  var labels: ClassLabels
  var base: [Double]
  var post: PostTransform

  init(_ context: ONNXNodeContext) throws {
    self.trees = try Trees(context, votePrefix: "class")
    self.labels = try ClassLabels(context, intsName: "classlabels_int64s")
    self.base =
      try context.tensor("base_values_as_tensor")?.doubles ?? context.floats("base_values") ?? []
    self.post = try PostTransform(context)
  }
}

private func treeClassifier(_ context: ONNXNodeContext) throws -> [ONNXTensor] {
  let x = try context.input(0)
  let (values, count, width) = try rows(x)
  let parts = try context.prepared as? TreeClassifierParts ?? TreeClassifierParts(context)
  let (trees, labels, base, post) = (parts.trees, parts.labels, parts.base, parts.post)
  let classes = labels.count
  let voted = trees.voted
  guard voted.allSatisfy({ $0 < classes }) else {
    throw ONNXRuntimeError.invalid("a class id is not among the \(classes) labels")
  }
  // Two labels with votes for one class only: one score s, reported as ONNX Runtime does.
  let binary = classes == 2 && voted.count == 1
  let positiveWeights = trees.positiveWeights
  var out: [Double] = [], picks: [Int] = []
  var batch = Trees.Batch(trees, values, count: count, width: width)
  for r in 0 ..< count {
    var scores = [Double](repeating: 0, count: classes)
    let leaves = try batch.leaves(ofRow: r)
    trees.forEachVote(of: leaves) { c, weight in scores[c] += weight }
    if binary {
      let s = scores[voted.first!] + (base.first ?? 0)
      picks.append(s > (positiveWeights ? 0.5 : 0) ? 1 : 0)
      switch post {
      case .logistic:
        let p = 1 / (1 + exp(-s))
        scores = [1 - p, p]
      case .none, .softmax, .softmaxZero: scores = positiveWeights ? [1 - s, s] : [-s, s]
      case .probit:
        throw ONNXRuntimeError.unsupported("post_transform PROBIT of a two-class ensemble")
      }
    } else {
      for c in 0 ..< classes where c < base.count { scores[c] += base[c] }
      picks.append(scores.indices.max { scores[$0] < scores[$1] } ?? 0)
      post.apply(&scores)
    }
    out += scores
  }
  return [
    labels.tensor(picks), ONNXTensor.from(doubles: out, shape: [count, classes], type: .float),
  ]
}

private func linearClassifier(_ context: ONNXNodeContext) throws -> [ONNXTensor] {
  let (values, count, width) = try rows(try context.input(0))
  let labels = try ClassLabels(context, intsName: "classlabels_ints")
  guard let coefficients = context.floats("coefficients"), !coefficients.isEmpty, width > 0,
    coefficients.count % width == 0
  else {
    throw ONNXRuntimeError.invalid("coefficients do not fit \(width) features")
  }
  let rowsOfCoefficients = coefficients.count / width
  let intercepts = context.floats("intercepts") ?? []
  let post = try PostTransform(context)
  let binary = rowsOfCoefficients == 1 && labels.count == 2
  guard binary || rowsOfCoefficients == labels.count else {
    throw ONNXRuntimeError.invalid(
      "\(rowsOfCoefficients) rows of coefficients for \(labels.count) class labels"
    )
  }
  let columns = binary ? 2 : rowsOfCoefficients
  // Every row's scores in one product, X·Wᵀ, written where they are returned (`columns`
  // apart: a binary model's one score goes in its row's second place), then the intercepts,
  // the picks and the post-transform over all rows at once.
  var out = [Double](repeating: 0, count: count * columns)
  var picks = [Int](repeating: 0, count: count)
  guard count > 0 else {
    return [labels.tensor([]), ONNXTensor.from(doubles: [], shape: [0, columns], type: .float)]
  }
  values.withUnsafeBufferPointer { x in
    coefficients.withUnsafeBufferPointer { w in
      out.withUnsafeMutableBufferPointer { out in
        let first = out.baseAddress! + (binary ? 1 : 0)
        if rowsOfCoefficients <= 8 {
          // A few classes: a GEMV per class, into its column (a GEMM packed X first, which was
          // most of a binary model's batch).
          withUnsafeTemporaryAllocation(of: Double.self, capacity: count) { column in
            for c in 0 ..< rowsOfCoefficients {
              Double.gemv(
                transpose: false,
                m: count,
                n: width,
                alpha: 1,
                a: x.baseAddress!,
                lda: width,
                x: w.baseAddress! + c * width,
                beta: 0,
                y: column.baseAddress!
              )
              for r in 0 ..< count { first[r * columns + c] = column[r] }
            }
          }
        } else {
          Double.gemm(
            transposeA: false,
            transposeB: true,
            m: count,
            n: rowsOfCoefficients,
            k: width,
            alpha: 1,
            a: x.baseAddress!,
            lda: width,
            b: w.baseAddress!,
            ldb: width,
            beta: 0,
            c: first,
            ldc: columns
          )
        }
        let added = min(rowsOfCoefficients, intercepts.count)
        for r in 0 ..< count {
          let scores = out.baseAddress! + r * columns
          if binary {
            // [1 − p, p]: p is the score here, or its logistic, taken for every row below.
            if added > 0 { scores[1] += intercepts[0] }
            picks[r] = scores[1] > 0 ? 1 : 0
          } else {
            var best = 0
            for c in 0 ..< columns {
              if c < added { scores[c] += intercepts[c] }
              if scores[c] > scores[best] { best = c }
            }
            picks[r] = best
          }
        }
        guard binary else {
          post.apply(rows: out, columns: columns)
          return
        }
        if post == .logistic {
          // The logistic of each row's score; p sits in each row's second place, two apart.
          var p = (0 ..< count).map { out[$0 * 2 + 1] }
          p.withUnsafeMutableBufferPointer {
            Logistic.sigmoid($0.baseAddress!, into: $0.baseAddress!, count: count)
          }
          for r in 0 ..< count { out[r * 2 + 1] = p[r] }
        }
        for r in 0 ..< count { out[r * 2] = 1 - out[r * 2 + 1] }
      }
    }
  }
  return [
    labels.tensor(picks),
    ONNXTensor.from(doubles: out, shape: [count, columns], type: .float),
  ]
}

extension ONNXOperators {
  static let machineLearning: [(String, ONNXOperator)] = [
    (
      "TreeEnsembleRegressor",
      ONNXOperator(since: 1, prepare: { try Trees($0, votePrefix: "target") }) {
        try treeRegressor($0)
      }
    ),
    (
      "TreeEnsembleClassifier",
      ONNXOperator(since: 1, prepare: { try TreeClassifierParts($0) }) {
        try treeClassifier($0)
      }
    ),
    (
      "TreeEnsemble",
      ONNXOperator(since: 5, prepare: { try Trees(opset5: $0) }) { try treeEnsemble($0) }
    ),
    ("LinearClassifier", ONNXOperator(since: 1) { try linearClassifier($0) }),
    (
      "LinearRegressor",
      ONNXOperator(since: 1) { context in
        let (values, count, width) = try rows(try context.input(0))
        let targets = context.int("targets", 1)
        guard let coefficients = context.floats("coefficients"), targets > 0,
          coefficients.count == targets * width
        else {
          throw ONNXRuntimeError.invalid(
            "coefficients do not fit \(targets) targets of \(width) features"
          )
        }
        let intercepts = context.floats("intercepts") ?? []
        let post = try PostTransform(context)
        var out: [Double] = []
        for r in 0 ..< count {
          var scores = (0 ..< targets).map { t in
            (0 ..< width).reduce(t < intercepts.count ? intercepts[t] : 0) {
              $0 + values[r * width + $1] * coefficients[t * width + $1]
            }
          }
          post.apply(&scores)
          out += scores
        }
        return [ONNXTensor.from(doubles: out, shape: [count, targets], type: .float)]
      }
    ),
    (
      "Normalizer",
      ONNXOperator(since: 1) { context in
        let x = try context.input(0)
        let (values, count, width) = try rows(x)
        let norm = context.string("norm", "MAX")
        var out = values
        for r in 0 ..< count {
          let row = values[(r * width) ..< ((r + 1) * width)]
          let divisor: Double
          switch norm {
          case "MAX": divisor = row.max() ?? 1
          case "L1": divisor = row.reduce(0) { $0 + abs($1) }
          case "L2": divisor = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
          default: throw ONNXRuntimeError.invalid("norm '\(norm)'")
          }
          for j in 0 ..< width {
            out[r * width + j] =
              divisor == 0 ? row[row.startIndex + j] : row[row.startIndex + j] / divisor
          }
        }
        return [ONNXTensor.from(doubles: out, shape: x.shape, type: .float)]
      }
    ),
    (
      "Scaler",
      ONNXOperator(since: 1) { context in
        let x = try context.input(0)
        let (values, count, width) = try rows(x)
        let offset = context.floats("offset") ?? [0], scale = context.floats("scale") ?? [1]
        guard offset.count == 1 || offset.count == width, scale.count == 1 || scale.count == width
        else {
          throw ONNXRuntimeError.invalid("offset and scale must have 1 or \(width) values")
        }
        let out = (0 ..< (count * width)).map { i -> Double in
          let j = i % width
          return (values[i] - offset[offset.count == 1 ? 0 : j]) * scale[scale.count == 1 ? 0 : j]
        }
        return [ONNXTensor.from(doubles: out, shape: x.shape, type: .float)]
      }
    ),
    (
      "Imputer",
      ONNXOperator(since: 1) { context in
        let x = try context.input(0)
        let (values, _, width) = try rows(x)
        if let imputed = context.floats("imputed_value_floats"), !imputed.isEmpty {
          guard imputed.count == 1 || imputed.count == width else {
            throw ONNXRuntimeError.invalid("imputed_value_floats must have 1 or \(width) values")
          }
          let replaced = context.float("replaced_value_float", .nan)
          let out = values.enumerated().map { i, v in
            (replaced.isNaN ? v.isNaN : v == replaced)
              ? imputed[imputed.count == 1 ? 0 : i % width] : v
          }
          return [ONNXTensor.from(doubles: out, shape: x.shape, type: x.elementType)]
        }
        guard let imputed = context.ints("imputed_value_int64s"),
          imputed.count == 1 || imputed.count == width
        else {
          throw ONNXRuntimeError.invalid("imputed values are missing")
        }
        let replaced = Double(context.int("replaced_value_int64", 0))
        let out = values.enumerated().map { i, v in
          v == replaced ? Double(imputed[imputed.count == 1 ? 0 : i % width]) : v
        }
        return [ONNXTensor.from(doubles: out, shape: x.shape, type: x.elementType)]
      }
    ),
    (
      "ArrayFeatureExtractor",
      ONNXOperator(since: 1) { context in
        // The indices pick along the last axis; a 1-D input gives a [1, K] result (as ONNX Runtime).
        let x = try context.input(0)
        guard x.rank >= 1 else { throw ONNXRuntimeError.invalid("X must have at least one axis") }
        let last = x.shape[x.rank - 1]
        let indices = try context.input(1).integers("Y").map { value -> Int in
          guard value >= 0, value < Int64(last) else {
            throw ONNXRuntimeError.invalid("index \(value) is out of range for \(last) columns")
          }
          return Int(value)
        }
        let outer = x.count / max(1, last)
        let shape = x.rank == 1 ? [1, indices.count] : Array(x.shape.dropLast()) + [indices.count]
        return [
          x.gathering((0 ..< outer).flatMap { o in indices.map { o * last + $0 } }, shape: shape)
        ]
      }
    ),
    // ZipMap turns probabilities into a sequence of maps; here they stay the [N, C] tensor.
    ("ZipMap", ONNXOperator(since: 1) { [try $0.input(0)] }),
  ]
}
