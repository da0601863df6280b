"""Where the cache lives, and one clear error when that place cannot hold it.

``$INTROSPECT_CACHE_DIR`` (else ``$XDG_CACHE_HOME/lm-eval-introspect``) may name a file, a
path through a file, a dangling link, a loop of links or a name longer than the file
system allows; each is one `IntrospectError` naming the path, the reason and the fix,
before anything is read or written there, never a traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ground_truth.errors import IntrospectError

CACHE_ENV = "INTROSPECT_CACHE_DIR"


def cache_root() -> Path:
    """``$INTROSPECT_CACHE_DIR``, else ``$XDG_CACHE_HOME/lm-eval-introspect`` (~/.cache)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lm-eval-introspect"


LOCATION_ERRNOS = frozenset(
    {errno.ENOTDIR, errno.ENAMETOOLONG, errno.EEXIST, errno.ENOENT, errno.ELOOP}
)


def make_folder(folder: Path) -> None:
    """``folder`` and the folders above it; a cache location that cannot hold folders (a
    file, a dangling link, a name too long, a loop) is one error naming the fix."""
    try:
        _check_names(folder)  # before mkdir makes the folders above a name too long
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        if error.errno not in LOCATION_ERRNOS:
            raise
        raise location_error(folder, error) from None


def location_error(path: Path, error: OSError) -> IntrospectError:
    bad = Path(error.filename or path)
    reason = {
        errno.ENOTDIR: "a path through a file",
        errno.ENAMETOOLONG: "a name longer than the file system allows",
        errno.ELOOP: "a loop of symbolic links",
    }.get(error.errno or 0)
    if error.errno == errno.ENOTDIR:  # name the file in the way
        bad = next((a for a in [bad, *bad.parents] if a.is_file()), bad)
        reason = "a file, not a folder"
    if reason is None and os.path.islink(bad) and not bad.exists():
        reason = f"a link to {os.readlink(bad)}, which does not exist"
    if reason is None:
        reason = "a file, not a folder" if os.path.lexists(bad) else "missing"
    return IntrospectError(
        f"the cache path {path} cannot be used: {bad} is {reason}; point {CACHE_ENV} "
        f"(now {cache_root()}) at a folder, or remove what is in the way"
    )


def check_location(path: Path) -> None:
    """Raise `location_error` when ``path`` cannot even be looked up (a name too long, a
    loop of links); an absent path, or one through a file, is fine to look up."""
    try:
        os.lstat(path)
    except OSError as error:
        if error.errno in (errno.ENAMETOOLONG, errno.ELOOP):
            raise location_error(path, error) from None


def _check_names(path: Path) -> None:
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for part in path.parts:
        if len(os.fsencode(part)) > limit:
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), part)
