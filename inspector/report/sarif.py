"""SARIF 2.1.0 output, for code-scanning dashboards (GitHub, GitLab, VS Code SARIF viewer).

One run for all reports: the tool's driver lists every catalog rule (so a viewer can show the
documentation of rules that did not fire), each model file is an artifact, and each finding is
a result whose logical location is the layer path (``kind`` ``module`` for a model or nested
model, ``member`` for a layer). Rule crashes and probe failures become tool execution
notifications, not results.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import quote

from inspector import __version__
from inspector.report.json_out import _finite
from inspector.report.model import Report
from inspector.rules.registry import Finding, Rule, all_rules

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def artifact_uri(path: str) -> str:
    """A URI reference for a model path: relative paths stay relative (resolved against the
    scan root by viewers), absolute ones become ``file://`` URIs."""
    p = Path(path)
    if p.is_absolute():
        return p.as_uri()
    return quote(p.as_posix(), safe="/._-~")


def _rule_entry(rule: Rule) -> dict[str, Any]:
    from inspector.rules_cli import _body, _summary

    body = textwrap.dedent(_body(rule)).strip()
    summary = _summary(rule)
    full = f"{summary}\n\n{body}" if body else summary
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": full},
        "help": {"text": f"{rule.hint}\n\n{full}",
                 "markdown": f"**Fix:** {rule.hint}\n\n{full}"},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"tags": [rule.source], "kinspect-severity": rule.severity},
    }


def _logical(report: Report, finding: Finding) -> list[dict[str, Any]]:
    graph = report.graph
    if finding.layer is None:
        if graph.root is None:
            return []
        return [{"fullyQualifiedName": graph.root.path, "name": graph.root.name,
                 "kind": "module"}]
    node = graph.find(finding.layer)
    kind = "module" if node is not None and node.role == "model" else "member"
    entry: dict[str, Any] = {"fullyQualifiedName": finding.layer,
                             "name": finding.layer.rsplit("/", 1)[-1], "kind": kind}
    return [entry]


def _result(report: Report, finding: Finding, artifact: int,
            rule_index: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "level": LEVELS.get(finding.severity, "note"),
        "message": {"text": finding.message},
        "locations": [{
            "physicalLocation": {"artifactLocation": {"uri": artifact_uri(report.graph.path),
                                                      "index": artifact}},
            "logicalLocations": _logical(report, finding),
        }],
        "properties": {"rule": finding.rule, "evidence": finding.evidence,
                       "hint": finding.hint, "source": finding.source,
                       "confirmation": finding.confirmation, "related": finding.related},
    }
    if finding.code in rule_index:
        result["ruleIndex"] = rule_index[finding.code]
    return result


def to_sarif(reports: list[Report]) -> str:
    """One SARIF 2.1.0 log (a single run) covering every report, as indented JSON."""
    return _dump(_log(reports))


def _dump(log: dict[str, Any]) -> str:
    return json.dumps(_finite(log), indent=2, sort_keys=True, ensure_ascii=False)


def merge_sarif(logs: list[str], failures: list[tuple[str, str]]) -> str:
    """One log (a single run) from the single-file logs that worker processes rendered, plus
    the files that could not be read (path, one-line error) as error notifications: a code
    scanning upload takes one log per scan, whatever the number of model files."""
    merged = _log([])
    run = merged["runs"][0]
    invocation = run["invocations"][0]
    for text in logs:
        part = json.loads(text)["runs"][0]
        offset = len(run["artifacts"])
        notes = part["invocations"][0]["toolExecutionNotifications"]
        for entry in [*part["results"], *notes]:
            for location in entry.get("locations", []):
                location["physicalLocation"]["artifactLocation"]["index"] += offset
        run["artifacts"].extend(part["artifacts"])
        run["results"].extend(part["results"])
        invocation["toolExecutionNotifications"].extend(notes)
    for path, error in failures:
        run["artifacts"].append({"location": {"uri": artifact_uri(path)}})
        invocation["toolExecutionNotifications"].append({
            "level": "error", "message": {"text": error},
            "locations": [{"physicalLocation": {"artifactLocation": {
                "uri": artifact_uri(path), "index": len(run["artifacts"]) - 1}}}],
            "properties": {"kind": "unreadable"}})
        invocation["executionSuccessful"] = False
    return _dump(merged)


def _log(reports: list[Report]) -> dict[str, Any]:
    rules = all_rules()
    rule_index = {r.code: i for i, r in enumerate(rules)}
    results: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    artifacts: list[dict[str, Any]] = []
    for i, report in enumerate(reports):
        properties: dict[str, Any] = {"format": report.graph.format}
        if report.graph.container_issues:   # each one is a result too, via its rule
            properties["containerIssues"] = [c.as_dict() for c in report.graph.container_issues]
        artifacts.append({"location": {"uri": artifact_uri(report.graph.path)},
                          "properties": properties})
        results.extend(_result(report, f, i, rule_index) for f in report.findings)
        for err in report.errors:
            notes.append({
                "level": "error",
                "message": {"text": f"{err.get('source', '?')}: {err.get('message', '')}"},
                "locations": [{"physicalLocation": {"artifactLocation": {
                    "uri": artifact_uri(report.graph.path), "index": i}}}],
                "properties": {"kind": err.get("kind")},
            })
    log = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {
                "name": "kinspect",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": [_rule_entry(r) for r in rules],
            }},
            "artifacts": artifacts,
            "invocations": [{"executionSuccessful": True,
                             "toolExecutionNotifications": notes}],
            "results": results,
        }],
    }
    return log
