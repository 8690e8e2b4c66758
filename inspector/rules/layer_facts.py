"""Graph questions the rules ask, kept apart so each rule stays a short statement of its
condition: which activation a layer applies (None when unknown, so rules stay quiet on custom
layers), what feeds a layer and what it feeds, what a model's outputs really compute (through
pass-through layers and nested models), which layer a wrapper or cell stands for, and a
layer's values.

Reads configs, call edges and output shapes; nothing here reads more than one tensor at a
time, and only tensors below ``SMALL_TENSOR`` elements are read whole (per-unit checks need
the values; everything else goes through streamed stats).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from inspector.graph import LayerNode, ModelGraph, Shape, WeightInfo

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


def output_nodes(graph: ModelGraph) -> list[LayerNode]:
    """The layers producing the model's outputs, nested models resolved to their layers."""
    found: list[LayerNode] = []
    for path in graph.output_layers:
        node = graph.find(path)
        if node is not None:
            found.extend(_resolve_output(node))
    return found


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


DROPOUT_CLASSES = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
    "GaussianDropout",
})
# tf.nn functions serialize with a _v2 suffix in Keras 2 configs.
_ALIASES = {"softmax_v2": "softmax", "log_softmax_v2": "log_softmax", "relu_v2": "relu",
            "none": "linear", "identity": "linear"}
SOFTMAX_LIKE = frozenset({"softmax", "log_softmax"})
PROBABILITY = frozenset({"softmax", "sigmoid", "hard_sigmoid"})


def number(value: Any) -> float | None:
    """A config value as float when it is a plain number (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


# Keras 2/3 built-in activation names; anything else (a custom function) is unknown, and
# rules must not guess what it computes.
BUILTIN_ACTIVATIONS = frozenset({
    "linear", "relu", "relu6", "sigmoid", "softmax", "log_softmax", "tanh", "elu", "selu",
    "softplus", "softsign", "swish", "silu", "gelu", "hard_sigmoid", "hard_silu", "hard_swish",
    "exponential", "leaky_relu", "mish", "celu", "glu", "hard_tanh", "log_sigmoid",
    "sparse_plus", "sparsemax", "squareplus", "tanh_shrink", "soft_shrink", "hard_shrink",
    "sparse_sigmoid", "threshold",
})


def activation_name(value: Any) -> str | None:
    """Normalized name of a built-in config ``activation`` (None in a config means linear);
    None for custom or unrecognized activations."""
    if value is None:
        return "linear"
    name = _spelled_activation(value)
    name = _ALIASES.get(name, name) if name is not None else None
    return name if name in BUILTIN_ACTIVATIONS else None


def _spelled_activation(value: Any) -> str | None:
    """The lower-case name a config spells: ``"relu"``, a Keras 3 function object, or None
    (not yet normalized: aliases and custom names come back as written)."""
    if isinstance(value, str):
        return value.rsplit(">", 1)[-1].rsplit(".", 1)[-1].lower()
    if isinstance(value, dict):
        cfg = value.get("config")
        if value.get("class_name") == "function" and isinstance(cfg, str):
            return _spelled_activation(cfg)
        if isinstance(cfg, dict) and isinstance(cfg.get("activation"), str):
            return _spelled_activation(cfg["activation"])
        if isinstance(value.get("class_name"), str):
            return str(value["class_name"]).lower()
    return None


def applied_activation(node: LayerNode) -> str | None:
    """The nonlinearity a layer applies last, ``linear`` for none, None when unknown."""
    cls = node.class_name
    cfg = node.config
    if cls == "Softmax":
        return "softmax"
    if cls == "ReLU":
        slope = number(cfg.get("negative_slope")) or 0.0
        threshold = number(cfg.get("threshold")) or 0.0
        if slope > 0 or threshold < 0:
            return "leaky_relu"
        return "relu6" if number(cfg.get("max_value")) == 6.0 else "relu"
    if cls == "ThresholdedReLU":
        return "relu"
    if cls in ("LeakyReLU", "PReLU", "ELU"):
        return cls.lower()
    if node.role == "wrapper" and node.children and cls != "Bidirectional":
        return applied_activation(node.children[0])
    if "activation" in cfg:
        return activation_name(cfg["activation"])
    if cls in PASS_THROUGH:
        return "linear"
    return None


def model_output(model: LayerNode, index: int = 0) -> LayerNode | None:
    """The layer producing a nested model's ``index``-th output, resolved through nesting."""
    outs = model.config.get("output_layers") or []
    if not isinstance(outs, list) or index >= len(outs) or not isinstance(outs[index], list):
        return None
    ref = outs[index]
    child = next((c for c in model.children if c.name == ref[0]), None)
    if child is not None and child.role == "model":
        return model_output(child, ref[2] if len(ref) > 2 and isinstance(ref[2], int) else 0)
    return child


def producer(node: LayerNode) -> LayerNode | None:
    """The single layer feeding ``node`` (resolved into nested models); None for several
    inputs, an input layer or an unknown edge."""
    found = producers(node)
    if not found or len(found) != 1 or found[0].class_name == "InputLayer":
        return None
    src = found[0]
    if src.role == "model":
        ref = node.calls[0].inputs[0] if node.calls and node.calls[0].inputs else None
        return model_output(src, ref.tensor_index if ref is not None else 0)
    return src


def final_activation(node: LayerNode) -> tuple[LayerNode, str | None]:
    """Walk back from an output through pass-through layers (Dropout, Flatten, linear
    Activation...) to the layer whose nonlinearity the output carries."""
    current = node
    for _ in range(64):
        act = applied_activation(current)
        if act != "linear" or not _is_passthrough(current):
            return current, act
        before = producer(current)
        if before is None:
            return current, act
        current = before
    return current, applied_activation(current)


def _is_passthrough(node: LayerNode) -> bool:
    return node.class_name in PASS_THROUGH or (
        node.class_name == "Activation" and applied_activation(node) == "linear")


def shape_of(node: LayerNode) -> Shape | None:
    """The layer's single output shape, or None for unknown / several outputs."""
    shape = node.output_shape
    return shape if isinstance(shape, tuple) else None


def reported(node: LayerNode) -> LayerNode:
    """The node a finding should name: a cell or a Bidirectional half stands for its layer."""
    current = node
    while current.parent is not None and (
            current.role == "cell" or current.parent.class_name == "Bidirectional"):
        current = current.parent
    return current


def effectively_trainable(node: LayerNode) -> bool:
    """A layer trains only when it and every enclosing model/wrapper are trainable."""
    current: LayerNode | None = node
    while current is not None:
        if not current.trainable:
            return False
        current = current.parent
    return True


def layers_with_weights(graph: ModelGraph) -> Iterator[LayerNode]:
    """Leaf layers that own variables (the ones freezing can affect)."""
    for node in graph.walk():
        if not node.children and node.weights:
            yield node


def compute_dtype(policy: str | None) -> str | None:
    """Compute dtype of a dtype policy name (``mixed_float16`` computes in float16)."""
    if policy is None:
        return None
    return policy.removeprefix("mixed_")
