"""Built-in model aliases: the bundled SmolLM2-135M-Instruct."""

from __future__ import annotations

from typing import Any

from harness_plugins.registry import hookimpl


@hookimpl
def introspect_register_model_aliases(register: Any) -> None:
    from ground_truth.bundled import SMOLLM2, SMOLLM2_ALIAS

    register(SMOLLM2_ALIAS, SMOLLM2)
