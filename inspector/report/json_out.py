"""The JSON report: sorted keys, no timestamps, validated against the shipped schema in tests."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from inspector.json_values import finite_values, json_default
from inspector.report.model import Report


def to_json(report: Report, *, indent: int | None = 2) -> str:
    return sorted_json(report.to_dict(), indent=indent)


def sorted_json(data: Any, *, indent: int | None = 2) -> str:
    """Every JSON document kinspect writes (single-file and diff reports): sorted keys and
    NaN/Infinity as null, so the same input always gives the same bytes."""
    return json.dumps(finite_values(data), sort_keys=True, indent=indent, ensure_ascii=False,
                      default=json_default)


def to_json_line(report: Report) -> str:
    return to_json(report, indent=None)


def error_record(path: str, kind: str, message: str) -> dict[str, Any]:
    """What a JSON Lines run prints for a file it could not read."""
    return {"path": path, "error": {"kind": kind, "message": message}}


def load_schema() -> dict[str, Any]:
    text = resources.files("inspector.report").joinpath("schema.json").read_text("utf-8")
    return json.loads(text)

