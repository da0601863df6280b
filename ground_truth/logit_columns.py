"""Only the logits a caller reads: the columns a pass keeps, and scoring from them.

A pass over a left-padded batch needs the next-token logits of the last column (each row
ends there) and, to score a continuation (``score_from``), those of the columns that
predict its tokens: the last ``count + 1`` columns for a continuation of ``count`` tokens.
The vocabulary projection of every other column is never computed (``logits_to_keep``).
"""

from __future__ import annotations

import torch


def score_tokens(
    logits: torch.Tensor, ids: torch.Tensor, offset: int, start: int, length: int
) -> tuple[torch.Tensor, bool]:
    """Log-probabilities of tokens start..length-1 of one left-padded row, and whether
    each was the greedy choice (all of them).

    ``ids`` is the row (it ends at the pass's last column); ``logits`` are the pass's last
    columns, at least ``length - start + 1`` of them (`logit_columns`), or all of them.
    """
    if not 1 <= start <= length:
        raise ValueError(f"score_from {start} outside 1..{length}")
    count, kept, width = length - start, logits.shape[0], ids.shape[0]
    if count + 1 > kept or offset + length != width:
        raise ValueError(f"{kept} logit columns cannot score {count} tokens of this row")
    predicting = logits[kept - 1 - count : kept - 1].float().log_softmax(-1)
    targets = ids[width - count :]
    chosen = predicting.gather(-1, targets[:, None])[:, 0]
    return chosen.cpu(), bool((predicting.argmax(-1) == targets).all())


def logit_columns(all_logits: bool | int) -> int:
    """The ``logits_to_keep`` of a `BatchedBackend.run`'s ``all_logits``: True every column
    (0), False the last (1), a positive int that many last columns."""
    if isinstance(all_logits, bool):
        return 0 if all_logits else 1
    if all_logits < 1:
        raise ValueError(f"all_logits {all_logits}: keep at least the last column")
    return int(all_logits)
