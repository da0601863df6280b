"""The one intervention primitive every ground-truth backend implements.

Input ablation, activation patching, Patchscopes, feature activations and vector
injection are all compositions of: run a batch of token sequences while reading
activations at named sites and writing given vectors at (site, position), then read the
next-token logits or generate greedily. Explanation types compose it; a backend (HF
hooks, TransformerLens, nnsight, a remote server) only implements it.

Sites are named as TransformerLens names them: ``hook_embed`` (token embeddings),
``blocks.{l}.hook_resid_pre`` (input of block l), ``blocks.{l}.hook_resid_post``
(output of block l, before any final norm) and ``blocks.{l}.mlp.hook_post`` (the MLP's
hidden activations, the input of its output projection). Positions index each sequence as given,
without padding; negative positions count from its end. Backends pad and batch inside.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from ground_truth.sites import parse_site, site  # noqa: F401  (re-exported: backends import them from here)


def sequence_index(position: int, length: int, row: int, what: str) -> int:
    """The index ``position`` names in a sequence of ``length`` tokens (negative: from its
    end); a position outside the sequence raises, naming ``what`` and the row."""
    index = position + length if position < 0 else position
    if not 0 <= index < length:
        raise ValueError(f"{what}: position {position} outside sequence {row} of length {length}")
    return index


@dataclass(frozen=True)
class Write:
    """Put ``vector`` into the residual stream of sequence ``row`` at ``site``/``position``.

    ``onward``: also at every later position, and (in `InterventionBackend.generate`) at
    every generated token as it is fed back: a steering vector held from here on.
    """

    site: str
    row: int
    position: int
    vector: torch.Tensor
    mode: Literal["replace", "add"] = "replace"
    onward: bool = False


@dataclass(frozen=True)
class Read:
    """Record the activation of sequence ``row`` at ``site``; ``position=None`` reads all."""

    site: str
    row: int
    position: int | None = -1


@dataclass
class ForwardResult:
    """Float32 next-token logits at each sequence's last token (over the vocabulary, or
    the ``logit_ids`` asked for), and the reads in order.

    With ``score_from``, also the log-probability of each token from that index on
    (given the tokens before it) and whether each was the greedy choice: what a
    loglikelihood request needs.
    """

    last_logits: torch.Tensor
    reads: list[torch.Tensor] = field(default_factory=list)
    token_logprobs: list[torch.Tensor] | None = None
    greedy: list[bool] | None = None


class InterventionBackend(ABC):
    """Runs a subject with reads and writes; see the module docstring for the contract.

    Most backends subclass `ground_truth.batching.BatchedBackend` instead, which implements
    `forward` and `generate` on top of one method that runs a padded batch.
    """

    name: str = ""

    def __init__(self, loaded: Any, batch_size: int = 16, progress: bool = True) -> None:
        self.loaded = loaded
        self.batch_size = batch_size
        self.progress = progress

    @property
    @abstractmethod
    def n_layers(self) -> int: ...

    @property
    @abstractmethod
    def d_model(self) -> int: ...

    @abstractmethod
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
        """One forward pass over every sequence (batched inside), applying ``writes``.

        ``score_from[i]`` (>= 1) asks for the log-probabilities of sequence i's tokens
        from that index on (see `ForwardResult`). ``logit_ids``: keep only these tokens'
        next-token logits (``last_logits`` columns in this order), not the vocabulary.
        """

    def forward_clean_and_patched(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        writes: Sequence[Write],
        description: str = "clean and patched",
    ) -> tuple[ForwardResult, ForwardResult]:
        """The next-token logits of each sequence as is and with ``writes`` (no reads).

        Two `forward` passes here; a backend with a KV cache runs the tokens before each
        sequence's first write once (`ground_truth.prefix_reuse`): activation patching's
        clean and patched runs differ only from the patched position on.
        """
        clean = self.forward(sequences, description=f"{description}: clean")
        patched = self.forward(sequences, writes=writes, description=f"{description}: patched")
        return clean, patched

    def read(
        self, sequences: Sequence[Sequence[int]], reads: Sequence[Read], description: str = "read"
    ) -> list[torch.Tensor]:
        """The values of ``reads`` alone: each sequence runs only up to its last read
        position, since a causal model's later tokens cannot change them."""
        ends = [0] * len(sequences)
        where: list[int | None] = []
        for item in reads:
            length = len(sequences[item.row])
            index = None
            if item.position is not None:
                index = sequence_index(item.position, length, item.row, "read")
            ends[item.row] = max(ends[item.row], length if index is None else index + 1)
            where.append(index)
        keep = [row for row in range(len(sequences)) if ends[row]]
        index_of = {row: i for i, row in enumerate(keep)}
        moved = [
            Read(item.site, index_of[item.row], index)
            for item, index in zip(reads, where, strict=True)
        ]
        truncated = [list(sequences[row])[: ends[row]] for row in keep]
        return self.forward(truncated, reads=moved, description=description).reads

    def mlp_output_weights(self, layer: int) -> torch.Tensor:
        """The MLP output projection of a block as [d_mlp, d_model] (TransformerLens's W_out):
        row i is the direction neuron i writes into the residual stream."""
        raise NotImplementedError(f"the {self.name} backend does not expose MLP weights")

    @abstractmethod
    def generate(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        writes: Sequence[Write] = (),
        stop_token_ids: Sequence[int] = (),
        description: str = "generate",
    ) -> list[list[int]]:
        """Greedy continuation of each sequence; ``writes`` apply to the prompt pass only,
        except ``onward`` ones, which also apply to every generated token.

        Each result stops after the first stop token (which is kept) or at
        ``max_new_tokens``.
        """
