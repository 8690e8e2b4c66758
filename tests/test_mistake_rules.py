"""The common-mistake rules on hand-built graphs: interval bounds checked against sampled
inputs, initializer moments against sampled weights, the loss / learning-rate / penalty
thresholds at their edges, and the look-alikes the fixture files do not pin down. Healthy
fixture models must give none of these rules' warnings (not only no errors)."""

from __future__ import annotations

import glob
import itertools
import math
from typing import Any

import numpy as np
import pytest
from helpers import chain, findings
from test_weight_rules import layer

from inspector.graph import ModelGraph, TensorRef, TensorSpec
from inspector.options import Options
from inspector.readers.keras_config import normalize_training_config
from inspector.rules.bounds_rules import Box, _affine, _transfer
from inspector.rules.init_penalty import PENALTY_LIMIT, moments, penalty_limit
from inspector.rules.training_rules import (
    _metric_names,
    _mismatch,
    _one_hot_regression,
    parse_loss,
)
from inspector.run.pipeline import analyze_static

RNG = np.random.default_rng(3)
NEW_RULES = ("no-nonlinearity", "dropout-on-output", "recurrent-relu", "sigmoid-bottleneck",
             "relu-logits", "dead-units-by-bounds")
EXTENDED = ("loss-activation-mismatch", "learning-rate-extreme", "regularization-extreme")


def _with_input(graph: ModelGraph, shape: tuple[int | None, ...]) -> ModelGraph:
    graph.inputs = [TensorSpec("input_layer", shape, "float32")]
    return graph


def _box(lo: Any, hi: Any) -> Box:
    return Box(np.asarray(lo, float), np.asarray(hi, float), "test")


# --------------------------------------------------------------------------- interval bounds


