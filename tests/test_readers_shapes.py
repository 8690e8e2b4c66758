"""Static shape rules against values Keras computes (known by hand for these configs)."""

from __future__ import annotations

from typing import Any

import pytest

from inspector.graph import LayerNode
from inspector.readers.shapes import infer


def _node(cls: str, children: list[LayerNode] | None = None, **cfg: Any) -> LayerNode:
    return LayerNode(name=cls.lower(), path=cls.lower(), class_name=cls, config=cfg,
                     children=children or [])


@pytest.mark.parametrize(("cls", "cfg", "inp", "out"), [
    ("Dense", {"units": 7}, (None, 3, 5), (None, 3, 7)),
    ("Conv2D", {"filters": 8, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same"},
     (None, 15, 16, 3), (None, 8, 8, 8)),
    ("Conv2D", {"filters": 4, "kernel_size": [3, 3], "dilation_rate": [2, 2],
                "padding": "valid"}, (None, 10, 10, 1), (None, 6, 6, 4)),
    ("Conv2D", {"filters": 4, "kernel_size": 3, "padding": "valid",
                "data_format": "channels_first"}, (None, 2, 9, 9), (None, 4, 7, 7)),
    ("Conv1D", {"filters": 2, "kernel_size": [5], "padding": "causal", "strides": [2]},
     (None, 11, 3), (None, 6, 2)),
    ("Conv3D", {"filters": 2, "kernel_size": [2, 2, 2]}, (None, 4, 5, 6, 1), (None, 3, 4, 5, 2)),
    ("Conv2DTranspose", {"filters": 3, "kernel_size": [3, 3], "strides": [2, 2],
                         "padding": "same"}, (None, 4, 4, 1), (None, 8, 8, 3)),
    ("Conv2DTranspose", {"filters": 3, "kernel_size": [3, 3], "strides": [2, 2],
                         "padding": "valid"}, (None, 4, 4, 1), (None, 9, 9, 3)),
    ("DepthwiseConv2D", {"kernel_size": [3, 3], "depth_multiplier": 2},
     (None, 5, 5, 4), (None, 3, 3, 8)),
    ("MaxPooling2D", {"pool_size": [2, 2], "strides": None, "padding": "valid"},
     (None, 7, 7, 3), (None, 3, 3, 3)),
    ("AveragePooling1D", {"pool_size": [3], "strides": [1], "padding": "same"},
     (None, 7, 3), (None, 7, 3)),
    ("GlobalAveragePooling2D", {"keepdims": False}, (None, 7, 7, 3), (None, 3)),
    ("GlobalMaxPooling1D", {"keepdims": True}, (None, 7, 3), (None, 1, 3)),
    ("Flatten", {}, (None, 2, 3, 4), (None, 24)),
    ("Flatten", {}, (None, None, 4), (None, None)),
    ("Reshape", {"target_shape": [-1, 2]}, (None, 3, 4), (None, 6, 2)),
    ("Embedding", {"output_dim": 8}, (None, None), (None, None, 8)),
    ("LSTM", {"units": 5, "return_sequences": True}, (None, 9, 2), (None, 9, 5)),
    ("GRU", {"units": 5}, (None, 9, 2), (None, 5)),
    ("LSTM", {"units": 5, "return_state": True}, (None, 9, 2),
     [(None, 5), (None, 5), (None, 5)]),
    ("Softmax", {}, (None, 4), (None, 4)),
    ("Dropout", {"rate": 0.5}, (None, 4), (None, 4)),
    ("RepeatVector", {"n": 3}, (None, 4), (None, 3, 4)),
    ("Permute", {"dims": [2, 1]}, (None, 4, 5), (None, 5, 4)),
    ("Lambda", {}, (None, 4), None),
    ("MyCustomLayer", {}, (None, 4), None),
])
def test_single_input_rules(cls: str, cfg: dict[str, Any], inp: tuple[Any, ...],
                            out: Any) -> None:
    assert infer(_node(cls, **cfg), [inp]) == out


def test_merges() -> None:
    assert infer(_node("Concatenate", axis=-1), [(None, 3), (None, 4)]) == (None, 7)
    assert infer(_node("Concatenate", axis=1), [(None, 3, 2), (None, 4, 2)]) == (None, 7, 2)
    assert infer(_node("Add"), [(None, 3), (None, 3)]) == (None, 3)
    assert infer(_node("Multiply"), [(None, 1), (None, 3)]) == (None, 3)
    assert infer(_node("Concatenate", axis=-1), [(None, 3), None]) is None


def test_wrappers() -> None:
    dense = _node("Dense", units=6)
    assert infer(_node("TimeDistributed", [dense]), [(None, 10, 4)]) == (None, 10, 6)
    fwd = _node("GRU", units=4, return_sequences=True)
    bwd = _node("GRU", units=4, return_sequences=True)
    bi = _node("Bidirectional", [fwd, bwd], merge_mode="concat")
    assert infer(bi, [(None, 7, 3)]) == (None, 7, 8)
    bi.config["merge_mode"] = "sum"
    assert infer(bi, [(None, 7, 3)]) == (None, 7, 4)
    bi.config["merge_mode"] = None
    assert infer(bi, [(None, 7, 3)]) == [(None, 7, 4), (None, 7, 4)]
