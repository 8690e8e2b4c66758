"""The JSON report: sorted keys, no timestamps, validated against the shipped schema in tests."""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

from inspector.report.model import Report


def to_json(report: Report, *, indent: int | None = 2) -> str:
    return json.dumps(_finite(report.to_dict()), sort_keys=True, indent=indent,
                      ensure_ascii=False, default=_fallback)


def to_json_line(report: Report) -> str:
    return to_json(report, indent=None)


def error_record(path: str, kind: str, message: str) -> dict[str, Any]:
    """What a JSON Lines run prints for a file it could not read."""
    return {"path": path, "error": {"kind": kind, "message": message}}


def load_schema() -> dict[str, Any]:
    text = resources.files("inspector.report").joinpath("schema.json").read_text("utf-8")
    return json.loads(text)


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: non-finite floats become null (counts say how many there were)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _fallback(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)
