"""Structural classes that real third-party Keras files from PyPI showed and our fixtures missed
(fixtures/real_pypi_classes.py rebuilds them small): a TF <= 2.4 SavedModel whose Keras records
live inside saved_model.pb (basic-pitch), a Keras 2.10 h5 whose activations and loss are
Python lambdas saved by name only (DeepLC), a Keras 2.3 Sequential h5 with no InputLayer
that Keras 3 loads with one input dimension too many (inaSpeechSegmenter), a Keras 2.0/2.1
Sequential whose config is the bare list of its layers (ethnicolr 0.2, shakkala), and a Keras
2.2 h5 with GPU-only CuDNNGRU/CuDNNLSTM layers and a metric function of its own (medaka), Keras
2.0 GRU/Embedding configs tf_keras refuses (shakkala, ethnicolr 0.2), a
sequence model whose free length axis must be longer than the probe's default (SpliceAI,
tempocnn), and outputs pinned to one class with logits that still follow the inputs
(SpliceAI, MHCSeqNet on random inputs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from inspector.graph import ROOT_PATH, ModelGraph
from inspector.options import Options
from inspector.probe.free_length import MAX_SAMPLE_VALUES, fit_free_length
from inspector.probe.inputs import DEFAULT_DIM, InputSpec
from inspector.probe.measure import output_stats
from inspector.readers import open_model
from inspector.readers.keras_config import parse_model_config
from inspector.run.gate import code_evidence
from inspector.run.pipeline import analyze_static
from tests.helpers import findings

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"
TF24 = REAL / "savedmodel_tf24" / "k24_savedmodel"
K2_LAMBDA = REAL / "k2_lambda_activation" / "k2.hdf5"
K23_SEQ = REAL / "k2_seq_batch_input_shape" / "k23.hdf5"
K21_LIST = REAL / "k21_seq_list_config" / "k21.h5"
CUDNN = REAL / "k2_cudnn_rnn" / "k22.hdf5"
MIN_LENGTH = REAL / "k2_min_length" / "k20.h5"
K20_GRU = REAL / "k20_gru_int_embedding" / "k20.h5"


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINSPECT_STRICT", "1")


@pytest.fixture
def graph(request: pytest.FixtureRequest) -> Iterator[ModelGraph]:
    opened = open_model(request.param)
    yield opened
    if opened.close is not None:
        opened.close()


@pytest.mark.parametrize("graph", [TF24], indirect=True)
def test_tf24_savedmodel_reads_its_inline_keras_metadata(graph: ModelGraph) -> None:
    """No keras_metadata.pb, yet tf_keras loads it as a Keras model: so must we."""
    reference = json.loads((TF24.parent / "reference.json").read_text(encoding="utf-8"))
    assert not (TF24 / "keras_metadata.pb").exists()
    assert graph.format == "savedmodel-keras" and graph.has_architecture
    assert graph.root is not None
    assert [c.name for c in graph.root.children] == reference["layers"]
    assert graph.params.total == reference["params"]
    for layer in graph.root.children:
        names = sorted(w.name.rsplit("/", 1)[-1].split(":")[0]
                       for node in layer.walk() for w in node.weights)
        assert names == reference["variables"][layer.name], layer.name
        assert all(w.source is not None for node in layer.walk() for w in node.weights)
    assert not graph.loose_weights
    assert any("saved_model.pb" in note for note in graph.notes)


@pytest.mark.parametrize("graph", [K2_LAMBDA], indirect=True)
def test_unsaved_lambda_is_named_as_such(graph: ModelGraph) -> None:
    """Keras < 2.13 wrote a lambda activation/loss as the bare name "<lambda>": no code is in
    the file, and nothing was registered under that name."""
    found = findings(graph, "custom-object")
    where = sorted((f.layer or "model", f.evidence["kind"]) for f in found)
    assert where == [("model", "loss"), ("model/head/head_dense", "activation"),
                     ("model/hidden", "activation")]
    assert {f.evidence["reason"] for f in found} == {"a lambda that was not saved"}


@pytest.mark.parametrize("graph", [K23_SEQ], indirect=True)
def test_keras23_sequential_input_comes_from_the_first_layer(graph: ModelGraph) -> None:
    """No InputLayer in the config: the input is the first layer's ``batch_input_shape``."""
    assert [t.as_dict() for t in graph.inputs] == [
        {"dtype": "float32", "name": "reshape_input", "shape": [None, 6, 4]}]


