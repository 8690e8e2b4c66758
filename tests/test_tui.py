"""Pilot tests of the TUI: they press keys and read the widgets, as a user would look."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, ProgressBar, Static

from inspector.errors import KinspectError
from inspector.options import Options
from inspector.probe import protocol
from inspector.report.json_out import load_schema
from inspector.run import gate
from inspector.tui.app import KinspectApp, create_app, default_export_path
from inspector.tui.formatting import fmt_num, fmt_pct, fmt_shape, hbar, sparkline, vbars
from inspector.tui.screens.export import ExportScreen
from inspector.tui.screens.help import HelpScreen
from inspector.tui.screens.rule_doc import RuleDocScreen
from inspector.tui.widgets.findings_list import FindingsList
from inspector.tui.widgets.layer_detail import LayerDetail
from inspector.tui.widgets.layer_tree import LayerTree
from inspector.tui.widgets.probe_panel import ProbePanel
from tests.fake_probe import FakeProbeSource, mlp_probe_result, ok_probe_events

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "models"
RULES = ROOT / "fixtures" / "rules"
TRANSFER = MODELS / "transfer" / "k3.keras"
MLP = MODELS / "mlp" / "k3.keras"
NESTED_DROPOUT = RULES / "dropout-rate-high" / "bad_nested_k3.keras"
SIZE = (120, 40)

Scenario = Callable[[KinspectApp, Pilot[int]], Awaitable[None]]


def static_options() -> Options:
    return Options(probe=False)


def drive(app: KinspectApp, scenario: Scenario, size: tuple[int, int] = SIZE) -> None:
    """Run ``scenario`` against ``app`` headless (pytest-asyncio is not a dependency)."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await wait_for_rules(app, pilot)
            await scenario(app, pilot)

    asyncio.run(main())


async def wait_for_rules(app: KinspectApp, pilot: Pilot[int]) -> None:
    """The rule catalog runs in a worker after the tree is shown."""
    await pilot.pause()
    while app.analysing:
        await pilot.pause(0.01)
    await pilot.pause()


async def wait_until_idle(app: KinspectApp, pilot: Pilot[int]) -> None:
    """Rules and probe done, and their results on screen."""
    while app.busy:
        await pilot.pause(0.01)
    await app.workers.wait_for_complete()
    await pilot.pause()


def detail(app: KinspectApp) -> LayerDetail:
    return app.query_one(LayerDetail)


