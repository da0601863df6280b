"""Prefix reuse: tokens that several passes would compute alike run once, as a KV cache.

A causal model's activations at a position depend only on the tokens up to it, so a pass
can be split anywhere: a *prefix pass* runs each row's first tokens with the cache on,
and a *suffix pass* runs the rest of each row on top of that cache. Two kinds of work
are saved with one mechanism:

* rows of a batch that start alike (a hinted and an unhinted prompt of one question, or
  every prompt's chat template): `group_prefixes` finds the groups of rows worth a shared
  prefix, which runs once per group (`BatchedBackend.forward`);
* a patched run after a clean one (`clean_and_patched`): the tokens before each row's
  first write are the same in both runs, so the patched run is a second suffix pass on
  the clean run's prefix cache (cropped back after the clean suffix).

Layout: prefixes are left-padded (each ends at the prefix pass's last column) and so are
suffixes (each ends at the suffix pass's last column: its next-token logits are the last
column's); the attention mask holds the padding between the two, and position ids come
from the mask (`ground_truth.batching.position_ids`), so padding never moves a position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ground_truth.primitive import ForwardResult, Read, Write, sequence_index

if TYPE_CHECKING:
    from ground_truth.batching import BatchedBackend, SitePlan

# Shorter common prefixes are not worth a separate pass.
MIN_SHARED_PREFIX = 16


def attention_window(model: Any) -> int | None:
    """The shortest attention span of ``model``'s layers in tokens (None: unlimited).

    Read from the (text) config: ``sliding_window`` and chunked attention, whichever
    layers use them (a window set but unused only makes prefix reuse rarer, never wrong).
    """
    config = getattr(model, "config", None)
    if config is None:
        return None
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    spans = [
        value
        for name in ("sliding_window", "attention_chunk_size")
        if isinstance(value := getattr(config, name, None), int) and value > 0
    ]
    return min(spans) if spans else None


def fits_window(
    window: int | None, sequences: Sequence[Sequence[int]], starts: Sequence[int]
) -> bool:
    """Whether a prefix pass of each sequence's first ``starts[i]`` tokens and a suffix pass
    of the rest span fewer columns than ``window`` together (always, without a window)."""
    if window is None or not any(starts):
        return True
    suffix = max(len(s) - start for s, start in zip(sequences, starts, strict=True))
    return max(starts) + suffix < window


def common_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def own_positions(
    batch: Sequence[int],
    sequences: Sequence[Sequence[int]],
    reads: Sequence[Read],
    writes: Sequence[Write],
    score_from: Sequence[int] | None,
) -> list[int]:
    """For each row of ``batch``: the first position it needs in its own pass (a read, a
    write or a scored token; at most its last token, whose logits are the result)."""
    where = {row: i for i, row in enumerate(batch)}
    limits = [len(sequences[row]) - 1 for row in batch]
    for what, items in (("read", reads), ("write", writes)):
        for item in items:
            i = where.get(item.row)
            if i is None:
                continue
            if item.position is None:  # a read of the whole sequence
                limits[i] = 0
                continue
            length = len(sequences[item.row])
            position = sequence_index(item.position, length, item.row, what)
            limits[i] = min(limits[i], position)
    if score_from:
        limits = [min(limit, score_from[row] - 1) for limit, row in zip(limits, batch, strict=True)]
    return limits


def group_prefixes(
    rows: Sequence[Sequence[int]], limits: Sequence[int], minimum: int = MIN_SHARED_PREFIX
) -> list[tuple[int, int, int]]:
    """Contiguous groups ``(first, stop, shared)`` of ``rows`` (in token order, so rows that
    start alike are neighbours) whose ``shared`` leading tokens run once per group.

    A group of k rows sharing p tokens saves (k - 1) p positions; the grouping that saves
    the most is found exactly (rows are one batch: a quadratic search is cheap). Groups
    whose prefix is shorter than ``minimum`` share nothing (``shared`` 0).
    """
    n = len(rows)
    # the tokens a contiguous range shares: the least of its neighbours' common lengths
    adjacent = [common_length(rows[i], rows[i + 1]) for i in range(n - 1)]
    best = [0] * (n + 1)  # best[j]: positions saved on rows[:j]
    cut: list[tuple[int, int]] = [(0, 0)] * (n + 1)
    for stop in range(1, n + 1):
        best[stop], cut[stop] = best[stop - 1], (stop - 1, 0)
        shared = limits[stop - 1]
        for first in range(stop - 2, -1, -1):
            shared = min(shared, limits[first], adjacent[first])
            if shared < minimum:
                break
            saved = best[first] + (stop - first - 1) * shared
            if saved > best[stop]:
                best[stop], cut[stop] = saved, (first, shared)
    groups = []
    stop = n
    while stop:
        first, shared = cut[stop]
        groups.append((first, stop, shared))
        stop = first
    return groups[::-1]


@dataclass
class PrefixCache:
    """The KV cache of a prefix pass, one row per prefix, and its attention mask."""

    cache: Any
    mask: torch.Tensor

    def select(self, rows: Sequence[int]) -> None:
        """Keep (or repeat) these cache rows: one per member of each prefix's group."""
        index = torch.as_tensor(list(rows), dtype=torch.long, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]


