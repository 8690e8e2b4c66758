"""The probe child: the only place kinspect imports TensorFlow.

Run as ``python -m inspector.probe PLAN`` (PLAN = a JSON object, a path to one, or ``-`` to
read it from stdin). Emits protocol events on stdout and nothing else: the real stdout file
descriptor is kept for events and fd 1 is pointed at stderr before TensorFlow loads, so C++
logs and stray prints can never corrupt the event stream.

The plan is a ``results.ProbePlan`` in JSON, read here through the same class the parent
built it with (its fields are documented there): the file, static input specs and vocab,
the static cost estimate, the parent-owned ``workdir``, ``options`` {device, samples, seed,
inputs, trust, memory_mb, check_sizes (tests)}; ``mode`` "activations" (kinspect diff) runs
inspector.probe.activations instead; or ``{"batch": [plan, ...]}`` (see ``_run_one``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from inspector.graph import ROOT_PATH
from inspector.probe import legacy_layers, protocol
from inspector.probe.archive_compare import archive_difference
from inspector.probe.error_text import error_text
from inspector.probe.free_length import fit_free_length, free_axes
from inspector.probe.inputs import DEFAULT_DIM, InputsError, InputSpec, load_real_inputs
from inspector.probe.measure import (
    PREDICT_BATCH,
    Sizes,
    Timer,
    run_measurements,
    samples_for_cost,
)
from inspector.probe.private_copy import CopyRefused, private_copy
from inspector.probe.results import ProbePlan
from inspector.probe.tensor_ops import TensorOps
from inspector.probe.token_inputs import PASS_THROUGH

ACTIVATIONS = "activations"         # plan["mode"] of a kinspect diff child (see activations)
FAULT_ENV = "KINSPECT_PROBE_FAULT"   # test hook: segfault | hang | exit | oom | noresult


class ProbeError(Exception):
    """A failure with an error-event kind: load, device, inputs, unsupported, memory."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Emitter:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, event: dict[str, Any]) -> None:
        self.stream.write(protocol.encode(_clean(event)))
        self.stream.flush()


