"""Container issues reach the user (issue 10): every kind a reader can emit has a severity and
a finding, polyglot HDF5/zip files are caught and refused by the probe, and the JSON, text,
SARIF and TUI outputs list the issues themselves."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import assert_valid_report

from inspector.findings import SEVERITIES
from inspector.graph import (
    CONTAINER_ISSUE_KINDS,
    ContainerIssue,
    ModelGraph,
    unsafe_member_name,
)
from inspector.options import Options
from inspector.readers import detect, open_model
from inspector.report.json_out import to_json
from inspector.report.model import Report
from inspector.report.render import render
from inspector.rules.registry import all_rules, lookup
from inspector.run.pipeline import analyze_graph, analyze_static

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
MODELS = FIXTURES / "models"
POLYGLOTS = FIXTURES / "hostile" / "polyglot"
ANOMALY = FIXTURES / "rules" / "container-anomaly"
POLYGLOT_FILES = sorted(p for p in POLYGLOTS.iterdir() if not p.name.startswith("good_"))
TRAVERSAL = ANOMALY / "bad_zip_traversal_k3.keras"


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[ModelGraph]:
    graph = open_model(path)
    try:
        yield graph
    finally:
        if graph.close is not None:
            graph.close()


@contextlib.contextmanager
def _static(path: Path) -> Iterator[Report]:
    report = analyze_static(path, Options(probe=False))
    try:
        yield report
    finally:
        if report.graph.close is not None:
            report.graph.close()


# --------------------------------------------------------------------------- the kind table


def _emitted_kinds() -> dict[str, list[str]]:
    """Every ``ContainerIssue(...)`` kind in the package source -> where it is built."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "inspector").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None)
                    == "ContainerIssue"):
                continue
            arg = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg == "kind"), None)
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            kind = _constant(arg, path)
            assert isinstance(kind, str), (f"{where}: give ContainerIssue a literal kind or a "
                                           "module-level constant so this test can check it")
            found.setdefault(kind, []).append(where)
    return found


def _constant(arg: ast.expr | None, path: Path) -> object:
    """A literal, or a module-level name (``ISSUE_X = "kind"``) read from the module."""
    if isinstance(arg, ast.Constant):
        return arg.value
    if isinstance(arg, ast.Name):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        return getattr(importlib.import_module(module.removesuffix(".__init__")), arg.id, None)
    return None


def test_every_kind_the_readers_emit_has_a_severity_and_a_rule() -> None:
    emitted = _emitted_kinds()
    assert len(emitted) >= 10, sorted(emitted)   # the scan itself works
    unmapped = {k: v for k, v in emitted.items() if k not in CONTAINER_ISSUE_KINDS}
    assert not unmapped, f"add these kinds to CONTAINER_ISSUE_KINDS (graph.py): {unmapped}"
    stale = sorted(set(CONTAINER_ISSUE_KINDS) - set(emitted))
    assert not stale, f"kinds no reader emits any more: {stale}"
    for kind in CONTAINER_ISSUE_KINDS.values():
        assert kind.severity in SEVERITIES and kind.meaning.strip(), kind.name
        rule = lookup(kind.rule)
        assert rule is not None and rule.source == "static", (kind.name, kind.rule)


@pytest.mark.parametrize("kind", sorted(CONTAINER_ISSUE_KINDS))
def test_each_kind_gives_exactly_one_finding_at_its_severity(kind: str) -> None:
    issue = ContainerIssue(kind, "some/where", "detail text")
    with _opened(MODELS / "mlp" / "k3.keras") as graph:
        graph.container_issues = [issue]
        report = analyze_graph(graph, Options(probe=False))
    hits = [f for f in report.findings if f.evidence.get("kind") == kind]
    assert [(f.rule, f.severity) for f in hits] == [(CONTAINER_ISSUE_KINDS[kind].rule,
                                                      issue.severity)]
    assert "detail text" in hits[0].message and hits[0].evidence["where"] == "some/where"


def test_an_unknown_kind_still_gives_an_error_finding() -> None:
    """Fail closed: a kind someone forgot to map is reported, as an error."""
    with _opened(MODELS / "mlp" / "k3.keras") as graph:
        graph.container_issues = [ContainerIssue("made-up-kind", "x", "y")]
        report = analyze_graph(graph, Options(probe=False))
    assert [(f.rule, f.severity) for f in report.findings
            if f.evidence.get("kind") == "made-up-kind"] == [("container-anomaly", "error")]


@pytest.mark.parametrize(("name", "escapes"), [
    ("../../evil.sh", True), ("/etc/cron.d/x", True), ("assets/../../x", True),
    ("..\\..\\evil.bat", True), ("C:\\Windows\\x.dll", True), ("\\\\server\\share", True),
    ("extra.txt", False), ("assets/vocab.txt", False), ("notes/..hidden", False),
])
def test_member_names_that_climb_out_are_errors(name: str, escapes: bool) -> None:
    assert unsafe_member_name(name) is escapes
    assert ContainerIssue("zip-unexpected-member", name, "d").severity == (
        "error" if escapes else "warning")


