"""The probe on real TensorFlow (CPU): every verdict on the fixture trained into it, none on
the healthy fixtures in any format, loaders, devices and --inputs errors.

All models go through ONE child process in batch mode (TensorFlow is imported once); the
tests below only read its results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inspector.errors import KinspectError
from inspector.options import Options
from inspector.probe.input_range import infer_input_range
from inspector.probe.protocol import VERDICT_KEYS
from inspector.probe.results import ProbeSection, Verdict
from inspector.readers import open_model
from inspector.report.json_out import to_json
from inspector.report.model import Report
from inspector.rules.probe_rules import probe_findings

pytestmark = [pytest.mark.tf, pytest.mark.xdist_group("probe-tf")]

ROOT = Path(__file__).resolve().parent.parent
PROBE = ROOT / "fixtures" / "probe"
MODELS = ROOT / "fixtures" / "models"
EXPECTED = json.loads((PROBE / "expected.json").read_text())
# A TimeDistributed MobileNet (fixtures/realfiles_fixtures.py) whose signal is the mean colour
# of a clip: not collapsed. Not in the labelled set: fed 0..255 its own clips give one class,
# so "scale-sensitive" is true of it, and random inputs show that on some seeds only.
TD_MOBILENET = ROOT / "fixtures" / "real" / "td_mobilenet" / "k3.keras"
FORMATS = ("k3.keras", "k3.h5", "k2.h5", "k2_savedmodel", "k3_export")
# custom_layer needs --trust and its package; legacy_k22 is a reader fixture (hand-written
# h5).
HEALTHY_FAMILIES = ("mlp", "cnn_bn", "rnn", "transfer", "multi_io", "shared_layer")
# Keras itself cannot load these (not a probe limitation): the probe must say so clearly.
UNLOADABLE = {"rnn/k3.h5": "NotEqual"}
EXPECTED_LOADER = {"k3.keras": "keras3", "k3.h5": "keras3", "k2_savedmodel": "tf_keras",
                   "k3_export": "tf.saved_model"}
SAMPLES = 24
# Per-layer passes forced into chunks (big models run them so): the merged rows must equal
# the one-call rows of the same model (keys: the unchunked case names).
CHUNKED = {"healthy:transfer/k3.keras": (MODELS / "transfer" / "k3.keras", 5),
           "broken:collapsed_dead_relu": (PROBE / "collapsed_dead_relu.keras", 7)}


def _healthy() -> list[Path]:
    return [MODELS / fam / fmt for fam in HEALTHY_FAMILIES for fmt in FORMATS
            if (MODELS / fam / fmt).exists() and f"{fam}/{fmt}" not in UNLOADABLE]


def _plan(path: Path, **options: Any) -> dict[str, Any]:
    """What build_plan gives the child: the static input-range guess included."""
    return {"path": str(path), "input_range": _input_range(path),
            "options": {"samples": SAMPLES, "seed": 0, **options}}


def _input_range(path: Path) -> dict[str, Any] | None:
    try:
        return infer_input_range(open_model(path))
    except KinspectError:
        return None


@pytest.fixture(scope="module")
def extra_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("probe_inputs")
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(10, 8)).astype("float32")
    rows[7] = rows[2]
    rows[9] = rows[2]
    np.save(d / "dups.npy", rows)
    np.save(d / "wrong.npy", rng.normal(size=(5, 10)).astype("float32"))
    from PIL import Image

    images = d / "images"
    images.mkdir()
    for i in range(4):
        pixels = rng.integers(0, 256, size=(20, 24), dtype=np.uint8)     # grayscale, 20x24
        Image.fromarray(pixels).save(images / f"img{i}.png")
    (images / "copy_of_img1.png").write_bytes((images / "img1.png").read_bytes())
    return {"dups": d / "dups.npy", "wrong": d / "wrong.npy", "images": images}


@pytest.fixture(scope="module")
def results(extra_inputs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Terminal event per case name, from one batch child run."""
    cases: dict[str, dict[str, Any]] = {}
    for stem in EXPECTED["verdicts"]:
        opts = {}
        if stem in EXPECTED["with_inputs"]:
            opts["inputs"] = str(PROBE / f"{stem}.inputs.npy")
        cases[f"broken:{stem}"] = _plan(PROBE / f"{stem}.keras", **opts)
    for path in _healthy():
        cases[f"healthy:{path.relative_to(MODELS)}"] = _plan(path)
    cases["real:td_mobilenet"] = _plan(TD_MOBILENET)
    mlp = MODELS / "mlp" / "k3.keras"
    cases["inputs:dups"] = _plan(mlp, inputs=str(extra_inputs["dups"]))
    cases["inputs:wrong"] = _plan(mlp, inputs=str(extra_inputs["wrong"]))
    cases["device:gpu"] = _plan(mlp, device="gpu")
    cases["inputs:images"] = _plan(MODELS / "cnn_bn" / "k3.keras",
                                   inputs=str(extra_inputs["images"]))
    cases["weights-only"] = _plan(MODELS / "mlp" / "k3.weights.h5")
    for rel in UNLOADABLE:
        if (MODELS / rel).exists():
            cases[f"unloadable:{rel}"] = _plan(MODELS / rel)
    if (MODELS / "rnn" / "k3.keras").exists():
        cases["tokens:rnn"] = _plan(MODELS / "rnn" / "k3.keras")
    cases["stateful:k2"] = _plan(PROBE / "stateful_rnn_k2.h5")         # batch_input_shape
    for stem in EXPECTED["verdicts"]:
        cases[f"big:{stem}"] = {**cases[f"broken:{stem}"], "options": {
            **cases[f"broken:{stem}"]["options"], "check_sizes": "big"}}
    for path in _healthy():
        if path.name == "k3.keras":
            cases[f"big-healthy:{path.relative_to(MODELS)}"] = _plan(path, check_sizes="big")
    for name, (path, chunk) in CHUNKED.items():
        cases[f"chunked:{name}"] = _plan(path, check_sizes={"layer_chunk": chunk})
    names = list(cases)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "inspector.probe", "-"],
                          input=json.dumps({"batch": [cases[n] for n in names]}),
                          capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)
    terminal = [json.loads(line) for line in proc.stdout.splitlines()
                if line.startswith("{") and json.loads(line)["event"] in ("result", "error")]
    assert len(terminal) == len(names), proc.stderr[-3000:]
    return dict(zip(names, terminal, strict=True))


