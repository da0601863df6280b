"""Ground-truth backend ``nnsight``: the intervention primitive through nnsight's tracing.

Installing this package is all it takes: the entry point ``nnsight`` in the
``introspect`` group points here, and the hook below registers the backend, which
users then pick with the task option ``backend`` (``--metadata '{"backend": "nnsight"}'``).
Importing this module stays cheap (no torch, no nnsight): lm-eval builds its task index
through the plugin registry, and most runs never use this backend.
"""

from __future__ import annotations

from typing import Any

from harness_plugins import hookimpl

__version__ = "0.1.0"


def nnsight_backend(loaded: Any, batch_size: int = 16, progress: bool = True) -> Any:
    """Build the backend on first use, so nnsight (and torch) load only when chosen."""
    try:
        import nnsight  # noqa: F401
    except ImportError as error:
        from harness_plugins.errors import IntrospectError

        raise IntrospectError(
            f"the nnsight backend needs nnsight>=0.8 ({error}); run: pip install 'nnsight>=0.8'"
        ) from None
    from introspect_nnsight.backend import NNsightBackend

    return NNsightBackend(loaded, batch_size=batch_size, progress=progress)


@hookimpl
def introspect_register_backends(register: Any) -> None:
    register("nnsight", nnsight_backend)
