"""The probe's plan and result as typed records: what the parent sends the child
(``ProbePlan``) and the report's ``probe`` section it gets back (``ProbeSection``).

Rules, the diagnosis, the renderers and the TUI read these attributes instead of chains of
``dict.get``. The JSON stays the source of truth: ``from_json`` takes any section (a full
result, or the three keys of a refused/skipped/failed probe), keeps keys it has no field for
in ``extra`` and remembers which typed keys were missing, so ``to_json`` gives back exactly
the JSON it read (tests/test_probe_results.py and tests/test_probe_verdicts.py check every
recorded result). Nothing here imports TensorFlow or NumPy: the child and the parent share it.

Adding a probe check touches two places:

1. ``measure.py``: the measurement (a function returning a dict, run under ``_guarded`` in
   ``run_measurements`` and stored under ``checks[<name>]``) and, when it judges the model,
   its verdict value in the ``Verdict(...)`` built there;
2. this module: a ``Verdict`` field (with its ``label``) and, when something reads its
   numbers, a ``Check`` subclass plus a field on ``Checks``.

Every consumer iterates generically: the JSON, the schema (``verdict`` is an open object)
and the text report print whatever ``to_json`` gives, the TUI lists ``Verdict.items()`` with
their labels, and ``VERDICT_KEYS`` derives from the fields. A check that should also raise a
finding gets a rule in ``inspector/rules/probe_rules.py`` reading ``ctx.probe.checks.<name>``
(a rule is a catalogued, documented finding, not part of the check itself).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from inspector.graph import ModelGraph
    from inspector.options import Options

R = TypeVar("R", bound="JsonRecord")

_ONE, _LIST, _MAP = "one", "list", "map"


def _one(record: type[JsonRecord]) -> dict[str, Any]:
    """Field metadata: the field holds one ``record``."""
    return {"record": record, "shape": _ONE}


def _many(record: type[JsonRecord]) -> dict[str, Any]:
    """Field metadata: the field holds a list of ``record``."""
    return {"record": record, "shape": _LIST}


def _by_key(record: type[JsonRecord]) -> dict[str, Any]:
    """Field metadata: the field holds a {name: ``record``} map."""
    return {"record": record, "shape": _MAP}


@dataclass(kw_only=True)
class JsonRecord:
    """Typed fields for the keys consumers read; every other key verbatim in ``extra``.

    ``_absent``: the typed keys the source JSON did not have. ``to_json`` leaves such a key
    out while its field still holds the default, so a missing key stays missing and a key
    that was ``null`` stays ``null``; a field set later (``collapsed_because``) is written.
    """

    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    _absent: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def typed_fields(cls) -> tuple[dataclasses.Field[Any], ...]:
        return tuple(f for f in dataclasses.fields(cls) if f.name not in ("extra", "_absent"))

    @classmethod
    def from_json(cls: type[R], data: Any) -> R | None:
        """The record for ``data``; None when ``data`` is not an object. Missing keys get the
        field defaults, values are kept as they are (never coerced)."""
        if not isinstance(data, dict):
            return None
        values: dict[str, Any] = {}
        absent = []
        for f in cls.typed_fields():
            if f.name in data:
                values[f.name] = _load(f, data[f.name])
            else:
                absent.append(f.name)
        typed = {f.name for f in cls.typed_fields()}
        extra = {k: v for k, v in data.items() if k not in typed}
        return cls(**values, extra=extra, _absent=frozenset(absent))

    def to_json(self) -> dict[str, Any]:
        """The JSON object this record was read from (plus the fields set since)."""
        out: dict[str, Any] = {}
        for f in self.typed_fields():
            value = getattr(self, f.name)
            if f.name in self._absent and value == _default(f):
                continue
            out[f.name] = _dump(value)
        out.update(self.extra)
        return out


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def _load(f: dataclasses.Field[Any], value: Any) -> Any:
    record = f.metadata.get("record")
    if record is None:
        return value
    shape = f.metadata["shape"]
    if shape == _ONE:
        return record.from_json(value) if isinstance(value, dict) else value
    if shape == _LIST and isinstance(value, list):
        return [record.from_json(v) if isinstance(v, dict) else v for v in value]
    if shape == _MAP and isinstance(value, dict):
        return {k: record.from_json(v) if isinstance(v, dict) else v for k, v in value.items()}
    return value


def _dump(value: Any) -> Any:
    if isinstance(value, JsonRecord):
        return value.to_json()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


# ----------------------------------------------------------------------------- the plan


@dataclass(kw_only=True)
class PlanOptions(JsonRecord):
    """The user's probe options as the child needs them (see inspector.options.Options)."""

    device: str = "auto"
    samples: int | None = None      # None: options.DEFAULT_SAMPLES, fewer for costly models
    seed: int = 0
    inputs: str | None = None       # --inputs, absolute
    trust: bool = False
    memory_mb: int | None = None
    check_sizes: Any = None         # tests: "big" or a dict (see measure.Sizes.for_cost)


