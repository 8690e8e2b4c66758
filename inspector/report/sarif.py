"""SARIF 2.1.0 output, for code-scanning dashboards (GitHub, GitLab, VS Code SARIF viewer).

One run for all reports: the tool's driver lists every catalog rule (so a viewer can show the
documentation of rules that did not fire), each model file is an artifact, and each finding is
a result whose logical location is the layer path (``kind`` ``module`` for a model or nested
model, ``member`` for a layer). Rule crashes and probe failures become tool execution
notifications, not results.

What code-scanning dashboards need to dedupe and rank alerts across runs: file URIs relative
to ``%SRCROOT%`` (the working directory the scan ran in), a ``partialFingerprints`` entry that
does not depend on the message wording, a ``helpUri`` per rule, and on rules about what
loading the file can do (``Rule.security_severity``) a ``security`` tag and a
``security-severity`` score (GitHub: 9.0+ critical, 7.0+ high, 4.0+ medium).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from importlib.metadata import PackageNotFoundError, metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from inspector import __version__
from inspector.findings import Finding
from inspector.json_values import finite_values
from inspector.report.model import Report
from inspector.rules.registry import Rule, all_rules

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
SRCROOT = "%SRCROOT%"
# Where each rule's documentation lives: docs/rules.md, one anchor per rule (``#kin009-
# lambda-layer``; rules_cli writes those anchors). The address is the package's "Rules" URL
# (pyproject.toml [project.urls]), so a fork or a mirror changes it in one place;
# KINSPECT_RULE_DOCS_URL overrides it for an internal mirror of the docs.
_DEFAULT_RULE_DOCS_URL = "https://github.com/kinspect/kinspect/blob/main/docs/rules.md"


@cache
def rule_docs_url() -> str:
    override = os.environ.get("KINSPECT_RULE_DOCS_URL")
    if override:
        return override
    try:
        urls = metadata("kinspect").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "rules" and url.strip():
            return url.strip()
    return _DEFAULT_RULE_DOCS_URL
FINGERPRINT_KEY = "kinspectFinding/v1"


def artifact_uri(path: str) -> str:
    """A URI reference for a model path: relative to the working directory (the scan root,
    ``%SRCROOT%``) when the file is below it, else an absolute ``file://`` URI."""
    absolute = Path(os.path.abspath(path))  # no resolve(): a link stays where the user put it
    try:
        rel = absolute.relative_to(os.path.abspath(os.getcwd()))
    except ValueError:
        return absolute.as_uri()
    return quote(rel.as_posix(), safe="/._-~")


def artifact_location(path: str) -> dict[str, Any]:
    """The ``artifactLocation`` of a model path: relative URIs name their base."""
    uri = artifact_uri(path)
    if uri.startswith("file:"):
        return {"uri": uri}
    return {"uri": uri, "uriBaseId": SRCROOT}


def rule_help_uri(rule: Rule) -> str:
    return f"{rule_docs_url()}#{rule.code.lower()}-{rule.name}"


def fingerprint(code: str, layer: str | None, uri: str, occurrence: int) -> str:
    """Stable across runs and message rewording: the rule, the layer path, the file's
    relative URI and, for a rule that fires more than once on one layer, its ordinal."""
    key = "\0".join((code, layer or "", uri, str(occurrence)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _rule_entry(rule: Rule) -> dict[str, Any]:
    body, summary = rule.body, rule.summary
    full = f"{summary}\n\n{body}" if body else summary
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": full},
        "help": {"text": f"{rule.hint}\n\n{full}",
                 "markdown": f"**Fix:** {rule.hint}\n\n{full}"},
        "helpUri": rule_help_uri(rule),
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": _rule_properties(rule),
    }


def _rule_properties(rule: Rule) -> dict[str, Any]:
    properties: dict[str, Any] = {"tags": [rule.source], "kinspect-severity": rule.severity}
    if rule.security_severity is not None:
        properties["tags"].append("security")
        properties["security-severity"] = f"{rule.security_severity:.1f}"
    return properties


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
            rule_index: dict[str, int], occurrence: int) -> dict[str, Any]:
    location = {**artifact_location(report.graph.path), "index": artifact}
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "level": LEVELS.get(finding.severity, "note"),
        "message": {"text": finding.message},
        "locations": [{
            "physicalLocation": {"artifactLocation": location},
            "logicalLocations": _logical(report, finding),
        }],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(
            finding.code, finding.layer, location["uri"], occurrence)},
        "properties": {"rule": finding.rule, "evidence": finding.evidence,
                       "hint": finding.hint, "source": finding.source,
                       "confirmation": finding.confirmation, "related": finding.related},
    }
    if finding.code in rule_index:
        result["ruleIndex"] = rule_index[finding.code]
    return result


def to_sarif(reports: list[Report]) -> str:
    """One SARIF 2.1.0 log (a single run) covering every report, as indented JSON."""
    return dump_sarif(_log(reports))


def dump_sarif(log: dict[str, Any]) -> str:
    """A SARIF log as kinspect writes every one (single-file and diff): indented, sorted keys,
    NaN/Infinity as null."""
    return json.dumps(finite_values(log), indent=2, sort_keys=True, ensure_ascii=False)


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
        run["artifacts"].append({"location": artifact_location(path)})
        invocation["toolExecutionNotifications"].append({
            "level": "error", "message": {"text": error},
            "locations": [{"physicalLocation": {"artifactLocation": {
                **artifact_location(path), "index": len(run["artifacts"]) - 1}}}],
            "properties": {"kind": "unreadable"}})
        invocation["executionSuccessful"] = False
    return dump_sarif(merged)


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
        artifacts.append({"location": artifact_location(report.graph.path),
                          "properties": properties})
        seen: dict[tuple[str, str | None], int] = {}
        for f in report.findings:
            occurrence = seen[(f.code, f.layer)] = seen.get((f.code, f.layer), -1) + 1
            results.append(_result(report, f, i, rule_index, occurrence))
        for err in report.errors:
            notes.append({
                "level": "error",
                "message": {"text": f"{err.get('source', '?')}: {err.get('message', '')}"},
                "locations": [{"physicalLocation": {"artifactLocation": {
                    **artifact_location(report.graph.path), "index": i}}}],
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
            "originalUriBaseIds": src_root_base(),
            "artifacts": artifacts,
            "invocations": [{"executionSuccessful": True,
                             "toolExecutionNotifications": notes}],
            "results": results,
        }],
    }
    return log


def src_root_base() -> dict[str, Any]:
    """``originalUriBaseIds``: SRCROOT is the working directory, which relative artifact
    URIs (see artifact_uri) are resolved against."""
    return {SRCROOT: {"uri": directory_uri(os.getcwd())}}


def directory_uri(path: str) -> str:
    """An absolute directory URI ending in '/', as SARIF requires for a URI base."""
    uri = Path(os.path.abspath(path)).as_uri()
    return uri if uri.endswith("/") else uri + "/"
