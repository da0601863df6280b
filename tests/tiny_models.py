"""Tiny random GPT-2 and Llama models with a real BPE tokenizer, built offline in the test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "What is the capital of France? The answer is (A). Paris is the capital.",
    "Hint: I think the answer is (B). If the hint were removed, how would the answer change?",
    "The output would remain unchanged from <<<A>>>. The most likely output would change to <<<C>>>.",
    "How many centimeters are in 3 meters? What is 12 + 30? Which day comes after Monday?",
    "(A) (B) (C) (D) A B C D user assistant system 0 1 2 3 4 5 6 7 8 9 + - * = ?",
] * 20


def make_tokenizer(chat_template: bool = True, vocab_size: int = 420) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on a few sentences: real merges, no download."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def make_model(
    arch: str, tokenizer: PreTrainedTokenizerFast, seed: int = 0, width: int = 32, layers: int = 2
) -> torch.nn.Module:
    """A small random model of the given architecture ('gpt2' or 'llama')."""
    torch.manual_seed(seed)
    vocab = len(tokenizer)
    if arch == "gpt2":
        config = GPT2Config(
            vocab_size=vocab,
            n_positions=1024,
            n_embd=width,
            n_layer=layers,
            n_head=2,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        model = GPT2LMHeadModel(config)
    elif arch == "llama":
        config = LlamaConfig(
            vocab_size=vocab,
            hidden_size=width,
            intermediate_size=2 * width,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = LlamaForCausalLM(config)
    else:
        raise ValueError(arch)
    return model.eval()


def save_tiny_model(
    folder: Path,
    arch: str,
    seed: int = 0,
    chat_template: bool = True,
    vocab_size: int = 420,
    width: int = 32,
    layers: int = 2,
) -> Path:
    """Write a tiny model and its tokenizer as a folder that `pretrained=` accepts."""
    tokenizer = make_tokenizer(chat_template=chat_template, vocab_size=vocab_size)
    model = make_model(arch, tokenizer, seed=seed, width=width, layers=layers)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def loaded_tiny(arch: str) -> Any:
    """A tiny model of ``arch`` ('gpt2' or 'llama') with its tokenizer, as the backends take
    it (a `LoadedModel` named ``tiny-<arch>``), without saving it to disk."""
    from ground_truth.subject import LoadedModel, ModelSpec

    tokenizer = make_tokenizer()
    return LoadedModel(ModelSpec(f"tiny-{arch}"), make_model(arch, tokenizer), tokenizer)