def _clean(value: Any) -> Any:
    """Strict JSON: NaN/Inf floats become None, numpy scalars plain values."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


# ----------------------------------------------------------------------------- loaded model


class LoadedModel:
    """One interface over a Keras 3 model, a tf_keras model or a SavedModel signature."""

    def __init__(self, tf: Any, obj: Any, loader: str, lib: Any, trust: bool,
                 workdir: Path, fallback_specs: list[InputSpec], vocab: int | None) -> None:
        self.tf, self.obj, self.loader, self.lib = tf, obj, loader, lib
        self.trust, self.workdir = trust, workdir
        self.has_layers = loader != "tf.saved_model"
        self.array_ops = TensorOps(tf)
        self.source: Path | None = None     # the file it was loaded from (private copy)
        self.supports_training_flag = self.has_layers
        if self.has_layers:
            self.specs = self._keras_specs(fallback_specs, vocab)
            names = getattr(obj, "output_names", None) or []
            n_out = len(obj.outputs) if getattr(obj, "outputs", None) else len(names) or 1
            self.output_names = [str(n) for n in names][:n_out] or [
                f"output_{i}" for i in range(n_out)]
        else:
            self.fn = _signature(obj)
            _args, kwargs = self.fn.structured_input_signature
            self.input_keys = sorted(kwargs)
            self.specs = [InputSpec(k, list(kwargs[k].shape), kwargs[k].dtype.name, vocab)
                          for k in self.input_keys]
            _apply_id_hints(self.specs, fallback_specs)
            self.output_names = sorted(self.fn.structured_outputs)
        # A model built for one batch size (``batch_shape``: stateful RNNs) is only ever
        # called with that many samples; stateful layers start every call from zero state.
        self.fixed_batch = next((s.fixed_batch for s in self.specs if s.fixed_batch), None)
        self.stateful = [layer for layer in (self.sublayers() if self.has_layers else [])
                         if getattr(layer, "stateful", False) is True]

    def _keras_specs(self, fallback: list[InputSpec], vocab: int | None) -> list[InputSpec]:
        tensors = getattr(self.obj, "inputs", None) or []
        specs = []
        for i, t in enumerate(tensors):
            dtype = getattr(t.dtype, "name", None) or str(t.dtype)
            name = getattr(t, "name", None) or f"input_{i}"
            specs.append(InputSpec(str(name).split(":")[0], list(t.shape), dtype, None))
        if not specs:
            specs = fallback
        if not specs:
            raise ProbeError("unsupported", "the model declares no inputs (a subclassed model "
                             "that was never called?); cannot build probe inputs")
        dim, masked = _embedding_bounds(self.obj)
        for s in specs:
            if s.is_int:
                s.vocab = vocab or dim
                s.low = 1 if masked else 0      # padding id 0 mid-sequence is not real data
        _apply_id_hints(specs, fallback)
        for index, (dim, mask) in _live_token_inputs(self.obj, tensors).items():
            specs[index].feeds_embedding, specs[index].vocab = True, dim
            specs[index].low = 1 if mask else 0
        return specs

    def _feed(self, arrays: list[Any]) -> Any:
        return arrays[0] if len(arrays) == 1 else list(arrays)

    def _as_list(self, out: Any) -> list[Any]:
        if isinstance(out, dict):
            out = [out[k] for k in (self.output_names if all(k in out for k in self.output_names)
                                    else sorted(out))]
        if not isinstance(out, (list, tuple)):
            out = [out]
        import numpy as np

        return [np.asarray(o) for o in out]

    def predict(self, arrays: list[Any]) -> list[Any]:
        if not self.has_layers:
            return self.call(arrays)
        if self.fixed_batch is None:
            return self._predict(arrays, PREDICT_BATCH)
        if not self.stateful:      # one predict() in batches of the fixed size
            return self._in_fixed_batches(arrays, lambda a: self._predict(a, self.fixed_batch),
                                          whole=True)
        return self._in_fixed_batches(arrays, lambda a: self._predict(a, self.fixed_batch))

    def _predict(self, arrays: list[Any], batch_size: int | None) -> list[Any]:
        return self._as_list(self.obj.predict(self._feed(arrays), verbose=0,
                                              batch_size=batch_size))

    def call(self, arrays: list[Any], training: bool | None = None) -> list[Any]:
        if self.fixed_batch is None:
            return self._call(arrays, training)
        return self._in_fixed_batches(arrays, lambda a: self._call(a, training))

    def _in_fixed_batches(self, arrays: list[Any], fn: Any, whole: bool = False) -> list[Any]:
        """``fn`` on ``fixed_batch``-sample slices (the last one padded by repeating its last
        sample), stateful layers reset before each; the outputs trimmed and joined.
        ``whole``: one ``fn`` call on all the padded samples (``fn`` batches them itself)."""
        import numpy as np

        size = int(self.fixed_batch or 1)
        n = int(arrays[0].shape[0])
        short = -n % size
        if short:
            arrays = [np.concatenate([a, np.repeat(a[-1:], short, axis=0)]) for a in arrays]
        starts = [0] if whole else list(range(0, n + short, size))
        step = n + short if whole else size
        parts = []
        for start in starts:
            self.reset_states()
            parts.append(fn([a[start : start + step] for a in arrays]))
        return [np.concatenate([p[j] for p in parts])[:n] for j in range(len(parts[0]))]

    def reset_states(self) -> None:
        """Zero the state stateful RNNs carry from one call to the next (Keras 3 spells it
        ``reset_state``, tf_keras ``reset_states``)."""
        for layer in self.stateful:
            reset = getattr(layer, "reset_states", None) or getattr(layer, "reset_state", None)
            if reset is not None:
                reset()

    def _call(self, arrays: list[Any], training: bool | None = None) -> list[Any]:
        if not self.has_layers:
            feed = {k: self.tf.constant(a) for k, a in zip(self.input_keys, arrays, strict=False)}
            return self._as_list(self.fn(**feed))
        feed = self._feed([self.tf.constant(a) for a in arrays])
        if training is None:
            return self._as_list(self.obj(feed))
        return self._as_list(self.obj(feed, training=training))

    def layers(self) -> list[tuple[str, Any]]:
        """Every layer of every nested model, with the static graph's path for it: rooted at
        ROOT_PATH whatever the model is called, nested models by their layer name."""
        found: list[tuple[str, Any]] = []
        seen: set[int] = set()

        def walk(model: Any, prefix: str) -> None:
            for layer in getattr(model, "layers", None) or []:
                if id(layer) in seen or type(layer).__name__ == "InputLayer":
                    continue
                seen.add(id(layer))
                path = f"{prefix}/{layer.name}"
                found.append((path, layer))
                walk(layer, path)

        walk(self.obj, ROOT_PATH)
        return found

    def sublayers(self) -> list[Any]:
        """Every layer object, wrapped ones and RNN cells included (Bidirectional's LSTMs
        are not in ``.layers``)."""
        flatten = getattr(self.obj, "_flatten_layers", None)
        if flatten is None:
            return [layer for _, layer in self.layers()]
        return list(flatten(include_self=False, recursive=True))

    def get_state(self) -> Any:
        """What a forward pass can change: the non-trainable variables (BatchNormalization
        moving statistics). Restoring only these is much cheaper than all the weights."""
        return [(v, v.numpy()) for v in self.obj.non_trainable_weights]

    def set_state(self, state: Any) -> None:
        for variable, value in state:
            variable.assign(value)

    def save_reload(self) -> tuple[LoadedModel | None, str]:
        """The model saved to a temporary .keras and loaded again, and how the two are
        compared. None instead of a copy when the saved archive holds exactly what the
        user's .keras held: reloading it would rebuild this very model."""
        target = self.workdir / "roundtrip.keras"
        self.obj.save(str(target))
        if self.source is None or self.source.suffix != ".keras":
            why: str | None = "the source is not a .keras archive"
        else:
            why = archive_difference(self.source, target)
        if why is None:
            return None, ("not reloaded: the saved .keras holds the loaded one's config "
                          "and byte-identical weights")
        again = _load_keras(self.lib, target, self.trust)
        return (LoadedModel(self.tf, again, self.loader, self.lib, self.trust, self.workdir,
                            self.specs, None), f"reloaded and run ({why})")