def test_every_section_round_trips_through_the_typed_section(
        results: dict[str, dict[str, Any]]) -> None:
    """ProbeSection.from_json(...).to_json() gives back exactly what the child sent, for
    every case (healthy, broken, big sizes, real inputs, SavedModel signatures), and the
    rules reading the typed section leave it unchanged except for a near-collapse link."""
    sections = {n: e["probe"] for n, e in results.items() if e["event"] == "result"}
    assert len(sections) > 40
    for name, raw in sections.items():
        section = ProbeSection.from_json(raw)
        assert section is not None and section.to_json() == raw, name
        assert json.dumps(section.to_json(), sort_keys=True) == json.dumps(raw, sort_keys=True)
        assert isinstance(section.verdict, Verdict) and section.verdict.items()
    for stem in EXPECTED["verdicts"]:
        raw = sections[f"broken:{stem}"]
        report = _report_for(results, f"broken:{stem}", PROBE / f"{stem}.keras")
        written = json.loads(to_json(report))["probe"]
        if "collapsed_because" in written:      # link_near_collapse judged it collapsed
            written.pop("collapsed_because")
            written["verdict"]["collapsed"] = raw["verdict"]["collapsed"]
        assert written == json.loads(json.dumps(raw)), stem


def _raised(event: dict[str, Any]) -> set[str]:
    assert event["event"] == "result", event
    verdict = event["probe"]["verdict"]
    assert set(verdict) == set(VERDICT_KEYS)
    return {k for k, v in verdict.items() if v}


def _assert_expected_verdicts(stem: str, event: dict[str, Any]) -> None:
    """The verdicts expected.json lists for ``stem`` are raised; none for a healthy control."""
    expected = set(EXPECTED["verdicts"][stem])
    raised = _raised(event)
    if expected:
        assert expected <= raised, f"{stem}: expected {expected}, got {raised}"
    else:
        assert raised == set(), f"healthy control {stem} raised {raised}"


