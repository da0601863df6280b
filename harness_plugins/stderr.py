"""Standard errors for corpus-level aggregations lm-eval has no closed form for.

lm-eval gives ``mean`` its closed form and bootstraps a fixed list of its own functions
(100,000 times, with scikit-learn: minutes). An introspect aggregation that is neither
carries ``aggregate.introspect_stderr``, which the lm-eval adapter hands to lm-eval
(`harness_plugins.lm_eval_adapter.index.patch_stderr`): a bootstrap over documents.
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


def with_bootstrap_stderr(aggregate: Callable[[list[Any]], float]) -> Callable[..., float]:
    """Mark ``aggregate`` so lm-eval reports a document-bootstrap stderr for it."""

    def stderr(items: Sequence[Any]) -> float:
        return document_bootstrap_stderr(aggregate, items)

    aggregate.introspect_stderr = stderr  # type: ignore[attr-defined]
    return aggregate
