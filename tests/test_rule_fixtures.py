"""The rule catalog proven on real saved models (the pylint good/bad scheme), its metadata,
its documentation, and the CLI switches that select rules and turn findings into exit codes.

``fixtures/rules/<rule>/bad_*`` must trigger ``<rule>`` and no other warning or error except
those listed in ``expected.json``; ``good_*`` must not trigger ``<rule>``. Every healthy model
in ``fixtures/models`` must give zero error findings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_valid_report, assert_valid_sarif

from inspector.options import Options
from inspector.report.json_out import to_json
from inspector.report.model import Report
from inspector.rules.registry import all_rules, lookup
from inspector.rules_cli import markdown
from inspector.run.pipeline import analyze_static

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "fixtures" / "rules"
MODELS_DIR = ROOT / "fixtures" / "models"
DOCS = ROOT / "docs" / "rules.md"
# Config-level rules: their bad fixtures cover Keras 2 h5 (tf_keras), Keras 3 .keras and
# Keras 3 h5, because each container stores the setting differently.
CONFIG_LEVEL = (
    "dropout-rate-high", "all-layers-frozen", "partially-frozen", "softmax-wrong-axis",
    "softmax-single-unit", "training-arg-hardcoded", "float16-output",
    "loss-activation-mismatch", "relu-output-head", "learning-rate-extreme", "stateful-rnn",
    "input-preprocessing", "double-softmax", "gradient-clip-zero", "label-smoothing-high",
    "regularization-extreme", "loss-weight-zero", "optimizer-momentum-invalid",
    "no-nonlinearity", "dropout-on-output", "recurrent-relu", "sigmoid-bottleneck",
    "relu-logits",
)
FORMAT_SUFFIXES = {"k2.h5": "_k2.h5", "k3.keras": "_k3.keras", "k3.h5": "_k3.h5"}


def _is_model_file(p: Path) -> bool:
    return p.name.startswith(("bad_", "good_")) and (p.is_dir() or p.suffix in (".h5", ".keras"))


def _fixture_cases() -> list[Any]:
    if not RULES_DIR.is_dir():
        return []
    return [pytest.param(d.name, f, id=f"{d.name}/{f.name}")
            for d in sorted(RULES_DIR.iterdir()) if d.is_dir()
            for f in sorted(d.iterdir()) if _is_model_file(f)]


@cache
def _report(path: str) -> Report:
    return analyze_static(path, Options(probe=False))


def _expected_extra(rule_dir: Path, name: str) -> set[str]:
    exp = rule_dir / "expected.json"
    if not exp.is_file():
        return set()
    return set(json.loads(exp.read_text(encoding="utf-8")).get(name, []))


@pytest.mark.parametrize(("rule", "path"), _fixture_cases())
def test_rule_fixture(rule: str, path: Path) -> None:
    assert lookup(rule) is not None, f"fixtures/rules/{rule} names no registered rule"
    report = _report(str(path))
    assert_valid_report(json.loads(to_json(report)))
    assert not report.errors, report.errors
    fired = [f for f in report.findings if f.rule == rule]
    if path.name.startswith("bad_"):
        assert fired, f"{rule} did not fire; findings: {[f.rule for f in report.findings]}"
        allowed = _expected_extra(path.parent, path.name) | {rule}
        others = sorted({f.rule for f in report.findings
                         if f.severity != "info" and f.rule not in allowed})
        assert not others, f"bad fixture also triggers {others} (list them in expected.json)"
        for f in fired:
            assert "{" not in f.message, f"unfilled message template: {f.message}"
    else:
        assert not fired, [f.message for f in fired]


def test_catalog_metadata() -> None:
    rules = all_rules()
    codes = [r.code for r in rules]
    names = [r.name for r in rules]
    assert len(codes) == len(set(codes)) and len(names) == len(set(names))
    for r in rules:
        assert r.doc and len(r.doc.splitlines()) >= 3, f"{r.name}: docstring too thin"
        assert r.hint.strip(), f"{r.name}: no fix hint"
        assert r.template.strip(), f"{r.name}: no message template"


def test_every_static_rule_has_bad_and_good_fixtures() -> None:
    missing = []
    for r in all_rules():
        if r.source != "static":
            continue  # probe rules judge probe results, not files
        d = RULES_DIR / r.name
        files = [p.name for p in d.iterdir()] if d.is_dir() else []
        if not any(n.startswith("bad_") for n in files) or \
                not any(n.startswith("good_") for n in files):
            missing.append(r.name)
    assert not missing, f"rules without bad+good fixtures: {missing}"


@pytest.mark.parametrize("rule", CONFIG_LEVEL)
def test_config_rules_cover_every_keras_format(rule: str) -> None:
    names = [p.name for p in (RULES_DIR / rule).glob("bad_*")]
    for fmt, suffix in FORMAT_SUFFIXES.items():
        assert any(n.endswith(suffix) for n in names), f"{rule}: no bad fixture saved as {fmt}"


def _healthy_models() -> list[Any]:
    if not MODELS_DIR.is_dir():
        return []
    found = []
    for family in sorted(p for p in MODELS_DIR.iterdir() if p.is_dir()):
        for f in sorted(family.iterdir()):
            if f.suffix in (".h5", ".keras") or (f.is_dir() and (f / "saved_model.pb").exists()):
                found.append(pytest.param(f, id=f"{family.name}/{f.name}"))
    return found


@pytest.mark.parametrize("path", _healthy_models())
def test_healthy_models_have_no_error_findings(path: Path) -> None:
    report = _report(str(path))
    assert_valid_report(json.loads(to_json(report)))
    errors = [f"{f.rule}: {f.message}" for f in report.findings if f.severity == "error"]
    assert not errors
    assert not [e for e in report.errors if str(e.get("source", "")).startswith("rule:")]


def test_docs_rules_md_is_current() -> None:
    assert DOCS.is_file(), "run: python -m inspector.rules_cli --markdown > docs/rules.md"
    assert DOCS.read_text(encoding="utf-8") == markdown(), \
        "docs/rules.md is stale: python -m inspector.rules_cli --markdown > docs/rules.md"


# --------------------------------------------------------------------------- CLI

WARNING_ONLY = RULES_DIR / "dropout-rate-high" / "bad_rate09_k2.h5"     # one warning
INFO_ONLY = RULES_DIR / "stateful-rnn" / "bad_lstm_k2.h5"               # infos only
ERROR_FILE = RULES_DIR / "softmax-wrong-axis" / "bad_batch_k2.h5"       # one error


def _kinspect(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "inspector", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env)


def _json_run(*args: str | Path) -> tuple[int, dict[str, Any]]:
    proc = _kinspect("--no-probe", "--format", "json", *args)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, assert_valid_report(proc.stdout)


def test_fixture_severities_used_by_cli_tests() -> None:
    assert {f.severity for f in _report(str(WARNING_ONLY)).findings} == {"warning"}
    assert {f.severity for f in _report(str(INFO_ONLY)).findings} == {"info"}
    assert "error" in {f.severity for f in _report(str(ERROR_FILE)).findings}


@pytest.mark.parametrize(("path", "fail_on", "code"), [
    (ERROR_FILE, "error", 1), (ERROR_FILE, "never", 0),
    (WARNING_ONLY, "error", 0), (WARNING_ONLY, "warning", 1), (WARNING_ONLY, "info", 1),
    (WARNING_ONLY, "never", 0),
    (INFO_ONLY, "warning", 0), (INFO_ONLY, "info", 1),
])
def test_fail_on_exit_codes(path: Path, fail_on: str, code: int) -> None:
    proc = _kinspect("--no-probe", "--format", "json", "--fail-on", fail_on, path)
    assert proc.returncode == code, proc.stderr
    assert_valid_report(proc.stdout)


def test_default_fail_on_is_error_and_exit_zero_overrides() -> None:
    assert _kinspect("--no-probe", "--json", ERROR_FILE).returncode == 1
    assert _kinspect("--no-probe", "--json", WARNING_ONLY).returncode == 0
    assert _kinspect("--no-probe", "--json", "--exit-zero", ERROR_FILE).returncode == 0


@pytest.mark.parametrize("key", ["KIN005", "softmax-wrong-axis", "kin005"])
def test_ignore_by_code_or_name(key: str) -> None:
    code, doc = _json_run("--ignore", key, ERROR_FILE)
    assert code == 0
    assert "softmax-wrong-axis" not in {f["rule"] for f in doc["findings"]}


@pytest.mark.parametrize("key", ["KIN001", "dropout-rate-high"])
def test_select_by_code_or_name(key: str) -> None:
    code, doc = _json_run("--select", key, ERROR_FILE)
    assert code == 0 and doc["findings"] == []
    code, doc = _json_run("--select", f"softmax-wrong-axis,{key}", ERROR_FILE)
    assert code == 1 and {f["rule"] for f in doc["findings"]} == {"softmax-wrong-axis"}


def test_unknown_rule_in_select_is_a_usage_error() -> None:
    proc = _kinspect("--no-probe", "--json", "--select", "no-such-rule", ERROR_FILE)
    assert proc.returncode == 2 and "no-such-rule" in proc.stderr and proc.stdout == ""


def test_format_sarif() -> None:
    proc = _kinspect("--no-probe", "--format", "sarif", ERROR_FILE)
    assert proc.returncode == 1, proc.stderr
    log = assert_valid_sarif(proc.stdout)
    run = log["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [r.code for r in all_rules()]
    (result,) = [r for r in run["results"] if r["ruleId"] == "KIN005"]
    assert result["level"] == "error"
    loc = result["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"].endswith("bad_batch_k2.h5")
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == "model/probs"


def test_rules_command_lists_catalog() -> None:
    proc = _kinspect("rules")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(all_rules())
    for rule, line in zip(all_rules(), lines, strict=True):
        assert line.split()[:3] == [rule.code, rule.name, rule.severity]


@pytest.mark.parametrize("key", ["dropout-rate-high", "KIN001"])
def test_rules_command_shows_documentation(key: str) -> None:
    proc = _kinspect("rules", key)
    rule = lookup("dropout-rate-high")
    assert rule is not None and proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("KIN001 dropout-rate-high (warning)")
    assert "recurrent_dropout" in proc.stdout and rule.hint in proc.stdout


def test_rules_command_unknown_rule_exits_2() -> None:
    proc = _kinspect("rules", "no-such-rule")
    assert proc.returncode == 2 and "unknown rule" in proc.stderr and proc.stdout == ""
