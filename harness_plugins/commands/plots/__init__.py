"""``introspect plot``: PNG figures from lm-eval results files (see `command`).

The package is layered so no module imports one above it: ``canvas`` (figure, atomic
write, error form) at the bottom; ``data`` (which numbers to draw); ``figures``, ``pairs``
and ``injection`` (the drawings); ``command`` (reading results, the CLI) on top. ``learning``
(``introspect train curve``: a trained explainer's learning curve) stands alone.
"""

from __future__ import annotations

from harness_plugins.commands.plots.canvas import (
    DPI,
    ERROR_PREFIX,
    new_figure,
    plot_error,
    save_figure,
)
from harness_plugins.commands.plots.command import (
    add_arguments,
    find_results_file,
    load_results,
    run,
)
from harness_plugins.commands.plots.data import (
    Point,
    group_measures,
    layer_metrics,
    measure_of,
    method_label,
    scalar_metrics,
)
from harness_plugins.commands.plots.figures import (
    BAR_FILE,
    bars_figure,
    caption,
    layer_figure,
    layer_file_name,
    plot_bars,
    plot_layers,
)

__all__ = [
    "BAR_FILE",
    "DPI",
    "ERROR_PREFIX",
    "Point",
    "add_arguments",
    "bars_figure",
    "caption",
    "find_results_file",
    "group_measures",
    "layer_figure",
    "layer_file_name",
    "layer_metrics",
    "load_results",
    "measure_of",
    "method_label",
    "new_figure",
    "plot_bars",
    "plot_error",
    "plot_layers",
    "run",
    "save_figure",
    "scalar_metrics",
]
