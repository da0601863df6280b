"""The bottom of the plot package: a headless figure, an atomic PNG write, one error form.

matplotlib is imported lazily and only through the Agg canvas (no pyplot, no global
backend state), so building the CLI parser stays fast and plotting works headless and
from several threads. Figures are written via a temp file and :func:`os.replace`, so a
crash never leaves a truncated PNG that looks valid to a CI artifact viewer. Every other
plot module (and ``introspect matrix``'s heatmaps) draws on this one.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 120
ERROR_PREFIX = "introspect plot: error: "


def plot_error(message: str) -> SystemExit:
    """Build the single-line error every bad input is reported with.

    Returned (not raised) so callers write ``raise plot_error(...)`` and type
    checkers see the control flow; uncaught, it prints to stderr, exit status 1.
    """
    return SystemExit(ERROR_PREFIX + " ".join(message.split()))


def new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas (headless, no pyplot global state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise plot_error(
            "matplotlib is not installed; `pip install matplotlib` to use introspect plot"
        ) from None
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def safe_name(text: str) -> str:
    """A file-name-safe version of a task or measure name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "unnamed"


def save_figure(figure: Figure, path: Path) -> Path:
    """Save ``figure`` as PNG to ``path`` via a temp file and :func:`os.replace`.

    The temp file lives in the same folder (so the rename is atomic) and is
    created with the umask's permissions, unlike :func:`tempfile.mkstemp`'s 0600.
    """
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            figure.savefig(handle, format="png", dpi=DPI, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
