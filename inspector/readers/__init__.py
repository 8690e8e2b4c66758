"""Static readers: every Keras container -> one ModelGraph, without importing TensorFlow.

``open_model`` sniffs the container by content (``detect.py``), dispatches to the reader for
it and computes the graph facts (parameter counts, shapes) before returning. A file that is
both HDF5 and zip gets a container issue whichever half was read.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from pathlib import Path

from inspector.errors import ErrorKind, KinspectError
from inspector.graph import ContainerIssue, ModelGraph
from inspector.readers import detect
from inspector.readers.graph_facts import finalize
from inspector.readers.keras_config import strict
from inspector.readers.safe_io import open_h5

__all__ = ["open_model"]


def _read_hdf5(path: Path, shown: str) -> ModelGraph:
    from inspector.readers.h5_model import read_h5_model
    from inspector.readers.weights_only import read_k2_weights, read_k3_weights

    size = path.stat().st_size
    f = open_h5(path, shown)
    try:
        try:
            kind = detect.classify_h5(f)
        except detect.H5_ERRORS as exc:
            raise KinspectError(shown, f"corrupt HDF5 root group ({type(exc).__name__}: "
                                f"{' '.join(str(exc).split())[:160]})", ErrorKind.CORRUPT) from exc
        if kind == detect.H5_MODEL:
            return read_h5_model(path, f, size)
        if kind == detect.H5_WEIGHTS_K2:
            return read_k2_weights(path, f, size)
        if kind == detect.H5_WEIGHTS_K3:
            return read_k3_weights(path, f, size)
    except BaseException:
        f.close()
        raise
    f.close()
    raise KinspectError(shown, "HDF5 file without a Keras model_config, layer_names or layers "
                        "group is not a Keras model", ErrorKind.NOT_A_MODEL)


def _read_savedmodel(path: Path, shown: str) -> ModelGraph:
    try:
        module = importlib.import_module("inspector.readers.savedmodel")
    except ModuleNotFoundError as exc:
        if exc.name != "inspector.readers.savedmodel":
            raise
        raise KinspectError(shown, "SavedModel directories are not supported yet",
                            ErrorKind.UNSUPPORTED) from exc
    return module.read_savedmodel(path)


def open_model(path: str | os.PathLike[str]) -> ModelGraph:
    """Read ``path`` statically into a ModelGraph; KinspectError for every bad input.

    The returned graph may keep the file open for lazy weight reads: call ``graph.close()``
    when done with it.
    """
    shown = str(path)
    p = Path(path)
    kind = detect.sniff(p)
    graph: ModelGraph | None = None
    try:
        if kind == detect.HDF5:
            graph = _read_hdf5(p, shown)
        elif kind == detect.ZIP:
            from inspector.readers.keras_zip import read_keras_zip

            graph = read_keras_zip(p)
        else:
            graph = _read_savedmodel(p, shown)
        mixed = detect.polyglot(p)
        if mixed is not None:
            graph.container_issues.append(ContainerIssue("hdf5-zip-polyglot", "file", mixed))
        finalize(graph)
        return graph
    except KinspectError:
        _close(graph)
        raise
    except (RecursionError, MemoryError) as exc:
        _close(graph)
        raise KinspectError(shown, f"model structure too deep or too large ({type(exc).__name__})",
                            ErrorKind.TOO_LARGE) from exc
    except Exception as exc:
        _close(graph)
        if strict():
            raise
        raise KinspectError(shown, f"cannot parse the model ({type(exc).__name__}: {exc})",
                            ErrorKind.CORRUPT) from exc


def _close(graph: ModelGraph | None) -> None:
    if graph is not None and graph.close is not None:
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            graph.close()

