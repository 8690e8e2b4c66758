"""The optimizer's step count stored next to the weights (``ModelGraph.optimizer_iterations``).

Rules use it to tell how far BatchNormalization moving statistics can have moved
(``1 - momentum ** steps``). Keras keeps it as a scalar integer variable:

- tf.keras 2 ``.h5``: ``optimizer_weights/iteration:0`` (older: ``optimizer_weights/<Opt>/iter:0``)
- Keras 3 ``.h5``:    ``optimizer_weights/<opt>/iteration``
- Keras 3 ``.keras``: ``optimizer/vars/0`` inside ``model.weights.h5``

Only scalar integer datasets reached through hard links are read; anything else gives None.
"""

from __future__ import annotations

import h5py
import numpy as np

from inspector.readers.safe_io import H5Guard

_STEP_NAMES = ("iteration", "iterations", "iter")
_MAX_DEPTH = 3


def _scalar_int(guard: H5Guard, obj: object) -> int | None:
    if not isinstance(obj, h5py.Dataset) or obj.shape not in ((), (1,)):
        return None
    if obj.dtype.kind not in "iu" or not guard.dataset_ok(obj):
        return None
    try:
        value = int(np.asarray(obj[()]).reshape(-1)[0])
    except (OSError, ValueError, TypeError, IndexError):
        return None
    return value if value >= 0 else None


def _find_steps(guard: H5Guard, group: h5py.Group, depth: int) -> int | None:
    for name in guard.names(group):
        if name.split(":", 1)[0] in _STEP_NAMES:
            found = _scalar_int(guard, guard.child(group, name))
            if found is not None:
                return found
    if depth >= _MAX_DEPTH:
        return None
    for name in guard.names(group):
        sub = guard.child(group, name)
        if isinstance(sub, h5py.Group):
            found = _find_steps(guard, sub, depth + 1)
            if found is not None:
                return found
    return None


def h5_optimizer_iterations(guard: H5Guard, root: h5py.Group) -> int | None:
    """Step count from a legacy ``.h5`` file's ``optimizer_weights`` group."""
    group = guard.child(root, "optimizer_weights")
    return _find_steps(guard, group, 0) if isinstance(group, h5py.Group) else None


def keras_zip_optimizer_iterations(guard: H5Guard, weights_root: h5py.Group) -> int | None:
    """Step count from a ``.keras`` archive's ``model.weights.h5`` (``optimizer/vars/0``)."""
    return _scalar_int(guard, guard.child(weights_root, "optimizer/vars/0"))
