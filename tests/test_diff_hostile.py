"""``kinspect diff`` against hostile files: every fixture under fixtures/hostile/ diffed with a
healthy model, in both orders, plus the diff-specific pairs of fixtures/hostile/diff/
(fixtures/hostile_diff.py).

What must hold whichever side the hostile file is on: no code from it runs (the canary
markers stay absent, the payload module is never imported), the probe is refused by the same
trust gate as for one file (no probe child starts), its security findings are in the diff
(introduced in B, resolved from A), a bad file is one ``kinspect: PATH: ...`` line naming it
(exit 2), nothing is written to either file, and nothing hangs. Mostly in-process (the diff
worker's own function); three CLI runs check the real process, exit codes and the kill path.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from test_canary import PAYLOAD, canary_environ, fired

from inspector.diff import probe_diff
from inspector.diff.cli import diff_outcome
from inspector.diff.match import match_layers
from inspector.diff.report import load_diff_schema
from inspector.errors import KinspectError
from inspector.graph import LayerNode, ModelGraph
from inspector.options import Options
from inspector.report.model import Report
from inspector.rules.registry import all_rules
from inspector.run import gate
from inspector.run.gate import RISKY_RULES
from inspector.run.pipeline import inspect_file

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
HOSTILE = FIXTURES / "hostile"
HEALTHY = FIXTURES / "diff" / "base.keras"
sys.path.insert(0, str(FIXTURES))
from hostile_diff import MARKUP_CLASS, PAIRS  # noqa: E402

TIME_LIMIT_S = 10.0
SECURITY_RULES = frozenset(r.name for r in all_rules() if r.security_severity is not None)
# libhdf5 loops forever inside one C call on these: only the CLI's killable worker ends them.
REPRO = HOSTILE / "repro"


def hostile_models() -> list[Path]:
    """Every hostile model file or SavedModel directory (the payload source excluded)."""
    out = []
    for p in sorted(HOSTILE.rglob("*")):
        if p.is_relative_to(HOSTILE / "payload") or p.is_relative_to(REPRO):
            continue
        if (p.is_file() and p.suffix in (".h5", ".keras")) or (p / "saved_model.pb").is_file():
            out.append(p)
    return out


HOSTILE_MODELS = hostile_models()


def _id(path: Path) -> str:
    return str(path.relative_to(HOSTILE))


def _digest(path: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of the file, or of every file below a directory."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in files}


@cache
def single_file(path: Path) -> Report | KinspectError:
    """The single-file static outcome the diff must agree with (graph closed)."""
    try:
        report = inspect_file(path, Options(probe=False, static_timeout=30))
    except KinspectError as exc:
        return exc
    if report.graph.close is not None:
        report.graph.close()
    return report


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_diff_schema())


@pytest.fixture
def markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Canary markers go to a fresh dir and the payload is importable, as in test_canary:
    nothing may fire, and the payload module must not be imported."""
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    monkeypatch.setenv("KINSPECT_CANARY_DIR", str(marker_dir))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(PAYLOAD))
    monkeypatch.chdir(tmp_path)
    yield marker_dir
    assert fired(marker_dir, tmp_path) == []
    assert "kinspect_canary" not in sys.modules, "the payload module was imported"


class StubRunner:
    """Stands in for the probe child: records that a probe would have started."""

    started: list[str] = []

    def __init__(self, plan: dict[str, Any], timeout: float) -> None:
        StubRunner.started.append(plan["path"])

    def events(self) -> Iterator[dict[str, Any]]:
        yield {"event": "error", "kind": "crashed", "message": "stub probe"}


