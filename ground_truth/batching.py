"""The bookkeeping every batched backend shares: order, padding, positions, plans, scoring.

A backend that can run its model on a padded batch of token ids, with its own way of
reading and writing activations at named sites, subclasses `BatchedBackend` and
implements `BatchedBackend.run` (one pass) and the `n_layers`, `d_model` and `device`
properties. The rest of the intervention primitive (`ground_truth.primitive`) is here,
once: sequences are grouped into batches, left-padded (every sequence ends at the last
column) with explicit position ids from the attention mask (so padding never moves a
position, also for learned absolute positions); reads and writes are translated to
padded columns in a `SitePlan`; generation is a greedy loop over the KV cache whose
prompt pass alone runs with the writes (``onward`` writes also run on each generated
token). With ``share_prefixes``, the leading tokens that rows of a batch share (and no
read or write touches) run once per group of such rows, and a patched run reuses its clean
run's KV cache up to the first write (`ground_truth.prefix_reuse`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from ground_truth.batch_order import (
    by_length,
    by_prefix_then_length,
    by_tokens,
    check_context,
    context_length,  # noqa: F401  (re-exported)
)
from ground_truth.logit_columns import logit_columns, score_tokens  # noqa: F401
from ground_truth.prefix_reuse import (
    clean_and_patched,
    fits_window,
    group_prefixes,
    left_padded,
    own_positions,
    run_prefixes,
    suffix_pass,
)
from ground_truth.primitive import (
    ForwardResult,
    InterventionBackend,
    Read,
    Write,
    parse_site,
    sequence_index,
)


class SitePlan:
    """One batch's writes and reads by site name, in padded (row, column) coordinates."""

    def __init__(self) -> None:
        self.writes: dict[str, list[tuple[int, int, Write]]] = defaultdict(list)
        self.reads: dict[str, list[tuple[int, int | slice, int]]] = defaultdict(list)
        self.results: dict[int, torch.Tensor] = {}

    def sites(self) -> set[str]:
        return set(self.writes) | set(self.reads)

    def apply(self, site: str, hidden: torch.Tensor) -> torch.Tensor:
        """``hidden`` with this site's writes applied, after which its reads are recorded."""
        writes = self.writes.get(site, ())
        if writes:
            hidden = hidden.clone()  # never edit a tensor the model may still hold
            for row, column, write in writes:
                vector = write.vector.to(device=hidden.device, dtype=hidden.dtype)
                where = slice(column, None) if write.onward else column
                if write.mode == "add":
                    hidden[row, where] += vector
                else:
                    hidden[row, where] = vector
        for row, columns, index in self.reads.get(site, ()):
            self.results[index] = hidden[row, columns].detach().float().cpu().clone()
        return hidden

    def generation_step(self) -> SitePlan | None:
        """The plan of one generated token: the ``onward`` writes at its column (None: none)."""
        step = SitePlan()
        for site, writes in self.writes.items():
            step.writes[site] = [(row, 0, write) for row, _, write in writes if write.onward]
            if not step.writes[site]:
                del step.writes[site]
        return step if step.writes else None


def position_ids(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Positions of the last ``width`` columns of ``mask`` (which may also cover a cache)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)[:, -width:]


