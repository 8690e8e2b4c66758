"""Keras 2 layers that today's tf_keras cannot load or run as saved, loaded as layers that
compute the same function (only for the probe; the loader notes say what was replaced).

- ``CuDNNGRU`` / ``CuDNNLSTM`` (medaka's models, many 2018-2019 NLP models): their op
  (``CudnnRNNV3``) has GPU kernels only, so on a machine without a GPU every call fails.
  ``GRU(reset_after=True, recurrent_activation="sigmoid")`` and
  ``LSTM(recurrent_activation="sigmoid")`` compute the same function, and tf_keras' loader
  converts the cuDNN weight layout into theirs (``_convert_rnn_weights``).
- ``GRU`` saved by Keras < 2.1.5 (shakkala's models): the config has no ``reset_after``, the
  layer applied the reset gate before the recurrent product (``reset_after=False``, one bias
  row), and tf_keras' default ``reset_after=True`` refuses those weights.
- ``Embedding`` with an integer ``dtype`` (Keras 2.0, ethnicolr 0.2's ``*_old`` models): the
  dtype named the ids it reads; tf_keras makes it the table's dtype and cannot initialize
  an int32 table. The table is float32, as Keras 2.0 made it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# CuDNN class -> (plain layer class, the settings that make it compute the same function)
CPU_EQUIVALENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "CuDNNGRU": ("GRU", {"reset_after": True, "recurrent_activation": "sigmoid"}),
    "CuDNNLSTM": ("LSTM", {"recurrent_activation": "sigmoid"}),
}
OLD_GRU = "GRU without reset_after"
INT_EMBEDDING = "Embedding with an integer dtype"
Adjust = Callable[[dict[str, Any]], dict[str, Any] | None]


def _stand_in(base: type, name: str, used: set[str], key: str, adjust: Adjust) -> type:
    """A class the deserializer finds under ``name`` that builds ``base`` from the config
    ``adjust`` returns (``key`` goes into ``used``), or from the config as saved (None)."""

    class StandIn(base):  # type: ignore[misc, valid-type]
        @classmethod
        def from_config(cls, config: dict[str, Any]) -> Any:
            changed = adjust(config)
            if changed is None:
                return base.from_config(config)
            used.add(key)
            return base.from_config(changed)

    StandIn.__name__ = StandIn.__qualname__ = name
    return StandIn


def _without_reset_after(config: dict[str, Any]) -> dict[str, Any] | None:
    return None if "reset_after" in config else {**config, "reset_after": False}


def _int_table(config: dict[str, Any]) -> dict[str, Any] | None:
    dtype = config.get("dtype")
    if isinstance(dtype, str) and dtype.startswith(("int", "uint")):
        return {**config, "dtype": "float32"}
    return None


def stand_ins(lib: Any, used: set[str], *, gpu: bool) -> dict[str, type]:
    """``custom_objects`` for ``lib`` (tf_keras): old GRUs and Embeddings always, CuDNN
    layers when no GPU is visible; what a load replaced is added to ``used`` (see notes())."""
    objects = {
        "GRU": _stand_in(lib.layers.GRU, "GRU", used, OLD_GRU, _without_reset_after),
        "Embedding": _stand_in(lib.layers.Embedding, "Embedding", used, INT_EMBEDDING,
                               _int_table),
    }
    if not gpu:
        for name, (plain, fixed) in CPU_EQUIVALENTS.items():
            objects[name] = _stand_in(getattr(lib.layers, plain), name, used, name,
                                      lambda config, fixed=fixed: {**config, **fixed})
    return objects


def notes(used: set[str]) -> list[str]:
    """Loader notes for what a load replaced."""
    out = []
    done = [f"{name} as {plain}({', '.join(f'{k}={v!r}' for k, v in fixed.items())})"
            for name, (plain, fixed) in sorted(CPU_EQUIVALENTS.items()) if name in used]
    if done:
        out.append(f"CuDNN layers run on a GPU only (none here): ran {', '.join(done)}, "
                   "the same computation")
    if OLD_GRU in used:
        out.append("GRU saved without reset_after (Keras < 2.1.5): ran as "
                   "GRU(reset_after=False), as it was trained")
    if INT_EMBEDDING in used:
        out.append("Embedding saved with an integer dtype (Keras 2.0: the dtype of its ids): "
                   "ran with a float32 table, as Keras 2.0 built it")
    return out
