"""Single-file findings that only one side has.

A finding is keyed by its rule code and its layer, with B's layer paths mapped to A's through
the layer pairs (a renamed layer's finding is the same finding); counts are compared as
multisets, so a rule that fires twice in B and once in A reports one introduced finding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from inspector.diff.match import LayerPair, pair_index
from inspector.findings import Finding, sort_key

Key = tuple[str, str | None]


def only_in_one_side(findings_a: list[Finding], findings_b: list[Finding],
                     pairs: list[LayerPair]) -> tuple[list[Finding], list[Finding]]:
    """(findings only A has, findings only B has), each in report order."""
    _, by_b = pair_index(pairs)

    def key_b(f: Finding) -> Key:
        pair = by_b.get(f.layer) if f.layer is not None else None
        return f.code, (pair.path_a if pair is not None and pair.matched else f.layer)

    def key_a(f: Finding) -> Key:
        return f.code, f.layer

    only_a = _excess(findings_a, key_a, Counter(key_b(f) for f in findings_b))
    only_b = _excess(findings_b, key_b, Counter(key_a(f) for f in findings_a))
    return sorted(only_a, key=sort_key), sorted(only_b, key=sort_key)


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
