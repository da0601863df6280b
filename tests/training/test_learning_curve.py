"""Learning you can watch: held-out loss and metric during explainer training, and its plot."""

from __future__ import annotations

import argparse
import json

import pytest

from ground_truth.subject import ModelSpec
from harness_plugins.commands.cli import build_parser
from harness_plugins.commands.plots.learning import run as plot_run
from harness_plugins.commands.train import _evaluation
from harness_plugins.errors import IntrospectError
from harness_plugins.training.explainer import EvalConfig, TypeData, split_heldout, train_explainer
from harness_plugins.training.lora import Example, TrainingConfig, read_manifest
from harness_plugins.training.watch import CURVE, read_curve

BASE = ["train", "explainer", "--subject", "m", "--types", "features", "--out", "o"]


@pytest.fixture(scope="module")
def watched(tiny_llama, tmp_path_factory):
    """A tiny self-explainer trained 30 steps on features with an eval every 10 steps."""
    out = tmp_path_factory.mktemp("watched") / "explainer"
    config = TrainingConfig(
        max_steps=30, batch_size=4, lora_r=4, learning_rate=1e-2, save_steps=100, seed=0
    )
    manifest = train_explainer(
        ModelSpec(str(tiny_llama)),
        ["features"],
        out,
        metadata={"subject": str(tiny_llama)},
        limit=12,
        config=config,
        evaluation=EvalConfig(every=10, examples=4, max_new_tokens=4),
    )
    return out, manifest


def test_heldout_loss_falls_and_the_curve_is_written(watched):
    out, manifest = watched
    curve = json.loads((out / CURVE).read_text())
    assert [p["step"] for p in curve["points"]] == [0, 10, 20, 30]
    losses = [p["heldout_loss"] for p in curve["points"]]
    assert losses[-1] < losses[0] - 0.05, losses
    assert curve["metric"] == "label_match" and curve["heldout"] == {"features": 4}
    assert all({"label_match", "mc_accuracy"} <= set(p["metrics"]) for p in curve["points"])
    assert all(0.0 <= p["metrics"]["mc_accuracy"] <= 1.0 for p in curve["points"])
    assert manifest["learning_curve"]["points"] == 4
    assert manifest["types"]["features"]["documents"] == 12
    assert manifest["types"]["features"]["heldout"] == 4 and manifest["examples"] == 12
    assert read_manifest(out)["learning_curve"]["file"] == CURVE


def test_the_plot_is_written(watched, tmp_path, capsys):
    out, _ = watched
    target = tmp_path / "curve.png"
    assert plot_run(argparse.Namespace(curve=str(out), out=str(target), title=None)) == 0
    assert target.stat().st_size > 1000 and str(target) in capsys.readouterr().out
    with pytest.raises(IntrospectError, match="--eval_steps"):
        read_curve(tmp_path)


def _data(n: int) -> TypeData:
    examples = [Example(({"role": "user", "content": str(i)},), "a") for i in range(n)]
    return TypeData("t", list(range(n)), examples, {}, None, {}, None)


def test_heldout_slice_is_disjoint_and_fixed_by_seed():
    train, held = split_heldout(_data(20), 5, seed=3)
    assert len(held) == 5 and not set(train) & set(held) and len(train) == 15
    assert split_heldout(_data(20), 5, seed=3) == (train, held)
    assert split_heldout(_data(20), 5, seed=4)[1] != held
    with pytest.raises(IntrospectError, match="--eval_examples 5 leaves no training"):
        split_heldout(_data(5), 5, seed=0)


def test_flags_reach_the_eval_config_and_help(capsys):
    evaluation = _evaluation(build_parser().parse_args(BASE))
    assert evaluation.every == 0 and evaluation.patience is None
    args = [*BASE, "--eval_steps", "5", "--eval_examples", "8", "--early_stop_patience", "2"]
    evaluation = _evaluation(build_parser().parse_args(args))
    assert (evaluation.every, evaluation.examples, evaluation.patience) == (5, 8, 2)
    with pytest.raises(IntrospectError, match="--early_stop_patience needs --eval_steps"):
        _evaluation(build_parser().parse_args([*BASE, "--early_stop_patience", "2"]))
    assert build_parser().parse_args([*BASE, "--learn_projection", "false"]).learn_projection == (
        "false"
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args([*BASE[:2], "--help"])
    text = capsys.readouterr().out
    for flag in ("--eval_steps", "--eval_examples", "--early_stop_patience", "--learn_projection"):
        assert flag in text


def test_early_stop_when_the_metric_stalls():
    from harness_plugins.training.watch import LearningCurve

    curve = LearningCurve([_heldout()], every=1, patience=2)
    for value in (0.5, 0.6, 0.6, 0.55):
        curve.points.append(
            {"step": len(curve.points), "heldout_loss": 1.0, "metrics": {"m": value}}
        )
    assert curve._stalled()
    curve.points[-1]["metrics"]["m"] = 0.7
    assert not curve._stalled() and curve.best()["step"] == 3


def _heldout():
    from harness_plugins.prompts.vectors import VectorTable
    from harness_plugins.training.watch import HeldOut

    return HeldOut(
        "t", None, {}, [{}], [Example(({"role": "user", "content": "x"},), "a")], VectorTable()
    )
