"""Which models introspect can score: decoder-only causal LMs, told apart from their config.

`check_architecture` refuses, before any weights load, what the backends cannot run:
encoder-decoder models (T5, BART), encoder-only models (BERT, RoBERTa) and multimodal
checkpoints that transformers cannot load as a causal LM. The message is one line that
names the architecture.
"""

from __future__ import annotations

from typing import Any

from ground_truth.errors import IntrospectError

SCOPE = "introspect scores decoder-only causal language models"


def _names(config: Any) -> str:
    return ", ".join(getattr(config, "architectures", None) or [type(config).__name__])


def check_architecture(config: Any) -> None:
    """Raise `IntrospectError` when ``config`` is not a decoder-only causal LM's."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    names = _names(config)
    if getattr(config, "is_encoder_decoder", False):
        raise IntrospectError(
            f"{names} ({model_type}) is an encoder-decoder model; {SCOPE} (one stack of "
            "decoder blocks)"
        )
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        raise IntrospectError(f"{names} ({model_type}) is an encoder-only model; {SCOPE}")
    remote = "AutoModelForCausalLM" in (getattr(config, "auto_map", None) or {})
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or remote:
        return
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if text is not config:
        raise IntrospectError(
            f"{names} ({model_type}) is a multimodal model that transformers cannot load as "
            f"a causal LM; {SCOPE}: pass a checkpoint of its text model"
        )
    raise IntrospectError(f"{names} ({model_type}) has no causal-LM class in transformers; {SCOPE}")


def check_source_architecture(path: str, **kwargs: Any) -> None:
    """`check_architecture` on a model's config file (nothing when it cannot be read: the
    load that follows says why)."""
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path, **kwargs)
    except Exception:
        return
    check_architecture(config)
