"""Interval bounds through the first layers of a model: a static proof that ReLU units can
never fire for any input in the range the model expects.

Each feature map channel carries one interval [lo, hi] valid at every position; Dense, Conv
and BatchNormalization map intervals exactly (per output unit: positive weights take the
input's upper end, negative ones its lower end), monotone activations map the ends. Anything
else stops the analysis, so every claim is a proof for the assumed input range, never a
guess. The work is capped: the chain from the model input, at most ``MAX_AFFINE`` weighted
layers deep, kernels up to ``MAX_KERNEL`` values, read through the lazy weight source.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from inspector.graph import LayerNode, ModelGraph, TensorSpec
from inspector.rules.config_rules import rescaling_input_range
from inspector.rules.layer_facts import (
    BN_CLASSES,
    PASS_THROUGH,
    RELU_LIKE,
    applied_activation,
    number,
    producers,
    read_small,
    shape_of,
    weights_by_name,
)
from inspector.rules.registry import Hit, RuleContext, register
from inspector.rules.weight_rules import DEAD_UNIT_CLASSES, input_non_negative

# Assumed raw input ranges when the model does not say (no Rescaling at its input). Images:
# the hull of the usual pixel conventions ([0, 1], [-1, 1], [0, 255], ImageNet-standardized
# about [-2.1, 2.6], Caffe mean-subtracted [-124, 152]). Feature vectors: |x| <= 1000, a
# hundred times more than standardized or min-max scaled features ever reach. A unit dead
# on these boxes is dead on every smaller one.
IMAGE_RANGE = (-128.0, 255.0)
VECTOR_BOUND = 1000.0
MAX_AFFINE = 4
# Trained ReLU networks commonly keep some dead units: below this fraction of a layer the
# finding is information; from it, a warning (most of the layer's capacity is gone, the
# mark of a diverged run); every unit dead is an error (the layer outputs zeros).
DEAD_WARN_FRACTION = 0.5
MAX_KERNEL = 1 << 20
# Widest box modelled: a wider one could never meet a kernel under MAX_KERNEL, and the widths
# come from the file's config, so a crafted shape must not size an allocation.
MAX_WIDTH = MAX_KERNEL
MAX_CHAIN = 64
_CONV = frozenset({"Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D",
                   "Convolution3D"})
_IDENTITY = (PASS_THROUGH - {"Flatten", "Reshape", "Masking"}) | frozenset({
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
    "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D",
})
_PADDING = frozenset({"ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"})
_RESHAPING = frozenset({"Reshape", "Permute", "RepeatVector", "Flatten"})
_ACTIVATIONS = frozenset({"Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"})


@dataclass
class Box:
    """Per-channel bounds (last axis), valid at every other position of the tensor."""

    lo: np.ndarray
    hi: np.ndarray
    origin: str
    affine: int = 0

    def with_bounds(self, lo: np.ndarray, hi: np.ndarray, affine: int | None = None) -> Box:
        return Box(lo, hi, self.origin, self.affine if affine is None else affine)


def _hard_sigmoid(x: np.ndarray) -> np.ndarray:
    # Keras 3 (x/6 + 0.5) and Keras 2 (0.2x + 0.5) differ; both are monotone, callers take
    # the wider of the two.
    return np.clip(x / 6 + 0.5, 0, 1)


_MONOTONE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "sigmoid": lambda x: 0.5 * (1 + np.tanh(x / 2)),
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x: 1.0507009873554805 * np.where(
        x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0))),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
}


def _apply(fn: Callable[[np.ndarray], np.ndarray], box: Box) -> Box:
    return box.with_bounds(fn(box.lo), fn(box.hi))


def _activate(node: LayerNode, box: Box) -> Box | None:
    """Bounds after the node's activation; None for an activation that is not monotone."""
    cfg = node.config
    if node.class_name == "Softmax":
        return box.with_bounds(np.zeros_like(box.lo), np.ones_like(box.hi))
    if node.class_name == "ReLU":
        slope = number(cfg.get("negative_slope")) or 0.0
        threshold = number(cfg.get("threshold")) or 0.0
        cap = number(cfg.get("max_value"))
        if slope < 0:
            return None

        def relu(x: np.ndarray) -> np.ndarray:
            y = np.where(x >= threshold, x, slope * (x - threshold))
            return np.minimum(y, cap) if cap is not None else y
        return _apply(relu, box)
    if node.class_name in ("LeakyReLU", "ELU"):
        alpha = number(cfg.get("negative_slope", cfg.get("alpha")))
        if alpha is None or alpha < 0:
            return None
        if node.class_name == "LeakyReLU":
            return _apply(lambda x: np.where(x > 0, x, alpha * x), box)
        return _apply(lambda x: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))), box)
    act = applied_activation(node)
    if act == "hard_sigmoid":
        k2 = box.with_bounds(np.clip(0.2 * box.lo + 0.5, 0, 1), np.clip(0.2 * box.hi + 0.5, 0, 1))
        k3 = _apply(_hard_sigmoid, box)
        return box.with_bounds(np.minimum(k2.lo, k3.lo), np.maximum(k2.hi, k3.hi))
    if act == "softmax":
        return box.with_bounds(np.zeros_like(box.lo), np.ones_like(box.hi))
    fn = _MONOTONE.get(act or "")
    return _apply(fn, box) if fn is not None else None


