"""The answer-probe warm start: projections fitted to the answers' embeddings, ridge by CV."""

from __future__ import annotations

import pytest
import torch
from tiny_models import make_tokenizer

from harness_plugins.errors import IntrospectError
from harness_plugins.prompts import vectors
from harness_plugins.prompts.projections import SlotProjections
from harness_plugins.training.answer_probe import answer_embeddings, fit_answer_probe
from harness_plugins.training.lora import Example

WORDS = ["ocean", "music", "winter", "money", "chess", "coffee", "bread", "tennis"]


def _examples(embedding, tokenizer, count: int, seed: int = 0):
    """Slot vectors that are a noisy linear image of their answer's embedding."""
    mixing = torch.randn(24, 24, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(seed)  # the noise
    targets = answer_embeddings(WORDS, tokenizer, embedding)
    examples = []
    for k in range(count):
        word = WORDS[k % len(WORDS)]
        vector = targets[WORDS.index(word)] @ mixing + 0.05 * torch.randn(24, generator=generator)
        rep = vectors.slot(vector, scale=2.0, layer=3)
        examples.append(Example(({"role": "user", "content": f"What is {rep}?"},), word))
    return examples


def test_the_probe_writes_each_answers_embedding_at_its_slot(table):
    tokenizer = make_tokenizer()
    embedding = torch.nn.Embedding(len(tokenizer), 24)
    examples = _examples(embedding, tokenizer, 48)
    sources = [(torch.randn(24), 3, 2.0, None)]
    projections = SlotProjections.initial(sources)
    fit_answer_probe(projections, examples, tokenizer, embedding, seed=0)

    info = projections.info["3"]
    assert info["init"] == "answer_probe" and info["probe_examples"] == 48
    assert info["ridge"] in (1e-3, 1e-2, 1e-1, 1.0) and max(info["cv_retrieval"].values()) > 0.9
    targets = answer_embeddings(WORDS, tokenizer, embedding)
    fresh = _examples(embedding, tokenizer, 16, seed=1)  # vectors it was not fitted on
    hits = 0
    for example in fresh:
        (piece,) = [p for p in vectors.parse(example.messages[0]["content"]) if p.slot]
        value = projections.project(*vectors.source(piece.slot)).detach()
        similarity = torch.nn.functional.cosine_similarity(value[None], targets, dim=-1)
        hits += WORDS[int(similarity.argmax())] == example.answer
    assert hits >= 14


def test_the_probe_needs_enough_examples(table):
    tokenizer = make_tokenizer()
    embedding = torch.nn.Embedding(len(tokenizer), 24)
    projections = SlotProjections.initial([(torch.randn(24), 3, 2.0, None)])
    with pytest.raises(IntrospectError, match="at least 20 one-slot training examples"):
        fit_answer_probe(projections, _examples(embedding, tokenizer, 6), tokenizer, embedding)
