"""Built-in ground-truth backends."""

from __future__ import annotations

from typing import Any

from harness_plugins.registry import hookimpl


def _hf_backend(loaded: Any, **kwargs: Any) -> Any:
    from ground_truth.backends.hf import HFBackend  # torch is imported only when used

    return HFBackend(loaded, **kwargs)


@hookimpl
def introspect_register_backends(register: Any) -> None:
    register("hf", _hf_backend)
