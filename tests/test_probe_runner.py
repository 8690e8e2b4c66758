"""The parent side of the probe: refusal, skipping, and surviving a child that segfaults,
hangs, exits early or runs out of memory (a test hook makes the child misbehave before it
imports TensorFlow, so these tests are fast); plus the pure-numpy parts of the child."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inspector.findings import Finding
from inspector.graph import LayerNode, ModelGraph, TensorSpec
from inspector.options import Options
from inspector.probe import layer_pass, measure, protocol, runner
from inspector.probe.child import FAULT_ENV
from inspector.probe.inputs import (
    DISTRIBUTIONS,
    InputsError,
    InputSpec,
    distributions_for,
    find_duplicates,
    load_real_inputs,
    random_batch,
)
from inspector.report.model import Report
from inspector.run import gate

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "fixtures" / "models" / "mlp" / "k3.keras"


def _graph(path: Path = MLP) -> ModelGraph:
    root = LayerNode(name="m", path="m", class_name="Functional", config={}, role="model")
    root.children.append(LayerNode(name="lam", path="m/lam", class_name="Lambda", config={}))
    return ModelGraph(path=str(path), format="keras3", root=root,
                      inputs=[TensorSpec("features", (None, 8), "float32")])


def _finding(rule: str, layer: str | None = "m/lam") -> Finding:
    return Finding(code="KIN009", rule=rule, severity="error", message="m", layer=layer,
                   evidence={}, hint="")


def _runner(fault: str, timeout: float = 30.0, **options: Any) -> runner.ProbeRunner:
    plan = runner.build_plan(_graph(), Options(**options))
    env = {**os.environ, FAULT_ENV: fault}
    return runner.ProbeRunner(plan, timeout, env=env)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); /proc tells them apart on Linux
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


# ----------------------------------------------------------------------------- attach_probe


@pytest.mark.parametrize("rule", gate.RISKY_RULES)
def test_refused_without_trust_names_the_layer(rule: str) -> None:
    report = Report(graph=_graph(), findings=[_finding(rule)])
    runner.attach_probe(report, Options())
    assert report.probe is not None
    assert report.probe.status == protocol.STATUS_REFUSED
    assert "m/lam" in report.probe.reason and rule in report.probe.reason
    assert "--trust" in report.probe.reason


def test_trust_lets_a_risky_model_through(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    class Source:
        def events(self) -> Any:
            yield {"event": "stage", "stage": "import", "message": "x"}
            yield {"event": "result", "probe": {"status": "ok", "verdict": {
                k: False for k in protocol.VERDICT_KEYS}}}

        def cancel(self) -> None:
            pass

    report = Report(graph=_graph(), findings=[_finding("lambda-layer")])
    runner.attach_probe(report, Options(trust=True), on_event=seen.append, source=Source())
    assert report.probe is not None and report.probe.status == "ok"
    assert [e["event"] for e in seen] == ["stage", "result"]


def test_skipped_without_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    real = gate.importlib.util.find_spec

    def no_tf(name: str, *args: Any) -> Any:
        return None if name == "tensorflow" else real(name, *args)

    monkeypatch.setattr(gate.importlib.util, "find_spec", no_tf)
    report = Report(graph=_graph())
    runner.attach_probe(report, Options())
    assert report.probe is not None
    assert report.probe.status == "skipped" and report.probe.verdict is None
    assert "TensorFlow is not installed" in report.probe.reason
    assert report.errors == []


def test_tensorflow_check_does_not_import_it() -> None:
    code = ("import sys; from inspector.run.gate import tensorflow_available; "
            "tensorflow_available(); print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_weights_only_graph_is_skipped() -> None:
    graph = _graph()
    graph.has_architecture = False
    report = Report(graph=graph)
    runner.attach_probe(report, Options())
    assert report.probe is not None and report.probe.status == "skipped"


def test_child_failure_becomes_an_errors_entry() -> None:
    report = Report(graph=_graph())
    runner.attach_probe(report, Options(), source=_runner("segfault"))
    assert report.probe is not None and report.probe.status == "failed"
    assert report.errors and report.errors[0]["source"] == "probe"
    assert report.errors[0]["kind"] == "probe-crashed"


# ----------------------------------------------------------------------------- the child dies


def _terminal(source: runner.ProbeRunner) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    events = list(source.events())
    assert events and events[-1]["event"] == "error"
    return events, events[-1]


def test_segfault_is_reported_as_a_crash() -> None:
    _, last = _terminal(_runner("segfault"))
    assert last["kind"] == "crashed" and "SIGSEGV" in last["message"]


def test_exit_without_result_is_reported() -> None:
    events, last = _terminal(_runner("exit"))
    assert last["kind"] == "crashed" and "status 3" in last["message"]
    assert events[0]["event"] == "stage"            # events before the death still arrive


def test_hang_hits_the_timeout_and_the_child_is_killed() -> None:
    source = _runner("hang", timeout=2.0)
    start = time.monotonic()
    _, last = _terminal(source)
    assert last["kind"] == "timeout" and "2 s" in last["message"]
    assert time.monotonic() - start < 15
    assert source._proc is not None and not _alive(source._proc.pid)


def test_cancel_kills_the_child() -> None:
    source = _runner("hang", timeout=120.0)
    got: list[dict[str, Any]] = []

    def consume() -> None:
        got.extend(source.events())

    thread = threading.Thread(target=consume)
    thread.start()
    deadline = time.monotonic() + 30
    while not got and time.monotonic() < deadline:     # wait for the child's first event
        time.sleep(0.05)
    source.cancel()
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert got[-1]["event"] == "error" and got[-1]["kind"] == "cancelled"
    assert source._proc is not None and not _alive(source._proc.pid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is Linux-only")
def test_memory_cap_turns_a_runaway_into_a_memory_error() -> None:
    _, last = _terminal(_runner("oom", probe_memory_mb=1024))
    assert last["kind"] == "memory"


def test_report_status_for_timeout() -> None:
    report = Report(graph=_graph())
    runner.attach_probe(report, Options(), source=_runner("hang", timeout=1.0))
    assert report.probe is not None and report.probe.status == "timeout"
    assert report.errors[0]["kind"] == "probe-timeout"


def test_plan_carries_static_hints() -> None:
    graph = _graph()
    graph.root.children.append(  # type: ignore[union-attr]
        LayerNode(name="emb", path="m/emb", class_name="Embedding", config={"input_dim": 77}))
    plan = runner.build_plan(graph, Options(samples=5, seed=3, device="cpu"))
    assert plan["vocab"] == 77 and plan["inputs"][0]["shape"] == [None, 8]
    assert plan["options"]["samples"] == 5 and plan["options"]["device"] == "cpu"
    json.dumps(plan)


# ----------------------------------------------------------------------------- inputs


def test_random_batches_follow_specs() -> None:
    specs = [InputSpec("img", [None, 4, None, 3], "float32"),
             InputSpec("ids", [None, None], "int32", vocab=10, low=1)]
    assert distributions_for(specs) == DISTRIBUTIONS
    img, ids = random_batch(specs, "uniform0_255", 7, seed=1)
    assert img.shape == (7, 4, 16, 3) and img.dtype == np.float32
    assert img.min() >= 0 and img.max() <= 255 and img.max() > 1
    assert ids.shape == (7, 16) and ids.min() >= 1 and ids.max() < 10
    again = random_batch(specs, "uniform0_255", 7, seed=1)
    assert np.array_equal(again[0], img)
    assert distributions_for([specs[1]]) == ("token_ids",)


def test_real_inputs_shape_mismatch_names_both(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((3, 5), "float32"))
    with pytest.raises(InputsError, match=r"expects shape \(N, 8\), given \(3, 5\)"):
        load_real_inputs(str(tmp_path / "x.npy"), [InputSpec("f", [None, 8], "float32")])


def test_real_inputs_csv_with_header_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n3,4\n1,2\n")
    real = load_real_inputs(str(tmp_path / "x.csv"), [InputSpec("f", [None, 2], "float32")])
    assert real.count == 3 and real.duplicates == [["row 0", "row 2"]]


def test_real_inputs_npz_by_name(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", b=np.ones((2, 3), "float32"), a=np.zeros((2, 4), "float32"))
    specs = [InputSpec("a", [None, 4], "float32"), InputSpec("b", [None, 3], "float32")]
    real = load_real_inputs(str(tmp_path / "x.npz"), specs)
    assert [a.shape for a in real.arrays] == [(2, 4), (2, 3)]


def test_duplicates_need_every_input_equal() -> None:
    a = np.array([[1.0], [1.0], [2.0]])
    b = np.array([[5.0], [6.0], [7.0]])
    assert find_duplicates([a], ["x", "y", "z"]) == [["x", "y"]]
    assert find_duplicates([a, b], ["x", "y", "z"]) == []


# ----------------------------------------------------------------------------- measure


def test_output_collapse_thresholds() -> None:
    rng = np.random.default_rng(0)
    constant = np.tile([[0.2, 0.5, 0.3]], (32, 1))
    varied = rng.dirichlet([1, 1, 1], size=32)
    prior = constant + rng.normal(scale=0.005, size=constant.shape)
    assert measure.output_stats("o", constant)["collapsed"]
    assert measure.output_stats("o", prior)["collapsed"]          # one class, barely moving
    stats = measure.output_stats("o", varied)
    assert not stats["collapsed"] and stats["top_class_fraction"] < 0.9
    regression = 100.0 + rng.normal(size=(32, 1))
    assert not measure.output_stats("o", regression)["collapsed"]
    assert measure.output_stats("o", np.full((32, 1), 7.0))["collapsed"]


def test_an_output_of_only_nan_is_not_judged_collapsed() -> None:
    """All-NaN outputs (graph mode on some CPUs lets a hidden NaN through, others fuse it
    away) are the nan verdict's case, not a collapse; a partly NaN output is still judged
    on its finite values."""
    nan = measure.output_stats("o", np.full((32, 3), np.nan))
    assert not nan["collapsed"] and not nan["probability_like"] and nan["nan"] == 96
    assert not measure.near_collapsed([nan])
    inf = measure.output_stats("o", np.full((32, 1), np.inf))
    assert not inf["collapsed"]
    partly = np.tile([[0.2, 0.5, 0.3]], (32, 1))
    partly[0, 0] = np.nan
    assert measure.output_stats("o", partly)["collapsed"]


def test_layer_stats_dead_units_and_nan() -> None:
    out = np.zeros((16, 4))
    out[:, 0] = np.linspace(0, 1, 16)
    varied_input = (1.0, 0.8)                      # (across-input std, mean |value|)
    row = layer_pass.layer_stats("m/fc", object(), out, varied_input)
    assert row["dead_fraction"] == 0.75 and row["input_varied"] and not row["flat"]
    flat = layer_pass.layer_stats("m/fc", object(), np.zeros((16, 4)), varied_input)
    assert flat["flat"] and layer_pass.collapse_layer([row, flat]) == "m/fc"
    nan = layer_pass.layer_stats("m/fc", object(), np.full((4, 2), np.nan), None)
    assert nan["nan"] == 8 and nan["dead_fraction"] is None and not nan["flat"]


class _FakeLayer:
    """A layer whose ``call`` is looked up on the instance, as Keras layers' are."""

    def __init__(self, fn: Any, activation: Any = None) -> None:
        self.fn, self.activation = fn, activation

    def call(self, x: np.ndarray) -> np.ndarray:
        return self.fn(x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _fake_model() -> list[tuple[str, _FakeLayer]]:
    rng = np.random.default_rng(1)
    w1, w2 = rng.normal(size=(6, 12)), rng.normal(size=(12, 3)) * 8
    return [("m/fc", _FakeLayer(lambda x: np.maximum(x @ w1, 0.0))),
            ("m/dead", _FakeLayer(lambda x: np.maximum(-np.abs(np.nan_to_num(x)) - 1, 0.0))),
            ("m/out", _FakeLayer(lambda x: _sigmoid(x @ w2), activation=_sigmoid))]


def _recorded(layers: list[tuple[str, _FakeLayer]], x: np.ndarray,
              chunk: int) -> layer_pass.LayerRecorder:
    recorder = layer_pass.LayerRecorder(layers, layer_pass.NUMPY_OPS)
    for start in range(0, len(x), chunk):
        with recorder.chunk():
            h = x[start : start + chunk]
            for _, layer in layers[:2]:
                h = layer.call(h)
            layers[2][1].call(layers[0][1].call(x[start : start + chunk]))
    return recorder


def test_chunked_recording_merges_to_the_one_call_rows() -> None:
    layers = _fake_model()
    x = np.random.default_rng(2).normal(size=(13, 6))
    x[5, 2] = np.nan                                  # NaN in one chunk only
    whole = _recorded(layers, x, 13).rows()
    merged = _recorded(layers, x, 4).rows()           # 4 + 4 + 4 + 1 samples
    assert [r["path"] for r in whole] == ["m/fc", "m/dead", "m/fc", "m/out"]
    for a, b in zip(whole, merged, strict=True):
        assert set(a) == set(b)
        for key, value in a.items():
            assert b[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    assert whole[1]["dead_fraction"] == 1.0 and whole[1]["flat"]
    assert whole[0]["nan"] == 12 and whole[0]["dead_fraction"] is None
    assert whole[3]["nan"] == 3 and whole[3]["saturated_fraction"] is None
    assert layer_pass.collapse_layer(whole) == "m/dead"
    assert all("call" not in vars(layer) for _, layer in layers)   # unwrapped afterwards


def test_recording_never_breaks_the_model_call() -> None:
    class Failing(layer_pass.ArrayOps):
        def summarize(self, value: Any) -> layer_pass.Summary | None:
            raise RuntimeError("boom")

    layers = _fake_model()
    recorder = layer_pass.LayerRecorder(layers, Failing())
    with recorder.chunk():
        out = layers[0][1].call(np.ones((2, 6)))
    assert out.shape == (2, 12)
    assert recorder.rows() == [] and recorder.errors == ["m/fc: RuntimeError: boom"]


def test_chunks_that_called_other_layers_are_not_merged() -> None:
    layers = _fake_model()
    recorder = layer_pass.LayerRecorder(layers, layer_pass.NUMPY_OPS)
    with recorder.chunk():
        layers[0][1].call(np.ones((2, 6)))
    with recorder.chunk():
        layers[2][1].call(np.ones((3, 12)))
    assert not recorder.merged()
    assert [(r["path"], r["shape"]) for r in recorder.rows()] == [("m/fc", [2, 12])]


TENSOR_OPS_CHECK = r"""
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
from inspector.probe.layer_pass import NUMPY_OPS, STAT_UNITS
from inspector.probe.tensor_ops import TensorOps
rng = np.random.default_rng(0)
big = rng.normal(size=(3, 40, 40, 7)).astype("float32")       # > STAT_UNITS units
bad = rng.normal(size=(4, 5)).astype("float32")
bad[1, 2], bad[3, 0] = np.nan, np.inf
cases = {"big": big, "bad": bad, "relu": np.maximum(big, 0), "rank1": bad[:, 0].copy(),
         "int": rng.integers(0, 9, size=(4, 3)), "bool": rng.random((4, 3)) > 0.5}
assert big[0].size > STAT_UNITS
ops, diffs = TensorOps(tf), {}
for name, a in cases.items():
    n, t = NUMPY_OPS.summarize(a), ops.summarize(tf.constant(a))
    same = (n.shape == t.shape and n.nan == t.nan and n.inf == t.inf
            and np.allclose(n.sample, t.sample) and n.sample.shape == t.sample.shape)
    if not n.nan and not n.inf:
        same = same and np.allclose(n.col_max, t.col_max) and np.allclose(n.col_min, t.col_min)
    diffs[name] = bool(same)
diffs["string"] = ops.summarize(tf.constant(["a", "b"])) is None
print(json.dumps(diffs))
"""


@pytest.mark.tf
def test_tensor_ops_summaries_equal_numpy_ones() -> None:
    proc = subprocess.run([sys.executable, "-c", TENSOR_OPS_CHECK], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    same = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(same.values()), same


def _weights_h5(kernel: np.ndarray, optimizer: bool = False) -> bytes:
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_dataset("layers/dense/vars/0", data=kernel)
        h5.create_group("vars")
        if optimizer:
            h5.create_dataset("optimizer/vars/0", data=np.arange(3.0))
    return buffer.getvalue()


def _archive(path: Path, config: dict[str, Any], weights: bytes, version: str = "3.15.1") -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": version, "date_saved": str(path)}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights)
    return path


def test_saved_archive_equal_to_the_source_needs_no_reload(tmp_path: Path) -> None:
    """What load_model(compile=False) reads is compared: ids of shared objects, the compile
    config and the optimizer state are not."""
    from inspector.probe.archive_compare import archive_difference

    policy = {"class_name": "DTypePolicy", "config": {"name": "float32"}}
    layers = [{"class_name": "Dense", "config": {"units": 3, "dtype": policy}}]
    shared = [{"class_name": "Dense", "config": {"units": 3, "dtype": {
        **policy, "shared_object_id": 140677}}}]
    config = {"class_name": "Functional", "config": {"layers": shared},
              "compile_config": {"optimizer": "adam"}}
    resaved = {"class_name": "Functional", "config": {"layers": layers}}
    kernel = np.random.default_rng(0).normal(size=(300, 400))      # several read chunks
    source = _archive(tmp_path / "a.keras", config, _weights_h5(kernel, optimizer=True))
    same = _archive(tmp_path / "b.keras", resaved, _weights_h5(kernel))
    assert archive_difference(source, same) is None
    assert archive_difference(same, same) is None                  # byte-identical fast path
    changed = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "Dense", "config": {"units": 4, "dtype": policy}}]}}
    assert archive_difference(source, _archive(tmp_path / "c.keras", changed,
                                               _weights_h5(kernel))) == "config.json changed"
    flipped = kernel.copy()
    flipped[299, 399] = np.nextafter(flipped[299, 399], 0)
    assert archive_difference(source, _archive(tmp_path / "d.keras", resaved,
                                               _weights_h5(flipped))) == "model.weights.h5 changed"
    older = _archive(tmp_path / "e.keras", resaved, _weights_h5(kernel), version="3.0.0")
    assert archive_difference(source, older) == "written by another Keras version"
    (tmp_path / "f.keras").write_bytes(b"not a zip")
    assert archive_difference(source, tmp_path / "f.keras") == "not comparable (BadZipFile)"
