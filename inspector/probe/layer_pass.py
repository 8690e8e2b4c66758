"""Per-layer statistics from eager forward passes with wrapped ``call`` methods.

A multi-output model cannot reach inside nested models or shared layers, so each layer's
``call`` is wrapped for the duration of the pass and records a small summary of its output.
Big models run the pass in chunks: eager Keras keeps every activation of a call alive until
it returns, and on a ResNet50 a 12-sample call faults in ~1.8 GB of fresh memory (seconds of
kernel time) where three 4-sample calls reuse one third of it. Summaries are built so that
merging the chunks gives exactly the numbers one big call would have given.

Reductions go through an :class:`ArrayOps`: NumPy here, TensorFlow in the child, so a large
activation is reduced where it lives (multi-threaded, on the GPU when there is one) and only
per-channel extremes and a unit sample are copied out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.probe.error_text import error_text

# Across-input variation is estimated on at most this many evenly spaced units per layer.
STAT_UNITS = 8192
# A layer output is flat (collapse_layer candidate) when its variation is this small.
FLAT_REL = 1e-5
FLAT_ABS = 1e-7
MAX_ERRORS = 5      # summary failures kept for the report (the layer's row is skipped)


def finite(a: np.ndarray) -> np.ndarray:
    """NaN and Inf replaced by 0 (statistics are taken over finite values)."""
    return np.where(np.isfinite(a), a, 0.0)


def unit_step(units: int) -> int:
    """Stride that keeps at most STAT_UNITS of ``units`` evenly spaced units."""
    return max(1, -(-units // STAT_UNITS))


def sample_variation(sample: np.ndarray) -> tuple[float, float]:
    """(mean per-unit std across inputs, mean |value|) of an (inputs, units) sample."""
    if not sample.size:
        return 0.0, 0.0
    std = float(sample.std(axis=0).mean(dtype="float64")) if sample.shape[0] > 1 else 0.0
    return std, float(np.abs(sample).mean(dtype="float64"))


def unit_sample(a: np.ndarray) -> np.ndarray:
    """(inputs, <= STAT_UNITS) evenly spaced units of an array of any rank (first axis =
    inputs), as a float32 copy with NaN and Inf set to 0."""
    flat = a.reshape(a.shape[0], -1)
    sample = flat[:, :: unit_step(flat.shape[1])].astype("float32")
    return sample if np.isfinite(sample).all() else finite(sample).astype("float32")


def variation(a: np.ndarray) -> tuple[float, float]:
    """:func:`sample_variation` of an array of any rank (first axis = inputs)."""
    return sample_variation(unit_sample(np.asarray(a)))


def is_flat(std: float, mean_abs: float) -> bool:
    return std <= FLAT_ABS or std / max(mean_abs, 1e-12) < FLAT_REL


@dataclass
class Summary:
    """What one call contributes to a layer's row; summaries of several chunks merge.

    ``col_max``/``col_min`` are per last-axis unit (channel) over every other axis and are
    only meaningful when ``nan`` and ``inf`` are 0."""

    shape: tuple[int, ...]
    sample: np.ndarray          # (inputs, <= STAT_UNITS) float32, non-finite set to 0
    col_max: np.ndarray
    col_min: np.ndarray
    nan: int
    inf: int


class ArrayOps:
    """Summaries of NumPy-convertible values; the child subclasses it for tensors."""

    def summarize(self, value: Any) -> Summary | None:
        try:
            a = np.asarray(value)
        except (TypeError, ValueError):
            return None
        if a.ndim < 1 or a.dtype.kind not in "fiub" or a.shape[0] < 1:
            return None
        units = a.reshape(-1, a.shape[-1]) if a.ndim >= 2 else a.reshape(-1, 1)
        col_max = units.max(axis=0) if units.size else np.zeros(0)
        col_min = units.min(axis=0) if units.size else np.zeros(0)
        nan = inf = 0
        # NaN and Inf always reach the extremes: count them only then (one pass saved)
        if not (np.isfinite(col_max).all() and np.isfinite(col_min).all()):
            nan, inf = int(np.isnan(units).sum()), int(np.isinf(units).sum())
        return Summary(tuple(a.shape), unit_sample(a), col_max, col_min, nan, inf)


NUMPY_OPS = ArrayOps()


def _bounds(layer: Any) -> tuple[float, float] | None:
    """The activation's output range when it saturates (sigmoid, tanh, relu6, softmax)."""
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", "") if act is not None else ""
    if name in ("sigmoid", "hard_sigmoid", "softmax"):
        return (0.0, 1.0)
    if name in ("tanh", "softsign"):
        return (-1.0, 1.0)
    if name == "relu6":
        return (0.0, 6.0)
    max_value = getattr(layer, "max_value", None)
    if type(layer).__name__ == "ReLU" and max_value is not None:
        return (0.0, float(max_value))
    return None


