"""Suite-wide guards shared by every test module."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _digest_tree(root: Path) -> dict[str, str]:
    """sha256 of every file below ``root`` (bytecode caches excluded: imports write them)."""
    digests: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            path = Path(dirpath) / name
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            digests[str(path.relative_to(root))] = h.hexdigest()
    return digests


@pytest.fixture(scope="session", autouse=True)
def fixtures_never_modified() -> Iterator[None]:
    """Kinspect must never write to a user's file: the fixtures are hashed around the suite."""
    before = _digest_tree(FIXTURES)
    yield
    after = _digest_tree(FIXTURES)
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    if changed or added or removed:
        pytest.fail(f"fixtures changed during the test run: changed={changed[:10]} "
                    f"added={added[:10]} removed={removed[:10]}", pytrace=False)