@pytest.mark.parametrize("stem", sorted(EXPECTED["verdicts"]))
def test_fixture_raises_its_verdicts(results: dict[str, Any], stem: str) -> None:
    _assert_expected_verdicts(stem, results[f"broken:{stem}"])


@pytest.mark.parametrize("stem", sorted(EXPECTED["verdicts"]))
def test_big_model_sizes_keep_every_verdict(results: dict[str, Any], stem: str) -> None:
    """The smaller checks models above BIG_MACS_PER_SAMPLE get (8 samples in chunks of 4,
    2 check samples, 1 single-sample call, at most 2 ranges in the gap check) still separate
    the broken fixtures from the healthy controls."""
    probe = results[f"big:{stem}"]["probe"]
    assert probe["check_sizes"]["layer_chunk"] == 4 and probe["check_sizes"]["gap_ranges"] == 2
    _assert_expected_verdicts(stem, results[f"big:{stem}"])


@pytest.mark.parametrize("path", [str(p.relative_to(MODELS)) for p in _healthy()
                                  if p.name == "k3.keras"])
def test_big_model_sizes_raise_nothing_on_healthy_models(results: dict[str, Any],
                                                         path: str) -> None:
    event = results[f"big-healthy:{path}"]
    assert event["probe"]["check_sizes"]["check"] == 2
    assert _raised(event) == set(), json.dumps(event["probe"]["verdict"])


def test_every_verdict_has_a_fixture() -> None:
    covered = {v for vs in EXPECTED["verdicts"].values() for v in vs}
    assert covered >= set(VERDICT_KEYS) - {"roundtrip_mismatch"}


def test_healthy_fixtures_exist_in_every_format() -> None:
    names = {p.name for p in _healthy()}
    assert set(FORMATS) <= names


@pytest.mark.parametrize("path", [str(p.relative_to(MODELS)) for p in _healthy()])
def test_healthy_model_raises_nothing(results: dict[str, Any], path: str) -> None:
    event = results[f"healthy:{path}"]
    assert _raised(event) == set(), json.dumps(event["probe"]["verdict"])
    probe = event["probe"]
    # No collapse on the unit-scale ranges. None of these models has a Rescaling layer and
    # all were trained on unit-scale data, so raw 0..255 is outside what their preprocessing
    # accepts (transfer's softmax saturates there; that alone is not scale sensitivity).
    for dist, entry in probe["distributions"].items():
        if dist != "uniform0_255":
            assert not entry["collapsed"], dist
    fmt = Path(path).name
    if fmt in EXPECTED_LOADER:
        assert probe["loader"] == EXPECTED_LOADER[fmt]
    assert probe["device"].endswith("CPU:0") or "GPU" in probe["device"]
    assert set(probe["timings"]) >= {"import", "load", "predict"}


def test_collapse_layer_points_at_the_dead_layer(results: dict[str, Any]) -> None:
    probe = results["broken:collapsed_dead_relu"]["probe"]
    assert probe["collapse_layer"].endswith("/fc")
    row = next(r for r in probe["layers"] if r["path"] == probe["collapse_layer"])
    assert row["dead_fraction"] == 1.0
    zeroed = results["broken:collapsed_zeroed"]["probe"]
    assert zeroed["collapse_layer"].endswith("/fc")


@pytest.mark.parametrize("path", ["transfer/k3.keras", "rnn/k3.keras", "mlp/k2_savedmodel",
                                  "shared_layer/k2.h5"])
def test_probe_layer_paths_are_the_graph_paths(results: dict[str, Any], path: str) -> None:
    """The TUI and the findings look probe rows up by the static graph's layer paths."""
    probe = results[f"healthy:{path}"]["probe"]
    graph_paths = {node.path for node in open_model(MODELS / path).walk()}
    recorded = {row["path"] for row in probe["layers"]}
    assert recorded and recorded <= graph_paths, sorted(recorded - graph_paths)
    dead = results["broken:collapsed_dead_relu"]["probe"]["collapse_layer"]
    assert dead in {n.path for n in open_model(PROBE / "collapsed_dead_relu.keras").walk()}