@pytest.mark.parametrize("graph", [K21_LIST], indirect=True)
def test_keras21_sequential_list_config_reads(graph: ModelGraph) -> None:
    """Keras <= 2.1 wrote ``{"class_name": "Sequential", "config": [layers...]}``: read it as
    a Sequential of those layers, the input from the first one, every weight on its layer."""
    with h5py.File(K21_LIST, "r") as f:
        assert isinstance(json.loads(f.attrs["model_config"])["config"], list)
    assert graph.format == "keras-h5" and graph.class_name == "Sequential"
    assert graph.root is not None
    assert [c.name for c in graph.root.children] == [
        "embedding_1", "lstm_1", "dropout_1", "dense_1"]
    assert [t.as_dict() for t in graph.inputs] == [
        {"dtype": "float32", "name": "embedding_1_input", "shape": [None, 5]}]
    assert [t.shape for t in graph.outputs] == [(None, 3)]
    # Embedding 20x4, LSTM 4 gates x 6 units x (4 inputs + 6 recurrent + 1 bias), Dense 6x3+3
    assert graph.params.total == 20 * 4 + 4 * 6 * (4 + 6 + 1) + 6 * 3 + 3
    assert not graph.loose_weights and not graph.notes


def test_keras20_nested_list_config_sequential() -> None:
    """The same list form nested in a Keras 2.0 ``Model`` keeps its entry's name."""
    with h5py.File(K21_LIST, "r") as f:
        inner = json.loads(f.attrs["model_config"])
    inner["name"] = "encoder"
    outer = {"class_name": "Model", "config": {
        "name": "outer", "layers": [
            {"class_name": "InputLayer", "name": "tokens", "inbound_nodes": [], "config": {
                "name": "tokens", "batch_input_shape": [None, 5], "dtype": "float32"}},
            {**inner, "inbound_nodes": [[["tokens", 0, 0, {}]]]}],
        "input_layers": [["tokens", 0, 0]], "output_layers": [["encoder", 1, 0]]}}
    root = parse_model_config(outer, root_path=ROOT_PATH)
    encoder = root.children[1]
    assert (encoder.name, encoder.role, encoder.path) == ("encoder", "model", "model/encoder")
    assert [c.name for c in encoder.children] == [
        "embedding_1", "lstm_1", "dropout_1", "dense_1"]
    assert encoder.input_shape == (None, 5)


@pytest.mark.parametrize(("path", "risky"), [
    (CUDNN, []),
    (K2_LAMBDA, [("model/head/head_dense", "activation"), ("model/hidden", "activation")])])
def test_training_config_names_do_not_refuse_the_probe(
        path: Path, risky: list[tuple[str, str]]) -> None:
    """A loss/metric the training config only names (medaka's ``cat_acc``, DeepLC's unsaved
    ``<lambda>`` loss) is still a custom-object finding, but the probe loads with
    compile=False and never looks it up: only layer-level code keeps it off."""
    report = analyze_static(path, Options(probe=False))
    try:
        where = sorted((f.layer or "model", f.evidence["kind"]) for f in report.findings
                       if f.rule == "custom-object")
        assert ("model", "loss" if path == K2_LAMBDA else "metric") in where
        found, unchecked = code_evidence(report, Options())
        assert sorted((f.layer, f.evidence["kind"]) for f in found) == risky
        assert unchecked == []
    finally:
        if report.graph.close is not None:
            report.graph.close()


