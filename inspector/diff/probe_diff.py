"""The probe side of ``kinspect diff``: both models on the same inputs, outputs and layer
outputs compared, and the first layer whose activations diverge.

Each model runs in its own probe child (``mode: activations``, see
inspector/probe/activations.py), one after the other: A makes the inputs (random on A's
inferred input range, as many as the single-file probe draws for one range of the costlier
model, or ``--inputs``) and writes them with its outputs; B gets exactly those arrays. All
files live in one private temp folder, removed whatever happens. Never imports TensorFlow.
The trust gate is the single-file one (``run.gate.skip_reason``) applied to each side: a file
with code is refused without ``--trust`` whichever side it is on.

Layers are paired with the static diff's ``match_layers``; the first divergent layer is the
first pair, in A's execution order, whose max abs difference relative to A's largest
magnitude exceeds the tolerance (a nested model's own output is recorded after its layers,
so the layer that diverged first is named, not the model around it).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from inspector.budget import time_budget
from inspector.diff.match import match_layers
from inspector.errors import KinspectError
from inspector.graph import ModelGraph
from inspector.options import Options
from inspector.probe import protocol
from inspector.probe.child import ACTIVATIONS
from inspector.probe.runner import ProbeRunner, build_plan
from inspector.readers import open_model
from inspector.run.gate import RISKY_RULES, skip_reason
from inspector.run.pipeline import analyze_graph

EventSink = Callable[[dict[str, Any]], None]
DEFAULT_TOLERANCE = 1e-4
EPS = 1e-12
SIDES = ("a", "b")


def tolerances(options: Options) -> tuple[float, float]:
    """(outputs: max abs diff, layers: max abs diff relative to A's peak). ``--tolerance``
    sets both (``options.extra``: "tolerance", "layer_tolerance")."""
    out = _number(options.extra.get("tolerance"), DEFAULT_TOLERANCE)
    return out, _number(options.extra.get("layer_tolerance"), out)


def _number(text: str | None, default: float) -> float:
    try:
        value = float(text) if text is not None else default
    except ValueError:
        return default
    return value if value > 0 and np.isfinite(value) else default


def compare_probes(path_a: str, path_b: str, options: Options,
                   on_event: EventSink | None = None) -> dict[str, Any]:
    """The diff's probe section: status ok / refused / skipped / failed with a reason,
    the inputs used, per-output agreement, per-layer differences, the first divergent
    layer. Never raises on a bad model: a failure is a status with a reason."""
    tolerance, layer_tolerance = tolerances(options)
    section: dict[str, Any] = {"status": protocol.STATUS_OK, "reason": None, "inputs": {},
                               "outputs": [], "tolerance": tolerance,
                               "layer_tolerance": layer_tolerance,
                               "first_divergent_layer": None, "layers": [], "notes": [],
                               "sides": {}}
    graphs: list[ModelGraph] = []
    try:
        for side, path in zip(SIDES, (path_a, path_b), strict=True):
            try:
                with time_budget(options.static_timeout, path):
                    graphs.append(open_model(path))
            except KinspectError as exc:
                return _stop(section, protocol.STATUS_FAILED, f"{side.upper()}: "
                             f"{exc.one_line()}")
            refused = _gate(graphs[-1], options)
            if refused is not None:
                return _stop(section, refused[0], f"{side.upper()} ({path}): {refused[1]}")
        plans = [build_plan(g, options) for g in graphs]
        pairs = _pair_paths(graphs[0], graphs[1])
    finally:
        for g in graphs:
            if g.close is not None:
                g.close()
    workdir = tempfile.mkdtemp(prefix="kinspect-diff-")
    try:
        os.chmod(workdir, stat.S_IRWXU)
        return _run_both(section, plans, pairs, workdir, options, on_event)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _stop(section: dict[str, Any], status: str, reason: str) -> dict[str, Any]:
    section.update(status=status, reason=reason)
    return section


def _gate(graph: ModelGraph, options: Options) -> tuple[str, str] | None:
    """The single-file probe gate on one side: only the rules it reads are run."""
    gate = dataclasses.replace(options, select=list(RISKY_RULES), ignore=None)
    return skip_reason(analyze_graph(graph, gate), gate)


def _pair_paths(graph_a: ModelGraph, graph_b: ModelGraph) -> dict[str, str]:
    """A's layer path -> B's for every matched layer pair."""
    return {p.path_a: p.path_b for p in match_layers(graph_a, graph_b)
            if p.path_a is not None and p.path_b is not None}


def _run_both(section: dict[str, Any], plans: list[dict[str, Any]], pairs: dict[str, str],
              workdir: str, options: Options, on_event: EventSink | None) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    files = [os.path.join(workdir, f"{side}.npz") for side in SIDES]
    given = os.path.join(workdir, "inputs.npz")
    for i, side in enumerate(SIDES):
        plan = {**plans[i], "mode": ACTIVATIONS, "out_file": files[i],
                "options": {**plans[i]["options"], "samples": options.samples}}
        if side == "a":  # A draws the inputs both run: as many as the costlier model allows
            plan["macs_per_sample"] = max(p.get("macs_per_sample") or 0.0 for p in plans) or None
        else:
            plan["inputs_file"] = given
            plan["options"]["inputs"] = None
        started = time.monotonic()
        result, failure = _run_child(plan, options, side, on_event)
        if result is None:
            kind = str(failure.get("kind", "crashed"))
            section["error_kind"] = kind
            return _stop(section, protocol.STATUS_FAILED,
                         f"{side.upper()}: {failure.get('message', 'the probe failed')}")
        results.append(result)
        section["sides"][side] = {
            "path": plans[i]["path"], "loader": result.get("loader"),
            "loader_notes": result.get("loader_notes", []), "device": result.get("device"),
            "seconds": round(time.monotonic() - started, 3),
            "recorded_layers": len(result.get("layers") or []),
            "skipped_layers": result.get("skipped_layers") or []}
        if side == "a":
            try:
                with np.load(files[0], allow_pickle=False) as npz:
                    np.savez(given, **{k: npz[k] for k in npz.files if k.startswith("i")})
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                return _stop(section, protocol.STATUS_FAILED, f"A: unreadable recording: {exc}")
    section["inputs"] = dict(results[0].get("inputs") or {})
    try:
        _compare(section, results, files, pairs)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        return _stop(section, protocol.STATUS_FAILED, f"cannot compare the recordings: {exc}")
    return section


def _compare(section: dict[str, Any], results: list[dict[str, Any]], files: list[str],
             pairs: dict[str, str]) -> None:
    """Fill the outputs, layers and first divergent layer from both children's files."""
    with np.load(files[0], allow_pickle=False) as npz_a, \
            np.load(files[1], allow_pickle=False) as npz_b:
        section["outputs"] = compare_outputs(
            [(o["name"], npz_a[o["key"]]) for o in results[0]["outputs"]],
            [(o["name"], npz_b[o["key"]]) for o in results[1]["outputs"]],
            section["tolerance"], section["notes"])
        layers_b = {m["path"]: m for m in results[1].get("layers") or []}
        rows = []
        for meta_a in results[0].get("layers") or []:
            path_b = pairs.get(meta_a["path"], meta_a["path"] if not pairs else None)
            meta_b = layers_b.get(path_b) if path_b is not None else None
            if meta_b is None:
                continue
            rows.append(compare_layer(meta_a, npz_a[meta_a["key"]], meta_b,
                                      npz_b[meta_b["key"]], section["layer_tolerance"]))
    if not pairs and rows:
        section["notes"].append("no layer tree on one side: layers paired by identical path")
    section["layers"] = rows
    section["first_divergent_layer"] = first_divergent(rows)


def _run_child(plan: dict[str, Any], options: Options, side: str,
               on_event: EventSink | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(result, last error event) of one child; stage and progress events are forwarded
    tagged with the side, progress scaled into A's or B's half of the whole."""
    offset = SIDES.index(side) / len(SIDES)
    result: dict[str, Any] | None = None
    failure: dict[str, Any] = {"kind": "crashed", "message": "the probe ended without a result"}
    for event in ProbeRunner(plan, options.probe_timeout).events():
        kind = event.get("event")
        if kind == protocol.RESULT:
            result = event.get("probe") or {}
        elif kind == protocol.ERROR:
            failure = event
        elif on_event is not None:
            if kind == protocol.PROGRESS:
                fraction = float(event.get("fraction") or 0.0)
                event = {**event, "fraction": round(offset + fraction / len(SIDES), 3)}
            on_event({**event, "side": side})
    return result, failure


# ----------------------------------------------------------------------------- comparison


def _diff(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """|a - b| over the values finite on both sides (0 where both are the same NaN/Inf), and
    how many values are non-finite on one side only or different non-finite values."""
    a = np.asarray(a, dtype="float64")
    b = np.asarray(b, dtype="float64")
    finite = np.isfinite(a) & np.isfinite(b)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    mismatch = int((~finite & ~same).sum())
    return np.where(finite, np.abs(a - b), 0.0), mismatch


def compare_outputs(outs_a: list[tuple[str, np.ndarray]], outs_b: list[tuple[str, np.ndarray]],
                    tolerance: float, notes: list[str]) -> list[dict[str, Any]]:
    """One row per output, paired by position: max / mean abs difference, the fraction of
    positions whose argmax over the last axis agrees (None for one-unit outputs)."""
    if len(outs_a) != len(outs_b):
        notes.append(f"A has {len(outs_a)} outputs, B {len(outs_b)}: the first "
                     f"{min(len(outs_a), len(outs_b))} compared")
    rows = []
    for (name_a, a), (name_b, b) in zip(outs_a, outs_b, strict=False):
        row: dict[str, Any] = {"name": name_a, "name_b": name_b, "shape_a": list(a.shape),
                               "shape_b": list(b.shape), "max_abs_diff": None,
                               "mean_abs_diff": None, "argmax_agreement": None,
                               "nonfinite_mismatch": 0, "within_tolerance": False}
        if a.shape == b.shape:
            d, mismatch = _diff(a, b)
            row.update(max_abs_diff=float(d.max()) if d.size else 0.0,
                       mean_abs_diff=float(d.mean()) if d.size else 0.0,
                       nonfinite_mismatch=mismatch)
            row["argmax_agreement"] = argmax_agreement(a, b)
            row["within_tolerance"] = mismatch == 0 and row["max_abs_diff"] <= tolerance
        rows.append(row)
    return rows


def argmax_agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    """Fraction of samples (and positions, for sequence outputs) with the same argmax over
    the last axis; None when there is no class axis to take it over."""
    if a.ndim < 2 or a.shape[-1] < 2 or a.size == 0:
        return None
    fa = np.nan_to_num(np.asarray(a, "float64"), nan=-np.inf)
    fb = np.nan_to_num(np.asarray(b, "float64"), nan=-np.inf)
    return float((fa.argmax(axis=-1) == fb.argmax(axis=-1)).mean())


def compare_layer(meta_a: dict[str, Any], a: np.ndarray, meta_b: dict[str, Any],
                  b: np.ndarray, tolerance: float) -> dict[str, Any]:
    """One layer pair: max abs difference and that relative to A's largest magnitude;
    ``divergent`` when beyond the tolerance, non-finite on one side only, or reshaped."""
    row: dict[str, Any] = {
        "path_a": meta_a["path"], "path_b": meta_b["path"],
        "class_a": meta_a.get("class_name"), "class_b": meta_b.get("class_name"),
        "shape_a": meta_a.get("shape"), "shape_b": meta_b.get("shape"),
        "samples": min(int(meta_a.get("rows", 0)), int(meta_b.get("rows", 0))),
        "sampled": int(meta_a.get("stride", 1)) > 1, "max_abs_diff": None, "relative": None,
        "nonfinite_mismatch": 0, "divergent": True}
    if meta_a.get("shape") != meta_b.get("shape") or a.shape[1:] != b.shape[1:]:
        return row
    n = min(a.shape[0], b.shape[0])
    d, mismatch = _diff(a[:n], b[:n])
    peak = np.abs(np.asarray(a[:n], "float64"))
    peak = float(peak[np.isfinite(peak)].max()) if np.isfinite(peak).any() else 0.0
    biggest = float(d.max()) if d.size else 0.0
    relative = biggest / (peak + EPS) if biggest else 0.0
    row.update(max_abs_diff=biggest, relative=relative, nonfinite_mismatch=mismatch,
               divergent=mismatch > 0 or relative > tolerance)
    return row


def first_divergent(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first divergent row (rows are in A's execution order)."""
    for row in rows:
        if row["divergent"]:
            return {"path_a": row["path_a"], "path_b": row["path_b"],
                    "max_abs_diff": row["max_abs_diff"], "relative": row["relative"],
                    "nonfinite_mismatch": row["nonfinite_mismatch"],
                    "reason": _why(row)}
    return None


def _why(row: dict[str, Any]) -> str:
    if row["max_abs_diff"] is None:
        return f"output shape {row['shape_a']} in A, {row['shape_b']} in B"
    if row["nonfinite_mismatch"]:
        return f"{row['nonfinite_mismatch']} values NaN/Inf on one side only"
    return f"max abs diff {row['max_abs_diff']:.3g} ({row['relative']:.3g} of A's peak)"