@pytest.mark.parametrize("name", sorted(CHUNKED))
def test_chunked_layer_pass_gives_the_one_call_rows(results: dict[str, Any], name: str) -> None:
    whole, chunked = results[name]["probe"], results[f"chunked:{name}"]["probe"]
    assert chunked["checks"]["layers"]["chunks"] > 1
    assert chunked["checks"]["layers"]["chunks_merged"]
    assert chunked["checks"]["layers"]["record_errors"] == []
    assert [r["path"] for r in chunked["layers"]] == [r["path"] for r in whole["layers"]]
    for a, b in zip(whole["layers"], chunked["layers"], strict=True):
        assert a["shape"] == b["shape"] and a["flat"] == b["flat"], a["path"]
        assert a["dead_fraction"] == b["dead_fraction"], a["path"]
        assert a["saturated_fraction"] == b["saturated_fraction"], a["path"]
        for key in ("across_input_std", "mean_abs", "input_std"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-7), (a["path"], key)
    assert chunked["collapse_layer"] == whole["collapse_layer"]
    assert chunked["verdict"] == whole["verdict"]


@pytest.mark.parametrize("path", [str(p.relative_to(MODELS)) for p in _healthy()
                                  if p.suffix in (".keras", ".h5")])
def test_round_trip_reloads_unless_the_saved_file_is_the_source(results: dict[str, Any],
                                                                path: str) -> None:
    """A .keras source that the running Keras wrote and saves back identically is not
    reloaded (the reload would rebuild the same model); every other source is. transfer's
    nested base model was frozen (trainable=False) and Keras 3 loads it trainable, so its
    resaved config differs: reloaded, with the same outputs."""
    import zipfile

    probe = results[f"healthy:{path}"]["probe"]
    trip = probe["checks"]["roundtrip"]
    assert trip["mismatch"] is False and trip["max_rel_diff"] <= trip["threshold"]
    source = MODELS / path
    if source.suffix == ".keras":
        meta = json.loads(zipfile.ZipFile(source).read("metadata.json"))
        if meta["keras_version"] == probe["versions"]["keras"] and probe["loader"] == "keras3":
            expected = ("reloaded and run (config.json changed)" if path.startswith("transfer/")
                        else "not reloaded")
            assert trip["compared"].startswith(expected), trip
            return
    assert trip["compared"].startswith("reloaded and run"), trip


def test_training_pass_runs_only_where_it_can_differ(results: dict[str, Any]) -> None:
    mlp = results["healthy:mlp/k3.keras"]["probe"]["checks"]["train_infer_gap"]
    assert "skipped" in mlp and mlp["train_infer_gap"] is False       # Dense layers only
    cnn = results["healthy:cnn_bn/k3.keras"]["probe"]["checks"]["train_infer_gap"]
    assert cnn["per_distribution"] and not cnn["train_infer_gap"]
    # a gap is only concluded after every range was measured
    bn = results["broken:bn_stats_never_updated"]["probe"]["checks"]["train_infer_gap"]
    assert bn["train_infer_gap"] and (bn["not_run"] == [] or bn["inference_collapses_on"])


def test_nondeterminism_is_seen_by_plain_calls_not_predict(results: dict[str, Any]) -> None:
    check = results["broken:nondeterministic_training_true"]["probe"]["checks"]["nondeterminism"]
    assert check["predict_max_rel_diff"] <= check["threshold"]     # Keras 3 predict hides it
    assert check["call_max_rel_diff"] > 100 * check["threshold"]
    assert check["call_compared_with"] == "second plain call"     # random: both calls ran


def test_nan_hidden_by_graph_mode_is_found_eagerly(results: dict[str, Any]) -> None:
    probe = results["broken:nan_hidden_weight"]["probe"]
    assert probe["checks"]["eager_vs_graph"]["eager_nan"] is True


def test_scale_sensitive_names_the_working_range(results: dict[str, Any]) -> None:
    probe = results["broken:scale_sensitive_no_rescaling"]["probe"]
    assert "uniform01" in probe["working_distributions"]
    assert "uniform0_255" not in probe["working_distributions"]


def test_duplicate_inputs_are_reported(results: dict[str, Any]) -> None:
    probe = results["inputs:dups"]["probe"]
    assert probe["real_inputs"]["duplicates"] == [["row 2", "row 7", "row 9"]]
    report = Report(graph=open_model(MODELS / "mlp" / "k3.keras"), probe=probe)
    found = probe_findings(report, Options())
    assert [f.rule for f in found if f.rule == "duplicate-inputs"] == ["duplicate-inputs"]
    assert all(f.source == "probe" for f in found)


