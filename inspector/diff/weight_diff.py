"""Per-tensor weight changes between two graphs, streamed like ``inspector.stats``.

Each pair of tensors is read chunk by chunk side by side (chunks re-aligned: an HDF5 file and
a TF checkpoint split a tensor differently), so memory stays near two chunks whatever the
model size. Tensors that fit in one chunk also get their weight statistics computed from the
chunks already in memory (``PrefilledStats``), so the rules that run afterwards do not read
them a second time: a static diff costs about two single-file inspections, not three.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inspector.diff.match import LayerPair
from inspector.graph import ROOT_PATH, LayerNode, ModelGraph, WeightInfo, WeightSource
from inspector.stats import DEFAULT_CHUNK, WeightStats, compute_stats

SAME, CHANGED, MISSING, ADDED, RESHAPED, UNREADABLE = (
    "same", "changed", "missing", "added", "shape-changed", "unreadable")
BN_CLASSES = frozenset({"BatchNormalization", "SyncBatchNormalization"})
BN_STATS = ("moving_mean", "moving_variance")


@dataclass
class WeightDelta:
    """One tensor of A against its counterpart in B."""

    layer: str | None  # B's layer path (A's when B lacks the layer); None: loose weights
    name: str
    status: str
    shape_a: tuple[int | None, ...] | None = None
    shape_b: tuple[int | None, ...] | None = None
    dtype_a: str | None = None
    dtype_b: str | None = None
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    rel_norm_change: float | None = None  # ||B - A|| / ||A||; None when ||A|| is 0
    nonfinite_mismatch: int = 0  # elements where one side is NaN/Inf and the other not
    reason: str | None = None
    # Per side: every value exactly 0 / exactly 1 (BatchNormalization's initial statistics).
    all_zero: tuple[bool, bool] = (False, False)
    all_one: tuple[bool, bool] = (False, False)

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "name": self.name, "status": self.status,
                "shape_a": _shape(self.shape_a), "shape_b": _shape(self.shape_b),
                "dtype_a": self.dtype_a, "dtype_b": self.dtype_b,
                "max_abs_diff": self.max_abs_diff, "mean_abs_diff": self.mean_abs_diff,
                "rel_norm_change": self.rel_norm_change,
                "nonfinite_mismatch": self.nonfinite_mismatch, "reason": self.reason}


def _shape(shape: tuple[int | None, ...] | None) -> list[int | None] | None:
    return None if shape is None else list(shape)


class PrefilledStats:
    """A ``StatsCache`` compute hook that hands out stats computed during the diff, and
    computes the others as usual."""

    def __init__(self) -> None:
        self._ready: dict[int, tuple[WeightSource, WeightStats]] = {}

    def put(self, source: WeightSource, stats: WeightStats) -> None:
        self._ready[id(source)] = (source, stats)

    def __call__(self, source: WeightSource, *, chunk_elements: int) -> WeightStats:
        entry = self._ready.pop(id(source), None)
        if entry is not None and entry[0] is source:
            return entry[1]
        return compute_stats(source, chunk_elements=chunk_elements)


class _Replay:
    """A WeightSource over chunks already in memory."""

    def __init__(self, chunks: list[np.ndarray]) -> None:
        self.chunks = chunks

    def read(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.empty(0)

    def iter_chunks(self, max_elements: int) -> Iterator[np.ndarray]:
        yield from self.chunks


@dataclass
class WeightDiff:
    deltas: list[WeightDelta] = field(default_factory=list)
    tensors_compared: int = 0
    elements_compared: int = 0


def diff_weights(pairs: list[LayerPair], graph_a: ModelGraph, graph_b: ModelGraph, *,
                 stats_a: PrefilledStats | None = None, stats_b: PrefilledStats | None = None,
                 chunk_elements: int = DEFAULT_CHUNK) -> WeightDiff:
    """Every tensor of both graphs, paired by layer pair and weight name (or, when a side has
    no layer tree, by ``layer/name`` keys against the loose weights)."""
    result = WeightDiff()
    for layer, wa, wb in _tensor_pairs(pairs, graph_a, graph_b):
        delta = _compare(layer, wa, wb, stats_a, stats_b, chunk_elements)
        if delta.status in (SAME, CHANGED):
            result.tensors_compared += 1
            result.elements_compared += wa.size if wa is not None else 0
        result.deltas.append(delta)
    return result


def _tensor_pairs(pairs: list[LayerPair], graph_a: ModelGraph, graph_b: ModelGraph
                  ) -> Iterator[tuple[str | None, WeightInfo | None, WeightInfo | None]]:
    if graph_a.root is not None and graph_b.root is not None:
        for pair in pairs:
            yield from _zip_by_name(pair.path, pair.a.weights if pair.a else [],
                                    pair.b.weights if pair.b else [])
        yield from _zip_by_name(None, graph_a.loose_weights, graph_b.loose_weights)
        return
    yield from _zip_by_name(None, _flat(graph_a), _flat(graph_b))


def _flat(graph: ModelGraph) -> list[WeightInfo]:
    """All tensors named ``layer/.../name`` (root left out), as loose weights are named."""
    if graph.root is None:
        return list(graph.loose_weights)
    out: list[WeightInfo] = []
    prefix = ROOT_PATH + "/"
    for node, w in graph.all_weights():
        if isinstance(node, LayerNode):
            where = node.path.removeprefix(prefix)
            out.append(WeightInfo(f"{where}/{w.name}", w.shape, w.dtype, w.storage_path,
                                  w.source, w.trainable))
        else:
            out.append(w)
    return out


def _keyed(weights: Iterable[WeightInfo]) -> dict[str, WeightInfo]:
    """By name; a repeated name gets ``#n`` (kept in order)."""
    out: dict[str, WeightInfo] = {}
    for w in weights:
        key, n = w.name, 1
        while key in out:
            key, n = f"{w.name}#{n}", n + 1
        out[key] = w
    return out