class BatchedBackend(InterventionBackend):
    """The intervention primitive for any model that runs padded batches; see the module."""

    share_prefixes: bool = False
    window: int | None = None
    """The model's shortest attention window (`ground_truth.prefix_reuse.attention_window`)."""
    length_order: bool = True
    """With `share_prefixes`: order rows that start alike by length too (False: token
    order alone, as before; kept to count what the length order saves)."""

    def __init__(self, loaded: Any, batch_size: int = 16, progress: bool = True) -> None:
        super().__init__(loaded, batch_size=batch_size, progress=progress)
        tokenizer = loaded.tokenizer
        pad = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        self.pad_id = int(pad if pad is not None else 0)

    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @abstractmethod
    def run(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        plan: SitePlan | None,
        *,
        past: Any = None,
        all_logits: bool | int = False,
        use_cache: bool = False,
    ) -> tuple[torch.Tensor, Any]:
        """One pass over ``ids`` applying ``plan`` (None: no interventions).

        ``mask`` covers the cached tokens in ``past`` too; position ids come from
        `position_ids`. Returns the logits (every column of ``ids`` with ``all_logits``
        True, the last n columns with an int n, else the last; `logit_columns`) and the KV
        cache when ``use_cache``. A backend may return more columns than asked.
        """

    # ------------------------------------------------------------------ batching

    def batches(
        self, sequences: Sequence[Sequence[int]], *, shared: bool | None = None
    ) -> list[list[int]]:
        """Batches of similar sequences: by length (less padding) or, to share prefixes
        (``shared``, default `share_prefixes`), rows that start alike together and, among
        those, by length (`ground_truth.batch_order`). A sequence longer than the subject's
        context is refused before any pass (`check_context`)."""
        check_context(self.loaded, sequences)
        if not (self.share_prefixes if shared is None else shared):
            order = by_length(sequences)
        elif self.length_order:
            order = by_prefix_then_length(sequences)
        else:
            order = by_tokens(sequences)
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def pad(self, rows: list[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Left-padded ids, the attention mask, and each row's padding (its first column)."""
        if any(len(row) == 0 for row in rows):
            raise ValueError("cannot run an empty token sequence")
        ids, mask = left_padded(rows, self.pad_id, self.device)
        width = ids.shape[1]
        return ids, mask, [width - len(row) for row in rows]

    def plan(
        self,
        batch: list[int],
        lengths: Sequence[int],
        offsets: list[int],
        writes: Sequence[Write],
        reads: Sequence[Read],
        starts: Sequence[int] | None = None,
    ) -> SitePlan:
        """Writes and reads of one batch in padded columns (of row i's tokens from
        ``starts[i]`` on, when its first tokens run in a prefix pass). A bad site or
        position raises here."""
        plan = SitePlan()
        where = {row: i for i, row in enumerate(batch)}

        def column(row: int, position: int, what: str) -> int:
            index = sequence_index(position, lengths[row], row, what)
            start = starts[where[row]] if starts else 0
            if index < start:  # a bug of the caller: that position ran in the prefix pass
                raise ValueError(f"{what}: position {position} of sequence {row} is in its prefix")
            return offsets[where[row]] + index - start

        for write in writes:
            if write.row in where:
                parse_site(write.site, self.n_layers)
                plan.writes[write.site].append(
                    (where[write.row], column(write.row, write.position, "write"), write)
                )
        for index, read in enumerate(reads):
            if read.row in where:
                parse_site(read.site, self.n_layers)
                if read.position is None:  # the whole sequence, without its padding
                    columns: int | slice = slice(offsets[where[read.row]], None)
                else:
                    columns = column(read.row, read.position, "read")
                plan.reads[read.site].append((where[read.row], columns, index))
        return plan

    def prefix_groups(
        self,
        batch: list[int],
        sequences: Sequence[Sequence[int]],
        reads: Sequence[Read],
        writes: Sequence[Write],
        score_from: Sequence[int] | None,
    ) -> list[tuple[int, int, int]]:
        """Groups ``(first, stop, shared)`` of the batch's rows (indices into ``batch``) whose
        ``shared`` leading tokens, which no read, write or score needs, run once per group
        (`ground_truth.prefix_reuse.group_prefixes`; all ``shared`` 0: run the batch whole)."""
        if not self.share_prefixes or len(batch) < 2:
            return [(0, len(batch), 0)]
        limits = own_positions(batch, sequences, reads, writes, score_from)
        groups = group_prefixes([sequences[i] for i in batch], limits)
        starts = [shared for first, stop, shared in groups for _ in range(first, stop)]
        if not fits_window(self.window, [sequences[i] for i in batch], starts):
            return [(0, len(batch), 0)]
        return groups

    # ------------------------------------------------------------------ primitive

    def progress_bar(self, total: int, batches: int, description: str) -> Any:
        return tqdm(
            total=total, desc=description, unit="seq", disable=not self.progress or batches < 2
        )

    @torch.inference_mode()
    def forward(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        reads: Sequence[Read] = (),
        writes: Sequence[Write] = (),
        score_from: Sequence[int] | None = None,
        logit_ids: Sequence[int] | None = None,
        description: str = "forward",
    ) -> ForwardResult:
        lengths = [len(s) for s in sequences]
        columns = None if logit_ids is None else torch.as_tensor(list(logit_ids), dtype=torch.long)
        batches = self.batches(sequences)
        logits: list[torch.Tensor | None] = [None] * len(sequences)
        read_values: dict[int, torch.Tensor] = {}
        scored: list[torch.Tensor | None] = [None] * len(sequences)
        greedy: list[bool] = [False] * len(sequences)
        bar = self.progress_bar(len(sequences), len(batches), description)
        for batch in batches:
            groups = self.prefix_groups(batch, sequences, reads, writes, score_from)
            starts = [shared for first, stop, shared in groups for _ in range(first, stop)]
            prefix = run_prefixes(
                self, [sequences[batch[first]][:shared] for first, _, shared in groups]
            )
            if prefix is not None:  # one cache row per group: one per member
                prefix.select(
                    [g for g, (first, stop, _) in enumerate(groups) for _ in range(first, stop)]
                )
            out, ids, offsets, plan = suffix_pass(
                self,
                prefix,
                batch,
                sequences,
                starts,
                writes=writes,
                reads=reads,
                # the scored tokens' columns and the last: rows end at the last column
                all_logits=max(lengths[row] - score_from[row] for row in batch) + 1
                if score_from
                else False,
            )
            last = out[:, -1, :] if columns is None else out[:, -1, columns.to(out.device)]
            last = last.float().cpu()
            for i, row in enumerate(batch):
                logits[row] = last[i]
                if score_from:
                    scored[row], greedy[row] = score_tokens(
                        out[i],
                        ids[i],
                        offsets[i],
                        score_from[row] - starts[i],
                        lengths[row] - starts[i],
                    )
            read_values.update(plan.results)
            bar.update(len(batch))
        bar.close()
        return ForwardResult(
            last_logits=torch.stack(logits) if logits else torch.empty(0),
            reads=[read_values[i] for i in range(len(reads))],
            token_logprobs=scored if score_from else None,
            greedy=greedy if score_from else None,
        )

    def forward_clean_and_patched(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        writes: Sequence[Write],
        description: str = "clean and patched",
    ) -> tuple[ForwardResult, ForwardResult]:
        if not self.share_prefixes:
            return super().forward_clean_and_patched(
                sequences, writes=writes, description=description
            )
        check_context(self.loaded, sequences)
        return clean_and_patched(self, sequences, writes, description)

    @torch.inference_mode()
    def generate(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        writes: Sequence[Write] = (),
        stop_token_ids: Sequence[int] = (),
        stop_when: Callable[[list[int]], bool] | None = None,
        description: str = "generate",
    ) -> list[list[int]]:
        """Greedy continuations; a row stops at a stop token, or as soon as ``stop_when``
        (given the row's new tokens so far) says its text is complete."""
        lengths = [len(s) for s in sequences]
        batches = self.batches(sequences, shared=False)  # no prefix pass here: by length
        results: list[list[int]] = [[] for _ in sequences]
        stop_set = set(stop_token_ids)
        stops = torch.tensor(sorted(stop_set), dtype=torch.long, device=self.device)
        bar = self.progress_bar(len(sequences), len(batches), description)
        for batch in batches:
            ids, mask, offsets = self.pad([sequences[i] for i in batch])
            plan = self.plan(batch, lengths, offsets, writes, ())
            new_tokens, ends = self._greedy(ids, mask, plan, max_new_tokens, stops, stop_when)
            for i, row in enumerate(batch):
                tokens = new_tokens[i, : ends[i]].tolist()
                for n, token in enumerate(tokens):
                    if token in stop_set:  # keep the stop token, drop what follows
                        tokens = tokens[: n + 1]
                        break
                results[row] = tokens
            bar.update(len(batch))
        bar.close()
        return results

    def _greedy(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        plan: SitePlan,
        max_new_tokens: int,
        stops: torch.Tensor,
        stop_when: Callable[[list[int]], bool] | None = None,
    ) -> tuple[torch.Tensor, list[int]]:
        """Greedy tokens [batch, steps] and each row's length: the prompt pass with the
        writes, then steps with the ``onward`` writes alone, until every row has stopped."""
        rows = ids.shape[0]
        if max_new_tokens <= 0:
            return ids.new_zeros((rows, 0)), [0] * rows
        logits, past = self.run(ids, mask, plan, use_cache=True)
        generated = []
        step_plan = plan.generation_step()
        finished = torch.zeros(rows, dtype=torch.bool, device=ids.device)
        ends = [max_new_tokens] * rows
        for step in range(max_new_tokens):
            token = logits[:, -1, :].argmax(-1)
            generated.append(token)
            if stops.numel():
                finished |= torch.isin(token, stops)
            if stop_when is not None:
                so_far = torch.stack(generated, dim=1)
                for row in range(rows):
                    if not finished[row] and stop_when(so_far[row].tolist()):
                        finished[row] = True
                        ends[row] = step + 1
            if bool(finished.all()) or step == max_new_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            logits, past = self.run(token[:, None], mask, step_plan, past=past, use_cache=True)
        return torch.stack(generated, dim=1), ends
