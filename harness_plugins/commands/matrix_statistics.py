"""Uncertainty for ``introspect matrix``: a bootstrap interval per cell, a paired test per gap.

A matrix cell is an aggregate over the documents one explainer answered about one
subject; a self-minus-cross gap compares explainers on the *same* documents (the
subject's references), so its noise is estimated by resampling documents jointly for
every explainer (pairing by doc id is exact). The aggregate is recomputed on each
resample, so corpus-level metrics (``changed_f1``) keep their own aggregation; the
per-document arrays and aggregates come from the gate's helpers
(`harness_plugins.commands.gate.statistics.aggregate_arrays`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness_plugins.commands.gate.statistics import aggregate_arrays

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0

DocValues = dict[Any, tuple[Any, Any]]
"""doc_id -> (target hash, per-document value of one metric), from lm-eval's samples."""


@dataclass(frozen=True)
class GapTest:
    """The paired bootstrap of one self-minus-cross gap over the shared documents."""

    gap: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int


def document_values(samples: Sequence[Mapping[str, Any]], metric: str, filt: str) -> DocValues:
    """Per-document values of ``metric`` under filter ``filt`` in lm-eval's logged samples."""
    values: DocValues = {}
    for row in samples:
        if row.get("filter", filt) == filt and metric in row:
            values[row.get("doc_id")] = (row.get("target_hash"), row[metric])
    return values


def _bootstrap(arrays: Sequence[Any], statistic: Any, resamples: int, seed: int) -> Any:
    import numpy as np
    from scipy.stats import bootstrap

    return bootstrap(
        tuple(arrays),
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    )


def cell_interval(
    values: Sequence[Any], reported: float | None, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float] | None:
    """The 95% percentile-bootstrap interval of one cell's aggregate, resampling documents.

    None when there are fewer than two documents, when the values have no known aggregate,
    or when recomputing the aggregate does not give lm-eval's reported value (the metric
    aggregates some other way, and an interval of the wrong statistic would mislead).
    """
    found = aggregate_arrays(list(values))
    if found is None or len(values) < 2 or resamples <= 0:
        return None
    arrays, aggregate = found
    if reported is None or not math.isclose(float(aggregate(*arrays)), reported, abs_tol=1e-6):
        return None
    result = _bootstrap(arrays, aggregate, resamples, seed)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_gap(
    self_values: DocValues,
    cross_values: Sequence[DocValues],
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> GapTest | None:
    """Self minus the mean of the cross explainers, bootstrapped over the shared documents.

    Documents pair by doc id and must carry the same reference (target hash) for every
    explainer. The interval is the percentile interval; the two-sided p-value is the share
    of resampled gaps at least as far from the observed gap as the observed gap is from 0
    (the bootstrap distribution shifted to the null of no gap), ``(1 + count) / (1 + B)``.
    None when fewer than two documents are shared or the values have no known aggregate.
    """
    import numpy as np

    shared = [
        doc
        for doc, (target, _) in self_values.items()
        if all(doc in other and other[doc][0] == target for other in cross_values)
    ]
    if len(shared) < 2 or not cross_values or resamples <= 0:
        return None
    groups = []
    for values in (self_values, *cross_values):
        found = aggregate_arrays([values[doc][1] for doc in shared])
        if found is None:
            return None
        groups.append(found)
    if len({id(aggregate) for _, aggregate in groups}) != 1:
        return None
    aggregate, width = groups[0][1], len(groups[0][0])
    arrays = [array for group_arrays, _ in groups for array in group_arrays]

    def statistic(*data: Any, axis: int = -1) -> Any:
        parts = [aggregate(*data[i : i + width], axis=axis) for i in range(0, len(data), width)]
        return parts[0] - sum(parts[1:]) / len(parts[1:])

    observed = float(statistic(*arrays))
    result = _bootstrap(arrays, statistic, resamples, seed)
    distribution = np.asarray(result.bootstrap_distribution)
    extreme = np.abs(distribution - observed) >= abs(observed) - 1e-12
    p_value = (1 + int(extreme.sum())) / (1 + distribution.size)
    return GapTest(
        observed,
        float(result.confidence_interval.low),
        float(result.confidence_interval.high),
        min(1.0, p_value),
        len(shared),
    )


def interval_text(low: float | None, high: float | None) -> str:
    """``[0.31, 0.55]``, or an empty string when there is no interval."""
    return "" if low is None or high is None else f"[{low:.2f}, {high:.2f}]"
