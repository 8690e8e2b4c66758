"""Weight rules on hand-built graphs: the edge cases fixture files do not pin down (optimizer
state, bias-only layers, BatchNormalization without gamma/beta, inputs of unknown sign...)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from helpers import chain, findings

from inspector.graph import CallNode, LayerNode, ModelGraph, WeightInfo


class Values:
    """In-memory WeightSource."""

    def __init__(self, array: Any) -> None:
        self.array = np.asarray(array, dtype="float32")

    def read(self) -> np.ndarray:
        return self.array

    def iter_chunks(self, max_elements: int) -> Iterator[np.ndarray]:
        flat = self.array.reshape(-1)
        for start in range(0, flat.size, max_elements):
            yield flat[start:start + max_elements]


def layer(name: str, cls: str, weights: dict[str, Any] | None = None,
          trainable: bool = True, **config: Any) -> LayerNode:
    node = LayerNode(name=name, path=name, class_name=cls, config=dict(config),
                     trainable=trainable)
    node.calls.append(CallNode([], {}))
    for wname, values in (weights or {}).items():
        arr = np.asarray(values, dtype="float32")
        node.weights.append(WeightInfo(wname, tuple(arr.shape), "float32",
                                       f"{name}/{wname}", Values(arr)))
    return node


RNG = np.random.default_rng(0)


def dense(name: str, units: int, fan_in: int = 4, activation: str = "relu",
          kernel: Any = None, bias: Any = None) -> LayerNode:
    k = RNG.normal(size=(fan_in, units)) if kernel is None else kernel
    b = np.zeros(units) if bias is None else bias
    return layer(name, "Dense", {"kernel": k, "bias": b}, units=units, activation=activation)


def bn(name: str = "bn", mean: Any = None, var: Any = None, gamma: Any = None,
       beta: Any = None, channels: int = 4, **config: Any) -> LayerNode:
    weights: dict[str, Any] = {}
    if gamma is not False:
        weights["gamma"] = np.ones(channels) if gamma is None else gamma
    if beta is not False:
        weights["beta"] = np.zeros(channels) if beta is None else beta
    if mean is not False:
        weights["moving_mean"] = np.zeros(channels) if mean is None else mean
    if var is not False:
        weights["moving_variance"] = np.ones(channels) if var is None else var
    return layer(name, "BatchNormalization", weights, **config)


# --------------------------------------------------------------------------- nan-weights


def test_nan_only_in_optimizer_state_is_ignored() -> None:
    slot = WeightInfo("m", (2,), "float32", "optimizer_weights/Adam/m/dense/kernel:0",
                      Values([np.nan, 1.0]))
    graph = chain(dense("d", 3), loose=[slot])
    assert findings(graph, "nan-weights") == []


def test_nan_and_inf_counted_per_layer() -> None:
    k = RNG.normal(size=(4, 3))
    k[0, 0] = np.nan
    graph = chain(dense("d", 3, kernel=k, bias=[np.inf, 0.0, -np.inf]))
    (f,) = findings(graph, "nan-weights")
    assert f.layer == "model/d" and f.severity == "error"
    assert f.evidence["per_weight"] == {"kernel": {"nan": 1, "inf": 0, "size": 12},
                                        "bias": {"nan": 0, "inf": 2, "size": 3}}


def test_nan_in_loose_weights_of_weights_only_file() -> None:
    w = WeightInfo("kernel", (2,), "float32", "dense/kernel", Values([np.nan, 1.0]))
    graph = ModelGraph(path="w.h5", format="keras-weights", root=None, has_architecture=False,
                       loose_weights=[w])
    (f,) = findings(graph, "nan-weights")
    assert f.layer == "dense"


# --------------------------------------------------------------------------- zero-weights


def test_bias_only_and_zero_bias_layers_are_not_zero_weights() -> None:
    bias_only = layer("bias", "BiasAdd", {"bias": np.zeros(4)})
    graph = chain(dense("d", 4, bias=np.zeros(4)), bias_only)
    assert findings(graph, "zero-weights") == []


@pytest.mark.parametrize(("value", "what"), [(0.0, "all zeros"), (0.25, "constant")])
def test_zero_or_constant_kernel(value: float, what: str) -> None:
    graph = chain(dense("d", 4, kernel=np.full((4, 4), value)))
    (f,) = findings(graph, "zero-weights")
    assert what in f.message and f.evidence["weight"] == "kernel"


def test_single_value_kernel_and_nan_kernel_are_not_constant() -> None:
    k = np.zeros((4, 4))
    k[0, 0] = np.nan
    graph = chain(dense("one", 1, fan_in=1, kernel=[[0.0]]), dense("nan", 4, kernel=k))
    assert findings(graph, "zero-weights") == []


def test_zero_embedding_inside_a_nested_model() -> None:
    emb = layer("emb", "Embedding", {"embeddings": np.zeros((10, 3))})
    inner = LayerNode(name="base", path="base", class_name="Sequential", config={},
                      role="model", children=[emb])
    emb.parent = inner
    inner.calls.append(CallNode([], {}))
    graph = chain(inner, dense("head", 2, fan_in=3, activation="softmax"))
    emb.path = "model/base/emb"
    (f,) = findings(graph, "zero-weights")
    assert f.layer == "model/base/emb"


# --------------------------------------------------------------------------- batch norm


def test_bn_stats_missing_only_when_the_file_has_weights() -> None:
    stripped = bn(mean=False, var=False)
    (f,) = findings(chain(dense("d", 4), stripped), "bn-stats-missing")
    assert "moving_mean and moving_variance" in f.message
    no_weights = layer("bn", "BatchNormalization")
    bare = chain(layer("d", "Dense", units=4), no_weights)
    assert findings(bare, "bn-stats-missing") == []


def test_bn_without_gamma_beta_is_not_missing_stats() -> None:
    plain = bn(gamma=False, beta=False, center=False, scale=False)
    assert findings(chain(dense("d", 4), plain), "bn-stats-missing") == []


def test_bn_at_init_needs_evidence_of_training() -> None:
    untrained = chain(dense("d", 4), bn())
    assert findings(untrained, "bn-stats-uninitialized") == []
    trained_gamma = chain(dense("d", 4), bn(gamma=[1.1, 0.9, 1.0, 1.2]))
    (f,) = findings(trained_gamma, "bn-stats-uninitialized")
    assert f.evidence["gamma_range"] == pytest.approx([0.9, 1.2])


def test_bn_center_scale_false_uses_other_bn_layers_as_evidence() -> None:
    moved = bn("bn1", mean=[0.3, -0.1, 0.2, 0.0], var=[2.0, 0.5, 1.5, 0.8])
    frozen = bn("bn2", gamma=False, beta=False, center=False, scale=False)
    (f,) = findings(chain(moved, frozen), "bn-stats-uninitialized")
    assert f.layer == "model/bn2" and f.evidence["other_bn_trained"] is True
    alone = chain(bn("bn2", gamma=False, beta=False, center=False, scale=False))
    assert findings(alone, "bn-stats-uninitialized") == []


@pytest.mark.parametrize("var", [[1.0, 0.0, 1.0, 1.0], [1.0, -2.0, 1.0, 1.0]])
def test_bn_non_positive_variance(var: list[float]) -> None:
    (f,) = findings(chain(bn(mean=[0.1] * 4, var=var)), "bn-stats-uninitialized")
    assert "<= 0" in f.message


def test_bn_barely_moved_needs_the_step_count() -> None:
    near_init = bn(mean=[0.01, -0.02, 0.0, 0.03], var=[0.99, 1.05, 1.2, 0.985],
                   momentum=0.999)
    assert findings(chain(near_init), "bn-stats-barely-moved") == []
    (f,) = findings(chain(near_init, iterations=20), "bn-stats-barely-moved")
    assert f.evidence["fraction"] == pytest.approx(1 - 0.999 ** 20, abs=1e-4)


def test_bn_barely_moved_quiet_when_steps_suffice_or_stats_look_pretrained() -> None:
    near_init = dict(mean=[0.01, -0.02, 0.0, 0.03], var=[0.99, 1.05, 1.2, 0.985])
    enough = chain(bn(momentum=0.9, **near_init), iterations=20)
    assert findings(enough, "bn-stats-barely-moved") == []
    pretrained = chain(bn(mean=[0.5, -1.0, 2.0, 0.1], var=[0.05, 3.0, 0.4, 7.0],
                          momentum=0.99), iterations=10)
    assert findings(pretrained, "bn-stats-barely-moved") == []
    frozen = chain(bn(momentum=0.999, trainable=False, **near_init), iterations=20)
    assert findings(frozen, "bn-stats-barely-moved") == []


# --------------------------------------------------------------------------- dead units


def test_dead_units_zero_column_needs_non_positive_bias() -> None:
    k = RNG.normal(size=(4, 4))
    k[:, 0] = 0.0
    k[:, 1] = 0.0
    graph = chain(dense("d", 4, kernel=k, bias=[-0.1, 0.5, 0.0, 0.0]))
    (f,) = findings(graph, "dead-units")
    assert f.evidence["dead"] == 1 and f.evidence["examples"] == [0]
    assert f.severity == "warning"


def test_dead_units_negative_columns_only_count_after_a_relu() -> None:
    k = np.abs(RNG.normal(size=(4, 4)))
    k[:, 2] = -np.abs(k[:, 2])
    bias = [0.0, 0.0, -0.5, 0.0]
    after_input = chain(dense("d", 4, kernel=k, bias=bias))
    assert findings(after_input, "dead-units") == []
    after_relu = chain(dense("first", 4), layer("drop", "Dropout", rate=0.1),
                       dense("d", 4, kernel=k, bias=bias))
    (f,) = findings(after_relu, "dead-units")
    assert f.evidence["input_non_negative"] is True and f.evidence["examples"] == [2]
    linear = chain(dense("first", 4, activation="linear"), dense("d", 4, kernel=k, bias=bias))
    assert findings(linear, "dead-units") == []


def test_all_units_dead_is_an_error_and_non_relu_is_ignored() -> None:
    k = -np.abs(RNG.normal(size=(4, 3)))
    graph = chain(dense("first", 4), dense("d", 3, kernel=k, bias=[-1.0, -1.0, 0.0]))
    (f,) = findings(graph, "dead-units")
    assert f.severity == "error"
    tanh = chain(dense("first", 4), dense("d", 3, kernel=k, bias=[-1.0] * 3,
                                          activation="tanh"))
    assert findings(tanh, "dead-units") == []


# --------------------------------------------------------------------------- normalization


def test_normalization_states() -> None:
    def norm(**kw: Any) -> LayerNode:
        weights = {"mean": kw.pop("mean", np.zeros(3)), "variance": kw.pop("var", np.ones(3)),
                   "count": kw.pop("count", 0.0)}
        return layer("norm", "Normalization", weights, **kw)

    (f,) = findings(chain(norm(), dense("d", 3, fan_in=3)), "normalization-not-adapted")
    assert f.severity == "warning"
    adapted = norm(mean=[1.0, 2.0, 3.0], var=[4.0, 1.0, 9.0], count=100.0)
    assert findings(chain(adapted), "normalization-not-adapted") == []
    from_config = layer("norm", "Normalization", {"mean": np.zeros(1), "variance": np.ones(1)},
                        mean=[0.0], variance=[1.0])
    assert findings(chain(from_config), "normalization-not-adapted") == []
    missing = layer("norm", "Normalization")
    (f,) = findings(chain(missing, dense("d", 3, fan_in=3)), "normalization-not-adapted")
    assert f.severity == "error"


# --------------------------------------------------------------------------- final bias


def test_final_bias_dominates_only_on_classifier_heads() -> None:
    k = RNG.normal(scale=0.1, size=(4, 3))
    bias = [30.0, 0.0, -1.0]
    (f,) = findings(chain(dense("out", 3, kernel=k, bias=bias, activation="softmax")),
                    "final-bias-dominates")
    assert f.evidence["top_class"] == 0 and f.layer == "model/out"
    regression = chain(dense("out", 3, kernel=k, bias=bias, activation="linear"))
    assert findings(regression, "final-bias-dominates") == []
    balanced = chain(dense("out", 3, kernel=k * 10, bias=[0.1, 0.0, -0.1],
                           activation="softmax"))
    assert findings(balanced, "final-bias-dominates") == []


def test_final_bias_through_a_separate_softmax_layer() -> None:
    k = RNG.normal(scale=0.1, size=(4, 3))
    graph = chain(dense("logits", 3, kernel=k, bias=[0.0, 0.0, 25.0], activation="linear"),
                  layer("probs", "Softmax", axis=-1))
    (f,) = findings(graph, "final-bias-dominates")
    assert f.layer == "model/logits" and f.evidence["top_class"] == 2


def test_final_bias_uses_the_l1_bound_after_tanh() -> None:
    k = np.full((4, 2), 0.5)
    k[:, 1] = -0.5
    # gap 3.5 < l1 reach 4.0: class 1 can still win for bounded features.
    near = chain(dense("h", 4, activation="tanh"),
                 dense("out", 2, kernel=k, bias=[3.5, 0.0], activation="softmax"))
    assert findings(near, "final-bias-dominates") == []
    far = chain(dense("h", 4, activation="tanh"),
                dense("out", 2, kernel=k, bias=[4.5, 0.0], activation="softmax"))
    (f,) = findings(far, "final-bias-dominates")
    assert f.evidence["bound"].startswith("l1")


# --------------------------------------------------------------------------- magnitude


def test_weight_magnitude_ignores_moving_statistics() -> None:
    raw_pixels = bn(mean=[120.0] * 4, var=[5000.0, 6000.0, 4000.0, 20000.0],
                    gamma=[1.1, 0.9, 1.0, 1.0])
    assert findings(chain(raw_pixels), "weight-magnitude-extreme") == []
    (f,) = findings(chain(dense("d", 4, kernel=np.full((4, 4), 2e4) * RNG.normal(size=(4, 4)))),
                    "weight-magnitude-extreme")
    assert f.evidence["weight"] == "kernel"
