"""Read-only views over the report's typed ``probe`` section, in the one place the TUI reads it.

The probe (inspector/probe/measure.py, results.py) owns the section's layout; these accessors
only pick values out of it so widgets stay independent of that layout.
"""

from __future__ import annotations

from inspector.probe.results import VERDICT_KEYS, LayerRow, OutputStats, ProbeSection


def status(probe: ProbeSection | None) -> str | None:
    return None if probe is None else str(probe.status or "ok")


def reason(probe: ProbeSection) -> str:
    return str(probe.reason or "")


def verdict(probe: ProbeSection) -> list[tuple[str, bool | None]]:
    """(key, raised) per verdict in display order; every key, None when not measured."""
    if probe.verdict is None:
        return [(k, None) for k in VERDICT_KEYS]
    return probe.verdict.items()


def outputs(probe: ProbeSection) -> list[OutputStats]:
    return probe.output_list()


def layers(probe: ProbeSection) -> list[LayerRow]:
    """Per-layer rows in call order (a shared layer has one row per call)."""
    return probe.layer_rows()


def layer_stats(probe: ProbeSection | None, path: str) -> LayerRow | None:
    """The first recorded row of the layer at graph path ``path`` (the probe reports the
    graph's own layer paths)."""
    return None if probe is None else probe.layer_row(path)


def collapse_layer(probe: ProbeSection) -> str | None:
    value = probe.collapse_layer
    return None if value is None else str(value)
