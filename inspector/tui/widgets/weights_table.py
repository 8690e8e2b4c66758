"""The Weights tab: one row per variable with its statistics, and the highlighted variable's
value histogram drawn in the terminal. Statistics come from the report's shared StatsCache."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from inspector.graph import WeightInfo
from inspector.report.model import Report
from inspector.stats import WeightStats
from inspector.tui.formatting import fmt_num, fmt_pct, fmt_shape, sparkline, styled, vbars

# Most telling first: on a narrow pane the table scrolls sideways, and the line above the big
# histogram repeats every figure of the highlighted variable anyway.
COLUMNS = ("name", "shape", "min", "max", "mean", "std", "zero", "nan/inf", "histogram", "dtype")


SYNC_ELEMENTS = 1 << 20  # above this many uncached values, statistics load in a worker


def cached_stats(report: Report, w: WeightInfo) -> WeightStats | None:
    return None if report.stats is None else report.stats.peek(w)


class WeightsView(VerticalScroll):
    DEFAULT_CSS = """
    WeightsView > DataTable { height: auto; max-height: 60%; }
    WeightsView > #weight-histogram { height: auto; padding: 1 1 0 1; }
    """

    def __init__(self, report: Report, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report = report
        self.weights: list[WeightInfo] = []
        self.labels: list[str] = []
        self._stats: list[WeightStats | None] = []

    def compose(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(id="weights-table", cursor_type="row",
                                          zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Static("", id="weight-histogram")

    def show(self, weights: list[tuple[str, WeightInfo]]) -> None:
        """Show (label, weight) rows; statistics not yet cached are read here when small, else
        in a worker thread so the cursor never waits on a large tensor."""
        self.labels = [label for label, _ in weights]
        self.weights = [w for _, w in weights]
        missing = [w for w in self.weights
                   if w.source is not None and cached_stats(self.report, w) is None]
        if self.report.stats is not None and missing:
            if sum(w.size for w in missing) <= SYNC_ELEMENTS:
                for w in missing:
                    self.report.stats.get(w)
            else:
                self._load_stats(missing)
        self._fill()

    def _fill(self) -> None:
        self._stats = [cached_stats(self.report, w) for w in self.weights]
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for label, w, st in zip(self.labels, self.weights, self._stats, strict=True):
            table.add_row(*self._row(label, w, st))
        if not self.weights:
            self.query_one("#weight-histogram", Static).update("This layer has no weights.")
        else:
            row = row if 0 <= row < len(self.weights) else 0
            table.move_cursor(row=row)
            self._show_histogram(row)

    @work(thread=True, exclusive=True, group="weight-stats", exit_on_error=False)
    def _load_stats(self, missing: list[WeightInfo]) -> None:
        assert self.report.stats is not None
        for w in missing:
            self.report.stats.get(w)
        shown = self.weights
        self.app.call_from_thread(lambda: self._fill() if self.weights is shown else None)

    def _row(self, label: str, w: WeightInfo, st: WeightStats | None) -> list[Any]:
        name: Any = label if w.trainable else styled(label, "italic")
        cells: list[Any] = [name, fmt_shape(w.shape)]
        if st is None:
            why = "not stored" if w.source is None else "reading…"
            if self.report.stats is not None and self.report.stats.error(w):
                why = "unreadable"
            return [*cells, "-", "-", "-", "-", "-", "-", why, w.dtype]
        bad = st.nan_count + st.inf_count
        nan_inf = styled(str(bad), "bold red3") if bad else Text("0")
        return [*cells, fmt_num(st.min), fmt_num(st.max), fmt_num(st.mean), fmt_num(st.std),
                fmt_pct(st.zero_fraction), nan_inf, sparkline(st.hist_counts), w.dtype]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_histogram(event.cursor_row)

    def _show_histogram(self, index: int) -> None:
        box = self.query_one("#weight-histogram", Static)
        if not 0 <= index < len(self.weights):
            box.update("")
            return
        label, w, st = self.labels[index], self.weights[index], self._stats[index]
        if st is None or not st.hist_counts:
            box.update(styled(f"{label}: no values to draw", "dim"))
            return
        counts = st.hist_counts
        lo, hi = st.hist_edges[0], st.hist_edges[-1]
        text = styled(label, "bold")
        text.append(f" {fmt_shape(w.shape)} {w.dtype}{'' if w.trainable else ' frozen'}\n")
        text.append(f"min {fmt_num(st.min)}  max {fmt_num(st.max)}  mean {fmt_num(st.mean)}  "
                    f"std {fmt_num(st.std)}  zero {fmt_pct(st.zero_fraction)}  "
                    f"NaN {st.nan_count}  Inf {st.inf_count}\n")
        text.append(f"value histogram ({len(counts)} bins)\n", style="bold")
        for line in vbars(counts, 5, bin_width=2):
            text.append(line + "\n", style="green4")
        left, right = fmt_num(lo), fmt_num(hi)
        pad = max(1, 2 * len(counts) - len(left) - len(right))
        text.append(left + " " * pad + right, style="dim")
        box.update(text)
