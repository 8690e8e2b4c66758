"""``kinspect`` end to end with the probe: the JSON report carries the probe section and the
probe findings, and exit codes follow them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import assert_valid_report

from inspector.probe.protocol import VERDICT_KEYS

pytestmark = [pytest.mark.tf, pytest.mark.xdist_group("probe-tf")]

ROOT = Path(__file__).resolve().parent.parent


def _kinspect(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


def test_healthy_model_gets_a_probe_section() -> None:
    proc = _kinspect("--json", "--samples", "8", "fixtures/models/mlp/k3.keras")
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = assert_valid_report(proc.stdout)
    probe = doc["probe"]
    assert probe["status"] == "ok" and probe["loader"] == "keras3"
    assert set(probe["verdict"]) == set(VERDICT_KEYS) and not any(probe["verdict"].values())
    assert probe["device"] and probe["timings"]["import"] > 0
    assert [f for f in doc["findings"] if f["source"] == "probe"] == []
    assert proc.stdout.lstrip().startswith("{")          # no TensorFlow chatter on stdout


def test_collapsed_model_fails_with_a_linked_probe_finding() -> None:
    proc = _kinspect("--json", "--samples", "8", "fixtures/probe/collapsed_softmax1.keras")
    assert proc.returncode == 1, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    by_rule = {f["rule"]: f for f in doc["findings"]}
    assert by_rule["output-collapsed"]["source"] == "probe"
    assert by_rule["output-collapsed"]["related"] == ["softmax-single-unit"]
    assert by_rule["softmax-single-unit"]["confirmation"] == "confirmed"


def test_no_probe_leaves_the_section_empty() -> None:
    proc = _kinspect("--json", "--no-probe", "fixtures/models/mlp/k3.keras")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["probe"] is None


def test_collapsed_frozen_model_is_diagnosed_without_inputs() -> None:
    """The user's complaint ("it predicts one class") at default settings, no --inputs: the
    headline names the collapse on the model's own [0,1] range and the static cause."""
    proc = _kinspect("--json", "fixtures/probe/collapsed_all_frozen_cnn.keras")
    assert proc.returncode == 1, proc.stderr[-2000:]
    doc = assert_valid_report(proc.stdout)
    assert doc["probe"]["verdict"]["collapsed"] is True
    assert doc["probe"]["verdict"]["scale_sensitive"] is False
    assert doc["probe"]["input_range"]["name"] == "uniform01"
    diagnosis = doc["diagnosis"]
    assert diagnosis["cause_rule"] == "all-layers-frozen", diagnosis
    assert diagnosis["summary"].startswith("predicts class"), diagnosis
    frozen = next(f for f in doc["findings"] if f["rule"] == "all-layers-frozen")
    assert frozen["confirmation"] == "confirmed"
