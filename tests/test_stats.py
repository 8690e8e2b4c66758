"""Streaming weight statistics agree with numpy on the whole array, chunked or not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from inspector.graph import WeightInfo
from inspector.readers.safe_io import H5WeightSource, LazyH5
from inspector.stats import HIST_BINS, StatsCache, compute_stats


class ArraySource:
    """In-memory WeightSource that counts how often the data is streamed."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.passes = 0
        self.largest_chunk = 0

    def read(self) -> np.ndarray:
        return self.array

    def iter_chunks(self, max_elements: int) -> Iterator[np.ndarray]:
        self.passes += 1
        flat = self.array.reshape(-1)
        for start in range(0, flat.size, max_elements):
            chunk = flat[start:start + max_elements]
            self.largest_chunk = max(self.largest_chunk, chunk.size)
            yield chunk


def _reference(a: np.ndarray) -> dict[str, float]:
    f = a.astype(np.float64).reshape(-1)
    fin = f[np.isfinite(f)]
    counts, edges = np.histogram(fin, bins=HIST_BINS, range=(fin.min(), fin.max()))
    return {"min": fin.min(), "max": fin.max(), "mean": fin.mean(), "std": fin.std(),
            "zero": float((f == 0).sum()) / f.size, "counts": counts.tolist(),
            "edges": edges.tolist()}


@pytest.mark.parametrize("chunk", [1 << 20, 1000, 7])
def test_matches_numpy(chunk: int) -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(3.0, 2.0, size=(50, 40)).astype(np.float32)
    a[0, :10] = 0.0
    a[1, 0] = np.nan
    a[2, 0] = np.inf
    a[3, 0] = -np.inf
    src = ArraySource(a)
    s = compute_stats(src, chunk_elements=chunk)
    ref = _reference(a)
    assert s.count == a.size and s.nan_count == 1 and s.inf_count == 2
    assert s.finite_count == a.size - 3
    assert s.min == pytest.approx(ref["min"]) and s.max == pytest.approx(ref["max"])
    assert s.mean == pytest.approx(ref["mean"], rel=1e-9)
    assert s.std == pytest.approx(ref["std"], rel=1e-9)
    assert s.zero_fraction == pytest.approx(ref["zero"])
    assert s.hist_counts == ref["counts"]
    assert s.hist_edges == pytest.approx(ref["edges"])
    assert sum(s.hist_counts) == s.finite_count
    assert src.passes == (1 if chunk >= a.size else 2)
    assert src.largest_chunk <= chunk
    d = s.as_dict()
    assert set(d) >= {"min", "max", "mean", "std", "zero_fraction", "nan_count", "inf_count",
                      "hist_edges", "hist_counts"}


def test_large_offset_keeps_variance_precise() -> None:
    a = (1e8 + np.arange(10_000, dtype=np.float64) % 7)
    s = compute_stats(ArraySource(a), chunk_elements=999)
    assert s.std == pytest.approx(a.std(), rel=1e-9)


def test_constant_all_nan_and_empty() -> None:
    s = compute_stats(ArraySource(np.full((4, 4), 2.5, np.float32)))
    assert (s.min, s.max, s.std) == (2.5, 2.5, 0.0)
    assert sum(s.hist_counts) == 16 and len(s.hist_edges) == HIST_BINS + 1
    s = compute_stats(ArraySource(np.full(5, np.nan)))
    assert s.nan_count == 5 and s.mean is None and s.hist_counts == []
    s = compute_stats(ArraySource(np.zeros((0, 3), np.float32)))
    assert s.count == 0 and s.min is None


def test_h5_source_streams_slices(tmp_path: Path) -> None:
    p = tmp_path / "w.h5"
    a = np.random.default_rng(2).normal(size=(30, 20, 3)).astype(np.float32)
    with h5py.File(p, "w") as f:
        f["w"] = a
    lazy = LazyH5(lambda: h5py.File(p, "r"))
    src = H5WeightSource(lazy, "/w", a.shape)
    chunks = list(src.iter_chunks(50))
    assert max(c.size for c in chunks) <= 50
    assert np.array_equal(np.concatenate(chunks), a.reshape(-1))
    s = compute_stats(src, chunk_elements=100)
    assert s.mean == pytest.approx(float(a.astype(np.float64).mean()), rel=1e-9)
    lazy.close()


def test_cache_computes_once_and_records_errors() -> None:
    calls = []

    def counting(source: ArraySource, *, chunk_elements: int) -> object:
        calls.append(chunk_elements)
        return compute_stats(source, chunk_elements=chunk_elements)

    cache = StatsCache(compute=counting)
    w = WeightInfo("kernel", (3,), "float32", "/a/kernel", ArraySource(np.ones(3)))
    assert cache.peek(w) is None
    first = cache.get(w)
    assert cache.get(w) is first and cache.peek(w) is first and len(calls) == 1

    class Broken:
        def read(self) -> np.ndarray:
            raise OSError("gone")

        def iter_chunks(self, max_elements: int) -> Iterator[np.ndarray]:
            raise OSError("gone")

    bad = WeightInfo("bias", (3,), "float32", "/a/bias", Broken())
    assert cache.get(bad) is None
    assert "gone" in (cache.error(bad) or "")
