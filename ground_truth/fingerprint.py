"""Content fingerprints of models, the identity that reference datasets are cached under.

A path or a name does not say what a model computes (an adapter, a dtype, a re-saved
checkpoint all change it), so the fingerprint hashes what does: the weights, the
architecture settings and the tokenizer with its chat template. Loading routes that
give the same numbers (the GGUF file and its safetensors copy) give the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

# Config fields that describe how a checkpoint was saved or loaded, not what it computes.
_VOLATILE_CONFIG_KEYS = frozenset(
    {
        "_name_or_path",
        "transformers_version",
        "quantization_config",
        "torch_dtype",
        "dtype",
        "use_cache",
        "architectures",
        "_attn_implementation",
        "_attn_implementation_autoset",
        "attn_implementation",
        "name_or_path",
        "output_hidden_states",
        "output_attentions",
        "return_dict",
        "pad_token_id",
    }
)
# Tokenizer JSON sections that change with use (padding for a batch), not with identity.
_VOLATILE_TOKENIZER_KEYS = ("padding", "truncation")

_CHUNK_ELEMENTS = 1 << 24


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().reshape(-1)
    if flat.dtype == torch.bfloat16:
        flat = flat.view(torch.int16)
    elif flat.dtype.is_floating_point and flat.dtype.itemsize == 1:
        flat = flat.view(torch.uint8)
    return flat.cpu().numpy().tobytes()


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 over every named parameter and persistent buffer, by name, dtype, shape and value."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        flat = tensor.detach().reshape(-1)
        for start in range(0, max(flat.numel(), 1), _CHUNK_ELEMENTS):
            digest.update(_tensor_bytes(flat[start : start + _CHUNK_ELEMENTS]))
    return digest.hexdigest()


def config_digest(config: Any) -> str:
    """Architecture settings that change the computation, without load-time details."""
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    kept = {k: v for k, v in sorted(data.items()) if k not in _VOLATILE_CONFIG_KEYS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def tokenizer_digest(tokenizer: Any) -> str:
    """Vocabulary, merges, special tokens and chat template: what turns text into ids."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        data = json.loads(backend.to_str())
        for key in _VOLATILE_TOKENIZER_KEYS:
            data.pop(key, None)
        body = json.dumps(data, sort_keys=True)
    else:
        body = json.dumps(sorted(tokenizer.get_vocab().items()))
    template = getattr(tokenizer, "chat_template", None) or ""
    return hashlib.sha256(f"{body}\n{template}".encode()).hexdigest()


def model_fingerprint(model: torch.nn.Module, tokenizer: Any) -> str:
    """Short stable id of (weights, architecture, tokenizer); 16 hex digits."""
    config = getattr(model, "config", {})
    parts = [weights_digest(model), config_digest(config), tokenizer_digest(tokenizer)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