def _apply_id_hints(specs: list[InputSpec], hints: list[InputSpec]) -> None:
    """Copy what the static graph knows about token-id inputs (the Embedding each feeds,
    even through a float32 Input) onto the loaded model's specs, by name, else by position."""
    by_name = {h.name: h for h in hints}
    for i, spec in enumerate(specs):
        hint = by_name.get(spec.name)
        if hint is None and len(hints) == len(specs):
            hint = hints[i]
        if hint is not None and hint is not spec and hint.feeds_embedding:
            spec.feeds_embedding, spec.vocab, spec.low = True, hint.vocab, hint.low


def _live_token_inputs(model: Any, tensors: list[Any]) -> dict[int, tuple[int, bool]]:
    """{input index: (smallest input_dim, any mask_zero)} of the model's own Embeddings that
    read a model input directly or through layers that only move values (PASS_THROUGH),
    from the loaded model's graph (Keras 3 and tf_keras nodes both have input_tensors)."""
    index = {id(t): i for i, t in enumerate(tensors)}
    found: dict[int, tuple[int, bool]] = {}
    for layer in getattr(model, "layers", None) or []:
        if type(layer).__name__ != "Embedding":
            continue
        for node in getattr(layer, "_inbound_nodes", None) or []:
            i = index.get(id(_value_source(_first_input(node))))
            if i is not None:
                dim, mask = found.get(i, (int(layer.input_dim), False))
                found[i] = (min(dim, int(layer.input_dim)),
                            mask or bool(getattr(layer, "mask_zero", False)))
    return found


