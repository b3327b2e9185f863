/// Decision trees whose splits compare one feature with a threshold, laid out to be walked
/// without branches: which way a row goes is a coin toss to a branch predictor, and a walk
/// that jumps on it loses a pipeline's worth of work at every other level. Here a step is a
/// comparison and a load of the child it picks (the children sit side by side, so the
/// comparison's bit is the offset); each tree runs exactly its depth in steps (a leaf's
/// children are the leaf itself), and eight independent walks go in step, so that they
/// overlap in the core: eight rows through one tree, or one row through eight trees.
///
/// XGBoost's splits (x < t, a missing value to the default child) and ONNX's TreeEnsemble
/// modes LEQ, LT, GTE and GT (the last two as LT and LEQ with the children swapped) fit it.
public struct SplitForest<Value: BinaryFloatingPoint & Sendable>: Sendable {
  /// A split, or a leaf. Every split is kept as x < t: x ≤ t is x < t.nextUp (no value lies
  /// between), so a step makes one comparison with the threshold.
  public struct Node: Sendable {
    /// The feature, with the sign bit set when a missing (NaN) value goes to `no`.
    @usableFromInline var featureAndMissing: Int32
    /// NaN for a leaf: no comparison holds.
    @usableFromInline var threshold: Value
    /// The children side by side, `yes` then `no`: a step reads the one its comparison picks
    /// (a select of either took as many instructions again).
    @usableFromInline var yes: Int32
    @usableFromInline var no: Int32

    @usableFromInline
    init(feature: Int32, threshold: Value, yes: Int32, no: Int32, missingGoesYes: Bool) {
      self.featureAndMissing = missingGoesYes ? feature : feature | Int32.min
      self.threshold = threshold
      self.yes = yes
      self.no = no
    }

    /// The feature the split reads.
    @usableFromInline var feature: Int32 { self.featureAndMissing & Int32.max }

    /// A split on `feature`: `yes` when x < t (`strict`) or x ≤ t, or when x is missing and
    /// `missingGoesYes`; `no` otherwise.
    public static func split(
      feature: Int32,
      threshold: Value,
      strict: Bool,
      missingGoesYes: Bool,
      yes: Int32,
      no: Int32
    ) -> Node {
      if strict {
        return Node(
          feature: feature,
          threshold: threshold,
          yes: yes,
          no: no,
          missingGoesYes: missingGoesYes
        )
      }
      // x ≤ +∞ holds for every value but NaN, and no x < t does: as x < −∞ (never) with the
      // children swapped, a missing value's way with them.
      if threshold == .infinity {
        return Node(
          feature: feature,
          threshold: -.infinity,
          yes: no,
          no: yes,
          missingGoesYes: !missingGoesYes
        )
      }
      return Node(
        feature: feature,
        threshold: threshold.nextUp,
        yes: yes,
        no: no,
        missingGoesYes: missingGoesYes
      )
    }

    /// The leaf at `index` in the forest's nodes.
    public static func leaf(at index: Int32) -> Node {
      Node(feature: 0, threshold: .nan, yes: index, no: index, missingGoesYes: false)
    }
  }

  public let nodes: [Node]
  /// Each tree's root in ``nodes``, in the trees' order.
  public let roots: [Int32]
  /// Each tree's depth: edges on its longest root-to-leaf path.
  public let depths: [Int32]
  /// The largest feature index a node reads (a leaf reads feature 0, and ignores it).
  public let maximumFeature: Int

