"""The lock file beside each cache entry, through which concurrent builders take turns.

The holder writes who it is (pid, host, since when) into the lock file, so that a waiter
can say what it waits for; a wait ends with one line, or with an error after
``--lock-timeout`` / ``$INTROSPECT_LOCK_TIMEOUT`` seconds. The lock path is read back like
everything else in the cache (as untrusted input): a folder, a link or a FIFO in its
place is removed with one warning, never followed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import shutil
import socket
import stat
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("introspect")

__all__ = ["acquire", "clear_lock_path", "lock_path", "lock_timeout", "set_lock_timeout"]

LOCK_TIMEOUT_ENV = "INTROSPECT_LOCK_TIMEOUT"
"""Seconds to wait for a lock another process holds; unset: wait as long as it works."""
_timeout_option: list[float] = []


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
    """Take ``final``'s lock (a `filelock.FileLock`, to ``release()``) after checking its path.

    When another process holds it, one line says who (pid, host, since when) and how long
    this waits (`lock_timeout`); one line at the end says it was obtained, or an error
    naming the holder and the fix is raised once the timeout has passed.
    """
    from filelock import FileLock, Timeout

    clear_lock_path(final, label)
    path = lock_path(final)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        _wait(lock, path, label)
    _write_holder(path)
    return lock


def lock_timeout() -> float | None:
    """Seconds to wait for a busy lock: ``--lock-timeout``, else ``$INTROSPECT_LOCK_TIMEOUT``,
    else None (wait as long as the holder works)."""
    if _timeout_option:
        return _timeout_option[-1]
    text = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not text:
        return None
    return check_timeout(text, LOCK_TIMEOUT_ENV)


def check_timeout(text: str, where: str) -> float:
    """``text`` as a timeout in seconds; an `IntrospectError` naming ``where`` otherwise."""
    from ground_truth.errors import IntrospectError

    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise IntrospectError(
            f"{where} is {text!r}, not a number of seconds; give 0 or more (0: do not wait), "
            f"or leave it out to wait for the holder"
        )
    return seconds


def set_lock_timeout(seconds: float | None) -> None:
    """What ``--lock-timeout`` gave (None: back to the environment variable)."""
    _timeout_option.clear()
    if seconds is not None:
        _timeout_option.append(seconds)


def _wait(lock: Any, path: Path, label: str) -> None:
    from filelock import Timeout

    from ground_truth.errors import IntrospectError

    timeout = lock_timeout()
    holder = describe_holder(path)
    how_long = (
        f"up to {timeout:g} s" if timeout is not None else f"with no timeout ({LOCK_TIMEOUT_ENV})"
    )
    logger.warning(
        "introspect: cache entry %s is being built by %s; waiting %s", label, holder, how_long
    )
    started = time.monotonic()
    try:
        lock.acquire(timeout=-1 if timeout is None else timeout)
    except Timeout:
        raise IntrospectError(
            f"cache entry {label} is still locked by {describe_holder(path)} after "
            f"{time.monotonic() - started:.0f} s; wait for it, raise --lock-timeout or "
            f"{LOCK_TIMEOUT_ENV}, or if that process is gone remove {path}"
        ) from None
    logger.warning(
        "introspect: cache entry %s: lock obtained after %.1f s",
        label,
        time.monotonic() - started,
    )


def _write_holder(path: Path) -> None:
    """Record who holds the lock (pid, host, since when) in the lock file, for waiters."""
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        with path.open("r+", encoding="utf-8") as out:
            out.write(json.dumps(holder))
            out.truncate()
    except OSError:
        pass  # waiters then name an unknown holder; the lock itself holds


def describe_holder(path: Path) -> str:
    """``pid N on HOST since TIME``, as the holder recorded it, or ``another process``."""
    from ground_truth.untrusted import UntrustedError, read_json

    try:
        holder = read_json(path, limit=4096)
    except (OSError, UntrustedError):
        return "another process"
    if not isinstance(holder, dict):
        return "another process"
    pid, host, since = (str(holder.get(k, "?"))[:64] for k in ("pid", "host", "since"))
    return f"pid {pid} on {host} since {since}"
