"""Structural classes that real third-party Keras files from PyPI showed and our fixtures missed
(fixtures/real_pypi_classes.py rebuilds them small): a TF <= 2.4 SavedModel whose Keras records
live inside saved_model.pb (basic-pitch), and a Keras 2.10 h5 whose activations and loss are
Python lambdas saved by name only (DeepLC).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from inspector.graph import ModelGraph
from inspector.readers import open_model
from tests.helpers import findings

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"
TF24 = REAL / "savedmodel_tf24" / "k24_savedmodel"
K2_LAMBDA = REAL / "k2_lambda_activation" / "k2.hdf5"


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
