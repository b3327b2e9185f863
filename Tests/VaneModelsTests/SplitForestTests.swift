import Testing
import VaneCore
import VaneMath

/// The branch-free forest against a plain walk that branches on each comparison as written.
@Suite("Split forests")
struct SplitForestTests {
  /// A split as a reader sees it: one of the four comparisons, and where a missing value goes.
  struct Split {
    enum Comparison: CaseIterable { case lt, leq, gte, gt }
    var feature: Int
    var threshold: Double
    var comparison: Comparison
    var missingGoesYes: Bool
    var yes: Int
    var no: Int
  }

  /// Random trees (node 0 of each tree is its root, children after their parents), with
  /// thresholds that include ±∞ and values that land exactly on them.
  static func forest(trees: Int, seed: UInt64) -> (splits: [Split?], roots: [Int]) {
    var random = SeededRandom(seed: seed)
    var nodes: [Split?] = [], roots: [Int] = []
    let specials: [Double] = [.infinity, -.infinity, 0, -0.0, 1.5, .greatestFiniteMagnitude]
    for _ in 0 ..< trees {
      let root = nodes.count
      roots.append(root)
      // A tree of up to 31 nodes grown breadth-first: each split gets two new children.
      var open = [root]
      nodes.append(nil)
      while let index = open.first, nodes.count < root + 31 {
        open.removeFirst()
        guard random.uniform() < 0.8 || index == root else { continue }
        let yes = nodes.count, no = nodes.count + 1
        nodes += [nil, nil]
        let threshold =
          random.uniform() < 0.2
          ? specials[Int(random.next() % UInt64(specials.count))] : random.uniform() * 4 - 2
        nodes[index] = Split(
          feature: Int(random.next() % 5),
          threshold: threshold,
          comparison: Split.Comparison.allCases[Int(random.next() % 4)],
          missingGoesYes: random.next() % 2 == 0,
          yes: yes,
          no: no
        )
        open += [yes, no]
      }
    }
    return (nodes, roots)
  }

  static func naiveLeaf(_ splits: [Split?], root: Int, row: [Double]) -> Int {
    var index = root
    while let split = splits[index] {
      let x = row[split.feature]
      let yes: Bool
      if x.isNaN {
        yes = split.missingGoesYes
      } else {
        switch split.comparison {
        case .lt: yes = x < split.threshold
        case .leq: yes = x <= split.threshold
        case .gte: yes = x >= split.threshold
        case .gt: yes = x > split.threshold
        }
      }
      index = yes ? split.yes : split.no
    }
    return index
  }

  /// The forest as ONNX's reader builds it: GTE and GT as LT and LEQ with the children swapped.
  static func compact(_ splits: [Split?], roots: [Int]) -> SplitForest<Double>? {
    SplitForest(
      nodes: splits.enumerated().map { i, split in
        guard let split else { return .leaf(at: Int32(i)) }
        let flipped = split.comparison == .gte || split.comparison == .gt
        return .split(
          feature: Int32(split.feature),
          threshold: split.threshold,
          strict: split.comparison == .lt || split.comparison == .gte,
          missingGoesYes: flipped ? !split.missingGoesYes : split.missingGoesYes,
          yes: Int32(flipped ? split.no : split.yes),
          no: Int32(flipped ? split.yes : split.no)
        )
      },
      roots: roots.map { Int32($0) }
    )
  }

  @Test(
    "Every row reaches the leaf a branching walk reaches, one row through all trees and rows through one tree, with NaN, ±∞ and values on thresholds",
    arguments: [1, 7, 8, 9, 37]
  )
  func equalsBranchingWalk(trees: Int) throws {
    let (splits, roots) = Self.forest(trees: trees, seed: UInt64(trees))
    let forest = try #require(Self.compact(splits, roots: roots))
    var random = SeededRandom(seed: 99)
    let picks: [Double] = [.nan, .infinity, -.infinity, 0, -0.0, 1.5, .greatestFiniteMagnitude]
    let rows = (0 ..< 41).map { _ in
      (0 ..< 5).map { _ in
        random.uniform() < 0.4
          ? picks[Int(random.next() % UInt64(picks.count))] : random.uniform() * 4 - 2
      }
    }
    for row in rows {
      var leaves = [Int32](repeating: -1, count: trees)
      row.withUnsafeBufferPointer { r in
        leaves.withUnsafeMutableBufferPointer {
          forest.leaves(row: r.baseAddress!, into: $0.baseAddress!)
        }
      }
      #expect(leaves.map(Int.init) == roots.map { Self.naiveLeaf(splits, root: $0, row: row) })
    }
    // Rows through one tree, eight at a time and a short last group (41 rows).
    for (t, root) in roots.enumerated() {
      var leaves = [Int32](repeating: -1, count: rows.count)
      let buffers = rows.map { row -> UnsafeMutablePointer<Double> in
        let p = UnsafeMutablePointer<Double>.allocate(capacity: row.count)
        p.initialize(from: row, count: row.count)
        return p
      }
      defer { buffers.forEach { $0.deallocate() } }
      let pointers = buffers.map { UnsafePointer($0) }
      pointers.withUnsafeBufferPointer { p in
        leaves.withUnsafeMutableBufferPointer {
          forest.leaves(tree: t, rows: p.baseAddress!, count: rows.count, into: $0.baseAddress!)
        }
      }
      #expect(leaves.map(Int.init) == rows.map { Self.naiveLeaf(splits, root: root, row: $0) })
    }
  }

  @Test(
    "Hostile layouts: a cycle or a child outside the nodes is refused; shared subtrees are measured in linear time"
  )
  func hostile() {
    typealias Node = SplitForest<Double>.Node
    func split(_ yes: Int32, _ no: Int32) -> Node {
      .split(feature: 0, threshold: 0, strict: true, missingGoesYes: false, yes: yes, no: no)
    }
    // 0 → 1 → 0: a cycle.
    #expect(SplitForest<Double>(nodes: [split(1, 1), split(0, 0)], roots: [0]) == nil)
    // A child past the end, a negative root.
    #expect(SplitForest<Double>(nodes: [split(1, 2), .leaf(at: 1)], roots: [0]) == nil)
    #expect(SplitForest<Double>(nodes: [.leaf(at: 0)], roots: [-1]) == nil)
    // A chain of 5,000 splits whose children are both the next one: 2^5000 paths, one depth.
    let chain = (0 ..< 5_000).map { i in split(Int32(i + 1), Int32(i + 1)) } + [.leaf(at: 5_000)]
    let forest = SplitForest<Double>(nodes: chain, roots: [0, 2_500])
    #expect(forest?.depths == [5_000, 2_500])
  }
}