def _first_input(node: Any) -> Any:
    try:
        tensors = node.input_tensors
    except Exception:  # an exotic node: no hint
        return None
    if isinstance(tensors, (list, tuple)):
        return tensors[0] if len(tensors) == 1 else None
    return tensors


def _value_source(tensor: Any) -> Any:
    """Follow a symbolic tensor back through PASS_THROUGH layers (Reshape, Flatten, ...)."""
    for _ in range(8):
        history = getattr(tensor, "_keras_history", None)
        layer = history[0] if history else None
        if layer is None or type(layer).__name__ not in PASS_THROUGH:
            return tensor
        nodes = getattr(layer, "_inbound_nodes", None) or []
        tensor = _first_input(nodes[history[1]]) if len(nodes) > history[1] else None
    return tensor


def _embedding_bounds(model: Any) -> tuple[int | None, bool]:
    """(smallest Embedding input_dim, whether any Embedding masks id 0), nested included."""
    dims, masked = [], False

    def walk(m: Any) -> None:
        nonlocal masked
        for layer in getattr(m, "layers", None) or []:
            if type(layer).__name__ == "Embedding":
                dims.append(int(layer.input_dim))
                masked = masked or bool(getattr(layer, "mask_zero", False))
            walk(layer)

    walk(model)
    return (min(dims) if dims else None), masked


def _signature(obj: Any) -> Any:
    sigs = getattr(obj, "signatures", {}) or {}
    for key in ("serving_default", "serve"):
        if key in sigs:
            return sigs[key]
    if sigs:
        return sigs[sorted(sigs)[0]]
    raise ProbeError("unsupported", "the SavedModel has no signatures to call")


# ----------------------------------------------------------------------------- loading


def _load_keras(lib: Any, path: Path, trust: bool,
                custom_objects: dict[str, Any] | None = None) -> Any:
    kwargs: dict[str, Any] = {"compile": False}
    if path.suffix == ".keras" or (lib.__name__ == "keras" and path.suffix in (".h5", ".hdf5")):
        kwargs["safe_mode"] = not trust
    if custom_objects:
        kwargs["custom_objects"] = custom_objects
    return lib.models.load_model(str(path), **kwargs)


def _load_tf_keras(tf: Any, tf_keras: Any, path: Path, trust: bool, notes: list[str]) -> Any:
    """tf_keras' model, Keras 2 recurrent layers it cannot run as saved loaded as their
    equivalents (inspector.probe.legacy_layers); ``notes`` says which."""
    used: set[str] = set()
    gpu = bool(tf.config.get_visible_devices("GPU"))
    obj = _load_keras(tf_keras, path, trust, legacy_layers.stand_ins(tf_keras, used, gpu=gpu))
    notes.extend(legacy_layers.notes(used))
    return obj


