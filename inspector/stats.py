"""Streaming per-weight statistics: memory stays near one chunk, whatever the tensor size.

min/max/mean/std come from a float64 sum / sum-of-squares pass (with a shift by the first
finite value to keep the variance stable); the 16-bin histogram needs the range first, so a
tensor larger than one chunk is read twice. ``StatsCache`` keys results by storage path so the
report, the rules and the TUI share one pass per file.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from inspector.graph import WeightInfo, WeightSource

HIST_BINS = 16
DEFAULT_CHUNK = 1 << 20
STOPPED = "not computed: the statistics pass was cancelled"
# What reading or summarizing a tensor may raise: that tensor's problem, never a crash.
READ_ERRORS = (OSError, ValueError, TypeError, KeyError, RuntimeError)

# ``on_progress(done, total)``: elements summarized so far out of all to summarize.
Progress = Callable[[int, int], None]


@dataclass
class WeightStats:
    """Summary of one tensor; NaN/Inf are counted and left out of every other figure."""

    count: int = 0
    finite_count: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    zero_fraction: float = 0.0
    nan_count: int = 0
    inf_count: int = 0
    hist_edges: list[float] = field(default_factory=list)
    hist_counts: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Accumulator:
    def __init__(self) -> None:
        self.count = 0
        self.finite = 0
        self.zeros = 0
        self.nans = 0
        self.infs = 0
        self.shift: float | None = None
        self.s1 = 0.0
        self.s2 = 0.0
        self.lo = math.inf
        self.hi = -math.inf
        # Two float64 work buffers reused across chunks: allocating fresh 8 MB arrays per
        # chunk costs more in page faults than the arithmetic itself.
        self._buffers: list[np.ndarray] = [np.empty(0), np.empty(0)]

    def fork(self) -> _Accumulator:
        """The same running figures with work buffers of its own (results returned by
        ``add`` are views of the buffers)."""
        twin = copy.copy(self)
        twin._buffers = [np.empty(0), np.empty(0)]
        return twin

    def _buffer(self, which: int, size: int) -> np.ndarray:
        if self._buffers[which].size < size:
            self._buffers[which] = np.empty(size, dtype=np.float64)
        return self._buffers[which][:size]

    def add(self, chunk: np.ndarray) -> np.ndarray:
        """Update running figures; returns the chunk's finite values as float64."""
        values = _numeric(chunk)
        self.count += values.size
        if values.size == 0:
            return values.astype(np.float64)
        lo, hi = values.min(), values.max()
        if not (np.isfinite(lo) and np.isfinite(hi)):  # NaN/Inf present: split them out
            finite_mask = np.isfinite(values)
            nans = int(np.count_nonzero(np.isnan(values)))
            self.nans += nans
            self.infs += values.size - int(np.count_nonzero(finite_mask)) - nans
            values = values[finite_mask]
            if values.size == 0:
                return values.astype(np.float64)
            lo, hi = values.min(), values.max()
        v64 = self._buffer(0, values.size)
        np.copyto(v64, values, casting="unsafe")
        self.finite += v64.size
        self.zeros += v64.size - int(np.count_nonzero(v64))
        if self.shift is None:
            self.shift = float(v64[0])
        centered = np.subtract(v64, self.shift, out=self._buffer(1, v64.size))
        self.s1 += float(centered.sum())
        # square in place and sum: np.dot would go through BLAS, whose threads cost more
        # than they save on busy machines and small tensors
        self.s2 += float(np.multiply(centered, centered, out=centered).sum())
        self.lo = min(self.lo, float(lo))
        self.hi = max(self.hi, float(hi))
        return v64

    def result(self) -> WeightStats:
        stats = WeightStats(count=self.count, finite_count=self.finite, nan_count=self.nans,
                            inf_count=self.infs)
        if self.count:
            stats.zero_fraction = self.zeros / self.count
        if self.finite and self.shift is not None:
            mean_c = self.s1 / self.finite
            var = max(self.s2 / self.finite - mean_c * mean_c, 0.0)
            stats.mean = self.shift + mean_c
            stats.std = math.sqrt(var)
            stats.min = self.lo
            stats.max = self.hi
        return stats


def _numeric(chunk: np.ndarray) -> np.ndarray:
    values = np.asarray(chunk).reshape(-1)
    if values.dtype.kind == "b":
        return values.astype(np.uint8)
    if values.dtype.kind not in "iuf":
        raise TypeError(f"non-numeric weight dtype {values.dtype}")
    return values


def _range(lo: float, hi: float) -> tuple[float, float]:
    return (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)


def _histogram(chunks: Iterable[np.ndarray], lo: float, hi: float
               ) -> tuple[list[float], list[int]]:
    """16 equal bins over [lo, hi] (numpy's uniform-bin fast path: no sorting)."""
    rng = _range(lo, hi)
    counts = np.zeros(HIST_BINS, dtype=np.int64)
    for values in chunks:
        if values.size:
            counts += np.histogram(values, bins=HIST_BINS, range=rng)[0]
    return np.linspace(rng[0], rng[1], HIST_BINS + 1).tolist(), counts.tolist()


