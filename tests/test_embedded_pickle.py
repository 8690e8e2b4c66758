"""Pickle streams beside the Keras model in HDF5 files: imports listed statically, reads
bounded, links not followed. The fixture files themselves are checked by test_rule_fixtures.

Nothing here unpickles: the streams are parsed with pickletools only, and the os.system one
would run ``true`` at worst.
"""

from __future__ import annotations

import collections
import pickle
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from inspector.readers import open_model, pickle_scan, safe_io
from inspector.readers.pickle_scan import inspect_bytes, pickle_imports, pickle_protocol
from inspector.rules.pickle_rules import dangerous_import

ROOT = Path(__file__).resolve().parent.parent
MLP_H5 = ROOT / "fixtures" / "models" / "mlp" / "k3.h5"


def _s(text: str) -> bytes:
    data = text.encode()
    return pickle.SHORT_BINUNICODE + bytes([len(data)]) + data


def _long_s(text: str) -> bytes:
    data = text.encode()
    return pickle.BINUNICODE + len(data).to_bytes(4, "little") + data


class _Reduce:
    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.fn, self.args


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_pickle_dumps_imports_every_protocol(protocol: int) -> None:
    data = pickle.dumps([collections.OrderedDict(a=1), _Reduce(shutil.rmtree, "x")],
                        protocol=protocol)
    imports, complete, stopped = pickle_imports(data)
    assert pickle_protocol(data) == (protocol if protocol >= 2 else 0)
    assert {"collections.OrderedDict", "shutil.rmtree"} <= set(imports)
    assert complete and stopped is None


def test_global_opcode_protocol0_text() -> None:
    data = b"cos\nsystem\n(S'true'\ntR."
    assert pickle_protocol(data) == 0
    assert pickle_imports(data)[:2] == (["os.system"], True)


def test_stack_global_names_from_the_memo() -> None:
    """The second import reuses "os" through BINGET, as the Pickler memoizes strings."""
    data = (b"\x80\x04" + _s("os") + pickle.MEMOIZE + _s("getcwd") + pickle.MEMOIZE
            + pickle.STACK_GLOBAL + pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.POP
            + pickle.BINGET + b"\x00" + _long_s("system") + pickle.STACK_GLOBAL
            + _long_s("true") + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)
    assert pickle_imports(data)[:2] == (["os.getcwd", "os.system"], True)


def test_binput_and_long_binget_variants() -> None:
    data = (b"\x80\x02" + _long_s("subprocess") + pickle.BINPUT + b"\x07" + pickle.POP
            + pickle.LONG_BINGET + (7).to_bytes(4, "little") + _s("call")
            + pickle.STACK_GLOBAL + pickle.STOP)
    assert pickle_imports(data)[0] == ["subprocess.call"]


def test_names_not_pushed_as_constants_are_computed() -> None:
    data = b"\x80\x04" + pickle.EMPTY_TUPLE + _s("system") + pickle.STACK_GLOBAL + pickle.STOP
    assert pickle_imports(data)[0] == ["<computed>"]
    assert pickle_imports(b"\x80\x02" + pickle.EXT1 + b"\x01" + pickle.STOP)[0] == ["<computed>"]
    assert dangerous_import("<computed>")


def test_truncated_stream_keeps_imports_seen() -> None:
    data = pickle.dumps(_Reduce(shutil.rmtree, "x"), protocol=4)
    imports, complete, stopped = pickle_imports(data[:-3], truncated=True)
    assert imports == ["shutil.rmtree"] and not complete and stopped == "cut at the read cap"
    imports, complete, stopped = pickle_imports(b"\x80\x04\xff\xff")
    assert not complete and stopped is not None and stopped.startswith("malformed")


@pytest.mark.parametrize("data", [b"", b"\x80", b"\x80\x06abc", b'{"a": 1}', b"\x89HDF",
                                  b"cnot a module\n", b"(not a pickle)"])
def test_non_pickles_are_not_sniffed(data: bytes) -> None:
    assert pickle_protocol(data) is None


@pytest.mark.parametrize(("name", "dangerous"), [
    ("os.system", True), ("posix.system", True), ("nt.system", True), ("builtins.eval", True),
    ("builtins.getattr", True), ("__builtin__.exec", True), ("subprocess.Popen", True),
    ("importlib.import_module", True), ("codecs.open", True), ("os.path.join", True),
    ("builtins.set", False), ("functools.partial", False), ("medaka.models.build_model", False),
    ("numpy.core.multiarray._reconstruct", False), ("_codecs.encode", False),
])
def test_dangerous_imports(name: str, dangerous: bool) -> None:
    assert dangerous_import(name) is dangerous


