#!/usr/bin/env python3
"""ai.onnx.ml TreeEnsemble (opset 5) models with ONNX Runtime's answers, for the ONNX engine.

No exporter writes the opset-5 TreeEnsemble yet, so the graphs are built here with onnx.helper:

- tree_ensemble_lightgbm_categorical: the LightGBM model of
  Tests/VaneModelsTests/Fixtures/lightgbm/categorical.txt (40 trees on 13 real BTC indicators
  plus two categorical columns) rewritten as TreeEnsemble: numerical splits as BRANCH_LEQ with
  NaN sent the default way, categorical splits as BRANCH_MEMBER over the categories of their
  bitsets; output "margin" (post_transform NONE) and "probability" (LOGISTIC); fed that fixture's
  rows (NaN, negative, fractional and unseen categories, values on thresholds) as float32.
- tree_ensemble_modes: seeded random trees over 6 features using every mode (LEQ, LT, GTE, GT,
  EQ, NEQ, MEMBER), missing values tracked to either side, single-leaf trees, 3 targets, in five
  TreeEnsemble nodes sharing the input: y0 SUM, y1 AVERAGE, y2 MIN, y3 MAX + SOFTMAX_ZERO, y4 SUM +
  SOFTMAX on y0's trees.

ONNX Runtime (1.32) does not apply the opset-5 post_transform as the operator's definition
numbers it: it takes 1 for LOGISTIC and 2 for SOFTMAX, and skips LOGISTIC for a single target
(microsoft/onnxruntime#26596). The expected "probability" and y4 are therefore the definition's
transforms (logistic, softmax) applied in float32 to ONNX Runtime's untransformed outputs
("margin", y0); every other output is ONNX Runtime's own.

Each NAME.onnx with NAME.json ({"inputs": …, "outputs": …}, the layout of the other foreign
fixtures) goes to Tests/VaneONNXTests/Fixtures/foreign/.

    pip install onnx onnxruntime numpy
    python3 scripts/onnx_tree_ensemble_fixtures.py
"""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "VaneONNXTests", "Fixtures", "foreign")
LIGHTGBM = os.path.join(ROOT, "Tests", "VaneModelsTests", "Fixtures", "lightgbm")


def tensor_json(a):
    """{"dtype", "shape", "data"}, NaN written "NaN" as `vane model run` reads it."""
    a = np.asarray(a, dtype=np.float32)
    data = ["NaN" if np.isnan(v) else float(v) for v in a.reshape(-1)]
    return {"dtype": "float32", "shape": list(a.shape), "data": data}


class Builder:
    """The nodes_* and leaf_* attributes of one TreeEnsemble, tree by tree."""

    def __init__(self):
        self.features, self.splits, self.modes, self.missing = [], [], [], []
        self.true_ids, self.true_leaf, self.false_ids, self.false_leaf = [], [], [], []
        self.leaf_targets, self.leaf_weights, self.roots, self.members = [], [], [], []

    def leaf(self, target, weight):
        self.leaf_targets.append(target)
        self.leaf_weights.append(weight)
        return ("leaf", len(self.leaf_weights) - 1)

    def node(self, feature, mode, split, missing_true, members=None):
        self.features.append(feature)
        self.modes.append(mode)
        self.splits.append(split)
        self.missing.append(1 if missing_true else 0)
        if members is not None:
            self.members += list(members) + [float("nan")]
        for ids in (self.true_ids, self.true_leaf, self.false_ids, self.false_leaf):
            ids.append(0)
        return len(self.features) - 1

    def link(self, node, yes, no):
        for (kind, index), ids, leafs in ((yes, self.true_ids, self.true_leaf), (no, self.false_ids, self.false_leaf)):
            ids[node] = index
            leafs[node] = 1 if kind == "leaf" else 0

    def op(self, inputs, outputs, n_targets, aggregate, post):
        attributes = dict(
            nodes_featureids=self.features, nodes_truenodeids=self.true_ids, nodes_trueleafs=self.true_leaf,
            nodes_falsenodeids=self.false_ids, nodes_falseleafs=self.false_leaf, nodes_missing_value_tracks_true=self.missing,
            nodes_modes=numpy_helper.from_array(np.array(self.modes, dtype=np.uint8), "nodes_modes"),
            nodes_splits=numpy_helper.from_array(np.array(self.splits, dtype=np.float32), "nodes_splits"),
            leaf_targetids=self.leaf_targets,
            leaf_weights=numpy_helper.from_array(np.array(self.leaf_weights, dtype=np.float32), "leaf_weights"),
            tree_roots=self.roots, n_targets=n_targets, aggregate_function=aggregate, post_transform=post)
        if self.members:
            attributes["membership_values"] = numpy_helper.from_array(np.array(self.members, dtype=np.float32), "membership_values")
        return helper.make_node("TreeEnsemble", inputs, outputs, domain="ai.onnx.ml", **attributes)


def lightgbm_trees(path):
    """The trees of a LightGBM text model: per tree its arrays (as the file names them)."""
    trees, current = [], None
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
        elif line == "end of trees":
            break
        elif current is not None and "=" in line:
            key, value = line.split("=", 1)
            current[key] = value.split(" ") if value else []
    return trees


