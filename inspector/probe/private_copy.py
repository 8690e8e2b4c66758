"""The probe's private copy of a model: regular files only, nothing from outside it, capped.

Loaders read this copy, never the user's path: HDF5 locking stays off the user's file and a
loader that wants a writable path has one. ``shutil.copytree`` is not safe for that on an
untrusted SavedModel directory: it follows a symlink to ``/etc`` or to ``/dev/zero`` (1 GiB
of temp file in seconds) and opens FIFOs (a hang). Here the tree is planned first, with
``lstat`` only, and refused as a whole when it holds a device, a FIFO, a socket, a link
that leaves the directory, a sparse file (a few KB on disk, GB once copied) or more bytes
than the cap or the free space. Then each file is copied through a descriptor checked again
after opening, for exactly the size planned.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_COPY_BYTES = 64 << 30    # whole model; the free space in the temp dir is checked too
MAX_ENTRIES = 100_000        # files and folders in a SavedModel directory
MAX_DEPTH = 32
SPARSE_SLACK = 1 << 20       # a file may take less disk than its size, never < half of it
FREE_SPACE_MARGIN = 64 << 20
BLOCK = 1 << 20


class CopyRefused(Exception):
    """The model cannot be copied safely; the message says which entry and why."""


@dataclass
class _Entry:
    source: Path      # the file to read (a link's target, inside the model)
    relative: Path    # where it goes below the copy's root
    size: int


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a link")):
        if test(mode):
            return name
    return "a special file"


def _check_regular(path: Path, st: os.stat_result, shown: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise CopyRefused(f"{shown} is {_kind(st.st_mode)}, not a regular file")
    on_disk = getattr(st, "st_blocks", None)
    if on_disk is not None and st.st_size > 2 * on_disk * 512 + SPARSE_SLACK:
        raise CopyRefused(f"{shown} is a sparse file ({st.st_size} bytes, "
                          f"{on_disk * 512} on disk)")


def _plan_tree(root: Path) -> tuple[list[Path], list[_Entry]]:
    """(folders, files) below ``root``, or CopyRefused; only lstat, nothing opened."""
    folders: list[Path] = []
    files: list[_Entry] = []
    stack: list[tuple[Path, int]] = [(Path(), 0)]
    while stack:
        relative, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise CopyRefused(f"{relative} is nested deeper than {MAX_DEPTH} folders")
        with os.scandir(root / relative) as entries:
            for entry in entries:
                if len(folders) + len(files) >= MAX_ENTRIES:
                    raise CopyRefused(f"more than {MAX_ENTRIES} files and folders")
                rel = relative / entry.name
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    folders.append(rel)
                    stack.append((rel, depth + 1))
                    continue
                source = root / rel
                if stat.S_ISLNK(st.st_mode):
                    target = Path(os.path.realpath(source))
                    if not target.is_relative_to(root):
                        raise CopyRefused(f"{rel} is a link to {target}, outside the "
                                          "model directory")
                    try:
                        st = os.stat(target)
                    except OSError as exc:
                        raise CopyRefused(f"{rel} is a broken link ({exc.strerror})") from None
                    source = target
                _check_regular(source, st, str(rel))
                files.append(_Entry(source, rel, st.st_size))
    return folders, files


def _copy_file(source: Path, dest: Path, size: int, shown: str) -> None:
    """Copy ``size`` bytes through a descriptor that is checked again after opening (the
    entry may have been swapped for a FIFO or device in between)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(source, flags)
    except OSError as exc:
        raise CopyRefused(f"{shown} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb", buffering=0) as src:
        _check_regular(source, os.fstat(fd), shown)
        os.set_blocking(fd, True)
        with open(dest, "xb") as out:
            left = size
            while left > 0:
                block = src.read(min(BLOCK, left))
                if not block:
                    break
                out.write(block)
                left -= len(block)


def private_copy(src: Path, workdir: Path, limit: int = MAX_COPY_BYTES) -> Path:
    """``src`` (a model file or SavedModel directory) copied to ``workdir``; CopyRefused
    when it holds anything but regular files inside it, or more than ``limit`` bytes."""
    dest = workdir / src.name
    if src.is_dir():
        root = Path(os.path.realpath(src))
        folders, files = _plan_tree(root)
    else:
        st = os.stat(src)
        _check_regular(src, st, src.name)
        folders, files = [], [_Entry(src, Path(), st.st_size)]
    total = sum(f.size for f in files)
    if total > limit:
        raise CopyRefused(f"{total} bytes to copy, over the {limit}-byte limit")
    free = shutil.disk_usage(workdir).free
    if total + FREE_SPACE_MARGIN > free:
        raise CopyRefused(f"{total} bytes to copy, {free} free in {workdir}")
    if src.is_dir():
        dest.mkdir()
        for folder in sorted(folders):
            (dest / folder).mkdir()
    for entry in files:
        target = dest / entry.relative if entry.relative.parts else dest
        shown = entry.relative.as_posix() if entry.relative.parts else src.name
        _copy_file(entry.source, target, entry.size, shown)
    return dest
