"""The text report: colour only when asked, trainable state per layer, the training setup."""

from __future__ import annotations

import re
from pathlib import Path

from inspector.options import Options
from inspector.report.text import to_text
from inspector.report.training import training_summary
from inspector.run.pipeline import analyze_static
from inspector.tui.widgets.header import summary_text

ROOT = Path(__file__).resolve().parent.parent
TRANSFER = ROOT / "fixtures" / "models" / "transfer" / "k3.keras"
NAN = sorted((ROOT / "fixtures" / "rules" / "nan-weights").glob("bad_*"))[0]
LR = ROOT / "fixtures" / "rules" / "learning-rate-extreme" / "bad_high_k2.h5"


def _rows(text: str) -> dict[str, list[str]]:
    """Layer table rows by layer name: [class, ..., params, train]."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    assert lines[start].split()[-2:] == ["params", "train"]
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells
    return rows


def test_layer_table_shows_params_and_trainable_state() -> None:
    rows = _rows(to_text(analyze_static(TRANSFER, Options(probe=False))))
    assert rows["base"][-2:] == ["256", "no"]                   # the frozen nested base
    assert rows["conv2d"][-2:] == ["224", "no"]                 # frozen through its parent
    assert rows["head_dense"][-2:] == ["144", "yes"]
    assert rows["head_dropout"][-2:] == ["0", "-"]              # nothing to train


def test_training_setup_in_text_and_tui_header() -> None:
    report = analyze_static(LR, Options(probe=False))
    summary = dict(training_summary(report.graph.training_config))
    assert summary == {"loss": "categorical_crossentropy", "optimizer": "Adam",
                       "learning rate": "5"}
    assert ("  training  loss categorical_crossentropy  optimizer Adam  learning rate 5"
            in to_text(report).splitlines())
    header = summary_text(report).plain.splitlines()
    assert header[-1] == ("training loss categorical_crossentropy · optimizer Adam · "
                          "learning rate 5")
    assert training_summary(None) == []


def test_training_summary_shapes() -> None:
    """Per-output losses (list or dict), loss objects, schedules."""
    cfg = {"loss": {"out_a": "mse", "out_b": {"class_name": "BinaryCrossentropy",
                                             "config": {"from_logits": True}}},
           "optimizer": {"class_name": "SGD", "learning_rate": {
               "class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.1}}}}
    assert training_summary(cfg) == [
        ("loss", "out_a: mse, out_b: BinaryCrossentropy (from_logits)"),
        ("optimizer", "SGD"),
        ("learning rate", "0.1 (initial rate of ExponentialDecay)")]
    assert training_summary({"loss": ["mse", "mae"]}) == [("loss", "mse, mae")]


def test_colour_by_severity_only_when_asked() -> None:
    report = analyze_static(NAN, Options(probe=False))
    plain, coloured = to_text(report), to_text(report, color=True)
    assert "\x1b" not in plain
    assert "\x1b[1;31merror  \x1b[0m KIN008" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain   # same text, only styled
