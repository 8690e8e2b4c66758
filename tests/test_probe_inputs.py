"""Probe inputs and sizing without TensorFlow: token ids per input (float Inputs included),
fixed batch sizes, the trailing axis of 1 Keras accepts, error records that keep the cause,
sample counts scaled by the static cost, and the command line's progress lines."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import FakeTerminal, run_on_terminal

from inspector.graph import CallNode, LayerNode, ModelGraph, TensorRef, TensorSpec
from inspector.options import Options
from inspector.probe import runner
from inspector.probe.child import LoadedModel, _after_load, static_specs
from inspector.probe.error_text import error_text
from inspector.probe.inputs import (
    DISTRIBUTIONS,
    TOKEN_IDS,
    InputsError,
    InputSpec,
    distributions_for,
    load_real_inputs,
    random_batch,
)
from inspector.probe.measure import (
    DEFAULT_SAMPLES,
    MIN_SAMPLES,
    Sizes,
    samples_for_cost,
)
from inspector.probe.token_inputs import token_inputs
from inspector.progress import StderrProgress, progress_sink, stage_text

RESNET50_MACS = 3.86e9


# ----------------------------------------------------------------------------- token ids


def _node(name: str, cls: str, *sources: str, **config: Any) -> LayerNode:
    calls = [CallNode([TensorRef(s) for s in sources])] if sources else []
    return LayerNode(name=name, path=f"model/{name}", class_name=cls, config=config, calls=calls)


def _text_graph(*children: LayerNode, inputs: tuple[str, ...] = ("words", "cat")) -> ModelGraph:
    root = LayerNode(name="m", path="model", class_name="Functional", config={}, role="model",
                     children=list(children))
    return ModelGraph(path="m.keras", format="keras3", root=root,
                      inputs=[TensorSpec(n, (None, 10), "float32") for n in inputs])


def test_each_input_gets_the_vocabulary_of_the_embedding_it_feeds() -> None:
    graph = _text_graph(
        _node("words", "InputLayer"), _node("cat", "InputLayer"),
        _node("w_emb", "Embedding", "words", input_dim=500, mask_zero=True),
        _node("flat", "Reshape", "cat"),
        _node("c_emb", "Embedding", "flat", input_dim=4),
        _node("c_emb2", "Embedding", "cat", input_dim=9))
    assert token_inputs(graph) == {"words": {"vocab": 500, "mask_zero": True},
                                   "cat": {"vocab": 4, "mask_zero": False}}
    plan = runner.build_plan(graph, Options())
    assert plan["vocab"] == 4 and plan["id_inputs"]["words"]["vocab"] == 500
    specs = static_specs(plan)
    assert [(s.name, s.vocab, s.low, s.is_ids) for s in specs] == [
        ("words", 500, 1, True), ("cat", 4, 0, True)]


def test_an_embedding_behind_a_value_changing_layer_is_not_traced() -> None:
    graph = _text_graph(_node("words", "InputLayer"), _node("dense", "Dense", "words"),
                        _node("emb", "Embedding", "dense", input_dim=50), inputs=("words",))
    assert token_inputs(graph) == {}


def test_float_input_feeding_an_embedding_gets_in_vocabulary_ids_in_every_range() -> None:
    spec = InputSpec("ids", [None, 12], "float32", vocab=40, feeds_embedding=True)
    other = InputSpec("x", [None, 3], "float32")
    assert distributions_for([spec]) == (TOKEN_IDS,)
    assert distributions_for([spec, other]) == DISTRIBUTIONS
    for dist in DISTRIBUTIONS:
        ids, _ = random_batch([spec, other], dist, 50, seed=0)
        assert ids.dtype == np.float32 and np.array_equal(ids, np.round(ids))
        assert ids.min() >= 0 and ids.max() < 40 and ids.max() > 30
    assert spec.as_dict()["token_ids"] is True and spec.as_dict()["lowest_id"] == 0


# ----------------------------------------------------------------------------- structured rows

RANGE_BOUNDS = {"uniform01": (0.0, 1.0), "uniform0_255": (0.0, 255.0),
                "uniform_m1_1": (-1.0, 1.0)}


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_odd_rows_of_images_and_sequences_vary_globally(dist: str) -> None:
    """i.i.d. noise averages out over many pixels or steps (every sample has the same mean);
    the odd rows carry a level per sample and channel, so a global-pooling model sees
    inputs that differ. Values stay in the range, and the batch is the same for a seed."""
    specs = [InputSpec("image", [None, 32, 32, 3], "float32"),
             InputSpec("signal", [None, 256, 2], "float32")]
    batch = random_batch(specs, dist, 40, seed=3)
    for x in batch:
        means = x.reshape(len(x), -1, x.shape[-1]).mean(axis=1)      # per sample and channel
        iid, structured = means[0::2].std(axis=0), means[1::2].std(axis=0)
        assert (structured > 5 * iid).all(), (dist, iid, structured)
        if dist in RANGE_BOUNDS:
            low, high = RANGE_BOUNDS[dist]
            assert x.min() >= low and x.max() <= high
    assert all(np.array_equal(a, b) for a, b in zip(batch, random_batch(specs, dist, 40, 3),
                                                     strict=True))


def test_flat_feature_vectors_and_ids_stay_iid() -> None:
    """Tabular features have no axis to pool over: their samples are i.i.d. as before."""
    spec = InputSpec("features", [None, 400], "float32")
    (x,) = random_batch([spec], "uniform01", 40, seed=3)
    expected = np.random.default_rng([3, DISTRIBUTIONS.index("uniform01")]).uniform(
        0.0, 1.0, size=(40, 400))
    assert np.array_equal(x, expected.astype("float32"))


# ----------------------------------------------------------------------------- fixed batch


class _FakeKeras:
    """Records the batch sizes it is called with; output = 2 x input."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.resets = 0

    def predict(self, x: np.ndarray, verbose: int = 0, batch_size: int | None = None) -> Any:
        assert batch_size is not None and len(x) % batch_size == 0
        self.sizes.append(len(x))
        return x * 2


