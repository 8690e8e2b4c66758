"""Child-side measurements: every number in the report's ``probe`` section, and the verdicts.

Works on a loaded model through the small interface ``child.LoadedModel`` gives (graph-mode
``predict``, eager ``call`` with an optional ``training`` flag, the layer walk, a save/reload),
so Keras 3, tf_keras and bare SavedModel signatures are measured by the same code.

Thresholds are chosen to sit between the healthy fixtures and the fixtures trained into each
failure (``fixtures/probe``) with a wide margin; ``tests/test_probe_verdicts.py`` keeps them
honest. They are relative to the output's own scale so regression heads are judged fairly.

The section's typed form, and how to add a check (here and there only), is in results.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Protocol

import numpy as np

from inspector.options import DEFAULT_SAMPLES
from inspector.probe.error_text import error_text
from inspector.probe.input_range import CONFUSABLE, RANGES
from inspector.probe.inputs import (
    RANGE_LABELS,
    TOKEN_IDS,
    InputsError,
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
from inspector.probe.results import Verdict

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
# ... and so is one predicting one class for >= TOP_CLASS_COLLAPSE of inputs on its own range
# with probabilities moving less than ONE_CLASS_PROB_STD (a frozen random CNN on [0,1]
# images: 0.04; healthy fixtures where one class wins that often: >= 0.1).
ONE_CLASS_PROB_STD = 0.05
# ... unless the logits behind those probabilities move: a model confidently answering "no"
# to random inputs with a confidence that follows them is not collapsed. Largest per-unit std
# of the logits recovered from the probabilities (centered log-probabilities of a softmax, the
# logit of independent sigmoids): collapsed fixtures <= 0.14 where their probabilities move
# less than ONE_CLASS_PROB_STD (<= 0.44 on any range), healthy ones >= 1; SpliceAI on random
# sequences ("no splice site" everywhere) and MHCSeqNet on random peptides (p 0.8..1.0
# "binds") >= 0.7.
LOGIT_STD_COLLAPSE = 0.5
LOGIT_EPS = 1e-7
# Near-collapsed: one class for >= NEAR_TOP_CLASS of inputs with probabilities moving less
# than ONE_CLASS_PROB_STD. Not a verdict alone (a healthy model that barely answers random
# noise gets there); the parent makes it one when a static finding explains the collapse
# (see rules.probe_rules.link_near_collapse).
NEAR_TOP_CLASS = 0.9
# A purely affine model (no activation anywhere) only collapses when its output does not
# move at float32 precision: a large constant offset is no collapse.
AFFINE_REL = 1e-6
# Scale sensitivity needs one range where the model clearly works (probabilities moving by
# RESPONSIVE_PROB_STD): a model that barely reacts to random inputs at any scale (global
# pooling over noise) proves nothing about scale.
RESPONSIVE_PROB_STD = 0.1
RESPONSIVE_REL = 1e-2
# Train/infer gap on every range: mean |train - infer| over the spread of both (healthy BN
# fixtures on random inputs: <= 0.6).
GAP_RATIO = 1.5
# ... and an inference-only collapse on random inputs of the model's own range counts when
# training and inference argmax agree on fewer than this share of them (BN stats never
# updated, real inputs: <= 0.5; a healthy transfer model that barely answers noise: 0.75).
GAP_AGREEMENT = 0.6
TRAIN_PASSES = 2
# Batch size of every predict() call: a later predict() of at most this many samples reuses
# the traced function instead of retracing it for a new batch shape (seconds on a ResNet50).
PREDICT_BATCH = 32
# Models above this many multiply-accumulates per sample (inspector.cost, from the saved
# shapes) get the big-model check sizes: ResNet50 at 224x224 is ~3.9e9 (~0.09 s a sample on
# 2 CPU cores), MobileNetV2 ~3e8, the probe fixtures < 1e5.
BIG_MACS_PER_SAMPLE = 2e8
# Random samples per input range when the user does not choose: options.DEFAULT_SAMPLES,
# fewer when that many would cost more than SAMPLE_MACS_BUDGET multiply-accumulates per range
# (ResNet50: 16 samples, ~1.5 s a range on 2 CPU cores), never fewer than MIN_SAMPLES.
SAMPLE_MACS_BUDGET = 6.4e10
MIN_SAMPLES = 8
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


def output_stats(name: str, arr: np.ndarray, affine: bool = False) -> dict[str, Any]:
    """Across-input variation, class histogram and range of one output on one batch."""
    a = np.asarray(arr, dtype="float64")
    n = a.shape[0] if a.ndim else 1
    flat = a.reshape(n, -1)
    nan, inf = int(np.isnan(flat).sum()), int(np.isinf(flat).sum())
    f = finite(flat)
    per_unit = f.std(axis=0) if n > 1 else np.zeros(flat.shape[1])
    lo, hi = float(f.min()) if f.size else 0.0, float(f.max()) if f.size else 0.0
    probability = nan + inf < flat.size and lo >= 0.0 and hi <= 1.0 + 1e-6
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
        "logit_std_max": logit_std_max(a) if probability and n > 1 else None,
    }
    stats.update(_class_histogram(a, probability))
    stats["collapsed"] = output_collapsed(stats, affine)
    return stats


def logit_std_max(p: np.ndarray) -> float | None:
    """Largest per-unit std across inputs (axis 0) of the logits behind probabilities ``p``:
    centered log-probabilities when the last axis sums to 1 (softmax), else each unit's
    logit (sigmoids). Clipped at LOGIT_EPS so a saturated 0 or 1 stays finite; NaN/Inf
    values are left out (None when nothing is left)."""
    q = np.clip(np.where(np.isfinite(p), p, np.nan), LOGIT_EPS, 1.0 - LOGIT_EPS)
    sums = np.sum(q, axis=-1)
    rows = np.isfinite(sums)
    log_q = np.log(q)
    if (q.ndim >= 2 and q.shape[-1] > 1 and rows.any()
            and np.allclose(sums[rows], 1.0, atol=1e-3)):
        z = log_q - log_q.mean(axis=-1, keepdims=True)
    else:
        z = log_q - np.log1p(-q)
    flat = z.reshape(z.shape[0], -1)
    counts = np.isfinite(flat).sum(axis=0)
    if not (counts > 1).any():
        return None
    return round(float(np.nanstd(flat[:, counts > 1], axis=0).max()), 6)


def _pinned(stats: dict[str, Any], top_class: float) -> bool:
    """One class for at least ``top_class`` of the inputs, its probabilities barely moving
    and the logits behind them barely moving either (see LOGIT_STD_COLLAPSE)."""
    top = stats.get("top_class_fraction")
    logits = stats.get("logit_std_max")
    return bool(top is not None and top >= top_class and stats["std_max"] < ONE_CLASS_PROB_STD
                and (logits is None or logits < LOGIT_STD_COLLAPSE))


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


def output_collapsed(stats: dict[str, Any], affine: bool = False) -> bool:
    """True when the output barely depends on the input (see the thresholds above). An
    output with no finite value is not judged: ``nan_outputs`` names that cause (whether
    graph mode lets a NaN through fused ops depends on the CPU's kernels)."""
    if stats["shape"] and stats["shape"][0] < 2:
        return False
    if stats["nan"] + stats["inf"] >= math.prod(stats["shape"]):
        return False
    if stats["probability_like"]:
        return bool(stats["std_max"] < COLLAPSE_PROB_STD or _pinned(stats, TOP_CLASS_COLLAPSE))
    scale = max(stats["mean_abs"], 1e-12)
    rel = AFFINE_REL if affine else COLLAPSE_REL
    return bool(stats["std_max"] <= FLAT_ABS or stats["std_max"] / scale < rel)


def near_collapsed(outputs: list[dict[str, Any]]) -> bool:
    """Every output collapsed or one class winning almost always (see NEAR_TOP_CLASS)."""
    def near(s: dict[str, Any]) -> bool:
        return bool(s["collapsed"] or (s["probability_like"] and _pinned(s, NEAR_TOP_CLASS)))
    return bool(outputs) and all(near(s) for s in outputs)


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
    pass-to-pass (dropout) noise subtracted, so noise is not mistaken for a response. Twice
    the expected noise share is subtracted: with two passes the noise estimate itself is
    noisy, and dropout near 1.0 must not pass for a model that responds in training mode."""
    stack = np.stack([finite(np.asarray(r, "float64")).reshape(r.shape[0], -1) for r in runs])
    mean = stack.mean(axis=0)
    var = mean.var(axis=0)
    if len(runs) > 1:
        noise = ((stack[0] - stack[1]) ** 2).mean(axis=0) / 2.0
        var = np.maximum(var - 2.0 * noise / len(runs), 0.0)
    return np.sqrt(var)


def _pass_noise(runs: list[np.ndarray]) -> float:
    """Mean |difference| between two training-mode passes: what dropout alone changes."""
    if len(runs) < 2:
        return 0.0
    a, b = (finite(np.asarray(r, "float64")) for r in runs[:2])
    return float(np.abs(a - b).mean())


def _gap_one(model: Model, batch: list[np.ndarray], infer: list[np.ndarray],
             passes: int) -> dict[str, Any]:
    runs = [model.call(batch, training=True) for _ in range(passes)]
    ratios, agreements, dead_only_in_infer = [], [], []
    for j, x in enumerate(infer):
        outs = [r[j] for r in runs]
        x64 = finite(np.asarray(x, "float64"))
        y64 = np.mean([finite(np.asarray(o, "float64")) for o in outs], axis=0)
        spread = variation(x64)[0] + variation(y64)[0]
        # the part of the difference dropout noise cannot explain
        diff = max(0.0, float(np.abs(x64 - y64).mean()) - _pass_noise(outs))
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
                    max_ranges: int | None = None, own: str | None = None) -> dict[str, Any]:
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
    moved show one on every range, so big models try at most ``max_ranges`` of them.

    ``own``: the model's own input range (see input_range): an inference collapse there
    counts like one on real inputs; on the other ranges it is only reported, under
    ``off_range_inference_collapse``, so no entry says "collapses" next to "no gap"."""
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
    # or the model's own range make that pattern a finding.
    # On the own random range, also only when training and inference mostly disagree: a
    # model that barely answers noise can look collapsed in inference on a few samples
    # while training mode (batch statistics) spreads the same predictions.
    for d, v in per.items():
        if not v["inference_collapsed_training_varies"] or d == "real":
            continue
        agreement = v["argmax_agreement"]
        if d != own or "real" in batches or (agreement is not None
                                             and agreement >= GAP_AGREEMENT):
            v["inference_collapsed_training_varies"] = False
            v["off_range_inference_collapse"] = True
    collapsing = sorted(d for d, v in per.items() if v["inference_collapsed_training_varies"])
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
        return {"error": error_text(exc)}


@dataclass
class Sizes:
    """How many samples each extra check uses. Models that cost more than
    BIG_MACS_PER_SAMPLE get the small sizes, so the checks stay a fraction of the predict
    time the user would pay anyway. The cost is a static estimate, never a timing: the
    same model must get the same checks on a busy CI runner and on a quiet laptop."""

    layer_per_dist: int = 16
    layer_chunk: int | None = None      # samples per eager call of the per-layer pass
    check: int = 16
    gap: int = 8
    gap_ranges: int | None = None       # at most this many input ranges in the gap check
    singles: int = 6

    @classmethod
    def for_cost(cls, macs_per_sample: float | None, override: Any = None,
                 fixed_batch: int | None = None) -> Sizes:
        """``macs_per_sample`` None (unknown): the full sizes. ``override`` (tests): ``"big"``
        picks the big-model sizes whatever the cost, a dict replaces single fields, a Sizes
        is used as it is. ``fixed_batch``: the batch size a model was built for (stateful
        RNNs): the per-layer pass calls it with that many samples at a time."""
        if isinstance(override, Sizes):
            return override
        if override == "big":
            macs_per_sample = float("inf")
        sizes = cls._for_cost(macs_per_sample or 0.0)
        if fixed_batch:
            sizes = replace(sizes, layer_chunk=fixed_batch)
        if isinstance(override, dict):
            sizes = replace(sizes, **{k: v for k, v in override.items()
                                      if k in {f.name for f in fields(cls)}})
        return sizes

    @classmethod
    def _for_cost(cls, macs_per_sample: float) -> Sizes:
        if macs_per_sample > BIG_MACS_PER_SAMPLE:
            # eager calls of a ResNet50 cost ~0.15 s + 0.05 s per sample once warm, plus
            # the first touch of the memory they keep alive: few samples, in chunks (see
            # layer_pass), and check <= layer_per_dist so the per-layer pass's outputs can
            # be reused; BatchNormalization's batch statistics need a few samples in the gap
            # check
            return cls(layer_per_dist=2, layer_chunk=LAYER_CHUNK, check=2, gap=4, gap_ranges=2,
                       singles=1)
        return cls()


def samples_for_cost(requested: int | None, macs_per_sample: float | None) -> tuple[int, str]:
    """(random samples per input range, why that many). A number the user chose is kept; by
    default DEFAULT_SAMPLES, fewer for a model whose static cost would make that many
    expensive (a ResNet50 took minutes at 64 samples a range on 2 CPU cores)."""
    if requested:
        return int(requested), "as requested (--samples)"
    if not macs_per_sample or macs_per_sample * DEFAULT_SAMPLES <= SAMPLE_MACS_BUDGET:
        return DEFAULT_SAMPLES, "default"
    n = max(MIN_SAMPLES, int(SAMPLE_MACS_BUDGET // macs_per_sample))
    return n, (f"{n} instead of {DEFAULT_SAMPLES}: the model costs about "
               f"{macs_per_sample:.2g} multiply-accumulates a sample (--samples overrides)")


def run_measurements(model: Model, samples: int, seed: int, real: RealInputs | None,
                     emit: Emit, timer: Timer, sizes_override: Any = None,
                     macs_per_sample: float | None = None,
                     input_range: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every measurement, in order, with progress events; returns the probe section body.
    ``macs_per_sample``: the static cost estimate that sizes the checks; ``sizes_override``:
    see Sizes.for_cost (tests run big-model sizes on small fixtures); ``input_range``: the
    static guess of the model's own range (inspector.probe.input_range), judged first."""
    specs = model.specs
    assumed = assumed_range(input_range, specs)
    affine = bool(assumed.get("affine"))
    dists = _own_first(distributions_for(specs), assumed["name"])
    steps = len(dists) + (1 if real else 0) + 6
    done = 0

    def progress(stage: str, message: str, **detail: Any) -> None:
        nonlocal done
        emit({"event": "stage", "stage": stage, "message": message, **detail})
        emit({"event": "progress", "stage": stage, "fraction": round(done / steps, 3)})
        done += 1

    per_dist: dict[str, Any] = {}
    batches: dict[str, list[np.ndarray]] = {}
    predicted: dict[str, list[np.ndarray]] = {}
    sizes = Sizes.for_cost(macs_per_sample, sizes_override)
    range_errors: dict[str, str] = {}     # a range the model cannot take must not end the run
    for i, dist in enumerate(dists, 1):
        label = RANGE_LABELS[dist]
        progress("outputs", f"predict on {samples} samples in {label}", range=label, step=i,
                 steps=len(dists))
        with timer.stage("predict"):
            batch = random_batch(specs, dist, samples, seed)
            try:
                outs = model.predict(batch)
            except Exception as exc:  # the model's own code may raise anything
                range_errors[dist] = error_text(exc)
                continue
        batches[dist], predicted[dist] = batch, outs
        stats = [output_stats(n, o, affine)
                 for n, o in zip(model.output_names, outs, strict=False)]
        per_dist[dist] = {"outputs": stats, "collapsed": all(s["collapsed"] for s in stats),
                          "nan": sum(s["nan"] + s["inf"] for s in stats)}
    dists = tuple(d for d in dists if d not in range_errors)
    if not dists and real is None:
        dist, why = next(iter(range_errors.items()))
        raise InputsError(f"the model failed on every random input range "
                          f"({RANGE_LABELS[dist]}: {why}); pass real samples with --inputs")
    real_section = None
    if real is not None:
        progress("outputs", f"predict on {real.count} real inputs", range=RANGE_LABELS["real"])
        with timer.stage("predict"):
            outs = model.predict(real.arrays)
        batches["real"], predicted["real"] = real.arrays, outs
        stats = [output_stats(n, o, affine)
                 for n, o in zip(model.output_names, outs, strict=False)]
        real_section = {**real.as_dict(), "outputs": stats,
                        "collapsed": all(s["collapsed"] for s in stats),
                        "nan": sum(s["nan"] + s["inf"] for s in stats)}

    primary = _primary(per_dist, dists) if dists else None
    working = [d for d in dists if not per_dist[d]["collapsed"] and not per_dist[d]["nan"]]
    responsive = [d for d in working if all(_responsive(s) for s in per_dist[d]["outputs"])]
    judged = _judged_range(assumed, per_dist, responsive, primary)
    own = judged["name"] if judged["name"] in per_dist else None
    key = "real" if real is not None else own
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
            dists, key=lambda d: (d != key, d not in working))     # stable otherwise
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
            # an inference collapse on the few gap samples of the own range counts only when
            # the full predict() batch collapsed there too (a model that barely answers
            # noise looks collapsed on 4 samples now and then)
            own_collapsed = own if own is not None and per_dist[own]["collapsed"] else None
            gap = _guarded(lambda: train_infer_gap(model, gap_in, gap_ref, passes,
                                                   sizes.gap_ranges, own_collapsed))
    emit({"event": "progress", "stage": "training", "fraction": 1.0})

    shown = own                        # the model's own range, never the one that escapes
    reference = real_section if real_section is not None else per_dist[own]
    confusable = [d for d in CONFUSABLE.get(own or "", ()) if d in per_dist]
    eager_nan = layer_section.get("eager_output_nan")
    graph_nan = any(per_dist[d]["nan"] for d in dists) or bool(real_section
                                                                and real_section["nan"])
    verdict = Verdict(
        collapsed=bool(reference["collapsed"]),
        nondeterministic=bool(det.get("nondeterministic", False)),
        batch_dependent=bool(bdep.get("batch_dependent", False)),
        # works on its own range, collapses on the range a caller plausibly confuses it with
        scale_sensitive=(own in responsive and any(per_dist[d]["collapsed"] for d in confusable)),
        train_infer_gap=bool(gap.get("train_infer_gap", False)),
        nan_outputs=bool(graph_nan or eager_nan),
        roundtrip_mismatch=bool(rt.get("mismatch", False)),
    ).to_json()
    return {
        "samples": samples,
        "seed": seed,
        "check_sizes": asdict(sizes),
        "inputs": [s.as_dict() for s in specs],
        "input_range": judged,
        "near_collapsed": near_collapsed(reference["outputs"]),
        "distributions": per_dist,
        "primary_distribution": primary,
        "range_errors": range_errors,
        "outputs_from": "real_inputs" if real_section is not None else shown,
        "working_distributions": working,
        "confusable_distributions": confusable,
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


def assumed_range(given: dict[str, Any] | None, specs: list[InputSpec]) -> dict[str, Any]:
    """The plan's input range, or the input-kind default when the plan has none (plans built
    by hand, SavedModel signatures without a static graph). The measurements and the diff's
    activations both draw their random inputs on it."""
    if specs and all(s.is_ids for s in specs):
        return {"name": TOKEN_IDS, "low": 0.0, "high": float(max(s.vocab or 2 for s in specs)),
                "reason": "integer inputs: in-vocabulary token ids", "source": "default",
                "confidence": "high", "affine": False, "label": RANGE_LABELS[TOKEN_IDS]}
    if given and given.get("name") in RANGES:
        return dict(given)
    image = any(len(s.shape) == 4 and s.shape[-1] in (1, 3, 4) for s in specs)
    name = "uniform01" if image else "normal"
    low, high = RANGES[name][:2]
    return {"name": name, "low": low, "high": high, "source": "default", "confidence": "low",
            "reason": ("image input: pixels are usually fed divided by 255" if image else
                       "tabular/sequence features are usually standardized"),
            "affine": False, "label": RANGE_LABELS[name]}


def _own_first(dists: tuple[str, ...], own: str) -> tuple[str, ...]:
    return (own, *[d for d in dists if d != own]) if own in dists else dists


def _judged_range(assumed: dict[str, Any], per_dist: dict[str, Any], responsive: list[str],
                  primary: str | None) -> dict[str, Any]:
    """The range the verdicts are judged on: the assumed one, unless that is only the
    tabular default (standardized) on which the model collapses while it clearly works on
    another unit-scale range (never 0..255: a collapsed model's head often wakes up on 255x
    larger inputs; and never for images, whose random-init filters answer zero-mean noise),
    or a range the model could not take at all (then the one it responds to most)."""
    judged = dict(assumed)
    name = assumed["name"]
    if name not in per_dist:
        other = primary if primary in per_dist else None
        if other is None:
            return judged
        escape = [other]
    elif (assumed.get("confidence") != "low" or name != "normal"
          or not per_dist[name]["collapsed"]):
        return judged          # only the tabular default is a guess weak enough to revisit
    else:
        escape = [d for d in responsive if d in UNIT_SCALE and d != name]
    if escape:
        to = escape[0]
        judged.update(name=to, low=RANGES[to][0], high=RANGES[to][1], label=RANGE_LABELS[to],
                      reason=f"{assumed['reason']}; but the model is flat or fails on "
                             f"{RANGE_LABELS.get(name, name)} and responds on "
                             f"{RANGE_LABELS[to]}, so it is judged there",
                      assumed=name)
    return judged


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
