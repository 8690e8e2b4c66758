"""The static cost estimate that sizes the probe's checks: deterministic, from saved shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.cost import macs_per_sample
from inspector.graph import LayerNode, ModelGraph, WeightInfo
from inspector.probe.measure import BIG_MACS_PER_SAMPLE, Sizes
from inspector.readers import open_model

MODELS = Path(__file__).resolve().parent.parent / "fixtures" / "models"


def _graph(*layers: LayerNode) -> ModelGraph:
    root = LayerNode("m", "model", "Functional", {}, role="model", children=list(layers))
    return ModelGraph("x.keras", "keras-zip", root)


def _layer(name: str, cls: str, out: tuple[int | None, ...], *shapes: tuple[int, ...]) -> LayerNode:
    weights = [WeightInfo(f"w{i}", s, "float32", f"{name}/w{i}") for i, s in enumerate(shapes)]
    return LayerNode(name, f"model/{name}", cls, {}, weights=weights, output_shape=out)


def test_conv_counts_every_output_position_and_dense_once() -> None:
    conv = _layer("conv", "Conv2D", (None, 10, 10, 8), (3, 3, 4, 8), (8,))
    dense = _layer("fc", "Dense", (None, 5), (800, 5), (5,))
    assert macs_per_sample(_graph(conv, dense)) == 3 * 3 * 4 * 8 * 100 + 800 * 5


def test_embedding_is_a_lookup_not_a_matrix_product() -> None:
    emb = _layer("emb", "Embedding", (None, 20, 16), (50000, 16))
    assert macs_per_sample(_graph(emb)) == 20 * 16


def test_rnn_cells_count_once_per_time_step() -> None:
    """A cell's matrices run at every step of the RNN's input (shakkala's 315-step BiGRU was
    estimated 315x too cheap and got checks that outran the probe timeout)."""
    cell = _layer("cell", "LSTMCell", None, (16, 32), (8, 32), (32,))
    cell.role = "cell"
    lstm = LayerNode("lstm", "model/lstm", "LSTM", {}, children=[cell],
                     input_shape=(None, 315, 16), output_shape=(None, 8))
    cell.parent = lstm
    assert macs_per_sample(_graph(lstm)) == (16 * 32 + 8 * 32) * 315
    lstm.input_shape = (None, None, 16)  # unknown length: once, as for a Conv's None axes
    assert macs_per_sample(_graph(lstm)) == 16 * 32 + 8 * 32


def test_weights_only_files_count_each_matrix_once() -> None:
    graph = ModelGraph("w.h5", "h5-weights", None, has_architecture=False, loose_weights=[
        WeightInfo("kernel", (64, 32), "float32", "a"), WeightInfo("bias", (32,), "float32", "b")])
    assert macs_per_sample(graph) == 64 * 32


@pytest.mark.parametrize("family", ["cnn_bn", "transfer", "mlp", "rnn", "multi_io"])
def test_same_estimate_for_keras2_and_keras3_files(family: str) -> None:
    k2, k3 = open_model(MODELS / family / "k2.h5"), open_model(MODELS / family / "k3.keras")
    assert macs_per_sample(k2) == macs_per_sample(k3) > 0


def test_sizes_depend_on_the_estimate_alone() -> None:
    """The fixture models are far below the threshold and get the full checks; a
    ResNet50-sized estimate gets the big-model ones; an unknown cost gets the full checks."""
    small = max(macs_per_sample(open_model(p)) for p in MODELS.glob("*/k3.keras"))
    assert small < BIG_MACS_PER_SAMPLE / 100
    assert Sizes.for_cost(small) == Sizes() == Sizes.for_cost(None)
    big = Sizes.for_cost(3.9e9)
    assert big.layer_chunk is not None and big.check < Sizes().check
    assert Sizes.for_cost(small, "big") == big
    assert Sizes.for_cost(3.9e9, {"check": 5}).check == 5
