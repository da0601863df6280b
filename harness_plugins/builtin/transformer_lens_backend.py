"""The ``transformer_lens`` ground-truth backend (TransformerLens 4.x TransformerBridge)."""

from __future__ import annotations

from typing import Any

from harness_plugins.registry import hookimpl


def _transformer_lens_backend(loaded: Any, **kwargs: Any) -> Any:
    # transformer_lens takes seconds to import: only when this backend is chosen
    from ground_truth.backends.transformer_lens import TransformerLensBackend

    return TransformerLensBackend(loaded, **kwargs)


@hookimpl
def introspect_register_backends(register: Any) -> None:
    register("transformer_lens", _transformer_lens_backend)
