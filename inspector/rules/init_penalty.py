"""What a model's L1/L2 regularizers add to its loss at initialization, from the config alone.

A penalty ``l2 * sum(w**2)`` grows with the number of weights: at initialization it is
``l2 * n * E[w**2]``, and ``E[w**2]`` follows from the layer's initializer and kernel shape
(Glorot: ``2 / (fan_in + fan_out)``, He: ``2 / fan_in``, RandomUniform(a, b):
``(a*a + a*b + b*b) / 3``...). Used by ``regularization-extreme`` to judge a factor against
the width of the layer it is applied to. No weight value is read: shapes come from the
stored variables' metadata, initializers from the config.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from inspector.graph import LayerNode, ModelGraph, Shape
from inspector.rules.layer_facts import effectively_trainable, number, reported, short_name
from inspector.rules.registry import Hit, RuleContext

# regularizer key -> (variable it penalizes, initializer key of that variable, default init)
_TARGETS = {
    "kernel_regularizer": ("kernel", "kernel_initializer", "glorotuniform"),
    "bias_regularizer": ("bias", "bias_initializer", "zeros"),
    "recurrent_regularizer": ("recurrent_kernel", "recurrent_initializer", "orthogonal"),
    "depthwise_regularizer": ("depthwise_kernel", "depthwise_initializer", "glorotuniform"),
    "pointwise_regularizer": ("pointwise_kernel", "pointwise_initializer", "glorotuniform"),
    "embeddings_regularizer": ("embeddings", "embeddings_initializer", "randomuniform"),
    "gamma_regularizer": ("gamma", "gamma_initializer", "ones"),
    "beta_regularizer": ("beta", "beta_initializer", "zeros"),
}
# (scale, mode, distribution) of the named variance-scaling initializers.
_VARIANCE_SCALING = {
    "glorotuniform": (1.0, "fan_avg", "uniform"), "glorotnormal": (1.0, "fan_avg", "normal"),
    "heuniform": (2.0, "fan_in", "uniform"), "henormal": (2.0, "fan_in", "normal"),
    "lecununiform": (1.0, "fan_in", "uniform"), "lecunnormal": (1.0, "fan_in", "normal"),
}
# E|w| / sqrt(E[w**2]) for zero-mean uniform and normal values.
_ABS_RATIO = {"uniform": math.sqrt(3) / 2, "normal": math.sqrt(2 / math.pi)}
# Keras truncates its normal initializers at 2 standard deviations (variance x 0.774).
_TRUNCATED_VARIANCE = 0.7737


@dataclass
class Penalty:
    """One regularized variable's penalty at initialization."""

    layer: LayerNode
    key: str
    kind: str
    factor: float
    size: int
    value: float


def _fans(shape: Shape) -> tuple[int, int]:
    dims = [int(d or 0) for d in shape]
    if not dims:
        return 1, 1
    if len(dims) == 1:
        return dims[0], dims[0]
    receptive = math.prod(dims[:-2]) if len(dims) > 2 else 1
    return dims[-2] * receptive, dims[-1] * receptive


def _init_name(init: Any) -> tuple[str | None, dict[str, Any]]:
    if isinstance(init, str):
        return init.replace("_", "").lower(), {}
    if isinstance(init, dict) and isinstance(init.get("class_name"), str):
        cfg = init.get("config")
        return init["class_name"].replace("_", "").lower(), cfg if isinstance(cfg, dict) else {}
    return None, {}


def _folded_normal_mean(mean: float, std: float) -> float:
    """E|w| for w ~ N(mean, std**2)."""
    if std <= 0:
        return abs(mean)
    z = mean / (std * math.sqrt(2))
    return std * math.sqrt(2 / math.pi) * math.exp(-z * z) + mean * math.erf(z)