def _fixed(batch: int, stateful: bool) -> tuple[LoadedModel, _FakeKeras]:
    model = object.__new__(LoadedModel)
    fake = _FakeKeras()

    class Layer:
        def reset_states(self) -> None:
            fake.resets += 1

    model.obj, model.has_layers, model.fixed_batch = fake, True, batch
    model.output_names = ["out"]
    model.stateful = [Layer()] if stateful else []
    return model, fake


@pytest.mark.parametrize("stateful", [True, False])
def test_fixed_batch_models_get_exactly_their_batch_size(stateful: bool) -> None:
    model, fake = _fixed(4, stateful)
    x = np.arange(10, dtype="float32").reshape(10, 1)
    (out,) = model.predict([x])
    assert np.array_equal(out, x * 2)                    # padding trimmed, order kept
    if stateful:      # one call per batch, each from a zero state
        assert fake.sizes == [4, 4, 4] and fake.resets == 3
    else:             # one predict() over the padded samples, in batches of 4
        assert fake.sizes == [12] and fake.resets == 0


def test_fixed_batch_comes_from_the_declared_batch_dimension() -> None:
    assert InputSpec("s", [4, 10, 3], "float32").fixed_batch == 4
    assert InputSpec("s", [None, 10, 3], "float32").fixed_batch is None
    assert Sizes.for_cost(None, None, fixed_batch=4).layer_chunk == 4
    assert Sizes.for_cost(RESNET50_MACS, {"check": 3}, fixed_batch=2).layer_chunk == 2
    given = Sizes(check=1)
    assert Sizes.for_cost(1e12, given, fixed_batch=8) is given


# ----------------------------------------------------------------------------- real inputs


@pytest.mark.parametrize(("given", "spec_shape", "fitted"), [
    ((5, 784), [None, 784, 1], (5, 784, 1)),
    ((5, 28, 28), [None, 28, 28, 1], (5, 28, 28, 1)),
    ((5, 20, 1), [None, 20], (5, 20)),
])
def test_a_missing_or_extra_trailing_axis_of_one_is_reshaped_with_a_note(
        tmp_path: Path, given: tuple[int, ...], spec_shape: list[int | None],
        fitted: tuple[int, ...]) -> None:
    np.save(tmp_path / "x.npy", np.ones(given, "float32"))
    real = load_real_inputs(str(tmp_path / "x.npy"), [InputSpec("x", spec_shape, "float32")])
    assert real.arrays[0].shape == fitted
    assert any("trailing axis of 1" in note and str(given) in note for note in real.notes)


def test_other_shape_differences_are_still_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((5, 784), "float32"))
    with pytest.raises(InputsError, match=r"expects shape \(N, 784, 3\)"):
        load_real_inputs(str(tmp_path / "x.npy"), [InputSpec("x", [None, 784, 3], "float32")])


# ----------------------------------------------------------------------------- errors


TF_GRAPH_ERROR = (
    "Graph execution error:\n\nDetected at node functional_1/embed/GatherV2 defined at "
    "(most recent call last):\n" + "".join(
        f'  File "/usr/lib/python3.11/site-packages/keras/module{i}.py", line {i}, in f\n'
        for i in range(30))
    + "indices[0,3] = 226 is not in [0, 40)\n\t [[{{node functional_1/embed/GatherV2}}]] "
    "[Op:__inference_one_step_on_data_distributed_1234]")


