"""``kinspect rules [NAME|CODE]``: the rule catalog, and one rule's documentation.

``python -m inspector.rules_cli --markdown`` prints docs/rules.md; a test keeps the committed
file equal to it, so the documentation is the registry and nothing else.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO

from inspector.rules.registry import Rule, all_rules, lookup

EXIT_OK, EXIT_USAGE = 0, 2
USAGE = "usage: kinspect rules [NAME|CODE]   (python -m inspector.rules_cli --markdown)"


def rules_command(argv: Sequence[str], stream: TextIO) -> int:
    """List the catalog, or print one rule's documentation; unknown rule or bad usage -> 2."""
    args = list(argv)
    if args in (["-h"], ["--help"]):
        stream.write(USAGE + "\n")
        return EXIT_OK
    if args == ["--markdown"]:
        stream.write(markdown())
        return EXIT_OK
    if not args:
        stream.write(catalog())
        return EXIT_OK
    if len(args) > 1 or args[0].startswith("-"):
        print(f"kinspect: error: {USAGE}", file=sys.stderr)
        return EXIT_USAGE
    rule = lookup(args[0])
    if rule is None:
        print(f"kinspect: error: unknown rule '{args[0]}' (see 'kinspect rules')",
              file=sys.stderr)
        return EXIT_USAGE
    stream.write(describe(rule))
    return EXIT_OK


def _label(rule: Rule) -> str:
    return rule.severity if rule.source == "static" else f"{rule.severity} ({rule.source})"


def catalog() -> str:
    """One line per rule: code, name, default severity, what it detects."""
    rules = all_rules()
    width = max(len(r.name) for r in rules)
    lines = [f"{r.code}  {r.name:<{width}}  {_label(r):<16}  {_summary(r)}" for r in rules]
    return "\n".join(lines) + "\n"


def describe(rule: Rule) -> str:
    """A rule's full documentation (its docstring) and fix hint, for the terminal."""
    body = textwrap.dedent(_body(rule)).strip()
    parts = [f"{rule.code} {rule.name} ({_label(rule)})", "", _summary(rule)]
    if body:
        parts += ["", body]
    parts += ["", f"Fix: {rule.hint}", ""]
    return "\n".join(parts)


def _body(rule: Rule) -> str:
    """The docstring after its summary line, dedented the way inspect.cleandoc would."""
    doc = rule.check.__doc__ or ""
    lines = doc.expandtabs().splitlines()
    rest = lines[1:]
    # The summary may wrap over several lines up to the first blank line.
    while rest and rest[0].strip():
        rest = rest[1:]
    return "\n".join(rest)


def _summary(rule: Rule) -> str:
    """The whole first paragraph of the docstring (Rule.summary stops at its first line)."""
    doc = (rule.check.__doc__ or "").strip().splitlines()
    para: list[str] = []
    for line in doc:
        if not line.strip():
            break
        para.append(line.strip())
    return " ".join(para)


def markdown() -> str:
    """docs/rules.md: an index table, then one section per rule."""
    rules = all_rules()
    out = [
        "# kinspect rule catalog",
        "",
        "Generated from the rule registry by `python -m inspector.rules_cli --markdown`;",
        "do not edit by hand. `kinspect rules NAME` prints the same text in a terminal.",
        "Select or skip rules with `--select` / `--ignore` (codes, names or code prefixes).",
        "",
        "| Code | Name | Severity | Detects |",
        "|------|------|----------|---------|",
    ]
    out += [f"| {r.code} | [`{r.name}`](#{r.code.lower()}-{r.name}) | {_label(r)} | "
            f"{_summary(r).replace('|', '/')} |" for r in rules]
    for r in rules:
        body = textwrap.dedent(_body(r)).strip()
        out += ["", f"## {r.code} {r.name}", "", f"Severity: **{_label(r)}**", "",
                _summary(r)]
        if body:
            out += ["", body]
        out += ["", f"**Fix:** {r.hint}"]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    return rules_command(sys.argv[1:] if argv is None else argv, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
