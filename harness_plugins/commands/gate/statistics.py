"""Noise for the gate: standard errors, paired bootstraps, significance, sample sizes.

A drop between two runs is only evidence of a regression when it is large against the
noise of the difference. The noise comes from lm-eval's own standard error of each
metric (``<metric>_stderr,<filter>``; independent runs: the variances add) or, when
both runs were made with ``--log_samples``, from a paired bootstrap over the documents
both runs scored (scipy's ``bootstrap``; pairing removes the between-document variance).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_plugins.commands.gate.results import Results
from harness_plugins.metric_names import split_result_key, stderr_key
from harness_plugins.results import number

POWER = 0.8
"""Power used when telling how many samples a margin needs."""

BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Noise:
    """The standard error of a new-minus-baseline difference, and where it came from."""

    stderr: float
    method: str  # "paired bootstrap over N documents" or "lm-eval stderr"
    n: int | None


def metric_stderr(results: Results, task: str, key: str) -> float | None:
    """lm-eval's standard error of ``task``/``key``, or None when it is "N/A", missing,
    negative or not finite (an infinite one would make every drop look like noise)."""
    found = results.tasks.get(task)
    value = number(found.entries.get(stderr_key(*split_result_key(key)))) if found else None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def sample_count(results: Results, task: str) -> int | None:
    """How many documents lm-eval scored for ``task`` (``n-samples.effective``)."""
    return results.task(task).n


def samples_file(results: Results, task: str) -> Path | None:
    """The ``samples_<task>_<timestamp>.jsonl`` lm-eval wrote beside the results, if any."""
    stamp = results.path.stem.removeprefix("results_")
    candidate = results.path.parent / f"samples_{task}_{stamp}.jsonl"
    return candidate if candidate.is_file() else None


def read_samples(path: Path, metric: str, filt: str) -> dict[Any, Any]:
    """doc_id -> (doc_hash, per-document value of ``metric``) under filter ``filt``."""
    values: dict[Any, Any] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            return {}
        if row.get("filter", filt) != filt or metric not in row:
            continue
        values[row.get("doc_id")] = (row.get("doc_hash"), row[metric])
    return values


def _mean(values: Any, axis: int = -1) -> Any:
    import numpy as np

    return np.mean(values, axis=axis)


def _f1(golds: Any, preds: Any, axis: int = -1) -> Any:
    import numpy as np

    tp = np.sum(golds & preds, axis=axis)
    wrong = np.sum(golds ^ preds, axis=axis)
    denominator = 2 * tp + wrong
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def aggregate_arrays(values: Sequence[Any]) -> tuple[tuple[Any, ...], Any] | None:
    """Per-document values as arrays plus the vectorised aggregate lm-eval computes from them.

    Bootstraps resample documents and recompute the aggregate, so a corpus-level metric
    (F1) keeps its own aggregation. Numbers aggregate by their mean; ``[gold, predicted]``
    pairs (lm-eval's f1 items, as ``changed_f1`` writes them) by F1. Anything else: None.
    """
    import numpy as np

    if values and all(number(v) is not None for v in values):
        return (np.asarray(values, float),), _mean
    if values and all(isinstance(v, list) and len(v) == 2 for v in values):
        return tuple(np.array([bool(v[i]) for v in values]) for i in (0, 1)), _f1
    return None


def paired_bootstrap_stderr(new: Sequence[Any], old: Sequence[Any]) -> float | None:
    """Bootstrap standard error of aggregate(new) - aggregate(old) over paired documents.

    The aggregate is `aggregate_arrays`'s (mean or F1); None when it has none.
    """
    from scipy.stats import bootstrap

    if len(new) < 2:
        return None
    found_new, found_old = aggregate_arrays(new), aggregate_arrays(old)
    if found_new is None or found_old is None or found_new[1] is not found_old[1]:
        return None
    (arrays_new, aggregate), (arrays_old, _) = found_new, found_old
    split = len(arrays_new)

    def statistic(*arrays: Any, axis: int = -1) -> Any:
        return aggregate(*arrays[:split], axis=axis) - aggregate(*arrays[split:], axis=axis)

    result = bootstrap(
        (*arrays_new, *arrays_old),
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        random_state=0,
    )
    return float(result.standard_error)


def difference_noise(results: Results, baseline: Results, task: str, key: str) -> Noise | None:
    """The noise of new-minus-baseline for one metric: paired bootstrap, else lm-eval stderrs."""
    metric, filt = split_result_key(key)
    new_file, old_file = samples_file(results, task), samples_file(baseline, task)
    if new_file and old_file:
        new, old = read_samples(new_file, metric, filt), read_samples(old_file, metric, filt)
        shared = [d for d in new if d in old and new[d][0] == old[d][0]]
        if len(shared) >= 2:
            stderr = paired_bootstrap_stderr(
                [new[d][1] for d in shared], [old[d][1] for d in shared]
            )
            if stderr is not None:
                return Noise(stderr, f"paired bootstrap over {len(shared)} documents", len(shared))
    se_new, se_old = metric_stderr(results, task, key), metric_stderr(baseline, task, key)
    if se_new is None or se_old is None:
        return None
    n = sample_count(results, task)
    return Noise(math.hypot(se_new, se_old), "lm-eval stderr", n)


def one_sided_p(excess: float, stderr: float) -> float:
    """P(a regression this far beyond the allowed margin by noise alone): normal tail."""
    from scipy.stats import norm

    if stderr <= 0:
        return 0.0 if excess > 0 else 1.0
    return float(norm.sf(excess / stderr))


def samples_needed(noise: Noise, margin: float, alpha: float) -> int | None:
    """About how many documents per run make ``margin`` detectable at ``alpha`` (80% power).

    None when the margin is already detectable, or when the run's n is unknown.
    """
    from scipy.stats import norm

    detectable = (norm.isf(alpha) + norm.isf(1 - POWER)) * noise.stderr
    if noise.n is None or detectable <= margin:
        return None
    if margin <= 0:
        return -1
    return math.ceil(noise.n * (detectable / margin) ** 2)


def noise_warning(task: str, key: str, noise: Noise, margin: float, alpha: float) -> str | None:
    """A warning line when n is too small to tell a drop of ``margin`` from noise."""
    needed = samples_needed(noise, margin, alpha)
    if needed is None:
        return None
    metric = split_result_key(key)[0]
    advice = (
        "any --max-drop of 0 is below the noise"
        if needed < 0
        else f"about {needed} documents per run are needed (--limit)"
    )
    return (
        f"introspect gate: warning: {task}/{metric}: n={noise.n} is too small for "
        f"--max-drop {margin:g} at --alpha {alpha:g}: the difference has standard error "
        f"{noise.stderr:.3g} ({noise.method}); {advice}"
    )