def test_image_directory_is_decoded_resized_and_deduplicated(results: dict[str, Any]) -> None:
    real = results["inputs:images"]["probe"]["real_inputs"]
    assert real["count"] == 5 and real["shapes"] == [[5, 16, 16, 3]]
    assert "channels 1 -> 3" in real["notes"] and "resized 20x24 -> 16x16" in real["notes"]
    assert real["duplicates"] == [["copy_of_img1.png", "img1.png"]]
    assert results["inputs:images"]["probe"]["outputs_from"] == "real_inputs"


def test_wrong_input_shape_names_expected_and_given(results: dict[str, Any]) -> None:
    event = results["inputs:wrong"]
    assert event["event"] == "error" and event["kind"] == "inputs"
    assert "(N, 8)" in event["message"] and "(5, 10)" in event["message"]


def test_gpu_request_without_gpu_is_a_clear_error(results: dict[str, Any]) -> None:
    event = results["device:gpu"]
    if event["event"] == "result":               # a GPU machine: it must say it used it
        assert "GPU" in event["probe"]["device"]
    else:
        assert event["kind"] == "device" and "no GPU" in event["message"]


def test_weights_only_file_is_not_run(results: dict[str, Any]) -> None:
    event = results["weights-only"]
    assert event["event"] == "error" and event["kind"] == "unsupported"


def test_probe_findings_link_to_static_findings(results: dict[str, Any]) -> None:
    from inspector.run.pipeline import analyze_static

    path = PROBE / "collapsed_softmax1.keras"
    report = analyze_static(path, Options())
    report.probe = results["broken:collapsed_softmax1"]["probe"]
    report.add_findings(probe_findings(report, Options()))
    collapsed = next(f for f in report.findings if f.rule == "output-collapsed")
    static = next(f for f in report.findings if f.rule == "softmax-single-unit")
    assert collapsed.source == "probe" and collapsed.code == "KIN100"
    assert static.confirmation == "confirmed" and "output-collapsed" in static.related
    assert "softmax-single-unit" in collapsed.related
    assert collapsed.layer == static.layer


def test_unloadable_files_fail_with_both_loaders_named(results: dict[str, Any]) -> None:
    for rel, needle in UNLOADABLE.items():
        event = results.get(f"unloadable:{rel}")
        if event is None:
            continue
        assert event["event"] == "error" and event["kind"] == "load", event
        assert "Keras 3" in event["message"] and "tf_keras" in event["message"]
        assert needle in event["message"]


def test_token_inputs_stay_inside_the_vocabulary(results: dict[str, Any]) -> None:
    event = results.get("tokens:rnn")
    if event is None:
        pytest.fail("fixtures/models/rnn/k3.keras is missing")
    probe = event["probe"]
    (spec,) = probe["inputs"]
    assert spec["dtype"].startswith("int") and spec["vocab"] == 50
    assert spec["lowest_id"] == 1                      # mask_zero: no padding mid-sequence
    assert list(probe["distributions"]) == ["token_ids"]
    assert probe["verdict"]["scale_sensitive"] is False


# ----------------------------------------------------------------------------- issue 11:
# verdicts right without --inputs, one headline diagnosis, no noise


RANGE_STEMS = sorted(EXPECTED.get("input_range", {}))


@pytest.mark.parametrize("stem", RANGE_STEMS)
def test_input_range_is_inferred_from_the_file(results: dict[str, Any], stem: str) -> None:
    """The range the verdicts are judged on comes from the file and says why."""
    rng = results[f"broken:{stem}"]["probe"]["input_range"]
    assert rng["name"] == EXPECTED["input_range"][stem], rng
    assert rng["reason"] and isinstance(rng["low"], float) and isinstance(rng["high"], float)
    assert rng["low"] < rng["high"] and rng["label"]


