"""``introspect gate``: pass/fail lm-eval results for CI, knowing comparability and noise.

* `results`: reading results files, thresholds and metric keys (bad input: exit 2);
* `comparability`: whether two runs asked the same questions of the same subject;
* `statistics`: standard errors, paired bootstraps, significance, sample sizes;
* `checks`: evaluating and printing the checks; `cli`: the command line.
"""

from __future__ import annotations

from harness_plugins.commands.gate.checks import (
    Check,
    evaluate_baseline,
    evaluate_thresholds,
    format_table,
    summary_line,
)
from harness_plugins.commands.gate.cli import add_arguments, parse_alpha, run
from harness_plugins.commands.gate.results import (
    ERROR_PREFIX,
    INPUT_ERROR_STATUS,
    GateInputError,
    Results,
    Threshold,
    find_results_file,
    gate_error,
    load_results,
    metric_value,
    parse_max_drop,
    parse_threshold,
    parse_thresholds,
    resolve_metric,
)

__all__ = [
    "ERROR_PREFIX",
    "INPUT_ERROR_STATUS",
    "Check",
    "GateInputError",
    "Results",
    "Threshold",
    "add_arguments",
    "evaluate_baseline",
    "evaluate_thresholds",
    "find_results_file",
    "format_table",
    "gate_error",
    "load_results",
    "metric_value",
    "parse_alpha",
    "parse_max_drop",
    "parse_threshold",
    "parse_thresholds",
    "resolve_metric",
    "run",
    "summary_line",
]