def _copy(tmp_path: Path) -> Path:
    path = tmp_path / "model.h5"
    shutil.copyfile(MLP_H5, path)
    return path


def test_huge_dataset_read_only_up_to_the_cap(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A 100 MB dataset (one chunk written, the rest fill value) is sniffed through its
    first MiB only; the ratio guard is relaxed so the dataset is not refused outright."""
    monkeypatch.setattr(safe_io, "COMPRESSED_RATIO_LIMIT", 1 << 20)
    path = _copy(tmp_path)
    head = pickle.dumps(_Reduce(shutil.rmtree, "x"), protocol=4)[:-1]  # no STOP in reach
    with h5py.File(path, "r+") as f:
        ds = f.create_dataset("samples/registry", shape=(100_000_000,), dtype=np.uint8,
                              chunks=(1 << 20,), compression="gzip")
        ds[:len(head)] = np.frombuffer(head, np.uint8)
    reads: list[int] = []
    real = h5py.Dataset.__getitem__

    def spy(self: h5py.Dataset, key: Any) -> Any:
        value = real(self, key)
        reads.append(int(np.asarray(value).nbytes))
        return value

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    graph = open_model(path)
    graph.close and graph.close()
    (found,) = graph.embedded_pickles
    assert found.location == "/samples/registry" and found.size == 100_000_000
    assert found.imports == ["shutil.rmtree"] and not found.complete
    assert max(reads) <= pickle_scan.MAX_PICKLE_BYTES


def test_external_link_not_followed(tmp_path: Path) -> None:
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["blob"] = np.void(pickle.dumps(_Reduce(shutil.rmtree, "x"), protocol=4))
    path = _copy(tmp_path)
    with h5py.File(path, "r+") as f:
        f["meta/elsewhere"] = h5py.ExternalLink(str(other), "/blob")
    graph = open_model(path)
    graph.close and graph.close()
    assert graph.embedded_pickles == []
    assert [i.kind for i in graph.container_issues] == ["hdf5-external-link"]


def test_object_cap_is_noted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pickle_scan, "MAX_OBJECTS", 3)
    path = _copy(tmp_path)
    with h5py.File(path, "r+") as f:
        for i in range(5):
            f.create_group(f"extra/g{i}")
        f["zz/blob"] = np.void(pickle.dumps({"a": 1}, protocol=2))
    graph = open_model(path)
    graph.close and graph.close()
    assert graph.embedded_pickles == []
    assert "pickle scan stopped after 3 HDF5 objects" in graph.notes


def test_keras_owned_parts_are_not_scanned(tmp_path: Path) -> None:
    """A byte dataset inside model_weights is Keras' (quantized weights may start with 0x80)."""
    path = _copy(tmp_path)
    with h5py.File(path, "r+") as f:
        f["model_weights/extra"] = np.void(pickle.dumps({"a": 1}, protocol=2))
        f.attrs["extra"] = np.void(pickle.dumps({"a": 1}, protocol=2))
    graph = open_model(path)
    graph.close and graph.close()
    assert [(p.location, p.attribute) for p in graph.embedded_pickles] == [("/", "extra")]


def test_old_protocols_kept_only_when_they_parse_and_import() -> None:
    evil = pickle.dumps(_Reduce(shutil.rmtree, "x"), protocol=1)
    found = inspect_bytes(evil, "/meta/x", None, len(evil))
    assert found is not None and found.protocol == 0 and found.imports == ["shutil.rmtree"]
    for text in (b"(a remark ending in a full stop.", pickle.dumps({"a": 1}, protocol=0)):
        assert pickle_protocol(text) == 0 and inspect_bytes(text, "/x", None, len(text)) is None


def test_k3_weights_variables_skipped_but_not_their_group(tmp_path: Path) -> None:
    """Keras 3 variables (vars/0, vars/1...) are never opened; other members of the same
    ``vars`` group are not Keras' and are scanned."""
    path = tmp_path / "model.weights.h5"
    shutil.copyfile(ROOT / "fixtures" / "models" / "mlp" / "k3.weights.h5", path)
    with h5py.File(path, "r+") as f:
        vars_path = next(name for name in _group_names(f) if name.endswith("/vars"))
        f[f"{vars_path}/extra"] = np.void(pickle.dumps({"a": 1}, protocol=2))
    graph = open_model(path)
    graph.close and graph.close()
    assert [p.location for p in graph.embedded_pickles] == [f"/{vars_path}/extra"]


def _group_names(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visit(lambda name: names.append(name) if isinstance(f[name], h5py.Group) else None)
    return names
