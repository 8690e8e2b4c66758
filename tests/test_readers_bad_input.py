"""Every bad input of issue 2 ends in a KinspectError (never a raw exception), quickly."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from inspector.errors import ErrorKind, KinspectError
from inspector.readers import open_model

MODELS = Path(__file__).resolve().parent.parent / "fixtures" / "models"


def _expect(path: Path, kind: ErrorKind | None = None) -> KinspectError:
    with pytest.raises(KinspectError) as info:
        open_model(path)
    err = info.value
    assert err.path == str(path)
    assert "\n" not in err.one_line()
    if kind is not None:
        assert err.kind == kind, err.message
    return err


def test_missing_path(tmp_path: Path) -> None:
    _expect(tmp_path / "nope.h5", ErrorKind.NOT_FOUND)


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.keras"
    p.write_bytes(b"")
    _expect(p, ErrorKind.EMPTY)


def test_truncated_hdf5(tmp_path: Path) -> None:
    whole = (MODELS / "mlp" / "k2.h5").read_bytes()
    p = tmp_path / "trunc.h5"
    p.write_bytes(whole[: len(whole) // 3])
    _expect(p, ErrorKind.CORRUPT)


@pytest.mark.parametrize("name", ["model.h5", "model.keras", "model.hdf5"])
def test_random_bytes_with_model_extension(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _expect(p, ErrorKind.CORRUPT)


def test_hdf5_that_is_not_a_keras_model(tmp_path: Path) -> None:
    p = tmp_path / "data.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.arange(10)
        f.attrs["note"] = "not keras"
    _expect(p, ErrorKind.NOT_A_MODEL)


def test_zip_without_config(tmp_path: Path) -> None:
    p = tmp_path / "m.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
    _expect(p, ErrorKind.NOT_A_MODEL)


def test_zip_with_invalid_json(tmp_path: Path) -> None:
    p = tmp_path / "m.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("config.json", "{not json")
        z.writestr("metadata.json", "{}")
    err = _expect(p, ErrorKind.CORRUPT)
    assert "config.json" in err.message


def test_zip_with_non_model_json(tmp_path: Path) -> None:
    p = tmp_path / "m.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("config.json", "[1, 2, 3]")
    _expect(p, ErrorKind.NOT_A_MODEL)


def test_directory_without_saved_model_pb(tmp_path: Path) -> None:
    d = tmp_path / "export"
    d.mkdir()
    (d / "variables").mkdir()
    _expect(d, ErrorKind.NOT_A_MODEL)


def test_text_file_named_model_keras(tmp_path: Path) -> None:
    p = tmp_path / "model.keras"
    p.write_text("this is a text file, not a model\n")
    _expect(p, ErrorKind.CORRUPT)


def test_unsupported_extension(tmp_path: Path) -> None:
    p = tmp_path / "model.onnx"
    p.write_bytes(b"\x08\x07\x12\x04onnx")
    _expect(p, ErrorKind.UNSUPPORTED)


def test_zip_bomb_is_refused_before_reading(tmp_path: Path) -> None:
    p = tmp_path / "bomb.keras"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", b" " * (80 << 20))
    _expect(p, ErrorKind.TOO_LARGE)


def test_model_config_that_is_not_json(tmp_path: Path) -> None:
    p = tmp_path / "m.h5"
    with h5py.File(p, "w") as f:
        f.attrs["model_config"] = "{broken"
    _expect(p, ErrorKind.CORRUPT)


def test_weird_config_structure_is_an_error_not_a_crash(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KINSPECT_STRICT", raising=False)
    p = tmp_path / "m.keras"
    cfg = {"class_name": "Functional", "config": {"layers": "zzz", "input_layers": 5}}
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("config.json", json.dumps(cfg))
    graph = open_model(p)  # not strict: walked generically, nothing to show
    assert graph.layers == []
    monkeypatch.setenv("KINSPECT_STRICT", "1")
    _expect(p, ErrorKind.CORRUPT)


def test_files_are_not_modified() -> None:
    p = MODELS / "cnn_bn" / "k3.keras"
    before = (p.stat().st_mtime_ns, p.read_bytes())
    graph = open_model(p)
    if graph.close:
        graph.close()
    assert (p.stat().st_mtime_ns, p.read_bytes()) == before
    assert os.access(p, os.R_OK)


HANG_SCRIPT = """
import sys
from inspector.errors import KinspectError
from inspector.readers import open_model
try:
    open_model(sys.argv[1])
