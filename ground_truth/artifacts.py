"""Intermediate results that several reference builds share, computed once per subject.

Some references need work that does not grow with the documents asked for: the features
type reads the whole concept pool once per subject and layer; the Patchscopes attribute
probe is fitted once per relation and layer. Such a result is an *artifact*: a
`torch.save`-able value (tensors, lists, dicts, strings, numbers) stored under
``<cache>/artifacts`` and keyed by what determines it (the subject fingerprint and the
content of its inputs, never a run or a path). Entries go through `ground_truth.store`
like references do: built under a lock, checksummed, switched in atomically, verified on
read and rebuilt when damaged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ground_truth.store import build_once, cache_root

T = TypeVar("T")
VALUE = "value.pt"

built_artifacts: list[str] = []
"""Kinds of the artifacts computed (not read from the cache) in this process, in order."""


def content_digest(value: Any) -> str:
    """A stable SHA-256 of a JSON-able value (the content an artifact depends on)."""
    body = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def artifact_path(kind: str, key: Mapping[str, Any]) -> Path:
    """Where the artifact ``kind`` with ``key`` lives: ``<cache>/artifacts/<kind>-<digest>``."""
    return cache_root() / "artifacts" / f"{kind}-{content_digest(dict(key))[:20]}"


def load_artifact(folder: Path) -> Any:
    """``[value]`` of the artifact in ``folder`` (a list, so that a None value is found)."""
    import torch

    file = folder / VALUE
    if not file.is_file():
        return None
    return [torch.load(file, map_location="cpu", weights_only=True)]


def cached_artifact(kind: str, key: Mapping[str, Any], compute: Callable[[], T]) -> T:
    """The artifact ``kind`` for ``key``: read from the cache, else ``compute()`` once and stored."""
    import torch

    computed: list[Any] = []

    def build(staging: Path) -> None:
        computed.append(compute())
        built_artifacts.append(kind)
        torch.save(computed[0], staging / VALUE)
        (staging / "key.json").write_text(json.dumps(dict(key), indent=2, default=str))

    found, _ = build_once(artifact_path(kind, key), load_artifact, build, full=False)
    return computed[0] if computed else found[0]
