"""Child-side measurements: every number in the report's ``probe`` section, and the verdicts.

Works on a loaded model through the small interface ``child.LoadedModel`` gives (graph-mode
``predict``, eager ``call`` with an optional ``training`` flag, the layer walk, a save/reload),
so Keras 3, tf_keras and bare SavedModel signatures are measured by the same code.

Thresholds are chosen to sit between the healthy fixtures and the fixtures trained into each
failure (``fixtures/probe``) with a wide margin; ``tests/test_probe_verdicts.py`` keeps them
honest. They are relative to the output's own scale so regression heads are judged fairly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Protocol

import numpy as np

from inspector.probe.inputs import (
    TOKEN_IDS,
    InputSpec,
    RealInputs,
    distributions_for,
    random_batch,
)
from inspector.probe.layer_pass import (
    FLAT_ABS,
    ArrayOps,
    LayerRecorder,
    collapse_layer,
    finite,
    variation,
)
from inspector.probe.protocol import VERDICT_KEYS

# An output is collapsed when no unit varies across inputs: for probabilities, no unit's std
# exceeds COLLAPSE_PROB_STD (healthy fixtures stay above 3e-2); otherwise every unit's std is
# below COLLAPSE_REL of the output's mean magnitude.
COLLAPSE_PROB_STD = 2e-3
COLLAPSE_REL = 1e-4
# Differences between two runs that should be equal, relative to the output's magnitude.
SAME_REL = 1e-4
# A classifier predicting one class for >= TOP_CLASS_COLLAPSE of inputs with every
# probability moving less than SOFT_PROB_STD is collapsed too (healthy fixtures: >= 0.1;
# a model trained behind Dropout(0.99): <= 0.015).
SOFT_PROB_STD = 0.03
TOP_CLASS_COLLAPSE = 0.95
# Scale sensitivity needs one range where the model clearly works (probabilities moving by
# RESPONSIVE_PROB_STD): a model that barely reacts to random inputs at any scale (global
# pooling over noise) proves nothing about scale.
RESPONSIVE_PROB_STD = 0.1
RESPONSIVE_REL = 1e-2
# Train/infer gap on every range: mean |train - infer| over the spread of both (healthy BN
# fixtures on random inputs: <= 0.6).
GAP_RATIO = 1.5
TRAIN_PASSES = 2
# Batch size of every predict() call: a later predict() of at most this many samples reuses
# the traced function instead of retracing it for a new batch shape (seconds on a ResNet50).
PREDICT_BATCH = 32
BIG_SECONDS_PER_SAMPLE = 0.02   # ResNet50 on 2 CPU cores: ~0.09; an MLP: < 0.01
LAYER_CHUNK = 4
MAX_UNITS_SHOWN = 32

# The collapsed verdict looks at unit-scale ranges: tiny weights of a model that learned
# nothing still move its outputs when inputs are 255x larger; that shows up as scale
# sensitivity instead.
UNIT_SCALE = ("uniform01", "uniform_m1_1", "normal", TOKEN_IDS)

Emit = Callable[[dict[str, Any]], None]


class Model(Protocol):
    """What measure needs from a loaded model (see child.LoadedModel)."""

    specs: list[InputSpec]
    output_names: list[str]
    has_layers: bool
    supports_training_flag: bool
    array_ops: ArrayOps

    def predict(self, arrays: list[np.ndarray]) -> list[np.ndarray]: ...
    def call(self, arrays: list[np.ndarray], training: bool | None = None) -> list[np.ndarray]: ...
    def layers(self) -> list[tuple[str, Any]]: ...
    def sublayers(self) -> list[Any]: ...
    def save_reload(self) -> tuple[Model | None, str]: ...
    def get_state(self) -> Any: ...
    def set_state(self, state: Any) -> None: ...


# ----------------------------------------------------------------------------- statistics


def output_stats(name: str, arr: np.ndarray) -> dict[str, Any]:
    """Across-input variation, class histogram and range of one output on one batch."""
    a = np.asarray(arr, dtype="float64")
    n = a.shape[0] if a.ndim else 1
    flat = a.reshape(n, -1)
    nan, inf = int(np.isnan(flat).sum()), int(np.isinf(flat).sum())
    f = finite(flat)
    per_unit = f.std(axis=0) if n > 1 else np.zeros(flat.shape[1])
    lo, hi = float(f.min()) if f.size else 0.0, float(f.max()) if f.size else 0.0
    probability = f.size > 0 and lo >= 0.0 and hi <= 1.0 + 1e-6
    stats: dict[str, Any] = {
        "name": name,
        "shape": list(a.shape),
        "std": float(per_unit.mean()) if per_unit.size else 0.0,
        "std_max": float(per_unit.max()) if per_unit.size else 0.0,
        "per_unit_std": [round(float(v), 6) for v in per_unit[:MAX_UNITS_SHOWN]],
        "mean_abs": float(np.abs(f).mean()) if f.size else 0.0,
        "min": lo,
        "max": hi,
        "nan": nan,
        "inf": inf,
        "probability_like": bool(probability),
    }
    stats.update(_class_histogram(a, probability))
    stats["collapsed"] = output_collapsed(stats)
    return stats


def _class_histogram(a: np.ndarray, probability: bool) -> dict[str, Any]:
    if a.ndim < 2:
        return {"class_histogram": None, "top_class": None, "top_class_fraction": None}
    if a.shape[-1] > 1:
        classes = np.argmax(finite(a), axis=-1).reshape(-1)
    elif probability:
        classes = (finite(a)[..., 0] > 0.5).astype(int).reshape(-1)
    else:
        return {"class_histogram": None, "top_class": None, "top_class_fraction": None}
    values, counts = np.unique(classes, return_counts=True)
    top = int(np.argmax(counts))
    return {
        "class_histogram": {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)},
        "top_class": int(values[top]),
        "top_class_fraction": float(counts[top] / max(1, classes.size)),
    }


def output_collapsed(stats: dict[str, Any]) -> bool:
    """True when the output barely depends on the input (see the thresholds above)."""
    if stats["shape"] and stats["shape"][0] < 2:
        return False
    if stats["probability_like"]:
        top = stats.get("top_class_fraction")
        soft = top is not None and top >= TOP_CLASS_COLLAPSE and stats["std_max"] < SOFT_PROB_STD
        return bool(stats["std_max"] < COLLAPSE_PROB_STD or soft)
    scale = max(stats["mean_abs"], 1e-12)
    return bool(stats["std_max"] <= FLAT_ABS or stats["std_max"] / scale < COLLAPSE_REL)


def _responsive(stats: dict[str, Any]) -> bool:
    """Clearly following the input, not just short of collapsed: a range only counts as one
    the model works on when its outputs really move (healthy fixtures: >= 0.1)."""
    if stats["probability_like"]:
        return bool(stats["std_max"] >= RESPONSIVE_PROB_STD)
    return bool(stats["std_max"] >= RESPONSIVE_REL * max(stats["mean_abs"], 1e-12))


# ----------------------------------------------------------------------------- checks


def _max_rel_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Largest |a-b| over all outputs relative to the outputs' magnitude (NaN-safe)."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        x64, y64 = finite(np.asarray(x, "float64")), finite(np.asarray(y, "float64"))
        scale = max(float(np.abs(x64).max()) if x64.size else 0.0, 1e-6)
        worst = max(worst, float(np.abs(x64 - y64).max()) / scale if x64.size else 0.0)
    return worst


def nondeterminism(model: Model, batch: list[np.ndarray], predict_batch: list[np.ndarray],
                   predicted: list[np.ndarray],
                   inference: list[np.ndarray] | None = None) -> dict[str, Any]:
    """predict() (``predicted``: its outputs for ``predict_batch``) and plain model(x) calls
    on ``batch`` (a prefix of ``predict_batch``), each compared with a second run.

    Keras 3 predict() forces training=False and hides a hard-coded training=True; a plain
    call does not, so both paths are measured. ``inference`` (eager training=False outputs of
    ``batch``, already computed by the per-layer pass) is an independent run of both: a
    predict() or plain call that matches it is not random, and only a path that does not
    match it runs again. The plain call then runs twice, so a deterministic difference
    (training=True hard-coded on BatchNormalization) is never mistaken for randomness."""
    k = int(batch[0].shape[0])
    d_predict, predict_against, predict_samples = None, "inference pass", k
    if inference is not None:
        d_predict = _max_rel_diff([p[:k] for p in predicted], inference)
    if d_predict is None or d_predict > SAME_REL:
        d_predict = _max_rel_diff(predicted, model.predict(predict_batch))
        predict_against, predict_samples = "second predict()", int(predict_batch[0].shape[0])
    first = model.call(batch)
    d_call = None
    against = "inference pass"
    if inference is not None:
        d_call = _max_rel_diff(inference, first)
    if d_call is None or d_call > SAME_REL:
        d_call, against = _max_rel_diff(first, model.call(batch)), "second plain call"
    return {"predict_max_rel_diff": d_predict, "predict_compared_with": predict_against,
            "call_max_rel_diff": d_call, "call_compared_with": against, "samples": k,
            "predict_samples": predict_samples, "threshold": SAME_REL,
            "nondeterministic": max(d_predict, d_call) > SAME_REL}


def batch_dependence(model: Model, batch: list[np.ndarray], singles: int,
                     together: list[np.ndarray] | None = None) -> dict[str, Any]:
    """A batched call vs the same samples one at a time (softmax over the batch axis, etc.).
    ``together``: eager training=False outputs of ``batch`` taken inside a larger batch
    (the per-layer pass), reused instead of another batched call."""
    k = min(singles, batch[0].shape[0])
    sub = [a[:k] for a in batch]
    together = (model.call(sub, training=False) if together is None
                else [o[:k] for o in together])
    alone = [model.call([a[i : i + 1] for a in sub], training=False) for i in range(k)]
    merged = [np.concatenate([r[j] for r in alone]) for j in range(len(together))]
    diff = _max_rel_diff(together, merged)
    return {"samples": k, "max_rel_diff": diff, "threshold": SAME_REL,
            "batch_dependent": diff > SAME_REL}


def _signal_std(runs: list[np.ndarray]) -> np.ndarray:
    """Per-unit std across inputs of the mean of several training-mode passes, with the
    pass-to-pass (dropout) noise subtracted, so noise is not mistaken for a response."""
    stack = np.stack([finite(np.asarray(r, "float64")).reshape(r.shape[0], -1) for r in runs])
    mean = stack.mean(axis=0)
    var = mean.var(axis=0)
    if len(runs) > 1:
        noise = ((stack[0] - stack[1]) ** 2).mean(axis=0) / 2.0
        var = np.maximum(var - noise / len(runs), 0.0)
    return np.sqrt(var)


def _gap_one(model: Model, batch: list[np.ndarray], infer: list[np.ndarray],
             passes: int) -> dict[str, Any]:
    runs = [model.call(batch, training=True) for _ in range(passes)]
    ratios, agreements, dead_only_in_infer = [], [], []
    for j, x in enumerate(infer):
        outs = [r[j] for r in runs]
        x64 = finite(np.asarray(x, "float64"))
        y64 = np.mean([finite(np.asarray(o, "float64")) for o in outs], axis=0)
        spread = variation(x64)[0] + variation(y64)[0]
        diff = float(np.abs(x64 - y64).mean())
        ratios.append(diff / max(spread, 1e-9) if diff > FLAT_ABS else 0.0)
        if x64.ndim >= 2 and x64.shape[-1] > 1:
            agreements.append(float((x64.argmax(-1) == y64.argmax(-1)).mean()))
        infer_stats = output_stats("infer", x64)
        train_std = float(_signal_std(outs).max()) if x64.size else 0.0
        train_flat = train_std < (SOFT_PROB_STD if infer_stats["probability_like"]
                                  else COLLAPSE_REL * max(infer_stats["mean_abs"], 1e-12))
        dead_only_in_infer.append(bool(infer_stats["collapsed"] and not train_flat))
    return {"diff_over_spread": max(ratios) if ratios else 0.0,
            "argmax_agreement": min(agreements) if agreements else None,
            "inference_collapsed_training_varies": any(dead_only_in_infer)}


def train_infer_gap(model: Model, batches: dict[str, list[np.ndarray]],
                    inferred: dict[str, list[np.ndarray]], passes: int,
                    max_ranges: int | None = None) -> dict[str, Any]:
    """training=True vs the inference outputs already predicted, on a few samples of every
    input range (or the real inputs, keyed ``real``).

    A gap is an inference output that collapses on the real inputs while training-mode
    outputs still follow them (BatchNormalization stats that never moved), or a large
    difference on every range. Training-mode calls update BatchNormalization moving
    statistics, so they are restored after each range.

    Without real inputs the verdict needs a large difference on every range, so the ranges
    after the first one without it cannot change it and are not run (``not_run``). Ranges
    come in the order given, the ones the model works on first: a healthy model shows no
    gap on its own range and stops there, while BatchNormalization statistics that never
    moved show one on every range, so big models try at most ``max_ranges`` of them."""
    saved = model.get_state()
    per = {}
    for dist, batch in list(batches.items())[:max_ranges]:
        try:
            per[dist] = _gap_one(model, batch, inferred[dist], passes)
        finally:
            model.set_state(saved)        # before the next range sees updated BN stats
        if "real" not in batches and per[dist]["diff_over_spread"] <= GAP_RATIO:
            break
    everywhere = min(v["diff_over_spread"] for v in per.values())
    # Random inputs are off-distribution for BatchNormalization: healthy models collapse in
    # inference on some range while batch statistics rescue training mode. Only real inputs
    # make that pattern a finding.
    collapsing = sorted(d for d, v in per.items()
                        if v["inference_collapsed_training_varies"] and d == "real")
    return {"per_distribution": per, "min_diff_over_spread": everywhere,
            "not_run": [d for d in batches if d not in per],
            "inference_collapses_on": collapsing, "passes": passes, "max_ranges": max_ranges,
            "samples": int(next(iter(batches.values()))[0].shape[0]),
            "threshold_ratio": GAP_RATIO,
            "train_infer_gap": bool(collapsing) or everywhere > GAP_RATIO}


def roundtrip(model: Model, batch: list[np.ndarray],
              predicted: list[np.ndarray]) -> dict[str, Any]:
    """Save to a temporary .keras, reload with the same library, compare with the original's
    predict() outputs. The reloaded copy runs eagerly: tracing a second model's predict
    function costs more than the comparison (eager and graph agree far below SAME_REL).
    No reload when the saved file provably holds the same model (see archive_compare)."""
    again, how = model.save_reload()
    diff = 0.0 if again is None else _max_rel_diff(predicted, again.call(batch, training=False))
    return {"max_rel_diff": diff, "threshold": SAME_REL, "mismatch": diff > SAME_REL,
            "compared": how}


# ----------------------------------------------------------------------------- the run


class Timer:
    """Wall time per stage, reported under ``timings``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - start, 4)


