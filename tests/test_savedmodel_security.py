"""SavedModels whose code hides from a config-only reading (issue 10, points 1-2 and the
padded .pb): layer records unlike the model config, file/Python ops in the graph or its
function library, and .pb files padded to exhaust memory.

The fixtures come from fixtures/hostile_savedmodel.py. ``test_hostile_savedmodels_are_live``
proves TensorFlow really runs them, so the "no marker appears" checks can fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PEAK_RSS_KIB

from inspector.graph import ModelGraph
from inspector.options import Options
from inspector.probe import child
from inspector.readers import savedmodel
from inspector.readers.savedmodel import read_savedmodel
from inspector.rules.graph_security_rules import dangerous_sites
from inspector.run.gate import skip_reason
from inspector.run.pipeline import analyze_static

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "fixtures" / "hostile" / "savedmodel"
PAYLOAD = ROOT / "fixtures" / "hostile" / "payload"
MODELS = ROOT / "fixtures" / "models"
MARKER_PREFIX = "kinspect-canary-"
MISMATCH, DANGEROUS = "savedmodel-metadata-mismatch", "savedmodel-dangerous-op"
# What each hostile SavedModel must trigger, besides the rule of its class.
EXPECTED = {
    "record_lambda": {MISMATCH, "lambda-layer"},
    "record_modref": {MISMATCH, "untrusted-module-reference"},
    "record_custom": {MISMATCH, "custom-object"},
    "root_record": {MISMATCH, "lambda-layer"},
    "op_write_file": {DANGEROUS},
    "op_save_v2": {DANGEROUS},
    "op_py_function": {DANGEROUS},
    "op_read_file_nested": {DANGEROUS},
    "op_keras_fallback": {DANGEROUS},
}
# Plain tf.Module SavedModels have no layers: the probe skips them whatever they hold (it
# never calls a bare signature of a file without Keras metadata); the others are refused.
PLAIN = frozenset({"op_write_file", "op_save_v2", "op_py_function", "op_read_file_nested"})
# The op each graph fixture must be caught with, and the function it must be found in.
EXPECTED_OP = {"op_write_file": ("WriteFile", "__inference_serve"),
               "op_save_v2": ("SaveV2", "__inference_serve"),
               "op_py_function": ("EagerPyFunc", "__inference_serve"),
               "op_read_file_nested": ("ReadFile", "cond_true"),
               "op_keras_fallback": ("WriteFile", "__inference_serve")}
HEALTHY = sorted(MODELS.glob("*/k2_savedmodel")) + sorted(MODELS.glob("*/k3_export"))


def _markers(*folders: Path) -> list[str]:
    return sorted(p.name for folder in folders for p in folder.iterdir()
                  if p.name.startswith(MARKER_PREFIX))


def _env(marker_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(KINSPECT_CANARY_DIR=str(marker_dir), PYTHONDONTWRITEBYTECODE="1",
               TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, [str(PAYLOAD),
                                                        env.get("PYTHONPATH")])))
    return env


def test_hostile_savedmodel_set_is_complete() -> None:
    assert sorted(p.name for p in HOSTILE.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_static_pass_reports_the_hidden_code(name: str) -> None:
    report = analyze_static(str(HOSTILE / name), Options(probe=False))
    rules = {f.rule for f in report.findings if f.severity == "error" or f.rule in EXPECTED[name]}
    assert EXPECTED[name] <= rules, sorted(rules)
    assert not report.errors, report.errors
    status, reason = skip_reason(report, Options()) or ("ran", "")
    assert status == ("skipped" if name in PLAIN else "refused"), reason
    assert "--trust" in reason or name in PLAIN
    if name.startswith("record_"):
        assert "model/sneaky" in {f.layer for f in report.findings if f.rule == MISMATCH}


@pytest.mark.parametrize("name", sorted(EXPECTED_OP))
def test_graph_ops_are_named_with_their_function(name: str) -> None:
    op, function = EXPECTED_OP[name]
    ops = read_savedmodel(str(HOSTILE / name)).graph_ops
    assert ops is not None and ops.complete
    sites = dangerous_sites(ops)[op]
    assert any((s.function or "").startswith(function) for s in sites), sites
    assert all("serving_default" in s.signatures for s in sites)


@pytest.mark.parametrize("path", HEALTHY, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_healthy_savedmodels_give_no_new_finding(path: Path) -> None:
    graph = read_savedmodel(str(path))
    assert graph.graph_ops is not None and graph.graph_ops.complete
    assert dangerous_sites(graph.graph_ops) == {}
    assert [e.where for e in graph.extra_configs if e.differs] == []
    # The standard saver holds the checkpoint ops, each on its own side.
    parts = {op: {s.part for s in graph.graph_ops.sites[op]} for op in ("SaveV2", "RestoreV2")}
    assert parts == {"SaveV2": {"save"}, "RestoreV2": {"restore"}}
    report = analyze_static(str(path), Options(probe=False))
    assert not {f.rule for f in report.findings} & {MISMATCH, DANGEROUS}
    assert (skip_reason(report, Options()) or ("ran",))[0] != "refused"


def _copy(tmp_path: Path, src: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("name", ["op_keras_fallback", "op_read_file_nested", "record_lambda"])
def test_probe_child_refuses_before_tensorflow_runs_the_graph(tmp_path: Path,
                                                              name: str) -> None:
    """The child's own check (defence in depth) fires before ``tf`` is ever touched."""
    with pytest.raises(child.ProbeError) as err:
        child.load(None, _copy(tmp_path, HOSTILE / name), False, tmp_path, [], None)
    assert err.value.kind == "refused" and "--trust" in str(err.value)
    child.refuse_graph_code(_copy(tmp_path, MODELS / "mlp" / "k3_export"))  # healthy: passes


