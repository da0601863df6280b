"""The one build-once store: everything built once and reused goes through here.

References (`ground_truth.cache`), cross-model maps (`ground_truth.affine_map`), converted
bundled models (`ground_truth.bundled`) and the fingerprint memo (`ground_truth.subject`)
all live under `cache_root` and are written the same way: under a lock beside the entry,
into a temporary sibling, fsynced, then renamed into place. Readers therefore see either
nothing or a complete entry, and concurrent builders (``accelerate launch`` ranks) build
it once: the first takes the lock, the others wait and find it in place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

CACHE_ENV = "INTROSPECT_CACHE_DIR"
STAGING_PREFIX = ".tmp-"
"""Temporary siblings start with this; listings skip them, builders remove stale ones."""

T = TypeVar("T")


def cache_root() -> Path:
    """``$INTROSPECT_CACHE_DIR``, else ``$XDG_CACHE_HOME/lm-eval-introspect`` (~/.cache)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lm-eval-introspect"


@contextlib.contextmanager
def exclusive(final: Path) -> Iterator[None]:
    """Hold a lock file beside ``final`` so that concurrent builders of it take turns."""
    from filelock import FileLock

    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path(final))):
        yield


def lock_path(final: Path) -> Path:
    return final.parent / f".{final.name}.lock"


def _fsync_tree(folder: Path) -> None:
    """Flush every file (and folder) under ``folder`` to disk before it is renamed into place."""
    for path in [*folder.rglob("*"), folder]:
        flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
        try:
            descriptor = os.open(path, flags)
        except OSError:
            continue
        try:
            os.fsync(descriptor)
        except OSError:
            pass  # some file systems cannot fsync folders; the rename is still atomic
        finally:
            os.close(descriptor)


def umask_mode(kind: str) -> int:
    """The mode ``open``/``mkdir`` would give under the umask (group-readable caches).

    `tempfile` creates 0600 files and 0700 folders whatever the umask, which makes a
    cache shared by a group (CI runners, a lab's machines) unreadable to the others.
    """
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if kind == "dir" else 0o666) & ~mask


def _chmod_tree(root: Path) -> None:
    os.chmod(root, umask_mode("dir"))
    for path in root.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, umask_mode("dir" if path.is_dir() else "file"))


@contextlib.contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; fsync and rename it into place on success.

    Call it while holding `exclusive(final)`: leftovers of a killed build of the same
    entry are removed first. A failed build leaves nothing behind.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f"{STAGING_PREFIX}{final.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{final.name}-", dir=final.parent))
    try:
        yield staging
        _chmod_tree(staging)
        _fsync_tree(staging)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_file_atomically(final: Path, text: str) -> None:
    """Write ``text`` to ``final`` through a fsynced temporary sibling (hold `exclusive`)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(dir=final.parent, prefix=f"{STAGING_PREFIX}{final.name}-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(staging, umask_mode("file"))
        os.replace(staging, final)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def build_once(
    final: Path, load: Callable[[Path], T | None], build: Callable[[Path], None]
) -> tuple[T, bool]:
    """(entry, built_now): ``load(final)`` if it gives an entry, else ``build`` it once.

    ``build(staging)`` writes the entry's files into a temporary folder, which becomes
    ``final`` atomically; ``load`` returns None for a missing or incomplete entry.
    """
    found = load(final)
    if found is not None:
        return found, False
    with exclusive(final):
        found = load(final)  # another process may have built it meanwhile
        if found is not None:
            return found, False
        with atomic_directory(final) as staging:
            build(staging)
    built = load(final)
    if built is None:
        raise RuntimeError(f"{final}: built, but the entry does not read back")
    return built, True
