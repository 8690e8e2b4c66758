"""Names of the variables Keras stores by index (``vars/0``, ``vars/1``...) in ``.keras`` files.

Keras 3 (and tf.keras 2.13+) write a layer's own variables in creation order, trainable
ones first. The order depends on the class and a few config switches (``use_bias``,
``center``/``scale``...), so the mapping is a table of small functions. ``None`` means
"unknown class or unexpected variable count": the caller then falls back to ``var_<i>``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Config = dict[str, Any]


def _bias(cfg: Config, names: list[str]) -> list[str]:
    return [*names, "bias"] if cfg.get("use_bias", True) else names


def _kernel_bias(cfg: Config) -> list[str]:
    return _bias(cfg, ["kernel"])


def _depthwise(cfg: Config, keras3: bool) -> list[str]:
    return _bias(cfg, ["kernel" if keras3 else "depthwise_kernel"])


def _separable(cfg: Config) -> list[str]:
    return _bias(cfg, ["depthwise_kernel", "pointwise_kernel"])


def _recurrent(cfg: Config) -> list[str]:
    return _bias(cfg, ["kernel", "recurrent_kernel"])


def _norm(cfg: Config, stats: list[str]) -> list[str]:
    names = []
    if cfg.get("scale", True):
        names.append("gamma")
    if cfg.get("center", True):
        names.append("beta")
    return names + stats


def _einsum(cfg: Config) -> list[str]:
    return ["kernel", "bias"] if cfg.get("bias_axes") else ["kernel"]


def _attention(cfg: Config) -> list[str]:
    names = ["scale"] if cfg.get("use_scale") else []
    if cfg.get("score_mode") == "concat":
        names.append("concat_score_weight")
    return names


_TABLE: dict[str, Callable[[Config, bool], list[str]]] = {
    "Dense": lambda c, k3: _kernel_bias(c),
    "EinsumDense": lambda c, k3: _einsum(c),
    "Embedding": lambda c, k3: ["embeddings"],
    "BatchNormalization": lambda c, k3: _norm(c, ["moving_mean", "moving_variance"]),
    "LayerNormalization": lambda c, k3: _norm(c, []),
    "GroupNormalization": lambda c, k3: _norm(c, []),
    "Normalization": lambda c, k3: ["mean", "variance", "count"],
    "LSTMCell": lambda c, k3: _recurrent(c),
    "GRUCell": lambda c, k3: _recurrent(c),
    "SimpleRNNCell": lambda c, k3: _recurrent(c),
    "ConvLSTMCell": lambda c, k3: _recurrent(c),
    "PReLU": lambda c, k3: ["alpha"],
    "Attention": lambda c, k3: _attention(c),
    "AdditiveAttention": lambda c, k3: ["scale"] if c.get("use_scale", True) else [],
}
for _conv in ("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
              "Conv3DTranspose", "Convolution1D", "Convolution2D", "Convolution3D",
              "Conv2DTranspose", "Deconvolution2D"):
    _TABLE[_conv] = lambda c, k3: _kernel_bias(c)
for _conv in ("DepthwiseConv1D", "DepthwiseConv2D"):
    _TABLE[_conv] = _depthwise
for _conv in ("SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D",
              "SeparableConvolution2D"):
    _TABLE[_conv] = lambda c, k3: _separable(c)

# Variables that Keras keeps out of training whatever the layer's trainable flag says.
NON_TRAINABLE: dict[str, frozenset[str]] = {
    "BatchNormalization": frozenset({"moving_mean", "moving_variance", "moving_stddev",
                                     "renorm_mean", "renorm_stddev", "renorm_mean_weight",
                                     "renorm_stddev_weight"}),
    "SyncBatchNormalization": frozenset({"moving_mean", "moving_variance"}),
    "Normalization": frozenset({"mean", "variance", "count"}),
}
ALWAYS_NON_TRAINABLE = frozenset({"seed_generator_state", "iterations"})


def known_class(class_name: str) -> bool:
    return class_name in _TABLE


def variable_names(class_name: str, config: Config, count: int, *,
                   keras3: bool = True) -> list[str] | None:
    """Names for ``count`` indexed variables of a ``class_name`` layer, or None if unknown."""
    fn = _TABLE.get(class_name)
    if fn is None:
        return None
    names = fn(config, keras3)
    return names if len(names) == count else None


def is_non_trainable(class_name: str, weight_name: str) -> bool:
    short = weight_name.rsplit("/", 1)[-1]
    return short in ALWAYS_NON_TRAINABLE or short in NON_TRAINABLE.get(class_name, frozenset())


# Sub-objects some layers keep under their own group in ``.keras`` files, and the scope Keras
# gives their variables (``multi_head_attention/query/kernel``).
SUBOBJECTS: dict[str, dict[str, str]] = {
    "MultiHeadAttention": {"query_dense": "query", "key_dense": "key", "value_dense": "value",
                           "output_dense": "attention_output"},
    "GroupQueryAttention": {"query_dense": "query", "key_dense": "key",
                            "value_dense": "value", "output_dense": "output_dense"},
}


def subobject_names(class_name: str, config: Config, key: str,
                    count: int) -> tuple[str, list[str]] | None:
    """(scope, variable names) for a known sub-object group of a built-in layer."""
    scope = SUBOBJECTS.get(class_name, {}).get(key.lstrip("_"))
    if scope is None:
        return None
    names = ["kernel", "bias"] if config.get("use_bias", True) else ["kernel"]
    return (scope, names) if len(names) == count else None
