"""The length the probe gives an input's free (None) axes when the default is too short.

Random inputs fill a None time or spatial axis with ``DEFAULT_DIM`` (16) values. Some models
need far more: SpliceAI crops 5000 positions from each end of its sequence axis, tempocnn's
tempo models max-pool their time axis six times. At 16 every call fails with a shape error
and the probe had nothing to measure. Then the smallest power-of-two length at which one
sample runs is searched (a single sample each: cheap next to the measurements), and the
measurements run again with it, sized for the longer inputs.
"""

from __future__ import annotations

from typing import Any, Protocol

from inspector.probe.inputs import DEFAULT_DIM, InputSpec, distributions_for, random_batch

# Lengths tried after DEFAULT_DIM failed: 32 .. 16384.
LENGTHS = tuple(DEFAULT_DIM * 2 ** i for i in range(1, 11))
# No length whose single sample holds more values than this (two free image axes at 4096
# would be 50M values a sample).
MAX_SAMPLE_VALUES = 1 << 22


class Model(Protocol):
    specs: list[InputSpec]

    def predict(self, arrays: list[Any]) -> list[Any]: ...


def free_axes(specs: list[InputSpec]) -> int:
    """The most None (non-batch) axes one input has."""
    return max((s.shape[1:].count(None) for s in specs), default=0)


def _values(specs: list[InputSpec]) -> int:
    total = 0
    for spec in specs:
        n = 1
        for d in spec.concrete():
            n *= d
        total += n
    return total


def fit_free_length(model: Model, seed: int) -> dict[str, Any] | None:
    """{length, tried} after setting every spec's ``free_dim`` to the smallest length in
    LENGTHS at which one random sample runs; None (specs left at DEFAULT_DIM) when the
    model has no free axis or no length helps."""
    specs = model.specs
    if not free_axes(specs):
        return None
    dist = distributions_for(specs)[0]
    tried = [DEFAULT_DIM]
    for length in LENGTHS:
        for spec in specs:
            spec.free_dim = length
        if _values(specs) > MAX_SAMPLE_VALUES:
            break
        try:
            model.predict(random_batch(specs, dist, 1, seed))
        except Exception:  # the model's own code may raise anything: try a longer one
            tried.append(length)
            continue
        return {"length": length, "tried": tried}
    for spec in specs:
        spec.free_dim = DEFAULT_DIM
    return None
