"""Layouts real third-party projects ship (fixtures/realfiles_fixtures.py), read as a new user
would: wrapper-held nested models (Keras 2.2.4 to 3), subclassed-model ``.weights.h5``, Keras 3
``export()`` SavedModels and ``.keras`` files that record no backend. Healthy files must read
with every weight on its layer, every shape known and no error finding.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import h5py
import pytest
from test_readers_grid import _check_layer, _has_rule, _shape

from inspector.errors import ErrorKind, KinspectError
from inspector.graph import ModelGraph
from inspector.options import Options
from inspector.readers import detect, open_model
from inspector.report.text import to_text
from inspector.run.pipeline import analyze_static

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
REAL = ROOT / "real"
MODELS = ROOT / "models"
WRAPPED = ("td_mobilenet", "td_nested")
# file -> the reference (what the live Keras model reported) it must match
FILES = {"k3.keras": "k3", "k3.h5": "k3", "k2.h5": "k2", "k2.keras": "k2"}
CRAFTED_K22 = ("k22.h5", "k22_scoped.h5")
# the wrapper case in the formats only it has: crafted Keras 2.2.4 files, a tf_keras SavedModel
EXTRA = (*CRAFTED_K22, "k2_savedmodel")


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINSPECT_STRICT", "1")


def _open(path: Path) -> ModelGraph:
    return open_model(path)


def _close(graph: ModelGraph) -> None:
    if graph.close is not None:
        graph.close()


def _cases() -> list[Any]:
    cases = [pytest.param(case, name, flavor, id=f"{case}/{name}")
             for case in WRAPPED for name, flavor in FILES.items()]
    return [*cases, *(pytest.param("td_mobilenet", name, "k2", id=f"td_mobilenet/{name}")
                      for name in EXTRA)]


@pytest.mark.parametrize(("case", "name", "flavor"), _cases())
def test_wrapped_models_match_keras(case: str, name: str, flavor: str) -> None:
    """Layers, edges, params, weight names and shapes as Keras reported them, down into the
    model a TimeDistributed holds and wrappers inside wrappers."""
    ref = json.loads((REAL / case / f"reference_{flavor}.json").read_text("utf-8"))
    graph = _open(REAL / case / name)
    try:
        assert graph.class_name == ref["class_name"]
        assert graph.params.as_dict() == ref["params"]
        assert [s.shape for s in graph.outputs] == [_shape(o["shape"]) for o in ref["outputs"]]
        assert all(_has_rule(n) for n in graph.layers)
        for node, layer_ref in zip(graph.layers, ref["layers"], strict=True):
            _check_layer(node, layer_ref, name.endswith(".keras"), unknown_upstream=False)
        # stronger than the grid: nothing a wrapper or model holds is left on it, and every
        # layer inside the wrapped model has its shape (the grid checks top-level ones only)
        assert [n.path for n in graph.walk() if n.role in ("wrapper", "model") and n.weights] \
            == []
        assert [n.path for n in graph.walk() if n.output_shape is None and n.role != "cell"] \
            == []
    finally:
        _close(graph)


@pytest.mark.parametrize("name", [*FILES, *EXTRA])
def test_wrapped_mobilenet_batchnorm_has_its_statistics(name: str) -> None:
    """The reported bug: 27 bn-stats-missing errors on a healthy Keras 2.2.4 file, because
    the wrapper's flat weight group (``time_distributed_1/conv1_bn/gamma:0``) was not mapped
    into the MobileNet it wraps."""
    graph = _open(REAL / "td_mobilenet" / name)
    try:
        bns = [n for n in graph.walk() if n.class_name == "BatchNormalization"]
        assert len(bns) == 3
        for bn in bns:
            assert bn.path.startswith("model/time_distributed_1/mobilenet_1.00_16/"), bn.path
            assert sorted(w.name for w in bn.weights) == [
                "beta", "gamma", "moving_mean", "moving_variance"], bn.path
        conv1 = graph.find("model/time_distributed_1/mobilenet_1.00_16/conv1")
        assert conv1 is not None and conv1.output_shape == (None, 8, 8, 8)
        td = graph.find("model/time_distributed_1")
        assert td is not None and td.output_shape == (None, 3, 16)
    finally:
        _close(graph)


def test_crafted_k22_files_have_the_legacy_layout() -> None:
    """The crafted files are what they claim: 2.2.4 version and ``Model`` class names at
    every depth; one names wrapper weights bare, one under the wrapper's scope."""
    for name, first in (("k22.h5", "conv1/kernel:0"),
                        ("k22_scoped.h5", "time_distributed_1/conv1/kernel:0")):
        with h5py.File(REAL / "td_mobilenet" / name, "r") as f:
            assert f.attrs["keras_version"] == b"2.2.4"
            config = json.loads(f.attrs["model_config"])
            names = [n.decode() for n in f["model_weights/time_distributed_1"].attrs[
                "weight_names"]]
        assert config["class_name"] == "Model"
        wrapped = config["config"]["layers"][1]["config"]["layer"]
        assert wrapped["class_name"] == "Model"
        assert names[0] == first


@pytest.mark.parametrize("path", sorted(
    str(p.relative_to(REAL)) for p in REAL.glob("*/*")
    if p.suffix in (".h5", ".keras") or p.name.endswith("savedmodel")))
