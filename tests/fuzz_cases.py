"""Fuzz material shared by tests/test_fuzz.py and benchmarks/fuzz_long.py.

Seeds are the committed fixtures; mutations damage their bytes (bit flips, overwritten or
zeroed ranges, truncation, duplicated chunks) or the JSON inside them (config.json of a
``.keras``, ``model_config``/``training_config`` of an HDF5 file, keras_metadata.pb of a
SavedModel byte-wise): dropped keys, wrong types, huge numbers, deep nesting, long and
unpaired-surrogate strings. ``check_case`` is the oracle: a report or a KinspectError,
within a time bound, never another exception.
"""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from inspector.errors import KinspectError
from inspector.options import Options
from inspector.report.json_out import to_json
from inspector.run.outcome import Outcome
from inspector.run.pipeline import inspect_file

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
MAX_SEED_BYTES = 600 << 10
CASE_TIME_LIMIT_S = 10.0
OPTIONS = Options(probe=False, static_timeout=1.0)
# Beyond this a case is stuck in C code (libhdf5 loops on some crafted files): the isolated
# checker kills it, as the CLI's worker pool does, and counts it as "killed".
KILL_AFTER_S = 2.0


@dataclass(frozen=True)
class Seed:
    path: Path          # the fixture (a file, or a SavedModel directory)
    member: str | None  # for a SavedModel: the file inside it that gets mutated

    @property
    def name(self) -> str:
        rel = self.path.relative_to(FIXTURES)
        return f"{rel}/{self.member}" if self.member else str(rel)


# Files that already hang libhdf5 (regression fixtures) would only measure the kill path.
EXCLUDED = (FIXTURES / "hostile" / "repro",)


def _is_model_file(p: Path) -> bool:
    return (p.is_file() and p.suffix in (".h5", ".keras") and p.stat().st_size <= MAX_SEED_BYTES
            and not any(p.is_relative_to(x) for x in EXCLUDED))


def file_seeds() -> list[Seed]:
    return [Seed(p, None) for p in sorted(FIXTURES.rglob("*")) if _is_model_file(p)]


def savedmodel_seeds() -> list[Seed]:
    out = []
    for pb in sorted(FIXTURES.rglob("saved_model.pb")):
        for member in ("saved_model.pb", "keras_metadata.pb", "variables/variables.index"):
            if (pb.parent / member).is_file():
                out.append(Seed(pb.parent, member))
    return out


def keras_seeds() -> list[Seed]:
    seeds = []
    for s in file_seeds():
        if s.path.suffix != ".keras" or not zipfile.is_zipfile(s.path):
            continue
        try:
            with zipfile.ZipFile(s.path) as z:
                if "config.json" in z.namelist() and len(z.namelist()) < 50:
                    json.loads(z.read("config.json"))
                    seeds.append(s)
        except (zipfile.BadZipFile, ValueError, RuntimeError):
            continue
    return seeds


def h5_json_seeds() -> list[Seed]:
    import h5py

    seeds = []
    for s in file_seeds():
        if s.path.suffix != ".h5":
            continue
        try:
            with h5py.File(s.path, "r") as f:
                if "model_config" not in f.attrs:
                    continue
            for attr in ("model_config", "training_config"):
                text = read_h5_attr(s, attr)
                if text is not None:
                    json.loads(text)  # seeds must parse (the deep-nesting fixture does not)
            seeds.append(s)
        except (OSError, ValueError, RecursionError):
            continue
    return seeds


# --------------------------------------------------------------------------- byte mutations


ByteOp = tuple[str, str, float, int, bytes]


@st.composite
def byte_ops(draw: st.DrawFn) -> list[ByteOp]:
    """A damage recipe (small to print, replayable): (op, region, position, length, bytes)."""
    ops = []
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "overwrite", "zero", "truncate", "dup", "ff"]))
        # Structure (superblock, object headers, zip headers) clusters at both ends.
        region = draw(st.sampled_from(["head", "tail", "any"]))
        where = draw(st.floats(0, 1, exclude_max=True))
        length = draw(st.integers(1, 512 if op == "dup" else 64))
        chunk = draw(st.binary(min_size=length, max_size=length)) if op == "overwrite" else b""
        ops.append((op, region, where, length, chunk))
    return ops


