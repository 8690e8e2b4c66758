"""Values made fit for JSON: shared by the rules (finding evidence), the single-file reports
and the diff report, which all serialize what numpy and the model files hand them."""

from __future__ import annotations

import math
from typing import Any


def plain_values(value: Any) -> Any:
    """Evidence goes straight into JSON and the text report: numpy scalars and tuples become
    plain values, NaN becomes None (infinities stay, for the text report to show)."""
    if isinstance(value, dict):
        return {str(k): plain_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_values(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def finite_values(value: Any) -> Any:
    """JSON has no NaN/Infinity: non-finite floats become null (counts say how many there were)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_values(v) for v in value]
    return value


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)``: numpy scalars and arrays, bytes, anything else as text, so
    an odd value in a report never aborts the output."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)
