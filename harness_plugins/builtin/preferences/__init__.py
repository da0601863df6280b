"""Decision weights (docs/methods.md): can a model report the weights it uses when it chooses?

`weight_reports` is the explanation type; beside it, what only it needs: the decision
`scenarios` (and their data file), the `weights_fit` estimator of the weights a subject
actually uses (training drivers live in `harness_plugins/training/preferences.py`).
"""

from __future__ import annotations

from typing import Any

from harness_plugins.builtin.preferences.weight_reports import Preferences
from harness_plugins.registry import hookimpl

__all__ = ["Preferences"]


@hookimpl
def introspect_register_explanation_types(register: Any) -> None:
    register(Preferences())
