"""Single-file findings that only one side has.

A finding is keyed by its rule code and its layer, with B's layer paths mapped to A's through
the layer pairs (a renamed layer's finding is the same finding); counts are compared as
multisets, so a rule that fires twice in B and once in A reports one introduced finding.

A security finding's key also holds its severity and what it points at (``TARGETS``): a
reference swapped for another under the same layer (module ``mypkg`` -> ``os``, a Lambda
whose code now reaches ``os``/``open``, another dangerous op) is a new finding in B, not the
same one with a config detail changed. Evidence that differs between formats of one model (a
custom object's ``module``, bytecode sizes, byte offsets) stays out, so a conversion is quiet.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

from inspector.diff.match import LayerPair, pair_index
from inspector.findings import Finding, sort_key

Key = tuple[str, str | None, str]

# Rule name -> the evidence keys naming what the finding points at.
TARGETS: dict[str, tuple[str, ...]] = {
    "lambda-layer": ("risky_names",),
    "custom-object": ("kind", "name", "registered_name"),
    "untrusted-module-reference": ("module", "name", "kind", "path"),
    "savedmodel-dangerous-op": ("op",),
    "savedmodel-metadata-mismatch": ("record_class",),
    "polyglot-container": ("kind",),
    "container-anomaly": ("kind",),
}


def only_in_one_side(findings_a: list[Finding], findings_b: list[Finding],
                     pairs: list[LayerPair]) -> tuple[list[Finding], list[Finding]]:
    """(findings only A has, findings only B has), each in report order."""
    _, by_b = pair_index(pairs)

    def key_b(f: Finding) -> Key:
        pair = by_b.get(f.layer) if f.layer is not None else None
        return f.code, (pair.path_a if pair is not None and pair.matched else f.layer), target(f)

    def key_a(f: Finding) -> Key:
        return f.code, f.layer, target(f)

    only_a = _excess(findings_a, key_a, Counter(key_b(f) for f in findings_b))
    only_b = _excess(findings_b, key_b, Counter(key_a(f) for f in findings_a))
    return sorted(only_a, key=sort_key), sorted(only_b, key=sort_key)


def target(f: Finding) -> str:
    """A security finding's severity and what it points at ("" for other rules)."""
    keys = TARGETS.get(f.rule)
    if keys is None:
        return ""
    return json.dumps([f.severity, *(f.evidence.get(k) for k in keys)], sort_keys=True,
                      default=str)


def _excess(findings: list[Finding], key: Callable[[Finding], Key],
            other: Counter[Key]) -> list[Finding]:
    left = Counter(other)
    out: list[Finding] = []
    for f in findings:
        k = key(f)
        if left[k] > 0:
            left[k] -= 1
        else:
            out.append(f)
    return out
