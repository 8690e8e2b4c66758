"""Many files: directories searched by content and model names (broken files reported),
JSON Lines in order, text blocks with a summary, progress and colour on a terminal, exit
codes, -j N."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import FakeTerminal, assert_valid_sarif, run_on_terminal

from inspector.report.sarif import artifact_uri
from inspector.run.outcome import Outcome
from inspector.run.targets import expand_targets
from inspector.run.writers import summary_line, with_progress

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


def test_directories_are_searched_by_content_and_model_names(tree: Path) -> None:
    """Models under any name; a non-model under a Keras name too (it must fail, not pass);
    not the HDF5 data file, the zip, the text file or the link."""
    found = expand_targets([str(tree)])
    assert found == [str(tree / "fake.keras"), str(tree / "a" / "model.bin"),
                     str(tree / "a" / "deeper" / "weights.dat"), str(tree / "exported")]


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
    broken = [i for i, path in enumerate(expected) if path == str(bad)]
    assert broken == [0, 4]                    # found in the directory, and given by name
    assert all(records[i]["error"]["kind"] == "corrupt" for i in broken)
    assert all("findings" in r for i, r in enumerate(records) if i not in broken)
    assert done.stderr.splitlines() == [done.stderr.splitlines()[0]] * 2
    assert str(bad) in done.stderr


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


def _ci_folder(root: Path) -> tuple[list[Path], list[Path]]:
    """A models/ folder as CI sees it: healthy models and, under every model name, the broken
    files that must not pass (truncated, empty, random bytes; a SavedModel with a truncated
    graph, one without its graph). Generated here, not committed. (healthy, broken)."""
    rng = np.random.default_rng(12)
    root.mkdir()
    healthy = [root / "good.keras", root / "good.h5", root / "good.weights.h5"]
    for dst, src in zip(healthy, [MODELS / "mlp" / "k3.keras", MODELS / "cnn_bn" / "k2.h5",
                                  MODELS / "mlp" / "k3.weights.h5"], strict=True):
        shutil.copyfile(src, dst)
    broken: list[Path] = []
    for suffix, src in [(".keras", healthy[0]), (".h5", healthy[1]),
                        (".weights.h5", healthy[2]), (".hdf5", healthy[1])]:
        data = src.read_bytes()
        for kind, content in [("truncated", data[:len(data) // 2]), ("empty", b""),
                              ("random", rng.bytes(4096))]:
            broken.append(root / f"{kind}{suffix}")
            broken[-1].write_bytes(content)
    exported = root / "exported"
    shutil.copytree(MODELS / "mlp" / "k2_savedmodel", exported)
    graph = exported / "saved_model.pb"
    graph.write_bytes(graph.read_bytes()[:200])
    remains = root / "remains"           # keras_metadata.pb but the graph is gone
    shutil.copytree(MODELS / "mlp" / "k2_savedmodel", remains)
    (remains / "saved_model.pb").unlink()
    broken += [exported, remains]
    # Not models, not reported: an HDF5 data set, a text file, what tools keep in hidden
    # folders and virtual environments.
    with h5py.File(root / "dataset.h5", "w") as f:
        f["x"] = np.arange(8)
    (root / "README.md").write_text("models\n")
    for skipped in (root / ".cache", root / "venv" / "lib"):
        skipped.mkdir(parents=True)
        (skipped / "junk.h5").write_bytes(b"")
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return healthy, broken


def test_a_folder_scan_reports_every_broken_model_file(tmp_path: Path) -> None:
    """Truncated, empty and random files under model names were skipped ("no model files
    found", exit 0 on a folder of broken models): each is now an exit-2 record."""
    healthy, broken = _ci_folder(tmp_path / "models")
    assert sorted(expand_targets([str(tmp_path / "models")])) == sorted(
        str(p) for p in healthy + broken)
    done = _cli("--format", "jsonl", "-j", "2", str(tmp_path / "models"))
    assert done.returncode == 2, done.stderr
    records = {r.get("path") or r["model"]["path"]: r
               for r in map(json.loads, done.stdout.splitlines())}
    assert set(records) == {str(p) for p in healthy + broken}
    assert all("error" not in records[str(p)] for p in healthy)
    assert all(records[str(p)]["error"]["message"] for p in broken)
    lines = done.stderr.splitlines()       # one line per broken file, naming it
    assert len(lines) == len(broken) and "Traceback" not in done.stderr
    assert sorted(line.split(": ")[1] for line in lines) == sorted(str(p) for p in broken)
    for only in broken:                    # alone in its folder: still exit 2, not "no models"
        folder = tmp_path / f"alone_{only.name}"
        folder.mkdir()
        target = folder / only.name
        if only.is_dir():
            shutil.copytree(only, target)
        else:
            shutil.copyfile(only, target)
        assert expand_targets([str(folder)]) == [str(target)]


def test_several_files_as_text_blocks_error_lines_and_a_summary(tmp_path: Path) -> None:
    """Text stays text: no JSON record in it, a `kinspect: PATH: problem` line per unreadable
    file, the summary last; nothing on stderr and no terminal codes when piped."""
    healthy, broken = _ci_folder(tmp_path / "models")
    nan = ROOT / "fixtures" / "rules" / "nan-weights"
    bad = sorted(nan.glob("bad_*"))[0]
    done = _cli(str(tmp_path / "models"), str(bad))         # piped: text by default
    assert done.returncode == 2
    assert done.stderr == ""
    assert "\x1b" not in done.stdout and "\r" not in done.stdout
    out = done.stdout.splitlines()
    assert not [line for line in out if line.lstrip().startswith("{")]
    errors = [line for line in out if line.startswith("kinspect: ")]
    assert sorted(e.split(": ")[1] for e in errors) == sorted(str(p) for p in broken)
    assert sum(line == str(p) for line in out for p in [*healthy, bad]) == len(healthy) + 1
    files = len(healthy) + len(broken) + 1
    assert re.fullmatch(rf"{files} files, {len(broken)} with errors, \d+ findings \(error "
                        r"\d+(, warning \d+)?(, info \d+)?\)", out[-1]), out[-1]
    report = tmp_path / "report.txt"
    to_file = _cli("-o", str(report), str(tmp_path / "models"), str(bad))
    assert to_file.returncode == 2 and to_file.stdout == ""
    assert report.read_text().splitlines()[-1] == to_file.stderr.splitlines()[-1]
    assert len(to_file.stderr.splitlines()) == len(broken) + 1   # errors + summary


def test_summary_line_counts() -> None:
    assert summary_line(1, 0, {}) == "1 file, 0 with errors, 0 findings"
    assert summary_line(3, 1, {"warning": 2, "error": 1}) == (
        "3 files, 1 with errors, 3 findings (error 1, warning 2)")


def test_jsonl_is_one_line_per_file_also_for_one_file(tmp_path: Path) -> None:
    model = str(MODELS / "mlp" / "k3.keras")
    one = _cli("--format", "jsonl", model)
    assert one.returncode == 0 and len(one.stdout.splitlines()) == 1
    assert json.loads(one.stdout)["model"]["path"] == model
    pretty = _cli("--format", "json", model)       # kept: one indented document
    assert json.loads(pretty.stdout) == json.loads(one.stdout)
    assert len(pretty.stdout.splitlines()) > 1
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    bad = _cli("--format", "jsonl", str(empty))
    assert bad.returncode == 2
    assert json.loads(bad.stdout) == {"path": str(empty), "error": {"kind": "empty",
                                                                    "message": "empty file"}}
    assert bad.stderr.strip() == f"kinspect: {empty}: empty file"
    two = _cli("--format", "jsonl", model, str(empty))
    assert [json.loads(line).get("path") for line in two.stdout.splitlines()] == [
        None, str(empty)]
    assert "jsonl" in _cli("--help").stdout


def test_progress_line_on_a_terminal_only() -> None:
    outcomes = [Outcome(path=p, text=p) for p in ("a.h5", "b.keras")]
    term = FakeTerminal()
    got = [o.path for o in with_progress(iter(outcomes), ["a.h5", "b.keras"], term)]
    assert got == ["a.h5", "b.keras"]
    shown = term.getvalue()
    assert "kinspect: [0/2] a.h5" in shown and "kinspect: [1/2] b.keras" in shown
    assert shown.endswith("\r\x1b[K")                   # erased when done
    piped = io.StringIO()
    assert len(list(with_progress(iter(outcomes), ["a.h5", "b.keras"], piped))) == 2
    assert piped.getvalue() == ""
    interrupted = FakeTerminal()
    gen = with_progress(iter(outcomes), ["a.h5", "b.keras"], interrupted)
    next(gen)
    gen.close()                                          # Ctrl-C, a write error...
    assert interrupted.getvalue().endswith("\r\x1b[K")


def _on_terminal(*args: str, env: dict[str, str] | None = None) -> str:
    """stdout and stderr on a pseudo-terminal, as a user at a shell sees them."""
    run = run_on_terminal(["--no-probe", *args], env=env)
    assert run.returncode in (0, 1, 2)
    return run.terminal


def test_terminal_gets_colour_and_progress_unless_asked_not_to(tmp_path: Path) -> None:
    bad = sorted((ROOT / "fixtures" / "rules" / "nan-weights").glob("bad_*"))[0]
    paths = (str(bad), str(MODELS / "mlp" / "k3.keras"))
    seen = _on_terminal("--format", "text", *paths)
    assert "\x1b[1;31merror  \x1b[0m" in seen                    # severity colour
    assert "kinspect: [0/2] " in seen and "\r\x1b[K" in seen      # progress, erased
    assert re.search(r"\r\n2 files, 0 with errors, \d+ findings? \(error \d+", seen)
    for plain in (_on_terminal("--format", "text", *paths, env={"NO_COLOR": "1"}),
                  _on_terminal("--format", "text", "--no-color", *paths)):
        assert "\x1b[1;31m" not in plain and "\x1b[0m" not in plain
        assert "error   KIN008" in plain
