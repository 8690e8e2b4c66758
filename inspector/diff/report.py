"""The diff report: one document for two files, and its renderers (JSON, text, SARIF).

Like ``Report`` it is the single source of truth: the CLI, ``--json``, SARIF and the TUI diff
view all read it; nothing downstream recomputes a difference. The JSON layout is described by
the shipped schema ``inspector/report/diff_schema.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from inspector import __version__
from inspector.diff.catalog import DIFF_RULES
from inspector.diff.config_diff import ConfigChange
from inspector.diff.weight_diff import SAME, WeightDelta
from inspector.findings import SEVERITY_RANK, Finding, sort_key
from inspector.json_values import finite_values, json_default
from inspector.report.json_out import sorted_json

DIFF_SCHEMA_VERSION = "1.0"
_MARK = {"added": "+", "removed": "-", "changed": "~", "same": " "}


@dataclass
class DiffReport:
    side_a: dict[str, Any]
    side_b: dict[str, Any]
    layers: list[dict[str, Any]] = field(default_factory=list)
    config_changes: list[ConfigChange] = field(default_factory=list)
    training_changes: list[ConfigChange] = field(default_factory=list)
    io_changes: list[dict[str, Any]] = field(default_factory=list)
    weights: list[WeightDelta] = field(default_factory=list)
    weight_summary: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    probe: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add_findings(self, new: list[Finding]) -> None:
        self.findings.extend(new)
        self.findings.sort(key=sort_key)

    @property
    def identical(self) -> bool:
        """No difference of any kind (findings included)."""
        return not self.findings

    def exceeds(self, fail_on: str) -> bool:
        """A diff finding at or above ``fail_on`` (``never``: never)."""
        if fail_on == "never":
            return False
        bar = SEVERITY_RANK[fail_on]
        return any(SEVERITY_RANK.get(f.severity, 0) >= bar for f in self.findings)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.severity] = out.get(f.severity, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": DIFF_SCHEMA_VERSION,
            "kind": "diff",
            "tool": {"name": "kinspect", "version": __version__},
            "a": self.side_a,
            "b": self.side_b,
            "identical": self.identical,
            "layers": self.layers,
            "config_changes": [c.as_dict() for c in self.config_changes],
            "training_changes": [c.as_dict() for c in self.training_changes],
            "io_changes": self.io_changes,
            "weights": {"summary": self.weight_summary,
                        "changes": [d.as_dict() for d in self.weights if d.status != SAME]},
            "findings": [f.as_dict() for f in self.findings],
            "probe": self.probe,
            "notes": list(self.notes),
            "errors": list(self.errors),
        }


def to_json(report: DiffReport, *, indent: int | None = 2) -> str:
    return sorted_json(report.to_dict(), indent=indent)


def load_diff_schema() -> dict[str, Any]:
    text = resources.files("inspector.report").joinpath("diff_schema.json").read_text("utf-8")
    return json.loads(text)


def render(report: DiffReport, fmt: str, *, color: bool = False) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "sarif":
        return to_sarif(report)
    return to_text(report, color=color)


# ------------------------------------------------------------------------------ text

_STYLE = {"error": "1;31", "warning": "33", "info": "36", "ok": "32", "title": "1",
          "+": "32", "-": "31", "~": "33"}


def _paint(text: str, style: str, color: bool) -> str:
    return f"\x1b[{_STYLE[style]}m{text}\x1b[0m" if color and text else text


def _side_line(label: str, side: dict[str, Any]) -> str:
    params = side.get("params") or {}
    return (f"  {label}  {side['path']}  ({side['format']}, keras "
            f"{side.get('keras_version') or '?'}, {side.get('layer_count', 0)} layers, "
            f"{params.get('total', 0):,} params)")


def _short(value: Any) -> str:
    text = json.dumps(finite_values(value), sort_keys=True, default=json_default)
    return text if len(text) <= 60 else text[:57] + "..."


def to_text(report: DiffReport, *, color: bool = False) -> str:
    lines = [_paint("kinspect diff", "title", color),
             _side_line("A", report.side_a), _side_line("B", report.side_b)]
    ws = report.weight_summary
    lines.append(f"  layers: {_count(report.layers, 'changed')} changed, "
                 f"{_count(report.layers, 'added')} added, "
                 f"{_count(report.layers, 'removed')} removed, "
                 f"{sum(1 for r in report.layers if r.get('renamed'))} renamed; "
                 f"tensors: {ws.get('changed', 0)} of {ws.get('compared', 0)} changed"
                 + (f", {ws['unreadable']} not compared (unreadable)"
                    if ws.get("unreadable") else ""))
    lines.extend(f"  note: {n}" for n in report.notes)
    lines.append("")
    shown = [r for r in report.layers if r["status"] != "same" or r.get("renamed")]
    if shown:
        lines.append("layers:")
        for r in shown:
            mark = _MARK[r["status"]] if r["status"] != "same" else ">"
            where = r["path_b"] or r["path_a"]
            if r.get("renamed"):
                where = f"{r['path_a']} -> {r['path_b']}"
            cls = r["class_b"] or r["class_a"]
            detail = ", ".join(r.get("changes", []))
            lines.append(f"  {_paint(mark, mark, color) if mark in _STYLE else mark} "
                         f"{where:<40} {cls:<20} {detail}".rstrip())
        lines.append("")
    if report.findings:
        lines.append(f"differences ({len(report.findings)}):")
        for f in report.findings:
            severity = _paint(f"{f.severity:<7}", f.severity, color)
            lines.append(f"  {severity} {f.code} {f.rule}  {f.layer or 'model'}")
            lines.append(f"          {f.message}")
    else:
        lines.append(_paint("no differences", "ok", color))
    lines.extend(probe_lines(report.probe))
    for err in report.errors:
        lines.append(f"error ({err.get('side', '?')}: {err.get('source', '?')}): "
                     f"{err.get('message', '')}")
    return "\n".join(lines) + "\n"


def _count(rows: list[dict[str, Any]], status: str) -> int:
    return sum(1 for r in rows if r["status"] == status)


def probe_lines(probe: dict[str, Any] | None) -> list[str]:
    """The probe section as text lines (a blank line first; none without a probe)."""
    if probe is None:
        return []
    lines = ["", f"probe: {probe.get('status', '?')}"]
    if probe.get("reason"):
        lines.append(f"  {probe['reason']}")
    for out in probe.get("outputs") or []:
        ok = "within" if out.get("within_tolerance") else "BEYOND"
        lines.append(f"  output {out.get('name')}: max abs diff {_short(out.get('max_abs_diff'))}"
                     f", argmax agreement {_short(out.get('argmax_agreement'))} ({ok} "
                     f"tolerance {_short(probe.get('tolerance'))})")
    first = probe.get("first_divergent_layer")
    if first:
        lines.append(f"  first divergent layer: {first.get('path_b') or first.get('path_a')} "
                     f"(max abs diff {_short(first.get('max_abs_diff'))})")
    return lines


# ------------------------------------------------------------------------------ SARIF


def to_sarif(report: DiffReport) -> str:
    """One SARIF 2.1.0 run: the driver lists the KD catalog, artifacts are A (0) and B (1);
    a difference is located in B, or in A when only A has the thing."""
    from inspector.report.sarif import (
        LEVELS,
        SARIF_SCHEMA,
        SARIF_VERSION,
        artifact_location,
        dump_sarif,
        fingerprint,
        src_root_base,
    )

    rules = sorted(DIFF_RULES.values(), key=lambda r: r.code)
    index = {r.code: i for i, r in enumerate(rules)}
    paths = (report.side_a["path"], report.side_b["path"])
    results: list[dict[str, Any]] = []
    seen: dict[tuple[str, str | None], int] = {}
    for f in report.findings:
        side = 0 if f.rule in ("layer-removed", "weight-missing", "finding-resolved") else 1
        location = {**artifact_location(paths[side]), "index": side}
        occurrence = seen[(f.code, f.layer)] = seen.get((f.code, f.layer), -1) + 1
        logical = [{"fullyQualifiedName": f.layer, "name": f.layer.rsplit("/", 1)[-1],
                    "kind": "member"}] if f.layer else []
        results.append({
            "ruleId": f.code, "ruleIndex": index[f.code],
            "level": LEVELS.get(f.severity, "note"),
            "message": {"text": f.message},
            "locations": [{"physicalLocation": {"artifactLocation": location},
                           "logicalLocations": logical}],
            "partialFingerprints": {"kinspectDiff/v1": fingerprint(
                f.code, f.layer, f"{location['uri']}<-{artifact_location(paths[0])['uri']}",
                occurrence)},
            "properties": {"rule": f.rule, "evidence": f.evidence, "hint": f.hint,
                           "source": f.source},
        })
    notes = [{"level": "error", "message": {"text": f"{e.get('side')}: {e.get('message')}"},
              "properties": {"kind": e.get("kind")}} for e in report.errors]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {
                "name": "kinspect", "version": __version__, "semanticVersion": __version__,
                "rules": [{
                    "id": r.code, "name": r.name,
                    "shortDescription": {"text": r.summary},
                    "fullDescription": {"text": r.summary},
                    "help": {"text": f"{r.hint}\n\n{r.summary}",
                             "markdown": f"**Fix:** {r.hint}\n\n{r.summary}"},
                    "defaultConfiguration": {"level": LEVELS[r.severity]},
                    "properties": {"tags": ["diff"], "kinspect-severity": r.severity},
                } for r in rules],
            }},
            "originalUriBaseIds": src_root_base(),
            "artifacts": [{"location": artifact_location(p),
                           "properties": {"format": s["format"], "side": label}}
                          for p, s, label in ((paths[0], report.side_a, "a"),
                                              (paths[1], report.side_b, "b"))],
            "invocations": [{"executionSuccessful": True,
                             "toolExecutionNotifications": notes}],
            "results": results,
        }],
    }
    return dump_sarif(log)


__all__ = ["DiffReport", "load_diff_schema", "probe_lines", "render", "to_json",
           "to_sarif", "to_text"]