  /// Nil when a child or root is outside `nodes`, or a walk could go round a cycle, so that
  /// every walk stays inside the array and ends. A node whose children are both itself is a
  /// leaf.
  public init?(nodes: [Node], roots: [Int32]) {
    let count = nodes.count
    guard count > 0, count < Int(Int32.max),
      roots.allSatisfy({ $0 >= 0 && Int($0) < count }),
      nodes.allSatisfy({
        $0.feature >= 0 && $0.yes >= 0 && Int($0.yes) < count && $0.no >= 0 && Int($0.no) < count
      })
    else { return nil }
    // Longest paths by a depth-first walk that remembers each node's depth (a hostile file
    // may share subtrees, and exploring every path would take exponential time): -1 not
    // reached yet, -2 expanded and not finished (reaching it again is a cycle).
    var depthOf = [Int32](repeating: -1, count: count)
    var stack: [(index: Int32, expanded: Bool)] = []
    for root in roots {
      stack.append((root, false))
      while let (index, expanded) = stack.popLast() {
        let i = Int(index), node = nodes[i]
        if expanded {
          depthOf[i] = max(depthOf[Int(node.yes)], depthOf[Int(node.no)]) + 1
          continue
        }
        if depthOf[i] >= 0 { continue }
        if depthOf[i] == -2 { return nil }
        if node.yes == index && node.no == index {
          depthOf[i] = 0
          continue
        }
        depthOf[i] = -2
        stack.append((index, true))
        for child in [node.yes, node.no] where depthOf[Int(child)] < 0 {
          if depthOf[Int(child)] == -2 { return nil }
          stack.append((child, false))
        }
      }
    }
    self.nodes = nodes
    self.roots = roots
    let depths = roots.map { depthOf[Int($0)] }
    self.depths = depths
    self.maximumFeature = nodes.map { Int($0.feature) }.max() ?? -1
    // Eight trees in step take as many levels as the deepest: grouped by depth, shallow trees
    // do not wait on deep ones (LightGBM's leaf-wise trees vary a lot). Only where that saves
    // a quarter of the levels: out of order, the walks leave the nodes' memory order, which
    // cost XGBoost's near-uniform trees more than it saved.
    func levels(_ order: [Int]) -> Int {
      stride(from: 0, to: order.count, by: 8).reduce(0) { total, first in
        total + 8 * Int(order[first ..< min(order.count, first + 8)].map { depths[$0] }.max()!)
      }
    }
    let sorted = depths.indices.sorted { (depths[$0], $0) < (depths[$1], $1) }
    let inOrder = Array(depths.indices)
    let order = levels(sorted) * 4 <= levels(inOrder) * 3 ? sorted : inOrder
    self.byDepth = order == inOrder ? nil : order.map { Int32($0) }
    // Each group of eight's roots side by side (the last group padded with its last tree), and
    // its depth: a walk reads them in place.
    var walkRoots: [Int32] = [], groupDepths: [Int32] = []
    for first in stride(from: 0, to: order.count, by: 8) {
      let group = order[first ..< min(order.count, first + 8)]
      walkRoots += group.map { roots[$0] }
      walkRoots += [Int32](repeating: roots[group.last!], count: 8 - group.count)
      groupDepths.append(group.map { depths[$0] }.max()!)
    }
    self.walkRoots = walkRoots
    self.groupDepths = groupDepths
  }

  /// The order the trees are walked in, from the shallowest to the deepest; nil: as they are.
  @usableFromInline let byDepth: [Int32]?
  /// The roots in walk order, eight per group.
  @usableFromInline let walkRoots: [Int32]
  /// Each group's deepest tree's depth.
  @usableFromInline let groupDepths: [Int32]

  /// Where a node's `yes` child is, in bytes from the node; `no` follows it.
  @usableFromInline static var childrenOffset: Int { MemoryLayout<Node>.offset(of: \.yes)! }

  /// One level down from node `index` for `row`; a leaf stays where it is.
  @inlinable @inline(__always)
  static func step(
    _ nodes: UnsafePointer<Node>,
    _ index: Int32,
    _ row: UnsafePointer<Value>
  ) -> Int32 {
    let node = UnsafeRawPointer(nodes + Int(index))
    let packed = node.load(
      fromByteOffset: MemoryLayout<Node>.offset(of: \.featureAndMissing)!,
      as: Int32.self
    )
    let x = row[Int(packed & Int32.max)]
    let threshold = node.load(
      fromByteOffset: MemoryLayout<Node>.offset(of: \.threshold)!,
      as: Value.self
    )
    // `no` when x ≥ t (false for NaN and for a leaf's NaN threshold), or when x is missing and
    // the sign bit sends it there.
    let atOrAbove = unsafeBitCast(x >= threshold, to: UInt8.self)
    let missing = unsafeBitCast(x != x, to: UInt8.self) & UInt8(truncatingIfNeeded: packed >> 31)
    let no = Int(truncatingIfNeeded: (atOrAbove | missing) & 1)
    return node.load(fromByteOffset: Self.childrenOffset + 4 * no, as: Int32.self)
  }

