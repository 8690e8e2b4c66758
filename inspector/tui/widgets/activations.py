"""The Activations tab: the probe's statistics for the selected layer, once it has run."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from inspector.graph import LayerNode
from inspector.probe.results import ProbeSection
from inspector.tui import probe_view
from inspector.tui.formatting import fmt_num, fmt_pct, styled

_FRACTIONS = ("dead_fraction", "saturated_fraction")
_LABELS = {
    "class_name": "class",
    "shape": "output shape (batch)",
    "across_input_std": "std across inputs",
    "mean_abs": "mean |activation|",
    "dead_fraction": "dead units",
    "saturated_fraction": "saturated units",
    "nan": "NaN values",
    "inf": "Inf values",
    "flat": "flat (no variation)",
    "input_std": "input std",
    "input_varied": "input varied",
}


class ActivationsView(VerticalScroll):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._body = Static("", id="activations-body")

    def compose(self):  # type: ignore[no-untyped-def]
        yield self._body

    def show(self, node: LayerNode | None, probe: ProbeSection | None) -> None:
        self._body.update(activation_text(node, probe))


def activation_text(node: LayerNode | None, probe: ProbeSection | None) -> Text:
    state = probe_view.status(probe)
    if probe is None or state is None:
        return styled("The probe has not run yet: press p to run it.", "dim")
    if state != "ok":
        return styled(f"No activations: the probe {state}. See the Probe tab.", "dim")
    if node is None:
        return styled("Select a layer.", "dim")
    found = probe_view.layer_stats(probe, node.path)
    if found is None:
        return styled(f"The probe recorded no activations for {node.path}.", "dim")
    text = styled(f"{node.path}\n", "bold")
    collapse = probe_view.collapse_layer(probe)
    if collapse == node.path:
        text.append("outputs stop varying across inputs here (collapse point)\n",
                    style="bold red3")
    row = found.to_json()           # every statistic the probe recorded, known ones first
    known = [k for k in _LABELS if k in row]
    for key in known + sorted(k for k in row if k not in _LABELS and k != "path"):
        value = row[key]
        label = _LABELS.get(key, key.replace("_", " "))
        shown = fmt_pct(value) if key in _FRACTIONS else fmt_num(value)
        text.append(f"{label:>22}: ", style="bold")
        text.append(f"{shown}\n")
    return text