def load(tf: Any, path: Path, trust: bool, workdir: Path, specs: list[InputSpec],
         vocab: int | None) -> tuple[LoadedModel, list[str]]:
    """Keras 3 first, tf_keras where Keras 3 cannot (Keras 2 SavedModels and some Keras 2 h5
    files) or misbuilds the inputs, bare tf.saved_model signatures for SavedModels without
    Keras metadata. ``specs``: the input shapes the static reader read from the file."""
    notes: list[str] = []
    if path.is_dir():
        if not trust:
            refuse_graph_code(path)
        if (path / "keras_metadata.pb").is_file():
            try:
                import tf_keras

                obj = _load_keras(tf_keras, path, trust)
                return LoadedModel(tf, obj, "tf_keras", tf_keras, trust, workdir, specs,
                                   vocab), notes
            except Exception as exc:
                notes.append(f"tf_keras could not load it ({_short(exc)}); using signatures")
        obj = tf.saved_model.load(str(path))
        return LoadedModel(tf, obj, "tf.saved_model", None, trust, workdir, specs, vocab), notes
    if path.name.endswith(".weights.h5") or path.name.endswith("_weights.h5"):
        raise ProbeError("unsupported", "a weights-only file has no architecture to run")
    import keras

    try:
        obj = _load_keras(keras, path, trust)
    except Exception as exc:
        first = exc
    else:
        return _checked_keras3(tf, obj, keras, path, trust, workdir, specs, vocab, notes)
    if not trust and "safe_mode" in str(first):
        raise ProbeError("load", f"Keras refused to load code from the file "
                         f"(safe_mode): {_short(first)}; pass --trust to allow it")
    notes.append(f"Keras 3 could not load it ({_short(first)}); tried tf_keras")
    try:
        import tf_keras

        obj = _load_tf_keras(tf, tf_keras, path, trust, notes)
    except Exception as exc:
        raise ProbeError("load", f"cannot load the model: Keras 3: {_short(first)}; "
                         f"tf_keras: {_short(exc)}") from None
    return LoadedModel(tf, obj, "tf_keras", tf_keras, trust, workdir, specs, vocab), notes


def _checked_keras3(tf: Any, obj: Any, keras: Any, path: Path, trust: bool, workdir: Path,
                    specs: list[InputSpec], vocab: int | None,
                    notes: list[str]) -> tuple[LoadedModel, list[str]]:
    """Keras 3's model, or tf_keras' when Keras 3 built inputs unlike those the file records
    (it loads some Keras 2 h5 files without an error but wrongly: a Sequential whose first
    layer carries ``batch_input_shape`` gains a dimension) and tf_keras builds them right."""
    wrong = _input_mismatch(obj, specs)
    if wrong is None:
        return LoadedModel(tf, obj, "keras3", keras, trust, workdir, specs, vocab), notes
    why = f"Keras 3 loaded it with {wrong}"
    replaced: list[str] = []  # stand-ins tf_keras used: said only when its model is kept
    try:
        import tf_keras

        other = _load_tf_keras(tf, tf_keras, path, trust, replaced)
    except Exception as exc:
        notes.append(f"{why}; tf_keras could not load it ({_short(exc)}); using Keras 3's model")
        return LoadedModel(tf, obj, "keras3", keras, trust, workdir, specs, vocab), notes
    if _input_mismatch(other, specs) is not None:
        notes.append(f"{why}; tf_keras disagrees with the file too; using Keras 3's model")
        return LoadedModel(tf, obj, "keras3", keras, trust, workdir, specs, vocab), notes
    notes.append(f"{why}; using tf_keras")
    notes.extend(replaced)
    return LoadedModel(tf, other, "tf_keras", tf_keras, trust, workdir, specs, vocab), notes


def _input_mismatch(obj: Any, specs: list[InputSpec]) -> str | None:
    """How the first of the model's inputs that disagrees with the statically read ``specs``
    (paired by name, else by position) differs: rank, or a dimension both fix. None when
    they agree or nothing can be compared."""
    tensors = getattr(obj, "inputs", None) or []
    by_name = {s.name: s for s in specs}
    for i, tensor in enumerate(tensors):
        name = str(getattr(tensor, "name", "") or "").split(":")[0]
        spec = by_name.get(name) or (specs[i] if len(specs) == len(tensors) else None)
        if spec is None:
            continue
        loaded = tuple(None if d is None else int(d) for d in tensor.shape)
        recorded = tuple(spec.shape)
        if len(loaded) != len(recorded) or any(
                a is not None and b is not None and a != b
                for a, b in zip(loaded, recorded, strict=True)):
            return f"input shape {loaded}, the file records {recorded}"
    return None