def apply_byte_ops(data: bytes, ops: list[ByteOp]) -> bytes:
    buf = bytearray(data)
    for op, region, where, length, chunk in ops:
        n = len(buf)
        if not n:
            break
        if region == "head":
            pos = int(where * min(n, 4096))
        elif region == "tail":
            pos = max(0, n - 4096) + int(where * min(n, 4096))
        else:
            pos = int(where * n)
        pos = min(pos, n - 1)
        if op == "flip":
            buf[pos] ^= 1 << (length % 8)
        elif op == "overwrite":
            buf[pos:pos + length] = chunk
        elif op in ("zero", "ff"):
            buf[pos:pos + length] = (b"\0" if op == "zero" else b"\xff") * length
        elif op == "truncate":
            del buf[max(pos, 1):]
        else:
            buf[pos:pos] = buf[pos:pos + length]
    return bytes(buf)


# --------------------------------------------------------------------------- JSON mutations

_DEEP = "__kinspect_fuzz_deep_{}__"
WRONG_TYPES: list[Any] = [0, -1, 1.5, "x", "", [], {}, True, None, [[1]], {"a": {}},
                          10**100, -(10**100), 1e308, float("inf"), float("nan"), 2**63,
                          "\udcff\ud800", "A" * 100_000, ["layers"], {"class_name": 3}]


def _containers(value: Any, limit: int = 3000) -> list[tuple[Any, Any]]:
    """(container, key) pairs for every value in the tree, breadth first, at most ``limit``."""
    out: list[tuple[Any, Any]] = []
    queue = [value]
    while queue and len(out) < limit:
        node = queue.pop(0)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in list(items):
            out.append((node, key))
            if isinstance(child, (dict, list)):
                queue.append(child)
    return out


JsonOp = tuple[float, str, int]


@st.composite
def json_ops(draw: st.DrawFn) -> list[JsonOp]:
    """A recipe of 1-4 structural mutations: (which value, operation, argument)."""
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "wrong", "wrong", "deep", "dup", "swap"]))
        arg = draw(st.integers(0, len(WRONG_TYPES) - 1) if op == "wrong"
                   else st.sampled_from([50, 900, 1100, 5000, 30000]) if op == "deep"
                   else st.just(0))
        ops.append((draw(st.floats(0, 1, exclude_max=True)), op, arg))
    return ops


def apply_json_ops(text: str, ops: list[JsonOp]) -> str:
    """The JSON text after the recipe (deep nesting is spliced in as raw text)."""
    value = json.loads(text)
    if not isinstance(value, (dict, list)):
        return text
    deep: dict[str, int] = {}
    for where, op, arg in ops:
        spots = _containers(value)
        if not spots:
            break
        container, key = spots[int(where * len(spots))]
        if op == "drop":
            if isinstance(container, dict):
                del container[key]
            else:
                container.pop(key)
        elif op == "wrong":
            # A copy: inserting the shared object twice could nest it in itself (a cycle)
            # and would mutate WRONG_TYPES for later cases.
            container[key] = copy.deepcopy(WRONG_TYPES[arg])
        elif op == "deep":
            marker = _DEEP.format(len(deep))
            deep[marker] = arg
            container[key] = marker
        elif op == "dup" and isinstance(container, list):
            container.append(json.loads(json.dumps(container[key], allow_nan=True)))
        elif op == "swap":
            child = container[key]
            if isinstance(child, dict):
                container[key] = list(child.values())
            elif isinstance(child, list):
                container[key] = {str(i): v for i, v in enumerate(child)}
    out = json.dumps(value, allow_nan=True)
    for marker, depth in deep.items():
        out = out.replace(json.dumps(marker), "[" * depth + "]" * depth)
    return out


# --------------------------------------------------------------------------- writers


def write_bytes_case(seed: Seed, mutated: bytes, workdir: Path) -> Path:
    if seed.member is None:
        dst = workdir / f"case{seed.path.suffix}"
        dst.write_bytes(mutated)
        return dst
    dst = workdir / "case_savedmodel"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(seed.path, dst)
    (dst / seed.member).write_bytes(mutated)
    return dst


