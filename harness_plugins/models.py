"""The model catalog: which models a run involves, and what is known of them before and after loading.

Aliases resolve through the registry; a model already loaded (by lm-eval's ``introspect``
model, or by an earlier build) is shared through `ground_truth.subject.shared_models`;
specs, names, tokenizers, layer counts and fingerprints are read cheaply (from files and
the fingerprint memo) before any weights load. Nothing here imports lm-eval: the
reference pipeline, ``ground-truth build``, training and ``matrix`` use it without it.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness_plugins.errors import IntrospectError
from harness_plugins.registry import Registry, get_registry

__all__ = [
    "HF_MODEL_ARGUMENTS",
    "ModelArguments",
    "ModelCatalog",
    "check_model_names",
    "model_arguments",
    "model_specs",
    "note_command_line_model",
    "register_live_model",
    "register_model_arguments",
    "tokenizer_for",
]

INTROSPECT_MODEL = "introspect"
"""``lm_eval --model introspect`` (the adapter's `MODEL_NAME`)."""

HF_MODEL_ARGUMENTS = frozenset(
    {
        "add_bos_token",
        "autogptq",
        "backend",
        "batch_size",
        "chat_template_args",
        "delta",
        "device",
        "dtype",
        "enable_thinking",
        "gguf_file",
        "gptqmodel",
        "logits_cache",
        "max_batch_size",
        "max_cpu_memory",
        "max_length",
        "max_memory_per_gpu",
        "mixed_precision_dtype",
        "offload_folder",
        "parallelize",
        "peft",
        "prefix_token_id",
        "pretrained",
        "revision",
        "softmax_dtype",
        "subfolder",
        "think_end_token",
        "tokenizer",
        "tp_plan",
        "truncation",
        "trust_remote_code",
        "use_fast_tokenizer",
    }
)
"""Keyword arguments of lm-eval's HF model (and so of ``introspect``): lm-eval mixes them into
task metadata. Written out so that the pipeline needs no lm-eval; a test checks them against
lm-eval's signature."""

# What the adapter tells the catalog: the introspect models alive in this process (each
# with its ``argument_names``) and the ``--model``/``--model_args`` of the command line.
_live_models: weakref.WeakSet[Any] = weakref.WeakSet()
_command_line: dict[str, Any] = {}


# model name -> what lm-eval passes it besides its model_args (create_from_arg_string); the
# adapter adds each lm-eval model it registers (`register_model_arguments`).
_arguments_by_model: dict[str, frozenset[str]] = {
    INTROSPECT_MODEL: frozenset({"pretrained", "peft", "batch_size", "max_batch_size", "device"})
}


def register_model_arguments(model: str, names: Iterable[str]) -> None:
    """The argument names of an lm-eval model the adapter registers: with the command line's
    model among them, options are validated exactly before any weights load."""
    _arguments_by_model[model] = frozenset(names)


def register_live_model(model: Any) -> None:
    """Called by the ``introspect`` lm-eval model when it loads (it has ``argument_names``)."""
    _live_models.add(model)


def note_command_line_model(model: Any, model_args: Iterable[str]) -> None:
    """Called before lm-eval matches tasks: the command line's model and its argument names."""
    _command_line.update(model=model, model_args=set(model_args))


@dataclass(frozen=True)
class ModelArguments:
    """The model-argument names that may appear in task metadata (lm-eval mixes them in)."""

    possible: frozenset[str]
    """Any model lm-eval may evaluate: passed over quietly."""
    exact: frozenset[str] | None
    """The evaluated model's own, when it is the introspect model: any other key is an error."""
    live: bool
    """Whether an introspect model is loaded in this process (vector prompts need one)."""


def model_arguments() -> ModelArguments:
    """The one source of model-argument names (see `ModelArguments`)."""
    exact: set[str] | None = None
    if _live_models:
        exact = set().union(*(model.argument_names for model in _live_models))
    elif _command_line.get("model") in _arguments_by_model:
        exact = set(_arguments_by_model[_command_line["model"]]) | set(
            _command_line.get("model_args") or ()
        )
    return ModelArguments(
        possible=HF_MODEL_ARGUMENTS,
        exact=frozenset(exact) if exact is not None else None,
        live=bool(_live_models),
    )


def model_specs(
    task: str, metadata: Mapping[str, Any], options: Mapping[str, Any]
) -> tuple[Any, Any]:
    """(explainer, subject): the subject is the explainer unless the options name another."""
    from ground_truth.subject import ModelSpec

    explainer = ModelSpec.from_arguments(metadata) if metadata.get("pretrained") else None
    if options["subject"]:
        return explainer, ModelSpec.from_arguments(options, prefix="subject_")
    if explainer is None:
        raise IntrospectError(
            f"{task}: no subject model: name one with --metadata "
            '\'{"subject": "..."}\' or evaluate a model given by pretrained='
        )
    return explainer, explainer


def check_model_names(specs: Iterable[Any], aliases: Mapping[str, Any]) -> None:
    """Fail before any weights load when a model or adapter path cannot exist.

    Aliases are checked when resolved (resolving may convert files, so not here).
    """
    from ground_truth.subject import check_peft, resolve_source

    for spec in specs:
        if spec is None:
            continue
        if spec.pretrained not in aliases:
            resolve_source(spec, aliases)
        check_peft(spec)


def tokenizer_for(spec: Any, registry: Registry | None = None) -> Any:
    """A model's tokenizer: the live model's when it is loaded, else read from its files."""
    from ground_truth.subject import load_tokenizer, shared_models

    live = shared_models.get(spec)
    if live is not None:
        return live.tokenizer
    return load_tokenizer(spec, (registry or get_registry()).model_aliases)


class ModelCatalog:
    """Models by spec, through one registry's aliases: shared when live, loaded at most once."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or get_registry()

    @property
    def aliases(self) -> Mapping[str, Any]:
        return self.registry.model_aliases

    def live(self, spec: Any) -> Any:
        """The loaded model for ``spec`` when one is alive in this process, else None."""
        from ground_truth.subject import shared_models

        return shared_models.get(spec) if spec is not None else None

    def load(self, spec: Any) -> Any:
        """The model for ``spec`` (a live one when there is, else loaded and shared)."""
        from ground_truth.subject import load_model

        return load_model(spec, self.aliases)

    def tokenizer(self, spec: Any) -> Any:
        return tokenizer_for(spec, self.registry)

    def check_names(self, specs: Iterable[Any]) -> None:
        check_model_names(specs, self.aliases)

    def layer_count(self, spec: Any, loaded: Any = None) -> int | None:
        """Layers of ``spec``: from the live (or given) model's config, else from its files."""
        from ground_truth.subject import layer_count

        live = self.live(spec) or loaded
        if live is not None:
            count = getattr(getattr(live.model, "config", None), "num_hidden_layers", None)
            return count if isinstance(count, int) else None
        return layer_count(spec, self.aliases)

    def known_fingerprint(self, spec: Any) -> str | None:
        """The fingerprint of ``spec`` without loading it: live, or remembered for its files."""
        from ground_truth.subject import known_fingerprint, resolve_source

        live = self.live(spec)
        if live is not None:
            return live.fingerprint
        return known_fingerprint(spec, resolve_source(spec, self.aliases))

    def fingerprint(self, spec: Any, load: Any) -> str:
        """The content fingerprint of ``spec``: remembered per source, else from its weights
        (``load()`` gives them)."""
        from ground_truth.subject import (
            files_key,
            known_fingerprint,
            remember_fingerprint,
            resolve_source,
        )

        live = self.live(spec)
        source = resolve_source(spec, self.aliases)
        key = files_key(spec, source)  # the files' content, hashed once per call
        if live is None:
            known = known_fingerprint(spec, source, key) if key else None
            if known is not None:
                return known
            live = load()
        if key:
            remember_fingerprint(spec, source, live.fingerprint, key)
        return live.fingerprint

    def explainer_fingerprints(
        self, explainer: Any, subject: Any, mode: str, subject_fingerprint: str
    ) -> dict[str, str | None]:
        """The explainer's whole, base and adapter fingerprints (what is known without loading)."""
        from ground_truth.subject import adapter_fingerprint

        if explainer is None or explainer == subject:
            return {
                "explainer_fingerprint": subject_fingerprint,
                "explainer_base_fingerprint": subject_fingerprint,
            }
        live = self.live(explainer)
        whole = live.fingerprint if live is not None else None
        if not explainer.peft:
            return {"explainer_fingerprint": whole, "explainer_base_fingerprint": whole}
        if mode == "self":  # the subject is the explainer's base
            base = subject_fingerprint
        else:
            base = self.known_fingerprint(dataclasses.replace(explainer, peft=None))
        return {
            "explainer_fingerprint": whole,
            "explainer_base_fingerprint": base,
            "explainer_adapter_fingerprint": adapter_fingerprint(explainer.peft),
        }