def test_error_records_keep_the_cause_at_the_end_of_a_long_message() -> None:
    class InvalidArgumentError(Exception):
        pass

    text = error_text(InvalidArgumentError(TF_GRAPH_ERROR))
    assert text.startswith("InvalidArgumentError: Graph execution error:")
    assert text.endswith("indices[0,3] = 226 is not in [0, 40)")
    assert "File " not in text and len(text) < 450
    keras3 = ("Exception encountered when calling Embedding.call().\n\n\x1b[1m{{function_node "
              "__wrapped__ResourceGather_device_/job:localhost/CPU:0}} indices[1,2] = 300 is "
              "not in [0, 50) [Op:ResourceGather] name: \x1b[0m\n\nArguments received by "
              "Embedding.call():\n  • inputs=tf.Tensor(shape=(4, 12), dtype=float32)")
    assert error_text(ValueError(keras3)).endswith("indices[1,2] = 300 is not in [0, 50)")
    assert error_text(ValueError("one line")) == "ValueError: one line"
    assert error_text(KeyError()) == "KeyError"


def test_no_error_record_is_cut_at_a_fixed_prefix() -> None:
    """The old records kept ``str(exc)[:300]``: the stack, never the cause."""
    root = Path(__file__).resolve().parent.parent / "inspector" / "probe"
    cut = re.compile(r"str\(exc\)\)?\[:\d+\]")
    offenders = [p.name for p in root.glob("*.py") if cut.search(p.read_text())]
    assert offenders == []


# ----------------------------------------------------------------------------- sizing


def test_sample_count_scales_with_the_static_cost() -> None:
    assert samples_for_cost(None, None) == (DEFAULT_SAMPLES, "default")
    assert samples_for_cost(None, 1e6)[0] == DEFAULT_SAMPLES
    resnet, why = samples_for_cost(None, RESNET50_MACS)
    assert MIN_SAMPLES <= resnet <= 16 and "instead of" in why and "--samples" in why
    assert samples_for_cost(None, 1e12)[0] == MIN_SAMPLES
    assert samples_for_cost(200, RESNET50_MACS) == (200, "as requested (--samples)")


def test_progress_fractions_after_load_fill_the_rest_of_the_bar() -> None:
    seen: list[dict[str, Any]] = []
    forward = _after_load(seen.append)  # type: ignore[arg-type]
    for fraction in (0.0, 0.5, 1.0):
        forward({"event": "progress", "stage": "outputs", "fraction": fraction})
    forward({"event": "stage", "stage": "outputs", "message": "m"})
    fractions = [e["fraction"] for e in seen if e["event"] == "progress"]
    assert fractions[0] > 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert seen[-1] == {"event": "stage", "stage": "outputs", "message": "m"}


# ----------------------------------------------------------------------------- CLI progress


def test_progress_names_the_stage_range_and_step() -> None:
    event = {"event": "stage", "stage": "outputs", "range": "[0,1]", "step": 3, "steps": 4,
             "message": "predict on 16 samples in [0,1]"}
    assert stage_text(event) == "outputs [0,1] 3/4"
    assert stage_text({"event": "stage", "stage": "layers"}) == "layers"
    stream = FakeTerminal()
    clock = iter([10.0, 22.4])
    sink = StderrProgress("/x/resnet50.keras", stream, clock=lambda: next(clock))
    sink({"event": "stage", "stage": "import"})
    sink({"event": "progress", "stage": "import", "fraction": 0.1})     # not printed
    sink(event)
    assert stream.getvalue().splitlines() == [
        "kinspect: resnet50.keras: probe: import (0 s)",
        "kinspect: resnet50.keras: probe: outputs [0,1] 3/4 (12 s)"]


def test_progress_only_on_a_terminal() -> None:
    assert progress_sink("m.keras", io.StringIO()) is None
    assert isinstance(progress_sink("m.keras", FakeTerminal()), StderrProgress)


@pytest.mark.tf
@pytest.mark.xdist_group("probe-tf")
def test_cli_prints_probe_progress_on_a_terminal_stderr() -> None:
    """End to end: stderr on a pseudo-terminal gets the stage lines with the input range;
    stdout (a pipe) gets only the report."""
    run = run_on_terminal(["--json", "--samples", "8", "fixtures/models/mlp/k3.keras"],
                          stdout_on_terminal=False)
    lines = run.terminal.splitlines()
    assert run.returncode == 0 and run.stdout.lstrip().startswith("{")
    seen = [m.groups() for m in (re.search(r"k3\.keras: probe: outputs (\S+) (\d)/4 \(\d+ s\)$",
                                           line) for line in lines) if m]
    assert sorted(seen, key=lambda g: g[1]) == list(zip(
        [g[0] for g in sorted(seen, key=lambda g: g[1])], "1234", strict=True)), lines
    assert {g[0] for g in seen} == {"[0,1]", "[0,255]", "[-1,1]", "N(0,1)"}, lines
