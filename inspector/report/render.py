"""Pick the renderer for an output format."""

from __future__ import annotations

from inspector.report.model import Report


def render(report: Report, fmt: str, *, color: bool = False) -> str:
    """``color``: ANSI colours in the text format (the caller knows whether it writes to a
    terminal); the other formats ignore it."""
    if fmt == "json":
        from inspector.report.json_out import to_json

        return to_json(report)
    if fmt == "sarif":
        from inspector.report.sarif import to_sarif

        return to_sarif([report])
    from inspector.report.text import to_text

    return to_text(report, color=color)
