"""The training loss with vocabulary logits only where a token is learned, and no work
the loss does not read.

A causal LM's own loss projects every position onto the vocabulary: batch x length x
vocabulary floats, kept for the backward pass with their float32 copy, softmax and
gradient. An explainer learns a reply of a dozen tokens after a prompt of hundreds, so
almost all of that is thrown away. Here the hidden states are cut to the positions that
predict a learned token before the output layer sees them; the loss is the same sum of
the same cross-entropies, divided the same way, as `ForCausalLMLoss` computes.

Two more cuts leave that loss unchanged (tests/training/test_step_work.py):

* ``trim_tail``: columns after the batch's last position that predicts a learned token
  are never read (a causal model's earlier positions do not see them), so they are not
  computed: the reply's last token is a target, never an input that predicts one.
* ``share_prefix``: the tokens every row of the batch starts with (the chat template's
  system turn, the type's instructions up to the first vector) are run once, for one
  row, and their keys and values repeated for the batch. Under LoRA they are not frozen
  (the adapter changes them every step), so they are recomputed each step, but once per
  batch instead of once per row; the gradient flows back through the repeat, summed
  over the rows, which is what the rows' own copies would receive.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

IGNORE = -100


@dataclass
class Work:
    """What the training steps computed, counted (the throughput benchmark's evidence)."""

    steps: int = 0
    tokens: int = 0
    """Real tokens of the batches' rows (padding left out): the data trained on."""
    answer_tokens: int = 0
    """Learned (reply) tokens."""
    positions: int = 0
    """Token positions the transformer ran, padding and shared prefixes included."""
    padded: int = 0
    """Of those, padding positions."""
    head_rows: int = 0
    """Positions the output layer projected onto the vocabulary."""

    def add_batch(self, mask: Any, labels: Any) -> None:
        self.steps += 1
        self.tokens += int(mask.sum())
        self.answer_tokens += int((labels != IGNORE).sum())

    def add_forward(self, mask: Any, head_rows: int) -> None:
        self.positions += int(mask.numel())
        self.padded += int((mask == 0).sum())
        self.head_rows += head_rows


def predicting_positions(labels: Any) -> Any:
    """Boolean (batch, length) mask of the positions whose next token is learned."""
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE
    return keep


@contextmanager
def head_sees_only(model: Any, keep: Any) -> Iterator[dict[str, Any]]:
    """Within the block, the output layer is given only the hidden states at ``keep``.

    Yields a record whose ``cut`` says whether it was (a model that computes its logits
    without calling its output embeddings module leaves them whole).
    """
    head = model.get_output_embeddings()
    record: dict[str, Any] = {"cut": False}

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


@contextmanager
def slots_written(model: Any, where: Any, values: Any, offset: int = 0) -> Iterator[None]:
    """Within the block, ``values`` replace the input embeddings at ``where`` ((row,
    position) pairs; ``offset`` is subtracted from the positions: a forward that starts
    after a shared prefix)."""
    if where is None or not where.numel():
        yield
        return

    def write(module: Any, hook_args: Any, output: Any) -> Any:
        output = output.clone()
        output[where[:, 0], where[:, 1] - offset] = values.to(
            device=output.device, dtype=output.dtype
        )
        return output

    handle = model.get_input_embeddings().register_forward_hook(write)
    try:
        yield
    finally:
        handle.remove()


def shared_length(ids: Any, mask: Any, keep: Any, where: Any | None) -> int:
    """How many leading tokens every row shares and may be run once: equal ids, no
    padding, no vector slot and no position that predicts a learned token among them."""
    if ids.shape[0] < 2:
        return 0
    same = ((ids == ids[:1]) & (mask == 1)).all(0)
    limit = int(same.logical_not().nonzero()[0]) if not same.all() else ids.shape[1]
    predicting = keep.any(0).nonzero()
    if predicting.numel():
        limit = min(limit, int(predicting[0]))
    if where is not None and where.numel():
        limit = min(limit, int(where[:, 1].min()))
    return max(0, limit)


def answer_only_loss(
    model: Any,
    inputs: Mapping[str, Any],
    num_items_in_batch: Any | None = None,
    *,
    slots: tuple[Any, Any] | None = None,
    trim_tail: bool = False,
    share_prefix: bool = False,
    work: Work | None = None,
) -> Any:
    """The mean next-token cross-entropy over the learned labels, from their logits only.

    ``num_items_in_batch`` given: the sum divided by it, as the Trainer asks of a model
    that takes it (gradient accumulation over unequal batches); else the mean here.
    ``slots``: (positions, values) written over the input embeddings.
    """
    import torch
    import torch.nn.functional as F

    inputs = dict(inputs)
    labels = inputs.pop("labels")
    ids = inputs.pop("input_ids")
    mask = inputs.pop("attention_mask", None)
    mask = torch.ones_like(ids) if mask is None else mask
    where, values = slots if slots is not None else (None, None)
    keep = predicting_positions(labels)
    targets = labels[:, 1:][keep[:, :-1]]
    if work is not None:
        work.add_batch(mask, labels)
    if trim_tail and keep.any():
        width = int(keep.any(0).nonzero()[-1]) + 1
        ids, mask, keep = ids[:, :width], mask[:, :width], keep[:, :width]
    shared = shared_length(ids, mask, keep, where) if share_prefix else 0
    extra: dict[str, Any] = {}
    if shared:
        nothing = torch.zeros((1, shared), dtype=torch.bool, device=keep.device)
        with head_sees_only(model, nothing):
            prefix = model(
                input_ids=ids[:1, :shared], attention_mask=mask[:1, :shared], use_cache=True
            )
        cache = getattr(prefix, "cache", None)
        if hasattr(cache, "batch_repeat_interleave"):
            cache.batch_repeat_interleave(ids.shape[0])
            extra = {"cache": cache, "use_cache": True}
            if work is not None:
                work.add_forward(mask[:1, :shared], 0)
        else:  # a model that returns no cache to continue from: every row runs in full
            shared = 0
    keep = keep[:, shared:]
    with slots_written(model, where, values, shared), head_sees_only(model, keep) as record:
        logits = model(input_ids=ids[:, shared:], attention_mask=mask, **extra, **inputs).logits
    logits = logits.reshape(-1, logits.shape[-1]) if record["cut"] else logits[keep]
    if work is not None:
        work.add_forward(mask[:, shared:], int(keep.sum()) if record["cut"] else keep.numel())
    reduction = "sum" if num_items_in_batch is not None else "mean"
    loss = F.cross_entropy(
        logits.float(), targets.to(logits.device), ignore_index=IGNORE, reduction=reduction
    )
    if num_items_in_batch is not None:
        loss = loss / num_items_in_batch
    return loss
