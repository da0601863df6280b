"""Built-in backends and model aliases, registered through the same hooks as a plugin's.

The explanation types register in their own folders (`causal/`, `features/`, ...); this
module holds what belongs to no type: the ``hf`` and ``transformer_lens`` ground-truth
backends and the bundled models' aliases.
"""

from __future__ import annotations

from typing import Any

from harness_plugins.registry import hookimpl


def _hf_backend(loaded: Any, **kwargs: Any) -> Any:
    from ground_truth.backends.hf import HFBackend  # torch is imported only when used

    return HFBackend(loaded, **kwargs)


def _transformer_lens_backend(loaded: Any, **kwargs: Any) -> Any:
    # transformer_lens takes seconds to import: only when this backend is chosen
    from ground_truth.backends.transformer_lens import TransformerLensBackend

    return TransformerLensBackend(loaded, **kwargs)


@hookimpl
def introspect_register_backends(register: Any) -> None:
    register("hf", _hf_backend)
    register("transformer_lens", _transformer_lens_backend)


@hookimpl
def introspect_register_model_aliases(register: Any) -> None:
    from ground_truth.bundled import BUNDLED

    for alias, model in BUNDLED.items():
        register(alias, model.alias_entry())