def summaries_row(path: str, layer: Any, parts: list[Summary],
                  inp: tuple[float, float] | None) -> dict[str, Any]:
    """One report row from a layer's summaries (one per chunk): across-input std, dead and
    saturated unit fractions, NaN/Inf; ``inp`` is the (std, mean |value|) of its input."""
    std, mean_abs = sample_variation(np.concatenate([p.sample for p in parts]))
    nan, inf = sum(p.nan for p in parts), sum(p.inf for p in parts)
    has_nan = bool(nan or inf)
    col_max = np.maximum.reduce([p.col_max for p in parts])
    col_min = np.minimum.reduce([p.col_min for p in parts])
    dead = None
    if col_max.size and not has_nan and float(col_min.min()) >= 0.0:  # ReLU-like: may not fire
        dead = float((col_max <= 0.0).mean())
    saturated = None
    bounds = _bounds(layer)
    if bounds is not None and col_max.size and not has_nan:
        tol = 1e-3 * (bounds[1] - bounds[0])
        saturated = float(((col_max <= bounds[0] + tol) | (col_min >= bounds[1] - tol)).mean())
    shape = [sum(p.shape[0] for p in parts), *parts[0].shape[1:]]
    row: dict[str, Any] = {
        "path": path,
        "class_name": type(layer).__name__,
        "shape": shape,
        "across_input_std": std,
        "mean_abs": mean_abs,
        "dead_fraction": dead,
        "saturated_fraction": saturated,
        "nan": nan,
        "inf": inf,
        "flat": (not has_nan) and is_flat(std, mean_abs),
        "input_varied": None,
    }
    if inp is not None:
        row["input_std"] = inp[0]
        row["input_varied"] = not is_flat(*inp)
    return row


def layer_stats(path: str, layer: Any, out: np.ndarray,
                inp: tuple[float, float] | None) -> dict[str, Any]:
    """The row of one layer output given as one array."""
    summary = NUMPY_OPS.summarize(out)
    if summary is None:
        raise ValueError(f"{path}: output is not a numeric array")
    return summaries_row(path, layer, [summary], inp)


def collapse_layer(rows: list[dict[str, Any]]) -> str | None:
    """The first layer whose output is flat while its input still varied."""
    for row in rows:
        if row["flat"] and row.get("input_varied"):
            return str(row["path"])
    return None


def first_tensor(value: Any) -> Any:
    """The first tensor of a layer's result (dicts and lists of outputs): the one output the
    per-layer pass and the diff's activation recorder look at."""
    if isinstance(value, dict):
        value = next(iter(value.values()), None)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value if value is not None and hasattr(value, "shape") else None


@contextmanager
def wrapped_calls(layers: list[tuple[str, Any]],
                  record: Callable[[str, Any, tuple[Any, ...], Any], None]) -> Iterator[None]:
    """Every layer's ``call`` wrapped to pass (path, layer, args, result) to ``record`` for
    the duration of the block: a model cannot hand out its nested layers' outputs otherwise.
    ``record`` must not raise (it would break the model's own call)."""
    patched = []
    for path, layer in layers:
        original = layer.call

        def wrapped(*args: Any, __orig: Any = original, __path: str = path,
                    __layer: Any = layer, **kwargs: Any) -> Any:
            result = __orig(*args, **kwargs)
            record(__path, __layer, args, result)
            return result

        try:
            layer.call = wrapped
        except (AttributeError, TypeError):
            continue
        patched.append(layer)
    try:
        yield
    finally:
        for layer in patched:
            vars(layer).pop("call", None)


@dataclass
class _Call:
    path: str
    layer: Any
    out: Summary
    inp: np.ndarray | None      # the input's unit sample


class LayerRecorder:
    """Records every wrapped layer call of each chunk; :meth:`rows` merges the chunks."""

    def __init__(self, layers: list[tuple[str, Any]], ops: ArrayOps) -> None:
        self.layers, self.ops = layers, ops
        self.chunks: list[list[_Call]] = []
        self.errors: list[str] = []
        # tensor id -> (tensor, summary): a layer's input is usually the previous layer's
        # output; the tensor is kept alive (for one chunk) so its id cannot be reused
        self._seen: dict[int, tuple[Any, Summary | None]] = {}

    def _summary_of(self, value: Any) -> Summary | None:
        key = id(value)
        if key not in self._seen:
            first = first_tensor(value)
            self._seen[key] = (value, self.ops.summarize(first) if first is not None else None)
        return self._seen[key][1]

    def _record(self, path: str, layer: Any, args: tuple[Any, ...], result: Any) -> None:
        try:
            self._summarize_call(path, layer, args, result)
        except Exception as exc:   # never break the model's own call: the row is skipped
            if len(self.errors) < MAX_ERRORS:
                self.errors.append(f"{path}: {error_text(exc)}")

    def _summarize_call(self, path: str, layer: Any, args: tuple[Any, ...],
                        result: Any) -> None:
        first = first_tensor(result)
        out = self.ops.summarize(first) if first is not None else None
        if out is None:
            return
        self._seen[id(result)] = (result, out)
        inp = self._summary_of(args[0]) if args else None
        self.chunks[-1].append(_Call(path, layer, out, inp.sample if inp is not None else None))

    @contextmanager
    def chunk(self) -> Iterator[None]:
        """Wrap every layer's call for one forward pass."""
        self.chunks.append([])
        try:
            with wrapped_calls(self.layers, self._record):
                yield
        finally:
            self._seen.clear()

    def merged(self) -> bool:
        """Whether every chunk recorded the same calls in the same order (always, unless
        the model's control flow depends on the data); otherwise only chunk 0 is used."""
        def key(chunk: list[_Call]) -> list[tuple[str, tuple[int, ...]]]:
            return [(c.path, c.out.shape[1:]) for c in chunk]

        first = key(self.chunks[0]) if self.chunks else []
        return all(key(chunk) == first for chunk in self.chunks[1:])

    def rows(self) -> list[dict[str, Any]]:
        if not self.chunks:
            return []
        chunks = self.chunks if self.merged() else self.chunks[:1]
        rows = []
        for calls in zip(*chunks, strict=True):
            head = calls[0]
            inputs = [c.inp for c in calls]
            comparable = (all(s is not None for s in inputs)
                          and len({s.shape[1] for s in inputs if s is not None}) == 1)
            inp = sample_variation(np.concatenate(inputs)) if comparable else None
            rows.append(summaries_row(head.path, head.layer, [c.out for c in calls], inp))
        return rows
