"""Run options shared by the CLI, the TUI and the probe runner."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# Random probe samples per input range when --samples is not given (the probe takes fewer,
# never under measure.MIN_SAMPLES, for a model whose static cost makes that many expensive).
# The one default: the CLI, the plan and the child all leave ``samples`` None for it.
DEFAULT_SAMPLES = 64
# --samples of ``kinspect`` and ``kinspect diff`` (same default, same cost scaling; ~1e9 is
# measure.SAMPLE_MACS_BUDGET / DEFAULT_SAMPLES).
SAMPLES_HELP = (f"random inputs per input range (default {DEFAULT_SAMPLES}, fewer for models "
                "that cost more than ~1e9 multiply-accumulates a sample)")
MIN_PROBE_MEMORY_MB = 2048  # TensorFlow on CPU alone commits ~400 MB of data memory


def default_probe_memory_mb() -> int:
    """Half of this machine's RAM (at least MIN_PROBE_MEMORY_MB): a hostile model or input
    can make the probe allocate without end; it must fail alone, not take the machine."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 4 * MIN_PROBE_MEMORY_MB
    return max(MIN_PROBE_MEMORY_MB, int(total) // 2 >> 20)


@dataclass
class Options:
    select: list[str] | None = None
    ignore: list[str] | None = None
    fail_on: str = "error"
    probe: bool = True
    trust: bool = False
    device: str = "auto"
    samples: int | None = None     # None: DEFAULT_SAMPLES, fewer for costly models
    seed: int = 0
    inputs: str | None = None
    probe_timeout: float = 300.0
    probe_memory_mb: int | None = field(default_factory=default_probe_memory_mb)  # None: no cap
    static_timeout: float = 60.0
    color: bool = False  # ANSI colours in the text report (the CLI: a terminal, no NO_COLOR)
    extra: dict[str, str] = field(default_factory=dict)