@dataclass(kw_only=True)
class ProbePlan(JsonRecord):
    """What the child needs: the file, static input specs and Embedding vocab as fallbacks,
    the static cost estimate that sizes the checks and the static input-range guess.

    ``mode`` "activations" (kinspect diff) records layer outputs into ``out_file`` instead
    of measuring (``inputs_file``: the other side's inputs); ``workdir``: a folder the parent
    owns and removes even when the child is killed."""

    path: str = ""
    format: str | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    vocab: int | None = None
    id_inputs: dict[str, Any] = field(default_factory=dict)
    macs_per_sample: float | None = None
    input_range: dict[str, Any] | None = None
    workdir: str | None = None
    mode: str | None = None
    out_file: str | None = None
    inputs_file: str | None = None
    options: PlanOptions = field(default_factory=PlanOptions, metadata=_one(PlanOptions))

    @classmethod
    def from_options(cls, graph: ModelGraph, options: Options) -> ProbePlan:
        """The plan for ``graph`` under the run's ``options`` (never imports TensorFlow)."""
        from inspector.cost import macs_per_sample
        from inspector.probe.input_range import infer_input_range
        from inspector.probe.token_inputs import token_inputs

        vocabs = [int(n.config["input_dim"]) for n in graph.walk()
                  if n.class_name == "Embedding" and isinstance(n.config.get("input_dim"), int)]
        return cls(
            path=os.path.abspath(graph.path),
            format=graph.format,
            inputs=[t.as_dict() for t in graph.inputs],
            vocab=min(vocabs) if vocabs else None,
            id_inputs=token_inputs(graph),
            macs_per_sample=macs_per_sample(graph),
            input_range=infer_input_range(graph),
            options=PlanOptions(
                device=options.device, samples=options.samples, seed=options.seed,
                inputs=os.path.abspath(options.inputs) if options.inputs else None,
                trust=options.trust, memory_mb=options.probe_memory_mb),
            _absent=frozenset({"workdir", "mode", "out_file", "inputs_file"}),
        )


# ----------------------------------------------------------------------------- the result


@dataclass(kw_only=True)
class Verdict(JsonRecord):
    """One judgement per check: True raised, False passed, None not measured. The fields'
    order is the display order; ``label`` is the TUI's wording."""

    collapsed: bool | None = field(default=None, metadata={"label": "outputs collapsed"})
    nondeterministic: bool | None = field(default=None, metadata={"label": "nondeterministic"})
    batch_dependent: bool | None = field(default=None, metadata={"label": "batch dependent"})
    scale_sensitive: bool | None = field(default=None, metadata={"label": "input-scale sensitive"})
    train_infer_gap: bool | None = field(default=None, metadata={"label": "train/infer gap"})
    nan_outputs: bool | None = field(default=None, metadata={"label": "NaN outputs"})
    roundtrip_mismatch: bool | None = field(default=None, metadata={"label": "save/load mismatch"})

    def items(self) -> list[tuple[str, bool | None]]:
        """(key, value) in display order, then any key the child added that has no field
        yet; None: not measured."""
        typed = [(f.name, _as_bool(getattr(self, f.name))) for f in self.typed_fields()]
        return typed + [(k, _as_bool(v)) for k, v in self.extra.items()]

    def raised(self) -> list[str]:
        return [k for k, v in self.items() if v]

    @staticmethod
    def label(key: str) -> str:
        found = {f.name: f.metadata.get("label") for f in Verdict.typed_fields()}.get(key)
        return str(found or key.replace("_", " "))


