"""Code inside a model file never runs unless the user passes --trust.

The canary fixtures (fixtures/hostile/canary/<kind>/) leave ``kinspect-canary-*`` marker files
in $KINSPECT_CANARY_DIR when any of their code runs; their payload module is put on sys.path
and PYTHONPATH so an accidental import would really fire. ``test_canaries_are_live`` proves the
markers do appear when Keras itself loads the files, so the "never appears" tests can fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inspector.options import Options
from inspector.report.render import render
from inspector.run.pipeline import inspect_file

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "fixtures" / "hostile"
PAYLOAD = HOSTILE / "payload"
CANARY = HOSTILE / "canary"
MARKER_PREFIX = "kinspect-canary-"
# The rule each canary kind must trigger (issue 3); the probe refuses on any of them.
EXPECTED_RULE = {"lambda": "lambda-layer", "custom": "custom-object",
                 "modref": "untrusted-module-reference", "marshal_loss": "lambda-layer"}
# The layer (or "model" for a training-config loss) the refusal must name.
EXPECTED_NAME = {"lambda": "sneaky", "custom": "canary_layer", "modref": "sneaky",
                 "marshal_loss": "model"}


def canary_files() -> list[Path]:
    out = []
    for kind in sorted(EXPECTED_RULE):
        folder = CANARY / kind
        out += sorted(p for p in folder.iterdir() if p.suffix in (".h5", ".keras")
                      or (p / "saved_model.pb").is_file())
    return out


CANARIES = canary_files()
# Leniently encoded bytecode (raw marshal bytes, stray characters): decoded as data too.
LENIENT = sorted(p for p in (HOSTILE / "coderefs" / "lambda_encodings").iterdir()
                 if p.suffix in (".h5", ".keras"))


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def fired(*folders: Path) -> list[str]:
    return sorted(p.name for folder in folders if folder.is_dir()
                  for p in folder.iterdir() if p.name.startswith(MARKER_PREFIX))


def canary_environ(marker_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["KINSPECT_CANARY_DIR"] = str(marker_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PAYLOAD), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # importing the payload must not touch fixtures/
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


@pytest.fixture
def markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A marker dir wired up for in-process and child runs; asserts nothing fired after."""
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    monkeypatch.setenv("KINSPECT_CANARY_DIR", str(marker_dir))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(PAYLOAD))
    monkeypatch.chdir(tmp_path)  # where the payload's relative default would land
    assert "kinspect_canary" not in sys.modules
    yield marker_dir
    assert fired(marker_dir, tmp_path) == []
    assert "kinspect_canary" not in sys.modules, "the payload module was imported"


def test_canary_set_is_complete() -> None:
    for kind in EXPECTED_RULE:
        names = {p.name for p in (CANARY / kind).iterdir()}
        assert {"k2.h5", "k3.h5", "k3.keras"} <= names, kind
    for kind in ("lambda", "custom", "modref"):
        assert (CANARY / kind / "k2_savedmodel" / "saved_model.pb").is_file(), kind


@pytest.mark.parametrize("path", CANARIES, ids=_id)
def test_static_pass_never_runs_code(path: Path, markers: Path) -> None:
    report = inspect_file(path, Options(probe=False))
    try:
        for fmt in ("json", "text", "sarif"):
            assert render(report, fmt)
        rules = {f.rule for f in report.findings}
        assert EXPECTED_RULE[path.parent.name] in rules, sorted(rules)
    finally:
        if report.graph.close is not None:
            report.graph.close()


