"""A warm start for learned projections: fitted in closed form to the answers' embeddings.

A learned projection starts as the fixed path (``scale * I`` for self-explanation): a
residual-stream direction written where a token embedding goes, which the explainer
cannot read as any word. Trained by gradient through the whole model, it barely moves
before the adapter has learned the answers' distribution instead (measured:
examples/positive_control/README.md). The warm start solves for the projection directly:
a ridge regression from each training slot's subject vector to the mean input embedding
of its example's answer tokens, so that step 0 already writes, at each slot, roughly the
embedding of the word the answer names. Only training examples are used; the ridge is
picked by k-fold cross-validation on them (`choose_ridge`), never on held-out documents.

Only examples with exactly one slot take part (the feature and Patchscope types), since
the answer then names that slot's content.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch

from ground_truth.least_squares import solve_affine
from harness_plugins.errors import IntrospectError
from harness_plugins.prompts import vectors
from harness_plugins.prompts.projections import layer_name

RIDGES = (1e-3, 1e-2, 1e-1, 1.0)
FOLDS = 5
MIN_EXAMPLES = 20


def slot_answers(examples: Sequence[Any]) -> list[tuple[str, str]]:
    """(slot key, answer) of every example with exactly one vector slot."""
    found = []
    for example in examples:
        keys = vectors.slot_keys(example.messages)
        if len(keys) == 1:
            found.append((keys[0], example.answer))
    return found


def answer_embeddings(answers: Sequence[str], tokenizer: Any, embedding: Any) -> torch.Tensor:
    """Mean input embedding of each answer's tokens (as the reply starts: no leading space)."""
    weight = embedding.weight.detach().float().cpu()
    rows = []
    for answer in answers:
        ids = tokenizer(answer.strip(), add_special_tokens=False)["input_ids"]
        rows.append(weight[ids].mean(0) if ids else torch.zeros(weight.shape[1]))
    return torch.stack(rows)


def _retrieval(predicted: torch.Tensor, targets: torch.Tensor, labels: list[str]) -> float:
    """Share of rows whose prediction is nearest (cosine) its own answer among the distinct
    answers: how well the map names answers it was not fitted on."""
    distinct = sorted(set(labels))
    index = {label: k for k, label in enumerate(distinct)}
    table = torch.stack([targets[labels.index(label)] for label in distinct])
    similarity = (
        torch.nn.functional.normalize(predicted, dim=-1)
        @ torch.nn.functional.normalize(table, dim=-1).T
    )
    best = similarity.argmax(-1).tolist()
    return sum(best[k] == index[label] for k, label in enumerate(labels)) / len(labels)


def choose_ridge(
    x: torch.Tensor, y: torch.Tensor, labels: list[str], seed: int
) -> tuple[float, dict[float, float]]:
    """The ridge with the best k-fold retrieval on the training examples, and every score."""
    order = list(range(len(labels)))
    random.Random(seed).shuffle(order)
    folds = [order[k::FOLDS] for k in range(FOLDS)]
    scores = {}
    for ridge in RIDGES:
        hits = []
        for fold in folds:
            held = set(fold)
            kept = [i for i in order if i not in held]
            weight, bias = solve_affine(x[kept], y[kept], ridge)
            hits.append(_retrieval(x[fold] @ weight + bias, y[fold], [labels[i] for i in fold]))
        scores[ridge] = sum(hits) / len(hits)
    return max(scores, key=scores.get), scores


def fit_answer_probe(
    projections: Any, examples: Sequence[Any], tokenizer: Any, embedding: Any, seed: int = 0
) -> None:
    """Set each layer's projection (and offset) to the ridge map from slot vectors to
    answer embeddings; the layer's info records the ridge and its cross-validated score."""
    by_layer: dict[str, list[tuple[Any, str]]] = {}
    for key, answer in slot_answers(examples):
        vector, layer, _scale = vectors.source(key)
        by_layer.setdefault(layer_name(layer), []).append((vector, answer))
    for name in projections.maps:
        pairs = by_layer.get(name, [])
        if len(pairs) < MIN_EXAMPLES:
            raise IntrospectError(
                f"--projection_init answer_probe needs at least {MIN_EXAMPLES} one-slot training "
                f"examples per subject layer; layer {name} has {len(pairs)}"
            )
        x = torch.stack([torch.as_tensor(v).float().cpu() for v, _ in pairs])
        labels = [answer for _, answer in pairs]
        y = answer_embeddings(labels, tokenizer, embedding)
        ridge, scores = choose_ridge(x, y, labels, seed)
        weight, bias = solve_affine(x, y, ridge)
        linear = projections.maps[name]
        with torch.no_grad():
            linear.weight.copy_(weight.T.to(linear.weight))
            getattr(projections, f"offset_{name}").copy_(bias.to(linear.weight))
        projections.info[name].update(
            init="answer_probe",
            ridge=ridge,
            cv_retrieval={str(k): round(v, 4) for k, v in scores.items()},
            probe_examples=len(pairs),
        )
