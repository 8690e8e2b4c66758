"""Static output-shape rules for the common Keras layers.

A rule gets the layer node and the shapes of its call inputs (batch dimension included) and
returns the output shape, a list of shapes for multi-output layers, or None when the shape
cannot be known without running the model. Nothing is guessed: an unknown class is None.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from inspector.graph import LayerNode, Shape

Out = Shape | list[Shape] | None
Rule = Callable[[LayerNode, list[Shape | None]], Out]
# Output shapes of a nested model given its input shapes (graph_facts.propagate): models are
# graphs, not layer rules, so the caller that walks graphs supplies it.
ModelFn = Callable[[LayerNode, list[Shape | None]], Out]
Inner = Callable[[LayerNode, list[Shape | None]], Out]
WrapperRule = Callable[[LayerNode, list[Shape | None], Inner], Out]

_RULES: dict[str, Rule] = {}
_WRAPPERS: dict[str, WrapperRule] = {}

PRESERVING = frozenset({
    "Activation", "Softmax", "ReLU", "LeakyReLU", "ELU", "PReLU", "ThresholdedReLU",
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "BatchNormalization", "SyncBatchNormalization",
    "LayerNormalization", "GroupNormalization", "UnitNormalization", "Normalization",
    "Rescaling", "Masking", "ActivityRegularization", "Identity", "RandomFlip",
    "RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast", "RandomBrightness",
    "LayerScale",
})
MERGE_ELEMENTWISE = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})
RNN_STATES = {"LSTM": 2, "GRU": 1, "SimpleRNN": 1, "CuDNNLSTM": 2, "CuDNNGRU": 1}


def rule(*names: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for n in names:
            _RULES[n] = fn
        return fn
    return register


def wrapper_rule(*names: str) -> Callable[[WrapperRule], WrapperRule]:
    def register(fn: WrapperRule) -> WrapperRule:
        for n in names:
            _WRAPPERS[n] = fn
        return fn
    return register


def rules() -> frozenset[str]:
    """Class names with a shape rule (shape-preserving classes excluded)."""
    return frozenset(_RULES) | frozenset(_WRAPPERS)


def _as_tuple(v: Any, n: int) -> tuple[Any, ...] | None:
    if isinstance(v, int):
        return (v,) * n
    if isinstance(v, (list, tuple)) and len(v) == n:
        return tuple(v)
    return None


def _single(inputs: list[Shape | None]) -> Shape | None:
    return inputs[0] if len(inputs) == 1 else None


def infer(node: LayerNode, inputs: list[Shape | None], model: ModelFn | None = None) -> Out:
    """Output shape(s) of one call of ``node`` given its input shapes; a nested model (also
    one held by a wrapper such as ``TimeDistributed(mobilenet)``) needs ``model``."""
    if node.role == "model":
        return model(node, inputs) if model is not None else None
    if node.class_name in PRESERVING:
        return _single(inputs)
    wrapper = _WRAPPERS.get(node.class_name)
    if wrapper is not None:
        try:
            return wrapper(node, inputs, lambda n, i: infer(n, i, model))
        except (TypeError, ValueError, ZeroDivisionError, IndexError, KeyError):
            return None
    fn = _RULES.get(node.class_name)
    if fn is None:
        return None
    try:
        return fn(node, inputs)
    except (TypeError, ValueError, ZeroDivisionError, IndexError, KeyError):
        return None


@rule("InputLayer")
def _input(node: LayerNode, inputs: list[Shape | None]) -> Out:
    shape = node.config.get("batch_shape")
    return tuple(shape) if isinstance(shape, list) else None


@rule("Dense")
def _dense(node: LayerNode, inputs: list[Shape | None]) -> Out:
    s = _single(inputs)
    units = node.config.get("units")
    if s is None or not isinstance(units, int) or not s:
        return None
    return (*s[:-1], units)


@rule("Embedding")
def _embedding(node: LayerNode, inputs: list[Shape | None]) -> Out:
    s = _single(inputs)
    dim = node.config.get("output_dim")
    return None if s is None or not isinstance(dim, int) else (*s, dim)


@rule("Flatten")
def _flatten(node: LayerNode, inputs: list[Shape | None]) -> Out:
    s = _single(inputs)
    if s is None or not s:
        return None
    rest = s[1:]
    if node.config.get("data_format") == "channels_first" and len(rest) > 1:
        rest = (*rest[1:], rest[0])
    return (s[0], math.prod(rest) if all(d is not None for d in rest) else None)


@rule("Reshape")
def _reshape(node: LayerNode, inputs: list[Shape | None]) -> Out:
    s = _single(inputs)
    target = node.config.get("target_shape")
    if s is None or not isinstance(target, list):
        return None
    if -1 in target:
        rest = s[1:]
        known = [d for d in target if d != -1]
        if all(d is not None for d in rest) and target.count(-1) == 1 and math.prod(known):
            fill = math.prod(rest) // math.prod(known)
            return (s[0], *[fill if d == -1 else d for d in target])
        return (s[0], *[None if d == -1 else d for d in target])
    return (s[0], *target)


def _conv_len(n: int | None, k: int, s: int, d: int, padding: str) -> int | None:
    if n is None:
        return None
    eff = (k - 1) * d + 1
    if padding in ("same", "causal"):
        return -(-n // s)
    if padding == "valid":
        return max(0, (n - eff) // s + 1)
    raise ValueError(padding)


def _deconv_len(n: int | None, k: int, s: int, d: int, padding: str,
                out_pad: int | None) -> int | None:
    if n is None:
        return None
    eff = (k - 1) * d + 1
    if out_pad is None:
        if padding == "valid":
            return n * s + max(eff - s, 0)
        if padding == "same":
            return n * s
        raise ValueError(padding)
    pad = eff // 2 if padding == "same" else 0
    return (n - 1) * s + eff - 2 * pad + out_pad


def _spatial(s: Shape, rank: int, cfg: dict[str, Any]) -> tuple[int | None, ...]:
    return s[2:2 + rank] if cfg.get("data_format") == "channels_first" else s[1:1 + rank]


def _assemble(s: Shape, spatial: list[int | None], channels: int | None,
              cfg: dict[str, Any]) -> Shape:
    if cfg.get("data_format") == "channels_first":
        return (s[0], channels, *spatial)
    return (s[0], *spatial, channels)


def _conv_rule(rank: int, transpose: bool = False, depthwise: bool = False) -> Rule:
    def fn(node: LayerNode, inputs: list[Shape | None]) -> Out:
        s = _single(inputs)
        cfg = node.config
        if s is None or len(s) != rank + 2:
            return None
        ks = _as_tuple(cfg.get("kernel_size"), rank)
        st = _as_tuple(cfg.get("strides", 1), rank)
        dl = _as_tuple(cfg.get("dilation_rate", 1), rank)
        op = cfg.get("output_padding")
        op_t = _as_tuple(op, rank) if op is not None else (None,) * rank
        padding = str(cfg.get("padding", "valid")).lower()
        if ks is None or st is None or dl is None or op_t is None:
            return None
        dims = _spatial(s, rank, cfg)
        if transpose:
            out = [_deconv_len(n, k, a, d, padding, p)
                   for n, k, a, d, p in zip(dims, ks, st, dl, op_t, strict=False)]
        else:
            out = [_conv_len(n, k, a, d, padding)
                   for n, k, a, d in zip(dims, ks, st, dl, strict=False)]
        in_ch = s[1] if cfg.get("data_format") == "channels_first" else s[-1]
        if depthwise:
            mult = cfg.get("depth_multiplier", 1)
            channels = None if in_ch is None else in_ch * mult
        else:
            channels = cfg.get("filters")
        return _assemble(s, out, channels, cfg)
    return fn


for _r in (1, 2, 3):
    _RULES[f"Conv{_r}D"] = _conv_rule(_r)
    _RULES[f"Convolution{_r}D"] = _RULES[f"Conv{_r}D"]
    _RULES[f"Conv{_r}DTranspose"] = _conv_rule(_r, transpose=True)
    _RULES[f"SeparableConv{_r}D"] = _conv_rule(_r)
    _RULES[f"DepthwiseConv{_r}D"] = _conv_rule(_r, depthwise=True)


def _pool_rule(rank: int) -> Rule:
    def fn(node: LayerNode, inputs: list[Shape | None]) -> Out:
        s = _single(inputs)
        cfg = node.config
        if s is None or len(s) != rank + 2:
            return None
        pool = _as_tuple(cfg.get("pool_size", 2), rank)
        strides_cfg = cfg.get("strides")
        st = pool if strides_cfg is None else _as_tuple(strides_cfg, rank)
        padding = str(cfg.get("padding", "valid")).lower()
        if pool is None or st is None:
            return None
        dims = _spatial(s, rank, cfg)
        out = [_conv_len(n, p, a, 1, padding) for n, p, a in zip(dims, pool, st, strict=False)]
        ch = s[1] if cfg.get("data_format") == "channels_first" else s[-1]
        return _assemble(s, out, ch, cfg)
    return fn


def _global_pool_rule(rank: int) -> Rule:
    def fn(node: LayerNode, inputs: list[Shape | None]) -> Out:
        s = _single(inputs)
        cfg = node.config
        if s is None or len(s) != rank + 2:
            return None
        ch = s[1] if cfg.get("data_format") == "channels_first" else s[-1]
        if cfg.get("keepdims"):
            return _assemble(s, [1] * rank, ch, cfg)
        return (s[0], ch)
    return fn


for _r in (1, 2, 3):
    for _kind in ("Max", "Average"):
        _RULES[f"{_kind}Pooling{_r}D"] = _pool_rule(_r)
        _RULES[f"{_kind}Pool{_r}D"] = _RULES[f"{_kind}Pooling{_r}D"]
        _RULES[f"Global{_kind}Pooling{_r}D"] = _global_pool_rule(_r)
        _RULES[f"Global{_kind}Pool{_r}D"] = _RULES[f"Global{_kind}Pooling{_r}D"]


def _rnn_units(node: LayerNode) -> int | None:
    units = node.config.get("units")
    if isinstance(units, int):
        return units
    for child in node.children:
        if child.role == "cell" and isinstance(child.config.get("units"), int):
            return int(child.config["units"])
    return None


def rnn_output(node: LayerNode, s: Shape | None) -> Out:
    units = _rnn_units(node)
    if s is None or units is None or len(s) != 3:
        return None
    out: Shape = (s[0], s[1], units) if node.config.get("return_sequences") else (s[0], units)
    if node.config.get("return_state"):
        n_states = RNN_STATES.get(node.class_name)
        if n_states is None:
            return None
        return [out, *[(s[0], units)] * n_states]
    return out


@rule("LSTM", "GRU", "SimpleRNN", "RNN", "CuDNNLSTM", "CuDNNGRU")
def _rnn(node: LayerNode, inputs: list[Shape | None]) -> Out:
    return rnn_output(node, inputs[0] if inputs else None)


@wrapper_rule("TimeDistributed")
def _time_distributed(node: LayerNode, inputs: list[Shape | None], inner_fn: Inner) -> Out:
    s = _single(inputs)
    if s is None or len(s) < 3 or not node.children:
        return None
    inner = inner_fn(node.children[0], [(s[0], *s[2:])])
    if inner is None or isinstance(inner, list) or not inner:
        return None
    return (inner[0], s[1], *inner[1:])


@wrapper_rule("Bidirectional")
def _bidirectional(node: LayerNode, inputs: list[Shape | None], inner_fn: Inner) -> Out:
    if len(node.children) != 2 or not inputs:
        return None
    fwd = inner_fn(node.children[0], [inputs[0]])
    bwd = inner_fn(node.children[1], [inputs[0]])
    if fwd is None or bwd is None or isinstance(fwd, list) or isinstance(bwd, list):
        return None
    mode = node.config.get("merge_mode", "concat")
    if mode is None:
        return [fwd, bwd]
    if mode == "concat":
        last = None if fwd[-1] is None or bwd[-1] is None else fwd[-1] + bwd[-1]
        return (*fwd[:-1], last)
    if mode in ("sum", "mul", "ave"):
        return fwd
    return None


@rule("Concatenate")
def _concatenate(node: LayerNode, inputs: list[Shape | None]) -> Out:
    if not inputs or any(s is None for s in inputs):
        return None
    shapes = [s for s in inputs if s is not None]
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        return None
    axis = node.config.get("axis", -1)
    axis = axis % rank
    out: list[int | None] = []
    for i in range(rank):
        dims = [s[i] for s in shapes]
        if i == axis:
            out.append(None if any(d is None for d in dims) else sum(d for d in dims if d))
        else:
            known = [d for d in dims if d is not None]
            out.append(known[0] if known else None)
    return tuple(out)


@rule(*MERGE_ELEMENTWISE)
def _merge(node: LayerNode, inputs: list[Shape | None]) -> Out:
    if not inputs or any(s is None for s in inputs):
        return None
    shapes = [s for s in inputs if s is not None]
    rank = max(len(s) for s in shapes)
    padded = [(None,) * 0 + (1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out: list[int | None] = []
    for i in range(rank):
        dims = [s[i] for s in padded]
        known = [d for d in dims if d is not None and d != 1]
        if known:
            out.append(known[0])
        elif any(d is None for d in dims):
            out.append(None)
        else:
            out.append(1)
    # Keep the batch dimension symbolic as Keras does.
    if all(s[0] is None for s in padded):
        out[0] = None
    return tuple(out)


@rule("RepeatVector")
def _repeat(node: LayerNode, inputs: list[Shape | None]) -> Out:
    s = _single(inputs)
    n = node.config.get("n")
    return None if s is None or len(s) != 2 or not isinstance(n, int) else (s[0], n, s[1])


@rule("Permute")
def _permute(node: LayerNode, inputs: list[Shape | None]) -> Out:
    s = _single(inputs)
    dims = node.config.get("dims")
    if s is None or not isinstance(dims, list) or len(dims) != len(s) - 1:
        return None
    return (s[0], *[s[d] for d in dims])


@rule("MultiHeadAttention")
def _mha(node: LayerNode, inputs: list[Shape | None]) -> Out:
    if not inputs or inputs[0] is None or node.config.get("output_shape") is not None:
        return None
    return inputs[0]


@rule("Attention", "AdditiveAttention")
def _attention(node: LayerNode, inputs: list[Shape | None]) -> Out:
    if not inputs or inputs[0] is None or node.config.get("return_attention_scores"):
        return None
    return inputs[0]


def _resize_rule(rank: int, kind: str) -> Rule:
    """UpSampling / ZeroPadding / Cropping in 1-3D: per-axis arithmetic on spatial dims."""
    def fn(node: LayerNode, inputs: list[Shape | None]) -> Out:
        s = _single(inputs)
        cfg = node.config
        if s is None or len(s) != rank + 2:
            return None
        dims = _spatial(s, rank, cfg)
        ch = s[1] if cfg.get("data_format") == "channels_first" else s[-1]
        if kind == "up":
            size = _as_tuple(cfg.get("size", 2), rank)
            if size is None:
                return None
            out = [None if n is None else n * k for n, k in zip(dims, size, strict=True)]
        else:
            key = "padding" if kind == "pad" else "cropping"
            pairs = _pairs(cfg.get(key, 1 if kind == "pad" else 0), rank)
            if pairs is None:
                return None
            sign = 1 if kind == "pad" else -1
            out = [None if n is None else n + sign * (a + b)
                   for n, (a, b) in zip(dims, pairs, strict=True)]
        return _assemble(s, out, ch, cfg)
    return fn


def _pairs(value: Any, rank: int) -> list[tuple[int, int]] | None:
    if isinstance(value, int):
        return [(value, value)] * rank
    if isinstance(value, (list, tuple)) and len(value) == 2 and rank == 1 and all(
            isinstance(v, int) for v in value):
        return [(value[0], value[1])]
    if isinstance(value, (list, tuple)) and len(value) == rank:
        out = []
        for v in value:
            if isinstance(v, int):
                out.append((v, v))
            elif isinstance(v, (list, tuple)) and len(v) == 2:
                out.append((int(v[0]), int(v[1])))
            else:
                return None
        return out
    return None


for _r in (1, 2, 3):
    _RULES[f"UpSampling{_r}D"] = _resize_rule(_r, "up")
    _RULES[f"ZeroPadding{_r}D"] = _resize_rule(_r, "pad")
    _RULES[f"Cropping{_r}D"] = _resize_rule(_r, "crop")
