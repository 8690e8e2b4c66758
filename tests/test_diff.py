"""``kinspect diff``: the fixture pairs under fixtures/diff/ (resaves in every format, one
known change each, a Keras 2 -> 3 conversion), the pieces (layer matching, streamed weight
comparison, findings only on one side) and the outputs (text, JSON against the shipped diff
schema, SARIF, exit codes, the TUI view). Static only: the probe comparison has its own tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from helpers import assert_valid_sarif

from inspector.diff.catalog import DIFF_RULES
from inspector.diff.findings_diff import only_in_one_side
from inspector.diff.match import BY_PATH, BY_POSITION, LayerPair, match_layers
from inspector.diff.report import DiffReport, load_diff_schema, to_json, to_sarif, to_text
from inspector.diff.run import diff_files, diff_graphs, probe_findings
from inspector.diff.weight_diff import PrefilledStats, _aligned, diff_weights
from inspector.findings import Finding
from inspector.graph import LayerNode, ModelGraph, WeightInfo
from inspector.options import Options
from inspector.readers import open_model
from inspector.stats import compute_stats

ROOT = Path(__file__).resolve().parent.parent
DIFF = ROOT / "fixtures" / "diff"
sys.path.insert(0, str(ROOT / "fixtures"))
from diff_fixtures import CHANGES  # noqa: E402

STATIC = Options(probe=False)
RESAVES = [("base.keras", "base_resave.keras"), ("base.h5", "base_resave.h5"),
           ("base_k2.h5", "base_k2_resave.h5"),
           ("base_k2_savedmodel", "base_k2_savedmodel_resave")]
# The same weights in another container: no difference expected either.
CROSS_FORMAT = [("base.keras", "base.h5"), ("base_k2.h5", "base_k2_savedmodel"),
                ("base_k2.h5", "k2_converted.keras"), ("k2_converted.keras", "base_k2_savedmodel")]


def _diff(a: str, b: str) -> DiffReport:
    return diff_files(DIFF / a, DIFF / b, STATIC)


@contextlib.contextmanager
def _opened(a: str, b: str) -> Iterator[tuple[ModelGraph, ModelGraph]]:
    """Two fixture models, closed on the way out."""
    graph_a, graph_b = open_model(DIFF / a), open_model(DIFF / b)
    try:
        yield graph_a, graph_b
    finally:
        graph_a.close()
        graph_b.close()


def _pairs(a: str, b: str) -> list[LayerPair]:
    with _opened(a, b) as (graph_a, graph_b):
        return match_layers(graph_a, graph_b)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = load_diff_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _valid(report: DiffReport, validator: jsonschema.Draft202012Validator) -> dict:
    doc = json.loads(to_json(report))
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(doc)]
    assert not errors, errors
    return doc


@pytest.mark.parametrize(("a", "b"), RESAVES + CROSS_FORMAT)
def test_resave_and_conversion_show_no_difference(a: str, b: str, validator) -> None:
    report = _diff(a, b)
    assert report.findings == [], [f.message for f in report.findings]
    assert report.identical
    doc = _valid(report, validator)
    assert doc["weights"]["summary"]["compared"] == 8
    assert doc["weights"]["summary"]["changed"] == 0
    assert all(row["status"] == "same" for row in doc["layers"])
    assert "no differences" in to_text(report)


@pytest.mark.parametrize("stem", sorted(CHANGES))
def test_each_change_is_reported(stem: str, validator) -> None:
    report = _diff("base.keras", f"{stem}.keras")
    rules = {f.rule for f in report.findings}
    assert set(CHANGES[stem]) <= rules, rules
    _valid(report, validator)
    # and the same change against the Keras 2 -> 3 conversion's twin stays the same change
    assert all(f.source == "diff" for f in report.findings)


def test_dropout_change_names_layer_and_values() -> None:
    report = _diff("base.keras", "dropout_changed.keras")
    [f] = report.findings
    assert (f.code, f.layer, f.evidence["key"]) == ("KD201", "model/dropout", "rate")
    assert (f.evidence["a"], f.evidence["b"]) == (0.25, 0.5)
    assert report.exceeds("warning") and not report.exceeds("error")


def test_perturbed_weights_give_per_tensor_figures() -> None:
    report = _diff("base.keras", "weights_perturbed.keras")
    changed = [d for d in report.weights if d.status == "changed"]
    assert [(d.layer, d.name) for d in changed] == [("model/probs", "kernel")]
    with _opened("base.keras", "weights_perturbed.keras") as (a, b):
        ka = a.find("model/probs").weight("kernel").source.read().astype(np.float64)
        kb = b.find("model/probs").weight("kernel").source.read().astype(np.float64)
    assert changed[0].max_abs_diff == pytest.approx(np.abs(kb - ka).max())
    assert changed[0].rel_norm_change == pytest.approx(np.linalg.norm(kb - ka)
                                                       / np.linalg.norm(ka))


def test_bn_reset_is_an_error_and_fails_the_default_gate() -> None:
    report = _diff("base.keras", "bn_reset.keras")
    reset = [f for f in report.findings if f.rule == "bn-stats-reset"]
    assert [f.layer for f in reset] == ["model/base/bn"]
    assert report.exceeds("error")
    # the other direction (B trained, A at init) is training, not a reset
    assert not [f for f in _diff("bn_reset.keras", "base.keras").findings
                if f.rule == "bn-stats-reset"]


def test_bn_stats_missing_in_b() -> None:
    with _opened("base.keras", "base.keras") as (a, b):
        bn = b.find("model/base/bn")
        bn.weights = [w for w in bn.weights if w.name != "moving_variance"]
        report = diff_graphs(a, b, STATIC)
    errors = {(f.rule, f.layer) for f in report.findings if f.severity == "error"}
    assert ("bn-stats-missing", "model/base/bn") in errors
    # the single-file rule of the same name fires on B only: an introduced finding
    introduced = [f for f in report.findings if f.rule == "finding-introduced"]
    assert [f.evidence["finding_rule"] for f in introduced] == ["bn-stats-missing"]
    assert any(f.rule == "weight-missing" for f in report.findings)


def test_renamed_layer_matches_by_class_and_position() -> None:
    pairs = _pairs("base.keras", "renamed_layer.keras")
    by_b = {p.path_b: p for p in pairs}
    assert by_b["model/scores"].path_a == "model/probs"
    assert by_b["model/scores"].how == BY_POSITION and by_b["model/scores"].renamed
    assert by_b["model/base/bn"].how == BY_PATH  # nested paths pair by name
    assert all(p.matched for p in pairs)


def test_added_layer_keeps_file_order() -> None:
    pairs = _pairs("base.keras", "layer_added.keras")
    assert [(p.path_a, p.path_b, p.how) for p in pairs][-3:] == [
        ("model/flatten", "model/flatten", BY_PATH), (None, "model/extra_fc", "added"),
        ("model/probs", "model/probs", BY_PATH)]


def test_optimizer_change_is_a_training_config_change() -> None:
    report = _diff("base.keras", "optimizer_changed.keras")
    [f] = report.findings
    assert f.code == "KD203" and f.evidence["key"] == "optimizer"


# ------------------------------------------------------------------ streamed comparison


class _Chunked:
    """A WeightSource that yields fixed-size chunks and counts reads."""

    def __init__(self, values: np.ndarray, step: int) -> None:
        self.values, self.step, self.reads = values.reshape(-1), step, 0
        self.shape = values.shape

    def read(self) -> np.ndarray:
        self.reads += 1
        return self.values

    def iter_chunks(self, max_elements: int) -> Iterator[np.ndarray]:
        self.reads += 1
        step = min(self.step, max_elements)
        for i in range(0, self.values.size, step):
            yield self.values[i:i + step]


def _graph(name: str, kernel: _Chunked) -> ModelGraph:
    """One Dense layer whose kernel reads from ``kernel``."""
    weights = [WeightInfo("kernel", kernel.shape, "float32", f"{name}:k", kernel)]
    layer = LayerNode("dense", "model/dense", "Dense", {}, weights=weights)
    root = LayerNode("model", "model", "Functional", {}, children=[layer], role="model")
    return ModelGraph(path=name, format="test", root=root)


def test_chunks_are_realigned_and_figures_match_numpy() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(37, 11)).astype("float32")
    b = a.copy()
    b[5, 3] += 0.5
    b[30, 0] = np.nan
    sa, sb = _Chunked(a, 13), _Chunked(b, 17)  # different chunk boundaries
    ga, gb = _graph("a", sa), _graph("b", sb)
    [delta] = diff_weights(match_layers(ga, gb), ga, gb, chunk_elements=50).deltas
    finite = np.isfinite(b)
    d = np.abs(b.astype(np.float64) - a)[finite]
    assert delta.status == "changed"
    assert delta.max_abs_diff == pytest.approx(d.max())
    assert delta.nonfinite_mismatch == 1
    assert delta.mean_abs_diff == pytest.approx(d.sum() / a.size)
    pieces = list(_aligned(iter([np.arange(5), np.arange(5, 9)]),
                           iter([np.arange(3), np.arange(3, 9)])))
    assert [len(x) for x, _ in pieces] == [3, 2, 4]
    assert all((x == y).all() for x, y in pieces)


def test_small_tensors_are_read_once_for_diff_and_stats() -> None:
    a = np.arange(20, dtype="float32")
    sa, sb = _Chunked(a, 100), _Chunked(a + 1, 100)
    ga, gb = _graph("a", sa), _graph("b", sb)
    prefill = PrefilledStats()
    diff_weights(match_layers(ga, gb), ga, gb, stats_a=prefill)
    assert sa.reads == 1
    stats = prefill(sa, chunk_elements=1 << 20)
    assert sa.reads == 1  # handed out, not recomputed
    assert stats == compute_stats(_Chunked(a, 100))
    prefill(sa, chunk_elements=1 << 20)  # a second request computes as usual
    assert sa.reads == 2


def _variants(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pairs that take each path of the comparison: equal bit for bit, equal up to a later
    chunk, different from the start, NaN and Inf on one or both sides."""
    a = rng.normal(size=(50, 7)).astype("float32")
    late = a.copy()
    late[40, 2] += 1.0
    nan_both = a.copy()
    nan_both[3, 3] = np.nan
    inf_b = a.copy()
    inf_b[20, 0] = np.inf
    return {"identical": (a, a.copy()), "late": (a, late), "early": (a, a * 2),
            "nan-both": (nan_both, nan_both.copy()), "inf-b": (a, inf_b)}