VERDICT_KEYS: tuple[str, ...] = tuple(f.name for f in Verdict.typed_fields())


def _as_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


@dataclass(kw_only=True)
class InputRange(JsonRecord):
    """The input range the verdicts were judged on (see probe.input_range, measure)."""

    name: str | None = None
    label: str | None = None
    low: float | None = None
    high: float | None = None
    reason: str | None = None
    source: str | None = None
    confidence: str | None = None
    affine: bool | None = None
    assumed: str | None = None      # the guessed range, when the verdicts moved off it


@dataclass(kw_only=True)
class OutputStats(JsonRecord):
    """One model output on one batch (measure.output_stats)."""

    name: str | None = None
    shape: list[int] | None = None
    std_max: float | None = None
    mean_abs: float | None = None
    probability_like: bool | None = None
    class_histogram: dict[str, int] | None = None
    top_class: int | None = None
    top_class_fraction: float | None = None
    collapsed: bool | None = None
    nan: int | None = None
    inf: int | None = None

    def classes(self) -> list[tuple[str, int]]:
        """(class, count) pairs, most frequent first; empty for non-class outputs."""
        raw = self.class_histogram if isinstance(self.class_histogram, dict) else {}
        return sorted(((str(k), int(v)) for k, v in raw.items()), key=lambda p: (-p[1], p[0]))


def most_one_class(outputs: list[OutputStats] | None) -> OutputStats:
    """The output whose top class wins most often (an empty record when there is none)."""
    return max((o for o in outputs or [] if isinstance(o, OutputStats)),
               key=lambda o: o.top_class_fraction or 0.0, default=OutputStats())


@dataclass(kw_only=True)
class RangeResult(JsonRecord):
    """The outputs on one random input range (``distributions[<range>]``)."""

    outputs: list[OutputStats] | None = field(default=None, metadata=_many(OutputStats))
    collapsed: bool | None = None
    nan: int | None = None


@dataclass(kw_only=True)
class LayerRow(JsonRecord):
    """One layer call's activation statistics from the eager per-layer pass."""

    path: str | None = None
    class_name: str | None = None
    shape: list[int | None] | None = None
    across_input_std: float | None = None
    dead_fraction: float | None = None

    def std(self) -> float | None:
        value = self.across_input_std
        return float(value) if isinstance(value, (int, float)) else None


@dataclass(kw_only=True)
class ProbeInput(JsonRecord):
    """An input as the probe generated it (inputs.InputSpec.as_dict)."""

    name: str | None = None
    dtype: str | None = None
    generated_shape: list[int | None] | None = None


@dataclass(kw_only=True)
class RealInputs(JsonRecord):
    """What ``--inputs`` held (the duplicate groups are read by a rule)."""

    duplicates: list[list[str]] | None = None


@dataclass(kw_only=True)
class Check(JsonRecord):
    """A check's result: its numbers, or why it did not run (``error``, ``skipped``)."""

    error: str | None = None
    skipped: str | None = None
    threshold: float | None = None


@dataclass(kw_only=True)
class Nondeterminism(Check):
    predict_max_rel_diff: float | None = None
    call_max_rel_diff: float | None = None
    nondeterministic: bool | None = None


@dataclass(kw_only=True)
class BatchDependence(Check):
    samples: int | None = None
    max_rel_diff: float | None = None
    batch_dependent: bool | None = None


@dataclass(kw_only=True)
class GapRange(JsonRecord):
    """The train/infer comparison on one input range."""

    diff_over_spread: float | None = None
    argmax_agreement: float | None = None
    inference_collapsed_training_varies: bool | None = None


@dataclass(kw_only=True)
class TrainInferGap(Check):
    per_distribution: dict[str, GapRange] | None = field(default=None, metadata=_by_key(GapRange))
    min_diff_over_spread: float | None = None
    inference_collapses_on: list[str] | None = None
    train_infer_gap: bool | None = None


@dataclass(kw_only=True)
class Roundtrip(Check):
    max_rel_diff: float | None = None
    mismatch: bool | None = None
    compared: str | None = None


