"""Graph questions the config rules ask: what a model's outputs really compute (through
pass-through layers and nested models), which activation a layer applies (None when unknown,
so rules stay quiet on custom layers), which layer a wrapper or cell stands for.

Builds on ``layer_facts`` (edges, outputs, activation names); reads configs, call edges and
output shapes only, never weight values.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from inspector.graph import LayerNode, ModelGraph, Shape
from inspector.rules import layer_facts

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
    name = layer_facts.activation_name(value)
    name = _ALIASES.get(name, name) if name is not None else None
    return name if name in BUILTIN_ACTIVATIONS else None


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
    if cls in layer_facts.PASS_THROUGH:
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
    found = layer_facts.producers(node)
    if not found or len(found) != 1 or found[0].class_name == "InputLayer":
        return None
    src = found[0]
    if src.role == "model":
        ref = node.calls[0].inputs[0] if node.calls and node.calls[0].inputs else None
        return model_output(src, ref.tensor_index if ref is not None else 0)
    return src


def output_nodes(graph: ModelGraph) -> list[LayerNode]:
    """The layers producing the model's outputs, nested models resolved to their layers."""
    return list(layer_facts.output_nodes(graph))


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
    return node.class_name in layer_facts.PASS_THROUGH or (
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