@pytest.mark.parametrize("step", [50, 350, 1000])
@pytest.mark.parametrize("name", ["identical", "late", "early", "nan-both", "inf-b"])
def test_streamed_statistics_equal_a_separate_pass(name: str, step: int) -> None:
    """Whatever path a pair takes (one chunk or many; equal, equal in part or not), the
    statistics handed to the rules are those ``compute_stats`` gives, and the figures those
    of numpy."""
    a, b = _variants(np.random.default_rng(1))[name]
    sa, sb = _Chunked(a, step), _Chunked(b, step)
    ga, gb = _graph("a", sa), _graph("b", sb)
    prefill_a, prefill_b = PrefilledStats(), PrefilledStats()
    [delta] = diff_weights(match_layers(ga, gb), ga, gb, chunk_elements=step,
                           stats_a=prefill_a, stats_b=prefill_b).deltas
    for source, prefill, values in ((sa, prefill_a, a), (sb, prefill_b, b)):
        assert prefill(source, chunk_elements=step) == compute_stats(
            _Chunked(values, step), chunk_elements=step)
    both = np.isfinite(a) & np.isfinite(b)
    d = np.abs(b.astype(np.float64) - a)[both]
    assert delta.max_abs_diff == pytest.approx(d.max())
    assert delta.status == ("same" if name in ("identical", "nan-both") else "changed")
    assert delta.nonfinite_mismatch == (1 if name == "inf-b" else 0)