def test_real_files_get_no_error_or_warning_findings(path: str) -> None:
    report = analyze_static(REAL / path, Options(probe=False))
    try:
        loud = [(f.severity, f.rule, f.layer) for f in report.findings
                if f.severity in ("error", "warning")]
        assert loud == []
        assert report.errors == []
    finally:
        _close(report.graph)


# --------------------------------------------------------------------------- weights only


@pytest.mark.parametrize("name", ["attrs", "seq_blocks"])
def test_subclassed_weights_h5_reads_as_weights_only(name: str) -> None:
    """Keras 3 ``save_weights`` of a subclassed model names groups after attributes
    (``block1/bn/vars/0``, ``block1/layers/conv2d/vars/0``), maybe with no ``layers`` group;
    variable names come from the layer name Keras records on each ``vars`` group."""
    path = REAL / "subclassed" / f"{name}.weights.h5"
    expected = json.loads((REAL / "subclassed" / f"{name}.json").read_text("utf-8"))
    with h5py.File(path, "r") as f:
        assert detect.classify_h5(f) == detect.H5_WEIGHTS_K3
    graph = _open(path)
    try:
        assert graph.format == "keras-weights-h5" and not graph.has_architecture
        mine = sorted((w.name.rsplit("/", 1)[-1], list(w.shape), w.trainable)
                      for w in graph.loose_weights)
        theirs = sorted((v["name"], v["shape"], v["trainable"]) for v in expected)
        assert mine == theirs
        total = sum(_size(v["shape"]) for v in expected)
        frozen = sum(_size(v["shape"]) for v in expected if not v["trainable"])
        assert graph.params.as_dict() == {"total": total, "trainable": total - frozen,
                                          "non_trainable": frozen}
    finally:
        _close(graph)


def test_subclassed_without_layers_group_has_none() -> None:
    """The fixture really has the layout that exited 2 ("not a Keras model")."""
    with h5py.File(REAL / "subclassed" / "seq_blocks.weights.h5", "r") as f:
        assert "layers" not in f and "block1/layers/conv2d/vars/0" in f


def _size(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@pytest.mark.parametrize("case", WRAPPED)
def test_wrapped_model_weights_h5_counts_keras_params(case: str) -> None:
    ref = json.loads((REAL / case / "reference_k3.json").read_text("utf-8"))
    graph = _open(REAL / case / "k3.weights.h5")
    try:
        assert graph.params.as_dict() == ref["params"]
    finally:
        _close(graph)


@pytest.mark.parametrize("layout", ["vars_dataset", "plain_groups"])
def test_hdf5_without_keras_layout_is_still_not_a_model(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        if layout == "vars_dataset":
            f["vars"] = [1.0, 2.0]
        else:
            f.create_group("block1").create_dataset("data", data=[1.0])
    with pytest.raises(KinspectError) as err:
        open_model(path)
    assert err.value.kind is ErrorKind.NOT_A_MODEL


# --------------------------------------------------------------------------- SavedModel


@pytest.mark.parametrize("family", ["mlp", "cnn_bn"])
def test_k3_export_names_and_counts_its_variables(family: str) -> None:
    """Variables by name (``dense/kernel``), not checkpoint key, and Keras' parameter count
    (a Dropout's seed generator state is not a parameter)."""
    ref = json.loads((MODELS / family / "reference_k3.json").read_text("utf-8"))
    report = analyze_static(MODELS / family / "k3_export", Options(probe=False))
    try:
        graph = report.graph
        assert graph.params.as_dict() == ref["params"]
        assert not any(".ATTRIBUTES" in w.name for w in graph.loose_weights)
        text = to_text(report)
        assert "VARIABLE_VALUE" not in text and "params 0 " not in text
        for layer in ref["layers"]:
            for name in layer["weights"]:
                assert f"  {name}  " in text, name
    finally:
        _close(report.graph)


# --------------------------------------------------------------------------- backend


def _rewrite_metadata(src: Path, dst: Path, extra: dict[str, Any]) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "metadata.json":
                data = json.dumps({**json.loads(data), **extra}).encode()
            zout.writestr(info, data)


@pytest.mark.parametrize("path", [REAL / "td_mobilenet" / "k3.keras",
                                  REAL / "td_mobilenet" / "k2.keras",
                                  MODELS / "mlp" / "k3.keras"])
def test_keras_zip_without_a_recorded_backend_omits_it(path: Path) -> None:
    report = analyze_static(path, Options(probe=False))
    try:
        assert report.graph.backend is None
        assert report.to_dict()["model"]["backend"] is None
        header = to_text(report).splitlines()[1:4]
        assert not any("backend" in line for line in header), header
    finally:
        _close(report.graph)


def test_keras_zip_backend_is_read_when_recorded(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    _rewrite_metadata(MODELS / "mlp" / "k3.keras", path, {"backend": "jax"})
    report = analyze_static(path, Options(probe=False))
    try:
        assert report.graph.backend == "jax"
        assert "backend jax" in to_text(report)
    finally:
        _close(report.graph)


def test_h5_backend_still_shown() -> None:
    report = analyze_static(REAL / "td_mobilenet" / "k22.h5", Options(probe=False))
    try:
        assert "backend tensorflow" in to_text(report)
    finally:
        _close(report.graph)
