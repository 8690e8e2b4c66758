"""The probe's side of size safety: --inputs, the private model copy, its temp folder, and the
default memory cap. Everything here runs without TensorFlow (the runner test spawns a stand-in
child), so it is fast; the real child's use of these pieces is covered by the probe tests."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inspector.cli import build_parser, options_from_args
from inspector.options import Options, default_probe_memory_mb
from inspector.probe import inputs as inputs_mod
from inspector.probe import runner as runner_mod
from inspector.probe.inputs import InputsError, InputSpec, image_pixels, load_real_inputs
from inspector.probe.private_copy import CopyRefused, private_copy

ROOT = Path(__file__).resolve().parent.parent
SAVEDMODEL = ROOT / "fixtures" / "models" / "mlp" / "k2_savedmodel"
SPEC = [InputSpec("x", [None, 3], "float32")]

# ----------------------------------------------------------------------------- --inputs


def _special(tmp_path: Path, kind: str, name: str) -> Path:
    path = tmp_path / name
    if kind == "dev-zero-link":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["dev-zero-link", "fifo"])
@pytest.mark.parametrize("name", ["x.csv", "x.npy", "x.npz"])
def test_only_regular_files_are_read(kind: str, name: str, tmp_path: Path) -> None:
    """A FIFO would block and /dev/zero never ends: both are refused before any read."""
    path = _special(tmp_path, kind, name)
    with pytest.raises(InputsError, match="not a regular file"):
        load_real_inputs(str(path), SPEC)


def test_a_link_to_a_regular_file_is_fine(tmp_path: Path) -> None:
    (tmp_path / "real.csv").write_text("1,2,3\n4,5,6\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    assert load_real_inputs(str(tmp_path / "link.csv"), SPEC).count == 2


def test_image_folder_entries_must_be_regular_files(tmp_path: Path) -> None:
    _special(tmp_path, "dev-zero-link", "a.png")
    with pytest.raises(InputsError, match="not a regular file"):
        inputs_mod.open_regular(tmp_path / "a.png")


def test_file_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs_mod, "MAX_INPUT_FILE_BYTES", 100)
    path = tmp_path / "big.csv"
    path.write_text("1,2,3\n" * 50)
    with pytest.raises(InputsError, match="over the 100-byte limit"):
        load_real_inputs(str(path), SPEC)


def test_csv_value_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs_mod, "MAX_CSV_VALUES", 30)
    path = tmp_path / "rows.csv"
    path.write_text("1,2,3\n" * 11)
    with pytest.raises(InputsError, match="more than 30 values"):
        load_real_inputs(str(path), SPEC)


def _npz_member(path: Path, header_shape: tuple[int, ...], payload: int,
                declared: int | None = None) -> None:
    """An .npz whose one member's npy header says ``header_shape`` and which really holds
    ``payload`` zero bytes after it; ``declared`` rewrites the zip's uncompressed size."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("x.npy", "w") as out:
        np.lib.format.write_array_header_1_0(
            out, {"descr": "<f4", "fortran_order": False, "shape": header_shape})
        out.write(bytes(payload))
    if declared is not None:
        data = bytearray(path.read_bytes())
        for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            pos = data.find(sig)
            struct.pack_into("<I", data, pos + at, declared)
        path.write_bytes(bytes(data))


