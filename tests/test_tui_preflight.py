"""The TUI opens files in-process, so a hostile file is opened once in a killable worker first."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from inspector.options import Options
from inspector.tui.app import run_tui

REPROS = sorted((Path(__file__).resolve().parent.parent / "fixtures" / "hostile" / "repro")
                .glob("*.h5"))


@pytest.mark.parametrize("repro", REPROS[:1], ids=lambda p: p.name)
def test_tui_refuses_a_file_that_hangs_libhdf5(repro: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    code = run_tui(str(repro), Options(probe=False, static_timeout=1.0))
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"kinspect: {repro}")
    assert elapsed < 30


def test_tui_preflight_reports_a_missing_file(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.h5"
    assert run_tui(str(missing), Options(probe=False)) == 2
    assert "nope.h5" in capsys.readouterr().err
