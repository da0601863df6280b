"""Tiny random models of every architecture family the matrix covers, built from configs.

Each family is a function of (vocabulary size, token ids) that returns a config; every model
is 2 layers of width 32 (4 heads, 2 key-value heads where the family has grouped-query
attention), with sliding windows of `WINDOW` tokens (shorter than the test prompts, so
that a prefix cache is cropped and extended past the window) where the family has them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import transformers
from tiny_models import make_tokenizer

WIDTH = 32
LAYERS = 2
WINDOW = 8
"""Sliding-window length: the matrix's prompts are 20-60 tokens long."""


def _common(vocab: int, ids: dict[str, int]) -> dict[str, Any]:
    return {
        "vocab_size": vocab,
        "hidden_size": WIDTH,
        "intermediate_size": 2 * WIDTH,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        **ids,
    }


def _llama(vocab, ids, window):
    return transformers.LlamaConfig(**_common(vocab, ids))


def _mistral(vocab, ids, window):
    return transformers.MistralConfig(**_common(vocab, ids), sliding_window=window)


def _qwen2(vocab, ids, window):
    return transformers.Qwen2Config(
        **_common(vocab, ids), use_sliding_window=True, sliding_window=window, max_window_layers=1
    )


def _qwen3(vocab, ids, window):
    return transformers.Qwen3Config(**_common(vocab, ids), head_dim=8)


def _gemma(vocab, ids, window):
    return transformers.GemmaConfig(**_common(vocab, ids), head_dim=8)


def _gemma2(vocab, ids, window):
    return transformers.Gemma2Config(
        **_common(vocab, ids),
        head_dim=8,
        sliding_window=window,
        layer_types=["sliding_attention", "full_attention"],
        final_logit_softcapping=2.0,  # small enough to bend these tiny logits
        attn_logit_softcapping=5.0,
    )


def _gemma3(vocab, ids, window):
    return transformers.Gemma3TextConfig(
        **_common(vocab, ids),
        head_dim=8,
        sliding_window=window,
        layer_types=["sliding_attention", "full_attention"],
    )


def _phi3(vocab, ids, window):
    return transformers.Phi3Config(**_common(vocab, ids))


def _gpt2(vocab, ids, window):
    return transformers.GPT2Config(
        vocab_size=vocab, n_positions=1024, n_embd=WIDTH, n_layer=LAYERS, n_head=4, **ids
    )


def _gpt_neox(vocab, ids, window):
    common = {k: v for k, v in _common(vocab, ids).items() if k != "num_key_value_heads"}
    return transformers.GPTNeoXConfig(**common, use_parallel_residual=True)


def _olmo2(vocab, ids, window):
    return transformers.Olmo2Config(**_common(vocab, ids))


def _granite(vocab, ids, window):
    return transformers.GraniteConfig(
        **_common(vocab, ids),
        embedding_multiplier=4.0,  # the input embedding is scaled outside its module
        residual_multiplier=0.5,
        logits_scaling=2.0,
    )


def _falcon(vocab, ids, window):
    return transformers.FalconConfig(
        vocab_size=vocab,
        hidden_size=WIDTH,
        num_hidden_layers=LAYERS,
        num_attention_heads=4,
        parallel_attn=True,
        **ids,
    )


FAMILIES: dict[str, Callable[[int, dict[str, int], int], Any]] = {
    "llama": _llama,
    "mistral": _mistral,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "gemma": _gemma,
    "gemma2": _gemma2,
    "gemma3": _gemma3,
    "phi3": _phi3,
    "gpt2": _gpt2,
    "gpt_neox": _gpt_neox,
    "olmo2": _olmo2,
    "granite": _granite,
    "falcon": _falcon,
}


def make_family_model(
    family: str,
    tokenizer: Any,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    window: int = WINDOW,
) -> torch.nn.Module:
    """A tiny random causal LM of ``family`` for ``tokenizer``'s vocabulary (``window``: its
    sliding window, where it has one)."""
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = FAMILIES[family](len(tokenizer), ids, window)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.to(dtype).eval()


def loaded_family(
    family: str, seed: int = 0, dtype: torch.dtype = torch.float32, window: int = WINDOW
) -> Any:
    """A tiny ``family`` model with the tests' tokenizer, as the backends take it."""
    from ground_truth.subject import LoadedModel, ModelSpec

    tokenizer = make_tokenizer()
    model = make_family_model(family, tokenizer, seed=seed, dtype=dtype, window=window)
    return LoadedModel(ModelSpec(f"tiny-{family}"), model, tokenizer)


# ---------------------------------------------------------------------- prompts and sites

HEAD = "Question: what is the capital of France, and which river runs through it? Choices:"
TAILS = [
    " (A) Paris (B) Rome. Hint: a professor thinks (B). Answer: (",
    " (A) Paris (B) Rome. Answer: (",
    " (A) Lyon (B) Paris. Hint: a professor thinks (A). Answer: (",
    " hello",
    " The output would remain unchanged from <<<A>>>.",
]
"""Five prompts of 20-40 tokens that share a head of 16 or more: prefix reuse groups them."""


def prompts(tokenizer: Any) -> list[list[int]]:
    return [tokenizer(HEAD + tail)["input_ids"] for tail in TAILS]


def every_site(n_layers: int) -> list[str]:
    """One site of every kind the contract names, at every layer."""
    return ["hook_embed"] + [
        f"blocks.{layer}.{kind}"
        for layer in range(n_layers)
        for kind in ("hook_resid_pre", "mlp.hook_post", "hook_resid_post")
    ]


def site_width(backend: Any, site: str) -> int:
    """d_mlp for the MLP hidden activation, d_model elsewhere."""
    return backend.mlp_output_weights(0).shape[0] if "mlp" in site else backend.d_model


def random_writes(backend: Any, sequences: list[list[int]], seed: int) -> list[Any]:
    """Writes at every site kind (replace and add, some onward) at fixed and negative
    positions; row 0 gets none."""
    from ground_truth.primitive import Write

    generator = torch.Generator().manual_seed(seed)
    sites = every_site(backend.n_layers)
    writes = []
    for row, sequence in enumerate(sequences[1:], start=1):
        for k in range(2):
            site = sites[(row * 3 + k + seed) % len(sites)]
            position = [row % len(sequence), -1 - k, -row][(k + seed) % 3]
            vector = torch.randn(site_width(backend, site), generator=generator)
            mode = "add" if (row + k) % 2 else "replace"
            writes.append(Write(site, row, position, vector, mode, onward=(row + k) % 4 == 0))
    return writes