def test_dense_bounds_contain_every_sampled_output_and_are_attained() -> None:
    kernel, bias = RNG.normal(size=(5, 7)), RNG.normal(size=7)
    node = layer("d", "Dense", {"kernel": kernel, "bias": bias}, units=7, activation="linear")
    box = _box(RNG.uniform(-2, 0, 5), RNG.uniform(0, 3, 5))
    found = _affine(node, box)
    assert found is not None
    x = RNG.uniform(box.lo, box.hi, size=(4000, 5))
    y = x @ kernel.astype("float32") + bias.astype("float32")
    assert (y >= found.box.lo - 1e-4).all() and (y <= found.box.hi + 1e-4).all()
    corner = np.where(kernel > 0, box.hi[:, None], box.lo[:, None])  # maximizing input, per unit
    attained = (corner * kernel.astype("float32")).sum(axis=0) + bias.astype("float32")
    np.testing.assert_allclose(attained, found.box.hi, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv1d_bounds_contain_sampled_outputs_with_padding(padding: str) -> None:
    kernel, bias = RNG.normal(size=(3, 2, 4)), RNG.normal(size=4)
    node = layer("c", "Conv1D", {"kernel": kernel, "bias": bias}, filters=4, padding=padding,
                 activation="linear")
    box = _box([0.5, -1.0], [2.0, 1.0])  # channel 0 never reaches 0: padding must widen it
    found = _affine(node, box)
    assert found is not None
    k = kernel.astype("float32")
    for _ in range(300):
        x = RNG.uniform(box.lo, box.hi, size=(6, 2))
        if padding == "same":
            x = np.pad(x, ((1, 1), (0, 0)))
        y = np.stack([np.einsum("tc,tco->o", x[i:i + 3], k) for i in range(len(x) - 2)]) + bias
        assert (y >= found.box.lo - 1e-4).all() and (y <= found.box.hi + 1e-4).all()


def test_transfer_maps_relu_and_batchnorm_ends() -> None:
    bn = layer("bn", "BatchNormalization", {"gamma": [2.0, -1.0], "beta": [0.5, 0.0],
                                            "moving_mean": [1.0, 0.0],
                                            "moving_variance": [4.0 - 1e-3, 1.0 - 1e-3]},
               axis=-1, epsilon=1e-3)
    out = _transfer(bn, _box([0.0, -1.0], [2.0, 3.0]))
    assert out is not None
    np.testing.assert_allclose(out.lo, [-0.5, -3.0], atol=1e-6)
    np.testing.assert_allclose(out.hi, [1.5, 1.0], atol=1e-6)
    relu6 = layer("r", "ReLU", max_value=6.0)
    out = _transfer(relu6, _box([-3.0], [9.0]))
    assert out is not None and out.lo[0] == 0.0 and out.hi[0] == 6.0
    assert _transfer(layer("s", "Activation", activation="swish"), _box([0.0], [1.0])) is None


def _dead_mlp(bias: float, rescale: bool, features: int = 16) -> ModelGraph:
    kernel = RNG.uniform(-0.3, 0.3, size=(features, 8))
    b = np.zeros(8)
    b[:4] = bias
    layers = [layer("scale", "Rescaling", scale=1 / 255, offset=0.0)] if rescale else []
    layers += [layer("hidden", "Dense", {"kernel": kernel, "bias": b}, units=8,
                     activation="relu"),
               layer("probs", "Dense", {"kernel": RNG.normal(size=(8, 3)), "bias": np.zeros(3)},
                     units=3, activation="softmax")]
    return _with_input(chain(*layers), (None, features))


def test_dead_units_by_bounds_uses_the_range_a_rescaling_implies() -> None:
    (hit,) = findings(_dead_mlp(-6.0, rescale=True), "dead-units-by-bounds")
    assert hit.evidence["dead"] == 4 and hit.severity == "warning"
    assert "[0, 255]" in hit.message
    # Without the Rescaling the features may be anything up to 1000: no proof, no finding.
    assert not findings(_dead_mlp(-6.0, rescale=False), "dead-units-by-bounds")


def test_dead_units_by_bounds_is_a_proof_on_sampled_inputs() -> None:
    graph = _dead_mlp(-6.0, rescale=True)
    hidden = graph.find("model/hidden")
    assert hidden is not None
    kernel, bias = (w.source.read() for w in hidden.weights if w.source)
    x = RNG.uniform(0, 1, size=(20000, kernel.shape[0]))
    fired = (x @ kernel + bias > 0).any(axis=0)
    (hit,) = findings(graph, "dead-units-by-bounds")
    assert not fired[hit.evidence["examples"]].any()


@pytest.mark.parametrize("where", ["input", "Reshape", "Flatten", "Normalization"])
def test_dead_units_by_bounds_never_sizes_an_array_from_a_crafted_width(where: str) -> None:
    """Widths come from the file's config: 2**40 features must not allocate 8 TiB (a crash)
    nor, at a few billion, fill the memory of the machine; the rule just has no proof."""
    huge = 1 << 40
    graph = _dead_mlp(-1e5, rescale=False)
    if where == "input":
        graph.inputs = [TensorSpec("input_layer", (None, huge), "float32")]
    else:
        wide = layer("wide", where, target_shape=[huge])
        wide.output_shape = (None, huge)
        graph.root.children.insert(1, wide)  # type: ignore[union-attr]
        wide.parent = graph.root
        wide.path = "model/wide"
        wide.calls[0].inputs = [TensorRef("input_layer")]
        graph.find("model/hidden").calls[0].inputs = [TensorRef("wide")]  # type: ignore
    found = findings(graph, "dead-units-by-bounds")  # fails on a crashed rule
    # Normalization's output is bounded whatever its width, so the proof still holds there
    assert bool(found) is (where == "Normalization")


def test_dead_units_by_bounds_severity_by_fraction() -> None:
    graph = _dead_mlp(-1e5, rescale=False)
    (hit,) = findings(graph, "dead-units-by-bounds")
    assert hit.severity == "warning"  # half the layer
    hidden = graph.find("model/hidden")
    assert hidden is not None
    bias = next(w for w in hidden.weights if w.name == "bias")
    bias.source.array[:] = -1e5  # type: ignore[union-attr]
    (hit,) = findings(graph, "dead-units-by-bounds")
    assert hit.severity == "error" and hit.evidence["dead"] == 8


def test_dead_units_by_bounds_leaves_zero_columns_to_dead_units() -> None:
    kernel = RNG.uniform(0.1, 0.3, size=(4, 3))
    kernel[:, 0] = 0.0
    dense = layer("hidden", "Dense", {"kernel": kernel, "bias": [-1.0, 0.0, 0.0]}, units=3,
                  activation="relu")
    graph = _with_input(chain(dense), (None, 4))
    assert findings(graph, "dead-units")
    assert not findings(graph, "dead-units-by-bounds")


# --------------------------------------------------------------------------- init penalty


@pytest.mark.parametrize(("init", "shape", "sample"), [
    ({"class_name": "GlorotUniform", "config": {}}, (30, 50),
     lambda s: RNG.uniform(-math.sqrt(6 / 80), math.sqrt(6 / 80), s)),
    ({"class_name": "HeNormal", "config": {}}, (3, 3, 8, 16),
     lambda s: RNG.normal(0, math.sqrt(2 / 72), s)),
    ({"class_name": "RandomUniform", "config": {"minval": -0.05, "maxval": 0.05}}, (40, 40),
     lambda s: RNG.uniform(-0.05, 0.05, s)),
    ({"class_name": "RandomNormal", "config": {"mean": 0.1, "stddev": 0.5}}, (40, 40),
     lambda s: RNG.normal(0.1, 0.5, s)),
    ({"class_name": "Orthogonal", "config": {"gain": 1.0}}, (20, 60),
     lambda s: np.linalg.qr(RNG.normal(size=(60, 20)))[0].T),
])
def test_initializer_moments_match_sampled_weights(init: dict[str, Any], shape: tuple[int, ...],
                                                    sample: Any) -> None:
    got = moments(init, shape, "glorotuniform")
    assert got is not None
    values = np.concatenate([np.ravel(sample(shape)) for _ in range(20)])
    assert got[0] == pytest.approx(float((values ** 2).mean()), rel=0.05)
    assert got[1] == pytest.approx(float(np.abs(values).mean()), rel=0.05)


def test_custom_initializer_is_not_judged() -> None:
    assert moments({"class_name": "MyInit", "config": {}}, (4, 4), "glorotuniform") is None


def _regularized_mlp(factor: float, widths: tuple[int, ...], frozen: bool = False
                     ) -> ModelGraph:
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        node = layer(f"d{i}", "Dense", {"kernel": np.zeros((a, b)), "bias": np.zeros(b)},
                     trainable=not frozen, units=b, activation="relu",
                     kernel_regularizer={"class_name": "L2", "config": {"l2": factor}})
        layers.append(node)
    return chain(*layers)


def test_width_penalty_threshold() -> None:
    # L2(0.01) on a 784-512-512-10 Glorot MLP adds about 11.5 at initialization.
    (hit,) = findings(_regularized_mlp(0.01, (784, 512, 512, 10)), "regularization-extreme")
    assert hit.evidence["initial_penalty"] == pytest.approx(11.5, rel=0.02)
    assert hit.layer == "model/d0" and "{" not in hit.message
    assert not findings(_regularized_mlp(1e-3, (784, 512, 512, 10)), "regularization-extreme")
    assert not findings(_regularized_mlp(0.01, (784, 512, 512, 10), frozen=True),
                        "regularization-extreme")
    assert PENALTY_LIMIT == 5.0


def test_penalty_limit_grows_with_the_number_of_classes() -> None:
    """VGG16's head (weight decay 5e-4 on two Dense(4096)) adds ~5.6: over the 10-class
    limit, but a 1000-class model starts from a cross-entropy of ln 1000 = 6.9."""
    for classes, reported in ((10, True), (1000, False)):
        graph = _regularized_mlp(5e-4, (25088, 4096, 4096, classes))
        graph.outputs = [TensorSpec("out", (None, classes), "float32")]
        assert penalty_limit(graph) == pytest.approx(max(5.0, 2 * math.log(classes)))
        assert bool(findings(graph, "regularization-extreme")) is reported, classes


def test_factor_above_one_is_reported_once_per_layer() -> None:
    hits = findings(_regularized_mlp(50.0, (64, 64)), "regularization-extreme")
    assert len(hits) == 1 and hits[0].evidence["factor"] == 50.0


# --------------------------------------------------------------------------- losses


@pytest.mark.parametrize(("loss", "act", "units", "severity"), [
    ("mae", "softmax", 3, "warning"), ("mean_absolute_error", "sigmoid", 1, "warning"),
    ("mape", "softmax", 3, "error"), ("MeanAbsolutePercentageError", "sigmoid", 1, "warning"),
    ("hinge", "sigmoid", 1, "warning"), ("categorical_hinge", "softmax", 3, "warning"),
    ("log_cosh", "softmax", 3, "warning"), ("Huber", "softmax", 4, "warning"),
    ("msle", "softmax", 3, "warning"),
    ("poisson", "softmax", 3, None), ("poisson", "sigmoid", 1, None),
    ("kld", "softmax", 3, None), ("mse", "sigmoid", 1, None), ("logcosh", "sigmoid", 1, None),
    ("mae", "linear", 1, None), ("hinge", "linear", 1, None), ("hinge", "tanh", 1, None),
])
def test_loss_activation_pairs(loss: str, act: str, units: int, severity: str | None) -> None:
    parsed = parse_loss(loss)
    assert parsed is not None
    found = _mismatch(parsed, act, units)
    assert (found[0] if found else None) == severity


def test_metric_names_cover_keras2_and_keras3_forms() -> None:
    k3 = [{"module": "keras.metrics", "class_name": "CategoricalAccuracy", "config": {}}]
    assert _metric_names(k3) == {"categoricalaccuracy"}
    assert _metric_names({"out": ["accuracy"], "aux": ["mae"]}) == {"accuracy", "mae"}
    assert _metric_names(None) == set()


@pytest.mark.parametrize(("metrics", "units", "act", "fires"), [
    (["accuracy"], 3, "linear", True), (["categorical_accuracy"], 10, "relu", True),
    (["accuracy"], 1, "linear", False),  # one output: may be a regressor with a stray metric
    (["mae"], 3, "linear", False), (["accuracy"], 3, "tanh", False),
])
def test_regression_loss_on_one_hot_targets(metrics: list[str], units: int, act: str,
                                           fires: bool) -> None:
    parsed = parse_loss("mse")
    assert parsed is not None
    assert (_one_hot_regression(parsed, act, units, _metric_names(metrics)) is not None) == fires


# --------------------------------------------------------------------------- learning rate


@pytest.mark.parametrize(("optimizer", "lr", "fires"), [
    ("Adam", 0.01, False), ("Adam", 0.1, True), ("Custom>Adam", 0.2, True),
    ("RMSprop", 0.05, False), ("Lion", 0.1, True), ("SGD", 0.5, False), ("SGD", 1.0, True),
    ("Adagrad", 0.5, False), ("Adadelta", 1.0, False), ("Adam", 1e-8, True),
])
def test_learning_rate_range_per_optimizer(optimizer: str, lr: float, fires: bool) -> None:
    training = normalize_training_config({
        "loss": "categorical_crossentropy",
        "optimizer_config": {"class_name": optimizer, "config": {"learning_rate": lr}}})
    graph = chain(layer("out", "Dense", units=3, activation="softmax"), training=training)
    assert bool(findings(graph, "learning-rate-extreme")) == fires


# --------------------------------------------------------------------------- architecture


def _dense(name: str, units: int, activation: str | None = None) -> Any:
    return layer(name, "Dense", units=units, activation=activation)


def test_no_nonlinearity_counts_stacked_layers_not_parallel_heads() -> None:
    assert findings(chain(_dense("a", 8), _dense("b", 3, "softmax")), "no-nonlinearity")
    root = chain(_dense("a", 1), _dense("b", 1), outputs=["a", "b"])
    for node in root.root.children if root.root else []:  # both heads read the input
        if node.calls:
            node.calls[0].inputs[0].layer = "input_layer"
    assert not findings(root, "no-nonlinearity")


@pytest.mark.parametrize("between", ["MaxPooling2D", "LayerNormalization", "MyLayer", "LSTM"])
def test_no_nonlinearity_quiet_on_any_possible_nonlinearity(between: str) -> None:
    graph = chain(_dense("a", 8), layer("x", between), _dense("b", 3, "softmax"))
    assert not findings(graph, "no-nonlinearity")


def test_linear_layers_are_looked_through() -> None:
    graph = chain(_dense("a", 8), layer("bn", "BatchNormalization"), layer("drop", "Dropout"),
                  layer("act", "Activation", activation="linear"), _dense("b", 3, "softmax"))
    (hit,) = findings(graph, "no-nonlinearity")
    assert hit.evidence["depth"] == 2


def test_dropout_on_output_ignores_dropout_after_a_relu_head() -> None:
    graph = chain(_dense("a", 1), layer("relu", "ReLU"), layer("drop", "Dropout", rate=0.1))
    assert not findings(graph, "dropout-on-output")
    assert findings(graph, "relu-output-head")


def test_relu_logits_quiet_with_a_dense_between() -> None:
    graph = chain(layer("conv", "Conv2D", filters=4, activation="relu"),
                  layer("gap", "GlobalAveragePooling2D"), _dense("probs", 3, "softmax"))
    assert not findings(graph, "relu-logits")


@pytest.mark.parametrize(("cls", "config", "fires"), [
    ("SimpleRNN", {"activation": "relu"}, True),
    ("SimpleRNN", {"activation": "relu",
                   "recurrent_initializer": {"class_name": "Identity", "config": {}}}, False),
    ("LSTM", {"activation": "tanh", "recurrent_activation": "sigmoid"}, False),
    ("LSTM", {"activation": "elu"}, True), ("GRU", {"activation": "relu6"}, False),
    ("LSTM", {"activation": {"class_name": "my_act", "config": {}}}, False),
])
def test_recurrent_relu_cases(cls: str, config: dict[str, Any], fires: bool) -> None:
    graph = chain(layer("rnn", cls, units=4, **config), _dense("probs", 2, "softmax"))
    assert bool(findings(graph, "recurrent-relu")) == fires


# --------------------------------------------------------------------------- healthy files


def _healthy_files() -> list[str]:
    return sorted(p for p in glob.glob("fixtures/models/*/*")
                  if p.endswith((".h5", ".keras")))


@pytest.mark.parametrize("path", _healthy_files())
def test_healthy_models_give_no_mistake_warnings(path: str) -> None:
    report = analyze_static(path, Options(probe=False))
    loud = [f"{f.rule}: {f.message}" for f in report.findings
            if f.rule in NEW_RULES + EXTENDED and f.severity != "info"]
    assert not loud
    assert not [e for e in report.errors if str(e.get("source", "")).startswith("rule:")]
