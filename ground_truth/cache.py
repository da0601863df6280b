"""Reference datasets on disk: `datasets.Dataset`s keyed by what determines their content.

Key: explanation type and its version, the options that change references, the subject
fingerprint and the seed. Each entry is a folder with the dataset and a manifest, written
atomically under a lock. Entries grow by prefix: documents come in a fixed order, so an
evaluation with ``--limit 50`` builds 50 references, and a later one with ``--limit 200``
reuses those and builds the next 150.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ground_truth.store import atomic_directory, cache_root, exclusive

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
        """The cached dataset for ``key`` (all rows built so far), or None."""
        import datasets

        folder = self.path(key)
        if not (folder / MANIFEST).is_file():
            return None
        return datasets.load_from_disk(str(folder / DATA))

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
            return CacheResult(existing, 0, 0.0, folder)
        with exclusive(folder):
            existing = self.load(key)  # another process may have built it meanwhile
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
            with atomic_directory(folder) as staging, quiet_datasets():
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
            return CacheResult(
                datasets.load_from_disk(str(folder / DATA)), needed - have, seconds, folder
            )

    def _manifest(self, folder: Path) -> dict[str, Any]:
        try:
            return json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            return {}

    def entries(self) -> list[dict[str, Any]]:
        """Manifests of every complete entry, with their folder, newest first."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            manifest = self._manifest(folder) if folder.is_dir() else {}
            if manifest:
                manifest["path"] = str(folder)
                found.append(manifest)
        return sorted(found, key=lambda m: m.get("updated", ""), reverse=True)

    def remove(self, folder: Path) -> None:
        with exclusive(folder):
            shutil.rmtree(folder, ignore_errors=True)
        (folder.parent / f".{folder.name}.lock").unlink(missing_ok=True)


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
