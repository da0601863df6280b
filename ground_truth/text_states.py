"""A model's states over a fixed list of texts, read once for many sites and cached.

Two consumers read the same texts through the same model at many sites: the features
types read the concept pool at a layer, and the cross-model maps read the shared texts
(the same pool) at every layer pair they fit. A forward pass costs the same whether it
reads one site or thirty, so every site a consumer will want is read in one pass and each
is stored as its own artifact (`ground_truth.artifacts`), keyed by the model's
fingerprint, the backend, the site and the texts with their token ids. A later consumer
of any of those sites (another layer pair, another partner model, a features build)
reads it from the cache. Sites are read in groups whose states fit ``memory_budget``
bytes, so a wide model with many layers costs a few passes, never an out-of-memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ground_truth.artifacts import artifact_path, cached_artifact, content_digest
from ground_truth.primitive import Read

MEMORY_BUDGET = 1 << 30
"""Bytes of float32 states one pass may hold (all the sites read together)."""


def texts_key(texts: Sequence[str], sequences: Sequence[Sequence[int]]) -> str:
    """What the states depend on besides the model: the texts and their token ids."""
    return content_digest([list(texts), [list(s) for s in sequences]])


def _groups(sites: list[str], per_site: int, budget: int) -> list[list[str]]:
    size = max(1, budget // max(per_site, 1))
    return [sites[k : k + size] for k in range(0, len(sites), size)]


def read_text_sites(
    loaded: Any,
    backend: Any,
    texts: Sequence[str],
    sites: Sequence[str],
    *,
    prefetch: Sequence[str] = (),
    kind: str = "concept-pool",
    description: str = "reading the shared texts",
    memory_budget: int = MEMORY_BUDGET,
) -> tuple[list[list[int]], list[list[Any]]]:
    """Token ids of every text and, per site of ``sites``, its states at every token.

    On a miss, every missing site of ``sites`` and ``prefetch`` is read in the same pass
    (grouped to fit ``memory_budget``) and stored; only ``sites`` are returned.
    """
    tokenizer = loaded.tokenizer
    sequences = [tokenizer(text)["input_ids"] for text in texts]
    digest = texts_key(texts, sequences)
    backend_name = getattr(backend, "name", type(backend).__name__)
    wanted = list(dict.fromkeys(sites))
    everything = list(dict.fromkeys([*wanted, *prefetch]))
    keys = {
        at: {"subject": loaded.fingerprint, "backend": backend_name, "site": at, "pool": digest}
        for at in everything
    }
    stash: dict[str, list[Any]] = {}
    width = int(getattr(backend, "d_model", 0) or 0) or 1
    per_site = 4 * width * sum(len(s) for s in sequences)

    def read(at: str) -> list[Any]:
        if at not in stash:  # a miss: read it with every other site that looks missing
            missing = [
                s
                for s in everything
                if s == at or (s not in stash and not artifact_path(kind, keys[s]).exists())
            ]
            for group in _groups(missing, per_site, memory_budget):
                reads = [Read(s, row, None) for row in range(len(sequences)) for s in group]
                values = backend.forward(sequences, reads=reads, description=description).reads
                stash.update({s: values[k :: len(group)] for k, s in enumerate(group)})
                for other in group:  # store the prefetched sites now; they leave memory at once
                    if other not in wanted:
                        cached_artifact(kind, keys[other], lambda other=other: stash.pop(other))
        return stash.pop(at)

    found = [cached_artifact(kind, keys[at], lambda at=at: read(at)) for at in wanted]
    return sequences, found
