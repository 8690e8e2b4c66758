"""The probe side of ``kinspect diff`` (inspector/diff/probe_diff.py and the child's
``activations`` mode): both models on the same inputs, output agreement, and the first
layer whose activations diverge. Real TensorFlow on the tiny fixtures/diff/ models (two
child runs per case, ~4 s); the comparison itself is also tested on plain arrays."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from inspector.diff import probe_diff
from inspector.diff.probe_diff import (
    argmax_agreement,
    compare_layer,
    compare_outputs,
    compare_probes,
    first_divergent,
    tolerances,
)
from inspector.options import DEFAULT_SAMPLES, Options
from inspector.probe.activations import (
    LAYER_VALUES,
    MAX_SAMPLES,
    ActivationsError,
    _chosen_inputs,
    fit_to_specs,
    kept_values,
    unit_stride,
)
from inspector.probe.child import FAULT_ENV
from inspector.probe.inputs import InputSpec
from inspector.probe.measure import samples_for_cost

ROOT = Path(__file__).resolve().parent.parent
DIFF = ROOT / "fixtures" / "diff"
LAMBDA = ROOT / "fixtures" / "rules" / "lambda-layer" / "bad_lambda_k3.keras"
ALL_LAYERS = ["model/base/conv", "model/base/bn", "model/base/relu", "model/base",
              "model/pool", "model/dropout", "model/flatten", "model/probs"]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The parent's temp folder, to check that nothing is left in it."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def _probe(a: str, b: str, private_tmp: Path, **extra: Any) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    result = compare_probes(str(DIFF / a), str(DIFF / b), Options(**extra), events.append)
    assert list(private_tmp.iterdir()) == [], "the diff's temp folder was left behind"
    if result["status"] == "ok":
        assert {e.get("side") for e in events} == {"a", "b"}
        fractions = [e["fraction"] for e in events if e["event"] == "progress"]
        assert fractions == sorted(fractions) and max(fractions) <= 1.0
    return result


def _agree(result: dict[str, Any]) -> None:
    assert result["status"] == "ok", result["reason"]
    assert result["first_divergent_layer"] is None
    [out] = result["outputs"]
    assert out["within_tolerance"] and out["argmax_agreement"] == 1.0
    assert out["max_abs_diff"] <= result["tolerance"]
    assert [r["path_a"] for r in result["layers"]] == ALL_LAYERS
    assert not any(r["divergent"] for r in result["layers"])


# ----------------------------------------------------------------------------- TensorFlow


@pytest.mark.tf
@pytest.mark.xdist_group("probe-tf")
def test_resave_across_formats_agrees(private_tmp: Path) -> None:
    result = _probe("base.keras", "base_resave.h5", private_tmp)
    _agree(result)
    inputs = result["inputs"]
    assert inputs["source"] == "random" and inputs["seed"] == 0
    assert inputs["count"] == DEFAULT_SAMPLES and inputs["samples_chosen"] == "default"
    assert inputs["range"] == "normal" and "BatchNormalization" in inputs["range_reason"]
    assert result["outputs"][0]["max_abs_diff"] == 0.0


@pytest.mark.tf
@pytest.mark.xdist_group("probe-tf")
def test_perturbed_head_is_the_first_divergent_layer(private_tmp: Path) -> None:
    result = _probe("base.keras", "weights_perturbed.keras", private_tmp, samples=8)
    assert result["status"] == "ok" and result["inputs"]["count"] == 8
    first = result["first_divergent_layer"]
    assert (first["path_a"], first["path_b"]) == ("model/probs", "model/probs")
    assert first["relative"] > result["layer_tolerance"]
    [out] = result["outputs"]
    assert not out["within_tolerance"] and out["max_abs_diff"] > 1e-2
    assert [r["divergent"] for r in result["layers"]] == [False] * 7 + [True]


@pytest.mark.tf
@pytest.mark.xdist_group("probe-tf")
def test_nested_layer_diverges_before_the_model_around_it(private_tmp: Path) -> None:
    """BN stats reset inside the nested ``base``: the BN layer is named, not ``model/base``
    (which pairs first in file order but returns after its layers)."""
    result = _probe("base.h5", "bn_reset.keras", private_tmp, samples=8)
    assert result["first_divergent_layer"]["path_a"] == "model/base/bn"
    assert not result["layers"][0]["divergent"]          # the conv before it agrees


@pytest.mark.tf
@pytest.mark.xdist_group("probe-tf")
def test_dropout_rate_only_agrees_at_inference(private_tmp: Path) -> None:
    _agree(_probe("base.keras", "dropout_changed.keras", private_tmp, samples=8))


@pytest.mark.tf
@pytest.mark.xdist_group("probe-tf")
def test_keras2_h5_and_its_keras3_conversion_agree(private_tmp: Path) -> None:
    result = _probe("base_k2.h5", "k2_converted.keras", private_tmp, samples=8)
    _agree(result)
    assert result["sides"]["a"]["loader"] == "tf_keras"
    assert result["sides"]["b"]["loader"] == "keras3"


@pytest.mark.tf
@pytest.mark.xdist_group("probe-tf")
def test_inputs_file_feeds_both_savedmodels(private_tmp: Path, tmp_path: Path) -> None:
    """--inputs: A reads them, B gets the very same arrays (Keras 2 SavedModels)."""
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(3).uniform(0, 1, (5, 12, 12, 3)).astype("float32"))
    result = _probe("base_k2_savedmodel", "base_k2_savedmodel_resave", private_tmp,
                    inputs=str(data))
    _agree(result)
    assert result["inputs"]["source"] == "inputs" and result["inputs"]["count"] == 5
    assert result["outputs"][0]["shape_a"] == [5, 4]


# ----------------------------------------------------------------------------- no child


@pytest.mark.parametrize("side", ["a", "b"])
def test_code_on_either_side_is_refused_without_trust(
        side: str, private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_child(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a probe child was started for a refused file")

    monkeypatch.setattr(probe_diff, "ProbeRunner", no_child)
    a, b = (LAMBDA, DIFF / "base.keras") if side == "a" else (DIFF / "base.keras", LAMBDA)
    result = compare_probes(str(a), str(b), Options())
    assert result["status"] == "refused"
    assert result["reason"].startswith(f"{side.upper()} (") and "lambda-layer" in result["reason"]
    assert "--trust" in result["reason"] and result["outputs"] == []
    assert list(private_tmp.iterdir()) == []


def test_a_failing_child_names_its_side_and_cleans_up(
        private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_ENV, "exit")     # the child exits before importing TensorFlow
    result = compare_probes(str(DIFF / "base.keras"), str(DIFF / "base_resave.keras"),
                            Options())
    assert result["status"] == "failed" and result["reason"].startswith("A: ")
    assert result["error_kind"] == "crashed"
    assert list(private_tmp.iterdir()) == []


def test_unreadable_side_is_a_failure_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "broken.keras"
    bad.write_text("not a zip")
    result = compare_probes(str(DIFF / "base.keras"), str(bad), Options())
    assert result["status"] == "failed" and result["reason"].startswith("B: ")
    assert "broken.keras" in result["reason"]


def _meta(path: str, shape: tuple[int, ...], stride: int = 1) -> dict[str, Any]:
    return {"path": path, "shape": list(shape), "rows": shape[0], "stride": stride,
            "class_name": "Dense"}


def test_layer_comparison_relative_to_a_peak() -> None:
    a = np.array([[10.0, -20.0], [1.0, 2.0]], "float32")
    same = compare_layer(_meta("model/x", (2, 2)), a, _meta("model/y", (2, 2)), a.copy(), 1e-4)
    assert same["max_abs_diff"] == 0.0 and not same["divergent"]
    b = a.copy()
    b[1, 1] += 0.001                             # 0.001 / 20 = 5e-5: within 1e-4 relative
    assert not compare_layer(_meta("a", (2, 2)), a, _meta("b", (2, 2)), b, 1e-4)["divergent"]
    b[1, 1] += 0.002                             # 0.003 / 20 = 1.5e-4: beyond
    row = compare_layer(_meta("a", (2, 2)), a, _meta("b", (2, 2)), b, 1e-4)
    assert row["divergent"] and row["relative"] == pytest.approx(1.5e-4, rel=1e-3)


def test_layer_comparison_nonfinite_and_shapes() -> None:
    a = np.array([[np.nan, 1.0]], "float32")
    assert not compare_layer(_meta("a", (1, 2)), a, _meta("b", (1, 2)), a.copy(),
                             1e-4)["divergent"]          # the same NaN on both sides
    row = compare_layer(_meta("a", (1, 2)), a, _meta("b", (1, 2)),
                        np.array([[0.0, 1.0]], "float32"), 1e-4)
    assert row["divergent"] and row["nonfinite_mismatch"] == 1
    reshaped = compare_layer(_meta("a", (1, 2)), a, _meta("b", (1, 3)),
                             np.zeros((1, 3), "float32"), 1e-4)
    assert reshaped["divergent"] and reshaped["max_abs_diff"] is None
    assert "shape" in first_divergent([reshaped])["reason"]


def test_first_divergent_is_the_first_row_in_order() -> None:
    rows = [{"path_a": p, "path_b": p, "max_abs_diff": d, "relative": d,
             "nonfinite_mismatch": 0, "divergent": d > 1e-4}
            for p, d in (("model/x", 0.0), ("model/y", 0.5), ("model/z", 0.9))]
    assert first_divergent(rows)["path_a"] == "model/y"
    assert first_divergent(rows[:1]) is None


def test_output_agreement() -> None:
    a = np.array([[0.1, 0.9], [0.8, 0.2], [0.5, 0.4], [0.3, 0.7]], "float32")
    b = a.copy()
    b[2] = [0.4, 0.5]                           # one argmax flips
    notes: list[str] = []
    [row] = compare_outputs([("p", a)], [("p", b), ("extra", b)], 1e-4, notes)
    assert row["argmax_agreement"] == 0.75 and not row["within_tolerance"]
    assert row["max_abs_diff"] == pytest.approx(0.1) and notes
    [same] = compare_outputs([("p", a)], [("q", a)], 1e-4, [])
    assert same["within_tolerance"] and same["name_b"] == "q"
    assert argmax_agreement(np.zeros((3, 1)), np.ones((3, 1))) is None   # one unit: no class
    [shape] = compare_outputs([("p", a)], [("p", a[:, :1])], 1e-4, [])
    assert not shape["within_tolerance"] and shape["max_abs_diff"] is None


def test_large_outputs_are_strided_over_every_channel() -> None:
    for channels in (64, 256, 2048, 3, 1):
        shape = (8, 56, 56, channels)
        rows, stride = kept_values(shape, 8)
        units = 56 * 56 * channels
        assert rows * -(-units // stride) <= LAYER_VALUES * 1.01
        picked = (np.arange(0, units, stride) % channels) if channels > 1 else np.zeros(1)
        assert len(set(picked.tolist())) == channels    # every channel is sampled
    assert kept_values((8, 10), 8) == (8, 1)            # small: kept whole
    assert unit_stride(1000, 10, 100) == 11


def test_tolerances_from_options() -> None:
    assert tolerances(Options()) == (1e-4, 1e-4)
    assert tolerances(Options(extra={"tolerance": "0.01"})) == (0.01, 0.01)
    assert tolerances(Options(extra={"tolerance": "0.01", "layer_tolerance": "1e-3"})) == (
        0.01, 1e-3)
    assert tolerances(Options(extra={"tolerance": "nan"})) == (1e-4, 1e-4)


def test_b_gets_a_inputs_checked_and_cast() -> None:
    """B's declared inputs must take A's arrays (same count, per-sample shape); the dtype
    follows B (an int-id input stays ids, a float input gets floats)."""
    x = np.arange(12, dtype="float32").reshape(2, 6)
    [fed] = fit_to_specs([x], [InputSpec("ids", [None, 6], "int32")])
    assert fed.dtype == np.int32 and fed.tolist()[1] == [6, 7, 8, 9, 10, 11]
    assert fit_to_specs([x], [InputSpec("x", [None, None], "float32")])[0] is x
    with pytest.raises(ActivationsError, match="B has 2 inputs"):
        fit_to_specs([x], [InputSpec("x", [None, 6], "float32")] * 2)
    with pytest.raises(ActivationsError, match=r"takes \(5\) per sample.*\(6\)"):
        fit_to_specs([x], [InputSpec("x", [None, 5], "float32")])


@pytest.mark.parametrize(("macs", "samples", "count"), [
    (None, None, DEFAULT_SAMPLES), (3.86e9, None, samples_for_cost(None, 3.86e9)[0]),
    (3.86e9, 5, 5), (None, 5000, MAX_SAMPLES)])
def test_random_inputs_count_like_the_single_file_probe(macs: float | None, samples: int | None,
                                                        count: int) -> None:
    """A draws the single-file probe's per-range count (fewer for a ResNet50-sized model),
    --samples wins, never more than MAX_SAMPLES."""
    model = SimpleNamespace(specs=[InputSpec("x", [None, 3], "float32")])
    plan = {"macs_per_sample": macs, "options": {"samples": samples}}
    arrays, inputs = _chosen_inputs(model, plan)
    assert inputs["count"] == count == arrays[0].shape[0]
    capped = f"{MAX_SAMPLES} instead of {samples}: the diff compares at most {MAX_SAMPLES} inputs"
    assert inputs["samples_chosen"] == (samples_for_cost(samples, macs)[1]
                                        if count != MAX_SAMPLES else capped)