  /// Eight walks in step, `depth` levels down, walk k from `roots[k]` for the row at
  /// `row(k)`: the leaves they reach. One row passes `{ _ in row }`, and its address then stays
  /// in one register (eight copies of it were kept on the stack and reloaded at every step).
  @inlinable @inline(__always)
  static func walk(
    _ nodes: UnsafePointer<Node>,
    roots: UnsafePointer<Int32>,
    depth: Int,
    row: (Int) -> UnsafePointer<Value>
  ) -> SIMD8<Int32> {
    var i0 = roots[0], i1 = roots[1], i2 = roots[2], i3 = roots[3]
    var i4 = roots[4], i5 = roots[5], i6 = roots[6], i7 = roots[7]
    let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3)
    let r4 = row(4), r5 = row(5), r6 = row(6), r7 = row(7)
    for _ in 0 ..< depth {
      i0 = Self.step(nodes, i0, r0)
      i1 = Self.step(nodes, i1, r1)
      i2 = Self.step(nodes, i2, r2)
      i3 = Self.step(nodes, i3, r3)
      i4 = Self.step(nodes, i4, r4)
      i5 = Self.step(nodes, i5, r5)
      i6 = Self.step(nodes, i6, r6)
      i7 = Self.step(nodes, i7, r7)
    }
    return SIMD8<Int32>(i0, i1, i2, i3, i4, i5, i6, i7)
  }

  /// The leaf `row` reaches in each tree, in the trees' order, into `leaves` (one per tree).
  /// `row` holds at least ``maximumFeature`` + 1 values (not checked here).
  // Inlinable: the walks run specialised for the caller's value type, never through generic
  // witnesses.
  @inlinable
  public func leaves(row: UnsafePointer<Value>, into leaves: UnsafeMutablePointer<Int32>) {
    let trees = self.roots.count
    self.nodes.withUnsafeBufferPointer { nodes in
      self.walkRoots.withUnsafeBufferPointer { roots in
        let order = self.byDepth
        for (group, depth) in self.groupDepths.enumerated() {
          let first = group * 8
          let index = Self.walk(
            nodes.baseAddress!,
            roots: roots.baseAddress! + first,
            depth: Int(depth)
          ) { _ in row }
          for lane in 0 ..< min(8, trees - first) {
            leaves[order.map { Int($0[first + lane]) } ?? first + lane] = index[lane]
          }
        }
      }
    }
  }

  /// The leaf each of `count` rows (`rows[i]`, each holding at least ``maximumFeature`` + 1
  /// values) reaches in tree `tree`, into `leaves` (one per row).
  @inlinable
  public func leaves(
    tree: Int,
    rows: UnsafePointer<UnsafePointer<Value>>,
    count: Int,
    into leaves: UnsafeMutablePointer<Int32>
  ) {
    let depth = Int(self.depths[tree])
    var roots = SIMD8<Int32>(repeating: self.roots[tree])
    // A short last group walks copies of its last row (their leaves are dropped).
    var padded = (rows[0], rows[0], rows[0], rows[0], rows[0], rows[0], rows[0], rows[0])
    self.nodes.withUnsafeBufferPointer { nodes in
      withUnsafePointer(to: &roots) { rootsPointer in
        let roots = UnsafeRawPointer(rootsPointer).assumingMemoryBound(to: Int32.self)
        var start = 0
        while start < count {
          let lanes = min(8, count - start)
          let index: SIMD8<Int32>
          if lanes == 8 {
            index = Self.walk(nodes.baseAddress!, roots: roots, depth: depth) { rows[start + $0] }
          } else {
            index = withUnsafeMutablePointer(to: &padded) { tuple in
              let group = UnsafeMutableRawPointer(tuple).assumingMemoryBound(
                to: UnsafePointer<Value>.self
              )
              for lane in 0 ..< 8 { group[lane] = rows[start + min(lane, lanes - 1)] }
              return Self.walk(nodes.baseAddress!, roots: roots, depth: depth) { group[$0] }
            }
          }
          for lane in 0 ..< lanes { leaves[start + lane] = index[lane] }
          start += 8
        }
      }
    }
  }
}
