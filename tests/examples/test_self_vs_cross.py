"""examples/self_vs_cross: the experiment's script end to end in SMOKE mode on tiny models."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "examples" / "self_vs_cross" / "run.py"


@pytest.fixture(scope="module")
def experiment():
    spec = importlib.util.spec_from_file_location("self_vs_cross_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_come_from_the_environment_with_small_smoke_defaults(experiment):
    full = experiment.settings({})
    smoke = experiment.settings({"SMOKE": "1", "SVC_STEPS": "5"})
    assert full["SVC_SEEDS"] == "0,1" and full["SVC_MODELS"].split(",")[1] == "gemma-3-270m"
    assert smoke["SVC_STEPS"] == "5" and smoke["SVC_SEEDS"] == "0"
    assert int(smoke["SVC_LIMIT"]) < int(full["SVC_LIMIT"])
    with pytest.raises(SystemExit, match="two models"):
        experiment.settings({"SVC_MODELS": "a"})
    with pytest.raises(SystemExit, match="SVC_STEPS must be a number"):
        experiment.settings({"SVC_STEPS": "many"})


def test_every_pair_trains_with_the_same_settings_and_evaluates_its_own_adapter(experiment):
    config = experiment.settings({"SVC_MODELS": "m1,/x/m2", "SVC_OUT": "o"})
    steps = experiment.plan(config)
    training = [arguments for phase, _, arguments, _ in steps if phase == "training"]
    assert len(training) == 8  # 2 explainers x 2 subjects x 2 seeds
    assert len({tuple(a[a.index("--types") :]) for a in training if "--seed" in a}) == 8
    assert {a[a.index("--max_steps") + 1] for a in training} == {config["SVC_STEPS"]}
    matrices = [arguments for phase, _, arguments, _ in steps if phase == "evaluation"]
    explainers = matrices[0][matrices[0].index("--explainers") + 1]
    assert explainers == "m1+o/adapters/seed0/m1/{subject},/x/m2+o/adapters/seed0/m2/{subject}"
    assert "--num-fewshot" in matrices[-1] and "+" not in matrices[-1][2]
    references = [a for phase, _, a, _ in steps if phase == "references"]
    assert len(references) == 8 and {json.loads(a[-1])["partition"] for a in references} == {
        "train",
        "test",
    }


def test_smoke_run_end_to_end_on_tiny_models(experiment, tiny_llama, tiny_llama_other, tmp_path):
    out = tmp_path / "svc"
    env = {
        "SMOKE": "1",
        "SVC_MODELS": f"{tiny_llama},{tiny_llama_other}",
        "SVC_TYPES": "input_ablation",
        "SVC_OUT": str(out),
    }
    report = experiment.main(env, in_process=True)
    data = json.loads((out / "matrix" / "seed0" / "matrix.json").read_text())
    ok = [c for c in data["cells"] if c["status"] == "ok"]
    assert {(c["explainer"].split("+")[0], c["subject"], c["mode"]) for c in ok} == {
        (str(e), str(s), "self" if e == s else "cross")
        for e in (tiny_llama, tiny_llama_other)
        for s in (tiny_llama, tiny_llama_other)
    }
    assert len(list((out / "adapters" / "seed0").glob("*/*/introspect_training.json"))) == 4
    assert any(c["ci_low"] is not None for c in ok)
    assert {g["subject"] for g in data["self_minus_cross"]} == {
        str(tiny_llama),
        str(tiny_llama_other),
    }
    assert all(g["p_value"] is not None for g in data["self_minus_cross"])
    text = report.read_text()
    assert "## Self minus cross" in text and "Wall time taken" in text and "Budget: 2 min" in text
    assert "## Untrained explainers (1-shot" in text and "heatmap__" in text
    trained = [line for line in text.splitlines() if line.startswith("| 0 | tiny-llama")]
    assert len(trained) == 4 and all("input_ablation 4 | 2 |" in line for line in trained)
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) == {"references", "training", "evaluation"}
    # a second run skips what is done: no new training, the same matrix
    before = (out / "matrix" / "seed0" / "matrix.json").stat().st_mtime_ns
    experiment.main(env, in_process=True)
    assert (out / "matrix" / "seed0" / "matrix.json").stat().st_mtime_ns == before
