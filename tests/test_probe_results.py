"""Typed probe plan and section (inspector/probe/results.py): reading a section and writing
it back gives exactly the JSON the child sent, for every shape a section takes; consumers
read the typed fields. ``python tests/test_probe_results.py --record`` rewrites the recorded
real sections (tests/data/probe_sections.json) with TensorFlow; the full fixture batch is
round-tripped in tests/test_probe_verdicts.py, the TUI's replayed sections in tests/test_tui.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from inspector.options import Options
from inspector.probe import protocol
from inspector.probe.results import (
    VERDICT_KEYS,
    GapRange,
    OutputStats,
    PlanOptions,
    ProbePlan,
    ProbeSection,
    TrainInferGap,
    Verdict,
)
from inspector.readers import open_model
from inspector.report.json_out import to_json
from inspector.report.model import Report

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "tests" / "data" / "probe_sections.json"
MODELS = ROOT / "fixtures" / "models"
PROBE = ROOT / "fixtures" / "probe"
# Recorded cases: real inputs with a duplicate-free file, a SavedModel signature (round trip
# skipped), a collapsed model (collapse layer, dead units), a check forced into big sizes.
RECORD_PLANS = {
    "bn_real_inputs": {"path": PROBE / "bn_stats_never_updated.keras",
                       "options": {"inputs": str(PROBE / "bn_stats_never_updated.inputs.npy")}},
    "savedmodel_signature": {"path": MODELS / "mlp" / "k3_export"},
    "collapsed_dead_relu": {"path": PROBE / "collapsed_dead_relu.keras"},
    "batch_softmax_big": {"path": PROBE / "batch_softmax_axis0.keras",
                          "options": {"check_sizes": "big"}},
}


def _recorded() -> dict[str, dict[str, Any]]:
    return json.loads(RECORDED.read_text(encoding="utf-8"))


NOT_RUN = [
    {"status": "refused", "reason": "loading would run code from the file", "verdict": None},
    {"status": "skipped", "reason": "TensorFlow is not installed", "verdict": None},
    {"status": "failed", "reason": "the child died", "error_kind": "crashed", "verdict": None},
    {"status": "timeout", "reason": None, "error_kind": "timeout", "verdict": None},
]


@pytest.mark.parametrize("name", sorted(RECORD_PLANS))
def test_recorded_real_sections_round_trip_exactly(name: str) -> None:
    raw = _recorded()[name]
    section = ProbeSection.from_json(raw)
    assert section is not None and section.to_json() == raw
    # byte for byte, the way the JSON report writes it
    assert json.dumps(section.to_json(), sort_keys=True) == json.dumps(raw, sort_keys=True)


@pytest.mark.parametrize("raw", [*NOT_RUN, {}, {"status": "ok", "extra_key": [1, {"a": None}]}],
                         ids=lambda r: str(r.get("status", "empty")))
def test_partial_sections_keep_missing_keys_missing(raw: dict[str, Any]) -> None:
    section = ProbeSection.from_json(raw)
    assert section is not None and section.to_json() == raw
    assert section.verdict is None and not section.ok
    assert section.layer_rows() == [] and section.output_list() == []


def test_not_run_builds_todays_shapes() -> None:
    assert ProbeSection.not_run("refused", "why").to_json() == NOT_RUN[0] | {"reason": "why"}
    failed = ProbeSection.not_run("failed", "the child died", error_kind="crashed")
    assert failed.to_json() == NOT_RUN[2]


def test_recorded_sections_are_typed_all_the_way_down() -> None:
    bn = ProbeSection.from_json(_recorded()["bn_real_inputs"])
    assert bn is not None and isinstance(bn.verdict, Verdict)
    assert bn.verdict.raised() == [k for k in VERDICT_KEYS if bn.to_json()["verdict"][k]]
    assert "train_infer_gap" in bn.verdict.raised()
    gap = bn.check(TrainInferGap, "train_infer_gap")
    assert gap.train_infer_gap is True and gap.per_distribution
    assert all(isinstance(v, GapRange) for v in gap.per_distribution.values())
    assert bn.real_inputs is not None
    assert all(isinstance(o, OutputStats) for o in bn.output_list())
    dead = ProbeSection.from_json(_recorded()["collapsed_dead_relu"])
    assert dead is not None and dead.collapse_layer
    row = dead.layer_row(dead.collapse_layer)
    assert row is not None and row.path == dead.collapse_layer
    sm = ProbeSection.from_json(_recorded()["savedmodel_signature"])
    assert sm is not None and sm.loader == "tf.saved_model"
    assert sm.checks is not None and sm.checks.roundtrip is not None
    assert sm.checks.roundtrip.skipped


def test_a_field_set_later_is_written_and_null_stays_null() -> None:
    raw = _recorded()["collapsed_dead_relu"]
    section = ProbeSection.from_json(raw)
    assert section is not None and section.verdict is not None
    assert "collapsed_because" not in raw
    section.verdict.collapsed = False
    section.collapsed_because = "because"
    out = section.to_json()
    assert out["collapsed_because"] == "because" and out["verdict"]["collapsed"] is False
    assert {k: v for k, v in out.items() if k not in ("verdict", "collapsed_because")} == {
        k: v for k, v in raw.items() if k != "verdict"}
    none = ProbeSection.from_json({**raw, "collapse_layer": None})
    assert none is not None and none.to_json()["collapse_layer"] is None
    assert "collapse_layer" not in ProbeSection.from_json({"status": "ok"}).to_json()


def test_wrong_types_are_kept_not_crashed_on() -> None:
    raw = {"status": "ok", "verdict": "yes", "outputs": [1, {"name": "o"}], "layers": None,
           "distributions": {"normal": []}, "checks": {"roundtrip": "oops"}}
    section = ProbeSection.from_json(raw)
    assert section is not None and section.to_json() == raw
    assert not section.ok and [o.name for o in section.output_list()] == ["o"]
    assert section.range_results() == {} and section.layer_rows() == []
    assert ProbeSection.from_json("not a section") is None


def test_verdict_keys_are_the_verdict_fields() -> None:
    assert protocol.VERDICT_KEYS == VERDICT_KEYS
    assert VERDICT_KEYS == ("collapsed", "nondeterministic", "batch_dependent",
                            "scale_sensitive", "train_infer_gap", "nan_outputs",
                            "roundtrip_mismatch")
    assert Verdict.label("nan_outputs") == "NaN outputs"
    # a key the child adds before it has a field is still shown and round-trips
    v = Verdict.from_json({**{k: False for k in VERDICT_KEYS}, "new_check": True})
    assert v is not None and v.raised() == ["new_check"] and "new_check" in v.to_json()


def test_report_holds_the_typed_section_and_writes_the_same_json() -> None:
    raw = _recorded()["collapsed_dead_relu"]
    report = Report(graph=open_model(PROBE / "collapsed_dead_relu.keras"))
    report.probe = raw                # the JSON form is read through ProbeSection
    assert isinstance(report.probe, ProbeSection)
    assert json.loads(to_json(report))["probe"] == json.loads(json.dumps(raw))


def test_plan_from_options_is_what_the_child_reads(tmp_path: Path) -> None:
    graph = open_model(MODELS / "mlp" / "k3.keras")
    plan = ProbePlan.from_options(graph, Options(samples=5, seed=3, device="cpu",
                                                 inputs="x.npy", probe_memory_mb=None))
    data = plan.to_json()
    assert set(data) == {"path", "format", "inputs", "vocab", "id_inputs", "macs_per_sample",
                         "input_range", "options"}
    assert data["options"] == {"device": "cpu", "samples": 5, "seed": 3,
                               "inputs": os.path.abspath("x.npy"), "trust": False,
                               "memory_mb": None, "check_sizes": None}
    again = ProbePlan.from_json(json.loads(json.dumps(data)))
    assert again is not None and again.to_json() == data
    assert again.options.samples == 5 and again.path == os.path.abspath(graph.path)
    # a hand-written plan (tests, benchmarks) gets the defaults, and keeps unknown keys
    bare = ProbePlan.from_json({"path": "m.keras", "note": 1})
    assert bare is not None and bare.options == PlanOptions() and bare.options.samples is None
    assert bare.to_json() == {"path": "m.keras", "note": 1}


def test_samples_has_one_default() -> None:
    """--samples left out is None everywhere up to the child, which applies DEFAULT_SAMPLES."""
    from inspector.cli import build_parser
    from inspector.options import DEFAULT_SAMPLES
    from inspector.probe import measure

    assert Options().samples is None and PlanOptions().samples is None
    assert build_parser().parse_args(["m.keras"]).samples is None
    assert measure.DEFAULT_SAMPLES is DEFAULT_SAMPLES
    assert measure.samples_for_cost(None, None) == (DEFAULT_SAMPLES, "default")
    assert f"default {DEFAULT_SAMPLES}" in build_parser().format_help()


def _record() -> None:
    """Run the child on RECORD_PLANS and store the result sections (needs TensorFlow)."""
    from inspector.probe.input_range import infer_input_range

    names = list(RECORD_PLANS)
    plans = []
    for name in names:
        case = RECORD_PLANS[name]
        plans.append({"path": str(case["path"]),
                      "input_range": infer_input_range(open_model(case["path"])),
                      "options": {"samples": 8, "seed": 0, **case.get("options", {})}})
    proc = subprocess.run([sys.executable, "-m", "inspector.probe", "-"],
                          input=json.dumps({"batch": plans}), capture_output=True, text=True,
                          cwd=ROOT, timeout=900)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    terminal = [e for e in events if e["event"] in ("result", "error")]
    assert all(e["event"] == "result" for e in terminal), terminal
    sections = {}
    for name, event in zip(names, terminal, strict=True):
        probe = event["probe"]
        probe["timings"] = {k: 0.0 for k in probe.get("timings", {})}   # stable file
        sections[name] = probe
    RECORDED.write_text(json.dumps(sections, indent=1, sort_keys=True) + "\n", "utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        _record()
