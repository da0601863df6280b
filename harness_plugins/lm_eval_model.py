"""The ``introspect`` lm-eval model: lm-eval's HF model that knows model aliases and shares weights.

``--model introspect --model_args pretrained=smollm2-135m-instruct`` resolves the alias
through the model-alias hook, then behaves exactly like ``--model hf``. The loaded model
is published in `ground_truth.subject.shared_models`, so an introspect task whose
subject is this same model (self-explanation) runs these weights for its ground truth
instead of loading a second copy.
"""

from __future__ import annotations

import weakref
from typing import Any

import lm_eval.models  # noqa: F401  fill lm-eval's model table first: registering into an

# empty table makes lm-eval skip its own lazy registrations, and `--model hf` disappears.
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from ground_truth.subject import LoadedModel, ModelSpec, check_peft, resolve_source, shared_models
from harness_plugins.plugins import get_registry

MODEL_NAME = "introspect"

_live: weakref.WeakSet[IntrospectLM] = weakref.WeakSet()


def live_model_arguments() -> set[str] | None:
    """Argument names of the introspect models alive in this process (None if there are none).

    lm-eval mixes model arguments into task metadata; knowing them exactly lets tasks
    reject every other unknown key as a misspelt option.
    """
    if not _live:
        return None
    names: set[str] = set()
    for model in _live:
        names |= model.argument_names
    return names


@register_model(MODEL_NAME)
class IntrospectLM(HFLM):
    """`HFLM` plus model aliases and weight sharing with introspect tasks."""

    def __init__(self, pretrained: Any, peft: str | None = None, **kwargs: Any) -> None:
        self.argument_names = {"pretrained", "peft", *kwargs}
        if not isinstance(pretrained, str):  # an already-loaded model object
            super().__init__(pretrained=pretrained, peft=peft, **kwargs)
            self.loaded = None
            _live.add(self)
            return
        spec = ModelSpec.from_arguments({**kwargs, "pretrained": pretrained, "peft": peft})
        source = resolve_source(spec, get_registry().model_aliases)  # clear error for bad names
        check_peft(spec)
        if source.gguf_file:
            kwargs["gguf_file"] = source.gguf_file
        super().__init__(pretrained=source.path, peft=peft, **kwargs)
        self.loaded = LoadedModel(spec=spec, model=self.model, tokenizer=self.tokenizer)
        shared_models[spec] = self.loaded
        _live.add(self)
