"""Many files: expand directories into model files and report each as one JSON line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from inspector.errors import ErrorKind, KinspectError
from inspector.options import Options


def expand_targets(paths: list[str]) -> list[str]:
    """Paths as given; directories that are not SavedModels are searched for model files."""
    from inspector.readers.detect import looks_like_model

    targets: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir() and not (p / "saved_model.pb").exists():
            found = _search_dir(p, looks_like_model)
            if not found:
                raise KinspectError(raw, "no model files found in this directory",
                                    ErrorKind.NOT_A_MODEL)
            targets.extend(found)
        else:
            targets.append(raw)
    return targets


def _search_dir(root: Path, looks_like_model: object) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        if (d / "saved_model.pb").exists() and d != root:
            found.append(str(d))
            dirnames[:] = []
            continue
        dirnames.sort()
        for name in sorted(filenames):
            f = d / name
            if f.is_file() and not f.is_symlink() and looks_like_model(f):  # type: ignore[operator]
                found.append(str(f))
    return found


def run_many(targets: list[str], options: Options, fmt: str, output: str | None, jobs: int,
             *, exit_zero: bool) -> int:
    """One JSON line per file; unreadable files give an error line and make the exit code 2."""
    from inspector.pipeline import inspect_file
    from inspector.report.json_out import error_record, to_json_line

    out = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    worst = 0
    try:
        for path in targets:
            try:
                report = inspect_file(path, options)
            except KinspectError as exc:
                import json

                print(exc.one_line(), file=sys.stderr)
                out.write(json.dumps(error_record(path, exc.kind.value, exc.message),
                                     sort_keys=True) + "\n")
                worst = 2
                continue
            out.write(to_json_line(report) + "\n")
            if worst < 1 and not exit_zero and report.exceeds(options.fail_on):
                worst = 1
    finally:
        if output:
            out.close()
    return worst
