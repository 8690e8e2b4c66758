"""Container details: weights-only files, link/storage guards, zip variants."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from inspector.readers import open_model
from inspector.readers.safe_io import chunked_attr
from inspector.stats import StatsCache

MODELS = Path(__file__).resolve().parent.parent / "fixtures" / "models"
FAMILIES = sorted(p.name for p in MODELS.iterdir() if p.is_dir()) if MODELS.is_dir() else []


def _weights_only_cases() -> list[object]:
    cases = []
    for fam in FAMILIES:
        for name, ref in (("k3.weights.h5", "reference_k3.json"),
                          ("k2_weights.h5", "reference_k2.json")):
            if (MODELS / fam / name).is_file() and (MODELS / fam / ref).is_file():
                cases.append(pytest.param(MODELS / fam / name, MODELS / fam / ref,
                                          id=f"{fam}/{name}"))
    return cases


@pytest.mark.parametrize(("path", "reference"), _weights_only_cases())
def test_weights_only_files(path: Path, reference: Path) -> None:
    ref = json.loads(reference.read_text())
    graph = open_model(path)
    try:
        assert graph.has_architecture is False and graph.root is None
        assert graph.layers == []
        assert any("weights-only" in n for n in graph.notes)
        shapes = sorted(w.shape for _, w in graph.all_weights())

        def ref_shapes(layers: list[dict]) -> list[tuple[int, ...]]:
            return [tuple(s) for layer in layers for s in layer["weight_shapes"]]
        assert shapes == sorted(ref_shapes(ref["layers"]))
        assert sum(w.size for _, w in graph.all_weights()) == ref["params"]["total"]
        names = [w.name for _, w in graph.all_weights()]
        assert len(set(names)) == len(names)
        if path.name.startswith("k2"):
            expected = sorted(n.split(":")[0].rsplit("/", 1)[-1]
                              for layer in ref["layers"] for n in layer["weights"])
            assert sorted(n.rsplit("/", 1)[-1] for n in names) == expected
        cache = StatsCache()
        assert all(cache.get(w) is not None for _, w in graph.all_weights())
    finally:
        if graph.close:
            graph.close()


def _listed_datasets(f: h5py.File) -> list[str]:
    out = []
    group = f["model_weights"]
    for lname in chunked_attr(group, "layer_names") or []:
        for wname in chunked_attr(group[lname], "weight_names") or []:
            out.append(f"/model_weights/{lname}/{wname}")
    return out


def test_h5_links_and_external_storage_are_flagged_not_followed(tmp_path: Path) -> None:
    src = MODELS / "cnn_bn" / "k2.h5"
    p = tmp_path / "model.h5"
    shutil.copy(src, p)
    other = tmp_path / "secret.bin"
    other.write_bytes(np.arange(1000, dtype=np.float32).tobytes())
    with h5py.File(p, "r+") as f:
        listed = _listed_datasets(f)
        ext_link, soft, ext_store, virtual = listed[:4]
        shapes = {k: f[k].shape for k in (ext_link, soft, ext_store, virtual)}
        for k in (ext_link, soft, ext_store, virtual):
            del f[k]
        f[ext_link] = h5py.ExternalLink(str(other), "/data")
        f[soft] = h5py.SoftLink(listed[-1])
        n = int(np.prod(shapes[ext_store]))
        f.create_dataset(ext_store, shape=shapes[ext_store], dtype="f4",
                         external=[(str(other), 0, n * 4)])
        layout = h5py.VirtualLayout(shape=shapes[virtual], dtype="f4")
        layout[...] = h5py.VirtualSource(str(other), "/data", shape=shapes[virtual])
        f.create_virtual_dataset(virtual, layout)
    graph = open_model(p)
    try:
        kinds = {i.kind for i in graph.container_issues}
        assert kinds == {"hdf5-external-link", "hdf5-soft-link", "hdf5-external-storage",
                         "hdf5-virtual-dataset"}
        assert sum("listed but missing" in n for n in graph.notes) == 2
        cache = StatsCache()
        refused = [w for _, w in graph.all_weights()
                   if w.storage_path in (ext_store, virtual)]
        assert len(refused) == 2
        for w in refused:
            assert cache.get(w) is None and "refused" in (cache.error(w) or "")
    finally:
        if graph.close:
            graph.close()


def test_absurd_dataset_size_is_flagged_and_not_read(tmp_path: Path) -> None:
    p = tmp_path / "w.weights.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("layers/dense/vars/0", shape=(1 << 30, 4), dtype="f4",
                         chunks=(1024, 4), compression="gzip")
        f["layers/dense/vars/1"] = np.zeros(4, np.float32)
    graph = open_model(p)
    try:
        assert [i.kind for i in graph.container_issues] == ["hdf5-oversized-dataset"]
        big = next(w for _, w in graph.all_weights() if w.shape[0] == 1 << 30)
        assert StatsCache().get(big) is None
    finally:
        if graph.close:
            graph.close()


def _rewrite_zip(src: Path, dst: Path, *, compression: int = zipfile.ZIP_STORED,
                 rename_layers: bool = False, extra: dict[str, bytes] | None = None) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compression) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "model.weights.h5" and rename_layers:
                buf = io.BytesIO(data)
                out = io.BytesIO()
                with h5py.File(buf, "r") as fin, h5py.File(out, "w") as fout:
                    for key in fin:
                        target = "_layer_checkpoint_dependencies" if key == "layers" else key
                        fin.copy(fin[key], fout, name=target)
                data = out.getvalue()
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)


@pytest.mark.parametrize("variant", ["deflated", "tf_keras_dependencies"])
def test_keras_zip_variants(tmp_path: Path, variant: str) -> None:
    src = MODELS / "cnn_bn" / "k3.keras"
    p = tmp_path / "m.keras"
    if variant == "deflated":
        _rewrite_zip(src, p, compression=zipfile.ZIP_DEFLATED)
    else:
        _rewrite_zip(src, p, rename_layers=True)
    base = open_model(src)
    graph = open_model(p)
    try:
        assert graph.params.as_dict() == base.params.as_dict()
        assert [(w.name, w.shape) for _, w in graph.all_weights()] == [
            (w.name, w.shape) for _, w in base.all_weights()]
        a, b = StatsCache(), StatsCache()
        for (_, w1), (_, w2) in zip(graph.all_weights(), base.all_weights(), strict=True):
            s1, s2 = a.get(w1), b.get(w2)
            assert s1 is not None and s2 is not None and s1.as_dict() == s2.as_dict()
    finally:
        for g in (graph, base):
            if g.close:
                g.close()


def test_unexpected_zip_members_are_flagged_never_extracted(tmp_path: Path) -> None:
    p = tmp_path / "m.keras"
    _rewrite_zip(MODELS / "mlp" / "k3.keras", p, extra={"../../evil.sh": b"rm -rf /"})
    graph = open_model(p)
    try:
        assert [(i.kind, i.location) for i in graph.container_issues] == [
            ("zip-unexpected-member", "../../evil.sh")]
        assert not (tmp_path.parent / "evil.sh").exists()
    finally:
        if graph.close:
            graph.close()


@pytest.mark.parametrize("family", ["cnn_bn", "mlp", "rnn"])
def test_training_config_is_the_same_in_every_container(family: str) -> None:
    seen = []
    for name in ("k2.h5", "k2.keras", "k3.h5", "k3.keras"):
        graph = open_model(MODELS / family / name)
        try:
            tc = graph.training_config
            assert tc is not None and set(tc) == {"loss", "optimizer", "metrics", "raw"}
            opt = tc["optimizer"]
            seen.append((tc["loss"], opt["class_name"], round(opt["learning_rate"], 6),
                         tc["metrics"]))
        finally:
            if graph.close:
                graph.close()
    assert len(set(map(repr, seen))) == 1, seen
    assert seen[0][3] == ["accuracy"]


def test_hard_link_cycles_are_walked_once(tmp_path: Path) -> None:
    p = tmp_path / "cycle.weights.h5"
    with h5py.File(p, "w") as f:
        group = f.create_group("layers/dense")
        group["vars/0"] = np.zeros((2, 2), np.float32)
        group["vars/1"] = np.zeros(2, np.float32)
        group["loop"] = f["layers"]  # a hard link back to an ancestor
    graph = open_model(p)
    try:
        assert [i.kind for i in graph.container_issues] == ["hdf5-link-cycle"]
        assert [w.name for w in graph.loose_weights] == ["dense/kernel", "dense/bias"]
    finally:
        if graph.close:
            graph.close()


def test_chunked_name_attributes(tmp_path: Path) -> None:
    """Keras splits ``layer_names``/``weight_names`` over 64 KiB into name0, name1..."""
    src = MODELS / "cnn_bn" / "k2.h5"
    p = tmp_path / "chunked.h5"
    shutil.copy(src, p)

    def split(obj: h5py.Group, name: str) -> None:
        values = obj.attrs[name]
        del obj.attrs[name]
        half = max(1, len(values) // 2)
        for i, part in enumerate((values[:half], values[half:])):
            obj.attrs[f"{name}{i}"] = part

    with h5py.File(p, "r+") as f:
        group = f["model_weights"]
        for lname in list(group.attrs["layer_names"]):
            layer = group[lname.decode() if isinstance(lname, bytes) else lname]
            if len(layer.attrs["weight_names"]) > 1:
                split(layer, "weight_names")
        split(group, "layer_names")
    base, graph = open_model(src), open_model(p)
    try:
        assert graph.params.as_dict() == base.params.as_dict()
        assert [(w.name, w.storage_path) for _, w in graph.all_weights()] == [
            (w.name, w.storage_path) for _, w in base.all_weights()]
    finally:
        for g in (graph, base):
            if g.close:
                g.close()


HOSTILE = MODELS.parent / "hostile"


def test_two_layers_at_one_path_are_a_container_issue() -> None:
    """Findings are pinned to layer paths: a layer posing at another's path (a top-level
    Lambda named "base/bn" next to the nested model base holding bn) is reported."""
    graph = open_model(HOSTILE / "diff" / "name_collision.keras")
    try:
        [issue] = [i for i in graph.container_issues if i.kind == "layer-path-collision"]
    finally:
        graph.close()
    assert issue.location == "model/base/bn" and issue.severity == "warning"
    assert "Lambda 'base/bn'" in issue.detail and "BatchNormalization 'bn'" in issue.detail


def test_repeated_names_are_a_path_collision() -> None:
    """The lenient reader (outside KINSPECT_STRICT) keeps both layers of a repeated name."""
    from inspector.graph import LayerNode
    from inspector.readers.graph_facts import path_collisions

    root = LayerNode("model", "model", "Functional", {}, role="model", children=[
        LayerNode("dense", "model/dense", "Dense", {}),
        LayerNode("dense", "model/dense", "Dropout", {})])
    [issue] = path_collisions(root)
    assert issue.detail == "Dropout 'dense' and Dense 'dense' both sit at model/dense"


def test_healthy_families_have_no_path_collision() -> None:
    for path in sorted(MODELS.glob("*/k*.keras")) + sorted(MODELS.glob("*/k*.h5")):
        graph = open_model(path)
        try:
            assert not [i for i in graph.container_issues if i.kind == "layer-path-collision"]
        finally:
            if graph.close is not None:
                graph.close()
