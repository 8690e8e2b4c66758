"""The rule registry: small documented functions, each with a stable code and kebab-case name.

A rule is a generator ``check(ctx) -> Iterator[Hit]``; the registry turns hits into findings
with the rule's code, severity, message template and hint. Registration refuses rules that
lack a code, a valid name, a severity or a docstring, so the catalog stays documented.
"""

from __future__ import annotations

import re
import textwrap
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from inspector.findings import SEVERITIES, Finding, sort_key
from inspector.graph import LayerNode, ModelGraph
from inspector.json_values import plain_values
from inspector.stats import StatsCache

_CODE_RE = re.compile(r"^KIN\d{3}$")
_NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass
class Hit:
    """What a rule yields: the evidence that fills its message template.

    ``severity`` overrides the rule's default (e.g. warning vs error by threshold).
    """

    layer: LayerNode | str | None
    evidence: dict[str, Any]
    severity: str | None = None
    message: str | None = None


@dataclass
class RuleContext:
    """What a rule may look at: the graph and the shared weight-statistics cache."""

    graph: ModelGraph
    stats: StatsCache


@dataclass
class Rule:
    code: str
    name: str
    severity: str
    template: str
    hint: str
    check: Callable[[RuleContext], Iterable[Hit]]
    source: str = "static"
    # CVSS-like 0.0-10.0 score for code-scanning dashboards (SARIF security-severity); set
    # only on rules about what loading the file can do to the machine, not model quality.
    security_severity: float | None = None

    @property
    def doc(self) -> str:
        return (self.check.__doc__ or "").strip()

    @property
    def summary(self) -> str:
        """The whole first paragraph of the docstring (it may wrap over several lines)."""
        para: list[str] = []
        for line in self.doc.splitlines():
            if not line.strip():
                break
            para.append(line.strip())
        return " ".join(para)

    @property
    def body(self) -> str:
        """The docstring after its summary paragraph, dedented (as inspect.cleandoc would)."""
        rest = (self.check.__doc__ or "").expandtabs().splitlines()[1:]
        while rest and rest[0].strip():  # the summary's wrapped lines
            rest = rest[1:]
        return textwrap.dedent("\n".join(rest)).strip()

    def finding(self, hit: Hit) -> Finding:
        layer = hit.layer.path if isinstance(hit.layer, LayerNode) else hit.layer
        values = {"layer": layer or "model", **hit.evidence}
        message = hit.message or fill_template(self.template, values)
        return Finding(
            code=self.code,
            rule=self.name,
            severity=hit.severity or self.severity,
            message=message,
            layer=layer,
            evidence=plain_values(hit.evidence),
            hint=self.hint,
            source=self.source,
        )


class _Defaulting(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill_template(template: str, values: dict[str, Any]) -> str:
    """A finding's message (registry rules and diff findings alike): floats shortened to 4
    significant digits, a field the evidence lacks left as ``{name}`` rather than raising."""
    shown = {k: _short(v) for k, v in values.items()}
    return template.format_map(_Defaulting(shown))


def _short(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value


REGISTRY: dict[str, Rule] = {}


def register(
    code: str, name: str, severity: str, template: str, hint: str, source: str = "static",
    security_severity: float | None = None,
) -> Callable[[Callable[[RuleContext], Iterable[Hit]]], Callable[[RuleContext], Iterable[Hit]]]:
    """Decorator adding a rule; refuses malformed or undocumented rules at import time."""

    def wrap(fn: Callable[[RuleContext], Iterable[Hit]]) -> Callable[[RuleContext], Iterable[Hit]]:
        if not _CODE_RE.match(code):
            raise ValueError(f"rule {fn.__name__}: code {code!r} is not KIN + 3 digits")
        if not _NAME_RE.match(name):
            raise ValueError(f"rule {fn.__name__}: name {name!r} is not kebab-case")
        if severity not in SEVERITIES:
            raise ValueError(f"rule {name}: unknown severity {severity!r}")
        if not (fn.__doc__ or "").strip():
            raise ValueError(f"rule {name}: a rule needs a docstring (it is its documentation)")
        for other in REGISTRY.values():
            if other.code == code or other.name == name:
                raise ValueError(f"rule {name} ({code}) clashes with {other.name} ({other.code})")
        if security_severity is not None and not 0.0 <= security_severity <= 10.0:
            raise ValueError(f"rule {name}: security_severity must be within 0.0-10.0")
        REGISTRY[name] = Rule(code, name, severity, template, hint, fn, source,
                              security_severity)
        return fn

    return wrap


def all_rules() -> list[Rule]:
    """Every rule, loading the rule modules on first use, ordered by code."""
    from inspector import rules as _package  # noqa: F401  (imports the rule modules)

    return sorted(REGISTRY.values(), key=lambda r: r.code)


def lookup(key: str) -> Rule | None:
    key = key.strip()
    for r in all_rules():
        if key in (r.name, r.code) or key.upper() == r.code:
            return r
    return None


def select_rules(select: list[str] | None, ignore: list[str] | None) -> list[Rule]:
    """Rules chosen by ``--select``/``--ignore`` (codes, names or code prefixes like KIN0)."""

    def matches(rule: Rule, keys: list[str]) -> bool:
        return any(k == rule.name or rule.code.startswith(k.upper()) for k in keys)

    chosen = all_rules()
    if select:
        chosen = [r for r in chosen if matches(r, select)]
    if ignore:
        chosen = [r for r in chosen if not matches(r, ignore)]
    return chosen


def unknown_keys(keys: list[str]) -> list[str]:
    rules = all_rules()
    return [
        k for k in keys
        if not any(k == r.name or r.code.startswith(k.upper()) for r in rules)
    ]


def run_rules(
    graph: ModelGraph, stats: StatsCache, rules: list[Rule]
) -> tuple[list[Finding], list[dict[str, str]]]:
    """Run the static rules; a rule that raises becomes an ``errors[]`` entry, not an abort."""
    ctx = RuleContext(graph=graph, stats=stats)
    findings: list[Finding] = []
    errors: list[dict[str, str]] = []
    for rule in rules:
        if rule.source != "static":
            continue
        try:
            hits: Iterator[Hit] = iter(rule.check(ctx))
            findings.extend(rule.finding(h) for h in hits)
        except Exception as exc:  # a broken rule must not abort the report
            errors.append({
                "source": f"rule:{rule.name}",
                "kind": "rule-crashed",
                "message": f"{type(exc).__name__}: {exc}",
                "detail": traceback.format_exc(limit=3),
            })
    findings.sort(key=sort_key)
    return findings, errors