def test_real_probe_refuses_and_nothing_runs(tmp_path: Path) -> None:
    """``kinspect --json`` (probe on by default) on every hostile SavedModel."""
    markers = tmp_path / "markers"
    markers.mkdir()
    paths = [str(HOSTILE / name) for name in sorted(EXPECTED)]
    done = subprocess.run([sys.executable, "-m", "inspector", "--json", "--probe-timeout",
                           "120", *paths], capture_output=True, text=True, cwd=tmp_path,
                          env=_env(markers), timeout=600, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == len(paths)
    for record, path in zip(records, paths, strict=True):
        expected = "skipped" if Path(path).name in PLAIN else "refused"
        assert record["probe"]["status"] == expected, record["probe"]
    assert _markers(markers, tmp_path) == []


@pytest.mark.tf
@pytest.mark.slow
def test_hostile_savedmodels_are_live(tmp_path: Path) -> None:
    """TensorFlow itself runs the payloads: the refusals above guard something real."""
    pytest.importorskip("tensorflow")
    script = (  # the probe child's old path: tf_keras, else the bare signatures
        "import sys, tensorflow as tf, tf_keras\n"
        "try:\n"
        "    tf_keras.models.load_model(sys.argv[1])\n"
        "    raise SystemExit('tf_keras loaded the fallback fixture')\n"
        "except Exception:\n"
        "    pass\n"
        "fn = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "fn(x=tf.ones([1, 2]))\n"
        "tf_keras.models.load_model(sys.argv[2]).predict(tf.ones([1, 4]), verbose=0)\n"
    )
    markers = tmp_path / "markers"
    markers.mkdir()
    done = subprocess.run([sys.executable, "-c", script, str(HOSTILE / "op_keras_fallback"),
                           str(HOSTILE / "record_lambda")], capture_output=True, text=True,
                          cwd=tmp_path, env=_env(markers), timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _markers(markers, tmp_path) == ["kinspect-canary-lambda",
                                           "kinspect-canary-write_file"]


# ---------------------------------------------------------------- padded and capped files


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _pad(pb: Path, pad: int, inside: int | None = None) -> None:
    """Append an unknown field of ``pad`` zero bytes, at the top level or inside the
    ``inside``-numbered top-level message, and make the file sparse (never written)."""
    from inspector.readers import protowire as pw

    data = pb.read_bytes()
    header = _varint(99 << 3 | 2) + _varint(pad)
    out = bytearray()
    for number, wire, value in pw.iter_fields(data):
        if wire == pw.LEN and number == inside:
            body = bytes(value)
            out += _varint(number << 3 | 2) + _varint(len(body) + len(header) + pad)
            out += body + header
            inside = None
            break  # the padded message ends the file; the pad makes up its tail
        out += _varint(number << 3 | wire) + (
            _varint(len(value)) + bytes(value) if wire == pw.LEN else _varint(value))
    if inside is not None or not out.endswith(header):
        out += header
    pb.write_bytes(bytes(out))
    with open(pb, "r+b") as handle:
        handle.truncate(len(out) + pad)


_PEAK_SCRIPT = f"""
import sys
from inspector.options import Options
from inspector.run.pipeline import inspect_file
report = inspect_file(sys.argv[1], Options(probe=False))
kinds = sorted({{i.kind for i in report.graph.container_issues}})
print({PEAK_RSS_KIB}, ",".join(kinds), len(report.errors))
"""


@pytest.mark.parametrize("where", ["top", "meta_graph", "keras_metadata"])
def test_padded_pb_is_never_read_whole(tmp_path: Path, where: str) -> None:
    """A 1.9 GB unknown field (sparse on disk): skipped by seeking, reported, RSS < 1 GB."""
    model = _copy(tmp_path, MODELS / "mlp" / "k2_savedmodel")
    pad = 1900 << 20
    if where == "keras_metadata":
        _pad(model / "keras_metadata.pb", pad)
    else:
        _pad(model / "saved_model.pb", pad, inside=2 if where == "meta_graph" else None)
    expected = read_savedmodel(str(MODELS / "mlp" / "k2_savedmodel"))
    graph = read_savedmodel(str(model))
    assert graph.signatures == expected.signatures
    assert [n.path for n in graph.walk()] == [n.path for n in expected.walk()]
    assert [i.kind for i in graph.container_issues] == [savedmodel.ISSUE_PADDING]
    done = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(model)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    peak_kb, kinds, errors = done.stdout.split()
    assert int(peak_kb) < 1 << 20, f"peak RSS {int(peak_kb) >> 10} MB"
    assert kinds == savedmodel.ISSUE_PADDING and errors == "0"


def test_read_cap_stops_the_walk_reports_it_and_refuses(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    model = MODELS / "cnn_bn" / "k2_savedmodel"
    pb_size = (model / "saved_model.pb").stat().st_size
    monkeypatch.setattr(savedmodel, "MAX_PB_READ", pb_size // 2)
    graph: ModelGraph = read_savedmodel(str(model))
    assert graph.graph_ops is not None and not graph.graph_ops.complete
    assert savedmodel.ISSUE_READ_CAP in {i.kind for i in graph.container_issues}
    report = analyze_static(str(model), Options(probe=False))
    assert DANGEROUS in {f.rule for f in report.findings}
    assert (skip_reason(report, Options()) or ("",))[0] == "refused"


def test_read_cap_before_any_meta_graph_is_a_clean_error(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from inspector.errors import ErrorKind, KinspectError

    monkeypatch.setattr(savedmodel, "MAX_PB_READ", 64)
    with pytest.raises(KinspectError) as err:
        read_savedmodel(str(MODELS / "mlp" / "k2_savedmodel"))
    assert err.value.kind is ErrorKind.TOO_LARGE
