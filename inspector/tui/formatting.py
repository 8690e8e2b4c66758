"""Text helpers shared by the widgets: severity badges, shapes, numbers, terminal bar charts.

Colours are mid-tone so they stay readable on both the light and the dark theme.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.text import Text

SEVERITY_STYLE = {"error": "bold red3", "warning": "bold dark_orange3", "info": "dodger_blue2"}
SEVERITY_MARK = {"error": "✖", "warning": "▲", "info": "●"}
_BLOCKS = " ▁▂▃▄▅▆▇█"
_EIGHTHS = " ▏▎▍▌▋▊▉█"


def severity_badge(severity: str | None, *, label: bool = False) -> Text:
    if severity is None:
        return Text("")
    mark = SEVERITY_MARK.get(severity, "?")
    return styled(f"{mark} {severity}" if label else mark, SEVERITY_STYLE.get(severity, ""))


def fmt_shape(shape: Any) -> str:
    """``(None, 32)`` the way Keras prints it; a multi-output layer shows each shape."""
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(fmt_shape(s) for s in shape)
    dims = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"


def fmt_num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fmt_pct(fraction: Any) -> str:
    if fraction is None:
        return "-"
    return f"{100.0 * float(fraction):.1f}%"


def sparkline(counts: Sequence[float]) -> str:
    """One character per bin: a histogram that fits in a table cell."""
    if not counts:
        return ""
    top = max(counts)
    if top <= 0:
        return _BLOCKS[0] * len(counts)
    out = []
    for c in counts:
        level = 0 if c <= 0 else max(1, round(8 * c / top))
        out.append(_BLOCKS[level])
    return "".join(out)


def hbar(value: float, top: float, width: int) -> str:
    """A horizontal bar of ``value / top`` of ``width`` cells, with eighth-cell resolution."""
    if width <= 0 or top <= 0 or value <= 0 or not math.isfinite(value):
        return ""
    eighths = round(min(value / top, 1.0) * width * 8)
    full, rest = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")


def vbars(counts: Sequence[float], height: int, bin_width: int = 1) -> list[str]:
    """A vertical bar chart, ``height`` text rows, ``bin_width`` columns per bin (top row
    first)."""
    if not counts or height <= 0:
        return []
    top = max(counts) or 1.0
    levels = [round(height * 8 * c / top) if c > 0 else 0 for c in counts]
    levels = [max(lv, 1) if c > 0 else 0 for lv, c in zip(levels, counts, strict=True)]
    rows = []
    for row in range(height - 1, -1, -1):
        line = []
        for lv in levels:
            fill = lv - row * 8
            line.append(_BLOCKS[min(max(fill, 0), 8)] * bin_width)
        rows.append("".join(line))
    return rows


def styled(text: str, style: str) -> Text:
    """A Text whose ``style`` covers only ``text``, not whatever is appended later
    (``Text(text, style=...)`` would make it the base style of the whole line)."""
    out = Text()
    out.append(text, style=style)
    return out
