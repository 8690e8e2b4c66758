"""Structural classes that real third-party Keras files from PyPI showed and our fixtures missed
(fixtures/real_pypi_classes.py rebuilds them small): a TF <= 2.4 SavedModel whose Keras records
live inside saved_model.pb (basic-pitch), a Keras 2.10 h5 whose activations and loss are
Python lambdas saved by name only (DeepLC), and a Keras 2.3 Sequential h5 with no InputLayer
that Keras 3 loads with one input dimension too many (inaSpeechSegmenter).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inspector.graph import ModelGraph
from inspector.readers import open_model
from tests.helpers import findings

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"
TF24 = REAL / "savedmodel_tf24" / "k24_savedmodel"
K2_LAMBDA = REAL / "k2_lambda_activation" / "k2.hdf5"
K23_SEQ = REAL / "k2_seq_batch_input_shape" / "k23.hdf5"


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


@pytest.fixture(scope="module")
def k23_probe() -> dict[str, Any]:
    """One ``kinspect --json`` run with the probe on the Keras 2.3 Sequential."""
    pytest.importorskip("tensorflow")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "inspector", "--json", "--samples", "16",
                           str(K23_SEQ)], capture_output=True, text=True, env=env,
                          cwd=REAL.parent.parent, timeout=300)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return dict(json.loads(done.stdout)["probe"])


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