def left_padded(
    rows: Sequence[Sequence[int]], pad_id: int, device: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and attention mask of ``rows`` (an empty row is all padding, masked)."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.as_tensor(list(row), dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids.to(device), mask.to(device)


def _extend(
    backend: BatchedBackend, rows: Sequence[Sequence[int]], base: PrefixCache | None
) -> PrefixCache:
    """The cache of ``rows``, left-padded, run on top of ``base`` (row i on its row i)."""
    ids, mask = left_padded(rows, backend.pad_id, backend.device)
    if base is not None:
        mask = torch.cat([base.mask, mask], dim=1)
    _, cache = backend.run(
        ids, mask, None, past=base.cache if base is not None else None, use_cache=True
    )
    return PrefixCache(cache, mask)


def run_prefixes(backend: BatchedBackend, prefixes: Sequence[Sequence[int]]) -> PrefixCache | None:
    """One pass over ``prefixes`` that keeps its KV cache; None when every prefix is empty.

    Tokens that every prefix starts with (a chat template, at least `MIN_SHARED_PREFIX`)
    run once, in one row repeated for all; the rest of each prefix then runs, left-padded,
    on top of it (so a batch's template is computed once, not once per row or group).
    """
    if not any(prefixes):
        return None
    shared = min(len(p) for p in prefixes)
    for other in prefixes[1:]:
        shared = min(shared, common_length(prefixes[0], other))
    if len(prefixes) < 2 or shared < MIN_SHARED_PREFIX:
        return _extend(backend, prefixes, None)
    common = _extend(backend, [prefixes[0][:shared]], None)
    common.select([0] * len(prefixes))
    rests = [p[shared:] for p in prefixes]
    return _extend(backend, rests, common) if any(rests) else common


def suffix_pass(
    backend: BatchedBackend,
    prefix: PrefixCache | None,
    batch: Sequence[int],
    sequences: Sequence[Sequence[int]],
    starts: Sequence[int],
    *,
    writes: Sequence[Write] = (),
    reads: Sequence[Read] = (),
    all_logits: bool | int = False,
) -> tuple[torch.Tensor, torch.Tensor, list[int], SitePlan]:
    """Each row's tokens from ``starts[i]`` on, on top of row i of ``prefix`` (which holds
    its first ``starts[i]`` tokens); the cache is left as it was (cropped back).

    Returns the logits, the suffix ids, each row's padding and the plan (with the reads).
    """
    lengths = [len(s) for s in sequences]
    ids, mask, offsets = backend.pad(
        [sequences[row][start:] for row, start in zip(batch, starts, strict=True)]
    )
    plan = backend.plan(batch, lengths, offsets, writes, reads, starts)
    if prefix is None:
        out, _ = backend.run(ids, mask, plan, all_logits=all_logits)
        return out, ids, offsets, plan
    mask = torch.cat([prefix.mask, mask], dim=1)
    out, _ = backend.run(ids, mask, plan, past=prefix.cache, all_logits=all_logits, use_cache=True)
    prefix.cache.crop(-ids.shape[1])  # negative: remove these columns (any transformers)
    return out, ids, offsets, plan


def first_writes(sequences: Sequence[Sequence[int]], writes: Sequence[Write]) -> list[int]:
    """Each sequence's first written position (its last position when it has no write)."""
    return own_positions(range(len(sequences)), sequences, (), writes, None)


def clean_and_patched(
    backend: BatchedBackend,
    sequences: Sequence[Sequence[int]],
    writes: Sequence[Write],
    description: str,
) -> tuple[ForwardResult, ForwardResult]:
    """`InterventionBackend.forward_clean_and_patched` over one prefix cache per batch: the
    tokens before each row's first write run once, then its rest twice (clean, patched)."""
    firsts = first_writes(sequences, writes)
    order = sorted(
        range(len(sequences)), key=lambda i: (-(len(sequences[i]) - firsts[i]), -firsts[i], i)
    )
    size = backend.batch_size
    clean: list[torch.Tensor | None] = [None] * len(sequences)
    patched: list[torch.Tensor | None] = [None] * len(sequences)
    bar = backend.progress_bar(len(sequences), -(-len(sequences) // size), description)
    with torch.inference_mode():
        for at in range(0, len(order), size):
            batch = order[at : at + size]
            starts = [firsts[row] for row in batch]
            if not fits_window(backend.window, [sequences[row] for row in batch], starts):
                starts = [0] * len(batch)  # no prefix pass: the batch runs whole, twice
            prefix = run_prefixes(
                backend, [sequences[row][:start] for row, start in zip(batch, starts, strict=True)]
            )
            before, *_ = suffix_pass(backend, prefix, batch, sequences, starts)
            after, *_ = suffix_pass(backend, prefix, batch, sequences, starts, writes=writes)
            for i, row in enumerate(batch):
                clean[row] = before[i, -1].float().cpu()
                patched[row] = after[i, -1].float().cpu()
            bar.update(len(batch))
    bar.close()

    def result(logits: list[torch.Tensor | None]) -> ForwardResult:
        return ForwardResult(last_logits=torch.stack(logits) if logits else torch.empty(0))

    return result(clean), result(patched)
