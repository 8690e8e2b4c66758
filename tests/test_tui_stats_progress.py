"""The TUI shows the static weight-statistics pass and Escape stops it (pilot tests)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from inspector.graph import WeightSource
from inspector.options import Options
from inspector.readers import open_model
from inspector.report.json_out import to_json
from inspector.report.model import Report
from inspector.run import gate as run_gate
from inspector.run.pipeline import analyze_graph, inspect_file, summarized_weights
from inspector.stats import StatsCache, WeightStats, compute_stats
from inspector.tui.app import KinspectApp, create_app
from tests.fake_probe import FakeProbeSource, mlp_probe_result, ok_probe_events
from tests.test_tui import wait_until_idle

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
                while not app.cancel_event.is_set():
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


# --------------------------------------------- the TUI's run is the library's inspect_file


def _gated_app(gate: GatedCompute, options: Options,
               source: FakeProbeSource) -> KinspectApp:
    report = Report(graph=open_model(MLP), stats=StatsCache(compute=gate))
    return KinspectApp(report, options, lambda report, options: source, analysed=False)


def _drive(app: KinspectApp, gate: GatedCompute, *keys: str) -> None:
    """Press ``keys`` while the weight pass holds on its first tensor, then let the run end."""

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            while not gate.started.is_set():
                await pilot.pause(0.01)
            for key in keys:
                await pilot.press(key)
            gate.release.set()
            while app.busy:
                await pilot.pause(0.01)
            await app.workers.wait_for_complete()
            await pilot.pause()

    asyncio.run(main())


def test_the_tui_report_is_the_one_inspect_file_gives(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Static pass and probe in the TUI give the JSON report the library's run gives for the
    same file and probe events (the TUI runs inspect_file, it does not re-assemble it)."""
    monkeypatch.setattr(run_gate, "tensorflow_available", lambda: True)
    result = mlp_probe_result("model/dense_1")
    options = Options(probe=True)
    gate = GatedCompute()
    gate.release.set()
    app = _gated_app(gate, options, FakeProbeSource(ok_probe_events(result)))
    _drive(app, gate)
    assert app.report.probe is not None and app.report.probe.status == "ok"
    library = inspect_file(MLP, options, probe_source=lambda report, options: FakeProbeSource(
        ok_probe_events(result)))
    assert json.loads(to_json(app.report)) == json.loads(to_json(library))
    assert any(f.source == "probe" for f in app.report.findings)


@pytest.mark.parametrize(("asked", "key", "probed", "errors"), [
    # `p` while the rules run: the probe runs once they are done, the weight pass completes
    (False, "p", True, []),
    # Escape stops the weight pass; the probe the options asked for then waits for `p`
    (True, "escape", False, ["stats-cancelled"]),
])
def test_keys_pressed_during_the_weight_pass(monkeypatch: pytest.MonkeyPatch, asked: bool,
                                             key: str, probed: bool,
                                             errors: list[str]) -> None:
    monkeypatch.setattr(run_gate, "tensorflow_available", lambda: True)
    gate = GatedCompute()
    source = FakeProbeSource(ok_probe_events(mlp_probe_result()))
    app = _gated_app(gate, Options(probe=asked), source)
    _drive(app, gate, key)
    assert source.started is probed
    assert (app.report.probe is not None and app.report.probe.status == "ok") is probed
    assert [e["kind"] for e in app.report.errors] == errors


def test_late_probe_events_do_not_overwrite_the_final_status(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The panel's own queue can deliver a run's last stage or progress event after the app
    showed the result (a busy machine): the status stays "Probe finished"."""
    from inspector.tui.messages import ProbeProgress, ProbeStage
    from inspector.tui.widgets.probe_panel import ProbePanel

    monkeypatch.setattr(run_gate, "tensorflow_available", lambda: True)
    app = create_app(str(MLP), Options(probe=True), probe_source_factory=lambda r, o:
                     FakeProbeSource(ok_probe_events(mlp_probe_result())))
    seen: list[str] = []

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until_idle(app, pilot)
            panel = app.query_one(ProbePanel)
            panel.post_message(ProbeStage("per-layer", "per-layer statistics"))
            panel.post_message(ProbeProgress("per-layer", 0.5))
            await pilot.pause()
            await pilot.pause()
            seen.append(str(panel.query_one("#probe-status", Static).render()))

    asyncio.run(main())
    assert seen and seen[0].startswith("Probe finished"), seen
