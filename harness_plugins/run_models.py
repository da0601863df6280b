"""The models a run involves: explainer and subject specs from lm-eval's metadata, checked cheaply.

Everything here runs before any weights load: names resolve (or fail with one line),
adapters exist, and tokenizers are read from files unless the model is already live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness_plugins.errors import IntrospectError
from harness_plugins.registry import Registry, get_registry

__all__ = ["check_model_names", "model_specs", "tokenizer_for"]


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
