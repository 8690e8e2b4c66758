"""The TUI shows the static weight-statistics pass and Escape stops it (pilot tests)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from textual.widgets import Static

from inspector.graph import WeightSource
from inspector.options import Options
from inspector.readers import open_model
from inspector.report.model import Report
from inspector.run.pipeline import analyze_graph, summarized_weights
from inspector.stats import StatsCache, WeightStats, compute_stats
from inspector.tui.app import KinspectApp

MLP = Path(__file__).resolve().parent.parent / "fixtures" / "models" / "mlp" / "k3.keras"
SIZE = (120, 40)


class GatedCompute:
    """compute_stats that holds on its first tensor until the test releases it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, source: WeightSource, **kwargs: Any) -> WeightStats:
        self.calls += 1
        self.started.set()
        self.release.wait(10)
        return compute_stats(source, **kwargs)


def _header(app: KinspectApp) -> str:
    return str(app.query_one("#model-header", Static).render())


def _run(app: KinspectApp, gate: GatedCompute, *, press_escape: bool) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            while not gate.started.is_set():
                await pilot.pause(0.01)
            await pilot.pause(0.05)
            seen["header"] = _header(app)
            if press_escape:
                await pilot.press("escape")
                while not app._stop_static.is_set():
                    await pilot.pause(0.01)
            gate.release.set()
            while app.analysing:
                await pilot.pause(0.01)
            await pilot.pause()
            seen["after"] = _header(app)

    asyncio.run(main())
    return seen


def _app(gate: GatedCompute) -> KinspectApp:
    report = Report(graph=open_model(MLP), stats=StatsCache(compute=gate))
    return KinspectApp(report, Options(probe=False), analysed=False)


def test_header_shows_the_weight_pass_and_it_completes() -> None:
    gate = GatedCompute()
    app = _app(gate)
    seen = _run(app, gate, press_escape=False)
    assert "weights 0%" in seen["header"] and "Escape stops" in seen["header"]
    assert "weights" not in seen["after"] and "checking rules" not in seen["after"]
    weights = summarized_weights(app.report.graph)
    assert len(weights) > 1 and gate.calls == len(weights)
    assert not [e for e in app.report.errors if e["kind"] == "stats-cancelled"]


def test_escape_stops_the_weight_pass_and_the_rules_still_finish() -> None:
    gate = GatedCompute()
    app = _app(gate)
    seen = _run(app, gate, press_escape=True)
    assert "weights 0%" in seen["header"]
    assert gate.calls == 1  # the tensor being read finished; no other was read
    stopped = [e for e in app.report.errors if e["kind"] == "stats-cancelled"]
    assert len(stopped) == 1 and "after 1 of" in stopped[0]["message"]
    assert not app.analysing and "checking rules" not in seen["after"]
    missing = [w for w in summarized_weights(app.report.graph) if app.report.stats.peek(w) is None]
    assert missing and all("cancelled" in (app.report.stats.error(w) or "") for w in missing)


def test_static_pass_reports_progress_and_stops_on_cancel_without_the_tui() -> None:
    graph = open_model(MLP)
    steps: list[tuple[int, int]] = []
    full = analyze_graph(graph, Options(probe=False), on_progress=lambda d, t: steps.append((d, t)))
    total = sum(w.size for w in summarized_weights(graph))
    assert steps[0] == (0, total) and steps[-1] == (total, total)
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)
    cancel = threading.Event()
    cancel.set()
    stopped = analyze_graph(open_model(MLP), Options(probe=False), cancel=cancel)
    assert [e["kind"] for e in stopped.errors] == ["stats-cancelled"]
    assert len(stopped.stats or []) == 0
    # the config rules still ran: the same non-weight findings as the full pass
    lazy = analyze_graph(open_model(MLP), Options(probe=False))
    assert [f.as_dict() for f in full.findings] == [f.as_dict() for f in lazy.findings]
