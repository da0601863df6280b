"""Which run is which: self vs cross by the base weights, and the references' content hash.

Kept apart from the reference pipeline so that ``introspect matrix`` and the gate can
decide and describe a run's mode without building one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["explanation_mode", "mode_summary", "reference_content_fingerprint"]


def explanation_mode(explainer: Any, subject: Any) -> str:
    """``self`` when the explainer runs on the subject's weights (adapters on top allowed).

    Identity is by the base model: ``pretrained=M,peft=A`` explaining subject ``M`` is
    self-explanation (an adapter trained to explain its own base), while an explainer on
    other base weights, or a subject with an adapter the explainer does not carry, is cross.
    """
    if explainer is None or subject == explainer:
        return "self"
    base = dataclasses.replace(explainer, peft=None)
    return "self" if subject == base else "cross"


def mode_summary(record: Any) -> str:
    """One console line saying which mode ran and on which weights."""
    if record.mode == "control":
        return f"mode control: {record.explainer} answers for subject {record.subject}"
    if record.mode == "self":
        through = f" through adapter {record.explainer_adapter}" if record.explainer_adapter else ""
        return f"mode self: {record.subject} explains itself{through}"
    return f"mode cross: {record.explainer} explains subject {record.subject}"


def reference_content_fingerprint(docs: Any) -> str:
    """A hash of the reference answers themselves (documents and targets, in order)."""
    import hashlib
    import json

    digest = hashlib.sha256()
    for doc in docs:
        digest.update(json.dumps(doc, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]
