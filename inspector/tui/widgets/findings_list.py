"""The list of every finding, worst first; Enter jumps to the layer, ``d`` opens the rule doc."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from inspector.findings import Finding, sort_key
from inspector.report.model import Report
from inspector.tui.formatting import severity_badge, styled
from inspector.tui.messages import JumpToLayer, ShowRuleDoc


def finding_line(f: Finding) -> Text:
    text = severity_badge(f.severity)
    text.append(f" {f.code} ", style="bold")
    where = f.layer or "model"
    if not f.message.startswith(where):  # most messages already start with the layer
        text.append(f"{where}: ", style="italic")
    text.append(f.message)
    return text


class FindingsList(OptionList):
    BINDINGS = [
        Binding("d", "rule_doc", "Rule doc"),
        Binding("enter", "select", "Go to layer", show=True),
    ]

    def __init__(self, report: Report, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report = report
        self.findings: list[Finding] = []


    def reload(self, *, analysing: bool = False) -> None:
        """Re-read report.findings (the rules or the probe may have added some)."""
        self.findings = sorted(self.report.findings, key=sort_key)
        self.clear_options()
        if not self.findings:
            note = "Running the rule catalog…" if analysing else "No findings."
            self.add_option(Option(styled(note, "dim"), disabled=True))
            return
        self.add_options([Option(finding_line(f), id=f"finding-{i}")
                          for i, f in enumerate(self.findings)])
        self.highlighted = 0

    @property
    def current(self) -> Finding | None:
        i = self.highlighted
        if i is None or not 0 <= i < len(self.findings):
            return None
        return self.findings[i]

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        f = self.current
        if f is None:
            return
        if f.layer:
            self.post_message(JumpToLayer(f.layer))
        else:
            self.post_message(ShowRuleDoc(event.option_index))

    def action_rule_doc(self) -> None:
        if self.current is not None and self.highlighted is not None:
            self.post_message(ShowRuleDoc(self.highlighted))
