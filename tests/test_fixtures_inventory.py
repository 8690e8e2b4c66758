"""The committed healthy fixtures exist and their reference JSON has the documented layout.

Reader tests compare against these files, so a missing variant or a malformed reference would
silently shrink what they check. Fast: reads bytes, zip members, JSON and HDF5 attributes only.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import h5py
import pytest

MODELS = Path(__file__).resolve().parent.parent / "fixtures" / "models"
FAMILIES = ("mlp", "cnn_bn", "rnn", "transfer", "multi_io", "shared_layer", "custom_layer")
COMMON_VARIANTS = ("k3.keras", "k3.h5", "k3.weights.h5", "k2.h5", "k2.keras", "k2_weights.h5")
K2_SAVEDMODEL = ("mlp", "cnn_bn", "transfer", "rnn")
K3_EXPORT = ("mlp", "cnn_bn")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

TOP_KEYS = {"class_name", "layer_count", "params", "inputs", "outputs", "layers"}
LAYER_KEYS = {
    "name",
    "class_name",
    "trainable",
    "output_shape",
    "params",
    "weights",
    "weight_shapes",
    "inbound",
    "inbound_refs",
    "via",
    "layers",
}
VIA = {"layers", "layer", "forward_layer", "backward_layer", "cell"}


def _references() -> list[tuple[str, str]]:
    refs = [(family, flavor) for family in FAMILIES for flavor in ("k3", "k2")]
    return [*refs, ("legacy_k22", "k2")]


def _load(family: str, flavor: str) -> dict:
    return json.loads((MODELS / family / f"reference_{flavor}.json").read_text("utf-8"))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", COMMON_VARIANTS)
def test_file_variant_exists_and_has_its_container(family: str, variant: str) -> None:
    path = MODELS / family / variant
    assert path.is_file(), path
    if variant.endswith(".keras"):
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
        assert {"config.json", "metadata.json", "model.weights.h5"} <= names
    else:
        assert path.read_bytes()[:8] == HDF5_MAGIC


@pytest.mark.parametrize("family", K2_SAVEDMODEL)
def test_keras2_savedmodel_has_keras_metadata(family: str) -> None:
    directory = MODELS / family / "k2_savedmodel"
    assert (directory / "saved_model.pb").is_file()
    assert (directory / "keras_metadata.pb").is_file()
    assert (directory / "variables" / "variables.index").is_file()


@pytest.mark.parametrize("family", K3_EXPORT)
def test_keras3_export_has_no_keras_metadata(family: str) -> None:
    directory = MODELS / family / "k3_export"
    assert (directory / "saved_model.pb").is_file()
    assert (directory / "variables" / "variables.index").is_file()
    assert not (directory / "keras_metadata.pb").exists()


def _check_layer(entry: dict, flavor: str, top_level: bool) -> None:
    assert set(entry) == LAYER_KEYS, entry.get("name")
    assert entry["via"] in VIA
    assert (entry["via"] == "layers") or not entry["inbound"]
    if top_level:
        assert entry["via"] == "layers"
        assert entry["inbound"], f"{entry['name']} has no call node in its model"
    assert len(entry["weights"]) == len(entry["weight_shapes"])
    assert len(entry["inbound"]) == len(entry["inbound_refs"])
    for names, refs in zip(entry["inbound"], entry["inbound_refs"], strict=True):
        assert names == [ref[0] for ref in refs]
        assert all(isinstance(i, int) and i >= 0 for ref in refs for i in ref[1:])
    for name in entry["weights"]:
        assert name.endswith(":0") == (flavor == "k2"), name
    for child in entry["layers"]:
        _check_layer(child, flavor, top_level=False)


@pytest.mark.parametrize(("family", "flavor"), _references())
def test_reference_has_documented_layout(family: str, flavor: str) -> None:
    ref = _load(family, flavor)
    assert set(ref) == TOP_KEYS
    assert ref["layer_count"] == len(ref["layers"]) > 0
    params = ref["params"]
    assert set(params) == {"total", "trainable", "non_trainable"}
    assert params["total"] == params["trainable"] + params["non_trainable"] > 0
    assert params["total"] == sum(layer["params"] for layer in ref["layers"])
    for io_entry in ref["inputs"] + ref["outputs"]:
        assert set(io_entry) == {"name", "shape", "dtype"}
        assert io_entry["shape"][0] is None
    assert ref["inputs"] and ref["outputs"]
    for layer in ref["layers"]:
        _check_layer(layer, flavor, top_level=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_keras2_and_keras3_references_agree_on_the_model(family: str) -> None:
    """Same builder, same data: both Keras versions must describe the same architecture."""
    k3, k2 = _load(family, "k3"), _load(family, "k2")
    assert k3["params"] == k2["params"]
    assert [layer["class_name"] for layer in k3["layers"]] == [
        layer["class_name"] for layer in k2["layers"]
    ]
    assert [layer["output_shape"] for layer in k3["layers"]] == [
        layer["output_shape"] for layer in k2["layers"]
    ]


def test_reference_json_is_deterministic_text() -> None:
    for family, flavor in _references():
        path = MODELS / family / f"reference_{flavor}.json"
        text = path.read_text("utf-8")
        assert text == json.dumps(json.loads(text), sort_keys=True, indent=1) + "\n", path


def test_legacy_k22_looks_like_keras_2_2() -> None:
    path = MODELS / "legacy_k22" / "k2.h5"
    with h5py.File(path, "r") as f:
        assert f.attrs["keras_version"] == b"2.2.4"
        config = json.loads(f.attrs["model_config"])
        assert config["class_name"] == "Model"
        weights = f["model_weights"]
        assert "layer_names" not in weights.attrs
        assert {"layer_names0", "layer_names1"} <= set(weights.attrs)
        names = [n.decode() for key in ("layer_names0", "layer_names1") for n in weights.attrs[key]]
        assert names == [layer["name"] for layer in config["config"]["layers"]]
        assert any(
            isinstance(node, list)
            for layer in config["config"]["layers"]
            for node in layer["inbound_nodes"]
        )
        assert "weight_names0" in weights["batch_normalization_1"].attrs
        assert "kernel:0" in weights["dense_1/dense_1"]


def test_healthy_models_fit_the_size_budget() -> None:
    total = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    assert total < 2_500_000, f"fixtures/models is {total / 1e6:.2f} MB"
