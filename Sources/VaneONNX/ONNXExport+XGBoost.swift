public import Foundation
public import VaneModels
internal import VaneCore

extension ONNXExport {
  /// An XGBoost model as ONNX, from its JSON and only the kept rounds (`model.rounds`):
  /// `features` [N, F] double (NaN: missing) → (transform) → cast to float, as XGBoost compares
  /// features → the tree ensemble (ai.onnx.ml, BRANCH_LT, each split's missing-value branch from
  /// XGBoost's `default_left`) → `probabilities` [N, K] double.
  ///
  /// - multi:softprob: TreeEnsembleClassifier, one class id per tree from `tree_info`, base
  ///   values = base_score, post_transform SOFTMAX; its probabilities output cast to double.
  /// - binary:logistic: TreeEnsembleRegressor for the margin (base value logit(base_score)),
  ///   Sigmoid in float as XGBoost computes it, then [1 − p, p] in double as
  ///   `XGBoostModel.probabilities` does. (ONNX leaves TreeEnsembleClassifier's output for two
  ///   classes with one scored class unspecified, and ONNX Runtime's older aggregators return it
  ///   without the logistic when every leaf weight is positive; the regressor's margin means the
  ///   same in every runtime.)
  ///
  /// - Parameters:
  ///   - transform: the input transform the graph applies first, in double before the cast
  ///     (nil: none). Keep `zeroNonFinite` off unless the model was trained so: NaN is missing.
  ///   - classNames: `classCount` names for the metadata (empty: none).
  ///   - metadata: further metadata_props (keys the exporter writes are refused).
  /// - Returns: the serialized ModelProto.
  /// - Throws: INVALID_ARGUMENT naming what is wrong when the JSON is malformed or not a gbtree
  ///   binary:logistic / multi:softprob model with numerical splits, or when the transform, names
  ///   or metadata do not fit.
  public static func xgboost(
    _ model: XGBoostModel,
    transform: ONNXInputTransform? = nil,
    classNames: [String] = [],
    metadata: [String: String] = [:]
  ) throws -> Data {
    let d = model.featureCount, k = model.classCount
    let trees = try TreeEnsemble.xgboost(
      model.json,
      classCount: k,
      featureCount: d,
      rounds: model.rounds
    )
    try transform?.validate(columns: d)
    try Self.validate(names: classNames, count: k, field: "class_names")

    var builder = ONNXGraphBuilder(reserving: [Self.featuresInput, Self.probabilitiesOutput])
    var x = Self.featuresInput
    if let transform { x = transform.apply(to: x, columns: d, in: &builder) }
    x = builder.apply(
      "Cast",
      [x],
      [.int("to", Int(ONNX.DataType.float.rawValue))],
      hint: "features_f32"
    )
    let toDouble = ONNX.Attribute.int("to", Int(ONNX.DataType.double.rawValue))
    switch trees.objective {
    case .binaryLogistic:
      var attributes = trees.nodeAttributes()
      let leaves = trees.leafVotes()
      attributes += [
        .int("n_targets", 1), .ints("target_treeids", leaves.tree),
        .ints("target_nodeids", leaves.node),
        .ints("target_ids", leaves.group), .floats("target_weights", leaves.weight),
        .floats("base_values", trees.baseMargins.map(Float.init)),
        .string("aggregate_function", "SUM"), .string("post_transform", "NONE"),
      ]
      let margin = builder.apply(
        "TreeEnsembleRegressor",
        [x],
        attributes,
        domain: ONNX.mlDomain,
        hint: "margin_f32"
      )
      let p32 = builder.apply("Sigmoid", [margin], hint: "p_class1_f32")
      let p = builder.apply("Cast", [p32], [toDouble], hint: "p_class1")
      _ = Self.twoColumns(p, output: Self.probabilitiesOutput, in: &builder)
    case .multiSoftprob:
      var attributes = trees.nodeAttributes()
      let leaves = trees.leafVotes()
      attributes += [
        .ints("classlabels_int64s", Array(0 ..< k)), .ints("class_treeids", leaves.tree),
        .ints("class_nodeids", leaves.node),
        .ints("class_ids", leaves.group), .floats("class_weights", leaves.weight),
        .floats("base_values", trees.baseMargins.map(Float.init)),
        .string("post_transform", "SOFTMAX"),
      ]
      let outputs = builder.add(
        "TreeEnsembleClassifier",
        [x],
        attributes,
        domain: ONNX.mlDomain,
        hint: "trees",
        outputCount: 2
      )
      _ = builder.apply("Cast", [outputs[1]], [toDouble], output: Self.probabilitiesOutput)
    case .multiOneVsRest, .margin:
      // The XGBoost reader makes neither.
      preconditionFailure("an XGBoost ensemble with objective \(trees.objective)")
    }
    let graph = builder.graph(
      name: "vane_xgboost",
      inputs: [Self.matrix(Self.featuresInput, width: d)],
      outputs: [Self.matrix(Self.probabilitiesOutput, width: k)]
    )
    return try Self.model(
      kind: "xgboost",
      graph: graph,
      transform: transform,
      labels: ("vane.class_names", classNames),
      details: [
        ("vane.feature_count", "\(d)"), ("vane.class_count", "\(k)"),
        ("vane.xgboost_objective", trees.objective.rawValue),
        ("vane.xgboost_rounds", "\(model.rounds)"),
        ("vane.xgboost_trees", "\(trees.trees.count) of \(trees.totalTrees)"),
      ],
      metadata: metadata,
      usesML: true
    )
  }
}
