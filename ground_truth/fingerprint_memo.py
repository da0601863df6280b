"""The fingerprint memo: a subject's fingerprint without loading its weights.

Computing a fingerprint (`ground_truth.fingerprint`) needs the weights loaded; the memo
``<cache>/fingerprints.json`` remembers it per *files key* (`files_key`), so that a run
whose references are all cached needs no weights at all. The memo is read back as
untrusted input (`ground_truth.untrusted`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ground_truth.errors import IntrospectError
from ground_truth.store import cache_root, exclusive, file_sha256, write_file_atomically

if TYPE_CHECKING:
    from ground_truth.subject import ModelSource, ModelSpec

logger = logging.getLogger("introspect")

_FINGERPRINT = re.compile(r"[0-9a-f]{16}")
_memo_warned: set[str] = set()


def _files_signature(path: Path) -> list[tuple[str, int, str]]:
    """(name, size, SHA-256) of ``path`` or of every file under it (``.git`` left out).

    The content itself, never a size, an mtime or an inode: weights replaced by others
    of the same size and mtime (archives and container images normalise mtimes), or
    rewritten in place, give another key. Hashing costs one read of the files (SmolLM2's
    542 MB: about 0.45 s warm, 1.4 s cold on one CPU core; docs/usage.md), far less than
    loading the weights to compute the fingerprint itself.
    """
    files = [path] if path.is_file() else sorted(path.rglob("*"))
    return [
        (
            file.name if file == path else str(file.relative_to(path)),
            file.stat().st_size,
            file_sha256(file),
        )
        for file in files
        if file.is_file() and ".git" not in file.relative_to(path.parent).parts
    ]


def files_key(spec: ModelSpec, source: ModelSource) -> str | None:
    """A key that changes whenever the content of the files behind ``spec`` changes (their
    names, sizes and SHA-256); None for remote models."""
    base = Path(source.path)
    if not base.is_dir():
        return None
    weights = base / source.gguf_file if source.gguf_file else base
    parts: dict[str, Any] = {
        "format": 2,  # 1 keyed files by size and mtime, which cannot tell weights apart
        "spec": repr(spec),
        "weights": _files_signature(weights),
    }
    if source.gguf_file:
        parts["folder"] = str(base)
    if spec.peft:
        adapter = Path(spec.peft)
        if not adapter.is_dir():
            return None
        parts["peft"] = _files_signature(adapter)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _memo_path() -> Path:
    return cache_root() / "fingerprints.json"


def memo_lines(memo: Path) -> tuple[dict[str, str], str | None]:
    """(the memo's sound lines: key -> 16 hex digits, what is wrong with the rest or None).

    The memo is read back as untrusted input (`ground_truth.untrusted`): a memo of the
    wrong shape, with values that are not fingerprints, or not a regular file counts as
    empty (its sound lines are kept) and is rewritten clean by the next `remember_fingerprint`.
    """
    from ground_truth.untrusted import UntrustedError, read_json

    try:
        table = read_json(memo)
    except FileNotFoundError:
        return {}, None
    except (OSError, UntrustedError) as error:
        table, problem = {}, str(error)
    else:
        problem = None if isinstance(table, dict) else "is not a JSON object"
        table = table if isinstance(table, dict) else {}
    sound = {k: v for k, v in table.items() if isinstance(v, str) and _FINGERPRINT.fullmatch(v)}
    if problem is None and len(sound) != len(table):
        problem = f"has {len(table) - len(sound)} values that are not fingerprints"
    return sound, problem


def _read_memo(memo: Path, warn: bool) -> dict[str, str]:
    """The memo's sound lines; a malformed memo is one warning (per process and memo)."""
    sound, problem = memo_lines(memo)
    if problem and warn and str(memo) not in _memo_warned:
        _memo_warned.add(str(memo))
        logger.warning(
            "introspect: fingerprint memo %s %s; its bad lines are ignored and rewritten",
            memo,
            problem,
        )
    return sound


def known_fingerprint(spec: ModelSpec, source: ModelSource, key: str | None = None) -> str | None:
    """The fingerprint measured the last time files of this content were loaded, if any
    (``key``: their `files_key`, when the caller has it)."""
    key = key or files_key(spec, source)
    if key is None:
        return None
    return _read_memo(_memo_path(), warn=True).get(key)


def remember_fingerprint(
    spec: ModelSpec, source: ModelSource, fingerprint: str, key: str | None = None
) -> None:
    """Record ``fingerprint`` for these files, so a cache hit needs no weights next time."""
    key = key or files_key(spec, source)
    if key is None:
        return
    memo = _memo_path()
    try:
        with exclusive(memo):
            if memo.is_dir() and not memo.is_symlink():
                shutil.rmtree(memo)
            table = _read_memo(memo, warn=False)
            table[key] = fingerprint
            write_file_atomically(memo, json.dumps(table, indent=1))
    except (OSError, IntrospectError) as error:  # a memo only saves time: never fail a run
        logger.debug("introspect: fingerprint memo %s not written: %s", memo, error)


def adapter_fingerprint(peft: str) -> str | None:
    """A content hash of a local PEFT adapter's config and weights (None for a Hub id)."""
    folder = Path(peft)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(folder.iterdir()):
        if file.name.startswith("adapter_") and file.is_file():
            digest.update(file.name.encode())
            with file.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:16]
