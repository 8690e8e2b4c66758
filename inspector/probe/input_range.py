"""Which input range a model was trained on, read from the file itself (no TensorFlow).

The probe judges "collapsed" on this range first: a model that predicts one class on its own
[0,1] images must not be called healthy because its head wakes up on 0..255 noise, and a
healthy tabular model must not be blamed for saturating on raw 0..255. The parent computes
it from the static ``ModelGraph`` and passes it in the probe plan (``input_range``).

Evidence, strongest first: a Rescaling/Normalization layer in front of the first weighted
layer; a keras.applications model name (each family's ``preprocess_input`` convention); the
moving mean/variance of a BatchNormalization on the input or right after the first
Dense/Conv (solved back to the input's mean and spread); first-layer weights and biases
(biases that cancel a positive input mean, weights far too small for unit-scale inputs);
last, the input's kind (images usually arrive in [0,1], tabular features standardized).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from inspector.graph import LayerNode, ModelGraph
from inspector.probe.inputs import RANGE_LABELS
from inspector.rules.layer_facts import (
    AFFINE_CLASSES,
    BN_CLASSES,
    PASS_THROUGH,
    applied_activation,
    number,
    read_small,
)

# The probe's random ranges (inspector.probe.inputs.DISTRIBUTIONS) with their mean and std.
RANGES: dict[str, tuple[float, float, float, float]] = {   # name -> (low, high, mean, std)
    "uniform01": (0.0, 1.0, 0.5, 0.2887),
    "uniform0_255": (0.0, 255.0, 127.5, 73.61),
    "uniform_m1_1": (-1.0, 1.0, 0.0, 0.5774),
    "normal": (-3.0, 3.0, 0.0, 1.0),     # standard normal; low/high are +-3 std
}
LABELS = RANGE_LABELS
# Ranges a caller plausibly confuses with the model's own (the classic pixel-scaling
# mistakes); a model that collapses there is input-scale-sensitive. Standardized tabular
# data has no such sibling: raw 0..255 is not a plausible mistake for it.
CONFUSABLE: dict[str, tuple[str, ...]] = {
    "uniform01": ("uniform0_255",),
    "uniform_m1_1": ("uniform0_255",),
    "uniform0_255": ("uniform01",),
    "normal": (),
}
# Layers between the input and the first weighted layer that keep the input's scale.
_KEEP_SCALE = PASS_THROUGH | {"InputLayer", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
                              "Cropping1D", "Cropping2D", "Cropping3D", "Permute",
                              "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom",
                              "RandomCrop", "Resizing", "RepeatVector", "TimeDistributed"}
# keras.applications families by their preprocess_input convention ("caffe": BGR 0..255
# minus the ImageNet mean; "tf": [-1,1]; "torch": ImageNet-standardized; "raw": the model
# rescales 0..255 itself).
_APPLICATIONS: tuple[tuple[str, str], ...] = (
    (r"^(resnet(50|101|152)|vgg1[69])$", "caffe"),
    (r"^(resnet\d+v2|mobilenet(v2)?(_.*)?|inception_?(v3|resnet_?v2)|xception|nasnet.*)$", "tf"),
    (r"^densenet\d+$", "torch"),
    (r"^(efficientnet.*|convnext.*|regnet.*|mobilenetv3.*|resnetrs.*)$", "raw"),
)
_CONVENTION_RANGE = {"caffe": "uniform0_255", "tf": "uniform_m1_1", "torch": "normal",
                     "raw": "uniform0_255"}
_CONVENTION_TEXT = {
    "caffe": "its preprocess_input ('caffe') takes 0..255 pixels minus the ImageNet mean",
    "tf": "its preprocess_input ('tf') scales pixels to [-1,1]",
    "torch": "its preprocess_input ('torch') standardizes pixels with the ImageNet mean/std",
    "raw": "it rescales 0..255 pixels itself (no preprocess_input needed)",
}
# First-layer bias evidence: biases that cancel a positive input mean (b ~ -m * sum(w)) show
# as a clear negative correlation across units (unit-mean data: <= -0.5; zero-mean: > -0.35).
BIAS_CORR = -0.5
BIAS_MIN_UNITS = 8
# First-layer weights so small that unit-scale inputs barely move the units: the typical
# pre-activation spread on [0,1] is below this while 0..255 brings it to order 1.
TINY_SPREAD = 0.02


@dataclass
class InputRange:
    """The range the probe judges the model on first, and why."""

    name: str
    low: float
    high: float
    reason: str
    source: str          # rescaling | normalization | application | batchnorm | weights | default
    confidence: str      # high | medium | low
    affine: bool = False  # input -> output is affine: a constant offset is no collapse

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}


def _make(name: str, reason: str, source: str, confidence: str) -> InputRange:
    low, high = RANGES[name][:2] if name in RANGES else (0.0, 0.0)
    return InputRange(name, low, high, reason, source, confidence)


def nearest(mean: float, std: float) -> str:
    """The probe range closest to an input with this mean and spread (log-scale distance)."""
    def dist(name: str) -> float:
        _lo, _hi, m, s = RANGES[name]
        return abs(math.log(max(std, 1e-9) / s)) + abs(mean - m) / max(s, std, 1e-9)
    return min(RANGES, key=dist)


def infer_input_range(graph: ModelGraph) -> dict[str, Any]:
    """The plan's ``input_range`` entry (see InputRange.as_dict); never raises."""
    try:
        found = _infer(graph)
    except Exception as exc:   # a static guess must never stop the probe
        found = _make("uniform01", f"no inference ({type(exc).__name__}); [0,1] assumed",
                      "default", "low")
    if graph.root is not None:
        found.affine = _is_affine(graph)
    return found.as_dict()


