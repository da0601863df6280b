"""Built-in model aliases: the bundled models (SmolLM2-135M-Instruct, Gemma 3 270M)."""

from __future__ import annotations

from typing import Any

from harness_plugins.registry import hookimpl


@hookimpl
def introspect_register_model_aliases(register: Any) -> None:
    from ground_truth.bundled import BUNDLED

    for alias, model in BUNDLED.items():
        register(alias, model.alias_entry())
