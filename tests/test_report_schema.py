"""The shipped JSON Schema (inspector/report/schema.json) describes every report kinspect writes:
each readable fixture, reports carrying a probe section (ok, failed, skipped) and a crashed
rule. Other tests validate their reports with ``helpers.assert_valid_report`` too."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fake_probe import FakeProbeSource, ok_probe_events
from helpers import assert_valid_report

from inspector.errors import KinspectError
from inspector.options import Options
from inspector.probe import protocol
from inspector.probe.runner import attach_probe
from inspector.report.json_out import load_schema, to_json
from inspector.report.model import Report
from inspector.rules.registry import Hit, Rule, all_rules, run_rules
from inspector.run.pipeline import analyze_static
from inspector.stats import StatsCache

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
HEALTHY = FIXTURES / "models" / "mlp" / "k3.keras"
WEIGHTS_ONLY = FIXTURES / "rules" / "weights-only-file" / "bad_mlp_k3.weights.h5"


def _model_paths() -> list[Any]:
    found = []
    for group in ("models", "rules", "probe", "hostile"):
        base = FIXTURES / group
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*")):
            if "repro" in p.relative_to(base).parts:
                continue  # libhdf5 hang reproducers: only the isolated worker may open them
            savedmodel = p.is_dir() and (p / "saved_model.pb").is_file()
            model_file = p.is_file() and p.suffix in (".h5", ".keras", ".hdf5") and not any(
                (q / "saved_model.pb").is_file() for q in p.parents)
            if savedmodel or model_file:
                found.append(p)
    return [pytest.param(p, id=str(p.relative_to(FIXTURES))) for p in found]


def _json(report: Report) -> dict[str, Any]:
    return json.loads(to_json(report))


def test_schema_is_valid_and_shipped() -> None:
    import jsonschema

    schema = load_schema()   # read through importlib.resources, as an installed package does
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema_version"]["const"] == "1.2"


@pytest.mark.parametrize("path", _model_paths())
def test_every_fixture_report_matches_schema(path: Path) -> None:
    try:
        report = analyze_static(path, Options(probe=False))
    except KinspectError:
        pytest.skip("unreadable by design (the error path has its own tests)")
    doc = assert_valid_report(_json(report))
    assert doc["probe"] is None


def test_schema_rejects_malformed_reports() -> None:
    good = _json(analyze_static(FIXTURES / "rules" / "softmax-wrong-axis" / "bad_batch_k2.h5",
                                Options(probe=False)))
    assert good["findings"]
    for mutate in (
        lambda d: d["findings"][0].update(severity="fatal"),
        lambda d: d["findings"][0].update(code="K5"),
        lambda d: d["findings"][0].pop("hint"),
        lambda d: d.update(probe={"verdict": {}}),
        lambda d: d["model"].pop("format"),
        lambda d: d["layers"][0].update(role="thing"),
        lambda d: d.pop("container_issues"),
        lambda d: d.update(container_issues=[{"kind": "zip-unexpected-member",
                                              "severity": "fatal", "location": "x",
                                              "detail": "y"}]),
        lambda d: d.update(container_issues=[{"kind": "x", "severity": "error",
                                              "location": "x"}]),
    ):
        bad = copy.deepcopy(good)
        mutate(bad)
        with pytest.raises(AssertionError):
            assert_valid_report(bad)


def test_crashed_rule_report_matches_schema() -> None:
    def broken(ctx: Any) -> Any:
        """Always fails."""
        raise RuntimeError("boom")
        yield Hit(None, {})  # pragma: no cover

    rule = Rule("KIN999", "always-crashes", "error", "t", "h", broken)
    report = analyze_static(HEALTHY, Options(probe=False))
    findings, errors = run_rules(report.graph, StatsCache(), [rule, *all_rules()])
    report.findings, report.errors = findings, errors
    doc = assert_valid_report(_json(report))
    assert [e["source"] for e in doc["errors"]] == ["rule:always-crashes"]


def _with_probe(path: Path, source: FakeProbeSource | None) -> dict[str, Any]:
    options = Options(probe=True)
    report = analyze_static(path, options)
    attach_probe(report, options, source=source)
    return assert_valid_report(_json(report))


def test_probe_sections_match_schema() -> None:
    skipped = _with_probe(WEIGHTS_ONLY, None)
    assert skipped["probe"]["status"] == protocol.STATUS_SKIPPED
    failed = _with_probe(HEALTHY, FakeProbeSource(
        [{"event": "error", "kind": "crashed", "message": "child died"}]))
    assert failed["probe"]["status"] == protocol.STATUS_FAILED and failed["errors"]
    verdict = dict.fromkeys(protocol.VERDICT_KEYS, False)
    ok = _with_probe(HEALTHY, FakeProbeSource(ok_probe_events(
        {"status": "ok", "device": "cpu", "verdict": verdict, "checks": {}})))
    assert ok["probe"]["status"] == "ok"