def _infer(graph: ModelGraph) -> InputRange:
    specs = [t for t in graph.inputs if t.shape]
    if specs and all("int" in (t.dtype or "") for t in specs):
        return InputRange("token_ids", 0.0, 0.0, "integer inputs: token ids", "default", "high")
    front, first = _front(graph)
    for node in front:
        found = _from_preprocessing(node)
        if found is not None:
            return found
    found = _from_application(graph)
    if found is not None:
        return found
    if first is not None:
        found = _from_batchnorm(graph, first) or _from_weights(first)
        if found is not None:
            return found
    image = any(t.shape is not None and len(t.shape) == 4 and t.shape[-1] in (1, 3, 4)
                for t in specs)
    if image:
        return _make("uniform01", "image input without a Rescaling layer: pixels are "
                     "usually fed divided by 255", "default", "low")
    return _make("normal", "tabular/sequence features without a Normalization layer are "
                 "usually standardized", "default", "low")


def _front(graph: ModelGraph) -> tuple[list[LayerNode], LayerNode | None]:
    """The layers before the first weighted one (in config order), and that layer."""
    front: list[LayerNode] = []
    for node in graph.walk():
        if node.is_container:
            continue
        if node.class_name in AFFINE_CLASSES or node.class_name in BN_CLASSES:
            return front, node
        front.append(node)
        if node.class_name not in _KEEP_SCALE and node.class_name not in (
                "Rescaling", "Normalization") and node.weights:
            return front, None
    return front, None


def _from_preprocessing(node: LayerNode) -> InputRange | None:
    cfg = node.config
    if node.class_name == "Rescaling":
        scale, offset = number(cfg.get("scale")), number(cfg.get("offset")) or 0.0
        if scale is None or scale <= 0:
            return None
        # the layer maps [0, high] to about unit scale: the model expects inputs up to high
        high = 1.0 / scale
        name = "uniform0_255" if high > 20 else ("uniform01" if offset >= -0.1 else "uniform_m1_1")
        return _make(name, f"Rescaling layer `{node.name}` (scale {scale:g}, offset {offset:g}) "
                     f"takes inputs up to ~{high:g}", "rescaling", "high")
    if node.class_name == "Normalization":
        mean, var = read_small(node.weight("mean")), read_small(node.weight("variance"))
        if mean is None or var is None:
            mean = np.asarray(cfg.get("mean") or [], dtype="float64")
            var = np.asarray(cfg.get("variance") or [], dtype="float64")
        if not mean.size or not var.size or not np.isfinite(mean).all():
            return None
        if np.all(mean == 0.0) and np.all(var == 1.0):
            return None               # never adapted: says nothing about the data
        m, s = float(mean.mean()), float(np.sqrt(np.maximum(var, 0.0)).mean())
        return _make(nearest(m, s), f"Normalization layer `{node.name}` was adapted to inputs "
                     f"with mean {m:.3g}, std {s:.3g}", "normalization", "high")
    return None


def _from_application(graph: ModelGraph) -> InputRange | None:
    names = [graph.root.name if graph.root is not None else ""]
    names += [n.name for n in graph.walk() if n.is_container]
    for name in names:
        key = (name or "").lower()
        for pattern, convention in _APPLICATIONS:
            if re.match(pattern, key):
                return _make(_CONVENTION_RANGE[convention],
                             f"`{name}` is a keras.applications model: "
                             f"{_CONVENTION_TEXT[convention]}", "application", "medium")
    return None