except KinspectError as e:
    print(e.kind.value, e.message)
"""


def test_corrupt_global_heap_is_refused_instead_of_hanging(tmp_path: Path) -> None:
    """A zero-size free-space object makes libhdf5 loop forever holding the GIL."""
    import subprocess
    import sys

    p = tmp_path / "m.h5"
    with h5py.File(p, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential",
                                              "config": {"name": "s", "layers": []}})
    data = bytearray(p.read_bytes())
    at = data.find(b"GCOL")
    length = int.from_bytes(data[at + 8:at + 16], "little")
    pos = at + 16
    while int.from_bytes(data[pos:pos + 2], "little") != 0:  # walk to the free space
        size = int.from_bytes(data[pos + 8:pos + 16], "little")
        pos += 16 + (size + 7) // 8 * 8
    assert pos < at + length
    data[pos + 8:pos + 16] = bytes(8)
    p.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-c", HANG_SCRIPT, str(p)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("corrupt") and "global heap" in proc.stdout


FUZZ_SCRIPT = """
import random, sys
from pathlib import Path
from inspector.errors import KinspectError
from inspector.readers import open_model
from inspector.stats import StatsCache
rng = random.Random(int(sys.argv[2]))
files = sorted(p for p in Path(sys.argv[1]).glob("*/*") if p.is_file() and p.suffix != ".json")
out = Path(sys.argv[3])
raw = []
for i in range(int(sys.argv[4])):
    src = rng.choice(files)
    data = bytearray(src.read_bytes())
    mode = rng.choice(["flip", "trunc", "zero"])
    if mode == "flip":
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif mode == "trunc":
        data = data[:rng.randrange(len(data))]
    else:
        j = rng.randrange(len(data))
        data[j:j + 512] = bytes(len(data[j:j + 512]))
    target = out / ("x" + src.name)
    target.write_bytes(bytes(data))
    try:
        graph = open_model(target)
        cache = StatsCache()
        for _, w in graph.all_weights():
            cache.get(w)
        if graph.close:
            graph.close()
    except KinspectError:
        pass
    except Exception as exc:
        raw.append(f"{src} {mode}: {type(exc).__name__}: {exc}")
print("\\n".join(raw) or "clean")
"""


def test_mutated_fixtures_never_raise_raw_exceptions(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", FUZZ_SCRIPT, str(MODELS), "7", str(tmp_path),
                           "150"], capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "clean"


def test_lone_saved_model_pb_points_to_the_directory(tmp_path: Path) -> None:
    p = tmp_path / "saved_model.pb"
    p.write_bytes(b"\x08\x01\x12\x00")
    err = _expect(p, ErrorKind.UNSUPPORTED)
    assert "directory" in err.message


def test_lone_surrogates_in_config_become_replacement_chars(tmp_path: Path) -> None:
    p = tmp_path / "m.keras"
    layer = '{"class_name": "Dense", "config": {"name": "d\\ud800", "units": 2, "note": "\\udfff"}}'
    cfg = '{"class_name": "Sequential", "config": {"name": "s", "layers": [' + layer + "]}}"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("config.json", cfg)
    graph = open_model(p)
    node = graph.layers[0]
    assert node.name == "d\ufffd" and node.config["note"] == "\ufffd"
    json.dumps(node.config, ensure_ascii=False).encode("utf-8")
