"""The training loss with vocabulary logits only where a token is learned.

A causal LM's own loss projects every position onto the vocabulary: batch x length x
vocabulary floats, kept for the backward pass with their float32 copy, softmax and
gradient. An explainer learns a reply of a dozen tokens after a prompt of hundreds, so
almost all of that is thrown away. Here the hidden states are cut to the positions that
predict a learned token before the output layer sees them; the loss is the same sum of
the same cross-entropies, divided the same way, as `ForCausalLMLoss` computes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

IGNORE = -100


def predicting_positions(labels: Any) -> Any:
    """Boolean (batch, length) mask of the positions whose next token is learned."""
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE
    return keep


@contextmanager
def head_sees_only(model: Any, keep: Any) -> Iterator[dict[str, bool]]:
    """Within the block, the output layer is given only the hidden states at ``keep``.

    Yields a record whose ``cut`` says whether it was (a model that computes its logits
    without calling its output embeddings module leaves them whole).
    """
    head = model.get_output_embeddings()
    record = {"cut": False}

    def cut(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        hidden = args[0]
        if hidden.dim() != 3 or hidden.shape[:2] != keep.shape:
            return None  # already sliced (logits_to_keep) or not the final hidden states
        record["cut"] = True
        return (hidden[keep.to(hidden.device)].unsqueeze(0), *args[1:])

    if head is None:  # no output module to cut before: the logits are cut after
        yield record
        return
    handle = head.register_forward_pre_hook(cut)
    try:
        yield record
    finally:
        handle.remove()


def answer_only_loss(
    model: Any, inputs: Mapping[str, Any], num_items_in_batch: Any | None = None
) -> Any:
    """The mean next-token cross-entropy over the learned labels, from their logits only.

    ``num_items_in_batch`` given: the sum divided by it, as the Trainer asks of a model
    that takes it (gradient accumulation over unequal batches); else the mean here.
    """
    import torch.nn.functional as F

    inputs = dict(inputs)
    labels = inputs.pop("labels")
    keep = predicting_positions(labels)
    targets = labels[:, 1:][keep[:, :-1]]
    with head_sees_only(model, keep) as record:
        logits = model(**inputs).logits
    logits = logits.reshape(-1, logits.shape[-1]) if record["cut"] else logits[keep]
    reduction = "sum" if num_items_in_batch is not None else "mean"
    loss = F.cross_entropy(
        logits.float(), targets.to(logits.device), ignore_index=IGNORE, reduction=reduction
    )
    if num_items_in_batch is not None:
        loss = loss / num_items_in_batch
    return loss