def test_static_pass_never_unmarshals_or_unpickles(markers: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Lambda bytecode is decoded as data only: marshal/pickle are never called on it."""
    import marshal
    import pickle

    assert LENIENT
    for path in [*CANARIES, *LENIENT]:  # warm-up: lazy imports load .pyc files via marshal
        inspect_file(path, Options(probe=False))
    calls: list[str] = []

    def spy(name: str) -> object:
        def refuse(*args: object, **kwargs: object) -> None:
            calls.append(name)
            raise AssertionError(f"{name} called by the static pass")
        return refuse

    monkeypatch.setattr(marshal, "loads", spy("marshal.loads"))
    monkeypatch.setattr(marshal, "load", spy("marshal.load"))
    monkeypatch.setattr(pickle, "loads", spy("pickle.loads"))
    monkeypatch.setattr(pickle, "load", spy("pickle.load"))
    for path in [*CANARIES, *LENIENT]:
        report = inspect_file(path, Options(probe=False))
        render(report, "json")
        assert not [e for e in report.errors if "called by the static pass" in str(e)]
        assert "lambda-layer" in {f.rule for f in report.findings} or path in CANARIES
    assert calls == []


def _run_cli(args: list[str], marker_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True,
                          text=True, env=canary_environ(marker_dir), cwd=cwd, timeout=300)


def test_cli_json_many_and_rules_never_run_code(tmp_path: Path) -> None:
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    paths = [str(p) for p in CANARIES]
    done = _run_cli(["--json", "--no-probe", "--fail-on", "warning", *paths], marker_dir,
                    tmp_path)
    assert done.returncode == 1, done.stderr  # every canary has at least a warning
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["model"]["path"] for r in records] == paths
    for record, path in zip(records, CANARIES, strict=True):
        assert EXPECTED_RULE[path.parent.name] in {f["rule"] for f in record["findings"]}
    for args in (["rules"], ["rules", "lambda-layer"], ["rules", "untrusted-module-reference"],
                 ["--format", "text", "--no-probe", str(CANARY / "lambda" / "k2.h5")],
                 ["--format", "sarif", "--no-probe", str(CANARY / "modref" / "k3.keras")],
                 ["--json", "--no-probe", str(CANARY)], ["-j", "2", "--json", "--no-probe",
                                                         str(CANARY)]):
        done = _run_cli(args, marker_dir, tmp_path)
        assert done.returncode in (0, 1), (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert fired(marker_dir, tmp_path) == []


def test_tui_never_runs_code(markers: Path) -> None:
    app_module = pytest.importorskip("inspector.tui.app")
    import asyncio

    async def drive(path: Path) -> None:
        app = app_module.create_app(str(path), Options(probe=False))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("down", "down", "enter", "tab", "enter")
            await pilot.pause()
            await app.workers.wait_for_complete()
        if app.report.graph.close is not None:
            app.report.graph.close()

    for path in CANARIES:
        asyncio.run(drive(path))


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("path", [CANARY / "lambda" / "k2.h5", CANARY / "custom" / "k3.keras",
                                  CANARY / "modref" / "k2_savedmodel",
                                  CANARY / "marshal_loss" / "k3.keras"], ids=_id)
def test_probe_without_trust_refuses_and_names_the_layer(path: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    done = _run_cli(["--json", "--probe-timeout", "120", str(path)], marker_dir, tmp_path)
    assert done.returncode in (0, 1), done.stderr  # custom-object is a warning
    probe = json.loads(done.stdout)["probe"]
    assert probe["status"] == "refused", probe
    assert EXPECTED_NAME[path.parent.name] in probe["reason"]
    assert "--trust" in probe["reason"]
    assert fired(marker_dir, tmp_path) == []


@pytest.mark.tf
@pytest.mark.slow
def test_canaries_are_live(tmp_path: Path) -> None:
    """Keras itself runs the canary code: the marker checks above are not vacuous."""
    pytest.importorskip("tensorflow")
    script = (
        "import sys, tf_keras, keras\n"
        "tf_keras.models.load_model(sys.argv[1])\n"          # tf_keras: no safety check at all
        "keras.models.load_model(sys.argv[2], safe_mode=False)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(CANARY / "lambda" / "k2.h5"),
         str(CANARY / "lambda" / "k3.keras")],
        capture_output=True, text=True, env=canary_environ(tmp_path), cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert fired(tmp_path) == ["kinspect-canary-lambda"]


@pytest.mark.tf
@pytest.mark.slow
def test_trust_lets_the_probe_run_the_code(tmp_path: Path) -> None:
    """The documented --trust behaviour: the probe loads with safe_mode=False and the Lambda
    runs (in the probe child); the static part of the same run stays code-free (see above)."""
    pytest.importorskip("tensorflow")
    done = _run_cli(["--json", "--trust", "--samples", "8", str(CANARY / "lambda" / "k3.keras")],
                    tmp_path, tmp_path)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert json.loads(done.stdout)["probe"]["status"] == "ok"
    assert fired(tmp_path) == ["kinspect-canary-lambda"]


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("path", [CANARY / "lambda" / "k2_savedmodel",
                                  CANARY / "marshal_loss" / "k2.h5"], ids=_id)
def test_ignoring_the_security_rules_does_not_open_the_gate(path: Path, tmp_path: Path) -> None:
    """--ignore silences findings, not the probe's refusal: tf_keras would run these."""
    pytest.importorskip("tensorflow")
    ignore = "lambda-layer,custom-object,untrusted-module-reference"
    done = _run_cli(["--json", "--samples", "8", "--ignore", ignore, str(path)], tmp_path,
                    tmp_path)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    record = json.loads(done.stdout)
    assert record["probe"]["status"] == "refused", record["probe"]
    assert not {f["rule"] for f in record["findings"]} & set(ignore.split(","))
    assert fired(tmp_path) == []