def moments(init: Any, shape: Shape, default: str) -> tuple[float, float] | None:
    """(E[w**2], E|w|) of values drawn by initializer ``init`` for ``shape``; None when the
    initializer is unknown (custom) or its parameters are not plain numbers."""
    name, cfg = _init_name(init) if init is not None else (default, {})
    if name is None:
        return None
    fan_in, fan_out = _fans(shape)
    if name in _VARIANCE_SCALING or name == "variancescaling":
        scale, mode, dist = _VARIANCE_SCALING.get(name, (
            number(cfg.get("scale", 1.0)), str(cfg.get("mode", "fan_in")),
            str(cfg.get("distribution", "truncated_normal"))))
        fan = {"fan_in": fan_in, "fan_out": fan_out}.get(mode, (fan_in + fan_out) / 2)
        if scale is None or fan <= 0:
            return None
        square = scale / fan
        return square, math.sqrt(square) * _ABS_RATIO["uniform" if dist == "uniform"
                                                      else "normal"]
    if name in ("randomuniform", "uniform"):
        a, b = number(cfg.get("minval", -0.05)), number(cfg.get("maxval", 0.05))
        if a is None or b is None:
            return None
        square = (a * a + a * b + b * b) / 3
        abs_mean = (a * abs(a) - b * abs(b)) / (2 * (a - b)) if a != b else abs(a)
        return square, abs_mean
    if name in ("randomnormal", "normal", "truncatednormal"):
        mean, std = number(cfg.get("mean", 0.0)), number(cfg.get("stddev", 0.05))
        if mean is None or std is None:
            return None
        var = std * std * (_TRUNCATED_VARIANCE if name == "truncatednormal" else 1.0)
        return mean * mean + var, _folded_normal_mean(mean, math.sqrt(var))
    if name in ("zeros", "zero"):
        return 0.0, 0.0
    if name in ("ones", "one", "constant"):
        value = 1.0 if name != "constant" else number(cfg.get("value", 0.0))
        return (value * value, abs(value)) if value is not None else None
    if name in ("orthogonal", "identity"):
        gain = number(cfg.get("gain", 1.0))
        rows, cols = math.prod(int(d or 0) for d in shape[:-1]), int(shape[-1] or 0)
        if gain is None or not rows or not cols:
            return None
        square = gain * gain * min(rows, cols) / (rows * cols)
        return square, math.sqrt(square) * _ABS_RATIO["normal"]
    return None


def layer_penalties(node: LayerNode) -> list[Penalty]:
    """The L1/L2 penalties the layer's regularizers add at initialization (variables whose
    shape is stored; activity regularizers depend on the data and are left out)."""
    shapes = {short_name(w): w.shape for w in node.weights}
    found = []
    for key, (var, init_key, default) in _TARGETS.items():
        reg = node.config.get(key)
        if not isinstance(reg, dict) or not isinstance(reg.get("config"), dict) or \
                var not in shapes:
            continue
        shape = shapes[var]
        got = moments(node.config.get(init_key), shape, default)
        if got is None:
            continue
        square, abs_mean = got
        size = math.prod(int(d or 0) for d in shape)
        for kind, per_weight in (("l2", square), ("l1", abs_mean)):
            factor = number(reg["config"].get(kind))
            if factor:
                found.append(Penalty(node, key, kind, factor, size, factor * size * per_weight))
    return found


# Summed initial penalty from which regularization-extreme warns: more than twice the
# cross-entropy of an untrained 10-class classifier (ln 10 = 2.3), 10-100x the loss of a
# trained one. Models with more outputs start from a larger loss (ln K for K classes), so the
# limit is twice that when it is higher: VGG's weight decay 5e-4 on two Dense(4096) layers
# adds ~5.6, well under 2 ln 1000 = 13.8 for its 1000 classes.
PENALTY_LIMIT = 5.0


def penalty_limit(graph: ModelGraph) -> float:
    """PENALTY_LIMIT, or twice the untrained cross-entropy of the widest output."""
    widths = [t.shape[-1] for t in graph.outputs
              if t.shape and isinstance(t.shape[-1], int) and t.shape[-1] > 1]
    return max([PENALTY_LIMIT] + [2 * math.log(w) for w in widths])


def penalty_hits(ctx: RuleContext) -> Iterator[Hit]:
    """One hit when the trainable layers' penalties at initialization add up to
    ``PENALTY_LIMIT`` or more, placed on the layer contributing most."""
    per_layer: dict[str, list[Penalty]] = {}
    for node in ctx.graph.walk():
        if not effectively_trainable(node):
            continue
        for p in layer_penalties(node):
            per_layer.setdefault(reported(node).path, []).append(p)
    total = sum(p.value for ps in per_layer.values() for p in ps)
    limit = penalty_limit(ctx.graph)
    if total < limit:
        return
    top = max((p for ps in per_layer.values() for p in ps), key=lambda p: p.value)
    where = reported(top.layer)
    message = (f"{where.path}: L1/L2 penalties add about {total:.3g} to the loss at "
               f"initialization over {len(per_layer)} layer(s) (>= {limit:.3g}): the "
               f"penalty outweighs the data loss; largest: {top.key} {top.kind} = "
               f"{top.factor:.3g} on {top.size} weights (~{top.value:.3g})")
    yield Hit(where, {
        "key": top.key, "kind": top.kind, "factor": top.factor, "limit": round(limit, 3),
        "initial_penalty": round(total, 4),
        "per_layer": {k: round(sum(p.value for p in ps), 4) for k, ps in per_layer.items()},
    }, message=message)
