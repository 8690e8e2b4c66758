"""Small graph questions several rules ask: a layer's activation, what feeds it, its values.

Kept apart from the rules so each rule stays a short statement of its condition. Nothing here
reads more than one tensor at a time, and only tensors below ``SMALL_TENSOR`` elements are
read whole (per-unit checks need the values; everything else goes through streamed stats).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from inspector.graph import LayerNode, ModelGraph, WeightInfo

# Per-unit checks read whole tensors; above this size they are skipped (stats still apply).
SMALL_TENSOR = 4_000_000

BN_CLASSES = frozenset({"BatchNormalization", "SyncBatchNormalization",
                        "BatchNormalizationV1", "BatchNormalizationV2"})
NORMALIZATION_CLASSES = frozenset({"Normalization"})
# Layers that only reshape, route or regularize: they do not change which unit wins.
PASS_THROUGH = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
    "GaussianDropout", "GaussianNoise", "ActivityRegularization", "Flatten", "Reshape",
    "Identity", "Masking",
})
# Activations whose output is never negative (a unit's output >= 0 for every input).
NON_NEGATIVE = frozenset({"relu", "relu6", "sigmoid", "softmax", "exponential", "softplus",
                          "hard_sigmoid", "sparse_sigmoid"})
# Activations whose output stays in [-1, 1] (bounded features for the final-bias rule).
BOUNDED = frozenset({"sigmoid", "softmax", "tanh", "hard_sigmoid", "softsign", "hard_tanh",
                     "sparse_sigmoid"})
# ReLU-like: zero for every negative pre-activation, so a unit can be dead.
RELU_LIKE = frozenset({"relu", "relu6"})
# Layers computing an affine map of their input (kernel + bias) before their activation.
AFFINE_CLASSES = frozenset({
    "Dense", "EinsumDense", "Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D",
    "Convolution3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "Convolution2DTranspose", "Convolution3DTranspose", "SeparableConv1D", "SeparableConv2D",
    "SeparableConvolution1D", "SeparableConvolution2D", "DepthwiseConv1D", "DepthwiseConv2D",
    "LocallyConnected1D", "LocallyConnected2D",
})
# Layers whose only job is applying an activation function.
ACTIVATION_LAYERS = frozenset({"Activation", "Softmax", "ReLU", "LeakyReLU", "ELU",
                               "ThresholdedReLU", "PReLU"})


def short_name(weight: WeightInfo) -> str:
    """``dense/kernel:0`` -> ``kernel``: the variable's own name whatever the reader kept."""
    return weight.name.rsplit("/", 1)[-1].split(":", 1)[0]


def weights_by_name(node: LayerNode) -> dict[str, WeightInfo]:
    return {short_name(w): w for w in node.weights}


def activation_name(value: Any) -> str | None:
    """The activation a config names: ``"relu"``, a Keras 3 function object, or None."""
    if isinstance(value, str):
        return value.rsplit(">", 1)[-1].rsplit(".", 1)[-1].lower()
    if isinstance(value, dict):
        cfg = value.get("config")
        if value.get("class_name") == "function" and isinstance(cfg, str):
            return activation_name(cfg)
        if isinstance(cfg, dict) and isinstance(cfg.get("activation"), str):
            return activation_name(cfg["activation"])
        if isinstance(value.get("class_name"), str):
            return str(value["class_name"]).lower()
    return None


def siblings(node: LayerNode) -> dict[str, LayerNode]:
    parent = node.parent
    return {c.name: c for c in parent.children} if parent is not None else {}


def producers(node: LayerNode) -> list[LayerNode] | None:
    """The layers whose outputs feed ``node`` in its enclosing model, None when unknown.

    Sequential models keep no inbound nodes: the previous sibling feeds the next one.
    """
    parent = node.parent
    if parent is None or parent.role != "model":
        return None
    if not node.calls:
        if parent.class_name != "Sequential" and "input_layer" not in parent.config:
            return None
        kids = parent.children
        index = next((i for i, c in enumerate(kids) if c is node), None)
        if index is None:
            return None
        return [kids[index - 1]] if index > 0 else []
    if len(node.calls) != 1:
        return None
    by_name = siblings(node)
    found: list[LayerNode] = []
    for ref in node.calls[0].inputs:
        src = by_name.get(ref.layer)
        if src is None:
            return None
        found.append(src)
    return found


def consumers(node: LayerNode) -> list[LayerNode] | None:
    """The layers of the enclosing model that ``node``'s outputs feed, None when unknown.

    Mirrors ``producers``: in a Sequential model without inbound nodes the next sibling.
    """
    parent = node.parent
    if parent is None or parent.role != "model":
        return None
    kids = parent.children
    if not any(c.calls for c in kids):
        if parent.class_name != "Sequential":
            return None
        index = next((i for i, c in enumerate(kids) if c is node), None)
        return None if index is None else kids[index + 1:index + 2]
    return [c for c in kids
            if any(ref.layer == node.name for call in c.calls for ref in call.inputs)]


def output_nodes(graph: ModelGraph) -> Iterator[LayerNode]:
    """The model's output layers, descending into nested models that are outputs."""
    for path in graph.output_layers:
        node = graph.find(path)
        if node is not None:
            yield from _resolve_output(node)


def _resolve_output(node: LayerNode) -> Iterator[LayerNode]:
    if node.role != "model":
        yield node
        return
    kids = {c.name: c for c in node.children}
    names = [ref[0] for ref in node.config.get("output_layers") or []
             if isinstance(ref, list) and ref and ref[0] in kids]
    if names:
        for name in names:
            yield from _resolve_output(kids[name])
    elif node.children:
        yield from _resolve_output(node.children[-1])


def read_small(weight: WeightInfo | None) -> np.ndarray | None:
    """The whole tensor as float64 when it is small enough to read, else None."""
    if weight is None or weight.source is None or weight.size > SMALL_TENSOR:
        return None
    try:
        values = np.asarray(weight.source.read())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if values.dtype.kind not in "fiub":
        return None
    return values.astype(np.float64, copy=False)


def has_stored_weights(graph: ModelGraph) -> bool:
    """True when the file stores values for at least one layer (not architecture only)."""
    return any(node.weights for node in graph.walk())


def is_optimizer_weight(weight: WeightInfo) -> bool:
    """Optimizer slots (``optimizer_weights/...`` in h5, ``optimizer/vars/...`` in .keras)."""
    path = weight.storage_path.split(":", 1)[-1] if ".h5:" in weight.storage_path else (
        weight.storage_path)
    top = path.strip("/").split("/", 1)[0]
    return top in ("optimizer", "optimizer_weights")
