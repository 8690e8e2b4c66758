"""Run options shared by the CLI, the TUI and the probe runner."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Options:
    select: list[str] | None = None
    ignore: list[str] | None = None
    fail_on: str = "error"
    probe: bool = True
    trust: bool = False
    device: str = "auto"
    samples: int = 64
    seed: int = 0
    inputs: str | None = None
    probe_timeout: float = 300.0
    probe_memory_mb: int | None = None
    static_timeout: float = 60.0
    extra: dict[str, str] = field(default_factory=dict)