def test_savedmodel_symlink_out_of_the_directory_is_an_error(tmp_path: Path) -> None:
    src = MODELS / "mlp" / "k2_savedmodel"
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    for target in (inside, outside):
        shutil.copytree(src, target)
    meta = inside / "keras_metadata.pb"
    meta.rename(inside / "meta.bin")
    meta.symlink_to("meta.bin")
    stolen = tmp_path / "elsewhere.pb"
    (outside / "keras_metadata.pb").rename(stolen)
    (outside / "keras_metadata.pb").symlink_to(stolen)
    for folder, severity in ((inside, "warning"), (outside, "error")):
        with _opened(folder) as graph:
            issues = [i for i in graph.container_issues if i.kind == "savedmodel-symlink"]
        assert [i.severity for i in issues] == [severity], folder.name


# --------------------------------------------------------------------------- zip traversal


def _kinspect_json(*args: str | Path) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-m", "inspector", "--json", "--no-probe",
                           *map(str, args)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return done.returncode, assert_valid_report(done.stdout)


def test_zip_member_climbing_out_is_an_error_finding_and_exit_1() -> None:
    code, doc = _kinspect_json(TRAVERSAL)
    assert code == 1
    assert {"kind": "zip-unexpected-member", "severity": "error", "location": "../../evil.sh",
            "detail": "member not written by Keras"} in doc["container_issues"]
    assert [(f["rule"], f["severity"], f["evidence"]["where"]) for f in doc["findings"]
            if f["severity"] != "info"] == [("container-anomaly", "error", "../../evil.sh")]


def test_every_traversal_name_in_the_hostile_archive_is_reported() -> None:
    with _static(FIXTURES / "hostile" / "zip" / "path_traversal.keras") as report:
        where = {f.evidence["where"] for f in report.findings
                 if f.rule == "container-anomaly" and f.severity == "error"}
    assert {"../../../tmp/kinspect-evil", "/tmp/kinspect-evil-abs",
            "assets/../../kinspect-evil"} <= where


def test_keras_assets_are_not_anomalies() -> None:
    with _opened(ANOMALY / "good_assets_k3.keras") as graph:
        assert graph.container_issues == []


# --------------------------------------------------------------------------- polyglots


def _zip_half_opens(path: Path) -> bool:
    """What a zip reader finds: from the end (zipfile, Keras) or, failing that, from the
    start of the file (streaming readers)."""
    if zipfile.is_zipfile(path):
        return True
    return path.read_bytes()[:4] == b"PK\x03\x04"


@pytest.mark.parametrize("path", POLYGLOT_FILES, ids=lambda p: p.name)
def test_polyglot_fixture_really_is_both_containers(path: Path) -> None:
    """The fixtures are live: libhdf5 opens them as a Keras model, a zip reader finds the
    Lambda canary config, so the detection tests below can fail."""
    with h5py.File(path, "r") as f:
        assert "model_config" in f.attrs
    assert _zip_half_opens(path)
    assert b'"Lambda"' in path.read_bytes()


@pytest.mark.parametrize("path", POLYGLOT_FILES, ids=lambda p: p.name)
def test_polyglot_is_an_error_finding_and_the_probe_refuses(path: Path) -> None:
    from inspector.run.gate import skip_reason, tensorflow_available

    with _static(path) as report:
        kinds = [i.kind for i in report.graph.container_issues]
        found = [(f.rule, f.severity) for f in report.findings if f.severity == "error"]
    assert kinds == ["hdf5-zip-polyglot"]
    assert ("polyglot-container", "error") in found
    if tensorflow_available():
        status, reason = skip_reason(report, Options()) or ("", "")
        assert status == "refused" and "polyglot-container" in reason
        assert skip_reason(report, Options(trust=True)) is None
        # --ignore silences the finding, not the probe gate
        assert skip_reason(report, Options(ignore=["polyglot-container"])) is not None


def _model_files() -> list[Path]:
    return sorted(p for p in MODELS.rglob("*") if p.is_file()
                  and p.suffix in (".h5", ".keras"))


def test_healthy_files_are_not_polyglots() -> None:
    files = [*_model_files(), POLYGLOTS / "good_userblock_text.h5"]
    assert len(files) > 40
    assert [p for p in files if detect.polyglot(p) is not None] == []


def test_a_stray_zip_signature_at_the_end_of_an_h5_is_not_a_polyglot(tmp_path: Path) -> None:
    """An end-of-directory record with no directory behind it opens in no zip reader."""
    path = tmp_path / "stray.h5"
    path.write_bytes((MODELS / "mlp" / "k3.h5").read_bytes()
                     + b"PK\x05\x06" + bytes(6) + b"\x01\x00" + bytes(10))
    assert detect.polyglot(path) is None