def write_keras_case(seed: Seed, config_text: str, workdir: Path) -> Path:
    dst = workdir / "case.keras"
    buf = io.BytesIO()
    with zipfile.ZipFile(seed.path) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "config.json":
                data = config_text.encode("utf-8", "surrogatepass")
            zout.writestr(info.filename, data)
    dst.write_bytes(buf.getvalue())
    return dst


def write_h5_case(seed: Seed, attr: str, text: str, workdir: Path) -> Path | None:
    """A copy of the HDF5 seed with attribute ``attr`` replaced; None if HDF5 refuses it."""
    import h5py
    import numpy as np

    dst = workdir / "case.h5"
    shutil.copyfile(seed.path, dst)
    try:
        with h5py.File(dst, "r+") as f:
            f.attrs[attr] = np.bytes_(text.encode("utf-8", "surrogatepass"))
    except (OSError, ValueError):
        return None  # over the 64 KiB compact attribute limit
    return dst


def read_h5_attr(seed: Seed, attr: str) -> str | None:
    import h5py

    with h5py.File(seed.path, "r") as f:
        if attr not in f.attrs:
            return None
        raw = f.attrs[attr]
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


# --------------------------------------------------------------------------- oracle


def check_case(path: Path, label: str) -> str:
    """Run the static pass; 'report' or 'error:<kind>'. Anything else fails the case."""
    start = time.perf_counter()
    try:
        report = inspect_file(path, OPTIONS)
    except KinspectError as exc:
        line = exc.one_line()
        assert "\n" not in line, label
        outcome = f"error:{exc.kind.value}"
    else:
        try:
            text = to_json(report)
            text.encode("utf-8")  # what writing it to stdout or a file does
            json.loads(text)
        finally:
            if report.graph.close is not None:
                report.graph.close()
        outcome = "report"
    elapsed = time.perf_counter() - start
    assert elapsed < CASE_TIME_LIMIT_S, f"{label}: {elapsed:.1f} s"
    return outcome


def _check_in_worker(path: str, options: Options, fmt: str) -> Outcome:
    """Worker side of IsolatedChecker: the oracle's verdict, or the failure's traceback.

    Strict mode (KINSPECT_STRICT=1, loud on unknown config shapes) is for healthy fixtures;
    a fuzzed config is unknown by construction, so the worker runs as users do.
    """
    import traceback

    if os.environ.get("KINSPECT_FUZZ_STRICT") != "1":
        os.environ.pop("KINSPECT_STRICT", None)
    try:
        return Outcome(path=path, text=check_case(Path(path), path))
    except BaseException:  # report everything, including a BudgetExpired that escaped
        return Outcome(path=path, text=traceback.format_exc(), error="fail")


class IsolatedChecker:
    """``check_case`` in one forked worker reused across cases (about 1 ms of overhead).

    A case that hangs in C or kills the process ends as "killed" / "crashed", the outcome the
    CLI gives for it; the worker is replaced. Oracle failures come back as AssertionError.
    """

    def __init__(self) -> None:
        self._worker: Any = None
        self.killed: list[str] = []

    def check(self, path: Path, label: str) -> str:
        from inspector.run.isolation import Worker

        if self._worker is None:
            self._worker = Worker(OPTIONS, "", _check_in_worker)
        self._worker.submit(0, str(path))
        outcome = self._worker.wait(KILL_AFTER_S)
        if outcome.error == "fail":
            raise AssertionError(f"{label}:\n{outcome.text}")
        if outcome.error is not None:  # the worker hung or died: replace it
            self._worker.kill()
            self._worker = None
            kind = json.loads(outcome.text)["error"]["kind"]
            self.killed.append(f"{label}: {kind}")
            keep = os.environ.get("KINSPECT_FUZZ_KEEP")  # a folder to collect reproducers in
            if keep:
                dst = Path(keep) / f"{kind}{len(self.killed)}-{path.name}"
                (shutil.copytree if path.is_dir() else shutil.copyfile)(path, dst)
            return "killed" if kind == "timeout" else "crashed"
        return outcome.text

    def close(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