@dataclass(kw_only=True)
class EagerVsGraph(Check):
    graph_nan: bool | None = None
    eager_nan: bool | None = None


@dataclass(kw_only=True)
class Checks(JsonRecord):
    """``checks``: one entry per check run after the predictions (see measure)."""

    layers: dict[str, Any] | None = None
    nondeterminism: Nondeterminism | None = field(default=None, metadata=_one(Nondeterminism))
    batch_dependence: BatchDependence | None = field(default=None, metadata=_one(BatchDependence))
    train_infer_gap: TrainInferGap | None = field(default=None, metadata=_one(TrainInferGap))
    roundtrip: Roundtrip | None = field(default=None, metadata=_one(Roundtrip))
    eager_vs_graph: EagerVsGraph | None = field(default=None, metadata=_one(EagerVsGraph))


@dataclass(kw_only=True)
class ProbeSection(JsonRecord):
    """The report's ``probe`` section: a finished probe (status ``ok``), or one that did not
    run or finish (refused, skipped, failed, timeout, cancelled: status, reason, verdict
    None and, for a failure, ``error_kind``)."""

    status: str | None = None
    reason: str | None = None
    verdict: Verdict | None = field(default=None, metadata=_one(Verdict))
    error_kind: str | None = None
    loader: str | None = None
    device: str | None = None
    samples: int | None = None
    timings: dict[str, float] | None = None
    inputs: list[ProbeInput] | None = field(default=None, metadata=_many(ProbeInput))
    input_range: InputRange | None = field(default=None, metadata=_one(InputRange))
    real_inputs: RealInputs | None = field(default=None, metadata=_one(RealInputs))
    outputs_from: str | None = None
    outputs: list[OutputStats] | None = field(default=None, metadata=_many(OutputStats))
    distributions: dict[str, RangeResult] | None = field(default=None,
                                                         metadata=_by_key(RangeResult))
    confusable_distributions: list[str] | None = None
    near_collapsed: bool | None = None
    collapsed_because: str | None = None
    layers: list[LayerRow] | None = field(default=None, metadata=_many(LayerRow))
    collapse_layer: str | None = None
    checks: Checks | None = field(default=None, metadata=_one(Checks))

    @classmethod
    def not_run(cls, status: str, reason: str | None,
                error_kind: str | None = None) -> ProbeSection:
        """The section of a probe that was refused, skipped or ended without a result."""
        data: dict[str, Any] = {"status": status, "reason": reason, "verdict": None}
        if error_kind is not None:
            data["error_kind"] = error_kind
        section = cls.from_json(data)
        assert section is not None
        return section

    @property
    def ok(self) -> bool:
        """Finished with a verdict (the only state rules and charts have numbers for)."""
        return isinstance(self.verdict, Verdict)

    def output_list(self) -> list[OutputStats]:
        return [o for o in self.outputs or [] if isinstance(o, OutputStats)]

    def layer_rows(self) -> list[LayerRow]:
        """Per-layer rows in call order (a shared layer has one row per call)."""
        return [r for r in self.layers or [] if isinstance(r, LayerRow) and r.path]

    def layer_row(self, path: str) -> LayerRow | None:
        """The first recorded row of the layer at graph path ``path``."""
        return next((r for r in self.layer_rows() if r.path == path), None)

    def range_results(self) -> dict[str, RangeResult]:
        return {k: v for k, v in (self.distributions or {}).items()
                if isinstance(v, RangeResult)}

    def check(self, cls: type[R], name: str) -> R:
        """``checks[name]`` as ``cls`` (an empty one when missing or failed to parse)."""
        value = getattr(self.checks, name, None) if isinstance(self.checks, Checks) else None
        return value if isinstance(value, cls) else cls()

    @property
    def range(self) -> InputRange:
        """The judged input range (an empty one when unknown)."""
        return self.input_range if isinstance(self.input_range, InputRange) else InputRange()


def section(data: dict[str, Any] | ProbeSection | None) -> ProbeSection | None:
    """A ProbeSection for a section in either form (callers and tests may still hold JSON)."""
    if data is None or isinstance(data, ProbeSection):
        return data
    return ProbeSection.from_json(data)
