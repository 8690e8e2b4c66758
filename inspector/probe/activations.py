"""The probe child's ``activations`` mode: run given inputs and write every layer's output.

``kinspect diff`` compares two models on the same inputs, each loaded in its own child
(inspector/diff/probe_diff.py). A child cannot hand arrays to the other, so each writes
its final outputs and its layers' outputs (float32) to an ``.npz`` the parent owns, keyed
``o<i>`` / ``a<i>`` / ``i<i>``; the result event says which key is which layer path.

Side A makes the inputs (random on the plan's inferred input range, or ``--inputs``) and
writes them too (``i<i>``); side B reads exactly those from ``inputs_file``. As many random
inputs as the single-file probe draws for one range (``measure.samples_for_cost``:
options.DEFAULT_SAMPLES, fewer for a costly model): each side runs one range, so that
per-range budget holds as it is. Activations are recorded on the first ``RECORD_SAMPLES``
samples only. A layer output bigger than ``LAYER_VALUES`` values is kept as an evenly strided
sample whose stride shares no factor with the channel count (so every channel is sampled: a
change to one channel is not missed); both sides stride the same shapes the same way.
Recording stops at ``MAX_RECORD_BYTES`` (later layers are listed as skipped).
"""

from __future__ import annotations

import math
import zipfile
from typing import Any

import numpy as np

from inspector.probe.inputs import (
    RANGE_LABELS,
    InputsError,
    InputSpec,
    load_real_inputs,
    numpy_dtype,
    random_batch,
)
from inspector.probe.layer_pass import first_tensor, wrapped_calls
from inspector.probe.measure import assumed_range, samples_for_cost

MAX_SAMPLES = 1024            # outputs compared on at most this many inputs
RECORD_SAMPLES = 8            # inputs whose layer outputs are recorded
CHUNK = 8                     # samples per eager call (eager keeps a call's activations)
LAYER_VALUES = 1 << 18        # values kept per layer output (strided sample beyond)
MAX_RECORD_BYTES = 256 << 20  # all recorded layer outputs together


class ActivationsError(Exception):
    """A problem with the inputs (error-event kind ``inputs``)."""