def _zip_by_name(layer: str | None, wa: list[WeightInfo], wb: list[WeightInfo]
                 ) -> Iterator[tuple[str | None, WeightInfo | None, WeightInfo | None]]:
    """Pairs by name, then by name suffix (an export prefixes the model name:
    ``mlp/dense/kernel``), then the leftovers in order where shapes agree (Keras 3 names a
    custom layer's variables ``var_0``... in ``.keras`` files, and loads weights by order)."""
    ka, kb = _keyed(wa), _keyed(wb)
    partner = {key: key for key in ka if key in kb}
    left_b = [k for k in kb if k not in partner.values()]
    for key in ka:
        if key in partner:
            continue
        hit = next((k for k in left_b if k.endswith("/" + key) or key.endswith("/" + k)), None)
        if hit is not None:
            partner[key] = hit
            left_b.remove(hit)
    left_a = [k for k in ka if k not in partner]
    for key_a, key_b in zip(left_a, list(left_b), strict=False):
        if tuple(ka[key_a].shape) == tuple(kb[key_b].shape):
            partner[key_a] = key_b
            left_b.remove(key_b)
    for key, w in ka.items():
        yield layer, w, kb[partner[key]] if key in partner else None
    for key in left_b:
        yield layer, None, kb[key]


def _compare(layer: str | None, wa: WeightInfo | None, wb: WeightInfo | None,
             stats_a: PrefilledStats | None, stats_b: PrefilledStats | None,
             chunk_elements: int) -> WeightDelta:
    name = (wa or wb).name  # type: ignore[union-attr]
    delta = WeightDelta(layer, name, SAME,
                        wa.shape if wa else None, wb.shape if wb else None,
                        wa.dtype if wa else None, wb.dtype if wb else None)
    if wa is None or wb is None:
        delta.status = ADDED if wa is None else MISSING
        return delta
    if tuple(wa.shape) != tuple(wb.shape):
        delta.status = RESHAPED
        return delta
    if wa.source is None or wb.source is None:
        delta.status, delta.reason = UNREADABLE, "values not stored"
        return delta
    keep = wa.size <= chunk_elements
    try:
        _stream(delta, wa.source, wb.source, chunk_elements, keep, stats_a, stats_b)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        delta.status, delta.reason = UNREADABLE, f"{type(exc).__name__}: {exc}"[:200]
        return delta
    if delta.dtype_a != delta.dtype_b and delta.status == SAME:
        delta.status = CHANGED
    return delta