@dataclass
class Affine:
    """A layer's pre-activation bounds with the (fan_in, units) matrix and bias behind them."""

    box: Box
    matrix: np.ndarray
    bias: np.ndarray


def _affine(node: LayerNode, box: Box) -> Affine | None:
    """Pre-activation bounds of a Dense or (channels_last, ungrouped) Conv layer."""
    if box.affine >= MAX_AFFINE:
        return None
    cfg = node.config
    if cfg.get("data_format") == "channels_first" or (number(cfg.get("groups")) or 1) != 1:
        return None
    w = weights_by_name(node)
    kernel_w = w.get("kernel")
    if kernel_w is None or kernel_w.size > MAX_KERNEL:
        return None
    kernel = read_small(kernel_w)
    if kernel is None or kernel.ndim < 2 or kernel.shape[-2] != box.lo.size:
        return None
    units = kernel.shape[-1]
    if cfg.get("use_bias", True) is False or "bias" not in w:
        bias = np.zeros(units)
    else:
        values = read_small(w.get("bias"))
        if values is None or values.size != units:
            return None
        bias = values.reshape(-1)
    if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
        return None
    taps = kernel.reshape(-1, kernel.shape[-2], units)  # (positions, in, out)
    pos, neg = np.maximum(taps, 0), np.minimum(taps, 0)
    tap_hi = np.einsum("tco,c->to", pos, box.hi) + np.einsum("tco,c->to", neg, box.lo)
    tap_lo = np.einsum("tco,c->to", pos, box.lo) + np.einsum("tco,c->to", neg, box.hi)
    if node.class_name in _CONV and str(cfg.get("padding", "valid")).lower() != "valid":
        # Taps that fall on the zero padding contribute 0 instead.
        tap_hi, tap_lo = np.maximum(tap_hi, 0), np.minimum(tap_lo, 0)
    pre = box.with_bounds(tap_lo.sum(axis=0) + bias, tap_hi.sum(axis=0) + bias, box.affine + 1)
    return Affine(pre, kernel.reshape(-1, units), bias)


def _batch_norm(node: LayerNode, box: Box) -> Box | None:
    cfg = node.config
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    shape = shape_of(node)
    if not isinstance(axis, int) or (axis != -1 and (shape is None or axis != len(shape) - 1)):
        return None
    w = weights_by_name(node)
    values = {k: read_small(w.get(k)) for k in ("gamma", "beta", "moving_mean",
                                                   "moving_variance")}
    mean, var = values["moving_mean"], values["moving_variance"]
    if mean is None or var is None or mean.size != box.lo.size:
        return None
    gamma = values["gamma"] if values["gamma"] is not None else np.ones_like(mean)
    beta = values["beta"] if values["beta"] is not None else np.zeros_like(mean)
    eps = number(cfg.get("epsilon")) or 1e-3
    if not all(np.isfinite(v).all() for v in (gamma, beta, mean, var)) or (var + eps <= 0).any():
        return None
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
    a, b = box.lo * scale + shift, box.hi * scale + shift
    return box.with_bounds(np.minimum(a, b), np.maximum(a, b))


def _width(last: object) -> int | None:
    """A box width taken from a saved shape, or None when it is unknown or beyond MAX_WIDTH."""
    return last if isinstance(last, int) and 0 < last <= MAX_WIDTH else None


def _channels(node: LayerNode) -> int | None:
    shape = shape_of(node)
    return _width(shape[-1] if shape else None)


