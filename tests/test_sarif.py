"""SARIF 2.1.0 output: structure, rule table, levels, locations, and several files in one log."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import assert_valid_sarif

from inspector.analyze import analyze_static
from inspector.options import Options
from inspector.report.model import Report
from inspector.report.sarif import artifact_uri, merge_sarif, to_sarif
from inspector.rules.registry import Finding, all_rules

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "fixtures" / "rules"


def _report(rel: str) -> Report:
    return analyze_static(RULES / rel, Options(probe=False))


def test_rule_table_has_every_catalog_rule() -> None:
    log = assert_valid_sarif(to_sarif([]))
    entries = log["runs"][0]["tool"]["driver"]["rules"]
    rules = all_rules()
    assert [e["id"] for e in entries] == [r.code for r in rules]
    for entry, rule in zip(entries, rules, strict=True):
        assert entry["name"] == rule.name
        assert entry["defaultConfiguration"]["level"] == {
            "error": "error", "warning": "warning", "info": "note"}[rule.severity]
        assert rule.hint in entry["help"]["text"]
        assert entry["fullDescription"]["text"].startswith(entry["shortDescription"]["text"])


def test_several_reports_share_one_run() -> None:
    frozen = _report("all-layers-frozen/bad_model_k3.keras")       # model-level warning
    nested = _report("dropout-rate-high/bad_nested_k3.keras")      # layer inside a nested model
    stateful = _report("stateful-rnn/bad_lstm_k2.h5")              # info
    log = assert_valid_sarif(to_sarif([frozen, nested, stateful]))
    run = log["runs"][0]
    assert len(run["artifacts"]) == 3
    by_rule = {r["ruleId"]: r for r in run["results"]}

    model_level = by_rule["KIN002"]
    assert model_level["level"] == "warning"
    (logical,) = model_level["locations"][0]["logicalLocations"]
    assert logical == {"fullyQualifiedName": "model", "name": "frozen", "kind": "module"}
    assert model_level["locations"][0]["physicalLocation"]["artifactLocation"]["index"] == 0

    inner = by_rule["KIN001"]["locations"][0]
    assert inner["logicalLocations"][0]["fullyQualifiedName"] == "model/base/inner_drop"
    assert inner["logicalLocations"][0]["kind"] == "member"
    assert inner["physicalLocation"]["artifactLocation"]["index"] == 1

    assert by_rule["KIN019"]["level"] == "note"
    assert by_rule["KIN019"]["properties"]["evidence"]["class_name"] == "LSTM"


def test_merged_single_file_logs_equal_one_log_of_every_report() -> None:
    """Worker processes render one log per file; the merge must be the log of all of them."""
    reports = [_report("all-layers-frozen/bad_model_k3.keras"),
               _report("dropout-rate-high/bad_nested_k3.keras"),
               _report("stateful-rnn/bad_lstm_k2.h5")]
    merged = merge_sarif([to_sarif([r]) for r in reports], [])
    assert json.loads(merged) == json.loads(to_sarif(reports))
    with_failure = assert_valid_sarif(merge_sarif([to_sarif(reports[:1])],
                                                  [("x/broken.h5", "x/broken.h5: truncated")]))
    run = with_failure["runs"][0]
    assert run["artifacts"][1] == {"location": {"uri": "x/broken.h5"}}
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "error" and note["message"]["text"] == "x/broken.h5: truncated"
    assert run["invocations"][0]["executionSuccessful"] is False


def test_nested_model_location_is_a_module_and_errors_become_notifications() -> None:
    report = _report("dropout-rate-high/bad_nested_k3.keras")
    report.findings = [Finding("KIN012", "training-arg-hardcoded", "error", "m", "model/base",
                               {}, "h")]
    report.errors = [{"source": "rule:x", "kind": "rule-crashed", "message": "boom"}]
    run = assert_valid_sarif(to_sarif([report]))["runs"][0]
    assert run["results"][0]["locations"][0]["logicalLocations"][0]["kind"] == "module"
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "error" and "boom" in note["message"]["text"]


def test_artifact_uris() -> None:
    assert artifact_uri("fixtures/a b.h5") == "fixtures/a%20b.h5"
    assert artifact_uri("/tmp/m.keras") == "file:///tmp/m.keras"