@pytest.mark.parametrize("stem", RANGE_STEMS)
def test_verdicts_without_inputs_are_exact(results: dict[str, Any], stem: str) -> None:
    """No extra verdict either: a collapsed model is not also "scale-sensitive" because its
    head wakes up on 0..255 noise, a healthy tabular or linear model raises nothing."""
    for prefix in ("broken", "big"):
        raised = _raised(results[f"{prefix}:{stem}"])
        assert raised == set(EXPECTED["verdicts"][stem]), (prefix, raised)


def _report_for(results: dict[str, Any], case: str, path: Path) -> Report:
    from inspector.run.pipeline import analyze_static

    report = analyze_static(path, Options())
    report.probe = results[case]["probe"]
    report.add_findings(probe_findings(report, Options()))
    return report


@pytest.mark.parametrize("stem", sorted(EXPECTED.get("cause", {})))
def test_headline_diagnosis_names_the_cause(results: dict[str, Any], stem: str) -> None:
    report = _report_for(results, f"broken:{stem}", PROBE / f"{stem}.keras")
    diagnosis = report.to_dict()["diagnosis"]
    cause = EXPECTED["cause"][stem]
    assert diagnosis is not None and "None" not in diagnosis["summary"], diagnosis
    if cause is None:
        assert diagnosis["summary"].startswith("the probe saw no problem"), diagnosis
        return
    assert diagnosis["cause_rule"] == cause, diagnosis
    assert diagnosis["summary"].startswith("predicts class"), diagnosis
    assert "[0,1] inputs" in diagnosis["summary"], diagnosis
    static = next(f for f in report.findings if f.rule == cause)
    assert static.confirmation == "confirmed"
    assert diagnosis["layer"] == static.layer
    if cause == "dropout-rate-high":
        assert diagnosis["layer"].endswith("/head_dropout")
    assert not any(f.rule == "input-scale-sensitive" for f in report.findings)


def test_collapse_layer_confirms_the_static_finding_on_it(results: dict[str, Any]) -> None:
    report = _report_for(results, "broken:collapsed_dead_relu",
                         PROBE / "collapsed_dead_relu.keras")
    diagnosis = report.diagnosis
    assert diagnosis is not None and diagnosis["layer"] == report.probe.collapse_layer
    assert "variation dies at `model/fc`" in diagnosis["summary"]
    assert diagnosis["confidence"] in ("high", "medium")


def _labelled_cases() -> list[tuple[str, set[str]]]:
    cases = [(f"{p}:{stem}", set(v)) for stem, v in EXPECTED["verdicts"].items()
             for p in ("broken", "big")]
    cases += [(f"healthy:{p.relative_to(MODELS)}", set()) for p in _healthy()]
    cases += [(f"big-healthy:{p.relative_to(MODELS)}", set()) for p in _healthy()
              if p.name == "k3.keras"]
    return cases


@pytest.mark.parametrize("case", ["real:td_mobilenet", "broken:healthy_colour_gap_cnn",
                                  "big:healthy_colour_gap_cnn", "broken:healthy_level_gap_conv1d"])
def test_global_statistic_models_respond_on_their_own_range(results: dict[str, Any],
                                                            case: str) -> None:
    """Models whose signal is a mean over many pixels or steps (global pooling) see the same
    input in every i.i.d. sample; the structured rows make them answer on their own range:
    not collapsed, and no inference-only collapse (train/infer gap) either."""
    probe = results[case]["probe"]
    own = probe["input_range"]["name"]
    assert own in probe["responsive_distributions"], probe["distributions"][own]
    assert not probe["distributions"][own]["collapsed"]
    assert not probe["verdict"]["collapsed"] and not probe["verdict"]["train_infer_gap"]


def test_verdict_accuracy_over_the_labelled_set(results: dict[str, Any]) -> None:
    """Exact verdict sets (nothing missing, nothing extra) on >= 98 % of the labelled cases."""
    cases = _labelled_cases()
    wrong = [(name, _raised(results[name]), want) for name, want in cases
             if results[name]["event"] != "result" or _raised(results[name]) != want]
    accuracy = 1 - len(wrong) / len(cases)
    assert accuracy >= 0.98, (f"{accuracy:.1%} of {len(cases)}", wrong)


