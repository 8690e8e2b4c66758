"""End to end through the CLI: a probe child that crashes, hangs or runs out of memory leaves
kinspect running, with the report's probe status and an ``errors[]`` entry saying why, for one
file and for a ``-j 2`` batch. (The runner-level cases live in test_probe_runner.py.)"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inspector.probe.child import FAULT_ENV

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "fixtures" / "models" / "mlp" / "k3.keras"

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                                reason="the probe is skipped without TensorFlow")


def _kinspect(args: list[str], fault: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, FAULT_ENV: fault, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "inspector", "--json", *args],
                          capture_output=True, text=True, env=env, timeout=240)
    return done, time.monotonic() - start


def _probe_error(record: dict) -> tuple[str, str]:
    probe = record["probe"]
    errors = [e for e in record["errors"] if e.get("source") == "probe"]
    assert len(errors) == 1, record["errors"]
    return probe["status"], errors[0]["kind"]


@pytest.mark.parametrize(("fault", "args", "status", "kind"), [
    ("segfault", [], "failed", "probe-crashed"),
    ("exit", [], "failed", "probe-crashed"),
    ("hang", ["--probe-timeout", "2"], "timeout", "probe-timeout"),
    pytest.param("oom", ["--probe-memory", "1024"], "failed", "probe-memory",
                 marks=pytest.mark.skipif(not sys.platform.startswith("linux"),
                                          reason="RLIMIT_AS is Linux-only")),
])
def test_probe_death_is_an_errors_entry_not_a_dead_kinspect(
        fault: str, args: list[str], status: str, kind: str) -> None:
    done, elapsed = _kinspect([*args, str(MODEL)], fault)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert _probe_error(json.loads(done.stdout)) == (status, kind)
    assert elapsed < 120


def test_batch_survives_every_probe_crash() -> None:
    paths = [str(MODEL), str(ROOT / "fixtures" / "models" / "cnn_bn" / "k3.keras"),
             str(ROOT / "fixtures" / "hostile" / "zip" / "not_a_zip.keras")]
    done, _ = _kinspect(["-j", "2", *paths], "segfault")
    assert done.returncode == 2, done.stderr[-2000:]   # the not-a-zip file is unreadable
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r.get("path") or r["model"]["path"] for r in records] == paths
    for record in records[:2]:
        assert _probe_error(record) == ("failed", "probe-crashed")
    assert records[2]["error"]["kind"] == "corrupt"


def test_hang_within_the_static_budget_is_not_confused_with_the_probe_timeout() -> None:
    """The worker's kill limit includes --probe-timeout: a slow probe is not killed early."""
    done, elapsed = _kinspect(["--timeout", "1", "--probe-timeout", "8", str(MODEL)], "hang")
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert _probe_error(json.loads(done.stdout)) == ("timeout", "probe-timeout")
    assert 7 < elapsed < 60


def test_a_crashed_security_rule_keeps_the_probe_gate_closed() -> None:
    """A security rule that crashed on the file could not vouch for it: refuse, say why."""
    from inspector.options import Options
    from inspector.run.gate import skip_reason
    from inspector.run.pipeline import analyze_static

    report = analyze_static(MODEL, Options(probe=False))
    assert skip_reason(report, Options()) is None
    report.errors.append({"source": "rule:lambda-layer", "kind": "rule-crashed",
                          "message": "TypeError: boom"})
    status, reason = skip_reason(report, Options()) or ("", "")
    assert status == "refused" and "lambda-layer could not check it" in reason
    assert skip_reason(report, Options(trust=True)) is None


# ----------------------------------------------------------------------------- child isolation

# Modules the probe child imports (TensorFlow and friends) or the parent does too (json...).
_CHILD_ONLY = ("tensorflow", "keras", "tf_keras")
_EVERYWHERE = ("json", "numpy", "h5py", "inspector", *_CHILD_ONLY)


def _plant_canaries(folder: Path, names: tuple[str, ...], marker_dir: Path) -> None:
    """``<name>.py`` files that leave ``marker_dir/imported-<name>`` when imported."""
    for name in names:
        (folder / f"{name}.py").write_text(
            f"open({str(marker_dir / f'imported-{name}')!r}, 'w').close()\n", encoding="utf-8")


@pytest.mark.parametrize(("launcher", "names"), [
    # python -m inspector: the parent itself has the cwd first on sys.path, so only modules
    # the parent never imports can be planted; the child must not inherit that entry.
    (["-m", "inspector"], _CHILD_ONLY),
    # python -I -m inspector (like the console script): nothing from the cwd anywhere.
    (["-I", "-m", "inspector"], _EVERYWHERE),
], ids=["python-m", "isolated-parent"])
def test_probe_child_never_imports_from_the_current_directory(
        tmp_path: Path, launcher: list[str], names: tuple[str, ...]) -> None:
    cwd, markers = tmp_path / "cwd", tmp_path / "markers"
    cwd.mkdir()
    markers.mkdir()
    _plant_canaries(cwd, names, markers)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, *launcher, "--json", str(MODEL)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=240)
    assert sorted(p.name for p in markers.iterdir()) == []
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout)
    assert record["probe"]["status"] == "ok", record["probe"]
    assert record["errors"] == []


def test_probe_child_ignores_a_pythonpath_set_only_for_it(tmp_path: Path) -> None:
    """The child imports what the parent imports: a PYTHONPATH in the env handed to the
    runner (not on the parent's own path) does not reach it."""
    from inspector.probe import runner

    planted, markers = tmp_path / "planted", tmp_path / "markers"
    planted.mkdir()
    markers.mkdir()
    _plant_canaries(planted, ("json", "inspector"), markers)
    env = {**os.environ, FAULT_ENV: "exit", "PYTHONPATH": str(planted),
           "PYTHONSTARTUP": str(planted / "json.py")}
    plan = {"path": str(MODEL), "format": "keras-zip", "inputs": [], "vocab": None,
            "options": {}}
    events = list(runner.ProbeRunner(plan, 60, env=env).events())
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "crashed", events
    assert sorted(p.name for p in markers.iterdir()) == []


def test_child_sys_path_drops_the_current_directory_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from inspector.probe import runner

    monkeypatch.chdir(tmp_path)
    for first in ("", str(tmp_path)):
        monkeypatch.setattr(sys, "path", [first, "/opt/site", "relative/dir", "/usr/lib/py"])
        assert runner.child_sys_path() == ["/opt/site", "/usr/lib/py"]
    monkeypatch.setattr(sys, "path", ["/opt/app", "/opt/site"])   # a script's own folder
    assert runner.child_sys_path() == ["/opt/app", "/opt/site"]
    command = runner.child_command()
    assert command[1] == "-I" and "-m" not in command and command[-2:] == ["--", "-"]
