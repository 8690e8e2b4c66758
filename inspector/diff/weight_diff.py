"""Per-tensor weight changes between two graphs, streamed like ``inspector.stats``.

Each pair of tensors is read chunk by chunk side by side (chunks re-aligned: an HDF5 file and
a TF checkpoint split a tensor differently), so memory stays near two chunks whatever the
model size. Each chunk read also feeds that tensor's weight statistics (``TensorSummary``),
handed to the rules that run afterwards (``PrefilledStats``): every tensor is read once for
both, as a single-file inspection reads it once for its statistics (twice for a tensor over
one chunk, whose histogram needs the range first). Identical pieces, the bulk of a resave or a
light fine-tune, skip the float64 arithmetic: their difference figures are all zero.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inspector.diff.match import LayerPair
from inspector.graph import ROOT_PATH, LayerNode, ModelGraph, WeightInfo, WeightSource
from inspector.stats import (
    DEFAULT_CHUNK,
    READ_ERRORS,
    TensorSummary,
    WeightStats,
    compute_stats,
)

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
        self._ready: dict[int, tuple[WeightSource, int, WeightStats]] = {}

    def put(self, source: WeightSource, stats: WeightStats, chunk_elements: int) -> None:
        self._ready[id(source)] = (source, chunk_elements, stats)

    def __call__(self, source: WeightSource, *, chunk_elements: int) -> WeightStats:
        # the same chunking only: float sums over other chunk boundaries may differ in the
        # last bit
        entry = self._ready.pop(id(source), None)
        if entry is not None and entry[0] is source and entry[1] == chunk_elements:
            return entry[2]
        return compute_stats(source, chunk_elements=chunk_elements)


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
    side_a = _Side(wa.source, chunk_elements, stats_a)
    sides = (side_a, _Side(wb.source, chunk_elements, stats_b, twin=side_a))
    # A tensor of one chunk has always had its statistics finished inside the comparison, a
    # failure there (a histogram over a huge constant) making it unreadable: kept as it was.
    small = wa.size <= chunk_elements
    try:
        _stream(delta, *sides)
        for side in sides if small else ():
            side.hand_over()
    except READ_ERRORS as exc:
        delta.status, delta.reason = UNREADABLE, f"{type(exc).__name__}: {exc}"[:200]
        return delta
    if delta.dtype_a != delta.dtype_b and delta.status == SAME:
        delta.status = CHANGED
    for side in () if small else sides:
        # left for the rules to meet (and report) again, as before the diff summarized them
        with contextlib.suppress(*READ_ERRORS):
            side.hand_over()
    return delta


class _Side:
    """One tensor's chunks as the comparison reads them, summarized on the way when the rules
    will want its statistics (``prefill``). B starts as A's ``twin``: while its chunks are A's,
    bit for bit, so are its statistics, and only A's are computed."""

    def __init__(self, source: WeightSource, chunk: int, prefill: PrefilledStats | None,
                 twin: _Side | None = None) -> None:
        self.source, self.chunk, self.prefill = source, chunk, prefill
        self.summary = TensorSummary() if prefill is not None else None
        both = self.summary is not None and twin is not None and twin.summary is not None
        self.twin = twin if both else None
        self._read: list[np.ndarray] = []
        self._stats: WeightStats | None = None

    def chunks(self) -> Iterator[np.ndarray]:
        for chunk in self.source.iter_chunks(self.chunk):
            if self.summary is not None:
                self._read.append(chunk)
            yield chunk

    def whole(self, piece: np.ndarray) -> bool:
        """``piece`` is exactly the one chunk read since the last ``catch_up``."""
        return len(self._read) == 1 and self._read[0].size == piece.size

    def part(self) -> None:
        """The bytes differ from the twin's from this chunk on: carry on from its summary of
        the chunks before (the same bytes), before the twin adds this one."""
        self.summary = self.twin.summary.copy()  # type: ignore[union-attr]
        self.twin = None

    def catch_up(self) -> None:
        """Summarize the chunks read so far; called where the comparison converts them, so a
        non-numeric tensor fails at the same point (and with the same message) as it did."""
        if self.twin is None:
            for chunk in self._read:
                self.summary.add(chunk)  # type: ignore[union-attr]
        self._read.clear()

    def finished(self) -> WeightStats:
        """The statistics (a tensor over one chunk is read again for its histogram, as
        ``compute_stats`` does); a twin's are a copy of the twin's."""
        if self._stats is None:
            self._stats = (copy.deepcopy(self.twin.finished()) if self.twin is not None
                           else self.summary.result(self.source, self.chunk))  # type: ignore
        return self._stats

    def hand_over(self) -> None:
        if self.summary is not None and self.prefill is not None:
            self.prefill.put(self.source, self.finished(), self.chunk)


def _stream(delta: WeightDelta, side_a: _Side, side_b: _Side) -> None:
    track = delta.name.rsplit("/", 1)[-1] in BN_STATS
    zero = [True, True]
    one = [True, True]
    total = mismatch = 0
    peak = s_abs = s_d2 = s_a2 = 0.0
    # ||A||^2 of an identical first piece, summed only once a second piece shows it matters
    # (the sum's order is kept): a tensor that is one identical piece has a zero change
    held: np.ndarray | None = None
    for ca, cb in _aligned(side_a.chunks(), side_b.chunks()):
        identical = _same_bytes(ca, cb)
        if side_b.twin is not None and not (identical and side_a.whole(ca)
                                            and side_b.whole(cb)):
            side_b.part()
        side_a.catch_up()
        side_b.catch_up()
        if held is not None:
            s_a2 += _square_sum(_float(held))
            held = None
        total += ca.size
        if identical and not track:
            if total == ca.size:
                held = ca
            else:
                s_a2 += _square_sum(_float(ca))
            continue
        a = _float(ca)
        b = _float(cb)
        if track:
            for side, v in ((0, a), (1, b)):
                zero[side] = zero[side] and not np.any(v)
                one[side] = one[side] and bool(np.all(v == 1.0))
        if identical:
            s_a2 += _square_sum(a)
            continue
        d = np.abs(np.subtract(b, a, out=b), out=b)
        top = d.max()
        if not np.isfinite(top):  # NaN/Inf on a side (or an overflow): leave them out
            b = _float(cb)  # its buffer holds d now
            finite = np.isfinite(d)
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            mismatch += int(np.count_nonzero(~finite & ~same))
            d = d[finite]
            a = a[np.isfinite(a)]
            top = d.max() if d.size else None
        if d.size:
            peak = max(peak, float(top))
            s_abs += float(d.sum())
            s_d2 += float(np.multiply(d, d, out=d).sum())  # not np.dot: BLAS threads cost more
        s_a2 += float(np.multiply(a, a, out=a).sum())
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


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    """Numbers equal bit for bit: every difference figure is zero (a NaN sits on both sides)
    and so is the change to the statistics."""
    if a.dtype != b.dtype or a.dtype.kind not in "biuf":
        return False
    if a.dtype.itemsize in (1, 2, 4, 8):  # compare as unsigned ints: fast, and NaN == NaN
        bits = f"u{a.dtype.itemsize}"
        return bool(np.array_equal(np.ascontiguousarray(a).view(bits),
                                   np.ascontiguousarray(b).view(bits)))
    return a.tobytes() == b.tobytes()


def _square_sum(values: np.ndarray) -> float:
    """Sum of squares of the finite values, as the full path sums an identical piece's A
    (an Inf on both sides gives a NaN difference, so it is left out)."""
    finite = np.isfinite(values)
    if not finite.all():
        values = values[finite]
    return float(np.multiply(values, values, out=values).sum())


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
