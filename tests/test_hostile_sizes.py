"""Small hostile files must not make the static pass inflate or parse far more than they hold.

Classes (fixtures/hostile_sizes.py builds each; the committed ``hostile/sizes/`` files sit
just past the default limits, the tmp_path variants are tiny with a limit lowered here):
HDF5 chunks that inflate past the per-read budget, zip headers that lie about sizes, JSON
configs that are small in bytes and huge in objects.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from helpers import PEAK_RSS_KIB

from inspector.errors import ErrorKind, KinspectError
from inspector.readers import keras_zip, open_model, safe_io
from inspector.readers.safe_io import JsonTooLarge, load_json
from inspector.stats import StatsCache

ROOT = Path(__file__).resolve().parent.parent
SIZES = ROOT / "fixtures" / "hostile" / "sizes"
sys.path.insert(0, str(ROOT / "fixtures"))
import hostile_sizes  # noqa: E402

KIB, MIB = 1 << 10, 1 << 20


def _weights(path: Path) -> tuple[list[Any], list[str], StatsCache]:
    graph = open_model(path)
    try:
        weights = [w for node in graph.walk() for w in node.weights] + graph.loose_weights
        stats = StatsCache()
        for w in weights:
            stats.get(w)
        return weights, [i.kind for i in graph.container_issues], stats
    finally:
        if graph.close is not None:
            graph.close()


def _kernel(weights: list[Any]) -> Any:
    return next(w for w in weights if w.storage_path.endswith("dense/kernel"))


# ----------------------------------------------------------------------------- HDF5 chunks

H5_CLASSES: dict[str, Callable[[Path, int], None]] = {
    "big_chunk": hostile_sizes.big_chunk_h5,
    "extendible_chunk": hostile_sizes.extendible_chunk_h5,
    "lying_chunk": hostile_sizes.lying_chunk_h5,
}


@pytest.mark.parametrize("kind", sorted(H5_CLASSES))
def test_committed_chunk_bombs_are_flagged_and_never_read(kind: str) -> None:
    weights, issues, stats = _weights(SIZES / f"{kind}.h5")
    kernel = _kernel(weights)
    assert "hdf5-oversized-chunk" in issues
    assert kernel.source.readable is False
    assert stats.get(kernel) is None
    assert "refused by the container guard" in (stats.error(kernel) or "")


@pytest.mark.parametrize("kind", sorted(H5_CLASSES))
def test_chunk_limit_is_the_per_read_budget(kind: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The same classes scaled down: 1 MiB chunks against a 256 KiB budget."""
    monkeypatch.setattr(safe_io, "MAX_CHUNK_BYTES", 256 * KIB)
    path = tmp_path / f"{kind}.h5"
    H5_CLASSES[kind](path, MIB)
    weights, issues, stats = _weights(path)
    assert issues.count("hdf5-oversized-chunk") == 1
    assert stats.get(_kernel(weights)) is None


def test_chunks_within_the_budget_are_read_whole_once_each(tmp_path: Path) -> None:
    """A compressed chunk bigger than one stats slice is read chunk by chunk (each inflated
    once), and the figures still match numpy."""
    values = np.random.default_rng(3).normal(size=(64, 4096)).astype("f4")
    path = tmp_path / "chunky.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("w", data=values, chunks=(32, 4096), compression="gzip")
    from inspector.readers.safe_io import H5WeightSource, LazyH5
    from inspector.stats import compute_stats

    lazy = LazyH5(lambda: h5py.File(path, "r"))
    source = H5WeightSource(lazy, "/w", values.shape)
    try:
        pieces = list(source.iter_chunks(10_000))
        stats = compute_stats(source, chunk_elements=10_000)
    finally:
        lazy.close()
    assert max(p.size for p in pieces) <= 10_000
    assert np.array_equal(np.concatenate(pieces), values.reshape(-1))
    assert stats.mean == pytest.approx(float(values.astype("f8").mean()), rel=1e-9)
    assert stats.max == pytest.approx(float(values.max()))


def test_honest_compressed_chunks_pass_the_check(tmp_path: Path) -> None:
    path = tmp_path / "ok.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("w", data=np.zeros((300, 300), "f4"), chunks=(100, 100),
                         compression="gzip", shuffle=True, fletcher32=True)
    with h5py.File(path, "r") as f:
        assert safe_io.chunk_problem(f["w"]) is None


# ----------------------------------------------------------------------------- zip sizes


def test_committed_lying_zip_is_not_extracted() -> None:
    path = SIZES / "lying_compress_size.keras"
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("model.weights.h5")
        assert info.file_size <= 200 * info.compress_size  # passes the declared-ratio guard
    weights, issues, _ = _weights(path)
    assert issues == ["zip-member-too-large"]
    assert weights == []