def test_zip_appended_after_a_large_h5_is_found(tmp_path: Path) -> None:
    """libhdf5 ignores what follows its data; the zip is found from the end, however big
    the HDF5 part (built here, not committed)."""
    big = tmp_path / "big.h5"
    shutil.copyfile(MODELS / "mlp" / "k3.h5", big)
    with h5py.File(big, "r+") as f:
        f.create_dataset("padding", data=np.frombuffer(os.urandom(3 << 20), np.uint8))
    poly = tmp_path / "big.keras"
    poly.write_bytes(big.read_bytes()
                     + (FIXTURES / "hostile" / "canary" / "lambda" / "k3.keras").read_bytes())
    why = detect.polyglot(poly)
    assert why is not None and "zip central directory" in why


def test_hdf5_beyond_the_first_megabyte_of_a_zip_is_found(tmp_path: Path) -> None:
    """libhdf5 searches every power-of-two offset, not only the first megabyte."""
    zip_bytes = (MODELS / "mlp" / "k3.keras").read_bytes()
    offset = 4 << 20
    path = tmp_path / "late.h5"
    path.write_bytes(zip_bytes + bytes(offset - len(zip_bytes))
                     + (MODELS / "mlp" / "k3.h5").read_bytes())
    with h5py.File(path, "r") as f:
        assert "model_config" in f.attrs
    assert detect.polyglot(path) == (f"HDF5 superblock at byte {offset} and a zip record "
                                     "at byte 0, inside the HDF5 user block")


# --------------------------------------------------------------------------- outputs


def test_report_formats_list_the_container_issues() -> None:
    with _static(TRAVERSAL) as report:
        doc = assert_valid_report(json.loads(to_json(report)))
        text = render(report, "text")
        sarif = json.loads(render(report, "sarif"))
    assert [i["kind"] for i in doc["container_issues"]] == ["zip-unexpected-member"]
    assert "container issues (1):" in text and "../../evil.sh" in text
    artifact = sarif["runs"][0]["artifacts"][0]
    assert artifact["properties"]["containerIssues"] == doc["container_issues"]
    assert [r["properties"]["rule"] for r in sarif["runs"][0]["results"]
            if r["level"] == "error"] == ["container-anomaly"]


def test_healthy_report_has_an_empty_container_issue_list() -> None:
    with _static(MODELS / "mlp" / "k3.keras") as report:
        doc = json.loads(to_json(report))
    assert doc["container_issues"] == []


def test_container_anomaly_docs_list_every_kind_it_reports() -> None:
    rule = lookup("container-anomaly")
    assert rule is not None
    for kind in CONTAINER_ISSUE_KINDS.values():
        assert (f"``{kind.name}``" in rule.doc) is (kind.rule == "container-anomaly")
    assert {r.code for r in all_rules() if r.name in (
        "container-anomaly", "polyglot-container")} == {"KIN055", "KIN056"}


def test_tui_shows_container_issues() -> None:
    from textual.widgets import TabbedContent

    from inspector.tui.app import create_app
    from inspector.tui.widgets.container_issues import ContainerIssues

    app = create_app(str(TRAVERSAL), Options(probe=False))

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            while app.analysing:
                await pilot.pause(0.01)
            await pilot.pause()
            header = str(app.query_one("#model-header").render())
            assert "1 container issue" in header
            tabs = app.query_one("#bottom", TabbedContent)
            assert "Container (1)" in str(tabs.get_tab("tab-container").label)
            tabs.active = "tab-container"
            await pilot.pause()
            shown = str(app.query_one(ContainerIssues).render())
            assert "zip-unexpected-member" in shown and "../../evil.sh" in shown
            assert "error" in shown

    try:
        asyncio.run(main())
    finally:
        if app.report.graph.close is not None:
            app.report.graph.close()


def test_tui_has_no_container_tab_for_a_clean_file() -> None:
    from textual.css.query import NoMatches

    from inspector.tui.app import create_app

    app = create_app(str(MODELS / "mlp" / "k3.keras"), Options(probe=False))

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            with pytest.raises(NoMatches):
                app.query_one("#tab-container")
            assert "container issue" not in str(app.query_one("#model-header").render())

    try:
        asyncio.run(main())
    finally:
        if app.report.graph.close is not None:
            app.report.graph.close()


def test_report_dict_keys_are_documented() -> None:
    """The new top-level key is required by the schema (consumers can rely on it)."""
    from inspector.report.json_out import load_schema

    schema = load_schema()
    assert "container_issues" in schema["required"]
    with _opened(TRAVERSAL) as graph:
        assert set(Report(graph=graph).to_dict()) == set(schema["properties"])
