"""Code references hidden where the security rules once did not look (issue 10).

``fixtures/hostile/coderefs/<kind>/`` (built by fixtures/hostile_coderefs.py) holds, per kind,
Keras 3 ``.keras``/``.h5`` and Keras 2 ``.h5`` files whose config reaches the canary payload
(or runs its bytecode) from call arguments, nested compile configs, Sequential InputLayer
entries, dtype policies, a Bidirectional's backward layer, ``__main__``, look-alike Keras
package names, TFSMLayer/ReloadedLayer paths and leniently encoded lambdas. Each must get its
finding, the probe must refuse it without ``--trust``, and nothing may fire.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_canary import PAYLOAD, canary_environ, fired, markers  # noqa: F401 - fixture

from inspector.options import Options
from inspector.run.gate import RISKY_RULES, tensorflow_available
from inspector.run.pipeline import inspect_file

ROOT = Path(__file__).resolve().parent.parent
CODEREFS = ROOT / "fixtures" / "hostile" / "coderefs"
MANIFEST: dict[str, dict[str, str]] = json.loads((CODEREFS / "manifest.json").read_text())
HEALTHY = ROOT / "fixtures" / "models"
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
# The only code-related finding a healthy fixture has: its registered custom layer.
HEALTHY_EXPECTED = {("custom_layer", "custom-object", "model/learned_scale")}


def _paths() -> list[Path]:
    return [CODEREFS / name for name in sorted(MANIFEST)]


def test_every_kind_comes_in_every_container() -> None:
    on_disk = {str(p.relative_to(CODEREFS)) for p in CODEREFS.rglob("*")
               if p.suffix in (".h5", ".keras")}
    assert on_disk == set(MANIFEST)
    kinds: dict[str, set[str]] = {}
    for name in MANIFEST:
        kind, file = name.split("/")
        kinds.setdefault(kind, set()).add(
            ("k2" if file.startswith("k2") else "k3") + Path(file).suffix)
    assert len(kinds) == 9
    for kind, containers in kinds.items():
        assert {"k3.keras", "k3.h5", "k2.h5"} <= containers, kind
    for shim in ("keras_kinspect_canary", "tf_keras_kinspect_canary",
                 "tensorflow_kinspect_canary"):
        assert (PAYLOAD / f"{shim}.py").is_file()


@pytest.mark.parametrize("path", _paths(), ids=lambda p: str(p.relative_to(CODEREFS)))
def test_static_pass_reports_the_reference(path: Path, markers: Path) -> None:  # noqa: F811
    expected = MANIFEST[str(path.relative_to(CODEREFS))]
    report = inspect_file(path, Options(probe=False))
    try:
        assert not report.errors, report.errors
        hits = [f for f in report.findings if f.rule == expected["rule"]]
        assert hits, sorted({f.rule for f in report.findings})
        strongest = max(hits, key=lambda f: SEVERITY_RANK[f.severity])
        assert strongest.severity == expected["severity"], strongest.message
        assert all(f.layer for f in hits if "training_config" not in str(
            f.evidence.get("where"))), "a finding lost its layer"
    finally:
        if report.graph.close is not None:
            report.graph.close()


def test_cli_refuses_the_probe_and_runs_nothing(tmp_path: Path) -> None:
    """``kinspect --json`` (probe on, no --trust) on every file: each record carries its
    finding and a refused probe; no marker appears and the payload is never imported."""
    markers_dir = tmp_path / "markers"
    markers_dir.mkdir()
    paths = _paths()
    done = subprocess.run([sys.executable, "-m", "inspector", "--json", *map(str, paths)],
                          capture_output=True, text=True, env=canary_environ(markers_dir),
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["model"]["path"] for r in records] == [str(p) for p in paths]
    status = "refused" if tensorflow_available() else "skipped"
    for record, path in zip(records, paths, strict=True):
        rule = MANIFEST[str(path.relative_to(CODEREFS))]["rule"]
        assert rule in {f["rule"] for f in record["findings"]}, path
        assert record["probe"]["status"] == status, (path, record["probe"])
        if status == "refused":
            assert f"({rule})" in record["probe"]["reason"] and "--trust" in (
                record["probe"]["reason"])
    assert fired(markers_dir, tmp_path) == []


def test_findings_are_the_ones_that_gate_the_probe() -> None:
    assert {e["rule"] for e in MANIFEST.values()} <= set(RISKY_RULES)


def test_healthy_models_get_no_code_findings() -> None:
    """Walking the raw config must not invent findings on files Keras wrote itself."""
    found = set()
    for path in sorted(HEALTHY.rglob("*")):
        if path.suffix not in (".h5", ".keras") or path.name.endswith(".weights.h5") \
                or "weights" in path.stem:
            continue
        report = inspect_file(path, Options(probe=False))
        if report.graph.close is not None:
            report.graph.close()
        found |= {(path.parent.name, f.rule, f.layer) for f in report.findings
                  if f.rule in RISKY_RULES}
    assert found == HEALTHY_EXPECTED


@pytest.mark.tf
@pytest.mark.slow
def test_lenient_lambda_encodings_really_run(tmp_path: Path) -> None:
    """tf_keras runs the raw-marshal and stray-character encodings: the findings above are
    about code that executes, not about a format nobody loads."""
    pytest.importorskip("tf_keras")
    files = [CODEREFS / "lambda_encodings" / f"{n}.h5"
             for n in ("k2_residual_raw", "k2_residual_loose", "k2_dropout_raw")]
    script = (
        "import os, sys, numpy as np, tf_keras\n"
        "for i, path in enumerate(sys.argv[1:]):\n"
        "    os.environ['KINSPECT_CANARY_DIR'] = os.path.join(os.getcwd(), str(i))\n"
        "    os.mkdir(os.environ['KINSPECT_CANARY_DIR'])\n"
        "    model = tf_keras.models.load_model(path)\n"
        "    model(np.zeros((1, 3, 2), 'float32'), training=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, *map(str, files)],
                          capture_output=True, text=True, env=canary_environ(tmp_path),
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for i in range(len(files)):
        assert fired(tmp_path / str(i)) == ["kinspect-canary-lambda"], files[i].name
