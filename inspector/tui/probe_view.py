"""Read-only views over the report's ``probe`` section, in the one place the TUI reads it.

The probe (inspector/probe/measure.py and runner.py) owns the section's layout; these
accessors only pick values out of it so widgets stay independent of that layout.
"""

from __future__ import annotations

from typing import Any

from inspector.probe.protocol import VERDICT_KEYS


def status(probe: dict[str, Any] | None) -> str | None:
    return None if probe is None else str(probe.get("status") or "ok")


def reason(probe: dict[str, Any]) -> str:
    return str(probe.get("reason") or "")


def verdict(probe: dict[str, Any]) -> dict[str, bool | None]:
    raw = probe.get("verdict") or {}
    return {k: (None if raw.get(k) is None else bool(raw.get(k))) for k in VERDICT_KEYS}


def outputs(probe: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in probe.get("outputs") or [] if isinstance(o, dict)]


def class_histogram(output: dict[str, Any]) -> list[tuple[str, int]]:
    """(class, count) pairs, most frequent first; empty for non-class outputs."""
    raw = output.get("class_histogram") or {}
    return sorted(((str(k), int(v)) for k, v in raw.items()), key=lambda p: (-p[1], p[0]))


def top_class_fraction(output: dict[str, Any]) -> float | None:
    value = output.get("top_class_fraction")
    return None if value is None else float(value)


def layers(probe: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-layer rows in call order (a shared layer has one row per call)."""
    return [r for r in probe.get("layers") or [] if isinstance(r, dict) and r.get("path")]


def layer_std(row: dict[str, Any]) -> float | None:
    value = row.get("across_input_std")
    return float(value) if isinstance(value, (int, float)) else None


def layer_stats(probe: dict[str, Any] | None, path: str) -> dict[str, Any] | None:
    """The first recorded row of the layer at graph path ``path`` (the probe reports the
    graph's own layer paths)."""
    if not probe:
        return None
    return next((row for row in layers(probe) if row["path"] == path), None)


def collapse_layer(probe: dict[str, Any]) -> str | None:
    value = probe.get("collapse_layer")
    return None if value is None else str(value)