def _kernel_bias(node: LayerNode) -> tuple[np.ndarray, np.ndarray] | None:
    """(kernel as (fan_in, units), bias) of an affine layer, or None."""
    kernel = read_small(node.weight("kernel"))
    if kernel is None or kernel.ndim < 2 or not np.isfinite(kernel).all():
        return None
    matrix = kernel.reshape(-1, kernel.shape[-1])
    bias = read_small(node.weight("bias"))
    if bias is None or bias.size != matrix.shape[1] or not np.isfinite(bias).all():
        bias = np.zeros(matrix.shape[1])
    return matrix, bias.reshape(-1)


def _from_batchnorm(graph: ModelGraph, first: LayerNode) -> InputRange | None:
    """BatchNormalization moving statistics on the input, or on the first Dense/Conv's output
    (solved back: mean_j = m * sum_i W_ij + b_j, var_j = s^2 * sum_i W_ij^2)."""
    if first.class_name in BN_CLASSES:
        bn, affine = first, None
    else:
        bn, affine = _next_bn(graph, first), first
    if bn is None:
        return None
    mean, var = read_small(bn.weight("moving_mean")), read_small(bn.weight("moving_variance"))
    if mean is None or var is None or not (np.isfinite(mean).all() and np.isfinite(var).all()):
        return None
    if np.all(mean == 0.0) and np.all(var == 1.0):
        return None                   # never updated: says nothing about the data
    if affine is None:
        m, s = float(mean.mean()), float(np.sqrt(np.maximum(var, 0.0)).mean())
        where = f"BatchNormalization `{bn.name}` on the input"
    else:
        kb = _kernel_bias(affine)
        if kb is None or kb[0].shape[1] != mean.size:
            return None
        matrix, bias = kb
        sums, squares = matrix.sum(axis=0), (matrix ** 2).sum(axis=0)
        if not np.any(sums) or not np.any(squares):
            return None
        m = float(np.dot(sums, mean - bias) / np.dot(sums, sums))
        s = float(np.sqrt(max(float(np.median(var / np.maximum(squares, 1e-12))), 0.0)))
        where = f"BatchNormalization `{bn.name}` after `{affine.name}`"
    return _make(nearest(m, s), f"{where}: moving statistics give input mean {m:.3g}, "
                 f"std {s:.3g}", "batchnorm", "medium")


def _next_bn(graph: ModelGraph, first: LayerNode) -> LayerNode | None:
    """The BatchNormalization right after ``first`` (config order, nothing weighted between)."""
    seen = False
    for node in graph.walk():
        if node is first:
            seen = True
            continue
        if not seen or node.is_container:
            continue
        if node.class_name in BN_CLASSES:
            return node
        if node.weights or node.class_name not in _KEEP_SCALE:
            return None
    return None


def _from_weights(first: LayerNode) -> InputRange | None:
    """First-layer evidence for trained weights: biases that cancel a positive input mean,
    or weights far too small for unit-scale inputs."""
    kb = _kernel_bias(first)
    if kb is None:
        return None
    matrix, bias = kb
    if not np.any(bias):
        return None                       # untrained (or bias-free): no evidence
    spread = float(np.median(np.sqrt((matrix ** 2).sum(axis=0)))) * RANGES["uniform01"][3]
    if 0 < spread < TINY_SPREAD:
        return _make("uniform0_255", f"first-layer weights of `{first.name}` are tiny "
                     f"(spread {spread:.2g} on [0,1] inputs): inputs are large, like 0..255",
                     "weights", "medium")
    sums = matrix.sum(axis=0)
    if bias.size < BIAS_MIN_UNITS or sums.std() == 0 or bias.std() == 0:
        return None
    corr = float(np.corrcoef(sums, bias)[0, 1])
    m = float(-np.cov(sums, bias)[0, 1] / sums.var(ddof=1))
    if corr <= BIAS_CORR and m > 0:
        name = "uniform0_255" if m > 20 else "uniform01"
        return _make(name, f"first-layer biases of `{first.name}` cancel a positive input "
                     f"mean (~{m:.2g}; correlation {corr:.2f} with the weight sums)",
                     "weights", "low")
    return None


_LINEAR = frozenset({"Flatten", "Reshape", "InputLayer", "Dropout", "Add", "Subtract",
                     "Concatenate", "Average", "Rescaling", "Normalization", "Permute",
                     "GlobalAveragePooling1D", "GlobalAveragePooling2D", "AveragePooling1D",
                     "AveragePooling2D", "Identity"})


def _is_affine(graph: ModelGraph) -> bool:
    """Whether every layer is linear (no activation, no max pooling, no gates): such a
    model's output follows its input however large its constant offset is."""
    layers = [n for n in graph.walk() if not n.is_container]
    if not layers:
        return False
    for node in layers:
        if node.class_name in BN_CLASSES:
            continue
        if node.class_name in AFFINE_CLASSES:
            if applied_activation(node) != "linear":
                return False
            continue
        if node.class_name not in _LINEAR:
            return False
    return True
