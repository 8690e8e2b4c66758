"""Readable text report for terminals that are not interactive (pipes, CI logs)."""

from __future__ import annotations

from typing import Any

from inspector.graph import ContainerIssue, LayerNode
from inspector.probe.results import ProbeSection
from inspector.report.model import Report, shape_json
from inspector.report.training import training_summary

_MARK = {"error": "E", "warning": "W", "info": "i"}
# ANSI styles by severity, as ruff colours its diagnostics (only when the caller asks).
_STYLE = {"error": "1;31", "warning": "33", "info": "36", "ok": "32", "title": "1"}


def _paint(text: str, style: str, color: bool) -> str:
    return f"\x1b[{_STYLE[style]}m{text}\x1b[0m" if color and text else text


def _trainable(node: LayerNode) -> str:
    """yes / no (frozen itself or inside a frozen model) / - (no weights to train)."""
    if node.params.total == 0:
        return "-"
    frozen = node
    while frozen is not None:
        if not frozen.trainable:
            return "no"
        frozen = frozen.parent
    return "yes"


def _shape(shape: Any) -> str:
    js = shape_json(shape)
    if js is None:
        return "?"
    if js and isinstance(js[0], list):
        return ", ".join(_shape(tuple(s)) for s in js)
    return "(" + ", ".join("None" if d is None else str(d) for d in js) + ")"


def to_text(report: Report, *, color: bool = False) -> str:
    """``color``: ANSI colours by severity (for a terminal; the CLI decides)."""
    g = report.graph
    p = g.params
    lines = [
        _paint(f"{g.path}", "title", color),
        *_diagnosis_lines(report.diagnosis),
        f"  format {g.format}  keras {g.keras_version or '?'}"
        + (f"  backend {g.backend}" if g.backend else "")  # unrecorded: omitted, not "?"
        + f"  class {g.class_name or '?'}",
        f"  {len(g.layers)} layers  params {p.total:,} (trainable {p.trainable:,},"
        f" non-trainable {p.non_trainable:,})",
    ]
    if g.inputs:
        lines.append("  inputs  " + "; ".join(f"{t.name} {_shape(t.shape)} {t.dtype or ''}".rstrip()
                                              for t in g.inputs))
    if g.outputs:
        lines.append("  outputs " + "; ".join(f"{t.name} {_shape(t.shape)}" for t in g.outputs))
    training = training_summary(g.training_config)
    if training:
        lines.append("  training  " + "  ".join(f"{k} {v}" for k, v in training))
    lines.extend(f"  note: {n}" for n in g.notes)
    lines.extend(_container_lines(g.container_issues))
    lines.append("")
    if g.root is not None:
        lines.append(f"{'layer':<44} {'class':<22} {'output shape':<22} {'params':>10}"
                     f" {'train':<5}")
        for node in g.walk():
            depth = node.path.count("/") - 1
            found = {f.severity for f in report.findings_for(node.path)}
            marks = "".join(_paint(_MARK[s], s, color)
                            for s in sorted(found, key=lambda s: _MARK[s]))
            name = ("  " * depth + node.name)[:42]
            shape = _shape(node.output_shape)[:22]
            lines.append(f"{name:<44} {node.class_name[:22]:<22} {shape:<22}"
                         f" {node.params.total:>10,} {_trainable(node):<5} {marks}".rstrip())
        lines.append("")
    elif g.loose_weights:
        lines.append(f"{len(g.loose_weights)} weight tensors, no architecture:")
        for w in g.loose_weights[:50]:
            lines.append(f"  {w.name}  {list(w.shape)}  {w.dtype}")
        if len(g.loose_weights) > 50:
            lines.append(f"  ... {len(g.loose_weights) - 50} more")
        lines.append("")
    if report.findings:
        lines.append(f"findings ({len(report.findings)}):")
        for f in report.findings:
            where = f.layer or "model"
            tag = f" [{f.source}]" if f.source != "static" else ""
            conf = f" ({f.confirmation})" if f.confirmation else ""
            severity = _paint(f"{f.severity:<7}", f.severity, color)
            lines.append(f"  {severity} {f.code} {f.rule}{tag}{conf}  {where}")
            lines.append(f"          {f.message}")
            if f.hint:
                lines.append(f"          fix: {f.hint}")
    else:
        lines.append(_paint("no findings", "ok", color))
    lines.extend(_probe_lines(report.probe))
    for err in report.errors:
        lines.append(f"error ({err.get('source', '?')}): {err.get('message', '')}")
    return "\n".join(lines) + "\n"


def _diagnosis_lines(diagnosis: dict[str, Any] | None) -> list[str]:
    """The headline, right under the file name: what is wrong and why, in one sentence."""
    if not diagnosis:
        return []
    return [f"  diagnosis ({diagnosis['confidence']} confidence): {diagnosis['summary']}"]


def _container_lines(issues: list[ContainerIssue]) -> list[str]:
    if not issues:
        return []
    lines = [f"  container issues ({len(issues)}):"]
    for issue in issues:
        lines.append(f"    {issue.severity:<7} {issue.kind}  {issue.location}: {issue.detail}")
    return lines


def _probe_lines(probe: ProbeSection | None) -> list[str]:
    if probe is None:
        return []
    lines = ["", f"probe: {probe.status or '?'}"]
    if probe.reason:
        lines.append(f"  {probe.reason}")
    if probe.device:
        lines.append(f"  device {probe.device}  loader {probe.loader or '?'}")
    if probe.verdict is not None:
        raised = sorted(probe.verdict.raised())
        lines.append("  verdict: " + (", ".join(raised) if raised else "healthy"))
    rng = probe.range
    if rng.label:
        lines.append(f"  judged on {rng.label} inputs ({rng.confidence or '?'} "
                     f"confidence): {rng.reason or ''}")
    return lines
