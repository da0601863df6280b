"""Reference datasets on disk: `datasets.Dataset`s keyed by what determines their content.

Key: explanation type and its version, the options that change references (a file an
option names by the hash of its content), the subject fingerprint and the seed. Each entry
is a folder with the dataset and a manifest, written through `ground_truth.store`: under a
lock, checksummed, switched in atomically, and checked on every read (a damaged entry is
reported, removed and rebuilt). Entries grow by prefix: documents come in a fixed order, so an
evaluation with ``--limit 50`` builds 50 references, and a later one with ``--limit 200``
reuses those and builds the next 150.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ground_truth.store import (
    atomic_directory,
    cache_root,
    cache_writes,
    discard,
    entry_paths,
    entry_problem,
    exclusive,
    lock_path,
    read_entry,
    remove_entry,
    tidy,
)
from ground_truth.untrusted import UntrustedError, read_json

MANIFEST = "manifest.json"
DATA = "data"


@dataclass(frozen=True)
class ReferenceKey:
    """What a reference dataset's content depends on, and nothing else."""

    explanation_type: str
    type_version: str
    options: tuple[tuple[str, Any], ...]
    subject_fingerprint: str
    seed: int

    @classmethod
    def make(
        cls,
        explanation_type: str,
        type_version: str,
        options: Mapping[str, Any],
        subject_fingerprint: str,
        seed: int,
    ) -> ReferenceKey:
        return cls(
            explanation_type,
            str(type_version),
            tuple(sorted((k, v) for k, v in options.items() if k != "seed")),
            subject_fingerprint,
            int(seed),
        )

    def digest(self) -> str:
        body = json.dumps(
            {
                "type": self.explanation_type,
                "version": self.type_version,
                "options": dict(self.options),
                "subject": self.subject_fingerprint,
                "seed": self.seed,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def folder_name(self) -> str:
        return f"{self.explanation_type}-v{self.type_version}-{self.subject_fingerprint[:8]}-{self.digest()}"


@dataclass
class CacheResult:
    """The dataset, and whether this call had to build any of it (and for how long)."""

    dataset: Any
    built_rows: int
    build_seconds: float
    path: Path


class ReferenceStore:
    """The reference datasets under ``<cache>/ground_truth``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root() / "ground_truth"

    def path(self, key: ReferenceKey) -> Path:
        return self.root / key.folder_name()

    def load(self, key: ReferenceKey) -> Any | None:
        """The cached dataset for ``key`` (all rows built so far), or None when absent or broken."""
        return read_entry(self.path(key), load_dataset)[0]

    def ensure(
        self,
        key: ReferenceKey,
        questions: Any,
        needed: int,
        build: Callable[[Any], Any],
        describe: Mapping[str, Any],
    ) -> CacheResult:
        """At least the first ``needed`` rows of ``questions`` with references, built once.

        ``build`` receives the questions that are missing (a slice of ``questions``) and
        returns them with their reference columns, in the same order.
        """
        import datasets

        needed = min(needed, len(questions))
        folder = self.path(key)
        existing = self.load(key)
        if existing is not None and len(existing) >= needed:
            tidy(folder)
            return CacheResult(existing, 0, 0.0, folder)
        with exclusive(folder):
            existing, problem = read_entry(
                folder, load_dataset
            )  # another process may have built it
            if problem is not None:
                discard(folder, problem)
            have = 0 if existing is None else len(existing)
            if have >= needed:
                return CacheResult(existing, 0, 0.0, folder)
            started = time.perf_counter()
            added = build(questions.select(range(have, needed)))
            if len(added) != needed - have:
                raise RuntimeError(
                    f"reference builder returned {len(added)} rows for {needed - have} questions"
                )
            combined = (
                added if existing is None else datasets.concatenate_datasets([existing, added])
            )
            seconds = time.perf_counter() - started
            previous = self._manifest(folder)
            with cache_writes(folder), atomic_directory(folder) as staging, quiet_datasets():
                combined.save_to_disk(str(staging / DATA))
                manifest = {
                    **describe,
                    "key": key.digest(),
                    "explanation_type": key.explanation_type,
                    "type_version": key.type_version,
                    "options": dict(key.options),
                    "subject_fingerprint": key.subject_fingerprint,
                    "seed": key.seed,
                    "rows": len(combined),
                    "created": previous.get("created", _now()),
                    "updated": _now(),
                    "build_seconds": round(previous.get("build_seconds", 0.0) + seconds, 3),
                }
                (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
            built, problem = read_entry(folder, load_dataset)
            if built is None:
                raise RuntimeError(f"{folder}: built, but the entry does not read back ({problem})")
            return CacheResult(built, needed - have, seconds, folder)

    def _manifest(self, folder: Path) -> dict[str, Any]:
        """The entry's manifest when it is one we wrote (`manifest_problem`), else {}."""
        return read_manifest(folder)[0]

    def entries(self, full: bool = False) -> list[dict[str, Any]]:
        """Manifests of every entry with its folder and ``problem`` (None when sound), newest first.

        ``full``: compare every file's checksum (else sizes only). A broken entry is listed
        with what its folder name tells (type and key) so that it can be removed.
        """
        found = []
        for folder in entry_paths(self.root):
            problem = entry_problem(folder, full)
            manifest: dict[str, Any] = {}
            if problem is None:
                manifest, problem = read_manifest(folder)
            if not manifest:
                manifest = _from_name(folder.name)
            manifest["path"] = str(folder)
            manifest["problem"] = problem
            found.append(manifest)
        return sorted(found, key=lambda m: m.get("updated", ""), reverse=True)

    def remove(self, folder: Path) -> None:
        with exclusive(folder):
            remove_entry(folder)
        lock_path(folder).unlink(missing_ok=True)


MANIFEST_TYPES: dict[str, type | tuple[type, ...]] = {
    "key": str,
    "explanation_type": str,
    "type_version": str,
    "subject_fingerprint": str,
    "rows": int,
    "created": str,
    "updated": str,
    "build_seconds": (int, float),
}
"""Manifest fields `ls`, `ensure` and `load_dataset` rely on, with their JSON types."""


def manifest_problem(manifest: Any, folder: Path) -> str | None:
    """None for a manifest of the shape `ReferenceStore.ensure` writes for ``folder``."""
    if not isinstance(manifest, dict):
        return "its manifest is not a JSON object"
    for name, kind in MANIFEST_TYPES.items():
        value = manifest.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"its manifest has {value!r} for {name}"
    if manifest["rows"] < 0 or not folder.name.endswith(f"-{manifest['key']}"):
        return "its manifest describes another entry"
    return None


def read_manifest(folder: Path) -> tuple[dict[str, Any], str | None]:
    """(manifest, None) for a sound manifest, else ({}, what is wrong with it)."""
    try:
        manifest = read_json(folder / MANIFEST)
    except FileNotFoundError:
        return {}, "its manifest is missing"
    except (OSError, UntrustedError) as error:
        return {}, f"its manifest {error}"
    problem = manifest_problem(manifest, folder)
    return ({}, problem) if problem else (manifest, None)


def load_dataset(folder: Path) -> Any:
    """The entry's dataset, after its manifest; an error says what is wrong with either."""
    import datasets

    try:
        manifest = read_json(folder / MANIFEST)
    except FileNotFoundError:
        return None
    problem = manifest_problem(manifest, folder)
    if problem is not None:
        raise UntrustedError(problem)
    dataset = datasets.load_from_disk(str(folder / DATA))
    if len(dataset) != manifest["rows"]:
        raise UntrustedError(f"it has {len(dataset)} rows, its manifest {manifest['rows']}")
    return dataset


def _from_name(name: str) -> dict[str, Any]:
    """What a folder name ``TYPE-vVERSION-FINGERPRINT-KEY`` tells about a broken entry."""
    head, _, key = name.rpartition("-")
    head, _, fingerprint = head.rpartition("-")
    kind, _, version = head.rpartition("-v")
    return {
        "explanation_type": kind or name,
        "type_version": version or "?",
        "subject": "?",
        "subject_fingerprint": fingerprint or "?",
        "rows": 0,
        "updated": "",
        "key": key or name,
    }


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """No "Map"/"Saving the dataset" bars from `datasets` in the middle of lm-eval's output."""
    from datasets.utils import logging as datasets_logging

    was_enabled = datasets_logging.is_progress_bar_enabled()
    datasets_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            datasets_logging.enable_progress_bar()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