def from_lightgbm(path):
    b = Builder()
    for tree in lightgbm_trees(path):
        leaves = int(tree["num_leaves"][0])
        values = [float(v) for v in tree["leaf_value"]]
        if leaves == 1:
            leaf = b.leaf(0, values[0])
            node = b.node(0, 0, 0.0, False)
            b.link(node, leaf, leaf)
            b.roots.append(node)
            continue
        features = [int(v) for v in tree["split_feature"]]
        thresholds = [float(v) for v in tree["threshold"]]
        decisions = [int(v) for v in tree["decision_type"]]
        lefts = [int(v) for v in tree["left_child"]]
        rights = [int(v) for v in tree["right_child"]]
        bounds = [int(v) for v in tree.get("cat_boundaries", [])]
        words = [int(v) for v in tree.get("cat_threshold", [])]
        first = len(b.features)
        for i in range(leaves - 1):
            if decisions[i] & 1:
                cat = int(thresholds[i])
                members = [32 * w + bit for w in range(bounds[cat + 1] - bounds[cat])
                           for bit in range(32) if words[bounds[cat] + w] >> bit & 1]
                b.node(features[i], 6, 0.0, False, members)
            else:
                b.node(features[i], 0, thresholds[i], bool(decisions[i] & 2))
        leaf_base = len(b.leaf_weights)
        for value in values:
            b.leaf(0, value)
        for i in range(leaves - 1):
            def ref(child):
                return ("leaf", leaf_base + ~child) if child < 0 else ("node", first + child)
            b.link(first + i, ref(lefts[i]), ref(rights[i]))
        b.roots.append(first)
    return b


def random_trees(rng, features, targets, count):
    b = Builder()
    for t in range(count):
        if t % 7 == 3:  # a single-leaf tree
            leaf = b.leaf(int(rng.integers(targets)), float(rng.normal()))
            node = b.node(0, 0, 0.0, False)
            b.link(node, leaf, leaf)
            b.roots.append(node)
            continue

        def grow(depth):
            if depth == 0 or rng.random() < 0.2:
                return b.leaf(int(rng.integers(targets)), float(np.round(rng.normal(), 3)))
            mode = int(rng.integers(7))
            feature = int(rng.integers(features))
            if mode == 6:
                node = b.node(feature, 6, 0.0, rng.random() < 0.5, sorted(set(int(v) for v in rng.integers(0, 5, size=3))))
            else:
                split = float(rng.integers(-4, 5)) / 2 if mode in (4, 5) else float(np.round(rng.normal(), 2))
                node = b.node(feature, mode, split, rng.random() < 0.5)
            b.link(node, grow(depth - 1), grow(depth - 1))
            return ("node", node)

        root = grow(4)
        if root[0] == "leaf":
            node = b.node(0, 1, 0.0, False)
            b.link(node, root, root)
            root = ("node", node)
        b.roots.append(root[1])
    return b


def save(name, graph, inputs, by_definition=None):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)],
                              producer_name="vane scripts/onnx_tree_ensemble_fixtures.py")
    model.ir_version = 10
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs)))
    for output, transform in (by_definition or {}).items():
        outputs[output] = transform(outputs).astype(np.float32)
    with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
        f.write(data)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"inputs": {k: tensor_json(v) for k, v in inputs.items()},
                   "outputs": {k: tensor_json(v) for k, v in outputs.items()}}, f, separators=(",", ":"))
        f.write("\n")
    print(name, {k: np.asarray(v).shape for k, v in outputs.items()}, len(data), "bytes")


def main():
    # The LightGBM categorical model.
    fixture = json.load(open(os.path.join(LIGHTGBM, "categorical.json")))["inputs"]["x"]
    x = np.array([np.nan if v == "NaN" else v for v in fixture["data"]], dtype=np.float32).reshape(fixture["shape"])
    b = from_lightgbm(os.path.join(LIGHTGBM, "categorical.txt"))
    nodes = [b.op(["x"], ["margin"], 1, 1, 0), b.op(["x"], ["probability"], 1, 1, 2)]
    graph = helper.make_graph(nodes, "lightgbm_categorical",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, x.shape[1]])],
                              [helper.make_tensor_value_info("margin", TensorProto.FLOAT, [None, 1]),
                               helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None, 1])])
    save("tree_ensemble_lightgbm_categorical", graph, {"x": x},
         by_definition={"probability": lambda out: 1 / (1 + np.exp(-out["margin"]))})

    # Every mode, four aggregations.
    rng = np.random.default_rng(5)
    rows = np.round(rng.normal(size=(96, 6)), 2).astype(np.float32)
    rows[rng.random(rows.shape) < 0.1] = np.nan
    rows[:, 2] = rng.integers(-1, 6, size=96)  # small integers: EQ, NEQ and MEMBER hit
    nodes, outputs = [], []
    for i, (aggregate, post) in enumerate(((1, 0), (0, 0), (2, 0), (3, 3))):
        b = random_trees(rng, 6, 3, 12)
        nodes.append(b.op(["x"], [f"y{i}"], 3, aggregate, post))
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [None, 3]))
        if i == 0:
            first = b
    nodes.append(first.op(["x"], ["y4"], 3, 1, 1))
    outputs.append(helper.make_tensor_value_info("y4", TensorProto.FLOAT, [None, 3]))

    def softmax(out):
        e = np.exp(out["y0"] - out["y0"].max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    graph = helper.make_graph(nodes, "modes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 6])], outputs)
    save("tree_ensemble_modes", graph, {"x": rows}, by_definition={"y4": softmax})


if __name__ == "__main__":
    main()
