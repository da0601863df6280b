"""The lock file beside each cache entry, through which concurrent builders take turns.

The lock path is read back like everything else in the cache (as untrusted input): a
folder, a link or a FIFO in its place is removed with one warning, never followed.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path
from typing import Any

logger = logging.getLogger("introspect")

__all__ = ["acquire", "clear_lock_path", "lock_path"]


def lock_path(final: Path) -> Path:
    """The lock file of the entry ``final``: ``.NAME.lock`` beside it."""
    return final.parent / f".{final.name}.lock"


def clear_lock_path(final: Path, label: str) -> None:
    """Remove whatever is at ``final``'s lock path if it is not a regular file (one warning).

    A folder, a link (dangling, or leading outside the cache) or a FIFO there would make
    every build fail or touch a file outside the cache; a lock file holds nothing.
    """
    lock = lock_path(final)
    try:
        mode = os.lstat(lock).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode):
        return
    logger.warning(
        "introspect: the lock of cache entry %s is not a regular file; it is removed and made again",
        label,
    )
    if stat.S_ISDIR(mode):
        shutil.rmtree(lock)
    else:
        lock.unlink()


def acquire(final: Path, label: str) -> Any:
    """Take ``final``'s lock (a `filelock.FileLock`, to ``release()``) after checking its path."""
    from filelock import FileLock

    clear_lock_path(final, label)
    lock = FileLock(str(lock_path(final)))
    lock.acquire()
    return lock