def test_npz_bomb_is_refused_by_its_header(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """4 MiB of zeros compress to ~4 KB; the npy header's size is checked before reading."""
    monkeypatch.setattr(inputs_mod, "MAX_INPUT_ARRAY_BYTES", 1 << 20)
    path = tmp_path / "bomb.npz"
    _npz_member(path, ((1 << 20) // 3 + 1, 3), 4 << 20)
    assert path.stat().st_size < 64 << 10
    with pytest.raises(InputsError, match="declares"):
        load_real_inputs(str(path), SPEC)


def test_npz_member_whose_zip_size_lies_stops_at_the_declared_size(tmp_path: Path) -> None:
    """The npy header claims 1200 bytes, the zip header 200: reading stops at 200 (and the
    CRC of what was read no longer matches)."""
    path = tmp_path / "lie.npz"
    _npz_member(path, (100, 3), 1200, declared=200)
    with pytest.raises(InputsError, match=r"declares 1200 bytes|truncated|CRC"):
        load_real_inputs(str(path), SPEC)


def test_npz_and_npy_still_load(tmp_path: Path) -> None:
    values = np.arange(12, dtype="f4").reshape(4, 3)
    np.savez_compressed(tmp_path / "a.npz", x=values)
    np.save(tmp_path / "f.npy", np.asfortranarray(values))
    assert np.array_equal(load_real_inputs(str(tmp_path / "a.npz"), SPEC).arrays[0], values)
    assert np.array_equal(load_real_inputs(str(tmp_path / "f.npy"), SPEC).arrays[0], values)


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([[1, "a", None]], dtype=object), allow_pickle=True)
    with pytest.raises(InputsError, match="pickle"):
        load_real_inputs(str(tmp_path / "o.npy"), SPEC)


def test_image_sizes_come_from_headers() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + struct.pack(">II", 100_000, 100_000)
    gif = b"GIF89a" + struct.pack("<HH", 640, 480)
    bmp = b"BM" + bytes(16) + struct.pack("<ii", 32, -16)
    assert image_pixels(png) == 10**10 > inputs_mod.MAX_IMAGE_PIXELS
    assert image_pixels(gif) == 640 * 480
    assert image_pixels(bmp) == 512
    assert image_pixels(b"not an image") is None


# ----------------------------------------------------------------------------- private copy


@pytest.fixture()
def savedmodel(tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(SAVEDMODEL, dst)
    return dst


def test_a_savedmodel_copies_byte_for_byte(savedmodel: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    copy = private_copy(savedmodel, out)
    files = sorted(p.relative_to(savedmodel) for p in savedmodel.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(copy) for p in copy.rglob("*")
                                     if p.is_file())
    assert all((copy / f).read_bytes() == (savedmodel / f).read_bytes() for f in files)


@pytest.mark.parametrize("hostile", ["dev-zero-link", "fifo", "outside-link", "sparse",
                                     "dir-link"])
def test_hostile_savedmodel_entries_refuse_the_copy(hostile: str, savedmodel: Path,
                                                    tmp_path: Path) -> None:
    where = savedmodel / "variables" / "extra"
    if hostile == "dev-zero-link":
        where.symlink_to("/dev/zero")
    elif hostile == "fifo":
        os.mkfifo(where)
    elif hostile == "outside-link":
        (tmp_path / "secret.txt").write_text("outside")
        where.symlink_to(tmp_path / "secret.txt")
    elif hostile == "sparse":
        with open(where, "wb") as fh:
            fh.truncate(1 << 30)
    elif hostile == "dir-link":
        where.symlink_to(savedmodel)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CopyRefused):
        private_copy(savedmodel, out)
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) == 0


def test_a_link_inside_the_model_is_copied_as_a_file(savedmodel: Path, tmp_path: Path) -> None:
    (savedmodel / "alias.pb").symlink_to(savedmodel / "saved_model.pb")
    out = tmp_path / "out"
    out.mkdir()
    copy = private_copy(savedmodel, out)
    assert not (copy / "alias.pb").is_symlink()
    assert (copy / "alias.pb").read_bytes() == (savedmodel / "saved_model.pb").read_bytes()


def test_copy_size_cap(savedmodel: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CopyRefused, match="limit"):
        private_copy(savedmodel, out, limit=1000)


# ----------------------------------------------------------------------------- temp folder

_STAND_IN = """
import json, pathlib, sys, time
plan = json.load(sys.stdin)
work = pathlib.Path(plan["workdir"]) / "kinspect-probe-child"
work.mkdir()
(work / "model-copy.bin").write_bytes(b"x" * 4096)
print(json.dumps({"event": "stage", "stage": "load", "message": str(work)}), flush=True)
time.sleep(120)
"""


class _StandInRunner(runner_mod.ProbeRunner):
    """The real runner with a child that fills its temp folder and then hangs."""

    def _spawn(self, err: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", _STAND_IN], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)
        with self._lock:
            self._proc = proc
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(self.plan))
        proc.stdin.close()
        return proc


def test_the_parent_removes_the_temp_folder_of_a_killed_child(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    events = list(_StandInRunner({"path": "x"}, timeout=3).events())
    assert events[0]["event"] == "stage" and events[-1]["kind"] == "timeout"
    child_dir = Path(events[0]["message"])
    assert child_dir.name == "kinspect-probe-child"
    assert child_dir.parent.parent == tmp_path
    assert not child_dir.exists() and not child_dir.parent.exists()
    assert list(tmp_path.iterdir()) == []


def test_batch_plans_share_the_parents_folder() -> None:
    plan = runner_mod.with_workdir({"batch": [{"path": "a"}, {"path": "b"}]}, "/w")
    assert [p["workdir"] for p in plan["batch"]] == ["/w", "/w"]


# ----------------------------------------------------------------------------- memory cap


def test_probe_memory_has_a_default_and_zero_turns_it_off() -> None:
    assert Options().probe_memory_mb == default_probe_memory_mb() >= 2048
    parser = build_parser()
    assert options_from_args(parser.parse_args(["m.h5"])).probe_memory_mb == \
        default_probe_memory_mb()
    assert options_from_args(parser.parse_args(["m.h5", "--probe-memory", "0"])
                             ).probe_memory_mb is None
    assert "RLIMIT_DATA" in parser.format_help()


def test_the_cap_limits_allocations_not_address_space() -> None:
    """RLIMIT_DATA: an allocation past the cap fails, a large mapping reserve does not."""
    code = ("import mmap, sys\n"
            "from inspector.probe.child import _limit_memory\n"
            "print(_limit_memory(256))\n"
            "reserve = mmap.mmap(-1, 4 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,"
            " prot=mmap.PROT_NONE) if hasattr(mmap, 'PROT_NONE') else None\n"
            "try:\n    bytearray(512 << 20)\nexcept MemoryError:\n    print('refused')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert "RLIMIT_DATA" in out.stdout and "refused" in out.stdout, out.stderr


def test_sample_count_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A few KB of zero rows would cost a hash and a name per row."""
    monkeypatch.setattr(inputs_mod, "MAX_INPUT_SAMPLES", 10)
    np.save(tmp_path / "rows.npy", np.zeros((11, 3), "f4"))
    with pytest.raises(InputsError, match="11 samples"):
        load_real_inputs(str(tmp_path / "rows.npy"), SPEC)
