"""Fuzzing: every fixture's bytes and the JSON inside them, mutated; each case must end in a
report or a KinspectError (the clean exit-2 path) within a time bound. Cases run in one
reused forked worker (``fuzz_cases.IsolatedChecker``): libhdf5 loops forever on some mutated
files, which only a process kill ends, as the CLI does; those count as "killed".

CI size: ``FUZZ_EXAMPLES`` cases in all (>= 5,000), in-process for speed, plus a few CLI
subprocess runs. ``KINSPECT_FUZZ_SCALE=N`` multiplies the example counts
(benchmarks/fuzz_long.py uses it for the long mode).
"""

from __future__ import annotations

import atexit
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import fuzz_cases as fc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SCALE = max(1, int(os.environ.get("KINSPECT_FUZZ_SCALE", "1")))
BYTE_EXAMPLES = 3000 * SCALE
KERAS_JSON_EXAMPLES = 1300 * SCALE
H5_JSON_EXAMPLES = 800 * SCALE
FILE_SEEDS = fc.file_seeds()
ALL_BYTE_SEEDS = FILE_SEEDS + fc.savedmodel_seeds()
KERAS_SEEDS = fc.keras_seeds()
H5_SEEDS = fc.h5_json_seeds()
OUTCOMES: Counter[str] = Counter()
RANDOM = os.environ.get("KINSPECT_FUZZ_RANDOM") == "1"
_SETTINGS = dict(deadline=None, derandomize=not RANDOM, print_blob=False, database=None,
                 suppress_health_check=list(HealthCheck))
_WORKDIR = Path(tempfile.mkdtemp(prefix="kinspect-fuzz-"))
atexit.register(shutil.rmtree, _WORKDIR, True)
CHECKER = fc.IsolatedChecker()
atexit.register(CHECKER.close)


def _seed_bytes(seed: fc.Seed) -> bytes:
    return (seed.path / seed.member if seed.member else seed.path).read_bytes()


def test_seed_sets_cover_every_kind_of_fixture() -> None:
    assert len(FILE_SEEDS) >= 50 and len(KERAS_SEEDS) >= 10 and len(H5_SEEDS) >= 10
    assert len(ALL_BYTE_SEEDS) > len(FILE_SEEDS)  # SavedModel members too


def test_every_fixture_survives_basic_damage() -> None:
    """Deterministic floor under the random search: each seed truncated and header-flipped."""
    for seed in ALL_BYTE_SEEDS:
        data = _seed_bytes(seed)
        for i, damaged in enumerate((data[: len(data) // 2], data[:8] + bytes(256) + data[264:],
                                     data[:-64])):
            path = fc.write_bytes_case(seed, damaged, _WORKDIR)
            OUTCOMES[CHECKER.check(path, f"{seed.name} damage#{i}")] += 1


@settings(max_examples=BYTE_EXAMPLES, **_SETTINGS)
@given(st.data())
def test_fuzz_bytes(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(ALL_BYTE_SEEDS), label="seed")
    mutated = fc.apply_byte_ops(_seed_bytes(seed), data.draw(fc.byte_ops(), label="damage"))
    path = fc.write_bytes_case(seed, mutated, _WORKDIR)
    OUTCOMES[CHECKER.check(path, seed.name)] += 1


@settings(max_examples=KERAS_JSON_EXAMPLES, **_SETTINGS)
@given(st.data())
def test_fuzz_keras_config_json(data: st.DataObject) -> None:
    import zipfile

    seed = data.draw(st.sampled_from(KERAS_SEEDS), label="seed")
    with zipfile.ZipFile(seed.path) as z:
        text = z.read("config.json").decode("utf-8")
    mutated = fc.apply_json_ops(text, data.draw(fc.json_ops(), label="config.json"))
    path = fc.write_keras_case(seed, mutated, _WORKDIR)
    OUTCOMES[CHECKER.check(path, seed.name)] += 1


@settings(max_examples=H5_JSON_EXAMPLES, **_SETTINGS)
@given(st.data())
def test_fuzz_h5_config_json(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(H5_SEEDS), label="seed")
    attr = data.draw(st.sampled_from(["model_config", "model_config", "training_config"]))
    text = fc.read_h5_attr(seed, attr)
    if text is None:
        attr, text = "model_config", fc.read_h5_attr(seed, "model_config")
    assert text is not None
    mutated = fc.apply_json_ops(text, data.draw(fc.json_ops(), label=attr))
    path = fc.write_h5_case(seed, attr, mutated, _WORKDIR)
    if path is not None:
        OUTCOMES[CHECKER.check(path, f"{seed.name}:{attr}")] += 1


def test_cli_on_mutated_files_exits_cleanly(tmp_path: Path) -> None:
    """A few cases through the real CLI, one file at a time and as a -j 2 batch."""
    rng = random.Random(6)
    paths = []
    for i, seed in enumerate(rng.sample(FILE_SEEDS, 12)):
        data = bytearray(seed.path.read_bytes())
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(min(len(data), 4096))] = rng.randrange(256)
        p = tmp_path / f"case{i}{seed.path.suffix}"
        p.write_bytes(bytes(data))
        paths.append(str(p))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for args in (["--json", "--no-probe", paths[0]], ["--no-probe", paths[1]],
                 ["--json", "--no-probe", *paths], ["-j", "2", "--json", "--no-probe", *paths]):
        done = subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True,
                              text=True, env=env, timeout=240)
        assert done.returncode in (0, 1, 2), done.stderr
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        if "--json" in args and len(args) > 3:
            records = [json.loads(line) for line in done.stdout.splitlines()]
            assert [r.get("path") or r["model"]["path"] for r in records] == paths
            assert (done.returncode == 2) == any("error" in r for r in records)


def test_zz_report_fuzz_totals() -> None:
    """Prints what the run did (shown with -s / in -rA summaries); runs after the fuzzers."""
    total = sum(OUTCOMES.values())
    print(f"fuzz cases: {total} {dict(sorted(OUTCOMES.items()))}")
    for line in CHECKER.killed:
        print(f"  contained by the worker kill: {line}")
    if total:
        assert total >= len(ALL_BYTE_SEEDS)