def _finite(chunk: np.ndarray) -> np.ndarray:
    values = _numeric(chunk)
    if values.size and not (np.isfinite(values.min()) and np.isfinite(values.max())):
        values = values[np.isfinite(values)]
    return values.astype(np.float64)


class TensorSummary:
    """The statistics of one tensor fed chunk by chunk by a caller that reads the chunks for
    its own use too (the diff compares them): ``compute_stats`` without a read of its own."""

    def __init__(self) -> None:
        self._acc = _Accumulator()
        self._chunks = 0
        self._first: np.ndarray | None = None

    def add(self, chunk: np.ndarray) -> None:
        values = self._acc.add(chunk)
        self._chunks += 1
        # one chunk: its histogram reuses these values; more: they are read again for it
        self._first = values if self._chunks == 1 else None

    def copy(self) -> TensorSummary:
        """The same point of the pass, for another tensor whose chunks so far were these, bit
        for bit (the diff of two equal tensors summarizes one side only)."""
        twin = TensorSummary()
        twin._acc = self._acc.fork()
        twin._chunks = self._chunks
        twin._first = None if self._first is None else self._first.copy()
        return twin

    def result(self, source: WeightSource, chunk_elements: int) -> WeightStats:
        """The figures; the histogram of a tensor fed in several chunks reads it again."""
        stats = self._acc.result()
        if stats.min is None or stats.max is None:
            return stats
        chunks: Iterable[np.ndarray]
        if self._first is not None:
            chunks = [self._first]
        else:
            chunks = (_finite(c) for c in source.iter_chunks(chunk_elements))
        stats.hist_edges, stats.hist_counts = _histogram(chunks, stats.min, stats.max)
        return stats


def compute_stats(source: WeightSource, *, chunk_elements: int = DEFAULT_CHUNK) -> WeightStats:
    """Stats of one tensor read chunk by chunk (one pass if it fits one chunk, else two)."""
    summary = TensorSummary()
    for chunk in source.iter_chunks(chunk_elements):
        summary.add(chunk)
    return summary.result(source, chunk_elements)


class StatsCache:
    """Per-file cache of WeightStats keyed by ``WeightInfo.storage_path``; thread-safe."""

    def __init__(self, chunk_elements: int = DEFAULT_CHUNK,
                 compute: Callable[..., WeightStats] = compute_stats) -> None:
        self.chunk_elements = chunk_elements
        self._compute = compute
        self._results: dict[str, WeightStats] = {}
        self._errors: dict[str, str] = {}
        self._stopped = False
        self._lock = threading.Lock()

    def get(self, weight: WeightInfo) -> WeightStats | None:
        """Stats of ``weight`` (computed once); None when its values cannot be read."""
        key = weight.storage_path
        with self._lock:
            if key in self._results:
                return self._results[key]
            if key in self._errors or weight.source is None:
                return None
            if self._stopped:
                self._errors[key] = STOPPED
                return None
        try:
            stats = self._compute(weight.source, chunk_elements=self.chunk_elements)
        except READ_ERRORS as exc:
            with self._lock:
                self._errors[key] = f"{type(exc).__name__}: {exc}"
            return None
        with self._lock:
            self._results[key] = stats
        return stats

    def fill(self, weights: Iterable[WeightInfo], *, on_progress: Progress | None = None,
             cancel: threading.Event | None = None) -> bool:
        """Compute the stats of ``weights`` in one pass, calling ``on_progress(done, total)``
        (in elements) after each tensor; False when ``cancel`` was set before the end.

        The TUI runs this in a worker thread to show the pass and let the user stop it; the
        check falls between tensors, so the largest tensor bounds the delay.
        """
        todo = list(weights)
        total = sum(w.size for w in todo)
        done = 0
        if on_progress is not None:
            on_progress(0, total)
        for w in todo:
            if cancel is not None and cancel.is_set():
                return False
            self.get(w)
            done += w.size
            if on_progress is not None:
                on_progress(done, total)
        return True

    def stop(self) -> None:
        """From now on, tensors not computed yet stay missing (``error`` says why)."""
        with self._lock:
            self._stopped = True

    def error(self, weight: WeightInfo) -> str | None:
        """Why the stats of ``weight`` are missing, if reading them failed."""
        with self._lock:
            return self._errors.get(weight.storage_path)

    def peek(self, weight: WeightInfo) -> WeightStats | None:
        """Cached stats only; never reads the file (for UIs that must not block)."""
        with self._lock:
            return self._results.get(weight.storage_path)

    def __len__(self) -> int:
        with self._lock:
            return len(self._results)