@pytest.mark.parametrize("graph", [CUDNN], indirect=True)
def test_cudnn_layers_read_with_their_cudnn_weights(graph: ModelGraph) -> None:
    assert [(n.path, n.class_name) for n in graph.walk() if "CuDNN" in n.class_name] == [
        ("model/bidirectional_1/forward_gru", "CuDNNGRU"),
        ("model/bidirectional_1/backward_gru", "CuDNNGRU"), ("model/lstm", "CuDNNLSTM")]
    # cuDNN keeps two bias vectors per gate: GRU 2 x 3 x 5 per direction, LSTM 2 x 4 x 4
    biases = sorted(w.shape for _, w in graph.all_weights() if w.name.endswith("bias"))
    assert biases == [(3,), (30,), (30,), (32,)]
    assert graph.params.total == 2 * (4 * 15 + 5 * 15 + 30) + (10 * 16 + 4 * 16 + 32) + 15
    assert not graph.loose_weights


@pytest.mark.parametrize("graph", [K20_GRU], indirect=True)
def test_keras20_gru_and_int_embedding_read(graph: ModelGraph) -> None:
    """The ids dtype is the input's; the GRU keeps its one bias row (reset_after=False)."""
    assert [t.dtype for t in graph.inputs] == ["int32"]
    assert [(w.name, w.shape) for _, w in graph.all_weights() if "bias" in w.name][:1] == [
        ("bias", (18,))]
    assert graph.params.total == 20 * 4 + 3 * (4 * 6 + 6 * 6 + 6) + 6 * 3 + 3


@pytest.mark.tf
@pytest.mark.parametrize(("path", "replaced", "classes"), [
    (CUDNN, {"CuDNNGRU", "CuDNNLSTM"}, ["Bidirectional", "LSTM", "Dense"]),
    (K20_GRU, {"GRU without reset_after", "Embedding with an integer dtype"},
     ["Embedding", "GRU", "Dense"])])
def test_legacy_stand_ins_compute_what_the_model_did(
        path: Path, replaced: set[str], classes: list[str]) -> None:
    """Layers tf_keras cannot load or run as saved load as their equivalents (CuDNN ones only
    without a GPU): the predictions of the model the file was written from."""
    tf_keras = pytest.importorskip("tf_keras")
    from inspector.probe.legacy_layers import stand_ins

    used: set[str] = set()
    model = tf_keras.models.load_model(str(path), compile=False,
                                       custom_objects=stand_ins(tf_keras, used, gpu=False))
    assert used == replaced
    assert [type(layer).__name__ for layer in model.layers] == classes
    expected = json.loads((path.parent / "reference.json").read_text("utf-8"))["predictions"]
    got = model(np.load(path.parent / "reference_inputs.npy")).numpy()
    assert np.allclose(got, expected, atol=1e-5)


def _probe(path: Path, *extra: str) -> dict[str, Any]:
    """One ``kinspect --json`` run with the probe; its probe section."""
    pytest.importorskip("tensorflow")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "inspector", "--json", "--samples", "16",
                           *extra, str(path)], capture_output=True, text=True, env=env,
                          cwd=REAL.parent.parent, timeout=300)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return dict(json.loads(done.stdout)["probe"])


@pytest.mark.tf
@pytest.mark.xdist_group("probe-tf")
def test_cudnn_model_probes_on_cpu() -> None:
    """medaka's class: refused before (its own metric name) and, once loaded, failed on
    every input (CudnnRNNV3 has no CPU kernel). Now it runs, and the notes say how."""
    probe = _probe(CUDNN, "--device", "cpu")
    assert probe["status"] == "ok", probe["reason"]
    assert probe["loader"] == "tf_keras"
    assert probe["loader_notes"][-1] == (
        "CuDNN layers run on a GPU only (none here): ran CuDNNGRU as GRU(reset_after=True, "
        "recurrent_activation='sigmoid'), CuDNNLSTM as LSTM(recurrent_activation='sigmoid'), "
        "the same computation")
    assert not probe["range_errors"] and not probe["verdict"]["collapsed"]


class _NeedsLength:
    """A model stand-in whose calls fail below ``minimum`` on the free axes."""

    def __init__(self, minimum: int, *shapes: list[int | None]) -> None:
        self.specs = [InputSpec(f"in{i}", list(s), "float32") for i, s in enumerate(shapes)]
        self.minimum = minimum
        self.calls: list[tuple[int, ...]] = []

    def predict(self, arrays: list[Any]) -> list[Any]:
        self.calls.append(arrays[0].shape)
        if any(d < self.minimum for d in arrays[0].shape[1:-1]):
            raise ValueError("cropping must be smaller than the input length")
        return [arrays[0]]


