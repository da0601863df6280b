"""The model catalog: model-argument names from one place, and no lm-eval under the pipeline."""

from __future__ import annotations

import inspect
import subprocess
import sys

from harness_plugins import models


def test_the_catalog_knows_the_arguments_of_lm_evals_hf_model_and_ours():
    from lm_eval.models.huggingface import HFLM

    from harness_plugins.lm_eval_adapter.model import IntrospectLM

    names: set[str] = set()
    for cls in (HFLM, IntrospectLM):
        names |= set(inspect.signature(cls.__init__).parameters)
    assert names - {"self", "kwargs"} == models.HF_MODEL_ARGUMENTS


def test_exact_model_arguments_come_from_the_command_line_or_a_live_model(monkeypatch):
    monkeypatch.setattr(models, "_command_line", {})
    monkeypatch.setattr(models, "_live_models", type(models._live_models)())
    assert models.model_arguments().exact is None
    models.note_command_line_model("hf", {"dtype"})
    assert models.model_arguments().exact is None  # plain hf forwards unknown keys
    models.note_command_line_model("introspect", {"dtype"})
    assert {"pretrained", "dtype"} <= models.model_arguments().exact
    assert not models.model_arguments().live

    class Live:
        argument_names = {"pretrained", "attn_implementation"}

    live = Live()
    models.register_live_model(live)
    arguments = models.model_arguments()
    assert arguments.live and arguments.exact == {"pretrained", "attn_implementation"}


def test_the_reference_pipeline_imports_nothing_from_lm_eval():
    code = (
        "import sys, harness_plugins.references, harness_plugins.models; "
        "print([m for m in sys.modules if m.startswith('lm_eval')])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
