"""The peers the ground-truth benchmark compares ``hf`` with, each used the way it is meant to.

* TransformerLens through its own patching utilities, one case at a time
  (``run_with_cache`` for the donor, a plain pass for the clean run, ``run_with_hooks``
  for the patch), as its tutorials do;
* TransformerLens batched with hooks: left-padded batches with attention mask and
  position ids, reads and writes as hook functions on the batch (its best);
* nnsight batched: the same padded batches under ``NNsight.trace``.

Every peer does the same patches (the donor residual at the subject position, over the
same window of blocks, all in one patched pass) on the same cases, in the model's dtype.
Each builder returns a zero-argument callable that does the whole work once; the patching
ones return the patched runs' last-token logits in case order, so that the benchmark can
check that every method made the same patches (their greedy tokens agree with ``hf``'s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from benchmarks.bench_support import left_pad
from ground_truth.sites import site

Case = tuple[list[int], int]  # token ids and the subject position
Work = Callable[[], Any]


def _batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of ``batch_size``, longest first (least padding)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


# ---------------------------------------------------------------------- TransformerLens


def tl_per_case(
    bridge: Any, donors: list[Case], cleans: list[Case], layers: list[int], device: torch.device
) -> Work:
    names = [site("resid_post", layer) for layer in layers]

    def work() -> torch.Tensor:
        patched = []
        for (cf_ids, cf_pos), (ids, pos) in zip(donors, cleans, strict=True):
            _, cache = bridge.run_with_cache(
                torch.tensor([cf_ids], device=device), names_filter=lambda n: n in names
            )
            tokens = torch.tensor([ids], device=device)
            bridge(tokens)
            hooks = [(name, _replace_hook(cache[name][:, cf_pos], [0], [pos])) for name in names]
            patched.append(bridge.run_with_hooks(tokens, fwd_hooks=hooks)[:, -1])
        return torch.cat(patched).float()

    return work


def tl_batched(
    bridge: Any,
    donors: list[Case],
    cleans: list[Case],
    layers: list[int],
    batch_size: int,
    pad: int,
    device: torch.device,
) -> Work:
    names = [site("resid_post", layer) for layer in layers]

    def work() -> torch.Tensor:
        patched: dict[int, torch.Tensor] = {}
        for batch in _batches([len(ids) for ids, _ in cleans], batch_size):
            ids, mask, positions, offsets = left_pad([donors[i][0] for i in batch], pad, device)
            rows = list(range(len(batch)))
            columns = [offsets[r] + donors[i][1] for r, i in enumerate(batch)]
            reads: dict[str, torch.Tensor] = {}
            hooks = [(name, _read_hook(reads, name, rows, columns)) for name in names]
            bridge.run_with_hooks(
                ids,
                fwd_hooks=hooks,
                attention_mask=mask,
                position_ids=positions,
                logits_to_keep=1,
            )
            ids, mask, positions, offsets = left_pad([cleans[i][0] for i in batch], pad, device)
            bridge(ids, attention_mask=mask, position_ids=positions, logits_to_keep=1)
            columns = [offsets[r] + cleans[i][1] for r, i in enumerate(batch)]
            hooks = [(name, _replace_hook(reads[name], rows, columns)) for name in names]
            logits = bridge.run_with_hooks(
                ids,
                fwd_hooks=hooks,
                attention_mask=mask,
                position_ids=positions,
                logits_to_keep=1,
            )
            patched.update(zip(batch, logits[:, -1].float(), strict=True))
        return torch.stack([patched[i] for i in range(len(cleans))])

    return work


def tl_ablation(
    bridge: Any, sequences: list[list[int]], batch_size: int, pad: int, device: torch.device
) -> tuple[Work, Work]:
    """One pass per sequence, and padded batches: (per-sequence, batched)."""

    def one_by_one() -> None:
        for ids in sequences:
            bridge(torch.tensor([ids], device=device))

    def batched() -> None:
        for batch in _batches([len(ids) for ids in sequences], batch_size):
            ids, mask, positions, _ = left_pad([sequences[i] for i in batch], pad, device)
            bridge(ids, attention_mask=mask, position_ids=positions, logits_to_keep=1)

    return one_by_one, batched


def _read_hook(
    store: dict[str, torch.Tensor], name: str, rows: list[int], columns: list[int]
) -> Callable[..., None]:
    def hook(activation: torch.Tensor, hook: Any) -> None:
        store[name] = activation[rows, columns].clone()

    return hook


def _replace_hook(
    vectors: torch.Tensor, rows: list[int], columns: list[int]
) -> Callable[..., torch.Tensor]:
    def hook(activation: torch.Tensor, hook: Any) -> torch.Tensor:
        activation = activation.clone()
        activation[rows, columns] = vectors.to(activation.dtype)
        return activation

    return hook


# ---------------------------------------------------------------------- nnsight


class NNsightPeer:
    """The subject's module under `nnsight.NNsight`, driven as a user would: padded batches."""

    def __init__(self, model: torch.nn.Module, layers: torch.nn.ModuleList) -> None:
        import nnsight

        self.nnsight = nnsight
        self.envoy = nnsight.NNsight(model)
        names = {id(module): name for name, module in model.named_modules()}
        self.layers = [self.envoy.get(names[id(layer)]) for layer in layers]

    def patching(
        self,
        donors: list[Case],
        cleans: list[Case],
        layers: list[int],
        batch_size: int,
        pad: int,
        device: torch.device,
    ) -> Work:
        save = self.nnsight.save

        def work() -> torch.Tensor:
            patched: dict[int, torch.Tensor] = {}
            for batch in _batches([len(ids) for ids, _ in cleans], batch_size):
                ids, mask, positions, offsets = left_pad([donors[i][0] for i in batch], pad, device)
                rows = list(range(len(batch)))
                columns = [offsets[r] + donors[i][1] for r, i in enumerate(batch)]
                reads = {}
                with self.envoy.trace(
                    input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1
                ):
                    for layer in layers:
                        hidden = _first(self.layers[layer].output)
                        reads[layer] = save(hidden[rows, columns].clone())
                ids, mask, positions, offsets = left_pad([cleans[i][0] for i in batch], pad, device)
                inputs = {
                    "input_ids": ids,
                    "attention_mask": mask,
                    "position_ids": positions,
                    "logits_to_keep": 1,
                }
                with self.envoy.trace(**inputs):
                    save(self.envoy.output)
                columns = [offsets[r] + cleans[i][1] for r, i in enumerate(batch)]
                with self.envoy.trace(**inputs):
                    for layer in layers:
                        output = self.layers[layer].output
                        hidden = _first(output).clone()
                        hidden[rows, columns] = reads[layer].to(hidden.dtype)
                        self.layers[layer].output = (
                            (hidden, *output[1:]) if isinstance(output, tuple) else hidden
                        )
                    out = save(self.envoy.output)
                patched.update(zip(batch, out.logits[:, -1].float(), strict=True))
            return torch.stack([patched[i] for i in range(len(cleans))])

        return work

    def ablation(
        self, sequences: list[list[int]], batch_size: int, pad: int, device: torch.device
    ) -> Work:
        def work() -> None:
            for batch in _batches([len(ids) for ids in sequences], batch_size):
                ids, mask, positions, _ = left_pad([sequences[i] for i in batch], pad, device)
                with self.envoy.trace(
                    input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1
                ):
                    self.nnsight.save(self.envoy.output)

        return work


def _first(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, tuple) else value
