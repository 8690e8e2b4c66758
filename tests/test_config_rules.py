"""Config and training rules on hand-built graphs: the corner cases no fixture file pins down
(schedules, Adadelta, channels_first, per-output losses, float32 after float16, wrappers)."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import chain, findings

from inspector.graph import CallNode, LayerNode, ModelGraph


def layer(name: str, cls: str, shape: tuple[int | None, ...] | None = None,
          policy: str | None = "float32", children: list[LayerNode] | None = None,
          role: str = "layer", kwargs: dict[str, Any] | None = None, **config: Any) -> LayerNode:
    node = LayerNode(name=name, path=name, class_name=cls, config=dict(config), role=role,
                     output_shape=shape, dtype_policy=policy, children=children or [])
    node.calls.append(CallNode([], dict(kwargs or {})))
    for child in node.children:
        child.parent = node
    return node


def training(loss: Any, lr: Any = 1e-3, optimizer: str = "Adam", **opt: Any) -> dict[str, Any]:
    return {"loss": loss, "metrics": None,
            "optimizer": {"class_name": optimizer, "config": {"learning_rate": lr, **opt},
                          "learning_rate": lr}}


def dense(name: str, units: int, activation: Any, **kw: Any) -> LayerNode:
    return layer(name, "Dense", (None, units), units=units, activation=activation, **kw)


@pytest.mark.parametrize(("lr", "optimizer", "severity"), [
    (1e-3, "Adam", None), (1.0, "Adam", "warning"), (1.0, "Adadelta", None),
    (1e-8, "SGD", "warning"), (0.0, "SGD", "error"),
    ({"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 5.0}}, "Adam",
     "warning"),
    ({"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.01}}, "Adam", None),
])
def test_learning_rate_extreme(lr: Any, optimizer: str, severity: str | None) -> None:
    g = chain(dense("out", 3, "softmax"), training=training("categorical_crossentropy", lr,
                                                           optimizer))
    assert [f.severity for f in findings(g, "learning-rate-extreme")] == (
        [severity] if severity else [])


@pytest.mark.parametrize(("loss", "activation", "units", "severity"), [
    ("categorical_crossentropy", "softmax", 3, None),
    ("categorical_crossentropy", None, 3, "error"),
    ("sparse_categorical_crossentropy", "relu", 3, "error"),
    ("categorical_crossentropy", "sigmoid", 1, "error"),
    ("categorical_crossentropy", "sigmoid", 3, "warning"),
    ("binary_crossentropy", "sigmoid", 1, None),
    ("binary_crossentropy", "softmax", 3, "warning"),
    ("binary_crossentropy", None, 1, "error"),
    ("mse", "softmax", 3, "warning"),
    ("mse", None, 1, None),
    ({"class_name": "BinaryCrossentropy", "config": {"from_logits": True}}, "sigmoid", 1,
     "error"),
    ({"class_name": "BinaryCrossentropy", "config": {"from_logits": True}}, None, 1, None),
    ({"class_name": "function", "config": "categorical_crossentropy"}, "softmax", 3, None),
    ({"class_name": "MyLoss", "config": {}}, None, 3, None),
    ("categorical_crossentropy", {"class_name": "function", "config": "my_softmax",
                                  "module": "builtins"}, 3, None),
])
def test_loss_activation_pairs(loss: Any, activation: Any, units: int,
                               severity: str | None) -> None:
    g = chain(dense("out", units, activation), training=training(loss))
    assert [f.severity for f in findings(g, "loss-activation-mismatch")] == (
        [severity] if severity else [])


def test_loss_per_output_by_name_and_by_position() -> None:
    layers = (dense("probs", 3, "softmax"), dense("reg", 1, None))
    by_name = {"probs": {"class_name": "SparseCategoricalCrossentropy",
                         "config": {"from_logits": True}}, "reg": "mse"}
    g = chain(*layers, training=training(by_name), outputs=["probs", "reg"])
    assert [f.layer for f in findings(g, "loss-activation-mismatch")] == ["model/probs"]
    g = chain(*layers, training=training(["mse", "categorical_crossentropy"]),
              outputs=["probs", "reg"])
    assert sorted(f.layer or "" for f in findings(g, "loss-activation-mismatch")) == \
        ["model/probs", "model/reg"]


def test_activation_found_through_passthrough_layers() -> None:
    g = chain(dense("out", 3, "softmax"), layer("drop", "Dropout", (None, 3), rate=0.2),
              layer("lin", "Activation", (None, 3), activation="linear"),
              training=training({"class_name": "CategoricalCrossentropy",
                                 "config": {"from_logits": True}}))
    (f,) = findings(g, "loss-activation-mismatch")
    assert f.layer == "model/out" and f.evidence["output"] == "model/lin"


def test_softmax_axes() -> None:
    internal = chain(layer("att", "Softmax", (None, 5, 1), axis=1),
                     layer("flat", "Flatten", (None, 5)), dense("out", 3, "softmax"))
    assert findings(internal, "softmax-wrong-axis") == []
    assert [f.layer for f in findings(internal, "softmax-single-unit")] == []
    output = chain(dense("logits", 4, None), layer("probs", "Softmax", (None, 5, 4), axis=1))
    assert [f.layer for f in findings(output, "softmax-wrong-axis")] == ["model/probs"]
    listed = chain(dense("logits", 4, None), layer("probs", "Softmax", (None, 4), axis=[0, 1]))
    assert len(findings(listed, "softmax-wrong-axis")) == 1
    cf = chain(layer("conv", "Conv2D", (None, 3, 8, 8), activation="softmax",
                     data_format="channels_first"), layer("flat", "Flatten", (None, 192)))
    assert [f.evidence["axis"] for f in findings(cf, "softmax-wrong-axis")] == [3]


def test_softmax_single_unit_inside_time_distributed() -> None:
    inner = layer("dense", "Dense", None, units=1, activation="softmax")
    td = layer("td", "TimeDistributed", (None, 5, 1), role="wrapper", children=[inner])
    assert [f.layer for f in findings(chain(td), "softmax-single-unit")] == ["model/td/dense"]


@pytest.mark.parametrize(("cls", "config", "expected"), [
    ("ReLU", {"max_value": 6.0}, ["relu6"]), ("ReLU", {"negative_slope": 0.1}, []),
    ("LeakyReLU", {}, []), ("Activation", {"activation": "softplus"}, []),
    ("Activation", {"activation": "relu"}, ["relu"]),
])
def test_relu_output_head(cls: str, config: dict[str, Any], expected: list[str]) -> None:
    g = chain(dense("out", 1, None), layer("act", cls, (None, 1), **config))
    assert [f.evidence["activation"] for f in findings(g, "relu-output-head")] == expected


def test_float16_output_after_float32_cast_is_still_flagged() -> None:
    g = chain(dense("probs", 3, "softmax", policy="mixed_float16"),
              layer("cast", "Activation", (None, 3), activation="linear"))
    assert [f.layer for f in findings(g, "float16-output")] == ["model/probs"]
    ok = chain(dense("logits", 3, None, policy="mixed_float16"),
               layer("probs", "Activation", (None, 3), activation="softmax"))
    assert findings(ok, "float16-output") == []
    bf16 = chain(dense("out", 1, None, policy="mixed_bfloat16"))
    assert [f.evidence["dtype"] for f in findings(bf16, "float16-output")] == ["bfloat16"]


def test_training_true_severity_follows_the_layer() -> None:
    g = chain(dense("fc", 3, "softmax", kwargs={"training": True}))
    assert [f.severity for f in findings(g, "training-arg-hardcoded")] == ["warning"]
    bn = layer("bn", "BatchNormalization", (None, 3))
    base = layer("base", "Sequential", (None, 3), role="model", children=[bn],
                 kwargs={"training": True})
    g = chain(base, dense("out", 3, "softmax"))
    assert [(f.layer, f.severity) for f in findings(g, "training-arg-hardcoded")] == \
        [("model/base", "error")]
    off = chain(layer("drop", "Dropout", (None, 3), rate=0.3, kwargs={"training": False}))
    assert findings(off, "training-arg-hardcoded") == []


def test_rnn_dropout_reported_once_per_layer() -> None:
    cell = layer("cell", "LSTMCell", None, role="cell", dropout=0.9, recurrent_dropout=0.96)
    fwd = layer("forward_lstm", "LSTM", (None, 4), children=[cell], dropout=0.9,
                recurrent_dropout=0.96)
    bwd_cell = layer("cell", "LSTMCell", None, role="cell", dropout=0.9, recurrent_dropout=0.96)
    bwd = layer("backward_lstm", "LSTM", (None, 4), children=[bwd_cell], dropout=0.9,
                recurrent_dropout=0.96)
    bi = layer("bi", "Bidirectional", (None, 8), role="wrapper", children=[fwd, bwd])
    found = findings(chain(bi, dense("out", 2, "softmax")), "dropout-rate-high")
    assert sorted((f.layer, f.evidence["key"], f.severity) for f in found) == [
        ("model/bi", "dropout", "warning"), ("model/bi", "recurrent_dropout", "error")]


def test_double_softmax_and_sigmoid_after_softmax() -> None:
    g = chain(dense("probs", 3, "softmax"), layer("drop", "Dropout", (None, 3), rate=0.1),
              layer("again", "Activation", (None, 3), activation="sigmoid"))
    assert [f.layer for f in findings(g, "double-softmax")] == ["model/again"]
    ok = chain(dense("logits", 3, None), layer("probs", "Softmax", (None, 3)))
    assert findings(ok, "double-softmax") == []


def test_freezing_census() -> None:
    def frozen_model(head_trainable: bool) -> ModelGraph:
        b1 = dense("b1", 4, "relu")
        b1.weights = []
        base = layer("base", "Sequential", (None, 4), role="model", children=[b1])
        base.trainable = False
        head = dense("head", 3, "softmax")
        head.trainable = head_trainable
        g = chain(base, head)
        from inspector.graph import WeightInfo

        for node in (b1, head):
            node.weights = [WeightInfo("kernel", (4, 4), "float32", "k")]
        return g

    assert len(findings(frozen_model(False), "all-layers-frozen")) == 1
    assert findings(frozen_model(False), "partially-frozen") == []
    (info,) = findings(frozen_model(True), "partially-frozen")
    assert info.evidence["frozen_roots"] == ["model/base"] and info.severity == "info"
    assert findings(frozen_model(True), "all-layers-frozen") == []


@pytest.mark.parametrize(("key", "value", "count"), [
    ("clipvalue", 0.0, 1), ("clipnorm", 0, 1), ("global_clipnorm", 0.0, 1),
    ("clipnorm", 1.0, 0), ("clipvalue", None, 0),
])
def test_gradient_clip_zero(key: str, value: Any, count: int) -> None:
    g = chain(dense("out", 3, "softmax"),
              training=training("categorical_crossentropy", **{key: value}))
    assert len(findings(g, "gradient-clip-zero")) == count


@pytest.mark.parametrize(("smoothing", "severity"), [(0.1, None), (0.6, "warning"),
                                                     (1.0, "error")])
def test_label_smoothing(smoothing: float, severity: str | None) -> None:
    loss = {"class_name": "BinaryCrossentropy", "config": {"label_smoothing": smoothing}}
    g = chain(dense("out", 1, "sigmoid"), training=training(loss))
    assert [f.severity for f in findings(g, "label-smoothing-high")] == (
        [severity] if severity else [])


def test_input_preprocessing_counts_a_batchnorm_on_the_input() -> None:
    """tempocnn's spectrogram CNNs normalize their input with a BatchNormalization: that is
    preprocessing inside the model, not "image input with no normalization". A BN further in
    is not."""
    spectrogram = (None, 40, 256, 1)
    g = chain(layer("BN0", "BatchNormalization", spectrogram), layer("conv", "Conv2D", None),
              dense("out", 3, "softmax"))
    (f,) = findings(g, "input-preprocessing")
    assert f.evidence["preprocessing"] == [
        {"layer": "model/BN0", "class_name": "BatchNormalization"}]
    assert "preprocessing inside the model: BatchNormalization" in f.message
    later = chain(layer("conv", "Conv2D", spectrogram), layer("bn", "BatchNormalization", None),
                  dense("out", 3, "softmax"))
    assert findings(later, "input-preprocessing") == []


def test_input_preprocessing_reports_the_raw_range() -> None:
    g = chain(layer("rescale", "Rescaling", (None, 8, 8, 3), scale=1 / 127.5, offset=-1.0),
              dense("out", 3, "softmax"))
    (f,) = findings(g, "input-preprocessing")
    assert f.evidence["preprocessing"][0]["expects_range"] == [0.0, 255.0]
