"""The real ``lm_eval`` command in a subprocess, with no flags beyond lm-eval's own, on tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from results_helpers import CAUSAL_METRICS, metric_names, results_of

METRICS = CAUSAL_METRICS


def lm_eval(model_dir: Path, *args: str, model: str = "introspect", env=None):
    return run_cli(
        "lm_eval",
        "--model",
        model,
        "--model_args",
        f"pretrained={model_dir}",
        "--device",
        "cpu",
        *args,
        env=env,
    )


def test_ls_tasks_lists_builtin_and_plugin_tasks_and_the_group():
    done = run_cli("lm_eval", "ls", "tasks")
    assert done.returncode == 0, done.stderr
    for name in ("introspect_input_ablation", "introspect_next_token", "|introspect "):
        assert name in done.stdout


def test_self_explanation_run_writes_all_metrics_and_the_record(tiny_llama, tmp_path):
    # Its own cache: other tests build references for the same model and options.
    cache = {"INTROSPECT_CACHE_DIR": str(tmp_path / "cache")}
    done = lm_eval(
        tiny_llama,
        "--tasks",
        "introspect_input_ablation",
        "--limit",
        "3",
        "--output_path",
        str(tmp_path),
        "--log_samples",
        env=cache,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = results_of(tmp_path)
    assert metric_names(results["results"]["introspect_input_ablation"]) == METRICS
    record = results["configs"]["introspect_input_ablation"]["metadata"]["introspect"]
    assert record["mode"] == "self" and record["references_built"] == 3
    assert record["subject_fingerprint"] == record["explainer_fingerprint"]
    samples = [
        json.loads(line)
        for line in next(tmp_path.rglob("samples_*.jsonl")).read_text().splitlines()
    ]
    assert len(samples) == 3 and all(s["target"].startswith("The ") for s in samples)

    again = lm_eval(tiny_llama, "--tasks", "introspect_input_ablation", "--limit", "3", env=cache)
    assert again.returncode == 0
    assert "reusing 3 cached references" in again.stderr

    passing = run_cli(
        "introspect", "gate", str(tmp_path), "--min", "introspect_input_ablation/valid=0"
    )
    assert passing.returncode == 0, passing.stdout + passing.stderr
    failing = run_cli(
        "introspect", "gate", str(tmp_path), "--min", "introspect_input_ablation/valid=1.01"
    )
    assert failing.returncode == 1 and "FAIL" in failing.stdout


@pytest.mark.parametrize("selection", ["introspect", "introspect_*"])
def test_group_and_glob_select_every_explanation_type(tiny_llama, tmp_path, selection):
    # A random tiny model states none of the attribute facts: evaluate them all.
    done = lm_eval(
        tiny_llama,
        "--tasks",
        selection,
        "--limit",
        "2",
        "--output_path",
        str(tmp_path),
        "--metadata",
        json.dumps({"only_known": False}),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = results_of(tmp_path)["results"]
    assert {"introspect_input_ablation", "introspect_next_token"} <= set(results)
    assert metric_names(results["introspect_next_token"]) == {
        "token_match",
        "answered",
        "top_answer_share",  # a plugin type that writes an answer is calibrated too
    }


def test_plain_hf_model_still_works_and_runs_text_only_types(tiny_gpt2, tmp_path):
    done = lm_eval(
        tiny_gpt2,
        "--tasks",
        "introspect_input_ablation",
        "--limit",
        "2",
        "--output_path",
        str(tmp_path),
        model="hf",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = results_of(tmp_path)
    assert metric_names(results["results"]["introspect_input_ablation"]) == METRICS
    assert (
        results["configs"]["introspect_input_ablation"]["metadata"]["introspect"]["mode"] == "self"
    )


def test_cross_explanation_through_metadata(tiny_llama, tiny_llama_other, tmp_path):
    metadata = json.dumps({"subject": str(tiny_llama_other)})
    done = lm_eval(
        tiny_llama,
        "--tasks",
        "introspect_input_ablation",
        "--limit",
        "2",
        "--metadata",
        metadata,
        "--output_path",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = results_of(tmp_path)["configs"]["introspect_input_ablation"]["metadata"]["introspect"]
    assert record["mode"] == "cross"
    assert record["subject_fingerprint"] != record["explainer_fingerprint"]
    assert None not in (record["subject_fingerprint"], record["explainer_fingerprint"])


def test_opt_out_hides_the_tasks_and_include_path_brings_them_back(tiny_llama):
    off = {"INTROSPECT_DISABLE_LM_EVAL_HOOK": "1"}
    hidden = lm_eval(tiny_llama, "--tasks", "introspect_input_ablation", "--limit", "1", env=off)
    assert hidden.returncode != 0 and "introspect_input_ablation" in hidden.stderr
    folder = run_cli("introspect", "tasks", "--path").stdout.strip()
    shown = run_cli(
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_llama}",
        "--device",
        "cpu",
        "--tasks",
        "introspect_input_ablation",
        "--limit",
        "1",
        "--include_path",
        folder,
        env=off,
    )
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "introspect_input_ablation" in shown.stdout


def test_hook_off_introspect_eval_registers_the_introspect_model(tiny_llama):
    # The README's route for --model introspect with the hook off: `introspect eval`
    # (= python -m harness_plugins.lm_eval_adapter) runs lm_eval with it registered.
    off = {"INTROSPECT_DISABLE_LM_EVAL_HOOK": "1"}
    folder = run_cli("introspect", "tasks", "--path").stdout.strip()
    args = ["--model", "introspect", "--model_args", f"pretrained={tiny_llama}", "--device", "cpu"]
    args += ["--tasks", "introspect_input_ablation", "--limit", "1", "--include_path", folder]
    plain = run_cli("lm_eval", *args, env=off)
    assert plain.returncode != 0 and "no model for this name found" in plain.stderr
    done = run_cli("introspect", "eval", *args, env=off)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "introspect_input_ablation" in done.stdout and "changed_f1" in done.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--metadata", '{"sed": 3}'],
            "introspect: error: introspect_input_ablation: unknown option 'sed'; did you mean 'seed'?",
        ),
        (
            ["--metadata", '{"partition": "dev"}'],
            "introspect: error: introspect_input_ablation: option partition='dev' is not one of",
        ),
        (
            ["--metadata", '{"subject": "/no/such/model"}'],
            "introspect: error: model path '/no/such/model' does not exist",
        ),
        (  # no close match: known as a misspelling only because the model's arguments are
            ["--metadata", '{"zzz_unheard_of": 1}'],
            "introspect: error: introspect_input_ablation: unknown option 'zzz_unheard_of'",
        ),
    ],
)
def test_bad_input_is_one_error_line_before_any_model_loads(tiny_llama, extra, message):
    done = lm_eval(tiny_llama, "--tasks", "introspect_input_ablation", "--limit", "1", *extra)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("introspect: error:")]
    assert len(errors) == 1 and errors[0].startswith(message), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "Initializing introspect model" not in done.stderr


def test_unknown_model_alias_is_one_error_line():
    done = run_cli(
        "lm_eval",
        "--model",
        "introspect",
        "--model_args",
        "pretrained=smollm-9000",
        "--tasks",
        "introspect_input_ablation",
        "--limit",
        "1",
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("introspect: error:")]
    assert (
        len(errors) == 1
        and "unknown model 'smollm-9000'" in errors[0]
        and "smollm2-135m-instruct" in errors[0]
    )


def test_wandb_offline_run_holds_the_results_table(tiny_llama, tmp_path):
    wandb_dir = tmp_path / "wandb-runs"
    wandb_dir.mkdir()
    done = lm_eval(
        tiny_llama,
        "--tasks",
        "introspect_input_ablation",
        "--limit",
        "2",
        "--output_path",
        str(tmp_path / "out"),
        "--log_samples",
        "--wandb_args",
        "project=introspect-tests,mode=offline",
        env={"WANDB_DIR": str(wandb_dir)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list(wandb_dir.rglob("offline-run-*"))
    assert runs, f"no offline run under {wandb_dir}"
    tables = list(runs[0].rglob("eval_results*.table.json"))
    assert tables, "results table not logged"
    table = json.loads(tables[0].read_text())
    assert "introspect_input_ablation" in json.dumps(table["data"])
    assert {row[4] for row in table["data"]} >= METRICS
    samples = list(runs[0].rglob("introspect_input_ablation*.table.json"))
    assert samples, "samples table not logged"


def test_two_processes_build_the_references_once(tiny_llama, tmp_path):
    """accelerate launch: one process builds each reference dataset, the others wait and read it."""
    done = run_cli(
        "accelerate",
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "lm_eval",
        "--model",
        "introspect",
        "--model_args",
        f"pretrained={tiny_llama}",
        "--tasks",
        "introspect_input_ablation",
        "--limit",
        "3",
        "--metadata",
        json.dumps({"seed": 77}),
        env={"INTROSPECT_CACHE_DIR": str(tmp_path / "cache"), "CUDA_VISIBLE_DEVICES": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("Initializing introspect model") == 2
    assert done.stderr.count("built 3 references") == 1
    assert done.stderr.count("reusing 3 cached references") == 1
