"""One headline diagnosis per report: the effect the probe measured and the static finding
that explains it, so a user reads one sentence before the list of findings.

Built from the report alone (findings + probe section), never recomputed elsewhere: the JSON
``diagnosis`` field, the first lines of the text report and the TUI header all show this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.findings import SEVERITY_RANK, Finding
from inspector.probe.results import ProbeSection, most_one_class
from inspector.rules.probe_rules import CONFIRMS, collapse_what, inputs_label

if TYPE_CHECKING:
    from inspector.report.model import Report

# Probe findings by how much they explain: the first raised one is the headline.
HEADLINE_ORDER = ("nan-outputs", "output-collapsed", "nondeterministic-inference",
                  "batch-size-dependent", "train-infer-gap", "input-scale-sensitive",
                  "roundtrip-mismatch", "dead-units", "duplicate-inputs")


def diagnose(report: Report) -> dict[str, Any] | None:
    """{summary, cause_rule, layer, confidence}; None when there is nothing to say (no
    finding and no probe verdict)."""
    probe = report.probe if report.probe is not None else ProbeSection()
    probe_found = [f for f in report.findings if f.source == "probe"]
    head = _headline(probe_found)
    if head is not None:
        return _probe_diagnosis(report, head, probe)
    static = [f for f in report.findings if f.source == "static"]
    worst = max(static, key=lambda f: SEVERITY_RANK.get(f.severity, 0), default=None)
    if probe.ok:      # the probe ran and raised nothing
        rng = probe.range
        seen = ("on real inputs" if probe.real_inputs else
                f"on {rng.label or 'random'} inputs" + (f" ({rng.reason})"
                                                       if rng.reason else ""))
        summary = f"the probe saw no problem: outputs follow the inputs {seen}"
        # Only a static error the summary names is a cause; the confidence is the one of
        # "no problem", so a warning it does not mention must not read as a confident cause.
        named = worst if worst is not None and SEVERITY_RANK.get(
            worst.severity, 0) >= SEVERITY_RANK["error"] else None
        if named is not None:
            summary += f"; static finding to check: {_cause_text(named)}"
        return {"summary": summary, "cause_rule": named.rule if named else None,
                "layer": named.layer if named else None,
                "confidence": "medium" if rng.confidence == "low" else "high"}
    if worst is None:
        return None
    return {"summary": f"{_cause_text(worst)} (static suspicion; the probe did not run)",
            "cause_rule": worst.rule, "layer": worst.layer, "confidence": "low"}


def _headline(found: list[Finding]) -> Finding | None:
    ranked = [f for f in found if f.rule in HEADLINE_ORDER]
    return min(ranked, key=lambda f: HEADLINE_ORDER.index(f.rule), default=None)


def _probe_diagnosis(report: Report, head: Finding, probe: ProbeSection) -> dict[str, Any]:
    cause = _cause(report.findings, head, probe.collapse_layer)
    effect = _effect(head, probe)
    layer = cause.layer if cause is not None else head.layer
    parts = [effect]
    collapse_at = probe.collapse_layer if head.rule == "output-collapsed" else None
    if collapse_at:
        parts.append(f"variation dies at `{collapse_at}`")
    if cause is not None:
        parts.append(f"cause: {_cause_text(cause)}")
    confidence = _confidence(probe, cause, collapse_at)
    return {"summary": "; ".join(parts), "cause_rule": cause.rule if cause else head.rule,
            "layer": layer, "confidence": confidence}


def _effect(head: Finding, probe: ProbeSection) -> str:
    """The measured effect in words."""
    if head.rule == "output-collapsed":
        worst = most_one_class(probe.outputs)
        what = collapse_what(worst).replace(" of them", "")
        verb = "predicts " + what if worst.top_class is not None else "outputs " + what
        return f"{verb} of the {inputs_label(probe)}"
    return f"{head.rule}: {head.message}"


def _cause(findings: list[Finding], head: Finding, collapse_at: str | None) -> Finding | None:
    """The static finding the headline confirms: the one on the collapse layer first, then
    the most severe, then the CONFIRMS order."""
    wanted = CONFIRMS.get(head.rule, ())
    linked = [f for f in findings if f.source == "static" and f.rule in wanted
              and f.confirmation == "confirmed"]
    if not linked:
        return None

    def rank(f: Finding) -> tuple[int, int, int]:
        return (0 if collapse_at and f.layer == collapse_at else 1,
                -SEVERITY_RANK.get(f.severity, 0), wanted.index(f.rule))
    return min(linked, key=rank)


def _cause_text(f: Finding) -> str:
    where = f" at `{f.layer}`" if f.layer else ""
    return f"{f.rule}{where} ({f.message})"


def _confidence(probe: ProbeSection, cause: Finding | None, collapse_at: str | None) -> str:
    """high: real inputs or a confident input range, and a static cause (on the collapse
    layer when there is one); medium: one of the two; low: neither."""
    range_ok = bool(probe.real_inputs) or probe.range.confidence in ("high", "medium")
    cause_ok = cause is not None and (not collapse_at or cause.layer in (None, collapse_at))
    if range_ok and cause_ok:
        return "high"
    if range_ok or cause is not None:
        return "medium"
    return "low"