def _guarded(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A check that fails is reported with its error; the other checks still run."""
    try:
        return fn()
    except Exception as exc:  # the model's own code may raise anything
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}


@dataclass
class Sizes:
    """How many samples each extra check uses. Models that cost more than
    BIG_SECONDS_PER_SAMPLE per sample in the main predict get the small sizes, so the checks
    stay a fraction of the predict time the user would pay anyway."""

    layer_per_dist: int = 16
    layer_chunk: int | None = None      # samples per eager call of the per-layer pass
    check: int = 16
    gap: int = 8
    gap_ranges: int | None = None       # at most this many input ranges in the gap check
    singles: int = 6

    @classmethod
    def for_cost(cls, seconds_per_sample: float, override: Any = None) -> Sizes:
        """``override`` (tests): ``"big"`` picks the big-model sizes whatever the cost, a
        dict replaces single fields."""
        if override == "big":
            seconds_per_sample = float("inf")
        sizes = cls._for_cost(seconds_per_sample)
        if isinstance(override, dict):
            sizes = replace(sizes, **{k: v for k, v in override.items()
                                      if k in {f.name for f in fields(cls)}})
        return sizes

    @classmethod
    def _for_cost(cls, seconds_per_sample: float) -> Sizes:
        if seconds_per_sample > BIG_SECONDS_PER_SAMPLE:
            # eager calls of a ResNet50 cost ~0.15 s + 0.05 s per sample once warm, plus
            # the first touch of the memory they keep alive: few samples, in chunks (see
            # layer_pass), and check <= layer_per_dist so the per-layer pass's outputs can
            # be reused; BatchNormalization's batch statistics need a few samples in the gap
            # check
            return cls(layer_per_dist=2, layer_chunk=LAYER_CHUNK, check=2, gap=4, gap_ranges=2,
                       singles=1)
        return cls()


def run_measurements(model: Model, samples: int, seed: int, real: RealInputs | None,
                     emit: Emit, timer: Timer, sizes_override: Any = None) -> dict[str, Any]:
    """Every measurement, in order, with progress events; returns the probe section body.
    ``sizes_override``: see Sizes.for_cost (tests run big-model sizes on small fixtures)."""
    specs = model.specs
    dists = distributions_for(specs)
    steps = len(dists) + (1 if real else 0) + 6
    done = 0

    def progress(stage: str, message: str) -> None:
        nonlocal done
        emit({"event": "stage", "stage": stage, "message": message})
        emit({"event": "progress", "stage": stage, "fraction": round(done / steps, 3)})
        done += 1

    per_dist: dict[str, Any] = {}
    batches: dict[str, list[np.ndarray]] = {}
    predicted: dict[str, list[np.ndarray]] = {}
    durations = []
    for dist in dists:
        progress("outputs", f"predict on {samples} {dist} samples")
        with timer.stage("predict"):
            batch = random_batch(specs, dist, samples, seed)
            start = time.perf_counter()
            outs = model.predict(batch)
            durations.append(time.perf_counter() - start)
        batches[dist], predicted[dist] = batch, outs
        stats = [output_stats(n, o) for n, o in zip(model.output_names, outs, strict=False)]
        per_dist[dist] = {"outputs": stats, "collapsed": all(s["collapsed"] for s in stats),
                          "nan": sum(s["nan"] + s["inf"] for s in stats)}
    # the fastest range is the one that paid no tracing: the model's own cost per sample
    sizes = Sizes.for_cost(min(durations) / max(1, samples), sizes_override)
    real_section = None
    if real is not None:
        progress("outputs", f"predict on {real.count} real inputs")
        with timer.stage("predict"):
            outs = model.predict(real.arrays)
        batches["real"], predicted["real"] = real.arrays, outs
        stats = [output_stats(n, o) for n, o in zip(model.output_names, outs, strict=False)]
        real_section = {**real.as_dict(), "outputs": stats,
                        "collapsed": all(s["collapsed"] for s in stats),
                        "nan": sum(s["nan"] + s["inf"] for s in stats)}

    primary = _primary(per_dist, dists)
    working = [d for d in dists if not per_dist[d]["collapsed"] and not per_dist[d]["nan"]]
    key = "real" if real is not None else primary
    check_batch = [a[: sizes.check] for a in batches[key]]
    check_pred = [o[: sizes.check] for o in predicted[key]]
    again = min(len(batches[key][0]), PREDICT_BATCH)     # a batch shape predict() has traced

    progress("layers", "per-layer statistics (eager pass)")
    with timer.stage("layers"):
        layer_section = _guarded(lambda: _layers(model, real, batches, dists, sizes))
    # the check samples' eager training=False outputs, from inside the per-layer pass
    eager = layer_section.pop("outputs", None)
    per = min(sizes.layer_per_dist, len(batches[key][0]))   # rows per range in that pass
    start = 0 if real is not None else dists.index(key) * per
    check_eager = ([o[start : start + sizes.check] for o in eager]
                   if eager is not None and sizes.check <= sizes.layer_per_dist else None)
    progress("determinism", "the same batch again (predict and plain call)")
    with timer.stage("determinism"):
        det = _guarded(lambda: nondeterminism(
            model, check_batch, [a[:again] for a in batches[key]],
            [o[:again] for o in predicted[key]], check_eager))
    progress("batch", "batched vs one sample at a time")
    with timer.stage("batch"):
        bdep = _guarded(lambda: batch_dependence(model, check_batch, sizes.singles,
                                                 check_eager))
    progress("roundtrip", "save to a temporary .keras and reload")
    with timer.stage("roundtrip"):
        rt = (_guarded(lambda: roundtrip(model, check_batch, check_pred)) if model.has_layers
              else {"skipped": "no Keras model object (SavedModel signature)"})
    progress("training", "training=True vs training=False")
    with timer.stage("training"):
        keys = ["real"] if real is not None else sorted(
            dists, key=lambda d: (d != primary, d not in working))     # stable otherwise
        gap_in = {k: [a[: sizes.gap] for a in batches[k]] for k in keys}
        gap_ref = {k: [o[: sizes.gap] for o in predicted[k]] for k in keys}
        sublayers = model.sublayers() if model.has_layers else []
        passes = TRAIN_PASSES if _has_random_layers(sublayers) else 1
        if not model.supports_training_flag:
            gap = {"skipped": "the loaded object takes no training flag"}
        elif not _training_sensitive(sublayers):
            gap = {"skipped": "no layer behaves differently in training mode (no dropout, "
                              "noise, normalization, random or custom layers)",
                   "train_infer_gap": False}
        else:
            gap = _guarded(lambda: train_infer_gap(model, gap_in, gap_ref, passes,
                                                   sizes.gap_ranges))
    emit({"event": "progress", "stage": "training", "fraction": 1.0})

    collapsed_on = [d for d in dists if d in UNIT_SCALE and per_dist[d]["collapsed"]]
    shown = primary
    if real_section is None and collapsed_on and len(collapsed_on) == len(
            [d for d in dists if d in UNIT_SCALE]):
        shown = collapsed_on[0]        # show the collapse, not the one range that escapes it
    reference = real_section if real_section is not None else per_dist[shown]
    responsive = [d for d in working if all(_responsive(s) for s in per_dist[d]["outputs"])]
    eager_nan = layer_section.get("eager_output_nan")
    graph_nan = any(per_dist[d]["nan"] for d in dists) or bool(real_section
                                                                and real_section["nan"])
    verdict = {
        "collapsed": (bool(real_section["collapsed"]) if real_section is not None
                      else all(per_dist[d]["collapsed"] for d in dists if d in UNIT_SCALE)),
        "nondeterministic": bool(det.get("nondeterministic", False)),
        "batch_dependent": bool(bdep.get("batch_dependent", False)),
        "scale_sensitive": len(dists) > 1 and bool(responsive) and len(working) < len(dists),
        "train_infer_gap": bool(gap.get("train_infer_gap", False)),
        "nan_outputs": bool(graph_nan or eager_nan),
        "roundtrip_mismatch": bool(rt.get("mismatch", False)),
    }
    assert set(verdict) == set(VERDICT_KEYS)
    return {
        "samples": samples,
        "seed": seed,
        "check_sizes": asdict(sizes),
        "inputs": [s.as_dict() for s in specs],
        "distributions": per_dist,
        "primary_distribution": primary,
        "outputs_from": "real_inputs" if real_section is not None else shown,
        "working_distributions": working,
        "responsive_distributions": responsive,
        "real_inputs": real_section,
        "outputs": reference["outputs"],
        "layers": layer_section.get("rows", []),
        "collapse_layer": layer_section.get("collapse_layer"),
        "checks": {
            "layers": {k: v for k, v in layer_section.items() if k != "rows"},
            "nondeterminism": det,
            "batch_dependence": bdep,
            "train_infer_gap": gap,
            "roundtrip": rt,
            "eager_vs_graph": {"graph_nan": graph_nan, "eager_nan": eager_nan},
        },
        "verdict": verdict,
    }


def _has_random_layers(layers: list[Any]) -> bool:
    """Dropout / noise layers make training-mode passes differ: average two of them."""
    return any(("Dropout" in type(layer).__name__ or "Noise" in type(layer).__name__
                or _dropout_rate(layer) > 0) for layer in layers)


def _dropout_rate(layer: Any) -> float:
    """The largest dropout-like rate a layer has (RNNs, attention), 0.0 when none."""
    rates = []
    for attr in ("dropout", "recurrent_dropout"):
        value = getattr(layer, attr, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rates.append(float(value))
    return max(rates, default=0.0)


# Built-in layer classes whose call can depend on ``training``; everything else from Keras
# itself ignores it. Layers from outside Keras (custom classes) and layers tf_keras revived
# from a SavedModel's traced functions (their code is unknown) are assumed to depend on it.
_TRAINING_MARKERS = ("Dropout", "Noise", "Normalization", "Random", "Lambda", "Augment",
                     "Revived")
_KERAS_MODULES = ("keras.", "tf_keras.")


def _training_sensitive(layers: list[Any]) -> bool:
    """Whether a training=True pass can differ from inference at all (skipped when not)."""
    for layer in layers:
        cls = type(layer)
        if not cls.__module__.startswith(_KERAS_MODULES):
            return True
        if any(m in cls.__name__ for m in _TRAINING_MARKERS) or _dropout_rate(layer) > 0:
            return True
    return False


def _primary(per_dist: dict[str, Any], dists: tuple[str, ...]) -> str:
    """The distribution the model responds to most (the one its outputs vary most on)."""
    def score(d: str) -> float:
        entry = per_dist[d]
        if entry["nan"]:
            return -1.0
        return max((s["std_max"] / max(s["mean_abs"], 1e-12) for s in entry["outputs"]),
                   default=0.0)
    return max(dists, key=score)


def _layers(model: Model, real: RealInputs | None, batches: dict[str, list[np.ndarray]],
            dists: tuple[str, ...], sizes: Sizes) -> dict[str, Any]:
    """One eager pass (in chunks of ``sizes.layer_chunk`` samples for big models, merged
    exactly) over a mix of every distribution (a unit dead on all of them is dead),
    or over the real inputs; also the eager-path NaN check (graph mode can hide NaNs)."""
    if real is not None:
        mixed = [a[: sizes.layer_per_dist * 4] for a in real.arrays]
    else:
        k = sizes.layer_per_dist
        mixed = [np.concatenate([batches[d][i][:k] for d in dists])
                 for i in range(len(model.specs))]
    layers = model.layers() if model.has_layers else []
    recorder = LayerRecorder(layers, model.array_ops)
    total = len(mixed[0])
    step = sizes.layer_chunk or total
    parts = []
    for start in range(0, total, step):
        with recorder.chunk():
            parts.append(model.call([a[start : start + step] for a in mixed], training=False))
    outs = [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]
    eager_nan = any(int((~np.isfinite(np.asarray(o, "float64"))).sum()) for o in outs)
    rows = recorder.rows()
    # "outputs" is popped by run_measurements (reused by later checks), never reported
    return {"rows": rows, "collapse_layer": collapse_layer(rows), "samples": total,
            "chunks": len(parts), "chunks_merged": recorder.merged(), "recorded": len(rows),
            "record_errors": recorder.errors,
            "walked": len(layers), "eager_output_nan": eager_nan, "outputs": outs}
