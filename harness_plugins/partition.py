"""Train and test partitions: by a stable hash of each item's key, never by a seed or row.

Explainer training (issue: trained explainers) must never see a test question, fact,
concept or scenario, whatever seed or options a run uses. So an item's side is a pure
function of its key: a SHA-256 mapped to [0, 1) and compared with ``test_fraction``.
Growing the fraction only moves items from train to test.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

Item = TypeVar("Item")


def partition_of(key: str, test_fraction: float) -> str:
    """``"test"`` or ``"train"`` for ``key``, the same on every machine and interpreter run."""
    if not isinstance(key, str):
        raise TypeError(f"a partition key must be str, got {type(key).__name__}")
    if isinstance(test_fraction, bool) or not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction!r}")
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2.0**64 < test_fraction else "train"


def select(
    items: Sequence[Item], key: Callable[[Item], str], options: Mapping[str, Any], salt: str
) -> list[Item]:
    """The items of ``options['partition']``, in a seeded order (so a ``--limit`` prefix is a
    fair sample), at most ``options['max_docs']`` of them.

    ``salt`` names the explanation type: changing it reorders the documents, which would
    invalidate cached references (bump the type's version then).
    """
    kept = [
        item
        for item in items
        if partition_of(key(item), options["test_fraction"]) == options["partition"]
    ]
    random.Random(f"{salt}|{options['seed']}").shuffle(kept)
    return kept[: options["max_docs"]]