def _pre_activation(node: LayerNode, box: Box) -> Box | None:
    """Bounds of what the node computes before its activation; None when not modelled."""
    cls = node.class_name
    if cls in _IDENTITY or cls in _ACTIVATIONS:
        return box
    if cls in _PADDING:
        return box.with_bounds(np.minimum(box.lo, 0), np.maximum(box.hi, 0))
    if cls == "Flatten" and node.config.get("data_format") != "channels_first":
        out = _channels(node)
        if out is None or out % box.lo.size:
            return None
        reps = out // box.lo.size
        return box.with_bounds(np.tile(box.lo, reps), np.tile(box.hi, reps))
    if cls in _RESHAPING:
        out = _channels(node)
        if out is None:
            return None
        return box.with_bounds(np.full(out, box.lo.min()), np.full(out, box.hi.max()))
    if cls == "Rescaling":
        scale, offset = number(node.config.get("scale")), number(node.config.get("offset", 0.0))
        if scale is None or offset is None:
            return None
        a, b = box.lo * scale + offset, box.hi * scale + offset
        return box.with_bounds(np.minimum(a, b), np.maximum(a, b))
    if cls == "Normalization":
        out = _channels(node) or box.lo.size
        return box.with_bounds(np.full(out, -VECTOR_BOUND), np.full(out, VECTOR_BOUND))
    if cls in BN_CLASSES:
        return _batch_norm(node, box)
    if cls in DEAD_UNIT_CLASSES:
        found = _affine(node, box)
        return found.box if found is not None else None
    return None


def _transfer(node: LayerNode, box: Box) -> Box | None:
    pre = _pre_activation(node, box)
    if pre is None:
        return None
    if node.class_name in _ACTIVATIONS or node.class_name in DEAD_UNIT_CLASSES:
        return _activate(node, pre)
    return pre


class _Bounds:
    """Bounds after each layer of the root model's input chains, computed once per layer."""

    def __init__(self, graph: ModelGraph) -> None:
        self.graph = graph
        self.after: dict[int, Box | None] = {}

    def _start(self, first: LayerNode, spec: TensorSpec | None) -> Box | None:
        if spec is None or spec.shape is None or len(spec.shape) < 2:
            return None
        channels = _width(spec.shape[-1])
        if channels is None or not (spec.dtype or "float32").startswith(("float", "bfloat")):
            return None
        implied = rescaling_input_range(first) if first.class_name == "Rescaling" else None
        if implied is not None:
            lo, hi = implied
            origin = f"raw inputs in [{lo:g}, {hi:g}] (implied by {first.path})"
        elif len(spec.shape) >= 4:
            lo, hi = IMAGE_RANGE
            origin = f"image inputs assumed in [{lo:g}, {hi:g}]"
        else:
            lo, hi = -VECTOR_BOUND, VECTOR_BOUND
            origin = f"features assumed in [{lo:g}, {hi:g}]"
        return Box(np.full(channels, lo), np.full(channels, hi), origin)

    def _spec(self, name: str | None) -> TensorSpec | None:
        inputs = self.graph.inputs
        for spec in inputs:
            if name is not None and spec.name == name:
                return spec
        return inputs[0] if len(inputs) == 1 else None

    def _input_ref(self, node: LayerNode) -> TensorSpec | None:
        """The model input a layer is called on directly (Keras 3 Sequential configs name
        the input tensor, not an InputLayer sibling)."""
        if len(node.calls) != 1 or len(node.calls[0].inputs) != 1:
            return None
        name = node.calls[0].inputs[0].layer
        root = self.graph.root
        if root is None or any(c.name == name for c in root.children):
            return None
        return next((s for s in self.graph.inputs if s.name == name), None)

    def _chain(self, node: LayerNode) -> tuple[list[LayerNode], TensorSpec | None] | None:
        """Layers from the model input to ``node`` (a single-input chain in the root model)."""
        chain, current = [node], node
        for _ in range(MAX_CHAIN):
            if current.parent is not self.graph.root or current.role != "layer":
                return None
            direct = self._input_ref(current)
            if direct is not None:
                return chain[::-1], direct
            srcs = producers(current)
            if srcs is None or len(srcs) > 1:
                return None
            if not srcs:
                return chain[::-1], self._spec(None)
            src = srcs[0]
            if src.class_name == "InputLayer":
                return chain[::-1], self._spec(src.name)
            chain.append(src)
            current = src
        return None

    def before(self, node: LayerNode) -> Box | None:
        """Bounds of the tensor entering ``node``."""
        found = self._chain(node)
        if found is None:
            return None
        chain, spec = found
        box = self._start(chain[0], spec)
        for layer in chain[:-1]:
            if box is None:
                return None
            key = id(layer)
            if key not in self.after:
                self.after[key] = _transfer(layer, box)
            box = self.after[key]
        return box


