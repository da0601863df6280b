"""Which sequences share a batch: the context check and the orders that keep padding low.

A left-padded batch computes its longest row's width for every row, so rows of a batch
should be alike in length; rows that start alike should share a batch too, so that their
common prefix runs once (`ground_truth.prefix_reuse`). `by_length` serves the first;
`by_prefix_then_length` both: the token-order tree of shared prefixes, whose siblings
(rows or groups of rows that share at least `MIN_SHARED_PREFIX` tokens more than their
parent) are ordered by length. Results go back in request order whatever the order.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from ground_truth.errors import IntrospectError
from ground_truth.prefix_reuse import MIN_SHARED_PREFIX, common_length

_CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "n_ctx", "seq_length")


def context_length(loaded: Any) -> int | None:
    """The subject's context in tokens, from its config (None: unknown or unlimited)."""
    config = getattr(getattr(loaded, "model", None), "config", None)
    if config is not None and hasattr(config, "get_text_config"):
        config = config.get_text_config()
    for name in _CONTEXT_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def check_context(loaded: Any, sequences: Sequence[Sequence[int]]) -> None:
    """Refuse prompts longer than the subject's context: the model would read positions it
    was never trained on (or fail mid-build), and the references would be silently wrong."""
    limit = context_length(loaded)
    if limit is None or not sequences:
        return
    longest = max(range(len(sequences)), key=lambda i: len(sequences[i]))
    if len(sequences[longest]) > limit:
        over = sum(len(s) > limit for s in sequences)
        raise IntrospectError(
            f"{over} prompt(s) are longer than the subject's context of {limit} tokens "
            f"(the longest, prompt {longest}, has {len(sequences[longest])}); shorten or "
            "remove the long questions in the dataset, or use a subject with a longer context"
        )


def by_length(sequences: Sequence[Sequence[int]]) -> list[int]:
    """Longest first (ties in request order)."""
    return sorted(range(len(sequences)), key=lambda i: (-len(sequences[i]), i))


def by_tokens(sequences: Sequence[Sequence[int]]) -> list[int]:
    """Token order: sequences that start alike are neighbours."""
    return sorted(range(len(sequences)), key=lambda i: (tuple(sequences[i]), i))


def by_prefix_then_length(
    sequences: Sequence[Sequence[int]], minimum: int = MIN_SHARED_PREFIX
) -> list[int]:
    """Token order's tree of shared prefixes with each node's children ordered by length.

    Neighbours in token order whose common prefix is at least ``minimum`` tokens longer
    than what their whole range shares stay together (a question's hinted and unhinted
    prompt, a scenario's decisions); within that, and among such groups, longer first.
    """
    order = by_tokens(sequences)
    adjacent = [common_length(sequences[a], sequences[b]) for a, b in itertools.pairwise(order)]
    out: list[int] = []
    # iterative depth-first walk over (first, stop) ranges of ``order``
    stack: list[tuple[int, int]] = [(0, len(order))]
    while stack:
        first, stop = stack.pop()
        if stop - first == 1:
            out.append(order[first])
            continue
        inner = adjacent[first : stop - 1]
        level = min(inner) + minimum
        parts, start = [], first
        for k, shared in enumerate(inner, start=first):
            if shared < level:
                parts.append((start, k + 1))
                start = k + 1
        parts.append((start, stop))
        longest = {part: max(len(sequences[order[i]]) for i in range(*part)) for part in parts}
        parts.sort(key=lambda part: (-longest[part], part[0]))
        stack.extend(reversed(parts))
    return out
