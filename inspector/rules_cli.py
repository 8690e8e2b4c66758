"""``kinspect rules [NAME|CODE]``: the rule catalog, and one rule's documentation.

``python -m inspector.rules_cli --markdown`` prints docs/rules.md; a test keeps the committed
file equal to it, so the documentation is the registry and nothing else.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from inspector.rules.registry import Rule, all_rules, lookup
from inspector.run.exit_codes import EXIT_BAD_INPUT, EXIT_OK

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
        return EXIT_BAD_INPUT
    rule = lookup(args[0])
    if rule is None:
        print(f"kinspect: error: unknown rule '{args[0]}' (see 'kinspect rules')",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    stream.write(describe(rule))
    return EXIT_OK


def _label(rule: Rule) -> str:
    return rule.severity if rule.source == "static" else f"{rule.severity} ({rule.source})"


def catalog() -> str:
    """One line per rule: code, name, default severity, what it detects."""
    rules = all_rules()
    width = max(len(r.name) for r in rules)
    lines = [f"{r.code}  {r.name:<{width}}  {_label(r):<16}  {r.summary}" for r in rules]
    return "\n".join(lines) + "\n"


def describe(rule: Rule) -> str:
    """A rule's full documentation (its docstring) and fix hint, for the terminal."""
    body = rule.body
    parts = [f"{rule.code} {rule.name} ({_label(rule)})", "", rule.summary]
    if body:
        parts += ["", body]
    parts += ["", f"Fix: {rule.hint}", ""]
    return "\n".join(parts)


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
            f"{r.summary.replace('|', '/')} |" for r in rules]
    for r in rules:
        body = r.body
        out += ["", f"## {r.code} {r.name}", "", f"Severity: **{_label(r)}**", "",
                r.summary]
        if body:
            out += ["", body]
        out += ["", f"**Fix:** {r.hint}"]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    return rules_command(sys.argv[1:] if argv is None else argv, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