def _known_dead(node: LayerNode, found: Affine) -> np.ndarray:
    """Units ``dead-units`` already reports (zero column, or no positive weight on an input
    it proves non-negative, with bias <= 0): not repeated here."""
    no_positive = (found.matrix <= 0).all(axis=0) & (found.bias <= 0)
    zero = ~found.matrix.any(axis=0) & (found.bias <= 0)
    return no_positive if input_non_negative(node) else zero


@register(
    "KIN075", "dead-units-by-bounds", "warning",
    "{layer}: {dead} of {units} ReLU units can never fire: their largest possible "
    "pre-activation is <= 0 for {assumption}",
    "Check the bias values (a huge negative bias is a corrupted or diverged layer), lower the "
    "learning rate and retrain; check the inputs are scaled as in training.",
)
def dead_units_by_bounds(ctx: RuleContext) -> Iterator[Hit]:
    """ReLU units proven dead by interval bounds over the input range the model expects.

    Why: a ReLU unit outputs ``max(0, z)``; if the largest value its pre-activation ``z`` can
    take over every admissible input is <= 0, it outputs 0 and passes no gradient for every
    input: it is dead, as surely as a unit with an all-zero kernel. ``dead-units`` only sees
    those exact zero / no-positive-weight cases; this rule carries bounds from the model input
    through the first layers (Dense, Conv, BatchNormalization, pooling, monotone activations)
    and finds units killed by a large negative bias or by weights that cannot overcome it,
    e.g. ``Dense(64, activation="relu")`` whose biases diverged to -1e4 on [0, 1] inputs
    (``weight-magnitude-extreme`` only says the bias is big; this says what it does).

    Input range: the raw range a leading ``Rescaling`` implies (as ``input-preprocessing``
    reports it); otherwise images are assumed in [-128, 255] and feature vectors in
    [-1000, 1000], hulls wide enough to contain every usual scaling, so a unit reported dead
    is dead for any of them. Only single-input chains from the model input are analysed, at
    most 4 weighted layers deep with kernels up to 2**20 values; anything not modelled
    (other layers, custom code, nested models) ends the analysis without a finding. Units
    ``dead-units`` already reports are not repeated.

    Severity: trained ReLU networks commonly keep a few dead units, so fewer than half of a
    layer's units is information; from half of them it is a warning (most of the layer's
    capacity is gone, the mark of a diverged run or a bad conversion); every unit dead is an
    error: the layer outputs zeros and everything after it sees a constant.

    Fix: look for the cause (a diverged run, a bad weight conversion), lower the learning
    rate, use He initialization or LeakyReLU, and retrain.

    Example: ``Dense(64, activation="relu")`` with every bias at -1e4 after a loss spike.
    """
    bounds = _Bounds(ctx.graph)
    for node in ctx.graph.walk():
        if node.parent is not ctx.graph.root or applied_activation(node) not in RELU_LIKE:
            continue
        threshold = 0.0
        known = None
        if node.class_name in DEAD_UNIT_CLASSES:
            entering = bounds.before(node)
            found = _affine(node, entering) if entering is not None else None
            if found is None:
                continue
            pre, known = found.box, _known_dead(node, found)
        elif node.class_name in ("Activation", "ReLU"):
            if node.class_name == "ReLU":
                if (number(node.config.get("negative_slope")) or 0.0) != 0.0:
                    continue
                threshold = number(node.config.get("threshold")) or 0.0
            pre = bounds.before(node)
            if pre is None:
                continue
        else:
            continue
        dead = pre.hi <= threshold
        if known is not None:
            dead &= ~known
        count = int(dead.sum())
        if not count:
            continue
        worst = float(pre.hi[dead].max())
        fraction = count / dead.size
        severity = "error" if count == dead.size else (
            None if fraction >= DEAD_WARN_FRACTION else "info")
        yield Hit(node, {
            "dead": count, "units": int(dead.size), "fraction": round(fraction, 4),
            "assumption": pre.origin, "examples": [int(i) for i in np.flatnonzero(dead)[:10]],
            "max_upper_bound": worst if math.isfinite(worst) else None,
        }, severity)
