"""The right-hand tabs for the selected layer: Config, Weights, Findings, Activations.

Only the visible tab is rendered on each cursor move, so walking a 200-layer tree stays instant
(weight statistics in particular are read only when the Weights tab is open)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import TabbedContent, TabPane

from inspector.graph import LayerNode, WeightInfo
from inspector.report.model import Report
from inspector.tui.widgets.activations import ActivationsView
from inspector.tui.widgets.config_view import ConfigView
from inspector.tui.widgets.layer_findings import LayerFindings
from inspector.tui.widgets.layer_tree import weight_groups
from inspector.tui.widgets.weights_table import WeightsView


class LayerDetail(Vertical):
    def __init__(self, report: Report, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report = report
        self.node: LayerNode | None = None
        self.group: str | None = None
        self._stale: set[str] = set()

    def compose(self) -> ComposeResult:
        with TabbedContent(id="detail-tabs"):
            with TabPane("Config", id="tab-config"):
                yield ConfigView(id="config-view")
            with TabPane("Weights", id="tab-weights"):
                yield WeightsView(self.report, id="weights-view")
            with TabPane("Findings", id="tab-findings"):
                yield LayerFindings(id="layer-findings")
            with TabPane("Activations", id="tab-activations"):
                yield ActivationsView(id="activations-view")

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one("#detail-tabs", TabbedContent)

    def open_tab(self, tab: str) -> None:
        self.tabs.active = tab

    def show_layer(self, node: LayerNode | None, group: str | None = None) -> None:
        self.node, self.group = node, group
        self._stale = {"tab-config", "tab-weights", "tab-findings", "tab-activations"}
        if node is not None:
            n = len(self.report.findings_for(node.path))
            label = f"Findings ({n})" if n else "Findings"
            tab = self.tabs.get_tab("tab-findings")
            if str(tab.label) != label:  # relabelling costs a layout pass
                tab.label = label
        self._render_tab(self.tabs.active)

    def refresh_probe(self) -> None:
        self._stale |= {"tab-activations", "tab-findings"}
        self._render_tab(self.tabs.active)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.tabbed_content.id == "detail-tabs" and event.pane.id:
            self._render_tab(event.pane.id)

    def _weights(self) -> list[tuple[str, WeightInfo]]:
        """(label, weight) rows: a nested model or wrapper lists its children's weights,
        labelled by their path below it."""
        if self.node is not None:
            prefix = self.node.path + "/"
            return [(w.name if owner is self.node
                     else f"{owner.path.removeprefix(prefix)}/{w.name}", w)
                    for owner, w in self.node.all_weights()]
        if self.group is not None:
            g = self.report.graph
            loose = g.loose_weights or [w for _, w in g.all_weights()]
            return [(w.name.rsplit("/", 1)[-1], w)
                    for w in weight_groups(loose).get(self.group, [])]
        return []

    def _render_tab(self, tab: str) -> None:
        if tab not in self._stale:
            return
        self._stale.discard(tab)
        if tab == "tab-config":
            self.query_one(ConfigView).show(self.node)
        elif tab == "tab-weights":
            self.query_one(WeightsView).show(self._weights())
        elif tab == "tab-findings":
            found = self.report.findings_for(self.node.path) if self.node else []
            self.query_one(LayerFindings).show(found)
        elif tab == "tab-activations":
            self.query_one(ActivationsView).show(self.node, self.report.probe)
