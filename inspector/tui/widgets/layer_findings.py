"""The Findings tab: the selected layer's findings with their evidence and fix hint."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from inspector.findings import Finding
from inspector.tui.formatting import severity_badge, styled


def finding_detail(f: Finding) -> Text:
    text = Text()
    text.append_text(severity_badge(f.severity, label=True))
    text.append(f"  {f.code} {f.rule}", style="bold")
    if f.source != "static":
        text.append(f"  [{f.source}]", style="italic")
    if f.confirmation:
        text.append(f"  {f.confirmation} by the probe", style="italic")
    text.append(f"\n{f.message}\n")
    if f.evidence:
        text.append("evidence:\n", style="bold")
        for key, value in f.evidence.items():
            shown = value if isinstance(value, str) else json.dumps(value, default=str)
            text.append(f"  {key}: {shown}\n")
    if f.related:
        text.append(f"related: {', '.join(f.related)}\n", style="italic")
    text.append("fix: ", style="bold green4")
    text.append(f"{f.hint}\n")
    return text


class LayerFindings(VerticalScroll):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._body = Static("", id="layer-findings-body")

    def compose(self):  # type: ignore[no-untyped-def]
        yield self._body

    def show(self, findings: list[Finding]) -> None:
        if not findings:
            self._body.update(styled("No findings for this layer.", "dim"))
            return
        text = Text()
        for i, f in enumerate(findings):
            if i:
                text.append("\n")
            text.append_text(finding_detail(f))
        self._body.update(text)
        self.scroll_home(animate=False)
