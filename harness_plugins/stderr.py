"""Standard errors for corpus-level aggregations lm-eval has no closed form for.

lm-eval gives ``mean`` its closed form and bootstraps a fixed list of its own functions
(100,000 times, with scikit-learn: minutes). An introspect aggregation that is neither
declares one in its `Metric` (``Metric(aggregate, stderr=...)``), which the lm-eval adapter
hands to lm-eval (`harness_plugins.lm_eval_adapter.patches.patch_stderr`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

RESAMPLES = 1000


def document_bootstrap_stderr(
    aggregate: Callable[[list[Any]], float], items: Sequence[Any], iters: int = RESAMPLES
) -> float:
    """Bootstrap standard error of ``aggregate(items)``, resampling whole documents."""
    import numpy as np
    from scipy.stats import bootstrap

    if len(items) < 2:
        return math.nan

    def statistic(indices: Any) -> float:
        return aggregate([items[int(i)] for i in indices])

    result = bootstrap(
        (np.arange(len(items)),),
        statistic,
        vectorized=False,
        n_resamples=iters,
        method="percentile",
        random_state=1234,
    )
    return float(result.standard_error)


def bootstrap_stderr(aggregate: Callable[[list[Any]], float]) -> Callable[[list[Any]], float]:
    """A document-bootstrap standard error for ``aggregate``, to declare as ``Metric.stderr``."""

    def stderr(items: Sequence[Any]) -> float:
        return document_bootstrap_stderr(aggregate, items)

    return stderr


def present(values: Sequence[Any]) -> list[float]:
    """The values that apply to their document (None marks one outside a stratum)."""
    return [float(v) for v in values if v is not None]


def mean_of_present(values: list[Any]) -> float:
    """Mean over the documents a stratified metric applies to (nan when none does)."""
    kept = present(values)
    return sum(kept) / len(kept) if kept else math.nan


def mean_of_present_stderr(values: list[Any]) -> float:
    """Standard error of `mean_of_present`: the sample standard deviation over sqrt(k)."""
    from scipy.stats import sem

    kept = present(values)
    return float(sem(kept)) if len(kept) >= 2 else math.nan
