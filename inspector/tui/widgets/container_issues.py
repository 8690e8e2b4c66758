"""The container issues the readers saw (bombs, escaping archive members, polyglot files...),
one line each, worst first: they concern the file, not a layer, so the tree cannot show them."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from inspector.findings import SEVERITY_RANK
from inspector.graph import ContainerIssue
from inspector.tui.formatting import severity_badge, styled


def issue_line(issue: ContainerIssue) -> Text:
    text = severity_badge(issue.severity, label=True)
    text.append(f"  {issue.kind}", style="bold")
    text.append(f"  {issue.location}", style="italic")
    text.append(f"  {issue.detail}")
    return text


def issues_text(issues: list[ContainerIssue]) -> Text:
    if not issues:
        return styled("No container issues.", "dim")
    ordered = sorted(issues, key=lambda i: -SEVERITY_RANK.get(i.severity, 0))
    return Text("\n").join(issue_line(i) for i in ordered)


class ContainerIssues(Static):
    DEFAULT_CSS = """
    ContainerIssues {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, issues: list[ContainerIssue], **kwargs: object) -> None:
        super().__init__(issues_text(issues), **kwargs)  # type: ignore[arg-type]
