"""Every store the package writes under the cache root, for `ls` and `verify` to walk.

``ground_truth`` (reference datasets), ``maps`` (cross-model maps), ``artifacts`` (the
concept pool's activations, probes, SAE statistics) and ``models`` (converted bundled
models) are folders of checksummed entries (`ground_truth.store`); ``fingerprints.json``
is the fingerprint memo, one file. A new store must be added here, or `verify` would not
see it (tests/ground_truth/test_fault_stores.py checks that every folder a build leaves
under the cache root is one of these).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEMO = "fingerprints.json"


def _model(folder: Path) -> Path | None:
    return folder if (folder / "config.json").is_file() else None


def loaders() -> dict[str, Callable[[Path], Any]]:
    """Store folder name -> the loader that reads one of its entries (after its checksums)."""
    from ground_truth.affine_map import MapStore
    from ground_truth.artifacts import load_artifact
    from ground_truth.cache import load_dataset

    return {
        "ground_truth": load_dataset,
        "maps": MapStore.load,
        "artifacts": load_artifact,
        "models": _model,
    }


STORES = ("ground_truth", "maps", "artifacts", "models", MEMO)
RUN_CHECKS_HASHES = {"ground_truth": True, "maps": True, "artifacts": True, "models": False}
"""Whether a run compares every file's SHA-256 when it reads an entry (models: sizes only,
they are large; `verify` hashes them too)."""


@dataclass(frozen=True)
class Entry:
    store: str
    path: Path
    problem: str | None


def entries(root: Path, full: bool | None = None, load: bool = True) -> list[Entry]:
    """Every entry of every store under ``root``, with what is wrong with it (None: sound).

    ``full``: compare every file's SHA-256 (False: sizes only; None: as a run reads the
    store, `RUN_CHECKS_HASHES`); ``load``: also read each entry back with its store's
    loader, as a run would.
    """
    from ground_truth.store import entry_paths, entry_problem, read_entry

    found = []
    for store, loader in loaders().items():
        hashes = RUN_CHECKS_HASHES[store] if full is None else full
        for path in entry_paths(root / store):
            if load:
                problem = read_entry(path, loader, hashes)[1]
            else:
                problem = entry_problem(path, hashes)
            found.append(Entry(store, path, problem))
    memo = root / MEMO
    if memo.exists() or memo.is_symlink():
        found.append(Entry(MEMO, memo, memo_problem(memo)))
    return found


def memo_problem(memo: Path) -> str | None:
    """None for a fingerprint memo of the shape `ground_truth.subject` writes."""
    from ground_truth.fingerprint_memo import memo_lines

    return memo_lines(memo)[1]