def unit_stride(units: int, channels: int, budget: int) -> int:
    """Smallest stride >= units / budget that is coprime with ``channels``: elements
    ``k * stride`` of a channels-last row then fall in every channel."""
    stride = max(1, -(-units // max(1, budget)))
    while stride > 1 and math.gcd(stride, max(1, channels)) != 1:
        stride += 1
    return stride


def kept_values(shape: tuple[int, ...], rows: int) -> tuple[int, int]:
    """(rows kept, unit stride) for a layer output of ``shape`` (first axis = samples)."""
    rows = min(rows, shape[0])
    units = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    channels = int(shape[-1]) if len(shape) > 1 else 1
    return rows, unit_stride(units, channels, LAYER_VALUES // max(1, rows))


class Recorder:
    """The first call of each layer, as float32 (strided when large), in call order."""

    def __init__(self, tf: Any, rows: int) -> None:
        self.tf, self.rows = tf, rows
        self.arrays: dict[str, np.ndarray] = {}
        self.meta: list[dict[str, Any]] = []
        self.skipped: list[dict[str, str]] = []
        self.bytes = 0

    def record(self, path: str, layer: Any, _args: tuple[Any, ...], result: Any) -> None:
        if path in self.arrays or any(s["path"] == path for s in self.skipped):
            return            # a shared layer: its first call only
        try:
            self._record(path, layer, result)
        except Exception as exc:  # never break the model's own call
            self.skipped.append({"path": path, "why": f"{type(exc).__name__}: {exc}"[:200]})

    def _record(self, path: str, layer: Any, result: Any) -> None:
        tf = self.tf
        value = first_tensor(result)
        why = None
        if value is None or not tf.is_tensor(value) or not tf.executing_eagerly():
            why = "no eager tensor output"
        elif value.shape.rank is None or value.shape.rank < 1 or not (
                value.dtype.is_floating or value.dtype.is_integer or value.dtype.is_bool):
            why = "not a numeric batch"
        if why is not None:
            self.skipped.append({"path": path, "why": why})
            return
        shape = tuple(int(d) for d in value.shape)
        rows, stride = kept_values(shape, self.rows)
        flat = tf.reshape(tf.cast(value[:rows], tf.float32), (rows, -1))
        kept = flat[:, ::stride].numpy()
        if self.bytes + kept.nbytes > MAX_RECORD_BYTES:
            self.skipped.append({"path": path, "why": f"over the {MAX_RECORD_BYTES >> 20} MB "
                                                      "recording cap"})
            return
        self.bytes += kept.nbytes
        key = f"a{len(self.meta)}"
        self.arrays[path] = kept
        self.meta.append({"path": path, "key": key, "class_name": type(layer).__name__,
                          "shape": list(shape), "rows": rows, "stride": stride})


def _chosen_inputs(model: Any, plan: dict[str, Any]) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Side B: the arrays in ``inputs_file``; side A: --inputs, else random on the range."""
    opts = plan.get("options", {})
    specs: list[InputSpec] = model.specs
    if plan.get("inputs_file"):
        with np.load(plan["inputs_file"], allow_pickle=False) as npz:
            arrays = [npz[f"i{i}"] for i in range(len(npz.files))]
        return fit_to_specs(arrays, specs), {"source": "given"}
    requested = opts.get("samples")
    if opts.get("inputs"):
        try:
            real = load_real_inputs(str(opts["inputs"]), specs)
        except InputsError as exc:
            raise ActivationsError(str(exc)) from None
        n = min(real.count, int(requested or MAX_SAMPLES), MAX_SAMPLES)
        return ([a[:n] for a in real.arrays],
                {"source": "inputs", "path": real.source, "count": n, "available": real.count,
                 "notes": list(real.notes)})
    wanted, chosen = samples_for_cost(requested, plan.get("macs_per_sample"))
    n = min(wanted, MAX_SAMPLES)
    if n < wanted:
        chosen = f"{n} instead of {wanted}: the diff compares at most {MAX_SAMPLES} inputs"
    seed = int(opts.get("seed", 0))
    assumed = assumed_range(plan.get("input_range"), specs)
    arrays = random_batch(specs, assumed["name"], n, seed)
    return arrays, {"source": "random", "range": assumed["name"],
                    "label": assumed.get("label") or RANGE_LABELS.get(assumed["name"]),
                    "range_reason": assumed.get("reason"), "count": n,
                    "samples_chosen": chosen, "seed": seed}


def fit_to_specs(arrays: list[np.ndarray], specs: list[InputSpec]) -> list[np.ndarray]:
    """A's inputs checked against B's declared inputs and cast to B's dtypes."""
    if len(arrays) != len(specs):
        raise ActivationsError(f"B has {len(specs)} inputs, A was fed {len(arrays)}: the "
                               "models cannot get the same inputs")
    out = []
    for a, spec in zip(arrays, specs, strict=True):
        want = spec.shape[1:]
        if len(want) != a.ndim - 1 or any(w is not None and w != g
                                          for w, g in zip(want, a.shape[1:], strict=True)):
            raise ActivationsError(f"B's input {spec.name} takes {_shape(want)} per sample, "
                                   f"A's inputs are {_shape(list(a.shape[1:]))}")
        out.append(a.astype(numpy_dtype(spec.dtype), copy=False))
    return out


def _shape(dims: list[Any]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in dims) + ")"


def record_activations(model: Any, plan: dict[str, Any]) -> dict[str, Any]:
    """Run the inputs, write ``plan["out_file"]``, return what the result event reports."""
    tf = model.tf
    try:
        arrays, inputs = _chosen_inputs(model, plan)
    except (ActivationsError, OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ActivationsError(str(exc)) from None
    total = int(arrays[0].shape[0])
    rows = min(RECORD_SAMPLES, total)
    recorder = Recorder(tf, rows)
    layers = model.layers() if model.has_layers else []
    parts = []
    for start in range(0, total, CHUNK):
        chunk = [a[start : start + CHUNK] for a in arrays]
        if start == 0 and layers:
            with wrapped_calls(layers, recorder.record):
                parts.append(_infer(model, chunk))
        else:
            parts.append(_infer(model, chunk))
    outs = [np.concatenate([np.asarray(p[j]) for p in parts]) for j in range(len(parts[0]))]
    stored: dict[str, np.ndarray] = {}
    for i, a in enumerate(arrays):
        stored[f"i{i}"] = a
    outputs = []
    for j, o in enumerate(outs):
        stored[f"o{j}"] = o.astype("float32") if o.dtype.kind in "fiub" else o
        name = model.output_names[j] if j < len(model.output_names) else f"output_{j}"
        outputs.append({"name": name, "key": f"o{j}", "shape": list(o.shape)})
    for m in recorder.meta:
        stored[m["key"]] = recorder.arrays[m["path"]]
    np.savez(plan["out_file"], **stored)
    return {"inputs": {**inputs, "names": [s.name for s in model.specs],
                       "recorded": rows},
            "outputs": outputs, "layers": recorder.meta, "skipped_layers": recorder.skipped,
            "walked": len(layers), "recorded_bytes": recorder.bytes}


def _infer(model: Any, arrays: list[np.ndarray]) -> list[Any]:
    """Eager inference; ``training=False`` where the model takes the flag, so a graph that
    hard-codes ``training=True`` is compared at inference too (Keras 3 overrides it)."""
    if model.supports_training_flag:
        return model.call(arrays, training=False)
    return model.call(arrays)