def test_no_probe_message_prints_none(results: dict[str, Any]) -> None:
    """Every probe finding and diagnosis on every labelled case reads without a None."""
    for name, _want in _labelled_cases():
        probe = results[name]["probe"]
        path = (PROBE / f"{name.split(':', 1)[1]}.keras" if name.startswith(("broken", "big:"))
                else MODELS / name.split(":", 1)[1])
        report = Report(graph=open_model(path), probe=probe)
        report.add_findings(probe_findings(report, Options()))
        for f in report.findings:
            assert "None" not in f.message, (name, f.message)
        diagnosis = report.diagnosis
        assert diagnosis is None or "None" not in diagnosis["summary"], (name, diagnosis)


def test_gap_entries_never_contradict_the_verdict(results: dict[str, Any]) -> None:
    """A range whose entry says inference collapses while training varies is a gap."""
    for name, _want in _labelled_cases():
        gap = results[name]["probe"]["checks"]["train_infer_gap"]
        for entry in (gap.get("per_distribution") or {}).values():
            if entry.get("inference_collapsed_training_varies"):
                assert gap["train_infer_gap"] is True, (name, gap)


# ----------------------------------------------------------------------------- issue 11:
# inputs random ranges cannot feed as they are (fixtures/probe_inputs_fixtures.py)


def test_each_embedding_input_gets_its_own_vocabulary(results: dict[str, Any]) -> None:
    probe = results["broken:embedding_two_vocabs"]["probe"]
    assert [(s["name"], s["vocab"], s["token_ids"]) for s in probe["inputs"]] == [
        ("words", 500, True), ("category", 4, True)]
    assert probe["range_errors"] == {}


def test_float_input_feeding_an_embedding_gets_token_ids(results: dict[str, Any]) -> None:
    """Keras' default Input dtype is float32: 0..255 noise there is out-of-vocabulary ids."""
    for prefix in ("broken", "big"):
        probe = results[f"{prefix}:embedding_float_ids"]["probe"]
        (spec,) = probe["inputs"]
        assert spec["dtype"] == "float32" and spec["token_ids"] and spec["vocab"] == 40
        assert list(probe["distributions"]) == ["token_ids"] and probe["range_errors"] == {}


@pytest.mark.parametrize("case", ["broken:stateful_rnn", "big:stateful_rnn", "stateful:k2"])
def test_stateful_rnn_is_called_with_its_batch_size(results: dict[str, Any], case: str) -> None:
    """batch_shape (Keras 3) / batch_input_shape (Keras 2) fix the batch at 4; state reset
    before every call keeps repeated calls equal (not "nondeterministic")."""
    event = results[case]
    assert event["event"] == "result", event
    probe = event["probe"]
    assert probe["fixed_batch"] == 4 and probe["inputs"][0]["shape"][0] == 4
    assert _raised(event) == set()
    checks = probe["checks"]
    assert "error" not in checks["batch_dependence"] and "error" not in checks["layers"]
    assert checks["nondeterminism"]["call_max_rel_diff"] <= checks["nondeterminism"]["threshold"]
    assert checks["layers"]["record_errors"] == []
    assert all(d["outputs"][0]["shape"][0] == SAMPLES for d in probe["distributions"].values())


def test_real_inputs_missing_the_trailing_axis_are_reshaped(results: dict[str, Any]) -> None:
    probe = results["broken:trailing_axis_conv1d"]["probe"]
    real = probe["real_inputs"]
    assert real["shapes"] == [[32, 20, 1]] and probe["outputs_from"] == "real_inputs"
    assert any("(32, 20) reshaped to (32, 20, 1)" in note for note in real["notes"])


def test_a_failing_random_range_does_not_stop_the_real_input_pass(
        results: dict[str, Any]) -> None:
    """An Embedding inside a nested model behind a float32 Input: random 0..255 floats are
    out-of-vocabulary ids and that range fails (on CPU; GPU gathers return zeros); the error
    keeps TensorFlow's last line, and the real inputs still give the verdicts."""
    probe = results["broken:nested_embedding_float"]["probe"]
    assert probe["outputs_from"] == "real_inputs" and not probe["real_inputs"]["collapsed"]
    errors = probe["range_errors"]
    if probe["device"].endswith("CPU:0"):
        assert "uniform0_255" in errors and "uniform0_255" not in probe["distributions"]
        assert errors["uniform0_255"].endswith("is not in [0, 40)"), errors

