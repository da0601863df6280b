"""Intermediate results that several reference builds share, computed once per subject.

Some references need work that does not grow with the documents asked for: the features
type reads the whole concept pool once per subject and layer; the Patchscopes attribute
probe is fitted once per relation and layer. Such a result is an *artifact*: a
`torch.save`-able value (tensors, lists, dicts, strings, numbers) stored under
``<cache>/artifacts`` and keyed by what determines it (the subject fingerprint and the
content of its inputs, never a run or a path). Entries go through `ground_truth.store`
like references do: built under a lock, checksummed, switched in atomically, and every
file's SHA-256 checked on every read (artifacts are small next to the work they save), so
an artifact damaged in place at the same size (its tensors zeroed, say) is reported in one
warning, removed and rebuilt, never served. The key the artifact was built for is stored
beside it and must hash to the entry's name: an entry copied under another key is broken.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ground_truth.store import build_once, cache_root
from ground_truth.untrusted import UntrustedError, read_json

T = TypeVar("T")
VALUE = "value.pt"
KEY = "key.json"

built_artifacts: list[str] = []
"""Kinds of the artifacts computed (not read from the cache) in this process, in order."""


def content_digest(value: Any) -> str:
    """A stable SHA-256 of a JSON-able value (the content an artifact depends on)."""
    body = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def _key_text(key: Mapping[str, Any]) -> str:
    return json.dumps(dict(key), indent=2, default=str)


def artifact_path(kind: str, key: Mapping[str, Any]) -> Path:
    """Where the artifact ``kind`` with ``key`` lives: ``<cache>/artifacts/<kind>-<digest>``."""
    return cache_root() / "artifacts" / f"{kind}-{_name_digest(json.loads(_key_text(key)))}"


def _name_digest(key: Any) -> str:
    return content_digest(key)[:20]


def load_artifact(folder: Path) -> Any:
    """``[value]`` of the artifact in ``folder`` (a list, so that a None value is found).

    Call it after the entry's checksums pass (`ground_truth.store.read_entry`); raises
    `UntrustedError` when the stored key is not the one the entry's name stands for.
    """
    import torch

    file = folder / VALUE
    if not file.is_file():
        return None
    try:
        key = read_json(folder / KEY)
    except FileNotFoundError:
        raise UntrustedError("its key.json is missing") from None
    except UntrustedError as error:
        raise UntrustedError(f"its key.json {error}") from None
    if not folder.name.endswith(f"-{_name_digest(key)}"):
        raise UntrustedError("its key.json names another artifact")
    return [torch.load(file, map_location="cpu", weights_only=True)]


def cached_artifact(kind: str, key: Mapping[str, Any], compute: Callable[[], T]) -> T:
    """The artifact ``kind`` for ``key``: read from the cache, else ``compute()`` once and stored."""
    import torch

    computed: list[Any] = []

    def build(staging: Path) -> None:
        computed.append(compute())
        built_artifacts.append(kind)
        torch.save(computed[0], staging / VALUE)
        (staging / KEY).write_text(_key_text(key))

    found, _ = build_once(artifact_path(kind, key), load_artifact, build, full=True)
    return computed[0] if computed else found[0]