class _Unreadable(_Chunked):
    """A WeightSource whose reads fail (a crafted shape, a broken chunk)."""

    def iter_chunks(self, max_elements: int) -> Iterator[np.ndarray]:
        raise OSError("crafted: cannot read")


def test_a_tensor_that_cannot_be_read_is_never_called_identical() -> None:
    """Two files whose only tensor cannot be read on either side are not 'identical': the
    diff says which tensor it could not compare, and why."""
    values = np.zeros((4, 3), dtype="float32")
    ga, gb = _graph("a", _Unreadable(values, 6)), _graph("b", _Unreadable(values, 6))
    report = diff_graphs(ga, gb, Options(probe=False))
    found = [f for f in report.findings if f.rule == "weight-not-compared"]
    assert [(f.code, f.layer) for f in found] == [("KD307", "model/dense")]
    assert "OSError: crafted: cannot read" in found[0].message
    assert not report.identical and report.to_dict()["identical"] is False
    same = diff_graphs(_graph("a", _Chunked(values, 6)), _graph("b", _Chunked(values, 6)),
                       Options(probe=False))
    assert same.identical


# ------------------------------------------------------------------ findings diff, probe


def _finding(code: str, layer: str | None) -> Finding:
    return Finding(code, f"rule-{code.lower()}", "warning", "m", layer, {}, "h")


def test_findings_only_in_one_side_follow_renamed_layers() -> None:
    pairs = _pairs("base.keras", "renamed_layer.keras")
    fa = [_finding("KIN001", "model/probs"), _finding("KIN002", None),
          _finding("KIN003", "model/dropout")]
    fb = [_finding("KIN001", "model/scores"), _finding("KIN002", None),
          _finding("KIN002", None), _finding("KIN004", "model/pool")]
    only_a, only_b = only_in_one_side(fa, fb, pairs)
    assert [(f.code, f.layer) for f in only_a] == [("KIN003", "model/dropout")]
    assert sorted((f.code, f.layer) for f in only_b) == [("KIN002", None),
                                                          ("KIN004", "model/pool")]


