"""Snapshot tests of the main screens at a fixed size (SVG baselines in __snapshots__/).

Update with ``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at the SVGs
(``snapshot_report.html``) before keeping them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from inspector.options import Options
from inspector.tui.app import KinspectApp, create_app
from tests.fake_probe import FakeProbeSource, mlp_probe_result, ok_probe_events
from tests.test_tui import (  # noqa: F401  (tf_present is a fixture used below)
    MLP,
    NESTED_DROPOUT,
    TRANSFER,
    tf_present,
    wait_until_idle,
)

SIZE = (120, 40)


async def settle(pilot: Pilot[int]) -> None:
    app = pilot.app
    assert isinstance(app, KinspectApp)
    await wait_until_idle(app, pilot)


def static_app(path: Path) -> KinspectApp:
    return create_app(str(path), Options(probe=False))


def test_main_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = static_app(TRANSFER)
    assert snap_compare(app, press=["down", "down", "right"], terminal_size=SIZE,
                        run_before=settle)


def test_main_screen_small_terminal(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(static_app(TRANSFER), press=["down"], terminal_size=(80, 24),
                        run_before=settle)


def test_layer_with_findings(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = static_app(NESTED_DROPOUT)
    assert snap_compare(app, press=["f", "enter", "3"], terminal_size=SIZE, run_before=settle)


def test_weights_tab(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = static_app(TRANSFER)
    assert snap_compare(app, press=["down", "down", "right", "down", "2"], terminal_size=SIZE,
                        run_before=settle)


@pytest.mark.usefixtures("tf_present")
def test_probe_panel_with_results(snap_compare) -> None:  # type: ignore[no-untyped-def]
    source = FakeProbeSource(ok_probe_events(mlp_probe_result("model/dense_1")))
    app = create_app(str(MLP), Options(probe=True),
                     probe_source_factory=lambda report, options: source)

    assert snap_compare(app, terminal_size=SIZE, run_before=settle)
