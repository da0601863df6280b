"""Scoring decision-weight reports written by any explainer, in the paper's public CSV layouts.

Reports: ``explaining_model, version, scenario, report_attr1..5`` (the paper also keeps
``A_attribute_*``/``B_attribute_*``, ignored here), several reports per scenario.
Weights: instilled ``scenario, attr1..5``, or learned ``scenario, weight_1..5`` from
``introspect preferences fit`` (with a ``model`` column when fitted per model).
Reports are averaged per scenario; Pearson r is taken over the scenario x attribute
points, with a bootstrap interval that resamples scenarios.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness_plugins.errors import IntrospectError

ATTRIBUTES = 5
REPORT_COLUMNS = tuple(f"report_attr{k}" for k in range(1, ATTRIBUTES + 1))
INSTILLED_COLUMNS = tuple(f"attr{k}" for k in range(1, ATTRIBUTES + 1))
LEARNED_COLUMNS = tuple(f"weight_{k}" for k in range(1, ATTRIBUTES + 1))


@dataclass(frozen=True)
class ReportScore:
    """The scores of one explaining model's reports."""

    model: str
    scenarios: int
    reports: int
    parse_rate: float
    pearson_r: float
    ci_low: float
    ci_high: float
    mean_abs_error: float


def _read_csv(path: str | Path, what: str) -> Any:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise IntrospectError(f"{path}: {what} CSV not found; check the path") from None
    except pd.errors.EmptyDataError:
        raise IntrospectError(f"{path}: {what} CSV is empty; it needs a header row") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        message = " ".join(str(error).split())
        raise IntrospectError(f"{path}: cannot read the {what} CSV ({message})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _numbers(frame: Any, columns: Sequence[str]) -> np.ndarray:
    import pandas as pd

    return np.column_stack(
        [pd.to_numeric(frame[c].str.strip(), errors="coerce").to_numpy(float) for c in columns]
    )


def read_weights_csv(path: str | Path) -> dict[tuple[str, str], list[float]]:
    """``(model, scenario) -> five weights``; model is "" unless the file has a model column."""
    frame = _read_csv(path, "weights")
    columns = next(
        (c for c in (INSTILLED_COLUMNS, LEARNED_COLUMNS) if set(c) <= set(frame.columns)), None
    )
    if "scenario" not in frame.columns or columns is None:
        raise IntrospectError(
            f"{path}: a weights CSV needs columns scenario and attr1..5 (instilled) or "
            "weight_1..5 (from `introspect preferences fit`)"
        )
    values = _numbers(frame, columns)
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad.size:
        raise IntrospectError(
            f"{path}: row {bad[0] + 1} (line {bad[0] + 2}) has a non-numeric weight; "
            "every weight must be a number"
        )
    models = frame["model"].str.strip() if "model" in frame.columns else [""] * len(frame)
    weights: dict[tuple[str, str], list[float]] = {}
    for model, scenario, row in zip(models, frame["scenario"].str.strip(), values, strict=True):
        if (model, scenario) in weights:
            raise IntrospectError(f"{path}: scenario {scenario!r} appears twice; keep one row")
        weights[model, scenario] = [float(v) for v in row]
    return weights


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import pearsonr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(pearsonr(x, y).statistic)


def _score_group(
    model: str,
    scenarios: np.ndarray,
    reports: np.ndarray,
    weights: Mapping[str, Sequence[float]],
    resamples: int,
    seed: int,
) -> ReportScore:
    from scipy.stats import bootstrap

    parsed = np.isfinite(reports).all(axis=1)
    names = [s for s in dict.fromkeys(scenarios[parsed]) if s in weights]
    means = np.array([reports[parsed & (scenarios == s)].mean(axis=0) for s in names])
    truth = np.array([weights[s] for s in names], dtype=float)
    r = low = high = mae = float("nan")
    if names:
        r = _pearson(means.ravel(), truth.ravel())
        mae = float(np.abs(means - truth).mean())
    if len(names) >= 3 and np.isfinite(r):

        def statistic(index: np.ndarray) -> float:
            chosen = index.astype(int)
            return _pearson(means[chosen].ravel(), truth[chosen].ravel())

        interval = bootstrap(
            (np.arange(len(names)),),
            statistic,
            vectorized=False,
            n_resamples=resamples,
            method="percentile",
            random_state=np.random.default_rng(seed),
        ).confidence_interval
        low, high = float(interval.low), float(interval.high)
    return ReportScore(
        model=model,
        scenarios=len(names),
        reports=len(reports),
        parse_rate=float(parsed.mean()) if len(parsed) else float("nan"),
        pearson_r=r,
        ci_low=low,
        ci_high=high,
        mean_abs_error=mae,
    )


def score_reports_csv(
    reports_csv: str | Path,
    weights_csv: str | Path,
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> list[ReportScore]:
    """One `ReportScore` per explaining model of ``reports_csv``, scored against ``weights_csv``.

    A report row counts as parsed when all five ``report_attr`` values are numbers. When the
    weights file has a ``model`` column, each explaining model is scored against its own rows.
    """
    frame = _read_csv(reports_csv, "reports")
    missing = [c for c in ("scenario", *REPORT_COLUMNS) if c not in frame.columns]
    if missing:
        raise IntrospectError(
            f"{reports_csv}: missing column(s) {', '.join(missing)}; a reports CSV needs "
            "explaining_model (optional), scenario, report_attr1..5"
        )
    weights = read_weights_csv(weights_csv)
    per_model = {m for m, _ in weights} != {""}
    models = (
        frame["explaining_model"].str.strip()
        if "explaining_model" in frame.columns
        else np.array(["explainer"] * len(frame))
    )
    models = np.asarray(models)
    scenarios = np.asarray(frame["scenario"].str.strip())
    reports = _numbers(frame, REPORT_COLUMNS)
    results = []
    for model in dict.fromkeys(models):
        key = model if per_model else ""
        own = {s: w for (m, s), w in weights.items() if m == key}
        rows = models == model
        if not set(scenarios[rows]) & set(own):
            raise IntrospectError(
                f"{reports_csv}: no scenario of {model!r} is in {weights_csv}; give the weights "
                "of the scenarios the reports are about"
            )
        results.append(_score_group(model, scenarios[rows], reports[rows], own, resamples, seed))
    return results
