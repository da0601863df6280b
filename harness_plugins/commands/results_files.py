"""Finding the lm-eval results file a command should read.

``lm_eval --output_path DIR`` writes ``DIR/<model_name_sanitized>/results_<timestamp>.json``,
so users (and CI jobs) usually only know ``DIR``: the newest ``results_*.json`` below it
is the run they just made. Used by ``introspect gate`` and ``introspect plot``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

LM_EVAL_DATE_FORMATS = ("%Y-%m-%dT%H-%M-%S.%f", "%Y-%m-%dT%H-%M-%S")


def results_file_time(path: Path) -> datetime:
    """When lm-eval wrote ``path``: the timestamp in its name, else its mtime.

    The name wins because CI artifact downloads and checkouts reset mtimes, while
    lm-eval's ``results_<timestamp>.json`` survives them.
    """
    stamp = path.stem[len("results_") :]
    for fmt in LM_EVAL_DATE_FORMATS:
        try:
            return datetime.strptime(stamp, fmt)
        except ValueError:
            continue
    return datetime.fromtimestamp(path.stat().st_mtime)


def find_results_file(path: str | Path, error: Callable[[str], BaseException]) -> Path:
    """``path`` itself, or the newest ``results_*.json`` under it; ``error`` builds the failure."""
    p = Path(path)
    if not p.exists():
        raise error(
            f"results file not found: {p} "
            "(pass a results_*.json or the directory given to lm_eval --output_path)"
        )
    if p.is_file():
        return p
    candidates = [f for f in p.rglob("results_*.json") if f.is_file()]
    if not candidates:
        raise error(
            f"no results_*.json found under directory {p} "
            "(did lm_eval run with --output_path pointing there?)"
        )
    return max(candidates, key=lambda f: (results_file_time(f), str(f)))
