"""The rule documentation modal opened from a finding."""

from __future__ import annotations

import inspect

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from inspector.findings import Finding
from inspector.rules.registry import lookup
from inspector.tui.formatting import severity_badge
from inspector.tui.widgets.layer_findings import finding_detail


def rule_doc_text(finding: Finding) -> Text:
    rule = lookup(finding.rule) or lookup(finding.code)
    text = Text()
    text.append(f"{finding.code} {finding.rule}\n", style="bold")
    if rule is None:
        text.append("This rule is not in the catalog of this kinspect version.\n", style="dim")
    else:
        text.append("default severity: ")
        text.append_text(severity_badge(rule.severity, label=True))
        text.append(f"   source: {rule.source}\n\n")
        text.append(inspect.cleandoc(rule.doc) + "\n\n")
        text.append("fix: ", style="bold green4")
        text.append(rule.hint + "\n")
    text.append("\nThis finding\n", style="bold underline")
    text.append_text(finding_detail(finding))
    return text


class RuleDocScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,d", "dismiss", "Close")]
    DEFAULT_CSS = """
    RuleDocScreen { align: center middle; }
    RuleDocScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 85%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, finding: Finding) -> None:
        super().__init__()
        self.finding = finding

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(rule_doc_text(self.finding), id="rule-doc")
