"""lm-eval-introspect: lm-eval tasks that score a model's explanations of its own internals.

Plugin authors need one name from here, the hook marker::

    from harness_plugins import hookimpl

Kept free of imports on purpose: `lm_eval_introspect.pth` imports
`harness_plugins.lm_eval_adapter.hook` at every interpreter start-up, so importing this package
must cost nothing; ``hookimpl`` is loaded on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]


def __getattr__(name: str) -> object:
    if name == "hookimpl":
        from harness_plugins.registry import hookimpl

        return hookimpl
    raise AttributeError(f"module 'harness_plugins' has no attribute {name!r}")
