"""Findings and severities: the base vocabulary of every output, static or from the probe.

Kept apart from the rule registry so reports, writers, the TUI and the diff can speak about
findings without importing the rule machinery (or the weight-statistics code it needs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {"info": 1, "warning": 2, "error": 3}


@dataclass
class Finding:
    """One problem, static or from the probe, as it appears in every output format."""

    code: str
    rule: str
    severity: str
    message: str
    layer: str | None
    evidence: dict[str, Any]
    hint: str
    source: str = "static"
    # Probe linkage: "confirmed" / "unconfirmed" on a static finding the probe judged,
    # and the rule names of the findings this one confirms or is confirmed by.
    confirmation: str | None = None
    related: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "layer": self.layer,
            "evidence": self.evidence,
            "hint": self.hint,
            "source": self.source,
            "confirmation": self.confirmation,
            "related": list(self.related),
        }


def sort_key(f: Finding) -> tuple[int, str, str]:
    """Most severe first, then by rule code and layer path: a stable report order."""
    return (-SEVERITY_RANK.get(f.severity, 0), f.code, f.layer or "")