@pytest.fixture
def stub_probe(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The probe requested as without --no-probe: the gate decides as if TensorFlow were
    installed, and no real child ever starts. Returns the paths a child was started for."""
    monkeypatch.setattr(gate, "tensorflow_available", lambda: True)
    monkeypatch.setattr(probe_diff, "ProbeRunner", StubRunner)
    monkeypatch.setattr(StubRunner, "started", [])
    return StubRunner.started


def _diff(a: Path, b: Path, **options: Any) -> tuple[Any, float]:
    """The diff worker's own function (what ``kinspect diff`` runs in its child)."""
    start = time.perf_counter()
    outcome = diff_outcome(str(a), Options(static_timeout=30, **options), "json", path_b=str(b))
    return outcome, time.perf_counter() - start


def _introduced_or_resolved(doc: dict[str, Any], hostile_side: str) -> list[dict[str, Any]]:
    rule = "finding-introduced" if hostile_side == "b" else "finding-resolved"
    return [f for f in doc["findings"] if f["rule"] == rule]


# ----------------------------------------------------------------------------- every fixture


@pytest.mark.parametrize("side", ["a", "b"])
@pytest.mark.parametrize("hostile", HOSTILE_MODELS, ids=_id)
def test_hostile_file_on_either_side(hostile: Path, side: str, markers: Path,
                                     stub_probe: list[str], validator) -> None:
    a, b = (hostile, HEALTHY) if side == "a" else (HEALTHY, hostile)
    before = {**_digest(hostile), **_digest(HEALTHY)}
    outcome, elapsed = _diff(a, b)
    assert elapsed < TIME_LIMIT_S, f"{elapsed:.1f} s"
    assert {**_digest(hostile), **_digest(HEALTHY)} == before, "a file was modified"
    alone = single_file(hostile)
    if isinstance(alone, KinspectError):          # unreadable alone: unreadable in a diff
        assert outcome.error == alone.one_line()
        assert "\n" not in outcome.error and "Traceback" not in outcome.error
        assert outcome.error.startswith(f"kinspect: {hostile}: ")
        assert stub_probe == []
        return
    assert outcome.error is None, outcome.error
    doc = json.loads(outcome.text)
    assert not list(validator.iter_errors(doc))
    # the hostile side's security findings are in the diff, at their layer and severity
    listed = {(f["evidence"]["finding_rule"], f["layer"], f["evidence"]["finding_severity"])
              for f in _introduced_or_resolved(doc, side)}
    security = [f for f in alone.findings if f.rule in SECURITY_RULES]
    missing = [(f.rule, f.layer, f.severity) for f in security
               if (f.rule, f.layer, f.severity) not in listed]
    assert not missing, missing
    if side == "b" and any(f.severity == "error" for f in security):
        assert outcome.exceeds, "a hostile B must fail the default --fail-on error"
    # the probe: refused without --trust (skipped without an architecture), no child
    risky = [f for f in alone.findings if f.rule in RISKY_RULES and f.source == "static"]
    if risky:
        probe = doc["probe"]
        assert str(hostile) not in stub_probe and stub_probe == []
        if alone.graph.has_architecture:
            assert probe["status"] == "refused", probe
            assert probe["reason"].startswith(f"{side.upper()} ({hostile}): ")
            assert "--trust" in probe["reason"]
        else:
            assert probe["status"] == "skipped", probe


def test_ignoring_security_rules_does_not_open_the_diff_gate(markers: Path,
                                                            stub_probe: list[str]) -> None:
    """--ignore silences the findings, not the probe's refusal (as for one file)."""
    lam = HOSTILE / "canary" / "lambda" / "k2.h5"
    outcome, _ = _diff(HEALTHY, lam, ignore=sorted(RISKY_RULES))
    doc = json.loads(outcome.text)
    assert doc["probe"]["status"] == "refused" and stub_probe == []
    assert not {f["evidence"].get("finding_rule") for f in doc["findings"]} & set(RISKY_RULES)


# ----------------------------------------------------------------------------- crafted pairs


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_swapped_reference_under_the_same_layer_is_a_new_finding(
        name: str, markers: Path, stub_probe: list[str]) -> None:
    """A code reference or Lambda replaced by a more dangerous one at the same layer: keyed
    by rule and layer alone it passed as "the same finding" (only an info config detail)."""
    twin, rule, severity, layer = PAIRS[name]
    hostile, healthy = HOSTILE / "diff" / name, FIXTURES / twin
    outcome, _ = _diff(healthy, hostile)
    doc = json.loads(outcome.text)
    new = [(f["evidence"]["finding_rule"], f["severity"], f["layer"])
           for f in _introduced_or_resolved(doc, "b")]
    assert (rule, severity, layer) in new, new
    assert outcome.exceeds is (severity == "error")
    assert doc["probe"]["status"] == "refused" and stub_probe == []
    back, _ = _diff(hostile, healthy)
    resolved = {(f["evidence"]["finding_rule"], f["layer"])
                for f in _introduced_or_resolved(json.loads(back.text), "a")}
    assert (rule, layer) in resolved


def test_a_conversion_of_a_file_with_code_stays_quiet(markers: Path) -> None:
    """The security key holds only what does not change between formats of one model."""
    canary = HOSTILE / "canary"
    for a, b in (("lambda/k2.h5", "lambda/k3.keras"), ("modref/k2.h5", "modref/k3.h5"),
                 ("custom/k3.h5", "custom/k3.keras")):
        outcome, _ = _diff(canary / a, canary / b, probe=False)
        found = [f["evidence"]["finding_rule"] for f in json.loads(outcome.text)["findings"]
                 if f["code"] in ("KD401", "KD402")]
        assert found == [], (a, b, found)


def _wide(n: int, prefix: str) -> ModelGraph:
    """One model holding ``n`` sibling layers of one class."""
    root = LayerNode("model", "model", "Functional", {}, role="model")
    root.children = [LayerNode(f"{prefix}{i}", f"model/{prefix}{i}", "ReLU", {})
                     for i in range(n)]
    return ModelGraph(path=f"{prefix}.keras", format="test", root=root)


def test_layer_pairing_is_linear_in_siblings() -> None:
    """A crafted 50k-layer config (within the JSON caps) paired in quadratic time took
    minutes (16 s for these 20k alone); by name and by position both take well under a
    second."""
    n = 20_000
    a, renamed = _wide(n, "a"), _wide(n, "b")
    start = time.perf_counter()
    same = match_layers(a, a)
    moved = match_layers(a, renamed)
    assert time.perf_counter() - start < 3.0
    assert len(same) == len(moved) == n
    assert all(p.how == "path" for p in same) and all(p.renamed for p in moved)
    half = _wide(n // 2, "a")                       # the rest of B: added, in file order
    added = match_layers(half, a)
    assert [p.path_b for p in added] == [f"model/a{i}" for i in range(n)]


# ----------------------------------------------------------------------------- the CLI


def _cli(*args: str | Path, marker_dir: Path, cwd: Path) -> tuple[subprocess.CompletedProcess,
                                                                    float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "inspector", "diff", *map(str, args)],
                          capture_output=True, text=True, env=canary_environ(marker_dir),
                          cwd=cwd, timeout=120, check=False)
    return done, time.perf_counter() - start


def test_cli_probe_requested_on_a_canary_is_refused(tmp_path: Path) -> None:
    """The real command, probe requested: exit 1 (the Lambda is an error), refused, no
    marker, no TensorFlow needed for the refusal."""
    lam = HOSTILE / "canary" / "lambda" / "k3.keras"
    done, elapsed = _cli(HEALTHY, lam, "--json", marker_dir=tmp_path, cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and elapsed < 60
    probe = json.loads(done.stdout)["probe"]
    expected = "refused" if gate.tensorflow_available() else "skipped"
    assert probe["status"] == expected, probe
    assert fired(tmp_path) == []


def test_cli_bad_file_is_one_line_naming_it(tmp_path: Path) -> None:
    bomb = HOSTILE / "zip" / "bomb_ratio.keras"
    done, _ = _cli(bomb, HEALTHY, "--json", marker_dir=tmp_path, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"kinspect: {bomb}: ") and "zip bomb" in line


def test_cli_libhdf5_hang_on_b_is_killed_and_named(tmp_path: Path) -> None:
    """A file that loops libhdf5 in C: the worker is killed after 2 x --timeout + grace; the
    line names B too (it named A alone, the healthy file)."""
    repro = REPRO / "libhdf5_hang_gheap_objects.h5"
    done, elapsed = _cli(HEALTHY, repro, "--no-probe", "--timeout", "1", marker_dir=tmp_path,
                         cwd=tmp_path)
    assert done.returncode == 2 and elapsed < 40
    [line] = done.stderr.splitlines()
    assert line.startswith("kinspect: ") and str(repro) in line and "killed" in line


# ----------------------------------------------------------------------------- the TUI


async def _walk(app: Any, rows: int) -> list[str]:
    """Move through every row of A's tree, then B's: the summary, the detail pane after
    each move, and last B's tree labels."""
    from inspector.tui.diff_app import DiffTree

    seen = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        seen.append(str(app.query_one("#summary").render()))
        seen.append(str(app.query_one("#detail").render()))
        for tree in ("#tree-a", "#tree-b"):
            app.query_one(tree).focus()
            for _ in range(rows + 1):
                await pilot.press("down")
                await pilot.pause()
                seen.append(str(app.query_one("#detail").render()))
        seen.append("\n".join(app.query_one("#tree-b", DiffTree).labels()))
    return seen


def test_tui_shows_the_hostile_findings_and_the_refused_probe(
        markers: Path, stub_probe: list[str]) -> None:
    from inspector.tui.diff_app import DiffApp

    lam = HOSTILE / "canary" / "lambda" / "k3.keras"
    outcome, _ = _diff(HEALTHY, lam)
    doc = json.loads(outcome.text)
    seen = asyncio.run(_walk(DiffApp(doc), len(doc["layers"])))
    summary, first = seen[0], seen[1]
    assert "probe: refused" in summary and "--trust" in summary and "lambda-layer" in summary
    assert "KD401" in first and "new in B: KIN009 lambda-layer" in first
    assert any("model/sneaky" in s and "KIN009" in s for s in seen[2:])
    assert stub_probe == []


def test_tui_shows_markup_in_file_strings_as_text(markers: Path) -> None:
    """A class name with ``[/]`` crashed the detail pane (MarkupError); ``[@click]`` must not
    become an action link either."""
    from inspector.tui.diff_app import DiffApp

    _, _, _, layer = PAIRS["markup_class.keras"]
    outcome, _ = _diff(HOSTILE / "canary" / "custom" / "k3.keras",
                       HOSTILE / "diff" / "markup_class.keras", probe=False)
    doc = json.loads(outcome.text)
    seen = asyncio.run(_walk(DiffApp(doc), len(doc["layers"])))
    assert any(f"class CanaryLayer -> {MARKUP_CLASS}" in s for s in seen)
    assert f"canary_layer {MARKUP_CLASS}" in seen[-1]
    assert any(layer in s and "KD104" in s for s in seen)


def test_tui_lists_a_bounded_number_of_findings(tmp_path: Path) -> None:
    """Tens of thousands of differences (a crafted pair) would freeze the detail pane."""
    from inspector.tui.diff_app import SHOWN_FINDINGS, DiffApp

    outcome, _ = _diff(HEALTHY, HEALTHY, probe=False)
    doc = json.loads(outcome.text)
    one = {"code": "KD103", "rule": "layer-renamed", "severity": "info", "layer": "model/x",
           "message": "layer model/y renamed to model/x", "evidence": {}}
    doc["findings"] = [one] * (SHOWN_FINDINGS + 500)

    async def run() -> str:
        app = DiffApp(doc)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            return str(app.query_one("#detail").render())

    detail = asyncio.run(run())
    assert detail.count("KD103") == SHOWN_FINDINGS and "and 500 more" in detail


def test_every_hostile_class_is_diffed() -> None:
    """The parametrization cannot silently shrink: each fixture class has files in it."""
    classes = {p.relative_to(HOSTILE).parts[0] for p in HOSTILE_MODELS}
    assert {"canary", "coderefs", "config", "diff", "h5", "polyglot", "savedmodel", "sizes",
            "zip"} <= classes, classes
