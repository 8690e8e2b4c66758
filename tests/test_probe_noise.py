"""Issue 11 without TensorFlow: the static input-range guess, the headline diagnosis, and
probe findings that say each thing once and never print ``None``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inspector.diagnosis import diagnose
from inspector.findings import Finding
from inspector.options import Options
from inspector.probe.input_range import infer_input_range, nearest
from inspector.probe.measure import output_stats, train_infer_gap
from inspector.readers import open_model
from inspector.report.model import Report
from inspector.report.text import to_text
from inspector.rules.probe_rules import probe_findings
from inspector.run.pipeline import analyze_static

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "fixtures" / "rules"
PROBE = ROOT / "fixtures" / "probe"
MLP = ROOT / "fixtures" / "models" / "mlp" / "k3.keras"


@pytest.mark.parametrize(("path", "name", "source"), [
    (RULES / "dead-units-by-bounds" / "good_rescaled_k3.keras", "uniform0_255", "rescaling"),
    (RULES / "normalization-not-adapted" / "good_adapted_k3.keras", "normal", "normalization"),
    (RULES / "normalization-not-adapted" / "bad_unadapted_k3.keras", "normal", "default"),
    (ROOT / "fixtures" / "models" / "cnn_bn" / "k3.keras", "uniform01", "batchnorm"),
    (PROBE / "scale_sensitive_no_rescaling.keras", "uniform01", "weights"),
    (PROBE / "collapsed_dropout999_cnn.keras", "uniform01", "default"),
    (PROBE / "healthy_tabular_mlp.keras", "normal", "default"),
    (ROOT / "fixtures" / "models" / "rnn" / "k3.keras", "token_ids", "default"),
])
def test_input_range_evidence(path: Path, name: str, source: str) -> None:
    rng = infer_input_range(open_model(path))
    assert (rng["name"], rng["source"]) == (name, source), rng
    assert rng["reason"] and "None" not in rng["reason"]


def test_only_a_linear_model_is_affine() -> None:
    assert infer_input_range(open_model(PROBE / "healthy_linear.keras"))["affine"] is True
    assert infer_input_range(open_model(PROBE / "healthy_tabular_mlp.keras"))["affine"] is False


def test_nearest_range() -> None:
    assert nearest(0.45, 0.3) == "uniform01"
    assert nearest(120.0, 60.0) == "uniform0_255"
    assert nearest(0.0, 0.55) == "uniform_m1_1"
    assert nearest(0.1, 1.1) == "normal"


def test_affine_output_with_a_large_offset_is_not_collapsed() -> None:
    x = 20000.0 + np.random.default_rng(0).normal(0.0, 0.3, size=(24, 1))
    assert output_stats("y", x)["collapsed"] is True           # relative to its magnitude
    assert output_stats("y", x, affine=True)["collapsed"] is False
    assert output_stats("y", np.full((24, 1), 20000.0), affine=True)["collapsed"] is True


def _probe(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "status": "ok", "verdict": {k: False for k in (
            "collapsed", "nondeterministic", "batch_dependent", "scale_sensitive",
            "train_infer_gap", "nan_outputs", "roundtrip_mismatch")},
        "inputs": [{"name": "x", "dtype": "float32", "generated_shape": [8]}],
        "outputs": [{"name": "y", "top_class": None, "top_class_fraction": None,
                     "std_max": 0.0}],
        "input_range": {"name": "normal", "label": "N(0,1)", "reason": "tabular",
                        "confidence": "low"},
        "layers": [], "checks": {}, "distributions": {}, "collapse_layer": None,
    }
    base.update(over)
    return base


def _found(probe: dict[str, Any], path: Path = MLP) -> list[Any]:
    return probe_findings(Report(graph=open_model(path), probe=probe), Options())


def _row(path: str, cls: str, dead: float) -> dict[str, Any]:
    return {"path": path, "class_name": cls, "dead_fraction": dead, "shape": [8, 4]}


def test_dead_units_once_per_cause() -> None:
    """Flatten / MaxPooling / Reshape after a dead ReLU inherit its zeros: one finding."""
    rows = [_row("model/conv", "Conv2D", 1.0), _row("model/pool", "MaxPooling2D", 1.0),
            _row("model/flat", "Flatten", 1.0), _row("model/reshape", "Reshape", 0.9)]
    dead = [f for f in _found(_probe(layers=rows)) if f.rule == "dead-units"]
    assert [f.layer for f in dead] == ["model/conv"]


def test_dead_units_not_for_few_input_features() -> None:
    """<= 5 input features: ReLU units silent on most inputs are normal; a whole dead layer
    is still reported."""
    few = [{"name": "x", "dtype": "float32", "generated_shape": [3]}]
    rows = [_row("model/fc1", "Dense", 0.7), _row("model/fc2", "Dense", 1.0)]
    dead = [f for f in _found(_probe(layers=rows, inputs=few)) if f.rule == "dead-units"]
    assert [f.layer for f in dead] == ["model/fc2"]
    many = [f for f in _found(_probe(layers=rows)) if f.rule == "dead-units"]
    assert [f.layer for f in many] == ["model/fc1", "model/fc2"]


def test_messages_never_print_none() -> None:
    """Regression outputs have no class, a gap check may lack a ratio or an agreement."""
    verdict = {k: True for k in ("collapsed", "nondeterministic", "batch_dependent",
                                 "train_infer_gap", "roundtrip_mismatch")}
    verdict.update(scale_sensitive=False, nan_outputs=False)
    probe = _probe(verdict=verdict, checks={
        "train_infer_gap": {"per_distribution": {"normal": {
            "diff_over_spread": None, "argmax_agreement": None,
            "inference_collapsed_training_varies": False}}, "min_diff_over_spread": None},
        "nondeterminism": {}, "batch_dependence": {}, "roundtrip": {}})
    found = _found(probe)
    assert {f.rule for f in found} >= {"output-collapsed", "train-infer-gap",
                                       "nondeterministic-inference", "batch-size-dependent"}
    for f in found:
        assert "None" not in f.message, f.message
    collapsed = next(f for f in found if f.rule == "output-collapsed")
    assert "nearly the same value" in collapsed.message


class _FakeModel:
    """Inference outputs fixed by the test; training=True adds per-call noise and, when
    ``signal``, a response to the inputs."""

    def __init__(self, signal: bool, noise: float) -> None:
        self.signal, self.noise = signal, noise
        self.rng = np.random.default_rng(0)

    def call(self, arrays: list[np.ndarray], training: bool | None = None) -> list[np.ndarray]:
        x = arrays[0]
        base = np.tile([[0.9, 0.05, 0.05]], (len(x), 1))
        if self.signal:
            base = np.eye(3)[(x[:, 0] > 0).astype(int) + 1]
        noisy = base + self.rng.normal(0.0, self.noise, size=base.shape)
        return [np.clip(noisy, 0.0, 1.0)]

    def get_state(self) -> None:
        return None

    def set_state(self, state: Any) -> None:
        pass


def _gap(model: _FakeModel, passes: int) -> dict[str, Any]:
    x = [np.random.default_rng(1).normal(size=(16, 4)).astype("float32")]
    infer = [np.tile([[0.9, 0.05, 0.05]], (16, 1))]      # inference collapsed on class 0
    return train_infer_gap(model, {"normal": x}, {"normal": infer}, passes,  # type: ignore[arg-type]
                           own="normal")


def test_inference_collapse_with_training_signal_is_a_gap() -> None:
    gap = _gap(_FakeModel(signal=True, noise=0.0), passes=1)
    entry = gap["per_distribution"]["normal"]
    assert entry["inference_collapsed_training_varies"] is True
    assert entry["argmax_agreement"] == 0.0
    assert gap["train_infer_gap"] is True


def test_collapse_plus_dropout_noise_is_no_gap() -> None:
    """Training-mode outputs that only differ by dropout noise: collapse, not a gap."""
    gap = _gap(_FakeModel(signal=False, noise=0.3), passes=2)
    entry = gap["per_distribution"]["normal"]
    assert entry["inference_collapsed_training_varies"] is False
    assert gap["train_infer_gap"] is False


def test_diagnosis_without_probe_is_the_worst_static_finding() -> None:
    report = analyze_static(PROBE / "collapsed_dropout999_cnn.keras", Options())
    diagnosis = diagnose(report)
    assert diagnosis is not None and diagnosis["confidence"] == "low"
    assert diagnosis["cause_rule"] in {f.rule for f in report.findings}
    assert "the probe did not run" in diagnosis["summary"]
    text = to_text(report)
    assert text.splitlines()[1].startswith("  diagnosis (low confidence): ")


@pytest.mark.parametrize("severity", ["info", "warning", "error"])
def test_a_quiet_probe_names_only_the_static_error_it_mentions(severity: str) -> None:
    """The probe saw no problem: cause_rule/layer are set only when the summary names the
    static finding (an error), never for a warning it leaves unsaid."""
    report = Report(graph=open_model(MLP), probe=_probe())
    report.findings = [Finding(code="KIN010", rule="custom-object", severity=severity,
                               message="model/dense: custom class X", layer="model/dense",
                               evidence={}, hint="")]
    diagnosis = diagnose(report)
    assert diagnosis is not None and diagnosis["summary"].startswith("the probe saw no problem")
    named = severity == "error"
    assert ("static finding to check" in diagnosis["summary"]) is named
    assert diagnosis["cause_rule"] == ("custom-object" if named else None)
    assert diagnosis["layer"] == ("model/dense" if named else None)


def test_no_findings_no_probe_no_diagnosis() -> None:
    report = Report(graph=open_model(MLP))
    assert report.diagnosis is None and report.to_dict()["diagnosis"] is None


def _near_probe() -> dict[str, Any]:
    out = {"name": "head", "top_class": 1, "top_class_fraction": 0.94, "std_max": 0.038,
           "collapsed": False, "probability_like": True}
    return _probe(outputs=[out], near_collapsed=True,
                  input_range={"name": "uniform01", "label": "[0,1]", "reason": "image",
                               "confidence": "low"})


def test_near_collapse_with_a_static_cause_is_a_collapse() -> None:
    """One class for 94 % of the model's own range: collapsed when the file says why
    (every layer frozen), not on the probe's numbers alone."""
    path = PROBE / "collapsed_all_frozen_cnn.keras"
    report = analyze_static(path, Options())
    report.probe = _near_probe()
    report.add_findings(probe_findings(report, Options()))
    assert report.probe.verdict.collapsed is True
    assert "all-layers-frozen" in report.probe.collapsed_because
    diagnosis = report.diagnosis
    assert diagnosis is not None and diagnosis["cause_rule"] == "all-layers-frozen"
    assert diagnosis["summary"].startswith("predicts class 1 for 94% of the [0,1] inputs")


def test_near_collapse_alone_is_no_verdict() -> None:
    report = analyze_static(MLP, Options())
    report.probe = _near_probe()
    found = probe_findings(report, Options())
    assert report.probe.verdict.collapsed is False
    assert not [f for f in found if f.rule == "output-collapsed"]
