"""Decision weights a subject actually uses, fitted from its choices between two options.

Plunkett et al. (2025) ask whether a model can report the weights it uses to choose
between options A and B, each described by five numeric attributes with known ranges
``[min_k, max_k]``. The ground truth for such a report is what the choices reveal: a
logistic regression of "chose A" on the normalised differences

    d_k = (A_k - B_k) / (max_k - min_k)

with a weak prior on the slopes, its coefficients rescaled so that the largest |w| is 100.
Instilled preferences go the other way: weights drawn U(-100, 100), rescaled the same way,
and the option with the higher utility ``sum_k w_k * (x_k - min_k) / (max_k - min_k)`` is
chosen.

Regularisation. ``l2`` maps to scikit-learn's ``LogisticRegression(C=1 / l2)`` with its
default L2 penalty (``l1_ratio=0``), ``fit_intercept=True`` and the ``lbfgs`` solver. The
objective minimised is therefore

    sum_i CE(p_i, sigmoid(b + w . d_i)) + (l2 / 2) * ||w||^2

with the intercept ``b`` unpenalised: the maximum a posteriori estimate under a
normal(0, 1/sqrt(l2)) prior on each slope and a flat prior on the intercept. The default
``l2=1`` is the paper's normal(0, 1) prior, as a point estimate instead of a posterior
mean. ``l2=0`` gives an unpenalised fit (``C=inf``), which diverges on separable choices.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness_plugins.errors import IntrospectError

if TYPE_CHECKING:
    import pandas

ATTRIBUTES = 5
SCALE = 100.0
MAX_ITER = 1000

A_COLUMNS = tuple(f"A_attribute_{k}" for k in range(1, ATTRIBUTES + 1))
B_COLUMNS = tuple(f"B_attribute_{k}" for k in range(1, ATTRIBUTES + 1))
REQUIRED_COLUMNS = ("scenario", "selection", *A_COLUMNS, *B_COLUMNS)
WEIGHT_COLUMNS = tuple(f"weight_{k}" for k in range(1, ATTRIBUTES + 1))
MODEL_COLUMNS = ("model", "explaining_model")
"""A choices file with one of these columns holds several models: each is fitted on its own."""
NAME_COLUMNS = tuple(f"name_{k}" for k in range(1, ATTRIBUTES + 1))


@dataclass(frozen=True)
class WeightFit:
    """The weights a subject's choices reveal, and how well they explain those choices.

    ``agreement`` is the pooled held-out share of choices the fitted model gets right
    (predicted P(A) > 0.5 against the subject's p_a > 0.5) over a stratified k-fold split
    with k = min(5, size of the minority hard choice). It is NaN when k < 2 (fewer than two
    choices of the rarer option, which includes every degenerate fit): there is then no
    split in which each training fold holds both choices.

    ``degenerate`` fits (all p_a identical, or no choices at all) carry no information on
    the attributes: ``weights`` and ``coefficients`` are zeros and ``intercept`` is
    logit(p_a), i.e. +inf/-inf for a subject that always picks A/B (NaN with no choices).
    """

    weights: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float
    agreement: float
    n: int
    degenerate: bool


def rescale(weights: Sequence[float]) -> tuple[float, ...]:
    """Weights on the paper's common scale (max |w| = 100), so fits and reports compare.

    All-zero weights stay zeros: there is no direction to scale.
    """
    values = np.asarray(weights, dtype=float)
    if values.ndim != 1:
        raise IntrospectError(f"weights must be one-dimensional, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise IntrospectError(f"weights must be finite, got {values.tolist()}")
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if largest == 0.0:
        return tuple(0.0 for _ in values)
    # Divide first so the largest entry is exactly +/-100, not 100.00000000000001.
    return tuple(float(v) for v in values / largest * SCALE)


def _bounds(low: Sequence[float], high: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    low_arr = np.asarray(low, dtype=float)
    high_arr = np.asarray(high, dtype=float)
    if low_arr.shape != high_arr.shape or low_arr.ndim != 1:
        raise IntrospectError(
            f"low and high must be matching 1-D sequences, got shapes {low_arr.shape} "
            f"and {high_arr.shape}"
        )
    if not (np.all(np.isfinite(low_arr)) and np.all(np.isfinite(high_arr))):
        raise IntrospectError(f"attribute ranges must be finite, got {low_arr} to {high_arr}")
    if np.any(high_arr <= low_arr):
        raise IntrospectError(
            f"every attribute range needs max > min, got min {low_arr.tolist()} "
            f"and max {high_arr.tolist()}"
        )
    return low_arr, high_arr


def normalised_differences(
    a: np.ndarray, b: np.ndarray, low: Sequence[float], high: Sequence[float]
) -> np.ndarray:
    """(A - B) / (max - min) per attribute: the paper's regressors, unit-free across attributes.

    ``a`` and ``b`` are (n, k) arrays of attribute values (a single pair may be 1-D);
    the result is (n, k).
    """
    low_arr, high_arr = _bounds(low, high)
    a_arr = np.atleast_2d(np.asarray(a, dtype=float))
    b_arr = np.atleast_2d(np.asarray(b, dtype=float))
    if a_arr.shape != b_arr.shape or a_arr.shape[1] != low_arr.size:
        raise IntrospectError(
            f"options A {a_arr.shape} and B {b_arr.shape} must both be (n, {low_arr.size})"
        )
    return (a_arr - b_arr) / (high_arr - low_arr)


def _logistic(l2: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        C=math.inf if l2 == 0 else 1.0 / l2,
        l1_ratio=0.0,
        fit_intercept=True,
        solver="lbfgs",
        max_iter=MAX_ITER,
    )


def _fit_soft(x: np.ndarray, p: np.ndarray, l2: float):
    """Cross-entropy against soft targets: each row once as A (weight p), once as B (1 - p)."""
    rows = np.vstack([x, x])
    labels = np.concatenate([np.ones(len(p)), np.zeros(len(p))])
    weights = np.concatenate([p, 1.0 - p])
    keep = weights > 0  # hard labels reduce to the plain fit on the original rows
    model = _logistic(l2)
    model.fit(rows[keep], labels[keep], sample_weight=weights[keep])
    return model


def _held_out_agreement(x: np.ndarray, p: np.ndarray, l2: float, seed: int) -> float:
    from sklearn.model_selection import StratifiedKFold

    chose_a = p > 0.5
    minority = int(min(chose_a.sum(), (~chose_a).sum()))
    folds = min(5, minority)
    if folds < 2:
        return math.nan
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    hits = 0
    for train, test in split.split(x, chose_a):
        model = _fit_soft(x[train], p[train], l2)
        predicted_a = model.predict_proba(x[test])[:, 1] > 0.5
        hits += int(np.sum(predicted_a == chose_a[test]))
    return hits / len(p)


def fit_weights(
    differences: np.ndarray, p_a: np.ndarray, *, l2: float = 1.0, seed: int = 0
) -> WeightFit:
    """The weights behind a subject's choices, with a held-out check that they explain them.

    ``p_a`` is the probability the subject chose A per row: hard choices (0/1) or soft
    probabilities, fitted by cross-entropy. ``l2`` is the prior precision on the slopes
    (C = 1 / l2 in scikit-learn; see the module docstring). ``seed`` only shuffles the
    cross-validation folds.
    """
    x = np.asarray(differences, dtype=float)
    p = np.asarray(p_a, dtype=float).ravel()
    if x.ndim != 2 or x.shape[0] != p.size:
        raise IntrospectError(
            f"differences must be (n, k) with n = len(p_a) = {p.size}, got shape {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise IntrospectError("differences must be finite")
    if not np.all((p >= 0) & (p <= 1)):
        raise IntrospectError("p_a must be probabilities in [0, 1]")
    if not (l2 >= 0 and math.isfinite(l2)):
        raise IntrospectError(f"l2 must be a finite number >= 0, got {l2}")
    n, k = x.shape
    if n == 0 or np.all(p == p[0]):
        if n == 0:
            intercept = math.nan
        elif p[0] in (0.0, 1.0):
            intercept = math.inf if p[0] == 1.0 else -math.inf
        else:
            intercept = math.log(p[0] / (1.0 - p[0]))
        zeros = tuple(0.0 for _ in range(k))
        return WeightFit(zeros, zeros, intercept, math.nan, n, True)
    model = _fit_soft(x, p, l2)
    coefficients = tuple(float(c) for c in model.coef_[0])
    return WeightFit(
        weights=rescale(coefficients),
        coefficients=coefficients,
        intercept=float(model.intercept_[0]),
        agreement=_held_out_agreement(x, p, l2, seed),
        n=n,
        degenerate=False,
    )


def instilled_weights(rng: np.random.Generator, k: int = 5) -> tuple[float, ...]:
    """Preferences to instil, drawn as in the paper: U(-100, 100), then max |w| = 100."""
    return rescale(rng.uniform(-SCALE, SCALE, size=k))


def utility(
    values: Sequence[float], low: Sequence[float], high: Sequence[float], weights: Sequence[float]
) -> float:
    """Weighted sum of min-max normalised attributes: an option at every minimum is worth 0."""
    low_arr, high_arr = _bounds(low, high)
    x = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    if x.shape != low_arr.shape or w.shape != low_arr.shape:
        raise IntrospectError(
            f"values {x.shape} and weights {w.shape} must match the {low_arr.size} ranges"
        )
    return float(np.dot(w, (x - low_arr) / (high_arr - low_arr)))


def instilled_choice(
    a: Sequence[float],
    b: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    weights: Sequence[float],
) -> str:
    """ "A" or "B", whichever the instilled preferences value more; a tie goes to A."""
    return "A" if utility(a, low, high, weights) >= utility(b, low, high, weights) else "B"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _read_choices(path: Path) -> pandas.DataFrame:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise IntrospectError(f"{path}: choices CSV not found") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise IntrospectError(f"{path}: cannot read choices CSV: {_one_line(error)}") from None
    except pd.errors.EmptyDataError:
        raise IntrospectError(f"{path}: choices CSV is empty (no header row)") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise IntrospectError(f"{path}: missing required column(s): {', '.join(missing)}")
    return frame


def _row(index: int) -> str:
    # Data rows count from 1; the header is line 1 of the file.
    return f"row {index + 1} (line {index + 2})"


def _scenario_ranges(
    path: Path, scenario: str, pairs: Sequence[tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray]:
    try:
        array = np.asarray(pairs, dtype=float)
    except (TypeError, ValueError):
        array = np.empty((0,))
    if array.shape != (ATTRIBUTES, 2):
        raise IntrospectError(
            f"{path}: scenario {scenario!r} needs {ATTRIBUTES} (min, max) ranges in the "
            f"scenarios file, got {pairs!r}"
        )
    try:
        return _bounds(array[:, 0], array[:, 1])
    except IntrospectError as error:
        raise IntrospectError(f"{path}: scenario {scenario!r}: {error}") from None


def fit_choices_csv(
    choices_csv: str | Path,
    ranges: Mapping[str, Sequence[tuple[float, float]]],
    *,
    l2: float = 1.0,
    names: Mapping[str, Sequence[str]] | None = None,
) -> pandas.DataFrame:
    """Learned weights per scenario from choices in the paper's public CSV layout.

    ``ranges`` maps each scenario's short name to its five (min, max) pairs, in the order
    of the CSV's attribute columns; scenarios it holds beyond those in the CSV are ignored.
    When the CSV's ``model`` (or ``explaining_model``) column names several models, each
    model's scenarios are fitted separately (never pooled) and the output starts with a
    ``model`` column.
    One output row per (model,) scenario, in order of first appearance: ``scenario``,
    ``weight_1..5``, ``agreement``, ``n_choices``, ``degenerate`` and, with ``names``,
    ``name_1..5``. Faults in the file raise IntrospectError naming the file and the fault.
    """
    import pandas as pd

    path = Path(choices_csv)
    frame = _read_choices(path)

    selection = frame["selection"].str.strip()
    bad = np.flatnonzero(~selection.isin(["A", "B"]).to_numpy())
    if bad.size:
        first = int(bad[0])
        raise IntrospectError(
            f"{path}: {_row(first)} has selection {frame['selection'].iloc[first]!r}; "
            "expected A or B"
        )

    values = {}
    for column in (*A_COLUMNS, *B_COLUMNS):
        numbers = pd.to_numeric(frame[column].str.strip(), errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(numbers))
        if bad.size:
            first = int(bad[0])
            raise IntrospectError(
                f"{path}: {_row(first)} column {column} has non-numeric value "
                f"{frame[column].iloc[first]!r}"
            )
        values[column] = numbers

    scenarios = frame["scenario"].str.strip()
    order = list(dict.fromkeys(scenarios))
    for scenario in order:
        if scenario not in ranges:
            raise IntrospectError(
                f"{path}: scenario {scenario!r} is not in the scenarios file (it lacks "
                "attribute ranges for it)"
            )
        if names is not None and (scenario not in names or len(names[scenario]) != ATTRIBUTES):
            raise IntrospectError(
                f"{path}: scenario {scenario!r} lacks {ATTRIBUTES} attribute names in the "
                "scenarios file"
            )

    a_all = np.column_stack([values[c] for c in A_COLUMNS])
    b_all = np.column_stack([values[c] for c in B_COLUMNS])
    chose_a = (selection == "A").to_numpy(float)
    model_column = next((c for c in MODEL_COLUMNS if c in frame.columns), None)
    models = frame[model_column].str.strip() if model_column else pd.Series([""] * len(frame))
    if models.nunique() < 2:
        model_column = None  # one model (the paper's files name it): the plain layout
    records = []
    for model, scenario in dict.fromkeys(zip(models, scenarios, strict=True)):
        low, high = _scenario_ranges(path, scenario, ranges[scenario])
        rows = ((scenarios == scenario) & (models == model)).to_numpy()
        fit = fit_weights(
            normalised_differences(a_all[rows], b_all[rows], low, high), chose_a[rows], l2=l2
        )
        record = {"model": model, "scenario": scenario} if model_column else {"scenario": scenario}
        record.update(zip(WEIGHT_COLUMNS, fit.weights, strict=True))
        record.update(agreement=fit.agreement, n_choices=fit.n, degenerate=fit.degenerate)
        if names is not None:
            record.update(zip(NAME_COLUMNS, (str(n) for n in names[scenario]), strict=True))
        records.append(record)
    columns = ["scenario", *WEIGHT_COLUMNS, "agreement", "n_choices", "degenerate"]
    if model_column:
        columns.insert(0, "model")
    if names is not None:
        columns += NAME_COLUMNS
    return pd.DataFrame.from_records(records, columns=columns)


def write_weights_csv(frame: pandas.DataFrame, path: str | Path) -> None:
    """Write beside the target and rename, so readers never see a half-written table."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="") as out:
            frame.to_csv(out, index=False)
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
