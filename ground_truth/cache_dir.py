"""Where lm-eval-introspect keeps what it builds, and how it writes there safely."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

CACHE_ENV = "INTROSPECT_CACHE_DIR"


def cache_root() -> Path:
    """``$INTROSPECT_CACHE_DIR``, else ``$XDG_CACHE_HOME/lm-eval-introspect`` (~/.cache)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lm-eval-introspect"


@contextlib.contextmanager
def exclusive(final: Path) -> Iterator[None]:
    """Hold a lock file beside ``final`` so that concurrent builders of it take turns.

    Processes on several ranks (``accelerate launch``) build a cache entry once: the first
    takes the lock and builds; the others wait, then find the entry in place.
    """
    from filelock import FileLock

    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f".{final.name}.lock")):
        yield


@contextlib.contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; rename it into place only on success.

    Readers never see a half-written folder, and a failed build leaves nothing behind.
    Call it while holding `exclusive(final)`: leftovers of a killed build of the same
    entry are removed first.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".tmp-{final.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        yield staging
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
