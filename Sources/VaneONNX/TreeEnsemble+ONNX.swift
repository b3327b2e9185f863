// The trees as the ai.onnx.ml TreeEnsemble* operators' attributes.

internal import VaneModels

extension TreeEnsemble {
  /// The nodes_* attributes shared by TreeEnsembleClassifier and TreeEnsembleRegressor: splits
  /// as BRANCH_LT (x < threshold → true branch = XGBoost's left child), missing values to the
  /// true branch where XGBoost's default is left.
  func nodeAttributes() -> [ONNX.Attribute] {
    var treeIDs: [Int] = [], nodeIDs: [Int] = [], features: [Int] = [], modes: [String] = [],
      values: [Float] = []
    var trueIDs: [Int] = [], falseIDs: [Int] = [], missingTrue: [Int] = []
    for (t, tree) in self.trees.enumerated() {
      for node in tree.left.indices {
        treeIDs.append(t)
        nodeIDs.append(node)
        if tree.isLeaf(node) {
          features.append(0)
          modes.append("LEAF")
          values.append(0)
          trueIDs.append(0)
          falseIDs.append(0)
          missingTrue.append(0)
        } else {
          features.append(tree.feature[node])
          modes.append("BRANCH_LT")
          values.append(Float(tree.value[node]))
          trueIDs.append(tree.left[node])
          falseIDs.append(tree.right[node])
          missingTrue.append(tree.defaultLeft[node] ? 1 : 0)
        }
      }
    }
    return [
      .ints("nodes_treeids", treeIDs), .ints("nodes_nodeids", nodeIDs),
      .ints("nodes_featureids", features), .strings("nodes_modes", modes),
      .floats("nodes_values", values), .ints("nodes_truenodeids", trueIDs),
      .ints("nodes_falsenodeids", falseIDs),
      .ints("nodes_missing_value_tracks_true", missingTrue),
    ]
  }

  /// One vote per leaf: its tree, node, output group and value.
  func leafVotes() -> (tree: [Int], node: [Int], group: [Int], weight: [Float]) {
    var votes: (tree: [Int], node: [Int], group: [Int], weight: [Float]) = ([], [], [], [])
    for (t, tree) in self.trees.enumerated() {
      for node in tree.left.indices where tree.isLeaf(node) {
        votes.tree.append(t)
        votes.node.append(node)
        votes.group.append(tree.group)
        votes.weight.append(Float(tree.value[node]))
      }
    }
    return votes
  }
}
