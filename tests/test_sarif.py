"""SARIF 2.1.0 output: structure, rule table, levels, locations, and several files in one log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import assert_valid_sarif

from inspector.findings import Finding
from inspector.options import Options
from inspector.report.model import Report
from inspector.report.sarif import (
    FINGERPRINT_KEY,
    SRCROOT,
    artifact_location,
    artifact_uri,
    merge_sarif,
    rule_docs_url,
    to_sarif,
)
from inspector.rules.registry import all_rules
from inspector.run.pipeline import analyze_static

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
    assert run["artifacts"][1] == {"location": {"uri": "x/broken.h5", "uriBaseId": SRCROOT}}
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


SECURITY_RULES = {"lambda-layer", "custom-object", "untrusted-module-reference",
                  "savedmodel-dangerous-op", "savedmodel-metadata-mismatch",
                  "polyglot-container", "container-anomaly"}


def test_security_rules_carry_a_score_and_a_tag_for_code_scanning() -> None:
    """GitHub ranks an alert by ``security-severity`` only on rules tagged ``security``."""
    entries = assert_valid_sarif(to_sarif([]))["runs"][0]["tool"]["driver"]["rules"]
    tagged = {e["name"]: e["properties"] for e in entries
              if "security" in e["properties"]["tags"]}
    assert set(tagged) >= SECURITY_RULES
    for name, props in tagged.items():
        assert 0.0 < float(props["security-severity"]) <= 10.0, name
    code_execution = ("lambda-layer", "untrusted-module-reference", "savedmodel-dangerous-op")
    assert all(float(tagged[n]["security-severity"]) >= 9.0 for n in code_execution)
    quality = [e for e in entries if e["name"] in ("dropout-rate-high", "nan-weights")]
    assert len(quality) == 2
    assert all("security-severity" not in e["properties"]
               and "security" not in e["properties"]["tags"] for e in quality)


def test_help_uri_points_at_the_rule_section_of_the_docs() -> None:
    from inspector.rules_cli import markdown

    docs = markdown()
    for entry in assert_valid_sarif(to_sarif([]))["runs"][0]["tool"]["driver"]["rules"]:
        base, anchor = entry["helpUri"].split("#")
        assert base == rule_docs_url() and base.endswith("/docs/rules.md")
        assert f"(#{anchor})" in docs, entry["id"]      # the catalog's own link to the section
        assert anchor == f"{entry['id'].lower()}-{entry['name']}"


def test_rule_docs_url_comes_from_the_package_urls_or_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import metadata

    urls = dict(e.split(", ", 1) for e in metadata("kinspect").get_all("Project-URL"))
    rule_docs_url.cache_clear()
    assert rule_docs_url() == urls["Rules"]
    monkeypatch.setenv("KINSPECT_RULE_DOCS_URL", "https://docs.example.test/rules.html")
    rule_docs_url.cache_clear()
    try:
        entry = json.loads(to_sarif([]))["runs"][0]["tool"]["driver"]["rules"][0]
        assert entry["helpUri"].startswith("https://docs.example.test/rules.html#kin")
    finally:
        rule_docs_url.cache_clear()


def _fingerprints(log: str) -> list[str]:
    return [r["partialFingerprints"][FINGERPRINT_KEY]
            for r in assert_valid_sarif(log)["runs"][0]["results"]]


def test_fingerprints_are_stable_unique_and_ignore_the_message() -> None:
    report = _report("untrusted-module-reference/" + _first_bad("untrusted-module-reference"))
    first = _fingerprints(to_sarif([report]))
    assert len(first) >= 1 and len(first) == len(set(first))
    for f in report.findings:
        f.message = f"reworded: {f.message}"
        f.evidence = {"changed": True}
    assert _fingerprints(to_sarif([report])) == first
    # Two findings of one rule on one layer still get two fingerprints (alerts are not merged).
    twice = [Finding("KIN001", "dropout-rate-high", "warning", m, "model/d", {}, "h")
             for m in ("a", "b")]
    report.findings = twice
    pair = _fingerprints(to_sarif([report]))
    assert len(set(pair)) == 2
    report.findings = twice[:1]
    moved = Finding("KIN001", "dropout-rate-high", "warning", "a", "model/other", {}, "h")
    assert _fingerprints(to_sarif([report])) == pair[:1]
    report.findings = [moved]
    assert _fingerprints(to_sarif([report])) != pair[:1]


def _first_bad(rule: str) -> str:
    return sorted(p.name for p in (RULES / rule).glob("bad_*"))[0]


def test_uris_are_relative_to_srcroot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Below the working directory: relative + %SRCROOT% (defined as the working directory),
    so one file has one URI whether given relative or absolute; outside: an absolute URI."""
    monkeypatch.chdir(ROOT)
    rel = "fixtures/rules/dropout-rate-high/bad_nested_k3.keras"
    assert artifact_location(rel) == artifact_location(str(ROOT / rel)) == {
        "uri": rel, "uriBaseId": SRCROOT}
    assert artifact_location("/tmp/m.keras") == {"uri": "file:///tmp/m.keras"}
    run = assert_valid_sarif(to_sarif([_report("dropout-rate-high/bad_nested_k3.keras")]))[
        "runs"][0]
    assert run["originalUriBaseIds"] == {SRCROOT: {"uri": ROOT.as_uri() + "/"}}
    (result,) = run["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": rel, "uriBaseId": SRCROOT, "index": 0}
    monkeypatch.chdir(tmp_path)    # scanned from elsewhere: the file is outside the root
    outside = to_sarif([_report("dropout-rate-high/bad_nested_k3.keras")])
    assert assert_valid_sarif(outside)["runs"][0]["artifacts"][0]["location"] == {
        "uri": (ROOT / rel).as_uri()}
