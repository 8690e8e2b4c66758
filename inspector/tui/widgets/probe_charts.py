"""Probe results drawn as text: verdicts, output class histogram, per-layer variation chart."""

from __future__ import annotations

import math

from rich.text import Text

from inspector.probe.results import ProbeSection, Verdict
from inspector.tui import probe_view
from inspector.tui.formatting import fmt_num, fmt_pct, hbar, styled

BAR_WIDTH = 24
MAX_CLASSES = 10
_LOG_FLOOR = 1e-8


def verdicts_text(probe: ProbeSection) -> Text:
    text = styled("Verdicts\n", "bold underline")
    for key, value in probe_view.verdict(probe):
        text.append(f"  {Verdict.label(key):<22}")
        if value is None:
            text.append("not measured\n", style="dim")
        elif value:
            text.append("✖ yes\n", style="bold red3")
        else:
            text.append("✔ no\n", style="green4")
    return text


def class_histogram_text(probe: ProbeSection) -> Text:
    text = styled("Output classes (argmax)\n", "bold underline")
    shown = False
    for out in probe_view.outputs(probe):
        pairs = out.classes()
        if not pairs:
            continue
        shown = True
        text.append(f"  {out.name or 'output'}: most common class {pairs[0][0]} "
                    f"= {fmt_pct(out.top_class_fraction)} of inputs\n")
        for cls, count in pairs[:MAX_CLASSES]:
            text.append(f"  {cls:>8} ")
            text.append(hbar(count, pairs[0][1], BAR_WIDTH).ljust(BAR_WIDTH), style="green4")
            text.append(f" {count}\n")
        if len(pairs) > MAX_CLASSES:
            rest = sum(c for _, c in pairs[MAX_CLASSES:])
            text.append(f"  {len(pairs) - MAX_CLASSES} more classes: {rest} inputs\n",
                        style="dim")
    if not shown:
        text.append("  no class outputs recorded\n", style="dim")
    return text


def variation_text(probe: ProbeSection) -> Text:
    """Across-input std per layer on a log scale; the collapse layer is marked."""
    rows = [(str(r.path), r.std()) for r in probe_view.layers(probe)]
    text = styled("Variation across inputs per layer (log scale)\n", "bold underline")
    if not rows:
        text.append("  no per-layer statistics recorded\n", style="dim")
        return text
    collapse = probe_view.collapse_layer(probe)
    if collapse is not None:
        text.append(f"  collapse point: {collapse} (marked below)\n", style="bold red3")
    finite = [s for _, s in rows if s is not None and s > 0 and math.isfinite(s)]
    top = math.log10(max(finite)) if finite else 0.0
    floor = math.log10(_LOG_FLOOR)
    width = min(28, max(len(p) for p, _ in rows))
    for path, std in rows:
        name = path if len(path) <= width else "…" + path[-(width - 1):]
        is_collapse = path == collapse
        text.append(f"  {name:<{width}} ", style="bold red3" if is_collapse else "")
        if std is not None and std > 0 and math.isfinite(std):
            level = (math.log10(max(std, _LOG_FLOOR)) - floor) / max(top - floor, 1e-9)
            text.append(hbar(level, 1.0, BAR_WIDTH).ljust(BAR_WIDTH),
                        style="red3" if is_collapse else "dodger_blue2")
        else:
            text.append(" " * BAR_WIDTH)
        text.append(f" {fmt_num(std)}")
        if is_collapse:
            text.append("  ◀ collapse point", style="bold red3")
        text.append("\n")
    if collapse is None:
        text.append("  no collapse point: variation survives to the output\n", style="green4")
    return text


def summary_text(probe: ProbeSection) -> Text:
    """Device, loader and timings: what the probe actually ran on."""
    parts = []
    for key, value in (("device", probe.device), ("loader", probe.loader),
                       ("samples", probe.samples)):
        if value is not None:
            parts.append(f"{key}: {value}")
    timings = probe.timings
    if isinstance(timings, dict):
        total = timings.get("total")
        if isinstance(total, (int, float)):
            parts.append(f"total {total:.1f}s")
    return styled("  ".join(parts), "dim")
