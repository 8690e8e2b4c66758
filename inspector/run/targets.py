"""Target expansion: the paths given on the command line to the model files to inspect.

A directory search must not let a broken model pass CI: every file with a model extension is
inspected (so a truncated, empty or random ``.h5``/``.keras`` becomes an exit-2 record), as is
every file whose content says Keras whatever its name, and every SavedModel layout.
"""

from __future__ import annotations

import os
from pathlib import Path

from inspector.errors import KinspectError

# Names that only Keras uses: always inspected, whatever the content.
KERAS_SUFFIXES = (".keras", ".weights.h5")
# Generic HDF5 names: inspected unless the file is a readable HDF5 file with no Keras content
# (a data set next to the models), which is no model at all rather than a broken one.
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
# Any one of these in a directory makes it a SavedModel (or the remains of one).
SAVEDMODEL_MARKERS = ("saved_model.pb", "saved_model.pbtxt", "keras_metadata.pb")
# Directories a search does not enter (like linters do): tool caches, installed packages.
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


def expand_targets(paths: list[str]) -> list[str]:
    """Paths as given; directories that are not SavedModels are searched for model files.

    A directory with none stays in the list: it gets its own error record (see
    ``run.outcome.inspect_one``) instead of stopping the run before the other paths are
    looked at."""
    targets: list[str] = []
    for raw in paths:
        p = Path(raw)
        if plain_dir(p):
            targets.extend(search_dir(p) or [raw])
        else:
            targets.append(raw)
    return targets


def plain_dir(p: Path) -> bool:
    return p.is_dir() and not savedmodel_layout(p)


def savedmodel_layout(d: Path) -> bool:
    """A directory that is (or was meant to be) a SavedModel: inspected whole, so one with a
    missing or broken saved_model.pb is reported instead of being searched and skipped."""
    return any((d / name).is_file() for name in SAVEDMODEL_MARKERS)


def search_dir(root: Path) -> list[str]:
    """Model files below ``root`` (see ``is_model_candidate``), SavedModel dirs whole.

    Symbolic links are not followed (a link could point anywhere on the machine); hidden
    directories, virtual environments and package caches are not entered.
    """
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        if d != root and savedmodel_layout(d):
            found.append(str(d))
            dirnames[:] = []
            continue
        dirnames[:] = sorted(n for n in dirnames if not _skipped_dir(d / n))
        for name in sorted(filenames):
            f = d / name
            if f.is_file() and not f.is_symlink() and is_model_candidate(f):
                found.append(str(f))
    return found


def _skipped_dir(d: Path) -> bool:
    return (d.name.startswith(".") or d.name in SKIPPED_DIRS
            or (d / "pyvenv.cfg").is_file())


def is_model_candidate(f: Path) -> bool:
    """Should a directory search inspect this file? Yes for a Keras-only name, for content
    that says Keras whatever the name, and for a generic HDF5 name unless the file opens
    cleanly as HDF5 with no Keras content. Never raises; reads names and magic bytes only."""
    from inspector.readers.detect import looks_like_model

    name = f.name.lower()
    if name.endswith(KERAS_SUFFIXES) or looks_like_model(f):
        return True
    return name.endswith(HDF5_SUFFIXES) and not _plain_hdf5(f)


def _plain_hdf5(f: Path) -> bool:
    """A readable HDF5 file whose root holds no Keras model or weights (looks_like_model
    said no, so only a clean open is left to tell data from damage)."""
    import h5py

    from inspector.readers.detect import H5_ERRORS, HDF5, sniff

    try:
        if sniff(f) != HDF5:
            return False
        with h5py.File(f, "r") as h5:
            h5.keys()
    except (KinspectError, *H5_ERRORS):
        return False
    return True