def refuse_graph_code(path: Path) -> None:
    """Defence in depth before TensorFlow runs a SavedModel's functions (tf_keras falls back
    to them too): the parent refuses such files already, the child checks the copy again."""
    from inspector.errors import KinspectError
    from inspector.readers.savedmodel import read_savedmodel
    from inspector.rules.graph_security_rules import dangerous_sites

    try:
        graph = read_savedmodel(str(path))
    except KinspectError as exc:
        raise ProbeError("load", exc.one_line()) from None
    ops = graph.graph_ops
    reasons = sorted(dangerous_sites(ops)) if ops is not None else []
    if ops is not None and not ops.complete:
        reasons.append("a graph too big to check")
    reasons += [f"a keras_metadata record unlike the model config ({extra.where})"
                for extra in graph.extra_configs if extra.differs]
    if reasons:
        raise ProbeError("refused", "the SavedModel would run " + ", ".join(reasons[:6])
                         + "; pass --trust to probe it anyway")


def _short(exc: BaseException) -> str:
    return error_text(exc)


def _copy_in(src: Path, workdir: Path) -> Path:
    """Loaders get a private copy: HDF5 locking and SavedModel readers never touch the
    user's file, and a loader that wants a writable path has one. Regular files only,
    nothing from outside a SavedModel directory, size-capped (see private_copy)."""
    try:
        return private_copy(src, workdir)
    except CopyRefused as exc:
        raise ProbeError("load", f"refused to copy the model for loading: {exc}") from None
    except OSError as exc:
        raise ProbeError("load", f"cannot copy the model for loading: {exc}") from None


# ----------------------------------------------------------------------------- device


def pick_device(tf: Any, requested: str) -> tuple[str, str]:
    """(TF device string, human name). Must run before any op touches a device."""
    gpus = tf.config.list_physical_devices("GPU")
    if requested == "gpu" and not gpus:
        raise ProbeError("device", "--device gpu: TensorFlow sees no GPU (is a CUDA build of "
                         "TensorFlow installed and a driver present?); use --device cpu/auto")
    if requested == "cpu" or not gpus:
        if gpus:
            tf.config.set_visible_devices([], "GPU")
        return "/CPU:0", "CPU:0"
    details = tf.config.experimental.get_device_details(gpus[0])
    return "/GPU:0", f"GPU:0 ({details.get('device_name', 'GPU')})"


def _device_used(tf: Any, device: str) -> str:
    with tf.device(device):
        t = tf.constant([1.0]) + 1.0
    return str(t.device).rsplit("device:", 1)[-1]


# ----------------------------------------------------------------------------- main


def _fault(kind: str) -> None:
    """Test hook for the parent's crash/hang/memory handling (never set in normal runs)."""
    if kind == "segfault":
        import ctypes

        ctypes.string_at(0)
    elif kind == "hang":
        time.sleep(3600)
    elif kind == "exit":
        os._exit(3)
    elif kind == "oom":
        hog = []
        while True:
            hog.append(bytearray(256 * 1024 * 1024))


def read_plan(argv: list[str]) -> dict[str, Any]:
    if not argv or argv[0] == "-":
        return json.loads(sys.stdin.read())
    text = argv[0]
    if not text.lstrip().startswith("{"):
        text = Path(text).read_text(encoding="utf-8")
    return json.loads(text)


def main(argv: list[str] | None = None) -> int:
    events_fd = os.dup(1)
    os.dup2(2, 1)                  # anything printed from here on lands on stderr
    sys.stdout = sys.stderr
    emit = Emitter(os.fdopen(events_fd, "w", encoding="utf-8", buffering=1))
    try:
        plan = read_plan(sys.argv[1:] if argv is None else argv)
    except (OSError, ValueError) as exc:
        emit({"event": "error", "kind": "plan", "message": f"unreadable probe plan: {exc}"})
        return 2
    plans = plan.get("batch", [plan])
    status = 0
    for one in plans:
        extra = {"path": one.get("path")} if "batch" in plan else {}
        event = _run_one(one, emit)
        emit({**event, **extra})
        status = status or (event["event"] == "error")
    return int(status)


