"""Crafted broken containers and configs: a clear finding or a clear error, quickly, always.

``fixtures/hostile/manifest.json`` (written by fixtures/hostile_crafted.py) says per file
whether a report (with a given rule) or an error (of a given kind) is required.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from inspector.errors import ErrorKind, KinspectError
from inspector.options import Options
from inspector.report.json_out import to_json
from inspector.run.pipeline import inspect_file

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "fixtures" / "hostile"
MANIFEST: dict[str, dict[str, str]] = json.loads((HOSTILE / "manifest.json").read_text())
TIME_LIMIT_S = 10.0


def _outcome(path: Path, options: Options | None = None) -> tuple[object, float]:
    start = time.perf_counter()
    try:
        report = inspect_file(path, options or Options(probe=False, static_timeout=30))
    except KinspectError as exc:
        return exc, time.perf_counter() - start
    try:
        json.loads(to_json(report))
    finally:
        if report.graph.close is not None:
            report.graph.close()
    return report, time.perf_counter() - start


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_hostile_file_gives_clear_outcome(name: str) -> None:
    expect = MANIFEST[name]
    outcome, elapsed = _outcome(HOSTILE / name)
    assert elapsed < TIME_LIMIT_S, f"{name} took {elapsed:.1f} s"
    if isinstance(outcome, KinspectError):
        assert expect["expect"] in ("error", "either"), outcome.one_line()
        line = outcome.one_line()
        assert "\n" not in line and "Traceback" not in line and len(line) < 400
        if "kind" in expect:
            assert outcome.kind.value == expect["kind"], line
        return
    assert expect["expect"] in ("report", "either"), f"{name}: expected an error"
    if "rule" in expect:
        rules = {f.rule for f in outcome.findings}  # type: ignore[attr-defined]
        assert expect["rule"] in rules, sorted(rules)


def _issues(path: Path) -> dict[str, str]:
    from inspector.readers import open_model

    graph = open_model(path)
    try:
        return {i.kind: i.location for i in graph.container_issues}
    finally:
        if graph.close is not None:
            graph.close()


def test_hdf5_links_and_foreign_storage_are_not_followed() -> None:
    h5 = HOSTILE / "h5"
    assert "hdf5-external-link" in _issues(h5 / "external_link.h5")
    assert "hdf5-soft-link" in _issues(h5 / "soft_link.h5")
    assert "hdf5-external-storage" in _issues(h5 / "external_storage.h5")
    assert "hdf5-virtual-dataset" in _issues(h5 / "virtual_dataset.h5")
    assert "hdf5-oversized-dataset" in _issues(h5 / "shape_bomb.h5")


def test_shape_bomb_is_never_read_whole() -> None:
    """4 TiB declared: stats must skip it (a whole read would raise MemoryError or swap)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report, elapsed = _outcome(HOSTILE / "h5" / "shape_bomb.h5")
    assert not isinstance(report, KinspectError)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200 and elapsed < TIME_LIMIT_S


def test_zip_member_names_are_never_used_to_write(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    targets = [Path("/tmp/kinspect-evil"), Path("/tmp/kinspect-evil-abs"),
               tmp_path.parent / "kinspect-evil", tmp_path / "kinspect-evil"]
    before = {t: t.exists() for t in targets}
    _outcome(HOSTILE / "zip" / "path_traversal.keras")
    assert {t: t.exists() for t in targets} == before
    assert list(tmp_path.iterdir()) == []


def test_static_time_budget_ends_a_slow_file_with_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget interrupts Python-level work anywhere in the static pass (here: the rules)."""
    import inspector.run.pipeline as analyze

    real = analyze.run_rules

    def slow_rules(*args: object, **kwargs: object) -> object:
        time.sleep(30)  # stands for a pathological loop; the alarm interrupts the sleep
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(analyze, "run_rules", slow_rules)
    path = ROOT / "fixtures" / "models" / "mlp" / "k3.keras"
    start = time.perf_counter()
    with pytest.raises(KinspectError) as info:
        inspect_file(path, Options(probe=False, static_timeout=0.5))
    assert time.perf_counter() - start < 5
    assert info.value.kind == ErrorKind.TIMEOUT
    assert "--timeout" in info.value.message


def test_budget_is_not_swallowed_by_broad_exception_handlers() -> None:
    from inspector.budget import time_budget

    start = time.perf_counter()
    with pytest.raises(KinspectError) as info, time_budget(0.2, "x.h5"):
        while True:
            with contextlib.suppress(Exception):  # what the rule registry does with a crash
                time.sleep(0.05)
    assert info.value.kind == ErrorKind.TIMEOUT and time.perf_counter() - start < 3


def test_read_only_copies_inspect_fine(tmp_path: Path) -> None:
    """Files are opened read-only: a read-only copy of every container kind works."""
    sources = [ROOT / "fixtures" / "models" / "mlp" / n for n in ("k3.keras", "k2.h5")]
    sources.append(HOSTILE / "canary" / "lambda" / "k2_savedmodel")
    for src in sources:
        dst = tmp_path / src.name
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)
        for p in [dst, *dst.rglob("*")] if dst.is_dir() else [dst]:
            if p.is_file():
                os.chmod(p, stat.S_IRUSR | stat.S_IRGRP)
        outcome, _ = _outcome(dst)
        assert not isinstance(outcome, KinspectError), outcome


REPROS = sorted((HOSTILE / "repro").glob("*.h5"))


@pytest.mark.parametrize("repro", REPROS, ids=lambda p: p.name)
def test_libhdf5_hangs_found_by_fuzzing_end_with_a_clean_error(repro: Path) -> None:
    """libhdf5 loops forever (inside one C call, no signal gets through) reading these files'
    attributes. A reader pre-check may refuse them up front; otherwise the CLI's worker is
    killed after --timeout + grace. Alone or in a -j 2 batch: exit 2, quickly."""
    import subprocess
    import sys

    good = str(ROOT / "fixtures" / "models" / "mlp" / "k2.h5")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for args, lines in ((["--timeout", "1", str(repro)], 0),
                        (["--json", "-j", "2", "--timeout", "1", str(repro), good, good], 3)):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "inspector", "--no-probe", *args],
                              capture_output=True, text=True, env=env, timeout=120)
        assert time.perf_counter() - start < 40
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"kinspect: {repro}:") and "Traceback" not in done.stderr
        records = [json.loads(line) for line in done.stdout.splitlines()]
        assert len(records) == lines
        if lines:
            assert records[0]["error"]["kind"] in ("corrupt", "timeout")
            assert all("model" in r for r in records[1:])


def test_config_json_over_the_cap_is_refused_before_reading(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    """A stored (uncompressed) config.json over the cap: no zip-bomb ratio involved, the size
    cap alone refuses it (the real cap is 64 MiB; lowered here to keep the fixture small)."""
    import zipfile

    from inspector.readers import keras_zip

    src = ROOT / "fixtures" / "models" / "mlp" / "k3.keras"
    dst = tmp_path / "stored.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    size = zipfile.ZipFile(dst).getinfo("config.json").file_size
    monkeypatch.setattr(keras_zip, "MAX_CONFIG_BYTES", size - 1)
    outcome, _ = _outcome(dst)
    assert isinstance(outcome, KinspectError) and outcome.kind == ErrorKind.TOO_LARGE
    assert "config.json" in outcome.message and str(size - 1) in outcome.message