def _stream(delta: WeightDelta, src_a: WeightSource, src_b: WeightSource, chunk: int,
            keep: bool, stats_a: PrefilledStats | None, stats_b: PrefilledStats | None
            ) -> None:
    kept_a: list[np.ndarray] = []
    kept_b: list[np.ndarray] = []
    track = delta.name.rsplit("/", 1)[-1] in BN_STATS
    zero = [True, True]
    one = [True, True]
    total = mismatch = 0
    peak = s_abs = s_d2 = s_a2 = 0.0
    for ca, cb in _aligned(src_a.iter_chunks(chunk), src_b.iter_chunks(chunk)):
        if keep:
            kept_a.append(ca)
            kept_b.append(cb)
        a = _float(ca)
        b = _float(cb)
        if track:
            for side, v in ((0, a), (1, b)):
                zero[side] = zero[side] and not np.any(v)
                one[side] = one[side] and bool(np.all(v == 1.0))
        d = np.abs(b - a)
        total += d.size
        finite = np.isfinite(d)
        if not finite.all():
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            mismatch += int(np.count_nonzero(~finite & ~same))
            d = d[finite]
            a = a[np.isfinite(a)]
        if d.size:
            peak = max(peak, float(d.max()))
            s_abs += float(d.sum())
            s_d2 += float(np.square(d).sum())  # not np.dot: BLAS threads cost more here
        s_a2 += float(np.square(a).sum())
    delta.nonfinite_mismatch = mismatch
    delta.max_abs_diff = peak
    delta.mean_abs_diff = s_abs / total if total else 0.0
    norm_a = math.sqrt(s_a2)
    delta.rel_norm_change = math.sqrt(s_d2) / norm_a if norm_a > 0 else (
        0.0 if s_d2 == 0 else None)
    if track:
        delta.all_zero, delta.all_one = (zero[0], zero[1]), (one[0], one[1])
    if peak > 0 or mismatch:
        delta.status = CHANGED
    if keep:
        for prefill, src, kept in ((stats_a, src_a, kept_a), (stats_b, src_b, kept_b)):
            if prefill is not None:
                prefill.put(src, compute_stats(_Replay(kept), chunk_elements=chunk))


def _float(chunk: np.ndarray) -> np.ndarray:
    values = np.asarray(chunk).reshape(-1)
    if values.dtype.kind == "b":
        values = values.astype(np.uint8)
    if values.dtype.kind not in "iuf":
        raise TypeError(f"non-numeric weight dtype {values.dtype}")
    return values.astype(np.float64)


def _aligned(chunks_a: Iterator[np.ndarray], chunks_b: Iterator[np.ndarray]
             ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Equal-length pieces of two flat streams of the same total length."""
    rest_a = rest_b = np.empty(0)
    while True:
        if rest_a.size == 0:
            rest_a = np.asarray(next(chunks_a, np.empty(0))).reshape(-1)
        if rest_b.size == 0:
            rest_b = np.asarray(next(chunks_b, np.empty(0))).reshape(-1)
        if rest_a.size == 0 or rest_b.size == 0:
            if rest_a.size or rest_b.size:
                raise ValueError("the two tensors hold different numbers of values")
            return
        n = min(rest_a.size, rest_b.size)
        yield rest_a[:n], rest_b[:n]
        rest_a, rest_b = rest_a[n:], rest_b[n:]


def bn_checks(pairs: list[LayerPair], deltas: list[WeightDelta]
              ) -> list[tuple[str, str, dict[str, Any]]]:
    """(diff rule name, layer path, evidence) for BatchNormalization layers whose moving
    statistics B reset to their 0/1 init, or lacks, while A has trained ones."""
    by_layer: dict[str | None, dict[str, WeightDelta]] = {}
    for d in deltas:
        by_layer.setdefault(d.layer, {})[d.name] = d
    out: list[tuple[str, str, dict[str, Any]]] = []
    for pair in pairs:
        if not pair.matched or pair.b.class_name not in BN_CLASSES:  # type: ignore[union-attr]
            continue
        mine = by_layer.get(pair.path, {})
        missing = [n for n in BN_STATS if n in mine and mine[n].status == MISSING]
        if missing:
            out.append(("bn-stats-missing", pair.path, {"missing": ", ".join(missing)}))
            continue
        mean, var = mine.get("moving_mean"), mine.get("moving_variance")
        if mean is None or var is None or CHANGED not in (mean.status, var.status):
            continue
        if mean.all_zero[1] and var.all_one[1] and not (mean.all_zero[0] and var.all_one[0]):
            out.append(("bn-stats-reset", pair.path, {
                "max_abs_diff_mean": mean.max_abs_diff, "max_abs_diff_var": var.max_abs_diff}))
    return out
