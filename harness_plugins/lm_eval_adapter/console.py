"""lm-eval's printed results table without per-layer rows.

A per-layer type (``introspect_patchscope_next_token``) reports each measure once per
layer (``p_at_1_layer07``), a sweep once per layer pair or (layer, strength) cell: over a
hundred rows that bury the summary metrics. They stay in the results JSON, in W&B and in
``introspect plot``'s figures; the console table keeps the summary metrics and says where
the rest went (`harness_plugins.metric_names.is_breakdown` tells them apart).
"""

from __future__ import annotations

import copy
from typing import Any

from harness_plugins.metric_names import is_breakdown, parse_result_key
from harness_plugins.results import RunResults


def _is_breakdown_key(key: Any) -> bool:
    parsed = parse_result_key(key)
    return parsed is not None and is_breakdown(parsed.metric)


def without_layer_rows(result_dict: dict[str, Any], column: str = "results") -> tuple[Any, int]:
    """A copy of ``result_dict`` without per-layer metrics in ``column``, and how many went."""
    section = result_dict.get(column)
    if not isinstance(section, dict):
        return result_dict, 0
    trimmed = copy.copy(result_dict)
    trimmed[column] = {}
    dropped = 0
    for task, metrics in section.items():
        if isinstance(metrics, dict):
            kept = {k: v for k, v in metrics.items() if not _is_breakdown_key(k)}
            dropped += sum(
                1 for k in metrics if _is_breakdown_key(k) and not parse_result_key(k).stderr
            )
            trimmed[column][task] = kept
        else:
            trimmed[column][task] = metrics
    return trimmed, dropped


def mode_lines(result_dict: dict[str, Any], column: str = "results") -> list[str]:
    """``TASK: mode self|cross (explainer E, subject S)`` for each introspect task shown."""
    lines = []
    run = RunResults.from_dict(result_dict)
    for task in result_dict.get(column) or {}:
        record = run.task(str(task)).record
        if record is not None and record.mode:
            lines.append(
                f"{task}: mode {record.mode} (explainer {record.explainer_or_subject}, "
                f"subject {record.subject})"
            )
    return lines


def patch_console_table() -> None:
    """Make ``lm_eval.utils.make_table`` leave per-layer rows out (idempotent)."""
    from lm_eval import utils

    original = utils.make_table
    if getattr(original, "_introspect", False):
        return

    def make_table(result_dict: Any, column: str = "results", *args: Any, **kwargs: Any) -> str:
        trimmed, dropped = without_layer_rows(result_dict, column)
        table = original(trimmed, column, *args, **kwargs)
        modes = mode_lines(result_dict, column)
        if modes:
            table += "\n" + "\n".join(modes) + "\n"
        if dropped:
            table += (
                f"\n({dropped} per-layer metrics are in the results JSON and W&B; "
                "`introspect plot RESULTS` draws them by layer)\n"
            )
        return table

    make_table._introspect = True  # type: ignore[attr-defined]
    utils.make_table = make_table
