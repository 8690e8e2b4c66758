"""Config changes between paired layers, the compile settings and the model's inputs/outputs.

Only keys both files store are compared: Keras versions add and drop config keys (Keras 3
writes ``renorm`` on BatchNormalization, Keras 2 ``activity_regularizer`` on Dense), and a
key one format lacks is not a change of the model. For the same reason nested dicts
(initializer configs) compare on their common keys only, and equivalent spellings are
normalized first (BatchNormalization ``axis`` [3] vs -1 on 4-D data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from inspector.diff.match import LayerPair
from inspector.graph import LayerNode, ModelGraph, TensorSpec
from inspector.report.model import shape_json

# Settings that change what a layer computes or learns: a change is a warning (KD201).
TRACKED = ("rate", "trainable", "activation", "recurrent_activation", "dtype_policy")
# Structure (compared by the layer matching) and identity keys, never config changes.
SKIPPED = frozenset({"name", "dtype", "layers", "input_layers", "output_layers",
                     "input_layer", "build_input_shape", "seed"})
REL_TOL = 1e-6
# (node role, key) pairs Keras 2 and 3 spell differently for the same model: Keras 3 also
# writes the backward layer's ``go_backwards`` into its cell's config.
VERSION_SPELLINGS = frozenset({("cell", "go_backwards")})


@dataclass
class ConfigChange:
    """One value that differs; ``path`` is B's layer path (None: model level)."""

    path: str | None
    key: str
    a: Any
    b: Any
    tracked: bool

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "key": self.key, "a": self.a, "b": self.b,
                "tracked": self.tracked}


def layer_changes(pair: LayerPair) -> list[ConfigChange]:
    """What differs between the two sides of a matched pair (nothing for a one-sided one)."""
    a, b = pair.a, pair.b
    if a is None or b is None:
        return []
    changes: list[ConfigChange] = []
    if a.trainable != b.trainable:
        changes.append(ConfigChange(b.path, "trainable", a.trainable, b.trainable, True))
    if a.dtype_policy and b.dtype_policy and a.dtype_policy != b.dtype_policy:
        changes.append(ConfigChange(b.path, "dtype_policy", a.dtype_policy, b.dtype_policy,
                                    True))
    ca, cb = _normalized(a), _normalized(b)
    for key in sorted(ca.keys() & cb.keys()):
        if key in SKIPPED or key == "trainable" or (b.role, key) in VERSION_SPELLINGS:
            continue
        if not same_value(ca[key], cb[key]):
            changes.append(ConfigChange(b.path, key, ca[key], cb[key], key in TRACKED))
    return changes


def _normalized(node: LayerNode) -> dict[str, Any]:
    cfg = dict(node.config)
    if "axis" in cfg:
        cfg["axis"] = _axis(cfg["axis"], node)
    return cfg


def _axis(value: Any, node: LayerNode) -> Any:
    """[3] and -1 are the same axis of 4-D data: one positive int (or list) when the rank is
    known from the output shape."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    shape = node.output_shape
    rank = len(shape) if isinstance(shape, tuple) else None
    if isinstance(value, int) and not isinstance(value, bool) and value < 0 and rank:
        return value + rank
    return value


def same_value(a: Any, b: Any) -> bool:
    """Equal up to float32 round trips, tuples vs lists, and keys only one side has."""
    if isinstance(a, dict) and isinstance(b, dict):
        return all(same_value(a[k], b[k]) for k in a.keys() & b.keys())
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0)
    return bool(a == b)


def training_changes(graph_a: ModelGraph, graph_b: ModelGraph) -> list[ConfigChange]:
    """Loss, metrics, optimizer class (case-insensitive: Keras 2 writes ``Adam``, Keras 3
    ``adam`` as the name), learning rate and the optimizer settings both files store."""
    ta, tb = graph_a.training_config, graph_b.training_config
    if (ta is None and tb is None) or graph_a.root is None or graph_b.root is None:
        return []  # weights-only files carry no compile settings: nothing to compare
    if ta is None or tb is None:
        return [ConfigChange(None, "compiled", ta is not None, tb is not None, True)]
    changes: list[ConfigChange] = []
    for key in ("loss", "metrics"):
        if not _same_setting(ta.get(key), tb.get(key)):
            changes.append(ConfigChange(None, key, ta.get(key), tb.get(key), True))
    oa, ob = ta.get("optimizer") or {}, tb.get("optimizer") or {}
    cls_a, cls_b = oa.get("class_name"), ob.get("class_name")
    if str(cls_a).lower() != str(cls_b).lower():
        changes.append(ConfigChange(None, "optimizer", cls_a, cls_b, True))
        return changes
    if not same_value(oa.get("learning_rate"), ob.get("learning_rate")):
        changes.append(ConfigChange(None, "learning_rate", oa.get("learning_rate"),
                                    ob.get("learning_rate"), True))
    cfg_a, cfg_b = oa.get("config") or {}, ob.get("config") or {}
    for key in sorted(cfg_a.keys() & cfg_b.keys()):
        if key in ("name", "learning_rate", "lr"):
            continue
        if not same_value(cfg_a[key], cfg_b[key]):
            changes.append(ConfigChange(None, f"optimizer.{key}", cfg_a[key], cfg_b[key],
                                        True))
    return changes


def _same_setting(a: Any, b: Any) -> bool:
    """Also equal: a Keras 2 h5's per-output list (``[["class_out_accuracy"], ...]``) and
    the ``{"class_out": ["accuracy"], ...}`` dict the same model gets in other files."""
    if isinstance(a, list) and isinstance(b, dict):
        a, b = b, a
    if isinstance(a, dict) and isinstance(b, list) and len(a) == len(b):
        return all(same_value(v, _unprefixed(item, f"{k}_"))
                   for (k, v), item in zip(a.items(), b, strict=True))
    return same_value(a, b)


def _unprefixed(value: Any, prefix: str) -> Any:
    if isinstance(value, str):
        return value.removeprefix(prefix)
    if isinstance(value, list):
        return [_unprefixed(v, prefix) for v in value]
    return value


def io_changes(graph_a: ModelGraph, graph_b: ModelGraph) -> list[dict[str, Any]]:
    """Inputs / outputs (by position) whose shape or dtype changed, or that one side lacks.
    Skipped when either side declares none (a weights-only file)."""
    out: list[dict[str, Any]] = []
    for kind, sa, sb in (("input", graph_a.inputs, graph_b.inputs),
                         ("output", graph_a.outputs, graph_b.outputs)):
        if not sa or not sb:
            continue
        for i in range(max(len(sa), len(sb))):
            a = _spec(sa[i]) if i < len(sa) else None
            b = _spec(sb[i]) if i < len(sb) else None
            if a is None or b is None or (
                    a["shape"] is not None and b["shape"] is not None
                    and a["shape"] != b["shape"]) or (
                    a["dtype"] and b["dtype"] and a["dtype"] != b["dtype"]):
                out.append({"kind": kind, "index": i, "a": a, "b": b})
    return out


def _spec(t: TensorSpec) -> dict[str, Any]:
    return {"shape": shape_json(t.shape), "dtype": t.dtype}