def test_free_length_is_the_smallest_power_of_two_that_runs() -> None:
    model = _NeedsLength(41, [None, None, 4])
    assert fit_free_length(model, 0) == {"length": 64, "tried": [16, 32]}
    assert model.specs[0].concrete() == (64, 4)
    assert model.calls == [(1, 32, 4), (1, 64, 4)]   # one sample a try; 16 already failed


def test_free_length_gives_up_within_the_value_cap() -> None:
    """No length helps (or only one too big to try): specs go back to the default."""
    model = _NeedsLength(10 ** 9, [None, None, None, 3])
    assert fit_free_length(model, 0) is None
    assert model.specs[0].free_dim == DEFAULT_DIM
    assert max(d * d * 3 for _, d, _, _ in model.calls) <= MAX_SAMPLE_VALUES
    assert fit_free_length(_NeedsLength(41, [None, 7, 4]), 0) is None  # no free axis


def test_pinned_probabilities_with_moving_logits_are_not_collapsed() -> None:
    """One class for every random input with probabilities moving < 0.05 was "collapsed";
    SpliceAI says "no splice site" everywhere on random DNA (p ~ 0.999) and MHCSeqNet "binds"
    (p 0.8..1.0) with logits that follow the inputs. A constant answer stays collapsed."""
    rng = np.random.default_rng(0)
    logits = rng.normal(5.0, 1.2, size=(64, 1))
    responsive = output_stats("binds", 1.0 / (1.0 + np.exp(-logits)))
    assert responsive["top_class_fraction"] >= 0.95 and responsive["std_max"] < 0.05
    assert responsive["logit_std_max"] > 1.0 and not responsive["collapsed"]
    flat = output_stats("binds", 1.0 / (1.0 + np.exp(-(5.0 + 0.05 * logits))))
    assert flat["logit_std_max"] < 0.5 and flat["collapsed"]
    # softmax per position: class 0 at logit 7, the other two moving around 0
    z = np.concatenate([np.full((8, 50, 1), 7.0), rng.normal(size=(8, 50, 2))], axis=-1)
    splice = output_stats("splice", np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True))
    assert splice["top_class_fraction"] == 1.0 and splice["std_max"] < 0.05
    assert splice["logit_std_max"] > 1.0 and not splice["collapsed"]


@pytest.mark.tf
@pytest.mark.xdist_group("probe-tf")
def test_short_default_length_is_lengthened() -> None:
    """Every call at the default length fails (Cropping1D needs > 40 positions): the probe
    finds a length that runs and measures there instead of failing."""
    probe = _probe(MIN_LENGTH)
    assert probe["status"] == "ok", probe["reason"]
    assert probe["free_length"]["length"] == 64
    assert "Cropping1D" in probe["free_length"]["reason"]
    assert [i["generated_shape"] for i in probe["inputs"]] == [[64, 4]]


@pytest.fixture(scope="module")
def k23_probe() -> dict[str, Any]:
    """One ``kinspect --json`` run with the probe on the Keras 2.3 Sequential."""
    return _probe(K23_SEQ)


@pytest.mark.tf
@pytest.mark.xdist_group("probe-tf")
def test_keras3_misbuilt_input_falls_back_to_tf_keras(k23_probe: dict[str, Any]) -> None:
    """Keras 3 loads this file without an error but with input (None, None, 6, 4): the probe
    must notice it against the file's (None, 6, 4), say so and run tf_keras' model."""
    assert k23_probe["loader"] == "tf_keras", k23_probe["loader_notes"]
    assert k23_probe["loader_notes"] == [
        "Keras 3 loaded it with input shape (None, None, 6, 4), the file records (None, 6, 4); "
        "using tf_keras"]
    assert k23_probe["status"] == "ok", k23_probe["reason"]
    assert [i["shape"] for i in k23_probe["inputs"]] == [[None, 6, 4]]
    assert not k23_probe["range_errors"]
    assert k23_probe["outputs"][0]["std"] > 0.01 and not k23_probe["verdict"]["collapsed"]
