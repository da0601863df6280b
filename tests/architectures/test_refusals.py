"""Out of scope, refused in one line that names the architecture, from the config alone.

Each folder holds a config and nothing else (no weights, no tokenizer): a refusal that
needed either would fail differently.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from families import loaded_family

from ground_truth.backends.hf import HFBackend
from ground_truth.errors import IntrospectError
from ground_truth.subject import ModelSpec, load_model

OUT_OF_SCOPE = {
    "t5": (transformers.T5Config, "encoder-decoder"),
    "bart": (transformers.BartConfig, "encoder-decoder"),
    "bert": (transformers.BertConfig, "encoder-only"),
    "roberta": (transformers.RobertaConfig, "encoder-only"),
    "llava": (transformers.LlavaConfig, "multimodal"),
    "clip": (transformers.CLIPConfig, "multimodal"),
}


@pytest.mark.parametrize("name", sorted(OUT_OF_SCOPE))
def test_out_of_scope_models_are_refused_before_weights_load(name, tmp_path):
    config_class, reason = OUT_OF_SCOPE[name]
    folder = tmp_path / name
    config_class().save_pretrained(folder)
    with pytest.raises(IntrospectError) as error:
        load_model(ModelSpec(str(folder)), {})
    message = str(error.value)
    assert "\n" not in message and reason in message and f"({name})" in message, message


def test_the_introspect_model_refuses_before_lm_eval_loads(tmp_path):
    from harness_plugins.lm_eval_adapter.model import IntrospectLM

    transformers.T5Config().save_pretrained(tmp_path)
    with pytest.raises(IntrospectError, match=r"T5Config \(t5\) is an encoder-decoder"):
        IntrospectLM(pretrained=str(tmp_path), device="cpu")


def test_blocks_that_are_not_one_list_are_refused_in_one_line():
    loaded = loaded_family("llama")
    loaded.model.model.layers = torch.nn.ModuleDict(
        {str(i): layer for i, layer in enumerate(loaded.model.model.layers)}
    )
    with pytest.raises(IntrospectError, match="cannot find the 2 transformer blocks"):
        HFBackend(loaded, progress=False)