def test_probe_results_become_kd001_and_kd002() -> None:
    probe = {"status": "ok", "tolerance": 1e-4, "outputs": [
        {"name": "probs", "max_abs_diff": 0.3, "mean_abs_diff": 0.1,
         "argmax_agreement": 0.5, "within_tolerance": False},
        {"name": "aux", "max_abs_diff": 0.0, "mean_abs_diff": 0.0,
         "argmax_agreement": 1.0, "within_tolerance": True}],
        "first_divergent_layer": {"path_a": "model/base/bn", "path_b": "model/base/bn",
                                  "max_abs_diff": 2.0, "relative": 0.9}}
    found = probe_findings(probe)
    assert [(f.code, f.severity, f.layer) for f in found] == [
        ("KD001", "error", None), ("KD002", "warning", "model/base/bn")]
    assert "probs" in found[0].message
    assert probe_findings({**probe, "status": "failed"}) == []


def test_catalog_codes_are_unique_and_stable() -> None:
    codes = [r.code for r in DIFF_RULES.values()]
    assert len(codes) == len(set(codes))
    assert DIFF_RULES["outputs-differ"].code == "KD001"
    assert DIFF_RULES["bn-stats-reset"].code == "KD305"


# ------------------------------------------------------------------ outputs and CLI


def test_sarif_lists_the_catalog_and_locates_changes(tmp_path: Path) -> None:
    log = assert_valid_sarif(to_sarif(_diff("base.keras", "layer_added.keras")))
    run = log["runs"][0]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {
        r.code for r in DIFF_RULES.values()}
    results = {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["index"])
               for r in run["results"]}
    assert ("KD101", 1) in results


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inspector", "diff", "--no-probe", *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)


@pytest.mark.parametrize(("b", "extra", "code"), [
    ("base_resave.keras", [], 0),
    ("dropout_changed.keras", [], 0),
    ("dropout_changed.keras", ["--fail-on", "warning"], 1),
    ("bn_reset.keras", [], 1),
    ("bn_reset.keras", ["--exit-zero"], 0),
])
def test_cli_exit_codes(b: str, extra: list[str], code: int) -> None:
    proc = _cli(str(DIFF / "base.keras"), str(DIFF / b), "--format", "text", *extra)
    assert proc.returncode == code, proc.stderr
    assert proc.stdout.startswith("kinspect diff")


def test_cli_json_is_valid_and_says_no_tensorflow(validator) -> None:
    script = ("import sys, json; from inspector.diff.cli import diff_outcome; "
              "from inspector.options import Options; "
              "o = diff_outcome(sys.argv[1], Options(probe=False), 'json', path_b=sys.argv[2]); "
              "print(json.dumps({'text': o.text, 'tf': sorted(m for m in sys.modules "
              "if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))}))")
    proc = subprocess.run([sys.executable, "-c", script, str(DIFF / "base_k2.h5"),
                           str(DIFF / "k2_converted.keras")], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, check=False)
    out = json.loads(proc.stdout)
    assert out["tf"] == []
    doc = json.loads(out["text"])
    assert not list(validator.iter_errors(doc)) and doc["identical"]
    proc = _cli(str(DIFF / "base.keras"), str(DIFF / "bn_reset.keras"), "--json")
    assert proc.returncode == 1
    assert not list(validator.iter_errors(json.loads(proc.stdout)))


@pytest.mark.parametrize("side", [0, 1])
def test_bad_file_on_either_side_is_one_line_exit_2(side: int, tmp_path: Path) -> None:
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip at all")
    paths = [str(DIFF / "base.keras"), str(DIFF / "base.keras")]
    paths[side] = str(bad)
    proc = _cli(*paths, "--format", "json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kinspect: {bad}: "), proc.stderr


def test_cli_usage_errors_exit_2() -> None:
    assert _cli(str(DIFF / "base.keras")).returncode == 2
    assert _cli("a", "b", "--select", "no-such-rule").returncode == 2


# ------------------------------------------------------------------ TUI


def test_tui_marks_changes_side_by_side_and_follows_the_cursor() -> None:
    from inspector.tui.diff_app import DiffApp, DiffTree

    doc = json.loads(to_json(_diff("base.keras", "layer_added.keras")))

    async def run() -> None:
        app = DiffApp(doc)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            left = app.query_one("#tree-a", DiffTree).labels()
            right = app.query_one("#tree-b", DiffTree).labels()
            assert "+ extra_fc Dense" in right and not any("extra_fc" in x for x in left)
            assert any(x.startswith("~ probs") for x in left)
            await pilot.press("n")
            await pilot.pause()
            assert "model/extra_fc" in str(app.query_one("#detail").render())
            await pilot.press("n")
            await pilot.pause()
            detail = str(app.query_one("#detail").render())
            assert "KD304" in detail and "shape-changed" in detail
            tree_a = app.query_one("#tree-a", DiffTree)
            assert doc["layers"][tree_a.cursor_node.data]["path_a"] == "model/probs"

    asyncio.run(run())