def test_spool_stops_at_twice_the_archive(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured while inflating: the temp file never grows past the cap."""
    monkeypatch.setattr(keras_zip, "SPOOL_FLOOR", 0)
    spooled: list[Any] = []
    original = tempfile.TemporaryFile

    def temporary_file() -> Any:
        spooled.append(original())
        return spooled[-1]

    monkeypatch.setattr(keras_zip.tempfile, "TemporaryFile", temporary_file)
    path = tmp_path / "lying.keras"
    hostile_sizes.lying_zip(path, 8 * MIB)
    weights, issues, _ = _weights(path)
    assert "zip-member-too-large" in issues and weights == []
    assert spooled and all(f.closed for f in spooled)
    # the spool was closed before it could be measured: re-run the opener to measure it
    owned: list[Any] = []
    with zipfile.ZipFile(path) as z:
        opener = keras_zip.weights_opener(str(path), z.getinfo("model.weights.h5"), owned)
    with pytest.raises(keras_zip.SpoolTooLarge):
        opener()
    assert owned[0].tell() <= 2 * path.stat().st_size
    owned[0].close()


def test_deflated_archive_within_the_cap_still_gives_stats(tmp_path: Path) -> None:
    """Keras stores members; a re-zipped (deflated) archive keeps working."""
    src = ROOT / "fixtures" / "models" / "mlp" / "k3.keras"
    path = tmp_path / "deflated.keras"
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as b:
        for info in a.infolist():
            b.writestr(info.filename, a.read(info.filename))
    weights, issues, stats = _weights(path)
    assert issues == [] and weights
    assert all(stats.get(w) is not None for w in weights)


def test_compressed_size_past_the_archive_end_is_a_lie(tmp_path: Path) -> None:
    path = tmp_path / "lie.keras"
    shutil_src = ROOT / "fixtures" / "models" / "mlp" / "k3.keras"
    path.write_bytes(shutil_src.read_bytes())
    hostile_sizes.patch_member_size(path, "config.json", 1 << 30, compressed=True)
    with pytest.raises(KinspectError) as err:
        open_model(path)
    assert err.value.kind == ErrorKind.CORRUPT and "lying zip header" in str(err.value)


# ----------------------------------------------------------------------------- JSON budget


@pytest.mark.parametrize("name", ["many_objects.keras", "many_values.keras"])
def test_committed_object_bombs_are_refused(name: str) -> None:
    with pytest.raises(KinspectError) as err:
        open_model(SIZES / name)
    assert err.value.kind == ErrorKind.TOO_LARGE
    assert "too large to parse safely" in str(err.value)


@pytest.mark.parametrize(("text", "limit"), [
    ("[" + ",".join(["{}"] * 50) + "]", "MAX_JSON_CONTAINERS"),
    ("[" + ",".join(["[]"] * 50) + "]", "MAX_JSON_CONTAINERS"),
    ("[" + ",".join(['"x"'] * 50) + "]", "MAX_JSON_VALUES"),
    ('{"a": ' + "[" * 30 + "]" * 30 + "}", "MAX_JSON_DEPTH"),
])
def test_json_budget_counts_objects_values_and_depth(
        text: str, limit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safe_io, limit, 20)
    with pytest.raises(JsonTooLarge):
        load_json(text)
    monkeypatch.setattr(safe_io, limit, 100)
    assert load_json(text) == json.loads(text)


def test_brackets_and_commas_inside_strings_do_not_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for limit in ("MAX_JSON_CONTAINERS", "MAX_JSON_VALUES", "MAX_JSON_DEPTH"):
        monkeypatch.setattr(safe_io, limit, 10)
    text = json.dumps({"doc": "[{" * 500 + ',:' * 500, "escaped": 'a\\"[[[[[[[[[[[[[["'})
    assert load_json(text)["doc"].startswith("[{")


def test_h5_model_config_is_budgeted_too(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safe_io, "MAX_JSON_CONTAINERS", 1000)
    path = tmp_path / "many.h5"
    hostile_sizes.config_h5(path, hostile_sizes.many_objects_config(2000))
    with pytest.raises(KinspectError) as err:
        open_model(path)
    assert err.value.kind == ErrorKind.TOO_LARGE and "model_config" in str(err.value)


# ----------------------------------------------------------------------------- memory

_MEASURE = f"""
import sys
from inspector.run.pipeline import analyze_static
from inspector.errors import KinspectError
from inspector.options import Options
try:
    analyze_static(sys.argv[1], Options(probe=False))
except KinspectError:
    pass
print({PEAK_RSS_KIB})
"""


def _peak_kib(path: Path) -> int:
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True,
                         text=True, check=True, timeout=120)
    return int(out.stdout.split()[-1])


def test_static_pass_memory_stays_near_a_healthy_file() -> None:
    """Each committed file would inflate 40-200 MiB; the pass stays within 40 MiB of the
    same measure on a healthy model."""
    baseline = _peak_kib(ROOT / "fixtures" / "models" / "mlp" / "k3.h5")
    for path in sorted(SIZES.iterdir()):
        assert _peak_kib(path) < baseline + 40 * 1024, path.name
