"""Many files: directories searched by content, JSON Lines in order, exit codes, -j N."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import assert_valid_sarif

from inspector.batch import expand_targets
from inspector.report.sarif import artifact_uri

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "models"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Models under misleading names, non-models under model names, a link, a SavedModel."""
    root = tmp_path / "incoming"
    (root / "a" / "deeper").mkdir(parents=True)
    shutil.copyfile(MODELS / "mlp" / "k3.keras", root / "a" / "model.bin")
    shutil.copyfile(MODELS / "cnn_bn" / "k2.h5", root / "a" / "deeper" / "weights.dat")
    shutil.copytree(MODELS / "mlp" / "k2_savedmodel", root / "exported")
    (root / "notes.txt").write_text("not a model\n")
    (root / "fake.keras").write_text("also not a model\n")
    with h5py.File(root / "data.h5", "w") as f:
        f["x"] = np.arange(4)
    with zipfile.ZipFile(root / "photos.zip", "w") as z:
        z.writestr("a.txt", "hello")
    os.symlink(MODELS / "rnn" / "k3.keras", root / "link.keras")
    return root


def test_directories_are_searched_by_content(tree: Path) -> None:
    found = expand_targets([str(tree)])
    assert found == [str(tree / "a" / "model.bin"), str(tree / "a" / "deeper" / "weights.dat"),
                     str(tree / "exported")]


def test_a_directory_without_models_is_a_clear_error(tmp_path: Path) -> None:
    """Its own error record and exit 2, after the other paths were inspected."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("x")
    assert expand_targets([str(empty)]) == [str(empty)]
    done = _cli("--json", str(empty), str(MODELS / "mlp" / "k3.keras"))
    assert done.returncode == 2
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first == {"path": str(empty), "error": {
        "kind": "not-a-model", "message": "no model files found in this directory"}}
    assert second["model"]["path"] == str(MODELS / "mlp" / "k3.keras") and "error" not in second
    assert done.stderr.strip() == f"kinspect: {empty}: no model files found in this directory"
    alone = _cli("--json", str(empty))
    assert alone.returncode == 2 and alone.stdout == ""
    assert alone.stderr.strip() == f"kinspect: {empty}: no model files found in this directory"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "inspector", "--no-probe", *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_json_lines_in_order_one_bad_file_does_not_stop_the_others(tree: Path,
                                                                   jobs: str) -> None:
    bad = tree / "fake.keras"
    paths = [str(tree), str(bad), str(MODELS / "rnn" / "k3.keras")]
    done = _cli("--json", "-j", jobs, *paths)
    assert done.returncode == 2, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    expected = [*expand_targets([str(tree)]), str(bad), str(MODELS / "rnn" / "k3.keras")]
    assert [r.get("path") or r["model"]["path"] for r in records] == expected
    assert records[3]["error"]["kind"] == "corrupt"
    assert all("findings" in r for i, r in enumerate(records) if i != 3)
    assert done.stderr.count("kinspect: ") == 1 and str(bad) in done.stderr


def test_exit_code_follows_fail_on_when_every_file_is_readable() -> None:
    bad_rule = ROOT / "fixtures" / "rules" / "lambda-layer"
    paths = [str(MODELS / "mlp" / "k3.keras"), *sorted(str(p) for p in bad_rule.glob("bad_*"))]
    assert _cli("--json", "--fail-on", "warning", *paths).returncode == 1  # lambda-layer
    assert _cli("--json", "--fail-on", "never", *paths).returncode == 0
    assert _cli("--json", "--fail-on", "warning", "--exit-zero", *paths).returncode == 0
    clean = _cli("--json", str(MODELS / "mlp" / "k3.keras"), str(MODELS / "mlp" / "k2.h5"))
    assert clean.returncode == 0, clean.stdout


def test_sarif_for_several_files_is_one_log(tree: Path) -> None:
    bad = ROOT / "fixtures" / "rules" / "dropout-rate-high" / "bad_nested_k3.keras"
    paths = [str(MODELS / "mlp" / "k3.keras"), str(bad), str(tree / "fake.keras")]
    done = _cli("--format", "sarif", "-j", "2", *paths)
    assert done.returncode == 2, done.stderr               # fake.keras cannot be read
    assert "fake.keras" in done.stderr
    run = assert_valid_sarif(done.stdout)["runs"][0]
    assert [a["location"]["uri"] for a in run["artifacts"]] == [
        artifact_uri(p) for p in paths]
    (hit,) = [r for r in run["results"] if r["ruleId"] == "KIN001"]
    assert hit["locations"][0]["physicalLocation"]["artifactLocation"]["index"] == 1
    (failed,) = [n for n in run["invocations"][0]["toolExecutionNotifications"]
                 if n["properties"]["kind"] == "unreadable"]
    assert failed["locations"][0]["physicalLocation"]["artifactLocation"]["index"] == 2
    assert run["invocations"][0]["executionSuccessful"] is False
    readable = _cli("--format", "sarif", "--fail-on", "warning", *paths[:2])
    assert readable.returncode == 1, readable.stderr        # dropout-rate-high: a warning
    assert assert_valid_sarif(readable.stdout)["runs"][0]["invocations"][0][
        "executionSuccessful"] is True
