"""Patchscopes: read a subject's hidden state by patching it into the explainer (docs/methods.md).

Two explanation types, one module each: `next_token` (token identity, against the logit
lens) and `attributes` (attribute extraction, against a probe); `common` holds the layer
sweep both use.
"""

from __future__ import annotations

from typing import Any

from harness_plugins.builtin.patchscopes.attributes import PatchscopeAttributes
from harness_plugins.builtin.patchscopes.next_token import PatchscopeNextToken
from harness_plugins.registry import hookimpl

__all__ = ["PatchscopeAttributes", "PatchscopeNextToken"]


@hookimpl
def introspect_register_explanation_types(register: Any) -> None:
    register(PatchscopeNextToken())
    register(PatchscopeAttributes())