def text_of(app: KinspectApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def test_replayed_sections_round_trip_through_the_typed_section() -> None:
    """What the TUI tests replay is read and written back unchanged (probe/results.py)."""
    from inspector.probe.results import ProbeSection

    for raw in (mlp_probe_result(), mlp_probe_result("model/dense_1")):
        section = ProbeSection.from_json(raw)
        assert section is not None and section.to_json() == raw
        assert [r.path for r in section.layer_rows()] == ["model/dense", "model/dense_1"]


def layer_path(app: KinspectApp, name: str) -> str:
    return next(n.path for n in app.report.graph.walk() if n.name == name)


# --------------------------------------------------------------------------- text helpers


def test_terminal_charts() -> None:
    assert sparkline([0, 1, 2, 4, 8]) == " ▁▂▄█"
    assert hbar(1.0, 2.0, 4) == "██"
    assert hbar(1.0, 8.0, 1) == "▏"
    assert hbar(0.0, 1.0, 4) == "" and hbar(float("nan"), 1.0, 4) == ""
    assert vbars([1, 2], 2) == [" █", "██"]
    assert vbars([0, 4], 1, bin_width=2) == ["  ██"]


def test_shapes_and_numbers() -> None:
    assert fmt_shape((None, 16)) == "(None, 16)"
    assert fmt_shape((8,)) == "(8,)"
    assert fmt_shape([(None, 2), (None, 3)]) == "(None, 2), (None, 3)"
    assert fmt_num(0.00012345) == "0.0001234" and fmt_num(12345) == "12,345"
    assert fmt_pct(0.25) == "25.0%" and fmt_pct(None) == "-"


# --------------------------------------------------------------------------- static view


def test_bad_file_raises_before_the_app_starts(tmp_path: Path) -> None:
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(KinspectError):
        create_app(str(bad), static_options())


def test_header_and_tree_show_the_model() -> None:
    app = create_app(str(TRANSFER), static_options())

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        header = text_of(app, "#model-header")
        assert "k3.keras" in header and "keras-zip" in header and "468 params" in header
        tree = app.query_one(LayerTree)
        assert tree.has_focus
        top = [str(c.label) for c in tree.root.children]
        assert any(t.startswith("base Sequential") for t in top)
        base = next(c for c in tree.root.children if str(c.label).startswith("base"))
        assert not base.is_expanded  # nested models start collapsed

    drive(app, scenario)


def test_tree_navigation_into_nested_model_shows_config_and_weights() -> None:
    app = create_app(str(TRANSFER), static_options())

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        # root -> image -> base; expand base; down into conv2d, then batch_normalization
        await pilot.press("down", "down")
        assert detail(app).node is not None and detail(app).node.name == "base"
        await pilot.press("right", "down")
        assert detail(app).node.name == "conv2d"
        await pilot.press("down")
        node = detail(app).node
        assert node.name == "batch_normalization" and node.path.endswith("base/batch_normalization")
        assert '"momentum": 0.9' in app.query_one("#config-view").text
        await pilot.press("2")  # Weights tab
        table = app.query_one("#weights-table", DataTable)
        assert table.row_count == 4
        names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert names[0].startswith("gamma") and names[2].startswith("moving_mean")
        hist = text_of(app, "#weight-histogram")
        assert hist.startswith("gamma (8,) float32 frozen") and "value histogram (16 bins)" in hist
        # left goes back to the parent, left again collapses it
        await pilot.press("left")
        assert detail(app).node.name == "base"
        # a nested model lists its children's weights, labelled by their path below it
        labels = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert labels[:3] == ["conv2d/kernel", "conv2d/bias", "batch_normalization/gamma"]
        assert len(labels) == 6
        await pilot.press("left")
        base = app.query_one(LayerTree).cursor_node
        assert base is not None and base.data.name == "base" and not base.is_expanded

    drive(app, scenario)


def test_filter_by_name_and_class() -> None:
    app = create_app(str(TRANSFER), static_options())

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        tree = app.query_one(LayerTree)
        await pilot.press("slash")
        assert app.query_one("#layer-filter", Input).has_focus
        await pilot.press(*"dense")
        assert sorted(p.rsplit("/", 1)[-1] for p in tree.paths()) == ["head_dense", "head_out"]
        await pilot.press("enter")
        assert tree.has_focus
        await pilot.press("escape")  # Escape outside the box does not clear it
        assert len(tree.paths()) == 2
        await pilot.press("slash", *["backspace"] * 5)
        await pilot.press(*"batchnorm")
        # a class-name match keeps (and expands) the nested model that holds it
        assert sorted(p.rsplit("/", 1)[-1] for p in tree.paths()) == [
            "base", "batch_normalization"]
        await pilot.press("enter", "down", "down")
        assert detail(app).node.name == "batch_normalization"
        await pilot.press("slash", "escape")  # Escape in the box clears the filter
        await pilot.pause()
        assert len(tree.paths()) == 8 and tree.has_focus
        # the layer under the cursor stays selected when the filter goes away
        assert detail(app).node.name == "batch_normalization"

    drive(app, scenario)


def test_findings_list_jumps_to_the_layer_and_opens_the_rule_doc() -> None:
    app = create_app(str(NESTED_DROPOUT), static_options())

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        findings = app.query_one(FindingsList)
        target = findings.findings[0]
        assert target.rule == "dropout-rate-high" and target.layer.endswith("base/inner_drop")
        # the tree marks the layer's parent as holding a finding
        base = next(c for c in app.query_one(LayerTree).root.children
                    if str(c.label).startswith("base"))
        assert "inside" in str(base.label)
        await pilot.press("f")
        assert findings.has_focus
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one(LayerTree).has_focus
        assert detail(app).node.path == target.layer
        assert "▲" in str(app.query_one(LayerTree).cursor_node.label)
        await pilot.press("3")  # the layer's Findings tab
        body = text_of(app, "#layer-findings-body")
        assert "KIN001 dropout-rate-high" in body and "fix:" in body
        await pilot.press("f", "d")
        assert isinstance(app.screen, RuleDocScreen)
        doc = text_of(app, "#rule-doc")
        assert "KIN001 dropout-rate-high" in doc and "default severity" in doc
        assert "This finding" in doc
        await pilot.press("escape")
        assert not isinstance(app.screen, RuleDocScreen)

    drive(app, scenario)


def test_command_palette_jumps_to_a_layer() -> None:
    app = create_app(str(TRANSFER), static_options())

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        await pilot.press("ctrl+p")
        await pilot.press(*"layer: global")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert detail(app).node is not None
        assert detail(app).node.name == "global_average_pooling2d"

    drive(app, scenario)


def test_help_screen() -> None:
    app = create_app(str(MLP), static_options())

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

    drive(app, scenario)


def test_export_writes_a_valid_report_next_to_the_model_or_to_a_typed_path(
        tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    model = tmp_path / "model.keras"
    model.write_bytes(NESTED_DROPOUT.read_bytes())
    app = create_app(str(model), static_options())
    typed = tmp_path / "out" / "typed.json"
    typed.parent.mkdir()

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        assert app.screen.query_one(Input).value == str(tmp_path / "model.keras.kinspect.json")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("e")
        app.screen.query_one(Input).value = ""
        await pilot.press(*str(typed), "enter")
        await pilot.pause()

    drive(app, scenario)
    schema = load_schema()
    for written in (tmp_path / "model.keras.kinspect.json", typed):
        doc = json.loads(written.read_text("utf-8"))
        jsonschema.validate(doc, schema)
        assert [f["rule"] for f in doc["findings"]] == ["dropout-rate-high"]


def test_default_export_path_of_a_savedmodel_directory() -> None:
    assert default_export_path("/m/saved_model/") == "/m/saved_model.kinspect.json"


def test_weights_only_file_lists_weight_groups() -> None:
    app = create_app(str(MODELS / "mlp" / "k3.weights.h5"), static_options())

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        tree = app.query_one(LayerTree)
        assert tree.weights_only
        assert "weights only" in text_of(app, "#model-header")
        assert tree.paths() == ["dense", "dense_1"]
        await pilot.press("down", "2")
        table = app.query_one("#weights-table", DataTable)
        assert table.row_count == 2
        assert str(table.get_row_at(0)[1]) == "(8, 16)"

    drive(app, scenario)


def test_small_terminal_still_shows_tree_and_footer() -> None:
    app = create_app(str(TRANSFER), static_options())

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        tree = app.query_one(LayerTree)
        assert tree.size.height >= 6 and tree.size.width >= 28
        assert app.query_one(FindingsList).size.height >= 3

    drive(app, scenario, size=(80, 24))


# --------------------------------------------------------------------------- probe


@pytest.fixture
def tf_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake-probe tests simulate a machine where the probe can run, TensorFlow or not."""
    monkeypatch.setattr(gate, "tensorflow_available", lambda: True)



def probe_app(path: Path, source: FakeProbeSource, *, probe: bool = True) -> KinspectApp:
    return create_app(str(path), Options(probe=probe),
                      probe_source_factory=lambda report, options: source)


def test_probe_progress_then_verdicts_and_charts(tf_present: None) -> None:
    source = FakeProbeSource(ok_probe_events(mlp_probe_result("model/dense_1")),
                             hold_after=4)
    app = probe_app(MLP, source)

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        panel = app.query_one(ProbePanel)
        while not source.held.is_set():
            await pilot.pause(0.01)
        await pilot.pause(0.05)
        assert panel.running
        assert "random-inputs" in text_of(app, "#probe-status")
        assert app.query_one(ProgressBar).progress == pytest.approx(0.6)
        # the UI stays responsive while the probe runs
        await pilot.press("down")
        assert detail(app).node is not None
        source.release()
        await wait_until_idle(app, pilot)
        assert not panel.running
        verdicts = text_of(app, "#probe-verdicts")
        assert "outputs collapsed" in verdicts and "✖ yes" in verdicts
        classes = text_of(app, "#probe-classes")
        assert "most common class 0 = 75.0%" in classes
        variation = text_of(app, "#probe-variation")
        assert "collapse point: model/dense_1" in variation.splitlines()[1]
        assert "◀ collapse point" in variation.splitlines()[3]
        assert app.report.probe is not None and app.report.probe.status == "ok"
        # the Activations tab of the collapse layer says so
        app.jump_to(layer_path(app, "dense_1"))
        await pilot.pause()
        await pilot.press("4")
        body = text_of(app, "#activations-body")
        assert "collapse point" in body and "std across inputs" in body

    drive(app, scenario)


def test_escape_cancels_a_running_probe_and_p_runs_it_again(tf_present: None) -> None:
    first = FakeProbeSource(ok_probe_events(mlp_probe_result()), hold_after=2)
    second = FakeProbeSource(ok_probe_events(mlp_probe_result()))
    sources = iter([first, second])
    app = create_app(str(MLP), Options(probe=True),
                     probe_source_factory=lambda report, options: next(sources))

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        while not first.held.is_set():
            await pilot.pause(0.01)
        await pilot.press("escape")
        await wait_until_idle(app, pilot)
        assert first.cancelled
        assert app.report.probe.status == protocol.STATUS_CANCELLED
        assert "Probe cancelled" in text_of(app, "#probe-status")
        await pilot.press("p")
        await wait_until_idle(app, pilot)
        assert second.started
        assert app.report.probe.status == "ok"
        assert "Probe finished" in text_of(app, "#probe-status")

    drive(app, scenario)


def test_refused_probe_explains_how_to_trust(tf_present: None) -> None:
    refused = {"status": protocol.STATUS_REFUSED,
               "reason": "the file contains a Lambda layer (lambda-layer)"}
    source = FakeProbeSource([{"event": "result", "probe": refused}])
    app = probe_app(MLP, source)

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        await wait_until_idle(app, pilot)
        status = text_of(app, "#probe-status")
        assert "Probe refused" in status and "Lambda layer" in status
        assert "--trust" in status
        await pilot.press("4")
        assert "the probe refused" in text_of(app, "#activations-body")

    drive(app, scenario)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                    reason="without TensorFlow the probe is skipped before any refusal")
def test_real_runner_refuses_a_lambda_model_without_trust() -> None:
    """The default runner path: the static lambda-layer finding stops the probe before any
    child process loads the file."""
    app = create_app(str(ROOT / "fixtures" / "hostile" / "canary" / "lambda" / "k3.keras"),
                     Options(probe=True))

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        await pilot.pause(0.2)
        await wait_until_idle(app, pilot)
        assert app.report.probe.status == protocol.STATUS_REFUSED
        status = text_of(app, "#probe-status")
        assert "Probe refused" in status and "model/sneaky (lambda-layer)" in status
        assert "kinspect --trust" in status

    drive(app, scenario)


def test_probe_does_not_start_without_asking(tf_present: None) -> None:
    source = FakeProbeSource(ok_probe_events(mlp_probe_result()))
    app = probe_app(MLP, source, probe=False)

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        await pilot.pause(0.1)
        assert not source.started
        assert "has not run" in text_of(app, "#probe-status")

    drive(app, scenario)


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                    reason="the probe extra (TensorFlow) is not installed")
def test_real_probe_on_a_tiny_model() -> None:
    app = create_app(str(MLP), Options(probe=True, samples=8, device="cpu"))

    async def scenario(app: KinspectApp, pilot: Pilot[int]) -> None:
        await pilot.pause(0.5)
        await wait_until_idle(app, pilot)
        probe = app.report.probe
        assert probe is not None and probe.status == "ok", probe
        assert probe.verdict is not None and not probe.verdict.collapsed
        assert "Probe finished" in text_of(app, "#probe-status")
        assert "✔ no" in text_of(app, "#probe-verdicts")

    drive(app, scenario)