def _run_one(plan: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    """The terminal event for one plan. A batch plan (``{"batch": [plan, ...]}``) probes
    several models in one process and tags each terminal event with its ``path``: tests and
    benchmarks use it to pay for the TensorFlow import once."""
    try:
        return {"event": "result", "probe": run(plan, emit)}
    except ProbeError as exc:
        return {"event": "error", "kind": exc.kind, "message": str(exc)}
    except MemoryError:
        return {"event": "error", "kind": "memory", "message": "the probe ran out of memory"}
    except Exception as exc:
        traceback.print_exc()
        return {"event": "error", "kind": "crashed", "message": _short(exc)}


def run(raw: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    plan = ProbePlan.from_json(raw) or ProbePlan()
    if not plan.path:
        raise ProbeError("plan", "the probe plan names no model file")
    opts = plan.options
    fault = os.environ.get(FAULT_ENV)
    limit = opts.memory_mb
    memory_cap = _limit_memory(int(limit)) if limit else None
    timer = Timer()
    emit({"event": "stage", "stage": "import", "message": "importing TensorFlow"})
    emit({"event": "progress", "stage": "import", "fraction": 0.0})
    if fault:
        _fault(fault)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with timer.stage("import"):
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
    emit({"event": "progress", "stage": "import", "fraction": IMPORT_DONE})
    device, device_name = pick_device(tf, str(opts.device))
    specs = static_specs(plan)
    source = Path(plan.path)
    trust = bool(opts.trust)
    with tempfile.TemporaryDirectory(prefix="kinspect-probe-", dir=plan.workdir) as tmp, \
            tf.device(device):
        workdir = Path(tmp)
        emit({"event": "stage", "stage": "load", "message": f"loading {source.name}"})
        with timer.stage("load"):
            private = _copy_in(source, workdir)
            model, notes = load(tf, private, trust, workdir, specs, plan.vocab)
            model.source = private
        emit({"event": "progress", "stage": "load", "fraction": LOAD_DONE})
        if plan.mode == ACTIVATIONS:
            return _activations(tf, device, model, notes, plan.to_json(), emit, timer)
        real = None
        if opts.inputs:
            emit({"event": "stage", "stage": "inputs", "message": "reading --inputs"})
            with timer.stage("inputs"):
                try:
                    real = load_real_inputs(str(opts.inputs), model.specs)
                except InputsError as exc:
                    raise ProbeError("inputs", str(exc)) from None
        try:
            body = _measure(model, plan, real, emit, timer, plan.macs_per_sample)
        except InputsError as exc:
            fitted = None if real is not None else fit_free_length(model, int(opts.seed or 0))
            if fitted is None:
                raise ProbeError("inputs", str(exc)) from None
            emit({"event": "stage", "stage": "outputs", "message":
                  f"inputs of length {DEFAULT_DIM} fail: measuring again at {fitted['length']}"})
            macs = (plan.macs_per_sample or 0) * fitted["length"] ** free_axes(model.specs)
            try:
                body = _measure(model, plan, real, emit, timer, macs or None)
            except InputsError as again:
                raise ProbeError("inputs", str(again)) from None
            body["free_length"] = {**fitted, "reason": str(exc)}
        body["fixed_batch"] = model.fixed_batch
        used = _device_used(tf, device)
    import keras

    return {
        "status": protocol.STATUS_OK,
        "reason": None,
        "loader": model.loader,
        "loader_notes": notes,
        "device": used,
        "device_requested": str(opts.device),
        "device_name": device_name,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": sys.version.split()[0]},
        "timings": timer.timings,
        "memory_cap": memory_cap,
        **body,
    }


def _measure(model: LoadedModel, plan: ProbePlan, real: Any, emit: Emitter, timer: Timer,
             macs: float | None) -> dict[str, Any]:
    """The measurements, sized by the static cost ``macs`` of one sample."""
    opts = plan.options
    samples, samples_why = samples_for_cost(opts.samples, macs)
    sizes = Sizes.for_cost(macs, opts.check_sizes, model.fixed_batch)
    body = run_measurements(model, samples, int(opts.seed or 0), real, _after_load(emit),
                            timer, sizes, macs, input_range=plan.input_range)
    body["samples_chosen"] = samples_why
    return body


def _activations(tf: Any, device: str, model: LoadedModel, notes: list[str],
                 plan: dict[str, Any], emit: Emitter, timer: Timer) -> dict[str, Any]:
    """The ``activations`` mode (kinspect diff): outputs and layer outputs on given inputs
    written to ``plan["out_file"]``, instead of the measurements."""
    from inspector.probe.activations import ActivationsError, record_activations

    emit({"event": "stage", "stage": "activations", "message": "recording layer outputs"})
    with timer.stage("activations"):
        try:
            body = record_activations(model, plan)
        except ActivationsError as exc:
            raise ProbeError("inputs", str(exc)) from None
    emit({"event": "progress", "stage": "activations", "fraction": 1.0})
    return {"status": protocol.STATUS_OK, "reason": None, "loader": model.loader,
            "loader_notes": notes, "device": _device_used(tf, device),
            "timings": timer.timings, **body}


# Overall progress when TensorFlow is imported and when the model is loaded (a ResNet50 takes
# ~3 s and ~5 s of a ~25 s run): the measurements' own fractions fill the rest.
IMPORT_DONE = 0.1
LOAD_DONE = 0.25


def _after_load(emit: Emitter) -> Callable[[dict[str, Any]], None]:
    """``emit`` with the measurements' progress fractions mapped into [LOAD_DONE, 1]."""
    def forward(event: dict[str, Any]) -> None:
        if event.get("event") == protocol.PROGRESS:
            fraction = float(event.get("fraction") or 0.0)
            event = {**event, "fraction": round(LOAD_DONE + (1 - LOAD_DONE) * fraction, 3)}
        emit(event)

    return forward


def static_specs(plan: ProbePlan | dict[str, Any]) -> list[InputSpec]:
    """The plan's input specs from the static graph, with what it knows about token ids:
    ``id_inputs`` {name: {vocab, mask_zero}} names the inputs that feed an Embedding."""
    if not isinstance(plan, ProbePlan):
        plan = ProbePlan.from_json(plan) or ProbePlan()
    ids = plan.id_inputs or {}
    specs = []
    for s in plan.inputs or []:
        if not s.get("shape"):
            continue
        spec = InputSpec(s["name"], list(s["shape"]), s.get("dtype") or "float32", plan.vocab)
        hint = ids.get(s["name"])
        if isinstance(hint, dict) and isinstance(hint.get("vocab"), int):
            spec.feeds_embedding, spec.vocab = True, int(hint["vocab"])
            spec.low = 1 if hint.get("mask_zero") else 0
        specs.append(spec)
    return specs


def _limit_memory(mb: int) -> str:
    """Cap the memory this process may allocate (set here rather than in the parent's
    preexec_fn, which is unsafe when the parent has threads, as the TUI does). RLIMIT_DATA,
    not RLIMIT_AS: TensorFlow reserves GBs of address space it never uses (CUDA far more),
    so an address-space cap would break it long before memory runs short."""
    try:
        import resource

        cap = mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    except (ImportError, AttributeError, ValueError, OSError) as exc:
        return f"not applied on this platform ({type(exc).__name__})"
    return f"data memory capped at {mb} MB (RLIMIT_DATA)"
